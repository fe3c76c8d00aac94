//! `ipwash wash` end to end, through the real binary, checked with tshark:
//! every technique over the bundled sample and the real-capture corpus,
//! address by address; checksums; thread-count determinism; cut, garbage
//! and empty inputs; compression; dnswasher compatibility.

mod common;

use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const K32: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
const K16: &str = "736f6d652031362d62797465206b6579";

/// Methods with the key they need (None = keyless).
const METHODS: [(&str, Option<&str>); 7] = [
    ("truncate", None),
    ("enumerate", None),
    ("prefix-map", Some(K32)),
    ("cryptopan", Some(K32)),
    ("tsa", Some(K32)),
    ("ipcipher", Some(K16)),
    ("ipcrypt-pfx", Some(K32)),
];

fn sample() -> PathBuf {
    root().join("testdata/sample-dns.pcap")
}

/// The method flags for `wash` and `map`.
fn method_args(dir: &Path, method: &str, key: Option<&str>, state: Option<&Path>) -> Vec<String> {
    let mut a = vec!["--method".to_string(), method.to_string()];
    if let Some(k) = key {
        let p = key_file(dir, &format!("{method}.key"), k);
        a.push("--key-file".into());
        a.push(p.display().to_string());
    }
    if let Some(s) = state {
        a.push("--state".into());
        a.push(s.display().to_string());
    }
    a
}

/// One packet as tshark sees it.
#[derive(Debug, Clone, Default)]
struct Pkt {
    time: String,
    caplen: String,
    /// (field name, addresses in order)
    addrs: Vec<(&'static str, Vec<String>)>,
    ecs_prefix: Vec<String>,
    /// Checksum status lists: 0 = bad.
    cks: Vec<Vec<String>>,
}

const ADDR_FIELDS: [&str; 8] = [
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
    "dns.opt.client.addr4",
    "dns.opt.client.addr6",
];
const CK_FIELDS: [&str; 5] = [
    "ip.checksum.status",
    "udp.checksum.status",
    "tcp.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
];

fn tshark(file: &Path) -> Vec<Pkt> {
    tshark_cut(file, false)
}

/// tshark's view of a file; `may_be_cut` accepts an input that ends in the
/// middle of a record (tshark then reports the complete packets).
fn tshark_cut(file: &Path, may_be_cut: bool) -> Vec<Pkt> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    // tshark lists pcapng Custom Blocks as frames; they carry no packet.
    cmd.args(["-Y", "!frame.cb_copy"]);
    for o in [
        "ip.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
    ] {
        cmd.args(["-o", o]);
    }
    cmd.args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=/t",
    ]);
    cmd.args([
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.cap_len",
        "-e",
        "dns.opt.client.netmask",
    ]);
    for f in ADDR_FIELDS.iter().chain(CK_FIELDS.iter()) {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        (may_be_cut || out.status.success() && !err.contains("appears to have been cut short"))
            && !err.contains("isn't a capture file"),
        "tshark failed on {}: {err}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let list = |i: usize| -> Vec<String> {
                f.get(i)
                    .map(|s| {
                        s.split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Pkt {
                time: f.first().unwrap_or(&"").to_string(),
                caplen: f.get(1).unwrap_or(&"").to_string(),
                ecs_prefix: list(2),
                addrs: ADDR_FIELDS
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (*n, list(3 + i)))
                    .collect(),
                cks: (0..CK_FIELDS.len())
                    .map(|i| list(3 + ADDR_FIELDS.len() + i))
                    .collect(),
            }
        })
        .collect()
}

fn stats_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("stats json")).expect("json")
}

/// Output packets are a subsequence of input packets: align them greedily
/// by (timestamp, captured length).
fn align(inp: &[Pkt], out: &[Pkt]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut i = 0;
    for (j, o) in out.iter().enumerate() {
        while i < inp.len() && !(inp[i].time == o.time && inp[i].caplen == o.caplen) {
            i += 1;
        }
        assert!(
            i < inp.len(),
            "output packet {} has no input counterpart",
            j + 1
        );
        v.push((i, j));
        i += 1;
    }
    v
}

fn mask(a: IpAddr, len: u32) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32))
            };
            IpAddr::from((u32::from(v) & m).to_be_bytes())
        }
        IpAddr::V6(v) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128))
            };
            IpAddr::from((u128::from(v) & m).to_be_bytes())
        }
    }
}

