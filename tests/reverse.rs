//! cryptopANT compatibility through the command line, pass bits, and
//! washing back (`wash --reverse`).
//!
//! - Every line of every cryptopANT vector file through `ipwash map
//!   --method cryptopant`, forward and `--reverse`.
//! - The same lines as the source and destination addresses of generated
//!   captures washed with `wash --method cryptopant`, and washed back.
//! - `wash` then `wash --reverse` gives back every kept packet byte for byte
//!   (record header and data), for every reversible method, over generated
//!   pcap and pcapng captures and the shared corpus (pcap, pcapng, C-DNS
//!   blocks).

mod common;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{corpus, root, run, run_ok};

fn vec_dir() -> PathBuf {
    root().join("testdata/vectors/cryptopant")
}

/// Every cryptopANT output file: (file, input file, key file, extra args).
fn vector_files() -> Vec<(String, String, PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(vec_dir()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some((fam, rest)) = name.split_once(".anon.") else {
            continue;
        };
        let (ty, pass) = rest.split_once('.').unwrap_or((rest, ""));
        let mut args = Vec::new();
        if let Some((opt, n)) = pass.split_once('-') {
            args.push(format!("--{opt}"));
            args.push(n.to_string());
        }
        out.push((
            name.clone(),
            fam.to_string(),
            vec_dir().join(format!("keyfile.{ty}")),
            args,
        ));
    }
    out.sort();
    assert_eq!(out.len(), 16, "vector files");
    out
}

fn args_with<'a>(base: &[&'a str], key: &'a Path, extra: &'a [String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = base.to_vec();
    v.push("--key-file");
    v.push(key.to_str().unwrap());
    v.extend(extra.iter().map(String::as_str));
    v
}

#[test]
fn map_cryptopant_every_vector_line_forward_and_reverse() {
    let mut lines = 0;
    for (name, fam, key, extra) in vector_files() {
        let input = std::fs::read(vec_dir().join(&fam)).unwrap();
        let want = std::fs::read(vec_dir().join(&name)).unwrap();
        let got = run_ok(
            &args_with(&["map", "--method", "cryptopant"], &key, &extra),
            &input,
        );
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name} forward"
        );
        let back = run_ok(
            &args_with(
                &["map", "--method", "cryptopant", "--reverse"],
                &key,
                &extra,
            ),
            &want,
        );
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(&input),
            "{name} reverse"
        );
        lines += want.iter().filter(|&&b| b == b'\n').count();
    }
    assert_eq!(lines, 16_000);
}

// ---------------------------------------------------------------------------
// Generated captures

/// A DNS query for example.com, with an ECS option for `ecs` (source
/// prefix 24 for IPv4, 56 for IPv6) when given.
fn dns_query(id: u16, ecs: Option<IpAddr>) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(ecs.is_some())]);
    q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    if let Some(a) = ecs {
        let (fam, bits, bytes): (u16, u8, Vec<u8>) = match a {
            IpAddr::V4(v) => (1, 24, v.octets()[..3].to_vec()),
            IpAddr::V6(v) => (2, 56, v.octets()[..7].to_vec()),
        };
        let opt_len = 4 + bytes.len() as u16;
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        q.extend_from_slice(&(4 + opt_len).to_be_bytes());
        q.extend_from_slice(&8u16.to_be_bytes());
        q.extend_from_slice(&opt_len.to_be_bytes());
        q.extend_from_slice(&fam.to_be_bytes());
        q.extend_from_slice(&[bits, 0]);
        q.extend_from_slice(&bytes);
    }
    q
}

