//! EDNS client identifiers, `--answers`, `--only-dns` and `--zero-payload`
//! on packets built here: each washed output is decoded back by tshark
//! (checksum checks on) and compared with the map applied independently
//! (the primitives of `ipwash-algorithms` under the documented key
//! derivation, and `ipwash map` for addresses).

mod common;
mod pkt;

use std::collections::BTreeMap;
use std::path::Path;

use ipwash_algorithms::bytesperm::BytesPerm;
use ipwash_algorithms::macperm::MacPerm;
use pkt::*;

const KEY_HEX: &str = "4b9c3e0a7d1f2e3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4";
const CLIENT: [u8; 4] = [192, 0, 2, 7];
const SERVER: [u8; 4] = [198, 51, 100, 53];
const DOCKER_MAC: [u8; 6] = [0x02, 0x42, 192, 0, 2, 7];

fn key_bytes() -> Vec<u8> {
    (0..32)
        .map(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// dnsmasq's base64 of a MAC: two groups of three bytes, no padding.
fn b64_mac(m: [u8; 6]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = Vec::new();
    for g in m.chunks(3) {
        let n = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
        for s in [18, 12, 6, 0] {
            o.push(A[((n >> s) & 63) as usize]);
        }
    }
    o
}

fn mac_text(m: [u8; 6]) -> Vec<u8> {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
        .into_bytes()
}

/// A query for `name` with an OPT record holding `opts`.
fn query_with_opts(name: &str, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = dns_query_msg(name, 1);
    m[11] = 1;
    m.extend([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    let rdlen: usize = opts.iter().map(|(_, d)| 4 + d.len()).sum();
    m.extend((rdlen as u16).to_be_bytes());
    for (c, d) in opts {
        m.extend(c.to_be_bytes());
        m.extend((d.len() as u16).to_be_bytes());
        m.extend(d);
    }
    m
}

fn write(dir: &Path, name: &str, frames: &[Vec<u8>]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pcap(1, frames)).unwrap();
    p
}

fn wash(input: &Path, out: &Path, key: &Path, extra: &[&str]) -> serde_json::Value {
    let mut a = vec![
        "wash",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--stats-json",
        "-",
        "-q",
    ];
    if !extra.contains(&"truncate") {
        a.extend(["--key-file", key.to_str().unwrap()]);
    }
    if !extra.contains(&"--method") {
        a.extend(["--method", "cryptopan"]);
    }
    a.extend(extra);
    let o = common::run(&a, b"");
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Packets of a pcap file written by `pcap()` (or by ipwash from one).
fn frames(file: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let n = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        v.push(file[at + 16..at + 16 + n].to_vec());
        at += 16 + n;
    }
    v
}

/// tshark fields, one row per frame, `occurrence=a`, `;` between values.
fn tshark(p: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut c = std::process::Command::new("tshark");
    c.args(["-n", "-r"]).arg(p);
    c.args([
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
    ]);
    c.args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn map_addrs(key: &Path, method: &str, addrs: &[&str]) -> Vec<String> {
    let input = addrs.join("\n") + "\n";
    let out = common::run_ok(
        &[
            "map",
            "--method",
            method,
            "--key-file",
            key.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The identifier options of the test, one query each (frame order).
fn id_options() -> Vec<(u16, Vec<u8>)> {
    let mut umbrella = b"ODNS\x01\x00".to_vec();
    umbrella.extend([0, 0x08, 0, 0, 0x30, 0x39]);
    umbrella.extend([0, 0x10]);
    umbrella.extend(CLIENT);
    umbrella.extend([0, 0x40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    let mut srv = vec![0x11; 8];
    srv.extend([1, 0, 0, 0, 0x69, 0x2e, 0x1c, 0x00]);
    srv.extend([0x5a; 8]);
    vec![
        (10, vec![0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18]),
        (10, srv),
        (65001, DOCKER_MAC.to_vec()),
        (65073, mac_text(DOCKER_MAC)),
        (65073, b64_mac(DOCKER_MAC)),
        (65074, b"cpe-0042-home".to_vec()),
        (20292, umbrella),
        (26946, vec![0x4f, 0x44, 0x4e, 0x53, 9, 8, 7, 6]),
        (65500, b"anything at all".to_vec()),
        (4, vec![0, 1, 0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e]),
    ]
}

/// The value `option` (code, data) must have after a cryptopan wash with
/// the test key, computed from the documented derivation.
fn expected(code: u16, data: &[u8], client_mapped: [u8; 4]) -> Vec<u8> {
    let k = key_bytes();
    let ids = BytesPerm::new(&BytesPerm::derive(&k));
    let macs = MacPerm::new(&MacPerm::derive(&k));
    let tw = |part: u16| (u32::from(code) << 16) | u32::from(part);
    let mut d = data.to_vec();
    match code {
        10 => {
            ids.map(tw(0), &mut d[..8]);
            if d.len() > 8 {
                ids.map(tw(1), &mut d[8..]);
            }
        }
        65001 => d = macs.map(DOCKER_MAC).to_vec(),
        65073 if d.len() == 17 => d = mac_text(macs.map(DOCKER_MAC)),
        65073 => d = b64_mac(macs.map(DOCKER_MAC)),
        20292 => {
            ids.map(tw(0x08), &mut d[8..12]);
            d[14..18].copy_from_slice(&client_mapped);
            ids.map(tw(0x40), &mut d[20..28]);
        }
        _ => ids.map(tw(0), &mut d),
    }
    d
}

/// The option values of every frame, from tshark: (code, data) in order.
fn tshark_options(p: &Path) -> Vec<Vec<(u16, Vec<u8>)>> {
    let rows = tshark(
        p,
        &[
            "dns.opt.code",
            "dns.opt.len",
            "dns.opt.data",
            "dns.opt.cookie.client",
            "dns.opt.cookie.server",
            "udp.checksum.status",
            "dns.opt.padding",
        ],
    );
    rows.iter()
        .map(|r| {
            // Over TCP the TCP checksum is checked by the caller.
            assert!(
                r[5] == "1" || r[5].is_empty(),
                "UDP checksum not good: {r:?}"
            );
            let codes: Vec<u16> = r[0].split(';').map(|c| c.parse().unwrap()).collect();
            let lens: Vec<usize> = r[1].split(';').map(|c| c.parse().unwrap()).collect();
            let mut datas = r[2].split(';').filter(|s| !s.is_empty());
            codes
                .iter()
                .zip(&lens)
                .map(|(&c, &n)| {
                    let v = if c == 10 {
                        let mut v = unhex(&r[3]);
                        v.extend(unhex(&r[4]));
                        v
                    } else if c == 12 {
                        unhex(&r[6])
                    } else if n == 0 {
                        Vec::new()
                    } else {
                        unhex(datas.next().unwrap_or(""))
                    };
                    assert_eq!(v.len(), n, "option {c}: {r:?}");
                    (c, v)
                })
                .collect()
        })
        .collect()
}

#[test]
fn edns_identifiers_washed_decoded_back_and_restored() {
    if !common::have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", KEY_HEX);
    let opts = id_options();
    let mut fr: Vec<Vec<u8>> = opts
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let q = query_with_opts(
                &format!("q{i}.example"),
                &[o.clone(), (3, Vec::new()), (12, vec![0; 6])],
            );
            dns_frame(CLIENT, SERVER, 40000 + i as u16, 53, &q)
        })
        .collect();
    // The identifiers are found over TCP too.
    let q = query_with_opts("tcp.example", &[opts[0].clone()]);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend(&q);
    fr.push(ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4_tcp(CLIENT, SERVER, 41000, 53, &framed),
    ));
    let input = write(dir.path(), "in.pcap", &fr);
    let out = dir.path().join("out.pcap");
    wash(&input, &out, &key, &[]);
    let client_mapped: [u8; 4] = map_addrs(&key, "cryptopan", &["192.0.2.7"])[0]
        .parse::<std::net::Ipv4Addr>()
        .unwrap()
        .octets();
    let got = tshark_options(&out);
    assert_eq!(got.len(), opts.len() + 1);
    for (i, (code, data)) in opts.iter().enumerate() {
        let want = expected(*code, data, client_mapped);
        assert_ne!(&want, data, "option {code} unchanged by the map");
        assert_eq!(
            got[i],
            vec![(*code, want), (3, Vec::new()), (12, vec![0; 6])],
            "frame {} (option {code})",
            i + 1
        );
    }
    // TCP: the cookie, and the TCP checksum good.
    let tcp = tshark(&out, &["dns.opt.cookie.client", "tcp.checksum.status"]);
    let last = tcp.last().unwrap();
    assert_eq!(unhex(&last[0]), expected(10, &opts[0].1, client_mapped));
    assert_eq!(last[1], "1");
    // Washing back restores every frame byte for byte.
    let back = dir.path().join("back.pcap");
    wash(&out, &back, &key, &["--reverse"]);
    assert_eq!(frames(&std::fs::read(&back).unwrap()), fr);
    // --edns keep copies them.
    let kept = dir.path().join("kept.pcap");
    wash(&input, &kept, &key, &["--edns", "keep"]);
    let k = tshark_options(&kept);
    for (i, o) in opts.iter().enumerate() {
        let mut want = o.clone();
        if o.0 == 20292 {
            // An address stays an address: washed whatever --edns says.
            want.1[14..18].copy_from_slice(&client_mapped);
        }
        assert_eq!(k[i][0], want, "--edns keep, option {}", o.0);
    }
    // Truncation has no key: opaque values are zeroed, MACs truncated.
    let tr = dir.path().join("tr.pcap");
    wash(&input, &tr, &key, &["--method", "truncate"]);
    let t = tshark_options(&tr);
    for (i, (code, data)) in opts.iter().enumerate() {
        let v = &t[i][0].1;
        assert_eq!(v.len(), data.len());
        match code {
            65001 => assert_eq!(v, &[0x02, 0x42, 192, 0, 0, 0]),
            65073 if data.len() == 17 => assert_eq!(v, b"02:42:c0:00:00:00"),
            65073 => assert_eq!(v, &b64_mac([0x02, 0x42, 192, 0, 0, 0])),
            20292 => {
                assert_eq!(&v[..8], &data[..8]);
                assert_eq!(&v[8..12], &[0; 4]);
                assert_eq!(&v[14..18], &[192, 0, 2, 0]);
            }
            _ => assert!(v.iter().all(|&b| b == 0), "option {code}: {v:?}"),
        }
    }
}

/// An IPv4 header and TCP segment (PSH ACK) with valid checksums.
fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 20 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 2, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend(src);
    ip.extend(dst);
    let ck = checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let mut tcp = sport.to_be_bytes().to_vec();
    tcp.extend(dport.to_be_bytes());
    tcp.extend(1000u32.to_be_bytes());
    tcp.extend(2000u32.to_be_bytes());
    tcp.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend(payload);
    let mut pseudo = src.to_vec();
    pseudo.extend(dst);
    pseudo.extend([0, 6]);
    pseudo.extend(((20 + payload.len()) as u16).to_be_bytes());
    pseudo.extend(&tcp);
    let ck = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&ck.to_be_bytes());
    ip.extend(tcp);
    ip
}

/// An IPv4 ICMP message with a valid checksum.
fn ipv4_icmp(src: [u8; 4], dst: [u8; 4], ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + rest.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 3, 0, 0, 64, 1, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend(src);
    ip.extend(dst);
    let ck = checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
    icmp.extend(rest);
    let ck = checksum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    ip.extend(icmp);
    ip
}

/// A response with A and AAAA records in the answer, an A in the
/// authority and an A in the additional section.
fn response_with_answers() -> Vec<u8> {
    let mut m = dns_query_msg("www.example", 1);
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 2; // answers
    m[9] = 1; // authority
    m[11] = 1; // additional
    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 10]);
    m.extend([0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
    m.extend([
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
    ]);
    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 99]);
    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    m
}

#[test]
fn answers_are_washed_in_every_section_over_udp_and_tcp() {
    if !common::have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", KEY_HEX);
    let m = response_with_answers();
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend(&m);
    let fr = vec![
        dns_frame(SERVER, CLIENT, 53, 40000, &m),
        ether(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_tcp(SERVER, CLIENT, 53, 41000, &framed),
        ),
    ];
    let input = write(dir.path(), "in.pcap", &fr);
    let orig = ["203.0.113.10", "198.51.100.99", "192.0.2.7"];
    let orig6 = "2001:db8::53";
    let mut all = orig.to_vec();
    all.push(orig6);
    all.push("198.51.100.53");
    let mapped = map_addrs(&key, "cryptopan", &all);
    for (flags, want4, want6, wsrc) in [
        (
            vec!["--answers"],
            mapped[..3].to_vec(),
            mapped[3].clone(),
            mapped[4].clone(),
        ),
        (
            vec![],
            orig.iter().map(|s| s.to_string()).collect(),
            orig6.to_string(),
            mapped[4].clone(),
        ),
    ] {
        let out = dir.path().join("out.pcap");
        wash(&input, &out, &key, &flags);
        let rows = tshark(
            &out,
            &[
                "dns.a",
                "dns.aaaa",
                "ip.src",
                "udp.checksum.status",
                "tcp.checksum.status",
            ],
        );
        assert_eq!(rows.len(), 2);
        for (i, r) in rows.iter().enumerate() {
            let a: Vec<&str> = r[0].split(';').collect();
            assert_eq!(
                a,
                want4.iter().map(String::as_str).collect::<Vec<_>>(),
                "{flags:?} frame {i}"
            );
            assert_eq!(r[1], want6, "{flags:?} frame {i}");
            // The header uses the same map.
            assert_eq!(r[2], wsrc);
            assert_eq!(
                if i == 0 { &r[3] } else { &r[4] },
                "1",
                "{flags:?} frame {i}: checksum"
            );
        }
        if flags.is_empty() {
            continue;
        }
        // The client's address in the additional section is the header's.
        let back = dir.path().join("back.pcap");
        wash(&out, &back, &key, &["--reverse", "--answers"]);
        assert_eq!(frames(&std::fs::read(&back).unwrap()), fr);
    }
}

/// One frame of each kind, in order, and whether `--only-dns` keeps it.
fn mixed() -> Vec<(Vec<u8>, bool, &'static str)> {
    let dnsq = dns_query_msg("a.example", 1);
    let mut framed = (dnsq.len() as u16).to_be_bytes().to_vec();
    framed.extend(&dnsq);
    let quoted_dns = ipv4_udp(CLIENT, SERVER, 40000, 53, &dnsq);
    let quoted_other = ipv4_udp(CLIENT, SERVER, 40000, 9999, b"hello 192.0.2.7");
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend(MAC_A);
    arp.extend(CLIENT);
    arp.extend([0; 6]);
    arp.extend(SERVER);
    let e = |payload: Vec<u8>| ether(MAC_B, MAC_A, 0x0800, &payload);
    vec![
        (
            e(ipv4_udp(CLIENT, SERVER, 40000, 53, &dnsq)),
            true,
            "udp-dns",
        ),
        (
            e(ipv4_tcp(CLIENT, SERVER, 40001, 53, &framed)),
            true,
            "tcp-dns",
        ),
        (
            e(ipv4_udp(CLIENT, SERVER, 40002, 5353, &dnsq)),
            true,
            "dns-port",
        ),
        (
            e(ipv4_icmp(SERVER, CLIENT, 3, 3, &quoted_dns[..28 + 4])),
            true,
            "icmp-quoting-dns",
        ),
        (
            e(ipv4_tcp(
                CLIENT,
                SERVER,
                40003,
                80,
                b"GET / HTTP/1.1\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n",
            )),
            false,
            "http",
        ),
        (
            e(ipv4_udp(CLIENT, SERVER, 40004, 123, &[0x23; 48])),
            false,
            "ntp",
        ),
        (
            e(ipv4_icmp(CLIENT, SERVER, 8, 0, b"ping payload 192.0.2.7")),
            false,
            "echo",
        ),
        (
            e(ipv4_icmp(SERVER, CLIENT, 3, 3, &quoted_other)),
            false,
            "icmp-quoting-other",
        ),
        (ether([0xff; 6], MAC_A, 0x0806, &arp), false, "arp"),
        (
            ether(MAC_B, MAC_A, 0x88cc, b"\x02\x07\x04lldp-chassis-id"),
            false,
            "lldp",
        ),
    ]
}

#[test]
fn only_dns_and_zero_payload() {
    if !common::have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", KEY_HEX);
    let mix = mixed();
    let fr: Vec<Vec<u8>> = mix.iter().map(|m| m.0.clone()).collect();
    let input = write(dir.path(), "in.pcap", &fr);
    let plain = dir.path().join("plain.pcap");
    wash(&input, &plain, &key, &["--dns-port", "5353"]);
    let plain_frames = frames(&std::fs::read(&plain).unwrap());

    // --only-dns: the DNS frames, exactly as a plain wash writes them.
    let only = dir.path().join("only.pcap");
    let st = wash(&input, &only, &key, &["--only-dns", "--dns-port", "5353"]);
    let kept: Vec<Vec<u8>> = plain_frames
        .iter()
        .zip(&mix)
        .filter(|(_, m)| m.1)
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(frames(&std::fs::read(&only).unwrap()), kept);
    let dropped: BTreeMap<String, u64> =
        serde_json::from_value(st["dropped_by_reason"].clone()).unwrap();
    assert_eq!(dropped.get("not_dns"), Some(&6), "{dropped:?}");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let rows = tshark(
        &only,
        &["frame.number", "udp.checksum.status", "tcp.checksum.status"],
    );
    assert_eq!(rows.len(), 4);

    // --zero-payload: every frame; DNS frames as a plain wash writes them,
    // the others zeroed after their headers, checksums still good.
    let zero = dir.path().join("zero.pcap");
    let st = wash(
        &input,
        &zero,
        &key,
        &["--zero-payload", "--dns-port", "5353"],
    );
    assert_eq!(st["packets_dropped"], 0, "{st}");
    let z = frames(&std::fs::read(&zero).unwrap());
    assert_eq!(z.len(), mix.len());
    for ((zf, pf), (orig, dns, what)) in z.iter().zip(&plain_frames).zip(&mix) {
        assert_eq!(zf.len(), orig.len(), "{what}");
        if *dns {
            assert_eq!(zf, pf, "{what}");
            continue;
        }
        // The zeroed part: after the UDP/TCP/ICMP header, or after the
        // link header for frames that are not IP.
        let from = match *what {
            "http" => 14 + 20 + 20,
            "ntp" => 14 + 20 + 8,
            "echo" | "icmp-quoting-other" => 14 + 20 + 8,
            _ => 14,
        };
        assert!(
            zf[from..].iter().all(|&b| b == 0),
            "{what}: {:?}",
            &zf[from..]
        );
        assert!(zf[from..] != orig[from..], "{what}");
    }
    let rows = tshark(
        &zero,
        &[
            "udp.checksum.status",
            "tcp.checksum.status",
            "icmp.checksum.status",
            "ip.checksum.status",
        ],
    );
    assert_eq!(rows.len(), mix.len());
    // Every checksum tshark can verify is good (2: a quote cut short,
    // unverifiable), as in the input.
    let before = tshark(
        &input,
        &[
            "udp.checksum.status",
            "tcp.checksum.status",
            "icmp.checksum.status",
            "ip.checksum.status",
        ],
    );
    for (r, m) in rows.iter().chain(&before).zip(mix.iter().chain(&mix)) {
        for v in r.iter().filter(|v| !v.is_empty()) {
            for s in v.split(';') {
                assert!(s == "1" || s == "2", "{}: {r:?}", m.2);
            }
        }
    }
    // (The zeroed quote of the last ICMP error holds no checksum any more.)
    let goods = |rows: &[Vec<String>]| {
        rows.iter()
            .zip(&mix)
            .filter(|(_, m)| m.2 != "icmp-quoting-other")
            .map(|(r, _)| r[..3].iter().filter(|v| v.as_str() == "1").count())
            .collect::<Vec<_>>()
    };
    assert_eq!(goods(&rows), goods(&before), "verified transport checksums");
    // An independent byte search: the client's address survives nowhere
    // but in the headers' washed form (every payload that held it as text
    // is zeroed, the quoted headers washed).
    let bytes = std::fs::read(&zero).unwrap();
    assert!(!bytes.windows(9).any(|w| w == b"192.0.2.7"));
    assert!(!bytes.windows(4).any(|w| w == CLIENT));
}

#[test]
fn cdns_answers_are_washed() {
    let Some(c) = common::corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", KEY_HEX);
    let mut checked = 0usize;
    for f in [
        "cdns/generated/testcontent-full.cdns",
        "cdns/cdnsrdr-testdata/cdns_test_file.cdns",
    ] {
        let input = c.join(f);
        let with = dir.path().join("with.cdns");
        let without = dir.path().join("without.cdns");
        wash(&input, &with, &key, &["--answers"]);
        wash(&input, &without, &key, &[]);
        let (o, w, n) = (
            cdns_answers(&std::fs::read(&input).unwrap()),
            cdns_answers(&std::fs::read(&with).unwrap()),
            cdns_answers(&std::fs::read(&without).unwrap()),
        );
        assert_eq!(o.len(), w.len(), "{f}");
        assert_eq!(o, n, "{f}: answers changed without --answers");
        let texts: Vec<String> = o.iter().map(|a| a.to_string()).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        if refs.is_empty() {
            continue;
        }
        let mapped = map_addrs(&key, "cryptopan", &refs);
        for (m, got) in mapped.iter().zip(&w) {
            assert_eq!(m, &got.to_string(), "{f}");
        }
        checked += o.len();
    }
    assert!(checked > 0, "no A/AAAA answer data in the C-DNS files");
    eprintln!("{checked} C-DNS answer entries checked");
}

/// Every A/AAAA RDATA of a C-DNS file's RR tables, in table order (each
/// `name-rdata` entry once per block).
fn cdns_answers(b: &[u8]) -> Vec<std::net::IpAddr> {
    use ciborium::Value;
    let v: Value = ciborium::from_reader(b).unwrap();
    let Value::Array(top) = v else { panic!() };
    let Value::Array(blocks) = &top[2] else {
        panic!()
    };
    let get = |m: &Value, k: i128| -> Option<Value> {
        let Value::Map(m) = m else { return None };
        m.iter()
            .find(|(key, _)| key.as_integer().map(i128::from) == Some(k))
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for blk in blocks {
        let Some(t) = get(blk, 2) else { continue };
        let arr = |k| match get(&t, k) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let (ct, nr, rr) = (arr(1), arr(2), arr(7));
        let mut seen = std::collections::BTreeSet::new();
        for r in &rr {
            let idx = |k| {
                get(r, k)
                    .and_then(|v| v.as_integer())
                    .map(|i| i128::from(i) as usize)
            };
            let (Some(c), Some(d)) = (idx(1), idx(3)) else {
                continue;
            };
            let ty = ct
                .get(c)
                .and_then(|x| get(x, 0))
                .and_then(|v| v.as_integer())
                .map(i128::from);
            let Some(Value::Bytes(data)) = nr.get(d) else {
                continue;
            };
            let a = match (ty, data.len()) {
                (Some(1), 4) => std::net::IpAddr::from(<[u8; 4]>::try_from(&data[..]).unwrap()),
                (Some(28), 16) => std::net::IpAddr::from(<[u8; 16]>::try_from(&data[..]).unwrap()),
                _ => continue,
            };
            if seen.insert(d) {
                out.push(a);
            }
        }
    }
    out
}

// ------------------------------------------------------------ dnstap

#[derive(Clone, PartialEq, prost::Message)]
struct Dnstap {
    #[prost(message, optional, tag = "14")]
    message: Option<Msg>,
    #[prost(int32, optional, tag = "15")]
    r#type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(int32, optional, tag = "1")]
    r#type: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    socket_family: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    response_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "14")]
    response_message: Option<Vec<u8>>,
}

struct Not;
impl ipwash_algorithms::AddrMap for Not {
    fn map_v4(&self, a: std::net::Ipv4Addr) -> std::net::Ipv4Addr {
        (!u32::from(a)).into()
    }
    fn map_v6(&self, a: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
        (!u128::from(a)).into()
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

fn control(ctype: u32, ct: Option<&[u8]>) -> Vec<u8> {
    let mut body = ctype.to_be_bytes().to_vec();
    if let Some(c) = ct {
        body.extend(1u32.to_be_bytes());
        body.extend((c.len() as u32).to_be_bytes());
        body.extend(c);
    }
    let mut f = vec![0, 0, 0, 0];
    f.extend((body.len() as u32).to_be_bytes());
    f.extend(body);
    f
}

#[test]
fn dnstap_messages_get_answers_and_identifiers_washed() {
    use prost::Message as _;
    let mut resp = response_with_answers();
    // An OPT record with a client cookie in the additional section.
    resp[11] = 2;
    resp.extend([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8]);
    resp.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    let m = Dnstap {
        message: Some(Msg {
            r#type: Some(6),
            socket_family: Some(1),
            query_address: Some(CLIENT.to_vec()),
            response_address: Some(SERVER.to_vec()),
            response_message: Some(resp.clone()),
        }),
        r#type: Some(1),
    };
    let body = m.encode_to_vec();
    let mut input = control(2, Some(b"protobuf:dnstap.Dnstap"));
    input.extend((body.len() as u32).to_be_bytes());
    input.extend(&body);
    input.extend(control(3, None));
    let mut washer =
        ipwash::wash::Washer::new(ipwash::wash::Technique::Stateless(std::sync::Arc::new(Not)));
    washer.answers = true;
    washer.ids = ipwash::edns::IdMap::Zero;
    let mut out = Vec::new();
    let mut st = ipwash::dnstap::DnstapStats::default();
    ipwash::dnstap::wash_dnstap(
        &input[..],
        &mut out,
        &mut washer,
        &ipwash::dnstap::DnstapOptions::default(),
        &mut st,
    )
    .unwrap();
    // The data frame follows the START control frame.
    let start = 8 + u32::from_be_bytes(out[4..8].try_into().unwrap()) as usize;
    let n = u32::from_be_bytes(out[start..start + 4].try_into().unwrap()) as usize;
    let got = Dnstap::decode(&out[start + 4..start + 4 + n]).unwrap();
    let msg = got.message.unwrap().response_message.unwrap();
    let mut want = resp.clone();
    let not4 = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = !*x);
    // The A/AAAA RDATA offsets of response_with_answers().
    let q = dns_query_msg("www.example", 1).len();
    let a1 = q + 12;
    let a6 = a1 + 4 + 12;
    let a2 = a6 + 16 + 12;
    let a3 = a2 + 4 + 12;
    not4(&mut want[a1..a1 + 4]);
    not4(&mut want[a6..a6 + 16]);
    not4(&mut want[a2..a2 + 4]);
    not4(&mut want[a3..a3 + 4]);
    let l = want.len();
    want[l - 8..].fill(0);
    assert_eq!(msg, want);
}