/// Map addresses through `ipwash map` with the same method flags.
fn map_addrs(margs: &[String], addrs: &[IpAddr]) -> HashMap<IpAddr, IpAddr> {
    let input: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let mut args: Vec<&str> = vec!["map"];
    args.extend(margs.iter().map(String::as_str));
    let out = run_ok(&args, input.as_bytes());
    let out = String::from_utf8(out).expect("utf8");
    addrs
        .iter()
        .zip(out.lines())
        .map(|(a, m)| (*a, m.parse().expect("mapped address")))
        .collect()
}

struct Checked {
    packets_in: usize,
    packets_out: usize,
    addresses: usize,
}

/// Wash `input` with `method` (scope all) and check with tshark that every
/// address field equals the technique applied to the input's field, that
/// the packet count equals input minus drops, and that no checksum became
/// bad.
fn wash_and_check(dir: &Path, input: &Path, method: &str, key: Option<&str>) -> Checked {
    let out = dir.join(format!(
        "{}.{method}.out",
        input.file_name().unwrap().to_string_lossy()
    ));
    let st = dir.join(format!("{method}.state.csv"));
    let _ = std::fs::remove_file(&st);
    let stateful = matches!(method, "enumerate" | "prefix-map");
    let margs = method_args(dir, method, key, stateful.then_some(st.as_path()));
    let sj = dir.join("stats.json");
    let mut args: Vec<String> = vec![
        "wash".into(),
        input.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(margs.iter().cloned());
    args.extend([
        "--stats-json".into(),
        sj.display().to_string(),
        "--quiet".into(),
        // Address fields are compared packet by packet, aligned by length;
        // reverse names (which change lengths) are checked in revnames.rs.
        "--reverse-names".into(),
        "keep".into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&a, b"");
    let err = String::from_utf8_lossy(&o.stderr);
    // A corpus file that itself ends mid-record: exit 1 with a clear error,
    // every complete packet still washed and written.
    let cut = o.status.code() == Some(1) && err.contains("truncated record");
    assert!(
        o.status.code() == Some(0) || cut,
        "wash {} --method {method}: {:?} {err}",
        input.display(),
        o.status.code(),
    );
    let stats = stats_json(&sj);
    let tin = tshark_cut(input, cut);
    let tout = tshark(&out);
    let dropped = stats["packets_dropped"].as_u64().unwrap() as usize;
    assert_eq!(
        stats["packets_read"].as_u64().unwrap() as usize,
        tin.len(),
        "{method} {}",
        input.display()
    );
    assert_eq!(
        tout.len(),
        tin.len() - dropped,
        "{method} {}: output count",
        input.display()
    );
    let pairs = align(&tin, &tout);
    // Every input address (and ECS prefix) mapped in one `map` run.
    let mut all: Vec<IpAddr> = Vec::new();
    for (i, _) in &pairs {
        let p = &tin[*i];
        for (f, list) in &p.addrs {
            for (k, a) in list.iter().enumerate() {
                let a: IpAddr = a.parse().unwrap();
                if f.starts_with("dns.opt") {
                    let len: u32 = p
                        .ecs_prefix
                        .get(k)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                    all.push(mask(a, len));
                } else {
                    all.push(a);
                }
            }
        }
    }
    all.sort();
    all.dedup();
    let m = map_addrs(&margs, &all);
    let mut n = 0;
    for (i, j) in &pairs {
        let (pi, po) = (&tin[*i], &tout[*j]);
        for ((f, li), (_, lo)) in pi.addrs.iter().zip(&po.addrs) {
            assert_eq!(
                li.len(),
                lo.len(),
                "{method} {} packet {}: {f} count",
                input.display(),
                j + 1
            );
            for (k, (a, b)) in li.iter().zip(lo).enumerate() {
                let a: IpAddr = a.parse().unwrap();
                let b: IpAddr = b.parse().unwrap();
                let want = if f.starts_with("dns.opt") {
                    let len: u32 = pi
                        .ecs_prefix
                        .get(k)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                    mask(m[&mask(a, len)], len)
                } else {
                    m[&a]
                };
                assert_eq!(
                    b,
                    want,
                    "{method} {} out packet {}: {f}[{k}] was {a}",
                    input.display(),
                    j + 1
                );
                n += 1;
            }
        }
        for (c, (ci, co)) in pi.cks.iter().zip(&po.cks).enumerate() {
            for (x, y) in ci.iter().zip(co) {
                assert!(
                    !(y == "0" && x != "0"),
                    "{method} {} out packet {}: {} became bad",
                    input.display(),
                    j + 1,
                    CK_FIELDS[c]
                );
            }
        }
    }
    Checked {
        packets_in: tin.len(),
        packets_out: tout.len(),
        addresses: n,
    }
}

#[test]
fn sample_every_method_address_by_address() {
    if !have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (method, key) in METHODS {
        let c = wash_and_check(dir.path(), &sample(), method, key);
        // The sample's LLDP frame is the only packet dropped.
        assert_eq!(c.packets_in, c.packets_out + 1, "{method}");
        assert!(
            c.addresses > 40,
            "{method}: {} addresses checked",
            c.addresses
        );
    }
}

#[test]
fn sample_cryptopan_changes_every_client_address() {
    if !have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.pcap");
    let k = key_file(dir.path(), "k", K32);
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    let originals = [
        "192.0.2.10",
        "192.0.2.77",
        "198.51.100.53",
        "2001:db8:c11e:17::10",
        "2001:db8:53::53",
        "203.0.113.0",
        "203.0.112.0",
        "2001:db8:c11e:1700::",
    ];
    for p in tshark(&out) {
        for (f, list) in &p.addrs {
            for a in list {
                let a: IpAddr = a.parse().unwrap();
                assert!(
                    !originals.iter().any(|o| o.parse::<IpAddr>().unwrap() == a),
                    "{f} kept {a}"
                );
            }
        }
    }
}

fn corpus_captures() -> Vec<PathBuf> {
    let Some(c) = corpus() else { return Vec::new() };
    let mut v = Vec::new();
    for d in [c.join("pcap"), c.join("pcap/derived")] {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".xz") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 40, "corpus has {} captures", v.len());
    v
}

/// Decompress `.xz` corpus files for tshark (ipwash reads them directly too).
fn plain_copy(dir: &Path, p: &Path) -> PathBuf {
    let n = p.file_name().unwrap().to_string_lossy().to_string();
    if let Some(stem) = n.strip_suffix(".xz") {
        let out = dir.join(stem);
        let data = Command::new("xz").arg("-dc").arg(p).output().expect("xz");
        std::fs::write(&out, data.stdout).unwrap();
        out
    } else {
        p.to_path_buf()
    }
}

/// Files whose format ipwash refuses by design (reported clearly, exit 1):
/// the modified pcap format, and a link type it does not read (NFLOG, 239).
fn refused(p: &Path) -> bool {
    let n = p.to_string_lossy();
    n.contains("modified-format") || n.contains("nflog")
}

#[test]
fn corpus_every_method_address_by_address() {
    let files = corpus_captures();
    if files.is_empty() || !have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for f in &files {
        if refused(f) {
            continue;
        }
        let p = plain_copy(dir.path(), f);
        for (method, key) in METHODS {
            let c = wash_and_check(dir.path(), &p, method, key);
            total += c.addresses;
        }
    }
    assert!(total > 100_000, "{total} addresses checked");
}

#[test]
fn thread_count_does_not_change_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = vec![sample()];
    let synth = dir.path().join("synth.pcap");
    run_ok(
        &[
            "synth",
            "-o",
            synth.to_str().unwrap(),
            "--packets",
            "20000",
            "--clients",
            "3000",
        ],
        b"",
    );
    inputs.push(synth);
    for f in corpus_captures() {
        if !refused(&f) {
            inputs.push(f);
        }
    }
    for (method, key) in [
        ("cryptopan", K32),
        ("ipcrypt-pfx", K32),
        ("tsa", K32),
        ("ipcipher", K16),
    ] {
        let margs = method_args(dir.path(), method, Some(key), None);
        // Every technique on the generated inputs; the corpus with Crypto-PAn.
        let n = if method == "cryptopan" {
            inputs.len()
        } else {
            2
        };
        for inp in &inputs[..n] {
            let mut outs = Vec::new();
            for t in ["1", "2", "3", "8"] {
                let out = dir.path().join(format!("t{t}.out"));
                let mut a: Vec<String> = vec![
                    "wash".into(),
                    inp.display().to_string(),
                    "-o".into(),
                    out.display().to_string(),
                    "--threads".into(),
                    t.into(),
                    "-q".into(),
                ];
                a.extend(margs.iter().cloned());
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                let o = run(&a, b"");
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    o.status.code() == Some(0)
                        || (o.status.code() == Some(1) && err.contains("truncated record")),
                    "{}: {err}",
                    inp.display()
                );
                outs.push(std::fs::read(&out).unwrap());
            }
            for o in &outs[1..] {
                assert!(
                    o == &outs[0],
                    "{method} {}: output differs between thread counts",
                    inp.display()
                );
            }
        }
    }
}