/// An Ethernet frame carrying a UDP DNS query from `src` to `dst`, with
/// valid checksums.
fn frame(src: IpAddr, dst: IpAddr, id: u16, ecs: bool) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let payload = dns_query(id, ecs.then_some(src));
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b
            .ipv4(s.octets(), d.octets(), 64)
            .udp(40000 + id % 20000, 53)
            .write(&mut out, &payload)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => b
            .ipv6(s.octets(), d.octets(), 64)
            .udp(40000 + id % 20000, 53)
            .write(&mut out, &payload)
            .unwrap(),
        _ => panic!("families differ"),
    }
    out
}

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        out.extend_from_slice(&(i as u32 * 7).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn pcapng_block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
    let len = 12 + body.len().div_ceil(4) * 4;
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// A little-endian pcapng: SHB, one Ethernet IDB, an EPB per frame; every
/// third EPB carries a comment (which the wash removes).
fn pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    pcapng_block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&[1, 0, 0, 0]);
    idb.extend_from_slice(&65535u32.to_le_bytes());
    pcapng_block(&mut out, 1, &idb);
    for (i, f) in frames.iter().enumerate() {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        let ts = 1_700_000_000_000_000u64 + i as u64 * 1000;
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        if i % 3 == 0 {
            let c = format!("client {i}");
            epb.extend_from_slice(&1u16.to_le_bytes());
            epb.extend_from_slice(&(c.len() as u16).to_le_bytes());
            epb.extend_from_slice(c.as_bytes());
            epb.resize(epb.len().div_ceil(4) * 4, 0);
            epb.extend_from_slice(&[0, 0, 0, 0]);
        }
        pcapng_block(&mut out, 6, &epb);
    }
    out
}

/// Packets of a pcap or pcapng file: for pcap the whole record (header and
/// data), for pcapng the timestamp, lengths and data of each EPB / SPB.
fn packets(file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let magic = u32::from_le_bytes(file[..4].try_into().unwrap());
    if magic == 0x0a0d_0d0a {
        let mut o = 0;
        let mut be = false;
        while o + 12 <= file.len() {
            let rd = |at: usize, be: bool| {
                let b: [u8; 4] = file[at..at + 4].try_into().unwrap();
                if be {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            let ty = rd(o, false);
            if ty == 0x0a0d_0d0a {
                be = file[o + 8..o + 12] == [0x1a, 0x2b, 0x3c, 0x4d];
            }
            let len = rd(o + 4, be) as usize;
            assert!(len >= 12 && o + len <= file.len(), "pcapng block at {o}");
            let ty = rd(o, be);
            if ty == 6 {
                let cap = rd(o + 20, be) as usize;
                out.push(file[o + 12..o + 28 + cap].to_vec());
            } else if ty == 3 {
                out.push(file[o + 8..o + len - 4].to_vec());
            }
            o += len;
        }
    } else {
        let be = magic == 0xd4c3_b2a1 || magic == 0x4d3c_b2a1;
        let mut o = 24;
        while o + 16 <= file.len() {
            let b: [u8; 4] = file[o + 8..o + 12].try_into().unwrap();
            let cap = if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            } as usize;
            out.push(file[o..(o + 16 + cap).min(file.len())].to_vec());
            o += 16 + cap;
        }
    }
    out
}

fn ip_pair(frame: &[u8]) -> (IpAddr, IpAddr) {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 => {
            let s: [u8; 4] = frame[26..30].try_into().unwrap();
            let d: [u8; 4] = frame[30..34].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d))
        }
        0x86dd => {
            let s: [u8; 16] = frame[22..38].try_into().unwrap();
            let d: [u8; 16] = frame[38..54].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d))
        }
        t => panic!("ethertype {t:#x}"),
    }
}

