//! Real logs from real servers: BIND (named), Unbound and PowerDNS
//! Recursor run on loopback with query logging, `dig` asks them from
//! several loopback source addresses, and `ipwash text` washes the query
//! lines each server wrote. Every address (and reverse name) in each line
//! must be what `ipwash map` gives for it, every other byte unchanged: the
//! expected line is rebuilt here from the addresses the test itself used,
//! without the scanner.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";
const SOURCES: &[&str] = &["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"];
const ANSWER: &str = "192.0.2.5";

/// A free port on 127.0.0.1 and ::1, UDP and TCP, chosen now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let p = u.local_addr().expect("addr").port();
        let ok = TcpListener::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("::1", p)).is_ok()
            && TcpListener::bind(("::1", p)).is_ok();
        if ok {
            return p;
        }
    }
    panic!("no free port on loopback");
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server(Child);

impl Server {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dig(server: &str, port: u16, src: &str, args: &[&str]) -> bool {
    Command::new("dig")
        .args([&format!("@{server}"), "-p", &port.to_string(), "-b", src])
        .args(["+tries=1", "+time=2"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("status: NOERROR"))
        .unwrap_or(false)
}

fn wait_ready(port: u16, child: &mut Server, log: &Path) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if dig("127.0.0.1", port, "127.0.0.1", &["a.example.test", "A"]) {
            return;
        }
        if let Ok(Some(st)) = child.0.try_wait() {
            panic!(
                "server exited ({st}) before answering:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "server did not answer in 20 s:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// The queries: A, AAAA and a reverse lookup from every source address.
fn ask(port: u16) {
    for src in SOURCES {
        let server = if src.contains(':') {
            "::1"
        } else {
            "127.0.0.1"
        };
        for q in [
            &["a.example.test", "A"][..],
            &["a.example.test", "AAAA"],
            &["-x", ANSWER],
        ] {
            assert!(
                dig(server, port, src, q),
                "no answer from {server}:{port} to {src} for {q:?}"
            );
        }
    }
}

fn write_zones(dir: &Path) {
    fs::write(
        dir.join("example.test.zone"),
        "$TTL 300\n@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 300\n\
         @ IN NS ns.example.test.\nns IN A 127.0.0.1\na IN A 192.0.2.5\na IN AAAA 2001:db8::5\n",
    )
    .unwrap();
    fs::write(
        dir.join("rev.zone"),
        "$TTL 300\n@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 300\n\
         @ IN NS ns.example.test.\n5 IN PTR a.example.test.\n",
    )
    .unwrap();
    // Root hints pointing at loopback only: nothing leaves the machine.
    fs::write(
        dir.join("hints"),
        ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.0.0.1\n",
    )
    .unwrap();
}

fn map_all(dir: &Path, addrs: &[&str]) -> BTreeMap<String, String> {
    let key = common::key_file(dir, "cp.key", KEY);
    let input: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let out = common::run_ok(
        &[
            "map",
            "--method",
            "cryptopan",
            "--key-file",
            key.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    let out = String::from_utf8(out).unwrap();
    addrs
        .iter()
        .zip(out.lines())
        .map(|(a, m)| (a.to_string(), m.to_string()))
        .collect()
}

fn reverse_name(a: &str) -> String {
    let IpAddr::V4(v) = a.parse::<IpAddr>().unwrap() else {
        panic!("IPv4 only")
    };
    let o = v.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// Rebuild a washed line: every known token (bounded by bytes that cannot
/// continue it) replaced by its expected replacement.
fn expected_line(line: &str, subst: &[(String, String)]) -> String {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    'outer: while i < b.len() {
        let left_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b"._:-".contains(&b[i - 1]));
        if left_ok {
            for (from, to) in subst {
                if line[i..].starts_with(from.as_str()) {
                    let j = i + from.len();
                    let right_ok = j == b.len()
                        || !(b[j].is_ascii_alphanumeric()
                            || b[j] == b'_'
                            || (b[j] == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)));
                    if right_ok {
                        out.push_str(to);
                        i = j;
                        continue 'outer;
                    }
                }
            }
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Wash the query lines of `log` and check them against the rebuilt lines.
fn check_log(dir: &Path, log: &Path, is_query: impl Fn(&str) -> bool, server: &str) {
    let text = fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let lines: Vec<&str> = text.lines().filter(|l| is_query(l)).collect();
    for src in SOURCES {
        assert!(
            lines.iter().any(|l| l.contains(src)),
            "{server}: no query line from {src} in\n{text}"
        );
    }
    assert!(
        lines.len() >= 12,
        "{server}: only {} query lines:\n{text}",
        lines.len()
    );
    let queries = dir.join(format!("{server}.queries.log"));
    fs::write(
        &queries,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let key = common::key_file(dir, "cp.key", KEY);
    let washed = common::run_ok(
        &[
            "text",
            "--method",
            "cryptopan",
            "--key-file",
            key.to_str().unwrap(),
            "-q",
            queries.to_str().unwrap(),
        ],
        b"",
    );
    let washed = String::from_utf8(washed).unwrap();
    let mut addrs: Vec<&str> = SOURCES.to_vec();
    addrs.extend(["127.0.0.1", ANSWER]);
    let m = map_all(dir, &addrs);
    // Longest first, so 127.0.0.1 never eats part of a longer token.
    let mut subst: Vec<(String, String)> = m.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
    subst.push((reverse_name(ANSWER), reverse_name(&m[ANSWER])));
    subst.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
    let got: Vec<&str> = washed.lines().collect();
    assert_eq!(got.len(), lines.len(), "{server}: line count");
    for (orig, w) in lines.iter().zip(&got) {
        assert_eq!(*w, expected_line(orig, &subst), "{server}: line {orig:?}");
        for src in SOURCES.iter().filter(|s| !s.contains(':')) {
            assert!(
                !w.contains(&format!("{src}#")) && !w.contains(&format!(" {src} ")),
                "{server}: {src} left in {w:?}"
            );
        }
    }
    assert!(
        got.iter().any(|l| l.contains(&m["127.0.0.2"])),
        "{server}: washed lines lack the pseudonym of 127.0.0.2"
    );
}

fn tmpdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ipwash-{name}-"))
        .tempdir()
        .unwrap()
}

fn spawn(cmd: &mut Command, log: &Path) -> Server {
    let f = fs::File::create(log).unwrap();
    let f2 = f.try_clone().unwrap();
    Server(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .expect("start server"),
    )
}

#[test]
fn bind_querylog() {
    if !common::have_tool("named") || !common::have_tool("dig") {
        return;
    }
    let td = tmpdir("named");
    let dir = td.path();
    write_zones(dir);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\";\n\
         managed-keys-directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }};\n\
         listen-on-v6 port {port} {{ ::1; }}; recursion no; querylog yes; dnssec-validation no;\n\
         allow-query {{ any; }}; notify no; }};\ncontrols {{ }};\n\
         logging {{ channel q {{ file \"{d}/query.log\"; print-time yes; severity info; }};\n\
         category queries {{ q; }}; channel rest {{ file \"{d}/named.log\"; print-time yes; }};\n\
         category default {{ rest; }}; }};\n\
         zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; }};\n\
         zone \"2.0.192.in-addr.arpa\" {{ type primary; file \"{d}/rev.zone\"; }};\n"
    );
    let conf_path = dir.join("named.conf");
    fs::write(&conf_path, conf).unwrap();
    let out = dir.join("named.out");
    let mut srv = spawn(
        Command::new("named")
            .args(["-f", "-n", "1", "-c"])
            .arg(&conf_path),
        &out,
    );
    wait_ready(port, &mut srv, &out);
    ask(port);
    std::thread::sleep(Duration::from_millis(300));
    srv.stop();
    check_log(
        dir,
        &dir.join("query.log"),
        |l| l.contains(" query: "),
        "named",
    );
}

#[test]
fn unbound_log_queries() {
    if !common::have_tool("unbound") || !common::have_tool("dig") {
        return;
    }
    let td = tmpdir("unbound");
    let dir = td.path();
    write_zones(dir);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  interface: ::1@{port}\n  port: {port}\n\
         do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n\
         pidfile: \"{d}/unbound.pid\"\n  logfile: \"{d}/unbound.log\"\n  use-syslog: no\n\
         log-queries: yes\n  log-time-ascii: yes\n  verbosity: 1\n\
         access-control: 127.0.0.0/8 allow\n  access-control: ::1 allow\n\
         do-not-query-localhost: yes\n  module-config: \"iterator\"\n  root-hints: \"{d}/hints\"\n\
         local-zone: \"example.test.\" static\n  local-data: \"a.example.test. A 192.0.2.5\"\n\
         local-data: \"a.example.test. AAAA 2001:db8::5\"\n\
         local-zone: \"2.0.192.in-addr.arpa.\" static\n  local-data-ptr: \"192.0.2.5 a.example.test.\"\n\
         remote-control:\n  control-enable: no\n"
    );
    let conf_path = dir.join("unbound.conf");
    fs::write(&conf_path, conf).unwrap();
    let out = dir.join("unbound.out");
    let mut srv = spawn(
        Command::new("unbound").arg("-d").arg("-c").arg(&conf_path),
        &out,
    );
    wait_ready(port, &mut srv, &dir.join("unbound.log"));
    ask(port);
    std::thread::sleep(Duration::from_millis(300));
    srv.stop();
    check_log(
        dir,
        &dir.join("unbound.log"),
        |l| l.contains(" info: ") && l.ends_with(" IN"),
        "unbound",
    );
}

#[test]
fn pdns_recursor_quiet_no() {
    if !common::have_tool("pdns_recursor") || !common::have_tool("dig") {
        return;
    }
    let td = tmpdir("pdns");
    let dir = td.path();
    write_zones(dir);
    fs::write(dir.join("recursor.conf"), "").unwrap();
    let port = free_port();
    let d = dir.display();
    let out = dir.join("recursor.log");
    let mut srv = spawn(
        Command::new("pdns_recursor").args([
            "--daemon=no".to_string(),
            format!("--config-dir={d}"),
            format!("--socket-dir={d}"),
            format!("--local-address=127.0.0.1:{port},[::1]:{port}"),
            "--quiet=no".into(),
            "--disable-syslog=yes".into(),
            "--log-timestamp=yes".into(),
            "--threads=1".into(),
            "--dnssec=off".into(),
            "--security-poll-suffix=".into(),
            "--allow-from=127.0.0.0/8,::1/128".into(),
            format!("--hint-file={d}/hints"),
            format!(
                "--auth-zones=example.test={d}/example.test.zone,2.0.192.in-addr.arpa={d}/rev.zone"
            ),
        ]),
        &out,
    );
    wait_ready(port, &mut srv, &out);
    ask(port);
    std::thread::sleep(Duration::from_millis(300));
    srv.stop();
    check_log(dir, &out, |l| l.contains(" remote=\""), "pdns_recursor");
}
