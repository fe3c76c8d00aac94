//! `ipwash audit` finds planted leaks: one address left in a payload, in a
//! MAC address, in a DHCP field, in a reverse name and in an `epb_hash`,
//! each reported with its frame number and layer; a clean file passes.

mod common;
mod pkt;

use pkt::*;

const LEAK: [u8; 4] = [192, 0, 2, 7];
const OTHER: [u8; 4] = [198, 51, 100, 1];

/// A DHCP ACK giving `yiaddr` to a client with MAC `chaddr`.
fn dhcp_ack(yiaddr: [u8; 4], server: [u8; 4], chaddr: [u8; 6]) -> Vec<u8> {
    let mut m = vec![2, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
    m.extend([0; 4]); // ciaddr
    m.extend(yiaddr);
    m.extend([0; 4]); // siaddr
    m.extend([0; 4]); // giaddr
    m.extend(chaddr);
    m.extend([0; 10]);
    m.extend([0; 64 + 128]);
    m.extend([99, 130, 83, 99]);
    m.extend([53, 1, 5]);
    m.extend([54, 4]);
    m.extend(server);
    m.push(255);
    m
}

/// The washed-looking file: frame 1 clean, then one leak per frame.
fn planted() -> Vec<u8> {
    let clean = dns_frame(
        [203, 0, 113, 9],
        OTHER,
        40000,
        53,
        &dns_query_msg("a.example", 1),
    );
    let payload = ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4_udp(
            [203, 0, 113, 9],
            OTHER,
            40001,
            9999,
            b"client 192.0.2.7 said hi",
        ),
    );
    let docker_mac = [0x02, 0x42, LEAK[0], LEAK[1], LEAK[2], LEAK[3]];
    let mac = ether(
        MAC_B,
        docker_mac,
        0x0800,
        &ipv4_udp(
            [203, 0, 113, 9],
            OTHER,
            40002,
            53,
            &dns_query_msg("b.example", 1),
        ),
    );
    let dhcp = ether(
        [0xff; 6],
        MAC_A,
        0x0800,
        &ipv4_udp(OTHER, [255; 4], 67, 68, &dhcp_ack(LEAK, OTHER, MAC_B)),
    );
    let reverse = dns_frame(
        [203, 0, 113, 9],
        OTHER,
        40003,
        53,
        &dns_query_msg("7.2.0.192.in-addr.arpa", 12),
    );
    let mut hash = vec![2u8];
    hash.extend([9, 9]);
    hash.extend(LEAK);
    hash.extend([9; 9]);
    let mut f = shb(&[]);
    f.extend(idb(&[]));
    f.extend(epb(&clean, &[]));
    f.extend(epb(&payload, &[]));
    f.extend(epb(&mac, &[]));
    f.extend(epb(&dhcp, &[]));
    f.extend(epb(&reverse, &[]));
    f.extend(epb(&clean, &[(3, &hash)]));
    f
}

/// (frame, layer, form) of each survivor line of the text output.
fn survivors(stdout: &str) -> Vec<(u64, String, String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("frame "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w[2], "offset");
            assert_eq!(w[4], "layer");
            assert_eq!(w[6], "form");
            (
                w[1].parse().unwrap(),
                w[5].to_string(),
                w[7].to_string(),
                w[8].to_string(),
            )
        })
        .collect()
}

fn s(frame: u64, layer: &str, form: &str, what: &str) -> (u64, String, String, String) {
    (frame, layer.into(), form.into(), what.into())
}

