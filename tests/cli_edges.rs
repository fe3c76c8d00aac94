//! What a new user meets first, on the real binary: IPv4-mapped addresses,
//! the dropped-packet file, messages for bad inputs, keys and state files,
//! the Bloom query options and `--stats-json -`.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn sample() -> PathBuf {
    root().join("testdata/sample-dns.pcap")
}

fn sample_key() -> String {
    root().join("testdata/sample.key").display().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Key arguments for a method (sample key, cut to 16 bytes where needed).
fn key_args(dir: &Path, method: &str) -> Vec<String> {
    let hex = std::fs::read_to_string(root().join("testdata/sample.key")).unwrap();
    let hex = hex.trim();
    match method {
        "truncate" | "enumerate" => vec![],
        "ipcipher" | "ipcrypt-deterministic" => {
            let k = key_file(dir, "k16", &hex[..32]);
            vec!["--key-file".into(), k.display().to_string()]
        }
        _ => vec!["--key-file".into(), sample_key()],
    }
}

fn map(dir: &Path, method: &str, extra: &[&str], input: &str) -> Vec<String> {
    let mut args: Vec<String> = vec!["map".into(), "--method".into(), method.into()];
    args.extend(key_args(dir, method));
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8(run_ok(&a, input.as_bytes()))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

const V4_METHODS: [&str; 7] = [
    "truncate",
    "enumerate",
    "prefix-map",
    "cryptopan",
    "tsa",
    "ipcipher",
    "ipcrypt-pfx",
];

#[test]
fn mapped_addresses_follow_the_ipv4_rule_in_every_method() {
    let dir = tempfile::tempdir().unwrap();
    for m in V4_METHODS {
        // In either order of first appearance, in one run.
        for input in [
            "192.0.2.1\n::ffff:192.0.2.1\n198.51.100.7\n",
            "::ffff:192.0.2.1\n192.0.2.1\n198.51.100.7\n",
        ] {
            let out = map(dir.path(), m, &[], input);
            let (v4, mapped) = if input.starts_with("::") {
                (&out[1], &out[0])
            } else {
                (&out[0], &out[1])
            };
            let v4: Ipv4Addr = v4.parse().unwrap_or_else(|_| panic!("{m}: {v4}"));
            let mapped: Ipv6Addr = mapped.parse().unwrap();
            assert_eq!(mapped, v4.to_ipv6_mapped(), "{m}: {out:?}");
        }
        // The mapped form stays mapped.
        let out = map(dir.path(), m, &[], "::ffff:203.0.113.9\n");
        assert!(out[0].starts_with("::ffff:"), "{m}: {out:?}");
    }
    // Reversible techniques invert the mapped form by the same rule.
    for m in ["cryptopan", "tsa", "ipcipher", "ipcrypt-pfx"] {
        let washed = map(dir.path(), m, &[], "::ffff:192.0.2.1\n");
        let back = map(dir.path(), m, &["--reverse"], &format!("{}\n", washed[0]));
        assert_eq!(
            back[0].parse::<IpAddr>().unwrap(),
            "::ffff:192.0.2.1".parse::<IpAddr>().unwrap(),
            "{m}"
        );
        let nat = map(dir.path(), m, &["--mapped", "native"], "::ffff:192.0.2.1\n");
        let back = map(
            dir.path(),
            m,
            &["--mapped", "native", "--reverse"],
            &format!("{}\n", nat[0]),
        );
        assert_eq!(
            back[0].parse::<IpAddr>().unwrap(),
            "::ffff:192.0.2.1".parse::<IpAddr>().unwrap(),
            "{m} native"
        );
    }
    // `--mapped native`: the 128-bit treatment. The published Crypto-PAn
    // vector for ::ffff:192.0.2.1 (reference key) holds under it.
    let (h, rows) = vectors("cryptopan/ipv6_refkey_200.csv");
    let row = rows
        .iter()
        .find(|r| r[col(&h, "input")] == "::ffff:192.0.2.1")
        .expect("the mapped vector");
    let k = key_file(dir.path(), "ref.key", &row[col(&h, "key_hex")]);
    let args = |extra: &[&'static str]| {
        let mut a = vec!["map", "--method", "cryptopan", "--key-file", s(&k)];
        a.extend_from_slice(extra);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let run_map = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        String::from_utf8(run_ok(&a, b"::ffff:192.0.2.1\n192.0.2.1\n")).unwrap()
    };
    let native = run_map(args(&["--mapped", "native"]));
    let want: IpAddr = row[col(&h, "output")].parse().unwrap();
    assert_eq!(
        native.lines().next().unwrap().parse::<IpAddr>().unwrap(),
        want
    );
    let default = run_map(args(&[]));
    let l: Vec<&str> = default.lines().collect();
    let v4: Ipv4Addr = l[1].parse().unwrap();
    assert_eq!(l[0].parse::<Ipv6Addr>().unwrap(), v4.to_ipv6_mapped());
    assert_ne!(l[0].parse::<IpAddr>().unwrap(), want);
}

/// A classic pcap (microseconds, Ethernet) of the given frames.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, fr) in frames.iter().enumerate() {
        f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&(1000 * i as u32).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(fr);
    }
    f
}

