//! dnstap from a real server, read back by independent decoders.
//!
//! Debian's Knot DNS (`knotd` with the dnstap module) and BIND (`named`,
//! whose Debian build has dnstap) each serve a small zone on loopback,
//! `dig` queries it from several loopback addresses (with and without EDNS
//! Client Subnet, over UDP and TCP, with a large response),
//! and the dnstap file the server wrote is washed with Crypto-PAn. Both the
//! original and the washed file are dumped with `dnstap-ldns -y` and the Go
//! `dnstap -y`. The expected washed dump is made from the original dump:
//! every address replaced by what `ipwash map` gives for it, every ECS
//! prefix by the mapped prefix, identity and version emptied. It must equal
//! the washed dump line for line, so message count, types and every other
//! value are unchanged.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipwash::wash::mask_ip;

const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 127.0.0.1
www A 192.0.2.10
www AAAA 2001:db8::10
";

/// A port in `range` (inside 15400-15449) free on 127.0.0.1 and ::1, UDP
/// and TCP. Each server test has its own range, so tests running at the
/// same time do not pick the same port.
fn free_port(mut range: std::ops::Range<u16>) -> u16 {
    range
        .find(|&p| {
            UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && TcpListener::bind(("127.0.0.1", p)).is_ok()
                && UdpSocket::bind(("::1", p)).is_ok()
                && TcpListener::bind(("::1", p)).is_ok()
        })
        .expect("no free port")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dig(port: u16, args: &[&str]) -> String {
    let p = port.to_string();
    let o = Command::new("dig")
        .args(["-p", &p, "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn zone_file(dir: &Path) {
    let big: String = (0..12)
        .map(|i| {
            format!(
                " \"{}\"",
                std::iter::repeat_n((b'a' + i) as char, 250).collect::<String>()
            )
        })
        .collect();
    std::fs::write(
        dir.join("example.test.zone"),
        format!("{ZONE}big TXT{big}\n"),
    )
    .unwrap();
}

/// Start knotd with the dnstap module writing `out.tap`, send the queries,
/// stop it.
fn capture_knot(dir: &Path) -> std::path::PathBuf {
    let port = free_port(15400..15425);
    zone_file(dir);
    let d = dir.display();
    let conf = format!(
        "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n    listen: ::1@{port}\n\
         control:\n    listen: {d}/knot.sock\n\
         database:\n    storage: {d}\n\
         mod-dnstap:\n  - id: tap\n    sink: {d}/out.tap\n    log-queries: on\n    log-responses: on\n\
         template:\n  - id: default\n    storage: {d}\n    global-module: mod-dnstap/tap\n\
         zone:\n  - domain: example.test\n    file: {d}/example.test.zone\n"
    );
    let conf_path = dir.join("knot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new("knotd");
    cmd.arg("-c").arg(&conf_path);
    serve_and_query(dir, port, cmd);
    dir.join("out.tap")
}

/// Start BIND's named with dnstap written to `named.tap`, send the
/// queries, stop it.
fn capture_bind(dir: &Path) -> std::path::PathBuf {
    let port = free_port(15425..15450);
    zone_file(dir);
    let d = dir.display();
    let conf = format!(
        "options {{\n directory \"{d}\";\n pid-file \"{d}/named.pid\";\n\
         listen-on port {port} {{ 127.0.0.1; }};\n listen-on-v6 port {port} {{ ::1; }};\n\
         recursion no;\n dnstap {{ all; }};\n dnstap-output file \"{d}/named.tap\";\n\
         dnstap-identity \"ns1.example.test\";\n dnstap-version \"bind\";\n}};\n\
         controls {{ }};\n\
         zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; }};\n"
    );
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new("named");
    cmd.arg("-g").arg("-c").arg(&conf_path);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        cmd.args(["-u", "root"]);
    }
    serve_and_query(dir, port, cmd);
    dir.join("named.tap")
}

/// Run the server, wait until it answers, send the queries, stop it with
/// SIGTERM (which lets it close the dnstap file with its STOP frame).
fn serve_and_query(dir: &Path, port: u16, mut cmd: Command) {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the server");
    let mut server = Server(child);
    let t0 = Instant::now();
    while !dig(port, &["@127.0.0.1", "+short", "ns1.example.test"]).contains("127.0.0.1") {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not answer: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let queries: &[&[&str]] = &[
        &["@127.0.0.1", "-b", "127.0.0.2", "www.example.test", "A"],
        &[
            "@127.0.0.1",
            "-b",
            "127.0.0.3",
            "+subnet=198.51.100.0/24",
            "www.example.test",
            "AAAA",
        ],
        &[
            "@127.0.0.1",
            "-b",
            "127.0.0.4",
            "+tcp",
            "big.example.test",
            "TXT",
        ],
        &[
            "@127.0.0.1",
            "-b",
            "127.0.0.5",
            "+subnet=2001:db8:1234::/48",
            "www.example.test",
        ],
        &[
            "@127.0.0.1",
            "-b",
            "127.0.0.6",
            "+subnet=0.0.0.0/0",
            "nothere.example.test",
        ],
        &["@::1", "-b", "::1", "www.example.test", "AAAA"],
        &[
            "@::1",
            "-b",
            "::1",
            "+tcp",
            "+subnet=203.0.113.77/32",
            "www.example.test",
            "A",
        ],
        &[
            "@127.0.0.1",
            "-b",
            "127.0.0.2",
            "+subnet=192.0.2.0/20",
            "big.example.test",
            "TXT",
        ],
    ];
    for q in queries {
        let out = dig(port, q);
        assert!(out.contains("status:"), "dig {q:?} got no answer:\n{out}");
    }
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t0 = Instant::now();
    while server.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dump(tool: &str, file: &Path) -> String {
    let o = Command::new(tool)
        .arg("-r")
        .arg(file)
        .arg("-y")
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(o.status.success(), "{tool} failed on {}", file.display());
    String::from_utf8(o.stdout).unwrap()
}

/// The value after `key: ` on a dump line, without quotes.
fn value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.trim_start()
        .strip_prefix(key)
        .map(|v| v.trim().trim_matches('"'))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Every address and ECS network in the dumps, to be mapped.
fn collect(dumps: &[&str], addrs: &mut Vec<IpAddr>) {
    for d in dumps {
        for line in d.lines() {
            for key in ["query_address:", "response_address:"] {
                if let Some(v) = value(line, key) {
                    addrs.push(v.parse().unwrap());
                }
            }
            if let Some(v) = value(line, "; SUBNET:") {
                let mut it = v.split('/');
                let a = it.next().unwrap().trim_matches(|c| c == '[' || c == ']');
                let a: IpAddr = a.parse().unwrap_or_else(|_| panic!("{line}"));
                let len: u8 = it.next().unwrap().parse().unwrap();
                addrs.push(mask_ip(a, len));
            }
            if let Some(v) = value(line, ";; Data: \\#") {
                let rd = unhex(v.split_whitespace().nth(1).unwrap_or(""));
                for (fam, len, a) in ecs_options(&rd) {
                    addrs.push(mask_ip(addr_of(fam, &a), len));
                }
            }
        }
    }
}

fn addr_of(fam: u16, b: &[u8]) -> IpAddr {
    let mut x = [0u8; 16];
    x[..b.len()].copy_from_slice(b);
    if fam == 1 {
        IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(x))
    }
}

/// (family, source prefix, address bytes) of each ECS option in OPT RDATA.
fn ecs_options(rd: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at + 4 <= rd.len() {
        let code = u16::from_be_bytes([rd[at], rd[at + 1]]);
        let len = u16::from_be_bytes([rd[at + 2], rd[at + 3]]) as usize;
        let data = &rd[at + 4..at + 4 + len];
        if code == 8 {
            v.push((
                u16::from_be_bytes([data[0], data[1]]),
                data[2],
                data[4..].to_vec(),
            ));
        }
        at += 4 + len;
    }
    v
}

/// `ipwash map` over every address, one run.
fn map_all(addrs: &[IpAddr], key: &str) -> BTreeMap<IpAddr, IpAddr> {
    let input: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let out = common::run_ok(
        &["map", "--method", "cryptopan", "--key-file", key],
        input.as_bytes(),
    );
    let out = String::from_utf8(out).unwrap();
    addrs
        .iter()
        .zip(out.lines())
        .map(|(a, m)| (*a, m.trim().parse().unwrap()))
        .collect()
}

/// The original dump with the washing applied by hand.
fn expected(orig: &str, map: &BTreeMap<IpAddr, IpAddr>) -> String {
    let mut out = String::new();
    for line in orig.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut new = line.to_string();
        if value(line, "identity:").is_some() && indent.is_empty() {
            new = "identity: \"\"".into();
        } else if value(line, "version:").is_some() && indent.is_empty() {
            new = "version: \"\"".into();
        }
        for key in ["query_address:", "response_address:"] {
            if let Some(v) = value(line, key) {
                let a: IpAddr = v.parse().unwrap();
                new = line.replace(v, &map[&a].to_string());
            }
        }
        if let Some(v) = value(line, "; SUBNET:") {
            let parts: Vec<&str> = v.split('/').collect();
            // The Go tool writes IPv6 networks in brackets.
            let a: IpAddr = parts[0]
                .trim_matches(|c| c == '[' || c == ']')
                .parse()
                .unwrap();
            let len: u8 = parts[1].parse().unwrap();
            let m = mask_ip(map[&mask_ip(a, len)], len);
            let m = if parts[0].starts_with('[') {
                format!("[{m}]")
            } else {
                m.to_string()
            };
            new = format!("{indent}; SUBNET: {m}/{}/{}", parts[1], parts[2]);
        }
        if let Some(v) = value(line, ";; Data: \\#") {
            let h = v.split_whitespace().nth(1).unwrap_or("");
            let mut rd = unhex(h);
            let mut at = 0;
            while at + 4 <= rd.len() {
                let code = u16::from_be_bytes([rd[at], rd[at + 1]]);
                let len = u16::from_be_bytes([rd[at + 2], rd[at + 3]]) as usize;
                if code == 8 {
                    let d = at + 4;
                    let (fam, bits) = (u16::from_be_bytes([rd[d], rd[d + 1]]), rd[d + 2]);
                    let a = addr_of(fam, &rd[d + 4..d + len]);
                    let m = mask_ip(map[&mask_ip(a, bits)], bits);
                    let mb = match m {
                        IpAddr::V4(x) => x.octets().to_vec(),
                        IpAddr::V6(x) => x.octets().to_vec(),
                    };
                    let n = len - 4;
                    rd[d + 4..d + len].copy_from_slice(&mb[..n]);
                }
                at += 4 + len;
            }
            new = line.replace(h, &hex(&rd));
        }
        out.push_str(&new);
        out.push('\n');
    }
    out
}

fn assert_same(tool: &str, want: &str, got: &str) {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for (i, (a, b)) in w.iter().zip(&g).enumerate() {
        assert_eq!(a, b, "{tool}: line {} differs", i + 1);
    }
    assert_eq!(w.len(), g.len(), "{tool}: line counts differ");
}

#[test]
fn knot_dnstap_washed_and_read_back() {
    for t in ["knotd", "dig", "dnstap-ldns", "dnstap"] {
        if !common::have_tool(t) {
            return;
        }
    }
    let module = Command::new("sh")
        .args(["-c", "ls /usr/lib/*/knot/modules-*/dnstap.so"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !module {
        assert!(
            std::env::var_os("IPWASH_REQUIRE_TOOLS").is_none(),
            "knot-module-dnstap is required (IPWASH_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("note: knot-module-dnstap not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tap = capture_knot(dir.path());
    check(dir.path(), &tap);
}

#[test]
fn bind_dnstap_washed_and_read_back() {
    for t in ["named", "dig", "dnstap-ldns", "dnstap"] {
        if !common::have_tool(t) {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let tap = capture_bind(dir.path());
    check(dir.path(), &tap);
}

/// Wash `orig` and compare the decoders' dumps (see the module notes).
fn check(dir: &Path, orig: &Path) {
    let tap = std::fs::read(orig).expect("the server wrote no dnstap file");
    let dir = tempfile::TempDir::new_in(dir).unwrap();
    let washed = dir.path().join("washed.tap");
    let key = common::root().join("testdata/sample.key");
    let k = key.to_str().unwrap();
    common::run_ok(
        &[
            "wash",
            orig.to_str().unwrap(),
            "-o",
            washed.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k,
            // The dump washed by hand below maps addresses only; EDNS
            // identifiers in dnstap are tested in tests/privacy_options.rs.
            "--edns",
            "keep",
            "-q",
        ],
        b"",
    );
    // stdin to stdout gives the same bytes.
    let piped = common::run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "--edns",
            "keep",
            "-q",
        ],
        &tap,
    );
    assert!(piped == std::fs::read(&washed).unwrap());

    let ldns = (dump("dnstap-ldns", orig), dump("dnstap-ldns", &washed));
    let go = (dump("dnstap", orig), dump("dnstap", &washed));
    let messages = go.0.lines().filter(|l| *l == "type: MESSAGE").count();
    // The readiness probe(s) plus 8 queries, each logged as query and response.
    assert!(messages >= 18, "only {messages} messages:\n{}", go.0);
    assert!(go.0.contains("; SUBNET: 198.51.100.0/24/0"), "ECS logged");
    assert!(go.0.contains("query_address: ::1"), "IPv6 client logged");
    assert!(go.0.contains("socket_protocol: TCP"));

    let mut addrs = Vec::new();
    collect(&[&ldns.0, &go.0], &mut addrs);
    addrs.sort();
    addrs.dedup();
    let map = map_all(&addrs, k);
    assert!(
        map.iter().all(|(a, m)| a != m),
        "every address changes under Crypto-PAn"
    );
    assert_same("dnstap-ldns", &expected(&ldns.0, &map), &ldns.1);
    assert_same("dnstap", &expected(&go.0, &map), &go.1);
    for a in addrs.iter().filter(|a| !a.is_unspecified()) {
        assert!(
            !go.1.contains(&format!("address: {a}\n")),
            "{a} still in the washed dump"
        );
    }

    // Bloom filters from the same file: the client queries are there.
    let filters = dir.path().join("filters");
    let o = common::run(
        &[
            "bloom",
            "build",
            orig.to_str().unwrap(),
            "-o",
            filters.to_str().unwrap(),
            "--key-file",
            k,
            "--period",
            "86400",
            "--min-clients",
            "1",
            "--expected-items",
            "1000",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f: Vec<String> = std::fs::read_dir(&filters)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".bloom"))
        .collect();
    let mut args = vec!["bloom", "query", "--key-file", k];
    args.extend(f.iter().map(String::as_str));
    args.extend(["--name", "big.example.test"]);
    let out = String::from_utf8(common::run_ok(&args, b"")).unwrap();
    assert!(out.contains("present"), "{out}");
}