fn read_addrs(p: &Path) -> Vec<IpAddr> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn wash_cryptopant_every_vector_line_in_captures_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, fam, key, extra) in vector_files() {
        let input = read_addrs(&vec_dir().join(&fam));
        let want = read_addrs(&vec_dir().join(&name));
        let n = input.len();
        // Packet i goes from line i to line i+1; no ECS here, since an ECS
        // prefix is mapped as a prefix, not as the vector's full address.
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| frame(input[i], input[(i + 1) % n], i as u16, false))
            .collect();
        let orig = dir.path().join("in.pcap");
        let washed = dir.path().join("w.pcap");
        let back = dir.path().join("r.pcap");
        std::fs::write(&orig, pcap(&frames)).unwrap();
        let (o, w, b) = (
            orig.to_str().unwrap(),
            washed.to_str().unwrap(),
            back.to_str().unwrap(),
        );
        run_ok(
            &args_with(
                &["wash", "-q", "--method", "cryptopant", o, "-o", w],
                &key,
                &extra,
            ),
            b"",
        );
        let got = packets(&std::fs::read(&washed).unwrap());
        assert_eq!(got.len(), n, "{name}: every packet kept");
        for (i, p) in got.iter().enumerate() {
            let (s, d) = ip_pair(&p[16..]);
            assert_eq!(s, want[i], "{name} line {}: source", i + 1);
            assert_eq!(d, want[(i + 1) % n], "{name} line {}: destination", i + 2);
            checked += 1;
        }
        run_ok(
            &args_with(
                &[
                    "wash",
                    "-q",
                    "--method",
                    "cryptopant",
                    "--reverse",
                    w,
                    "-o",
                    b,
                ],
                &key,
                &extra,
            ),
            b"",
        );
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(&orig).unwrap(),
            "{name}: washed back byte for byte"
        );
    }
    assert_eq!(checked, 16_000);
}

// ---------------------------------------------------------------------------
// Round trips for every reversible method

/// (method, extra arguments, key file contents) for every reversible method.
fn reversible_methods(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let k32 = dir.join("k32");
    let k16 = dir.join("k16");
    std::fs::write(
        &k32,
        "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202\n",
    )
    .unwrap();
    std::fs::write(&k16, "2b7e151628aed2a6abf7158809cf4f3c\n").unwrap();
    let key = |p: &Path| vec!["--key-file".to_string(), p.to_str().unwrap().to_string()];
    let with = |mut v: Vec<String>, more: &[&str]| {
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    let cpt = vec_dir().join("keyfile.aes");
    let cpt_bf = vec_dir().join("keyfile.blowfish");
    vec![
        ("cryptopan", key(&k32)),
        (
            "cryptopan",
            with(key(&k32), &["--pass4", "16", "--pass6", "48"]),
        ),
        ("cryptopant", key(&cpt)),
        (
            "cryptopant",
            with(key(&cpt_bf), &["--pass4", "24", "--pass6", "64"]),
        ),
        ("tsa", with(key(&k32), &["--pass4", "8"])),
        ("ipcipher", key(&k16)),
        ("ipcrypt-pfx", with(key(&k32), &["--pass6", "32"])),
        ("enumerate", vec![]),
        ("prefix-map", with(key(&k32), &["--pass4", "16"])),
    ]
}

/// Original, washed and washed-back bytes, and the reverse run's stderr.
type Trip = (Vec<u8>, Vec<u8>, Vec<u8>, String);

/// Wash `input` and wash it back; returns (original, washed, back) bytes,
/// decompressed.
fn round_trip(dir: &Path, input: &Path, method: &str, extra: &[String], tag: &str) -> Option<Trip> {
    let washed = dir.join(format!("{tag}.w"));
    let back = dir.join(format!("{tag}.r"));
    let state = dir.join(format!("{tag}.state"));
    let _ = std::fs::remove_file(&state);
    let stateful = matches!(method, "enumerate" | "prefix-map");
    let mut a: Vec<String> = ["wash", "-q", "--compress", "none", "--method", method]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().cloned());
    // Address fields round-trip byte for byte; reverse names are not yet
    // restored byte for byte by --reverse in every packet (a known gap).
    a.extend(["--reverse-names".to_string(), "keep".to_string()]);
    if method == "enumerate" {
        // Numbered MACs cannot be washed back (keyed MAC maps can).
        a.extend(["--mac".to_string(), "keep".to_string()]);
    }
    if stateful {
        a.push("--state".into());
        a.push(state.to_str().unwrap().into());
    }
    let mut fwd = a.clone();
    fwd.extend([
        input.to_str().unwrap().to_string(),
        "-o".into(),
        washed.to_str().unwrap().into(),
    ]);
    let fwd: Vec<&str> = fwd.iter().map(String::as_str).collect();
    let o = run(&fwd, b"");
    if o.status.code() == Some(2)
        && String::from_utf8_lossy(&o.stderr).contains("stores address prefixes only")
    {
        // Prefix-only C-DNS and a method that needs full addresses: refused.
        return None;
    }
    // A corpus file may end in a fault (exit 1); what was written is washed.
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{fwd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    if !washed.exists() {
        // Refused as a whole (a link type ipwash does not read): nothing to
        // wash back.
        return None;
    }
    let mut rev = a;
    rev[1] = "--reverse".into();
    rev.extend([
        washed.to_str().unwrap().to_string(),
        "-o".into(),
        back.to_str().unwrap().into(),
    ]);
    let rev: Vec<&str> = rev.iter().map(String::as_str).collect();
    let o = run(&rev, b"");
    assert!(
        o.status.success(),
        "{rev:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let note = String::from_utf8_lossy(&o.stderr).to_string();
    Some((
        decompress(&std::fs::read(input).unwrap()),
        std::fs::read(&washed).unwrap(),
        std::fs::read(&back).unwrap(),
        note,
    ))
}

fn decompress(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        liblzma::read::XzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
    } else if b.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = b.to_vec();
    }
    out
}

