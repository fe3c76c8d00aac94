//! MAC addresses: one MAC maps to the same value in Ethernet, 802.1Q,
//! ARP, ICMPv6 neighbour discovery and DHCP; the I/G and U/L bits are kept;
//! broadcast and multicast stay; checksums stay valid; tshark decodes every
//! washed frame.

mod common;
mod pkt;

use pkt::*;

const HOST: [u8; 6] = [0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e];
const DOCKER: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend(sha);
    a.extend(spa);
    a.extend([0; 6]);
    a.extend(tpa);
    ether([0xff; 6], sha, 0x0806, &a)
}

/// An ICMPv6 neighbour solicitation from `src` with a source link-layer
/// address option carrying `mac`, with a valid checksum.
fn neighbour_solicitation(mac: [u8; 6]) -> Vec<u8> {
    let src: [u8; 16] = [
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 2, 0x1b, 0x21, 0xff, 0xfe, 0x3c, 0x4d, 0x5e,
    ];
    let dst: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    icmp.extend([1, 1]);
    icmp.extend(mac);
    let mut pseudo = src.to_vec();
    pseudo.extend(dst);
    pseudo.extend((icmp.len() as u32).to_be_bytes());
    pseudo.extend([0, 0, 0, 58]);
    pseudo.extend(&icmp);
    let ck = checksum(&pseudo);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend((icmp.len() as u16).to_be_bytes());
    ip.extend([58, 255]);
    ip.extend(src);
    ip.extend(dst);
    ip.extend(icmp);
    ether([0x33, 0x33, 0xff, 0, 0, 1], mac, 0x86dd, &ip)
}

fn dhcp_discover(chaddr: [u8; 6]) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
    m.extend([0; 16]);
    m.extend(chaddr);
    m.extend([0; 10 + 64 + 128]);
    m.extend([99, 130, 83, 99, 53, 1, 1, 61, 7, 1]);
    m.extend(chaddr);
    m.push(255);
    ether(
        [0xff; 6],
        chaddr,
        0x0800,
        &ipv4_udp([0; 4], [255; 4], 68, 67, &m),
    )
}

fn vlan_dns(src: [u8; 6]) -> Vec<u8> {
    let ip = ipv4_udp(
        [192, 0, 2, 7],
        [198, 51, 100, 1],
        40000,
        53,
        &dns_query_msg("v.example", 1),
    );
    let mut v = MAC_B.to_vec();
    v.extend(src);
    v.extend([0x81, 0x00, 0x00, 0x0b, 0x08, 0x00]);
    v.extend(ip);
    v
}

fn capture() -> Vec<u8> {
    let dns = ether(
        MAC_B,
        HOST,
        0x0800,
        &ipv4_udp(
            [192, 0, 2, 7],
            [198, 51, 100, 1],
            40000,
            53,
            &dns_query_msg("a.example", 1),
        ),
    );
    let docker = ether(
        MAC_B,
        DOCKER,
        0x0800,
        &ipv4_udp(
            [172, 17, 0, 2],
            [198, 51, 100, 1],
            40001,
            53,
            &dns_query_msg("b.example", 1),
        ),
    );
    pcap(
        1,
        &[
            dns,
            arp_request(HOST, [192, 0, 2, 7], [192, 0, 2, 1]),
            neighbour_solicitation(HOST),
            dhcp_discover(HOST),
            vlan_dns(HOST),
            docker,
        ],
    )
}

struct Fields {
    rows: Vec<Vec<String>>,
}

const FIELDS: [&str; 9] = [
    "eth.src",
    "eth.dst",
    "arp.src.hw_mac",
    "icmpv6.opt.linkaddr",
    "dhcp.hw.mac_addr",
    "eth.addr",
    "udp.checksum.status",
    "icmpv6.checksum.status",
    "_ws.malformed",
];