fn dns_query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    q
}

fn udp4(src: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, [192, 0, 2, 53], 64)
        .udp(40000, 53)
        .write(&mut v, &dns_query())
        .unwrap();
    v
}

fn udp6(src: [u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    let dst: Ipv6Addr = "2001:db8::53".parse().unwrap();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv6(src, dst.octets(), 64)
        .udp(40000, 53)
        .write(&mut v, &dns_query())
        .unwrap();
    v
}

/// Source addresses of every packet of a classic pcap written by ipwash.
fn sources(data: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let fr = &data[at + 16..at + 16 + caplen];
        let p = etherparse::SlicedPacket::from_ethernet(fr).unwrap();
        out.push(match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(h) => IpAddr::V4(h.header().source_addr()),
            etherparse::NetSlice::Ipv6(h) => IpAddr::V6(h.header().source_addr()),
            _ => panic!("not IP"),
        });
        at += 16 + caplen;
    }
    out
}

#[test]
fn mapped_addresses_in_captures_agree_with_ipv4() {
    let dir = tempfile::tempdir().unwrap();
    let m: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
    let input = dir.path().join("dual.pcap");
    std::fs::write(&input, pcap(&[udp4([192, 0, 2, 1]), udp6(m.octets())])).unwrap();
    for meth in ["cryptopan", "ipcrypt-pfx", "truncate", "enumerate"] {
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("{meth}-{threads}.pcap"));
            let mut a = vec![
                "wash".to_string(),
                s(&input).into(),
                "-o".into(),
                s(&out).into(),
            ];
            a.extend([
                "--method".into(),
                meth.into(),
                "--threads".into(),
                threads.into(),
                "-q".into(),
            ]);
            a.extend(key_args(dir.path(), meth));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run_ok(&a, b"");
            let src = sources(&std::fs::read(&out).unwrap());
            let (IpAddr::V4(v4), IpAddr::V6(v6)) = (src[0], src[1]) else {
                panic!("{src:?}")
            };
            assert_eq!(v6, v4.to_ipv6_mapped(), "{meth}");
            if meth != "truncate" {
                assert_ne!(v4, Ipv4Addr::new(192, 0, 2, 1), "{meth}");
            }
        }
    }
}