/// Every packet of `back` is, in order, a packet of `orig`, and there are as
/// many as in `washed`. Returns the count.
fn check_kept_packets(orig: &[u8], washed: &[u8], back: &[u8], what: &str) -> usize {
    let (found, total) = kept_packets_found(orig, washed, back, what);
    assert_eq!(
        found, total,
        "{what}: a packet washed back is not the original"
    );
    total
}

/// How many packets of `back` are, in order, packets of `orig` (a packet not
/// found is skipped), and how many there are (as many as in `washed`).
fn kept_packets_found(orig: &[u8], washed: &[u8], back: &[u8], what: &str) -> (usize, usize) {
    let (o, w, b) = (packets(orig), packets(washed), packets(back));
    assert_eq!(w.len(), b.len(), "{what}: packets washed back");
    let mut i = 0;
    let mut found = 0;
    for p in &b {
        if let Some(k) = o[i..].iter().position(|x| x == p) {
            i += k + 1;
            found += 1;
        }
    }
    (found, b.len())
}

/// Methods whose ECS prefixes come back: keyed and prefix-preserving. With
/// ipcipher, enumerate and prefix-map the wash cut the mapped prefix, so an
/// ECS option cannot come back (its packet then differs there only).
fn ecs_reversible(method: &str) -> bool {
    matches!(method, "cryptopan" | "cryptopant" | "tsa" | "ipcrypt-pfx")
}