/// Number of records in a classic pcap, counted independently.
fn pcap_records(data: &[u8]) -> Option<usize> {
    if data.len() < 24 || data[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let mut at = 24;
    let mut n = 0;
    while at < data.len() {
        let h = data.get(at..at + 16)?;
        let cap = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        at += 16 + cap;
        if at > data.len() {
            return None;
        }
        n += 1;
    }
    Some(n)
}

#[test]
fn cut_inputs_keep_every_complete_packet() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(sample()).unwrap();
    let k = key_file(dir.path(), "k", K32);
    // Record boundaries of the sample.
    let mut bounds = vec![24usize];
    let mut at = 24;
    while at < data.len() {
        let cap = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + cap;
        bounds.push(at);
    }
    let mut cuts: Vec<usize> = bounds.clone();
    let mut x = 12345u64;
    for _ in 0..40 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        cuts.push(24 + (x >> 33) as usize % (data.len() - 24));
    }
    cuts.extend([1, 5, 23]);
    // Stateless on one and two threads; stateful (its own path).
    for (method, threads) in [("cryptopan", "1"), ("cryptopan", "2"), ("enumerate", "2")] {
        for &cut in &cuts {
            let inp = dir.path().join("cut.pcap");
            std::fs::write(&inp, &data[..cut]).unwrap();
            let out = dir.path().join("cut.out");
            let _ = std::fs::remove_file(&out);
            let mut args = vec![
                "wash",
                inp.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--method",
                method,
                "--threads",
                threads,
                "-q",
            ];
            if method == "cryptopan" {
                args.extend(["--key-file", k.to_str().unwrap()]);
            }
            let o = run(&args, b"");
            let complete = bounds
                .iter()
                .filter(|&&b| b <= cut)
                .count()
                .saturating_sub(1);
            let err = String::from_utf8_lossy(&o.stderr);
            if cut < 24 {
                assert_eq!(o.status.code(), Some(1), "cut {cut}: {err}");
                continue;
            }
            if bounds.contains(&cut) {
                assert_eq!(o.status.code(), Some(0), "cut {cut} at a boundary: {err}");
            } else {
                assert_eq!(o.status.code(), Some(1), "cut {cut}: {err}");
                assert!(
                    err.contains("at byte") && err.contains("record"),
                    "cut {cut}: error names the record and byte offset: {err}"
                );
                assert!(
                    err.contains("cut.pcap"),
                    "cut {cut}: error names the file: {err}"
                );
            }
            let written = std::fs::read(&out).expect("output exists");
            // Every complete packet except the dropped LLDP frame (the last
            // one), and except frame 16, the first of two IPv4 fragments,
            // when the cut loses frame 17: an incomplete fragment group
            // cannot be checked for ECS and is dropped (fail closed).
            let lldp = usize::from(complete == bounds.len() - 1);
            let lone_fragment = usize::from(complete == 16);
            assert_eq!(
                pcap_records(&written),
                Some(complete - lldp - lone_fragment),
                "cut {cut}"
            );
        }
    }
}