/// (timestamp in microseconds, packet bytes, comment) of every packet of
/// a pcapng file written by `--dropped`.
fn pcapng_packets(data: &[u8]) -> Vec<(u64, Vec<u8>, String)> {
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapReaderIterator;
    let mut rd = pcap_parser::PcapNGReader::new(1 << 20, data).unwrap();
    let mut out = Vec::new();
    loop {
        match rd.next() {
            Ok((off, b)) => {
                if let pcap_parser::PcapBlockOwned::NG(Block::EnhancedPacket(e)) = &b {
                    let ts = (u64::from(e.ts_high) << 32) | u64::from(e.ts_low);
                    let comment = e
                        .options
                        .iter()
                        .find(|o| o.code == pcap_parser::pcapng::OptionCode::Comment)
                        .map(|o| String::from_utf8_lossy(&o.value).to_string())
                        .unwrap_or_default();
                    out.push((ts, e.data[..e.caplen as usize].to_vec(), comment));
                }
                rd.consume(off);
            }
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => rd.refill().unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }
    out
}

#[test]
fn dropped_packets_are_written_unchanged_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Two good packets, a non-IP frame and a DNS-over-TCP segment that
    // cannot be parsed.
    let mut non_ip = vec![4u8; 6];
    non_ip.extend_from_slice(&[2; 6]);
    non_ip.extend_from_slice(&[0x88, 0xb5]);
    non_ip.extend_from_slice(b"local experimental ethertype");
    // DNS over TCP whose header claims a data offset below 20 bytes.
    // (Segments dropped at TCP reassembly are written as washed so far.)
    let mut cut = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([10, 0, 0, 9], [192, 0, 2, 53], 64)
        .tcp(40000, 53, 1, 1000)
        .write(&mut cut, &[1, 0, 0x12, 0x34, 1, 0])
        .unwrap();
    cut[14 + 20 + 12] = 0x40;
    let frames = vec![
        udp4([192, 0, 2, 1]),
        non_ip.clone(),
        cut.clone(),
        udp4([10, 1, 2, 3]),
    ];
    let input = dir.path().join("in.pcap");
    std::fs::write(&input, pcap(&frames)).unwrap();
    for threads in ["1", "2"] {
        let out = dir.path().join("out.pcap");
        let dropped = dir.path().join(format!("dropped-{threads}.pcapng"));
        let stats = dir.path().join("stats.json");
        let o = run(
            &[
                "wash",
                s(&input),
                "-o",
                s(&out),
                "--method",
                "cryptopan",
                "--key-file",
                &sample_key(),
                "--threads",
                threads,
                "--dropped",
                s(&dropped),
                "--stats-json",
                s(&stats),
            ],
            b"",
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("2 dropped packet(s) written unchanged"),
            "{}",
            stderr(&o)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dropped).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let pk = pcapng_packets(&std::fs::read(&dropped).unwrap());
        assert_eq!(pk.len() as u64, st["packets_dropped"].as_u64().unwrap());
        assert_eq!(pk.len(), 2);
        // Unchanged bytes, original timestamps (microseconds), reasons named
        // as in the statistics.
        assert_eq!(pk[0].1, non_ip);
        assert_eq!(pk[0].0, 1_700_000_001 * 1_000_000 + 1000);
        assert_eq!(pk[1].1, cut);
        assert_eq!(pk[1].0, 1_700_000_002 * 1_000_000 + 2000);
        for (_, _, c) in &pk {
            let reason = c
                .strip_prefix("ipwash dropped: ")
                .unwrap_or_else(|| panic!("{c}"));
            assert!(
                st["dropped_by_reason"][reason.trim_end_matches(char::from(0))].as_u64() >= Some(1),
                "{reason}: {st}"
            );
        }
        if have_tool("tshark") {
            let t = Command::new("tshark")
                .args([
                    "-r",
                    s(&dropped),
                    "-T",
                    "fields",
                    "-e",
                    "frame.comment",
                    "-e",
                    "eth.type",
                ])
                .output()
                .unwrap();
            assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
            let so = String::from_utf8_lossy(&t.stdout);
            assert_eq!(
                so.lines()
                    .filter(|l| l.starts_with("ipwash dropped: "))
                    .count(),
                2,
                "{so}"
            );
        }
    }
    // Corpus pcapng input with drops: every dropped packet accounted for.
    let Some(c) = corpus() else { return };
    let f = c.join("pcap/pcap-parser__wireshark_samples-test.pcapng");
    if f.is_file() {
        let dropped = dir.path().join("corpus-dropped.pcapng");
        let stats = dir.path().join("cstats.json");
        run_ok(
            &[
                "wash",
                s(&f),
                "-o",
                "/dev/null",
                "--method",
                "truncate",
                "--dropped",
                s(&dropped),
                "--stats-json",
                s(&stats),
                "-q",
            ],
            b"",
        );
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let pk = pcapng_packets(&std::fs::read(&dropped).unwrap());
        assert_eq!(pk.len() as u64, st["packets_dropped"].as_u64().unwrap());
    }
    // Not stdout, not the output.
    let o = run(
        &[
            "wash",
            s(&input),
            "-o",
            s(&dir.path().join("x.pcap")),
            "--method",
            "truncate",
            "--dropped",
            "-",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn input_key_and_state_errors_name_the_problem_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.pcap");
    // A missing input: named once, and no statistics line.
    let o = run(
        &["wash", "nosuch.pcap", "-o", s(&out), "--method", "truncate"],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.matches("nosuch.pcap").count(), 1, "{e}");
    assert!(!e.contains("packets read"), "{e}");
    // Binary key bytes: named as not hex text, nothing of the key shown.
    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, [0xffu8, 0x00, 0x9c, 0x80].repeat(8)).unwrap();
    let o = run(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&out),
            "--method",
            "cryptopan",
            "--key-file",
            s(&raw),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("is not hex text") && e.contains("raw 32-byte key"),
        "{e}"
    );
    assert!(!e.contains("UTF-8"), "{e}");
    // Empty and foreign state files.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let o = run(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&out),
            "--method",
            "enumerate",
            "--state",
            s(&empty),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is empty, not an ipwash state file"),
        "{}",
        stderr(&o)
    );
    let foreign = dir.path().join("foreign.csv");
    std::fs::write(&foreign, "name,value\nx,1\n").unwrap();
    let o = run(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&out),
            "--method",
            "enumerate",
            "--state",
            s(&foreign),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("is not an ipwash state file") && !e.contains("\"?\""),
        "{e}"
    );
    assert!(!out.exists(), "nothing written on a usage error");
}