#[test]
fn wash_and_wash_back_generated_pcap_and_pcapng_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for i in 0..300u32 {
        let v4 =
            IpAddr::from((0x0a00_0000u32 | (i.wrapping_mul(2654435761) % 0xffffff)).to_be_bytes());
        let s4 = IpAddr::from([192, 0, 2, (i % 5) as u8 + 1]);
        let v6 = IpAddr::from(
            ((0x2001_0db8u128 << 96) | u128::from(i.wrapping_mul(2654435761))).to_be_bytes(),
        );
        let s6: IpAddr = "2001:db8:53::1".parse().unwrap();
        frames.push(frame(v4, s4, i as u16, i % 2 == 0));
        frames.push(frame(s4, v4, i as u16, false));
        frames.push(frame(v6, s6, i as u16, i % 2 == 1));
    }
    let p = dir.path().join("gen.pcap");
    let png = dir.path().join("gen.pcapng");
    std::fs::write(&p, pcap(&frames)).unwrap();
    std::fs::write(&png, pcapng(&frames)).unwrap();
    for (method, extra) in reversible_methods(dir.path()) {
        for (input, kind) in [(&p, "pcap"), (&png, "pcapng")] {
            let what = format!("{method} {extra:?} {kind}");
            let (orig, washed, back, note) =
                round_trip(dir.path(), input, method, &extra, kind).unwrap();
            assert_ne!(washed, orig, "{what}: washing changed nothing");
            let (found, total) = kept_packets_found(&orig, &washed, &back, &what);
            assert_eq!(total, frames.len(), "{what}: every generated packet kept");
            // A third of the packets carry ECS.
            let want = if ecs_reversible(method) {
                total
            } else {
                total - total / 3
            };
            // (An ECS option may come back by chance under a table.)
            assert!(
                found >= want,
                "{what}: {found} of {total} packets washed back"
            );
            assert_eq!(
                note.matches("cannot come back").count(),
                1,
                "{what}: the run says once what cannot come back"
            );
            if kind == "pcap" && ecs_reversible(method) {
                assert_eq!(back, orig, "{what}: whole file byte for byte");
            } else if kind == "pcapng" {
                // The comments are gone for good.
                assert!(back.len() < orig.len(), "{what}");
            }
        }
    }
}

/// Decode a C-DNS file and return its block array.
fn cdns_blocks(b: &[u8]) -> ciborium::Value {
    let v: ciborium::Value = ciborium::from_reader(b).expect("C-DNS CBOR");
    match v {
        ciborium::Value::Array(mut a) if a.len() == 3 => a.remove(2),
        _ => panic!("not a C-DNS file"),
    }
}

#[test]
fn wash_and_wash_back_the_corpus_every_method() {
    let Some(c) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(c.join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".pcapng.xz")
        })
        .collect();
    files.sort();
    let mut cdns: Vec<PathBuf> = ["generated", "cdnsrdr-testdata", "compactor-testdata"]
        .iter()
        .flat_map(|d| std::fs::read_dir(c.join("cdns").join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.contains(".cdns") && !n.starts_with("malformed")
        })
        .collect();
    cdns.sort();
    let (mut packets_back, mut blocks_back, mut changed) = (0, 0, 0);
    let (mut weak_found, mut weak_total) = (0, 0);
    for (mi, (method, extra)) in reversible_methods(dir.path()).into_iter().enumerate() {
        for (fi, f) in files.iter().enumerate() {
            // The two large live captures once, with the first method.
            let big = f.to_string_lossy().ends_with(".xz");
            if big && mi != 0 {
                continue;
            }
            let what = format!("{method} {extra:?} {}", f.display());
            let Some((orig, washed, back, _)) =
                round_trip(dir.path(), f, method, &extra, &format!("p{fi}"))
            else {
                continue;
            };
            if ecs_reversible(method) {
                packets_back += check_kept_packets(&orig, &washed, &back, &what);
            } else {
                let (f, t) = kept_packets_found(&orig, &washed, &back, &what);
                weak_found += f;
                weak_total += t;
            }
        }
        for (fi, f) in cdns.iter().enumerate() {
            let big = f.to_string_lossy().ends_with(".xz");
            if big && mi != 0 {
                continue;
            }
            let what = format!("{method} {extra:?} {}", f.display());
            let Some((orig, washed, back, _)) =
                round_trip(dir.path(), f, method, &extra, &format!("c{fi}"))
            else {
                continue;
            };
            let (o, w, b) = (cdns_blocks(&orig), cdns_blocks(&washed), cdns_blocks(&back));
            changed += usize::from(w != o);
            if ecs_reversible(method) {
                assert!(b == o, "{what}: C-DNS blocks not washed back");
                blocks_back += 1;
            }
        }
    }
    assert!(packets_back > 10_000, "{packets_back} packets");
    assert!(blocks_back > 15, "{blocks_back} C-DNS files");
    assert!(changed > 30, "{changed} C-DNS files changed by washing");
    // Without ECS coming back, nearly every packet still does.
    eprintln!(
        "ipcipher, enumerate, prefix-map: {weak_found} of {weak_total} packets back byte for byte"
    );
    assert!(
        weak_found * 100 >= weak_total * 95,
        "{weak_found} of {weak_total}"
    );
}