#[test]
fn garbage_empty_and_header_only_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let data = std::fs::read(sample()).unwrap();
    let mut x = 99u64;
    let mut garbage = Vec::new();
    for _ in 0..5000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        garbage.push((x >> 56) as u8);
    }
    // Garbage after a valid header: record lengths are nonsense.
    let mut hdr_garbage = data[..24].to_vec();
    hdr_garbage.extend_from_slice(&garbage);
    let cases: Vec<(&str, Vec<u8>, Option<i32>)> = vec![
        ("empty", vec![], Some(1)),
        ("garbage", garbage.clone(), Some(1)),
        ("header-only", data[..24].to_vec(), Some(0)),
        ("header+garbage", hdr_garbage, Some(1)),
        (
            "pcapng-magic-garbage",
            [&[0x0a, 0x0d, 0x0d, 0x0a][..], &garbage[..100]].concat(),
            Some(1),
        ),
    ];
    for (name, bytes, code) in cases {
        let inp = dir.path().join(name);
        std::fs::write(&inp, &bytes).unwrap();
        let out = dir.path().join(format!("{name}.out"));
        let o = run(
            &[
                "wash",
                inp.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--method",
                "cryptopan",
                "--key-file",
                k.to_str().unwrap(),
                "-q",
            ],
            b"",
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), code, "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        if code == Some(1) {
            assert!(err.contains(name), "{name}: names the file: {err}");
        }
        // Also through stdin.
        let o = run(
            &[
                "wash",
                "--method",
                "cryptopan",
                "--key-file",
                k.to_str().unwrap(),
                "-q",
            ],
            &bytes,
        );
        assert_eq!(o.status.code(), code, "{name} via stdin");
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    }
}