#[test]
fn planted_leaks_are_each_found_in_their_frame() {
    let dir = tempfile::tempdir().unwrap();
    let washed = dir.path().join("washed.pcapng");
    std::fs::write(&washed, planted()).unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# the address to hide\n192.0.2.7\n").unwrap();
    let o = common::run(
        &[
            "audit",
            "--addresses",
            list.to_str().unwrap(),
            washed.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "survivors mean exit 1");
    let out = String::from_utf8(o.stdout).unwrap();
    let got = survivors(&out);
    let want = vec![
        s(2, "payload", "text", "192.0.2.7"),
        s(3, "link", "raw", "192.0.2.7"),
        s(4, "dhcp", "raw", "192.0.2.7"),
        s(5, "dns", "reverse-name", "192.0.2.7"),
        s(6, "pcapng-metadata", "raw", "192.0.2.7"),
    ];
    assert_eq!(got, want, "{out}");
    assert!(
        out.contains("audit: 1 of 1 identifiers survive, 5 occurrences"),
        "{out}"
    );
    // The MAC offset: the Ethernet source address starts at 6, the IPv4
    // address inside it at 8.
    assert!(out.contains("frame 3 offset 8 layer link"), "{out}");

    // The same, collecting the addresses from an original capture in which
    // the address, a MAC and the DHCP client's MAC appear.
    let original = dir.path().join("orig.pcap");
    let orig_frame = dns_frame(LEAK, OTHER, 40000, 53, &dns_query_msg("a.example", 1));
    std::fs::write(&original, pcap(1, &[orig_frame])).unwrap();
    let o = common::run(
        &[
            "audit",
            original.to_str().unwrap(),
            washed.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 192.0.2.7, 198.51.100.1 and the two MACs.
    assert_eq!(j["searched"], 4, "{j}");
    let frames_of = |addr: &str| -> Vec<(u64, String)> {
        j["survivors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["address"] == addr)
            .map(|v| {
                (
                    v["frame"].as_u64().unwrap(),
                    v["layer"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        frames_of("192.0.2.7"),
        vec![
            (2, "payload".to_string()),
            (3, "link".to_string()),
            (4, "dhcp".to_string()),
            (5, "dns".to_string()),
            (6, "pcapng-metadata".to_string()),
        ]
    );
    // The planted file never washed the MACs or 198.51.100.1 either.
    assert!(frames_of("198.51.100.1").len() >= 6);
    assert!(frames_of("00:00:5e:00:53:01").contains(&(1, "link".to_string())));
    // chaddr of the DHCP message.
    assert!(frames_of("00:00:5e:00:53:02").contains(&(4, "dhcp".to_string())));
    assert!(j["by_layer"]["dhcp"]["addresses"].as_u64().unwrap() >= 2);
}

#[test]
fn eui64_and_ipv6_forms_are_found() {
    let dir = tempfile::tempdir().unwrap();
    // Text forms of an IPv6 address, its reverse name and the EUI-64 of a MAC.
    let body = b"seen 2001:DB8::7 and 2001:db8::7 \
        7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    let mut payload = body.to_vec();
    payload.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
    payload.extend([0x02, 0x00, 0x5e, 0xff, 0xfe, 0x00, 0x53, 0x09]);
    let fr = ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4_udp([203, 0, 113, 9], OTHER, 4000, 9999, &payload),
    );
    let washed = dir.path().join("w.pcap");
    std::fs::write(&washed, pcap(1, &[fr])).unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        "2001:db8::7\n00:00:5e:00:53:09\n# 2001:db8::8 is not there\n2001:db8::8\n",
    )
    .unwrap();
    let o = common::run(
        &[
            "audit",
            "--addresses",
            list.to_str().unwrap(),
            washed.to_str().unwrap(),
        ],
        b"",
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let got: Vec<(String, String)> = survivors(&out)
        .into_iter()
        .map(|(_, _, form, what)| (form, what))
        .collect();
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        got,
        vec![
            p("text", "2001:db8::7"),
            p("text", "2001:db8::7"),
            p("reverse-name", "2001:db8::7"),
            p("eui-64", "00:00:5e:00:53:09"),
        ],
        "{out}"
    );
    // "2001:db8::7" inside "2001:db8::77" would not count; a clean file exits 0.
    let clean = ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4_udp(
            [203, 0, 113, 9],
            OTHER,
            4000,
            9999,
            b"2001:db8::77 192.0.2.70",
        ),
    );
    std::fs::write(&washed, pcap(1, &[clean])).unwrap();
    std::fs::write(&list, "2001:db8::7\n192.0.2.7\n").unwrap();
    let o = common::run(
        &[
            "audit",
            "--addresses",
            list.to_str().unwrap(),
            washed.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn usage_errors() {
    let o = common::run(&["audit", "only-one.pcap"], b"");
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("l");
    std::fs::write(&list, "not-an-address\n").unwrap();
    let w = dir.path().join("w.pcap");
    std::fs::write(&w, pcap(1, &[])).unwrap();
    let o = common::run(
        &[
            "audit",
            "--addresses",
            list.to_str().unwrap(),
            w.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"));
}
