//! C-DNS washing and the DNSBLOOM sink through the real binary, as a user
//! runs them.

mod common;

use common::*;
use std::process::Command;

const K32: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

fn xz_d(p: &std::path::Path, out: &std::path::Path) {
    let o = Command::new("xz").arg("-dc").arg(p).output().expect("xz");
    assert!(o.status.success());
    std::fs::write(out, o.stdout).unwrap();
}

#[test]
fn cdns_wash_through_cli() {
    let Some(c) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let ks = k.to_str().unwrap();
    let sj = dir.path().join("s.json");
    // A plain C-DNS file: washed, marked, and different from the input.
    let inp = c.join("cdns/cdnsrdr-testdata/cdns_test_file.cdns");
    let out = dir.path().join("o.cdns");
    run_ok(
        &[
            "wash",
            inp.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            ks,
            "--stats-json",
            sj.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    let a = std::fs::read(&inp).unwrap();
    let b = std::fs::read(&out).unwrap();
    assert_ne!(a, b);
    let v: ciborium::Value = ciborium::from_reader(&b[..]).expect("output is CBOR");
    assert_eq!(v.as_array().unwrap()[0].as_text(), Some("C-DNS"));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sj).unwrap()).unwrap();
    assert!(
        s["cdns_addresses_rewritten"].as_u64().unwrap() > 1000,
        "{s}"
    );
    // Not one original address-table entry survives: every 4- or 16-byte
    // entry of the input's first block is absent from the output's.
    fn table(v: &ciborium::Value) -> Vec<Vec<u8>> {
        let blocks = v.as_array().unwrap()[2].as_array().unwrap();
        let b0 = blocks[0].as_map().unwrap();
        let tables = b0
            .iter()
            .find(|(k, _)| k.as_integer() == Some(2.into()))
            .unwrap()
            .1
            .as_map()
            .unwrap();
        let ips = tables
            .iter()
            .find(|(k, _)| k.as_integer() == Some(0.into()))
            .unwrap()
            .1
            .as_array()
            .unwrap();
        ips.iter().map(|x| x.as_bytes().unwrap().clone()).collect()
    }
    let orig: ciborium::Value = ciborium::from_reader(&a[..]).unwrap();
    let t_in = table(&orig);
    let t_out = table(&v);
    assert!(t_in.len() > 1000);
    let survivors = t_in.iter().filter(|x| t_out.contains(x)).count();
    assert_eq!(survivors, 0, "original addresses left in the output table");
    // An xz-wrapped C-DNS file comes back xz-wrapped.
    let gz = c.join("cdns/compactor-testdata/gold.cdns.xz");
    let gout = dir.path().join("gold.out.cdns.xz");
    run_ok(
        &[
            "wash",
            gz.to_str().unwrap(),
            "-o",
            gout.to_str().unwrap(),
            "--method",
            "truncate",
            "-q",
        ],
        b"",
    );
    let plain = dir.path().join("gold.out.cdns");
    xz_d(&gout, &plain);
    let g: ciborium::Value =
        ciborium::from_reader(&std::fs::read(&plain).unwrap()[..]).expect("CBOR");
    assert_eq!(g.as_array().unwrap()[0].as_text(), Some("C-DNS"));
    // The pre-RFC draft format is refused: exit 1, clear message.
    let old = c.join("cdns/compactor-testdata/gold.cbor05.xz");
    let o = run(
        &[
            "wash",
            old.to_str().unwrap(),
            "-o",
            dir.path().join("x").to_str().unwrap(),
            "--method",
            "truncate",
            "-q",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gold.cbor05.xz"), "{err}");
    // Prefix-only storage with a technique that needs the full address: exit 2.
    let pre = c.join("cdns/generated/testcontent-prefix.cdns");
    let k16 = key_file(dir.path(), "k16", "736f6d652031362d62797465206b6579");
    let o = run(
        &[
            "wash",
            pre.to_str().unwrap(),
            "-o",
            dir.path().join("y").to_str().unwrap(),
            "--method",
            "ipcipher",
            "--key-file",
            k16.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A cut file: exit 1, the output so far is a valid C-DNS file.
    let cut = dir.path().join("cut.cdns");
    std::fs::write(&cut, &a[..a.len() * 2 / 3]).unwrap();
    let cout = dir.path().join("cut.out.cdns");
    let o = run(
        &[
            "wash",
            cut.to_str().unwrap(),
            "-o",
            cout.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            ks,
            "-q",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("block") && err.contains("byte"), "{err}");
    // The file holds one block: a cut inside it fails before any block is
    // written, so no output is made (as for a capture cut in its first
    // packet; tests/archives.rs covers cuts after the first block).
    assert!(!cout.exists(), "no output when the only block is cut");
    // Through stdin and stdout as well.
    let via = run_ok(
        &["wash", "-", "--method", "cryptopan", "--key-file", ks, "-q"],
        &a,
    );
    assert_eq!(via, b);
}

#[test]
fn bloom_build_query_merge_info_on_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bloom.key");
    run_ok(
        &[
            "keygen",
            "--method",
            "cryptopan",
            "-o",
            key.to_str().unwrap(),
        ],
        b"",
    );
    let ks = key.to_str().unwrap();
    let f = dir.path().join("filters");
    let sample = root().join("testdata/sample-dns.pcap");
    run_ok(
        &[
            "bloom",
            "build",
            sample.to_str().unwrap(),
            "-o",
            f.to_str().unwrap(),
            "--key-file",
            ks,
            "--period",
            "10",
            "--min-clients",
            "2",
            "--expected-items",
            "1000",
        ],
        b"",
    );
    let mut files: Vec<_> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "two 10-second periods");
    let fs: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let q = |extra: &[&str], names: &[&str]| -> Vec<serde_json::Value> {
        let mut a = vec!["bloom", "query", "--key-file", ks, "--json"];
        a.extend(extra);
        for n in names {
            a.extend(["--name", n]);
        }
        let out = run_ok(&a, b"");
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Every queried name of the first period is present (no false negatives);
    // the second period had one client, below the floor of 2: withheld.
    let mut args = fs.clone();
    args.push("--");
    let ans = q(
        &fs,
        &[
            "www.example.com",
            "cdn.example.net",
            "example.org",
            "mail.example.com",
            "tcp.example.com",
        ],
    );
    for a in &ans {
        let r = a["result"].as_str().unwrap();
        if a["period_start"] == "2026-01-01T00:00:00Z" {
            assert_eq!(r, "present", "{a}");
        } else {
            assert_eq!(r, "withheld", "{a}");
        }
    }
    // Merge: the union answers for both periods' names.
    let merged = dir.path().join("merged.bloom");
    let mut m = vec!["bloom", "merge", "-o", merged.to_str().unwrap()];
    m.extend(&fs);
    run_ok(&m, b"");
    let ans = q(
        &[merged.to_str().unwrap()],
        &["www.example.com", "zero.example.com", "never.example.net"],
    );
    let res: Vec<&str> = ans.iter().map(|a| a["result"].as_str().unwrap()).collect();
    assert_eq!(res, ["present", "present", "absent"]);
    // info as JSON.
    let out = run_ok(&["bloom", "info", "--json", merged.to_str().unwrap()], b"");
    let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(info["queries"], 7);
    assert_eq!(info["period_length"], 20);
    // Another key: refused, not "absent".
    let other = dir.path().join("other.key");
    run_ok(
        &[
            "keygen",
            "--method",
            "cryptopan",
            "-o",
            other.to_str().unwrap(),
        ],
        b"",
    );
    let o = run(
        &[
            "bloom",
            "query",
            "--key-file",
            other.to_str().unwrap(),
            merged.to_str().unwrap(),
            "--name",
            "www.example.com",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key"));
    assert!(o.stdout.is_empty());
}

#[test]
fn bloom_from_cdns_input() {
    let Some(c) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k", K32);
    let f = dir.path().join("f");
    run_ok(
        &[
            "bloom",
            "build",
            c.join("cdns/compactor-testdata/gold.cdns.xz")
                .to_str()
                .unwrap(),
            "-o",
            f.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--min-clients",
            "1",
        ],
        b"",
    );
    let files: Vec<String> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert!(!files.is_empty());
    let out = run_ok(&["bloom", "info", "--json", &files[0]], b"");
    let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(info["queries"].as_u64().unwrap() > 100, "{info}");
}