#[test]
fn usage_errors_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.pcap");
    let s = sample();
    for args in [
        vec![
            "wash",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
        ],
        vec![
            "wash",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "truncate",
            "--keep",
            "10.0.0.0/40",
        ],
        vec![
            "wash",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "truncate",
            "--state",
            "x.csv",
        ],
        vec![
            "wash",
            s.to_str().unwrap(),
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "truncate",
        ],
        vec![
            "wash",
            "-",
            "-",
            "-o",
            dir.path().to_str().unwrap(),
            "--method",
            "truncate",
        ],
        vec![
            "wash",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "nope",
        ],
    ] {
        let o = run(&args, b"");
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!out.exists(), "{args:?} wrote output");
    }
    // ipcrypt-deterministic cannot keep IPv4 at 4 bytes: refused for captures.
    let k = key_file(dir.path(), "k16", K16);
    let o = run(
        &[
            "wash",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "ipcrypt-deterministic",
            "--key-file",
            k.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ipcrypt-pfx"));
    assert!(!out.exists());
}

#[test]
fn stdin_stdout_pipe_and_compression_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let data = std::fs::read(sample()).unwrap();
    let ks = k.to_str().unwrap();
    let via_pipe = run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            ks,
            "-q",
        ],
        &data,
    );
    let file_out = dir.path().join("f.pcap");
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            file_out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            ks,
            "-q",
        ],
        b"",
    );
    assert_eq!(
        via_pipe,
        std::fs::read(&file_out).unwrap(),
        "stdin/stdout equals file to file"
    );
    // gzip and xz inputs come back in the same wrapping, with the same content.
    for (ext, tool) in [("gz", "gzip"), ("xz", "xz")] {
        let zin = dir.path().join(format!("s.pcap.{ext}"));
        let z = Command::new(tool).arg("-c").arg(sample()).output().unwrap();
        std::fs::write(&zin, z.stdout).unwrap();
        let zout = dir.path().join(format!("o.pcap.{ext}"));
        run_ok(
            &[
                "wash",
                zin.to_str().unwrap(),
                "-o",
                zout.to_str().unwrap(),
                "--method",
                "cryptopan",
                "--key-file",
                ks,
                "-q",
            ],
            b"",
        );
        let plain = Command::new(tool).arg("-dc").arg(&zout).output().unwrap();
        assert!(plain.status.success(), "{ext} output is {ext}");
        assert_eq!(plain.stdout, via_pipe, "{ext}");
        // Compressed stdin gives plain stdout.
        let zdata = std::fs::read(&zin).unwrap();
        let o = run_ok(
            &["wash", "-", "--method", "cryptopan", "--key-file", ks, "-q"],
            &zdata,
        );
        assert_eq!(o, via_pipe, "{ext} via stdin");
    }
}

