//! `ipwash text` and `ipwash map --on-error` from the command line: the
//! same key gives the same pseudonyms in captures and logs, stateful
//! techniques share `--state` with `wash`, inputs and outputs, pipes.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{root, run, run_ok};

/// Source and destination addresses of every IP packet of a classic
/// little-endian Ethernet pcap, in order.
fn pcap_addrs(p: &Path) -> Vec<IpAddr> {
    let d = fs::read(p).unwrap();
    assert_eq!(
        &d[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian pcap expected"
    );
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[i + 8..i + 12].try_into().unwrap()) as usize;
        let pkt = &d[i + 16..i + 16 + incl];
        i += 16 + incl;
        match etherparse::SlicedPacket::from_ethernet(pkt)
            .ok()
            .and_then(|s| s.net)
        {
            Some(etherparse::NetSlice::Ipv4(v4)) => {
                out.push(IpAddr::V4(v4.header().source_addr()));
                out.push(IpAddr::V4(v4.header().destination_addr()));
            }
            Some(etherparse::NetSlice::Ipv6(v6)) => {
                out.push(IpAddr::V6(v6.header().source_addr()));
                out.push(IpAddr::V6(v6.header().destination_addr()));
            }
            _ => {}
        }
    }
    out
}

/// A BIND-style query log line for a client and a server.
fn bind_line(client: IpAddr, server: IpAddr) -> String {
    format!(
        "01-Dec-2026 23:00:00.000 queries: info: client @0x7f00 {client}#53001 (x.example): query: x.example IN A +E(0)K ({server})\n"
    )
}

fn check_agreement(dir: &Path, margs: &[&str], state: bool) {
    let pcap = root().join("testdata/sample-dns.pcap");
    let washed = dir.join("washed.pcap");
    let st = dir.join("state.csv");
    let mut wargs = vec![
        "wash",
        pcap.to_str().unwrap(),
        "-o",
        washed.to_str().unwrap(),
        "-q",
    ];
    wargs.extend_from_slice(margs);
    if state {
        wargs.extend(["--state", st.to_str().unwrap()]);
    }
    run_ok(&wargs, b"");
    let orig = pcap_addrs(&pcap);
    let new = pcap_addrs(&washed);
    assert_eq!(orig.len(), new.len());
    assert!(orig.len() >= 10, "sample has too few packets");
    let pairs: HashMap<IpAddr, IpAddr> = orig.iter().copied().zip(new.iter().copied()).collect();
    let mut log = String::new();
    let mut expected = String::new();
    for ch in orig.chunks(2) {
        log.push_str(&bind_line(ch[0], ch[1]));
        expected.push_str(&bind_line(pairs[&ch[0]], pairs[&ch[1]]));
    }
    let mut targs = vec!["text", "-q"];
    targs.extend_from_slice(margs);
    if state {
        targs.extend(["--state", st.to_str().unwrap()]);
    }
    let out = run_ok(&targs, log.as_bytes());
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn same_key_same_pseudonyms_in_wash_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let key = root().join("testdata/sample.key");
    check_agreement(
        dir.path(),
        &["--method", "cryptopan", "--key-file", key.to_str().unwrap()],
        false,
    );
    check_agreement(dir.path(), &["--method", "truncate"], false);
}

#[test]
fn stateful_techniques_share_state_with_wash() {
    let dir = tempfile::tempdir().unwrap();
    // The log is washed after the capture: with the state file the log's
    // addresses get the numbers the capture gave them.
    check_agreement(dir.path(), &["--method", "enumerate"], true);
    let st = fs::read_to_string(dir.path().join("state.csv")).unwrap();
    assert!(st.contains("pair,"), "{st}");
}

#[test]
fn map_on_error_policies() {
    let input = b"192.0.2.1\nnot an address\n2001:db8::1\n";
    let o = run(&["map", "--method", "truncate"], input);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(o.stdout, b"192.0.2.0\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"));
    let skip = run_ok(
        &["map", "--method", "truncate", "--on-error", "skip"],
        input,
    );
    assert_eq!(skip, b"192.0.2.0\n2001:db8::\n");
    let o = run(
        &["map", "--method", "truncate", "--on-error", "pass"],
        input,
    );
    assert!(o.status.success());
    assert_eq!(o.stdout, b"192.0.2.0\nnot an address\n2001:db8::\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("PASSED UNWASHED 1"));
    let mark = run_ok(
        &["map", "--method", "truncate", "--on-error", "mark"],
        input,
    );
    assert_eq!(mark, b"192.0.2.0\nipwash-unreadable\n2001:db8::\n");
}

#[test]
fn several_inputs_compressed_stats_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.log");
    fs::write(&a, "client 192.0.2.1#5353 ok\nno address\n").unwrap();
    let b = d.join("b.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"from [2001:db8::7]:53\n").unwrap();
    fs::write(&b, enc.finish().unwrap()).unwrap();
    let out = d.join("out");
    fs::create_dir(&out).unwrap();
    let stats = d.join("stats.json");
    run_ok(
        &[
            "text",
            "--method",
            "truncate",
            "-q",
            "-o",
            out.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        fs::read_to_string(out.join("a.log")).unwrap(),
        "client 192.0.2.0#5353 ok\nno address\n"
    );
    let gz = fs::read(out.join("b.log.gz")).unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
    assert_eq!(plain, "from [2001:db8::]:53\n");
    let s: serde_json::Value = serde_json::from_slice(&fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["lines_read"], 3);
    assert_eq!(s["addresses_washed"], 2);

    // A usage error leaves an existing output untouched.
    let keep = d.join("keep.csv");
    fs::write(&keep, "old").unwrap();
    let o = run(
        &[
            "text",
            "--method",
            "cryptopan",
            "-o",
            keep.to_str().unwrap(),
            a.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&keep).unwrap(), "old");

    // A data error: exit 1 naming the line, the lines before it written.
    let csv = d.join("in.csv");
    fs::write(&csv, "n,ip\n1,192.0.2.1\n2,oops\n3,192.0.2.3\n").unwrap();
    let o = run(
        &[
            "text",
            "--method",
            "truncate",
            "--format",
            "csv",
            "--field",
            "ip",
            "-q",
            "-o",
            keep.to_str().unwrap(),
            csv.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 3") && err.contains("oops"), "{err}");
    assert_eq!(fs::read_to_string(&keep).unwrap(), "n,ip\n1,192.0.2.0\n");
}

#[test]
fn a_pipe_is_washed_line_by_line() {
    let mut child = Command::new(common::bin())
        .args(["text", "--method", "truncate", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    let sout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(sout);
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            let _ = tx.send(l);
        }
    });
    // Longer than the opener's sniffing prefix, then silence: the line must
    // come out while stdin stays open.
    sin.write_all(b"query from 198.51.100.77#4096\n").unwrap();
    sin.flush().unwrap();
    let l = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("line not flushed");
    assert_eq!(l, "query from 198.51.100.0#4096\n");
    sin.write_all(b"and ::ffff:203.0.113.9\n").unwrap();
    sin.flush().unwrap();
    let l = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("line not flushed");
    assert_eq!(l, "and ::ffff:203.0.113.0\n");
    drop(sin);
    assert!(child.wait().unwrap().success());
}