#[test]
fn cdns_runs_print_no_packet_counters() {
    let Some(c) = corpus() else { return };
    let f = c.join("cdns/cdnsrdr-testdata/cdns_test_file.cdns");
    if !f.is_file() {
        return;
    }
    let o = run(
        &["wash", s(&f), "-o", "/dev/null", "--method", "truncate"],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("C-DNS blocks"), "{e}");
    assert!(!e.contains("packets read"), "{e}");
}

#[test]
fn stats_json_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.pcap");
    let so = run_ok(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&out),
            "--method",
            "truncate",
            "--stats-json",
            "-",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&so).unwrap();
    assert_eq!(v["packets_read"], 20);
    let o = run(
        &[
            "wash",
            s(&sample()),
            "-o",
            "-",
            "--method",
            "truncate",
            "--stats-json",
            "-",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stdin_on_a_terminal_is_announced() {
    // `script` (util-linux) runs the command on a pseudo-terminal.
    if !have_tool("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.pcap");
    let cmd = format!(
        "{} wash -o {} --method truncate",
        bin().display(),
        out.display()
    );
    let o = Command::new("timeout")
        .args(["5", "script", "-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &stderr(&o);
    assert!(
        text.contains("reading a capture from stdin (the terminal)"),
        "{text}"
    );
    // Not on a pipe.
    let o = run(
        &["wash", "-o", s(&out), "--method", "truncate", "-q"],
        &std::fs::read(sample()).unwrap(),
    );
    assert!(o.status.success());
    assert!(!stderr(&o).contains("terminal"), "{}", stderr(&o));
}

#[test]
fn bloom_keygen_query_entities_names_and_saturation() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bloom.key");
    run_ok(&["keygen", "--method", "bloom", "-o", s(&key)], b"");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    let ent = dir.path().join("ent.tsv");
    std::fs::write(&ent, "192.0.2.0/28\tcampus\n192.0.2.64/28\tlab\n").unwrap();
    let filters = dir.path().join("f");
    run_ok(
        &[
            "bloom",
            "build",
            s(&sample()),
            "-o",
            s(&filters),
            "--key-file",
            s(&key),
            "--period",
            "3600",
            "--min-clients",
            "1",
            "--expected-items",
            "1000",
            "--entities",
            s(&ent),
        ],
        b"",
    );
    let files: Vec<String> = std::fs::read_dir(&filters)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let q = |extra: &[&str]| {
        let mut a = vec!["bloom", "query", "--key-file", s(&key)];
        a.extend(files.iter().map(String::as_str));
        a.extend_from_slice(extra);
        run(&a, b"")
    };
    // Repeatable --entity: one answer per entity.
    let o = q(&[
        "--name",
        "example.com",
        "--entity",
        "campus",
        "--entity",
        "lab",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 * files.len());
    assert!(
        lines.iter().any(|l| l["entity"] == "campus") && lines.iter().any(|l| l["entity"] == "lab")
    );
    assert!(lines.iter().all(|l| l["saturated"] == false));
    // An unknown entity lists the known ones.
    let o = q(&["--name", "example.com", "--entity", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("\"nosuch\"") && e.contains("campus") && e.contains("lab"),
        "{e}"
    );
    // An empty name is refused.
    let o = q(&["--name", ""]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty name"), "{}", stderr(&o));
    // A saturated filter: a warning, and "saturated": true.
    let sat = dir.path().join("sat");
    run_ok(
        &[
            "bloom",
            "build",
            s(&sample()),
            "-o",
            s(&sat),
            "--key-file",
            s(&key),
            "--period",
            "3600",
            "--min-clients",
            "1",
            "--expected-items",
            "1",
            "--fp-rate",
            "0.001",
        ],
        b"",
    );
    let sfiles: Vec<String> = std::fs::read_dir(&sat)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let info = run_ok(&["bloom", "info", "--json", &sfiles[0]], b"");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["saturated"], true, "{info}");
    let mut a = vec![
        "bloom",
        "query",
        "--key-file",
        s(&key),
        &sfiles[0],
        "--name",
        "example.com",
    ];
    let o = run(&a, b"");
    assert!(o.status.success());
    assert!(stderr(&o).contains("is saturated"), "{}", stderr(&o));
    a.push("--json");
    let o = run(&a, b"");
    let v: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(v["saturated"], true);
    // The build help names its inputs, C-DNS included.
    let h = String::from_utf8(run_ok(&["bloom", "build", "--help"], b"")).unwrap();
    assert!(h.contains("C-DNS"), "{h}");
}