#[test]
fn several_inputs_share_one_mapping_and_state_persists() {
    let dir = tempfile::tempdir().unwrap();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let a = dir.path().join("a.pcap");
    let b = dir.path().join("b.pcap");
    std::fs::copy(sample(), &a).unwrap();
    std::fs::copy(sample(), &b).unwrap();
    run_ok(
        &[
            "wash",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            outdir.to_str().unwrap(),
            "--method",
            "enumerate",
            "-q",
        ],
        b"",
    );
    let oa = std::fs::read(outdir.join("a.pcap")).unwrap();
    let ob = std::fs::read(outdir.join("b.pcap")).unwrap();
    assert_eq!(oa, ob, "the same input washes the same way in one run");
    // With --state, a second run continues the first one's numbering.
    let st = dir.path().join("st.csv");
    let o1 = dir.path().join("1.pcap");
    let o2 = dir.path().join("2.pcap");
    run_ok(
        &[
            "wash",
            a.to_str().unwrap(),
            "-o",
            o1.to_str().unwrap(),
            "--method",
            "enumerate",
            "--state",
            st.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    run_ok(
        &[
            "wash",
            b.to_str().unwrap(),
            "-o",
            o2.to_str().unwrap(),
            "--method",
            "enumerate",
            "--state",
            st.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    assert_eq!(std::fs::read(&o1).unwrap(), std::fs::read(&o2).unwrap());
    assert_eq!(std::fs::read(&o1).unwrap(), oa);
}

#[test]
fn scope_clients_keeps_servers_and_keep_prefix_keeps_networks() {
    if !have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let out = dir.path().join("c.pcap");
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "--scope",
            "clients",
            "-q",
        ],
        b"",
    );
    let server: Vec<IpAddr> = ["198.51.100.53", "2001:db8:53::53"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let clients: Vec<IpAddr> = ["192.0.2.10", "192.0.2.77", "2001:db8:c11e:17::10"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let pk = tshark(&out);
    let mut seen_server = 0;
    for p in &pk {
        for (f, list) in &p.addrs {
            for a in list {
                let a: IpAddr = a.parse().unwrap();
                assert!(!clients.contains(&a), "{f}: client {a} survived");
                if server.contains(&a) {
                    seen_server += 1;
                }
            }
        }
    }
    assert!(seen_server >= 10, "server addresses kept ({seen_server})");
    // ARP is not DNS: every address rewritten even under --scope clients.
    let arp: Vec<&Pkt> = pk.iter().filter(|p| !p.addrs[4].1.is_empty()).collect();
    assert_eq!(arp.len(), 2);
    for p in arp {
        for a in p.addrs[4].1.iter().chain(&p.addrs[5].1) {
            assert!(!server.contains(&a.parse().unwrap()), "ARP kept {a}");
        }
    }
    // --keep leaves one network as it is.
    let out2 = dir.path().join("k.pcap");
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            out2.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "--keep",
            "198.51.100.0/24",
            "-q",
        ],
        b"",
    );
    let kept = tshark(&out2)
        .iter()
        .flat_map(|p| {
            p.addrs[0]
                .1
                .iter()
                .chain(&p.addrs[1].1)
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|a| a == "198.51.100.53")
        .count();
    assert!(kept >= 10, "kept {kept}");
}

#[test]
fn unparsed_pass_writes_the_frame_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let sj = dir.path().join("s.json");
    let out = dir.path().join("p.pcap");
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "--unparsed",
            "pass",
            "--stats-json",
            sj.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    let s = stats_json(&sj);
    assert_eq!(s["packets_dropped"], 0);
    assert_eq!(s["packets_written"], s["packets_read"]);
    let data = std::fs::read(&out).unwrap();
    assert_eq!(pcap_records(&data), Some(20));
    let orig = std::fs::read(sample()).unwrap();
    // The LLDP frame is last and identical.
    assert!(orig.ends_with(&data[data.len() - 25..]));
    // Default: dropped and counted by reason.
    run_ok(
        &[
            "wash",
            sample().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "--stats-json",
            sj.to_str().unwrap(),
            "-q",
        ],
        b"",
    );
    let s = stats_json(&sj);
    assert_eq!(s["packets_dropped"], 1);
    assert_eq!(
        s["dropped_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        1
    );
}

/// dnswasher's default mode and ours with `--numbering dnswasher --scope
/// clients` assign the same client addresses; `-k` and ipcipher likewise.
#[test]
fn dnswasher_compatibility() {
    if !have_tool("dnswasher") || !have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A UDP-DNS-only capture: the synthetic one (IPv4 and IPv6 clients).
    let inp = dir.path().join("udp.pcap");
    run_ok(
        &[
            "synth",
            "-o",
            inp.to_str().unwrap(),
            "--packets",
            "4000",
            "--clients",
            "500",
        ],
        b"",
    );
    let mut inputs = vec![inp];
    if let Some(c) = corpus() {
        inputs.push(c.join("pcap/oarc-dnscap__dns.pcap"));
    }
    let k = key_file(dir.path(), "k16", K16);
    use std::io::Write as _;
    let b64 = {
        // base64 of the 16 key bytes, for dnswasher -k.
        let bytes: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&K16[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let t = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in bytes.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(t[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    };
    let _ = std::io::stderr().flush();
    for inp in &inputs {
        for (ours, theirs) in [
            (
                vec!["--method", "enumerate", "--numbering", "dnswasher"],
                vec![],
            ),
            (
                vec!["--method", "ipcipher", "--key-file", k.to_str().unwrap()],
                vec!["-k", b64.as_str()],
            ),
        ] {
            let dw = dir.path().join("dw.pcap");
            let st = Command::new("dnswasher")
                .args(&theirs)
                .arg(inp)
                .arg(&dw)
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "dnswasher: {}",
                String::from_utf8_lossy(&st.stderr)
            );
            let iw = dir.path().join("iw.pcap");
            let mut a = vec![
                "wash",
                inp.to_str().unwrap(),
                "-o",
                iw.to_str().unwrap(),
                "--scope",
                "clients",
                // dnswasher rewrites IP addresses only.
                "--reverse-names",
                "keep",
                "--edns",
                "keep",
                "-q",
            ];
            a.extend(&ours);
            run_ok(&a, b"");
            let pd = tshark(&dw);
            let pi = tshark(&iw);
            let p0 = tshark(inp);
            // dnswasher keeps only DNS packets; align ours to its output.
            let pairs = align(&pi, &pd);
            assert!(pairs.len() > 50, "{} packets compared", pairs.len());
            let orig = align(&p0, &pi);
            assert_eq!(orig.len(), pi.len());
            let mut stale = 0;
            for (i, j) in pairs {
                let i0 = orig[i].0;
                for (f, name) in ADDR_FIELDS.iter().enumerate().take(4) {
                    assert_eq!(
                        pi[i].addrs[f].1,
                        pd[j].addrs[f].1,
                        "{} {ours:?} packet {}: {name}",
                        inp.display(),
                        j + 1,
                    );
                }
                // Where dnswasher leaves a stale UDP checksum, ours stays valid.
                let good_before = p0[i0].cks[1].iter().all(|c| c != "0");
                if good_before {
                    assert!(
                        pi[i].cks[1].iter().all(|c| c != "0"),
                        "our UDP checksum stays valid"
                    );
                    if pd[j].cks[1].iter().any(|c| c == "0") {
                        stale += 1;
                    }
                }
            }
            if ours[1] == "enumerate" {
                eprintln!(
                    "{}: dnswasher left {stale} stale UDP checksums",
                    inp.display()
                );
            }
        }
    }
}

/// `-o` naming a FIFO (or a device such as /dev/null) writes into it: a
/// temporary file renamed over it would replace the node itself.
#[test]
fn output_to_a_fifo_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let fifo = dir.path().join("out.fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    let wash_to = |out: &Path| {
        run(
            &[
                "wash",
                sample().to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--method",
                "cryptopan",
                "--key-file",
                k.to_str().unwrap(),
                "-q",
            ],
            b"",
        )
    };
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).expect("read fifo"))
    };
    let o = wash_to(&fifo);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = reader.join().unwrap();
    // The same bytes as washing into a regular file.
    let file = dir.path().join("out.pcap");
    assert_eq!(wash_to(&file).status.code(), Some(0));
    assert_eq!(got, std::fs::read(&file).unwrap());
    use std::os::unix::fs::FileTypeExt;
    let ft = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(ft.is_fifo(), "the FIFO must still be a FIFO");
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ipwash"))
        .collect();
    assert!(stray.is_empty(), "no temporary file left: {stray:?}");
}