#[test]
fn reverse_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = root().join("testdata/sample-dns.pcap");
    let out = dir.path().join("o.pcap");
    let key = root().join("testdata/sample.key");
    let (f, out, key) = (
        f.to_str().unwrap(),
        out.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    for (args, frag) in [
        (
            vec!["wash", "--reverse", "--method", "truncate", f, "-o", out],
            "not reversible",
        ),
        (
            vec!["wash", "--reverse", "--method", "enumerate", f, "-o", out],
            "needs --state",
        ),
        (
            vec![
                "wash",
                "--method",
                "ipcipher",
                "--pass4",
                "8",
                "--key-file",
                key,
                f,
                "-o",
                out,
            ],
            "--pass4/--pass6 apply to",
        ),
        (
            vec![
                "wash",
                "--method",
                "cryptopant",
                "--key-file",
                key,
                f,
                "-o",
                out,
            ],
            "cryptopANT key file",
        ),
        (
            vec!["keygen", "--method", "cryptopan", "--type", "aes"],
            "--type is for --method cryptopant",
        ),
    ] {
        let o = run(&args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(frag), "{args:?}: {e}");
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn keygen_cryptopant_writes_a_key_file_in_its_format() {
    let dir = tempfile::tempdir().unwrap();
    for (ty, code) in [
        ("aes", "03"),
        ("blowfish", "02"),
        ("md5", "01"),
        ("sha1", "04"),
    ] {
        let p = dir.path().join(format!("k.{ty}"));
        run_ok(
            &[
                "keygen",
                "--method",
                "cryptopant",
                "--type",
                ty,
                "-o",
                p.to_str().unwrap(),
            ],
            b"",
        );
        let text = std::fs::read_to_string(&p).unwrap();
        // C4:C6:16-byte key:32-byte pad:no MAC:16-byte IV, as scramble_ips --newkey writes.
        let f: Vec<&str> = text.trim_end().split(':').collect();
        assert_eq!(f.len(), 6, "{text}");
        assert_eq!((f[0], f[1]), (code, code));
        assert_eq!(
            (f[2].len(), f[3].len(), f[4].len(), f[5].len()),
            (32, 64, 0, 32)
        );
        assert!(text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // It works, and washing back inverts it.
        let out = run_ok(
            &[
                "map",
                "--method",
                "cryptopant",
                "--key-file",
                p.to_str().unwrap(),
            ],
            b"192.0.2.1\n2001:db8::1\n",
        );
        let back = run_ok(
            &[
                "map",
                "--method",
                "cryptopant",
                "--reverse",
                "--key-file",
                p.to_str().unwrap(),
            ],
            &out,
        );
        assert_eq!(back, b"192.0.2.1\n2001:db8::1\n");
    }
}

#[test]
fn map_reverse_from_a_state_table() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    std::fs::write(
        &key,
        "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202\n",
    )
    .unwrap();
    let input = b"192.0.2.1\n192.0.2.77\n2001:db8::5\n10.1.2.3\n";
    for (method, with_key) in [("prefix-map", true), ("enumerate", false)] {
        let state = dir.path().join(format!("{method}.state"));
        let mut a = vec![
            "map",
            "--method",
            method,
            "--state",
            state.to_str().unwrap(),
        ];
        if with_key {
            a.extend(["--key-file", key.to_str().unwrap()]);
        }
        let out = run_ok(&a, input);
        assert_ne!(out, input);
        let saved = std::fs::read(&state).unwrap();
        a.push("--reverse");
        assert_eq!(run_ok(&a, &out), input, "{method}");
        // Read only: the table is unchanged.
        assert_eq!(std::fs::read(&state).unwrap(), saved);
    }
}