fn tshark(p: &std::path::Path) -> Option<Fields> {
    if !common::have_tool("tshark") {
        return None;
    }
    let mut c = std::process::Command::new("tshark");
    c.args(["-n", "-o", "udp.check_checksum:TRUE", "-r"]).arg(p);
    c.args(["-T", "fields", "-E", "occurrence=f"]);
    for f in FIELDS {
        c.args(["-e", f]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    Some(Fields { rows })
}

fn wash(dir: &std::path::Path, input: &[u8], method: &[&str], extra: &[&str]) -> Vec<u8> {
    let inp = dir.join("in.pcap");
    let out = dir.join("out.pcap");
    std::fs::write(&inp, input).unwrap();
    let mut a = vec![
        "wash",
        inp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ];
    a.extend_from_slice(method);
    a.extend_from_slice(extra);
    common::run_ok(&a, b"");
    std::fs::read(&out).unwrap()
}

fn mac_at(f: &[u8], frame: usize, at: usize) -> [u8; 6] {
    // Records of the classic pcap built by `pcap`.
    let mut p = 24;
    for _ in 0..frame {
        let n = u32::from_le_bytes(f[p + 8..p + 12].try_into().unwrap()) as usize;
        p += 16 + n;
    }
    f[p + 16 + at..p + 16 + at + 6].try_into().unwrap()
}

#[test]
fn one_mac_maps_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", &"3a".repeat(32));
    let input = capture();
    let out = wash(
        dir.path(),
        &input,
        &["--method", "cryptopan", "--key-file", key.to_str().unwrap()],
        &[],
    );
    // HOST in: Ethernet source (frames 0..5), ARP sender (14+8), ND option
    // (14+40+24+2), DHCP chaddr (14+20+8+28) and client id (14+20+8+240+7),
    // VLAN frame source.
    let places = [
        (0, 6),
        (1, 6),
        (1, 22),
        (2, 6),
        (2, 14 + 40 + 24 + 2),
        (3, 6),
        (3, 14 + 20 + 8 + 28),
        (3, 14 + 20 + 8 + 240 + 6),
        (4, 6),
    ];
    for &(fr, at) in &places {
        assert_eq!(mac_at(&input, fr, at), HOST, "input frame {fr} at {at}");
    }
    let w = mac_at(&out, 0, 6);
    assert_ne!(w, HOST);
    for &(fr, at) in &places {
        assert_eq!(mac_at(&out, fr, at), w, "frame {fr} at {at}");
    }
    // Bits kept: HOST is universal unicast, Docker's is local unicast.
    assert_eq!(w[0] & 3, 0);
    let d = mac_at(&out, 5, 6);
    assert_ne!(d, DOCKER);
    assert_eq!(d[0] & 3, 2);
    // Broadcast and multicast stay.
    assert_eq!(mac_at(&out, 1, 0), [0xff; 6]);
    assert_eq!(mac_at(&out, 2, 0), [0x33, 0x33, 0xff, 0, 0, 1]);
    assert_eq!(mac_at(&out, 3, 0), [0xff; 6]);
    // The audit finds no MAC left (nor the Docker address inside one).
    let o = common::run(
        &[
            "audit",
            dir.path().join("in.pcap").to_str().unwrap(),
            dir.path().join("out.pcap").to_str().unwrap(),
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains(" link ") && !text.contains("layer arp"),
        "{text}"
    );
    assert!(!text.contains("layer dhcp form raw 00:1b"), "{text}");
    // tshark decodes every frame, checksums as valid as before.
    let (Some(a), Some(b)) = (
        tshark(&dir.path().join("in.pcap")),
        tshark(&dir.path().join("out.pcap")),
    ) else {
        return;
    };
    assert_eq!(a.rows.len(), 6);
    assert_eq!(b.rows.len(), 6);
    let wtext = format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        w[0], w[1], w[2], w[3], w[4], w[5]
    );
    for (i, (ra, rb)) in a.rows.iter().zip(&b.rows).enumerate() {
        assert_eq!(ra[6], rb[6], "frame {i}: UDP checksum status");
        assert_eq!(ra[7], rb[7], "frame {i}: ICMPv6 checksum status");
        assert!(
            rb.get(8).is_none_or(|m| m.is_empty()),
            "frame {i} malformed"
        );
        for c in 2..5 {
            if !ra[c].is_empty() {
                assert_eq!(rb[c], wtext, "frame {i} field {}", FIELDS[c]);
            }
        }
    }
    assert_eq!(a.rows[0][6], "1", "the built UDP checksums are good");
    assert_eq!(a.rows[2][7], "1", "the built ICMPv6 checksum is good");
}

#[test]
fn truncate_enumerate_and_keep() {
    let dir = tempfile::tempdir().unwrap();
    let input = capture();
    let out = wash(dir.path(), &input, &["--method", "truncate"], &[]);
    assert_eq!(mac_at(&out, 0, 6), [0x00, 0x1b, 0x21, 0, 0, 0]);
    assert_eq!(mac_at(&out, 1, 22), [0x00, 0x1b, 0x21, 0, 0, 0]);
    let out = wash(dir.path(), &input, &["--method", "enumerate"], &[]);
    // First seen: MAC_B (destination of frame 0), then HOST.
    assert_eq!(mac_at(&out, 0, 0), [2, 0, 0, 0, 0, 1]);
    assert_eq!(mac_at(&out, 0, 6), [2, 0, 0, 0, 0, 2]);
    assert_eq!(mac_at(&out, 3, 14 + 20 + 8 + 28), [2, 0, 0, 0, 0, 2]);
    assert_eq!(mac_at(&out, 5, 6), [2, 0, 0, 0, 0, 3]);
    let out = wash(
        dir.path(),
        &input,
        &["--method", "truncate"],
        &["--mac", "keep"],
    );
    for fr in 0..6 {
        assert_eq!(mac_at(&out, fr, 6), mac_at(&input, fr, 6));
    }
}
