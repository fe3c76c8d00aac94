//! C-DNS washer tests.
use std::sync::Arc;
use ipwash::cdns::{wash_cdns, CdnsOptions};
use ipwash::wash::{Identity, Technique, Washer};

fn load(p: &std::path::Path) -> Vec<u8> {
    use std::io::Read;
    let raw = std::fs::read(p).unwrap();
    let mut out = Vec::new();
    if raw.starts_with(b"\xfd7zXZ\0") {
        liblzma::read::XzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
    } else if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
    } else {
        out = raw;
    }
    out
}

#[test]
fn smoke() {
    let Ok(c) = std::env::var("IPWASH_CORPUS") else { return };
    for f in ["cdns/generated/testcontent-full.cdns", "cdns/generated/nsd-live.cdns.xz", "cdns/cdnsrdr-testdata/cdns_test_file.cdns"] {
        let data = load(&std::path::Path::new(&c).join(f));
        let mut w = Washer::new(Technique::Stateless(Arc::new(Identity)));
        let mut out = Vec::new();
        let st = wash_cdns(&data[..], &mut out, &mut w, &CdnsOptions { keep_collection_info: true, mark_output: false });
        println!("{f}: {st:?} same={}", out == data);
        let mut out2 = Vec::new();
        let st = wash_cdns(&data[..], &mut out2, &mut w, &CdnsOptions::default());
        println!("{f}: {st:?} len {} vs {}", out2.len(), data.len());
    }
}
