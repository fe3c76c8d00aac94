//! DNS over TCP, end to end: generated connections whose DNS messages
//! (with an EDNS Client Subnet option) are cut into segments in every way
//! a TCP sender or a lossy capture can cut them, washed by the real binary,
//! then checked with an independent reassembler: every ECS address equals
//! the technique applied to the original (`ipwash map`, zero-extended and
//! cut back to the prefix), every TCP checksum verifies, every other byte
//! is unchanged, packets keep their order, and every execution strategy
//! gives the same bytes. The corpus part compares what tshark (TCP
//! reassembly on, two passes) decodes before and after washing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use common::*;

const C4: [u8; 4] = [192, 0, 2, 7];
const S4: [u8; 4] = [198, 51, 100, 1];
const KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

fn csum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet / IPv4 / TCP with valid checksums.
#[allow(clippy::too_many_arguments)]
fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend(dport.to_be_bytes());
    t.extend(seq.to_be_bytes());
    t.extend(ack.to_be_bytes());
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(payload);
    let mut ph = src.to_vec();
    ph.extend(dst);
    ph.extend([0, 6]);
    ph.extend((t.len() as u16).to_be_bytes());
    ph.extend(&t);
    let ck = csum(&ph);
    t[16..18].copy_from_slice(&ck.to_be_bytes());
    eth_ipv4(src, dst, 6, &t)
}

/// Ethernet / IPv4 (valid header checksum) around the transport bytes `l4`
/// of protocol `proto`.
fn eth_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend(src);
    ip.extend(dst);
    let ck = csum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend(l4);
    let mut f = vec![0, 0, 0x5e, 0, 0x53, 1, 0, 0, 0x5e, 0, 0x53, 2, 8, 0];
    f.extend(ip);
    f
}

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    v.extend([0; 8]);
    v.extend(262144u32.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend((1_700_000_000 + i as u32).to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend(f);
    }
    v
}

fn frames_of(p: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= p.len() {
        let n = u32::from_le_bytes(p[at + 8..at + 12].try_into().unwrap()) as usize;
        v.push(p[at + 16..at + 16 + n].to_vec());
        at += 16 + n;
    }
    v
}

/// A query for example.com with an ECS option of `prefix` bits holding
/// `addr` (IPv4), id `id`. The address starts at byte 48 of the message.
fn ecs_query(id: u16, addr: &[u8], prefix: u8) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend(b"\x07example\x03com\x00");
    m.extend([0, 1, 0, 1]);
    let opt_len = 4 + addr.len();
    m.extend([0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    m.extend(((4 + opt_len) as u16).to_be_bytes());
    m.extend([0, 8]);
    m.extend((opt_len as u16).to_be_bytes());
    m.extend([0, 1, prefix, 0]);
    m.extend(addr);
    m
}

fn framed(m: &[u8]) -> Vec<u8> {
    let mut v = (m.len() as u16).to_be_bytes().to_vec();
    v.extend(m);
    v
}

/// One generated connection: the handshake, then the client's stream cut
/// into `cuts` (byte ranges of `stream`, in the order sent), each segment
/// acknowledged by the server unless `acks` is false.
struct Conn {
    port: u16,
    isn: u32,
    stream: Vec<u8>,
}

impl Conn {
    fn new(port: u16, isn: u32, stream: Vec<u8>) -> Self {
        Conn { port, isn, stream }
    }
    fn syn(&self) -> Vec<Vec<u8>> {
        vec![
            tcp4(C4, S4, self.port, 53, self.isn, 0, SYN, &[]),
            tcp4(
                S4,
                C4,
                53,
                self.port,
                7000,
                self.isn.wrapping_add(1),
                SYN | ACK,
                &[],
            ),
            tcp4(
                C4,
                S4,
                self.port,
                53,
                self.isn.wrapping_add(1),
                7001,
                ACK,
                &[],
            ),
        ]
    }
    fn seg(&self, r: std::ops::Range<usize>) -> Vec<u8> {
        let seq = self.isn.wrapping_add(1).wrapping_add(r.start as u32);
        tcp4(C4, S4, self.port, 53, seq, 7001, ACK | PSH, &self.stream[r])
    }
    fn ack(&self, upto: usize) -> Vec<u8> {
        let a = self.isn.wrapping_add(1).wrapping_add(upto as u32);
        tcp4(S4, C4, 53, self.port, 7001, a, ACK, &[])
    }
    fn fin(&self) -> Vec<u8> {
        let seq = self
            .isn
            .wrapping_add(1)
            .wrapping_add(self.stream.len() as u32);
        tcp4(C4, S4, self.port, 53, seq, 7001, FIN | ACK, &[])
    }
}

/// Wash a pcap with Crypto-PAn (file input: the batched path). Returns the
/// output and the drop reasons.
fn wash(dir: &Path, input: &[u8], extra: &[&str]) -> (Vec<u8>, BTreeMap<String, u64>) {
    let k = key_file(dir, "k", KEY);
    let inp = dir.join("in.pcap");
    let out = dir.join("out.pcap");
    let st = dir.join("stats.json");
    std::fs::write(&inp, input).unwrap();
    let mut a = vec![
        "wash",
        "--method",
        "cryptopan",
        "--key-file",
        k.to_str().unwrap(),
        "-q",
        "--stats-json",
        st.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    a.extend(extra);
    a.push(inp.to_str().unwrap());
    run_ok(&a, b"");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&st).unwrap()).unwrap();
    let drops = s["dropped_by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    (std::fs::read(&out).unwrap(), drops)
}

/// Crypto-PAn of the zero-extended IPv4 prefix, cut back to `bits`.
fn expected_prefix(dir: &Path, addr: &[u8], bits: u8) -> Vec<u8> {
    let mut full = [0u8; 4];
    full[..addr.len()].copy_from_slice(addr);
    let a = mapped(dir, &[Ipv4Addr::from(full)])[0];
    let m = u32::from(a) & (u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0));
    m.to_be_bytes()[..addr.len()].to_vec()
}

struct Seg {
    sport: u16,
    dport: u16,
    seq: u32,
    payload: Vec<u8>,
}

/// Parse an Ethernet/IPv4/TCP frame, verifying the IP and TCP checksums.
fn parse(f: &[u8]) -> Option<Seg> {
    if f.len() < 34 || f[12..14] != [8, 0] || f[23] != 6 {
        return None;
    }
    let ip = &f[14..];
    let ihl = (ip[0] & 15) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    assert_eq!(csum(&ip[..ihl]), 0, "IPv4 header checksum");
    let t = &ip[ihl..total];
    let mut ph = ip[12..20].to_vec();
    ph.extend([0, 6]);
    ph.extend((t.len() as u16).to_be_bytes());
    ph.extend(t);
    assert_eq!(csum(&ph), 0, "TCP checksum");
    let doff = (t[12] >> 4) as usize * 4;
    Some(Seg {
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes(t[4..8].try_into().unwrap()),
        payload: t[doff..].to_vec(),
    })
}

/// The client streams in `frames` (by client port), rebuilt by sequence
/// number from every copy of every byte; all copies of a byte must agree.
fn client_streams(frames: &[Vec<u8>], isn: &BTreeMap<u16, u32>) -> BTreeMap<u16, Vec<u8>> {
    let mut bytes: BTreeMap<u16, BTreeMap<u32, u8>> = BTreeMap::new();
    for f in frames {
        let Some(s) = parse(f) else { continue };
        if s.dport != 53 || s.payload.is_empty() {
            continue;
        }
        let base = isn[&s.sport].wrapping_add(1);
        let m = bytes.entry(s.sport).or_default();
        for (i, b) in s.payload.iter().enumerate() {
            let off = s.seq.wrapping_add(i as u32).wrapping_sub(base);
            if let Some(prev) = m.insert(off, *b) {
                assert_eq!(prev, *b, "copies of byte {off} of port {} differ", s.sport);
            }
        }
    }
    bytes
        .into_iter()
        .map(|(p, m)| {
            let v: Vec<u8> = m.values().copied().collect();
            assert_eq!(m.len() as u32, m.keys().last().map_or(0, |k| k + 1), "hole");
            (p, v)
        })
        .collect()
}

const ADDR: [u8; 3] = [203, 0, 113];

/// ECS address offset in a framed stream of [`ecs_query`] messages.
const ECS_AT: usize = 2 + 48;

#[test]
fn ecs_split_at_every_byte_and_in_three() {
    let dir = tempfile::tempdir().unwrap();
    let stream = framed(&ecs_query(1, &ADDR, 24));
    let mut frames = Vec::new();
    let mut isn = BTreeMap::new();
    let mut port = 40000u16;
    // Two segments, cut at every byte; a wrapping initial sequence number
    // for every other connection.
    for k in 1..stream.len() {
        let c = Conn::new(
            port,
            if k % 2 == 0 {
                u32::MAX - 20
            } else {
                1000 * k as u32
            },
            stream.clone(),
        );
        isn.insert(port, c.isn);
        frames.extend(c.syn());
        frames.push(c.seg(0..k));
        frames.push(c.ack(k));
        frames.push(c.seg(k..stream.len()));
        frames.push(c.ack(stream.len()));
        frames.push(c.fin());
        port += 1;
    }
    // Three segments, the address cut twice.
    let c = Conn::new(port, 5, stream.clone());
    isn.insert(port, c.isn);
    frames.extend(c.syn());
    frames.push(c.seg(0..ECS_AT + 1));
    frames.push(c.seg(ECS_AT + 1..ECS_AT + 2));
    frames.push(c.seg(ECS_AT + 2..stream.len()));
    let input = pcap(&frames);
    let (out, drops) = wash(dir.path(), &input, &[]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    assert_eq!(of.len(), frames.len());
    let want = expected_prefix(dir.path(), &ADDR, 24);
    assert_ne!(want, ADDR);
    let streams = client_streams(&of, &isn);
    assert_eq!(streams.len(), isn.len());
    for (p, s) in &streams {
        assert_eq!(s.len(), stream.len(), "port {p}");
        assert_eq!(&s[ECS_AT..ECS_AT + 3], &want[..], "port {p}");
        // Every other byte of the stream is as sent.
        assert_eq!(s[..ECS_AT], stream[..ECS_AT], "port {p}");
        assert_eq!(s[ECS_AT + 3..], stream[ECS_AT + 3..], "port {p}");
    }
    // The same bytes from the sequential path (stdin), the stateful
    // path's ordering aside, and any number of threads.
    let k = key_file(dir.path(), "k", KEY);
    let seq = run_ok(
        &[
            "wash",
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "-q",
        ],
        &input,
    );
    assert_eq!(seq, out, "sequential and batched paths differ");
    for t in ["1", "2", "3"] {
        let (o, _) = wash(dir.path(), &input, &["--threads", t]);
        assert_eq!(o, out, "--threads {t}");
    }
}

#[test]
fn several_messages_per_segment_and_across() {
    let dir = tempfile::tempdir().unwrap();
    let a2 = [10, 1, 2];
    let a3 = [172, 16, 5];
    let mut stream = framed(&ecs_query(1, &ADDR, 24));
    let m2 = stream.len();
    stream.extend(framed(&ecs_query(2, &a2, 24)));
    let m3 = stream.len();
    stream.extend(framed(&ecs_query(3, &a3, 24)));
    let c = Conn::new(41000, 77, stream.clone());
    let mut isn = BTreeMap::new();
    isn.insert(c.port, c.isn);
    let mut frames = c.syn();
    // One segment: message 1 whole, message 2 up to inside its address;
    // the next: the rest of message 2 and all of message 3.
    frames.push(c.seg(0..m2 + ECS_AT + 1));
    frames.push(tcp4(
        C4,
        [198, 51, 100, 9],
        5000,
        5001,
        1,
        1,
        ACK,
        b"not dns",
    ));
    frames.push(c.seg(m2 + ECS_AT + 1..stream.len()));
    let (out, drops) = wash(dir.path(), &pcap(&frames), &[]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    assert_eq!(of.len(), frames.len());
    // Order kept: the unrelated segment is still between the two.
    assert_eq!(parse(&of[4]).unwrap().sport, 5000);
    let s = &client_streams(&of, &isn)[&c.port];
    for (at, a) in [(0, ADDR), (m2, a2), (m3, a3)] {
        assert_eq!(
            &s[at + ECS_AT..at + ECS_AT + 3],
            &expected_prefix(dir.path(), &a, 24)[..],
            "message at {at}"
        );
    }
}

#[test]
fn retransmissions_overlaps_and_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let stream = framed(&ecs_query(9, &ADDR, 24));
    let n = stream.len();
    let mut frames = Vec::new();
    let mut isn = BTreeMap::new();
    let cases: Vec<Vec<std::ops::Range<usize>>> = vec![
        // Retransmission of the first segment after the message completed.
        vec![0..ECS_AT + 1, ECS_AT + 1..n, 0..ECS_AT + 1],
        // Retransmission of the first segment before the rest.
        vec![0..ECS_AT + 1, 0..ECS_AT + 1, ECS_AT + 1..n],
        // Overlapping segments.
        vec![0..ECS_AT + 2, ECS_AT..n],
        vec![0..10, 5..ECS_AT + 1, ECS_AT - 3..n, 20..n],
        // Out of order.
        vec![ECS_AT + 1..n, 0..ECS_AT + 1],
        vec![30..n, 10..30, 0..10],
        // Out of order and overlapping.
        vec![ECS_AT..n, 0..ECS_AT + 2],
    ];
    for (i, cuts) in cases.iter().enumerate() {
        let c = Conn::new(42000 + i as u16, 100 * i as u32, stream.clone());
        isn.insert(c.port, c.isn);
        frames.extend(c.syn());
        for r in cuts {
            frames.push(c.seg(r.clone()));
        }
        frames.push(c.ack(n));
        frames.push(c.fin());
    }
    let (out, drops) = wash(dir.path(), &pcap(&frames), &[]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    assert_eq!(of.len(), frames.len());
    let want = expected_prefix(dir.path(), &ADDR, 24);
    // `client_streams` checks that every copy of every byte agrees.
    for (p, s) in client_streams(&of, &isn) {
        assert_eq!(&s[ECS_AT..ECS_AT + 3], &want[..], "port {p}");
        assert_eq!(s[..ECS_AT], stream[..ECS_AT], "port {p}");
    }
}

#[test]
fn conflicts_gaps_and_midstream_starts_are_dropped_by_rule() {
    let dir = tempfile::tempdir().unwrap();
    let q1 = framed(&ecs_query(1, &ADDR, 24));
    let mut stream = q1.clone();
    stream.extend(framed(&ecs_query(2, &ADDR, 24)));
    let n1 = q1.len();
    let n = stream.len();
    let mut frames = Vec::new();
    // A retransmission whose address bytes differ from the first copy.
    let c = Conn::new(43000, 1, stream.clone());
    frames.extend(c.syn());
    frames.push(c.seg(0..n1));
    let mut bad = c.seg(0..n1);
    let at = bad.len() - n1 + ECS_AT;
    bad[at] ^= 1;
    frames.push(bad);
    frames.push(c.seg(n1..n));
    // A lost segment (the capture missed it; the server acknowledged it):
    // what was captured of the message it cut is walked as far as it goes
    // and kept; the segment after the hole cannot start a message (its
    // first bytes read as a length of 256) and is dropped; the next
    // message is followed again.
    let c = Conn::new(43001, 1, stream.clone());
    frames.extend(c.syn());
    frames.push(c.seg(0..10));
    frames.push(c.ack(30));
    frames.push(c.seg(30..n1));
    frames.push(c.seg(n1..n));
    // A capture starting inside a message: dropped until a segment that
    // starts a message.
    let c = Conn::new(43002, 1, stream.clone());
    frames.push(c.seg(10..n1));
    frames.push(c.seg(n1..n));
    let (out, drops) = wash(dir.path(), &pcap(&frames), &[]);
    let want: BTreeMap<String, u64> = [("tcp_dns_conflict", 1), ("tcp_dns_unsynced", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(drops, want);
    let of = frames_of(&out);
    assert_eq!(of.len(), frames.len() - 3);
    // What is left of each connection carries washed addresses only.
    let w = expected_prefix(dir.path(), &ADDR, 24);
    let mut seen = 0;
    for f in &of {
        let Some(s) = parse(f) else { continue };
        if s.payload.len() >= ECS_AT + 3 {
            assert_eq!(&s.payload[ECS_AT..ECS_AT + 3], &w[..]);
            seen += 1;
        }
        assert!(
            !s.payload.windows(3).any(|x| x == ADDR),
            "original address left"
        );
    }
    assert_eq!(seen, 4);
}

// ------------------------------------------------------------- corpus

/// tshark's view of a capture: DNS query names per frame (TCP reassembly
/// on, two passes) and the frames with TCP analysis flags.
fn tshark_view(p: &Path) -> (Vec<String>, BTreeSet<(String, String)>) {
    let o = Command::new("tshark")
        .args(["-n", "-2", "-o", "tcp.desegment_tcp_streams:TRUE", "-r"])
        .arg(p)
        .args([
            "-Y",
            "dns",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "dns.qry.name",
        ])
        .output()
        .expect("tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .flat_map(|l| {
            let name = l.split('\t').nth(1).unwrap_or("").to_string();
            // One entry per message (several messages in a frame).
            name.split(',').map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    let o = Command::new("tshark")
        .args(["-n", "-2", "-o", "tcp.desegment_tcp_streams:TRUE", "-r"])
        .arg(p)
        .args([
            "-Y",
            "tcp.analysis.flags",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ])
        .output()
        .expect("tshark");
    let flags = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let mut it = l.split('\t');
            (
                it.next().unwrap_or("").to_string(),
                it.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    (names, flags)
}

#[test]
fn corpus_tcp_captures_are_followed() {
    let Some(corpus) = corpus() else { return };
    let have = have_tool("tshark");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "oarc-dnscap__dnso1tcp.pcap",
        "oarc-dnscap__dnsotcp-many1pkt.pcap",
        "oarc-dnscap__dnsotcp-manyopkts.pcap",
        "oarc-dnscap__dnso1tcp-midmiss.pcap",
    ] {
        let p = corpus.join("pcap").join(name);
        let input = std::fs::read(&p).unwrap();
        // Reverse names are washed (the default): messages whose names
        // change length re-cut their last segment and shift the stream.
        let (out, drops) = wash(dir.path(), &input, &[]);
        assert!(!drops.contains_key("tcp_dns_split"), "{name}: {drops:?}");
        // midmiss lacks a segment: only the message it cut may go.
        let allowed = if name.contains("midmiss") { 2 } else { 0 };
        assert!(drops.values().sum::<u64>() <= allowed, "{name}: {drops:?}");
        if !have {
            continue;
        }
        let o = dir.path().join(format!("{name}.out.pcap"));
        std::fs::write(&o, &out).unwrap();
        let (n0, f0) = tshark_view(&p);
        let (n1, f1) = tshark_view(&o);
        assert!(!n0.is_empty(), "{name}");
        if allowed == 0 {
            assert_eq!(n1.len(), n0.len(), "{name}: DNS messages decoded");
            for (a, b) in n0.iter().zip(&n1) {
                if a.ends_with(".in-addr.arpa") || a.ends_with(".ip6.arpa") {
                    assert_ne!(a, b, "{name}: reverse name washed");
                    assert_eq!(
                        a.rsplit('.').take(2).collect::<Vec<_>>(),
                        b.rsplit('.').take(2).collect::<Vec<_>>()
                    );
                } else {
                    assert_eq!(a, b, "{name}: other names unchanged");
                }
            }
            assert!(
                f1.is_subset(&f0),
                "{name}: new TCP analysis flags {:?}",
                f1.difference(&f0)
            );
        } else {
            assert!(
                n1.len() + 2 >= n0.len(),
                "{name}: {} vs {}",
                n1.len(),
                n0.len()
            );
        }
    }
}

/// A PTR query for `name` (dotted), id `id`.
fn ptr_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend(l.as_bytes());
    }
    m.extend([0, 0, 12, 0, 1]);
    m
}

fn v4_reverse(a: Ipv4Addr) -> String {
    let o = a.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// Crypto-PAn of whole IPv4 addresses, through `ipwash map`.
fn mapped(dir: &Path, addrs: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    let k = key_file(dir, "k", KEY);
    let input: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    let out = run_ok(
        &[
            "map",
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Reverse names whose washed form is longer or shorter: the last segment
/// of each such message grows or shrinks, the length prefix follows, and
/// every later sequence number of the client (and the server's
/// acknowledgements of them) moves by the change, so the output stream is
/// contiguous, every checksum verifies, and washing back gives the input
/// byte for byte.
#[test]
fn reverse_names_that_change_length_shift_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    // One address whose pseudonym is written longer, one shorter.
    let cands: Vec<Ipv4Addr> = (1..=223).map(|i| Ipv4Addr::new(i, 123, 45, 67)).collect();
    let m = mapped(dir.path(), &cands);
    let len = |a: &Ipv4Addr| a.to_string().len();
    let pick = |f: &dyn Fn(usize, usize) -> bool| {
        let i = (0..cands.len())
            .find(|&i| f(len(&m[i]), len(&cands[i])))
            .expect("a candidate");
        (cands[i], m[i])
    };
    let (grow, grow_w) = pick(&|w, o| w > o);
    let (shrink, shrink_w) = pick(&|w, o| w < o);
    let m1 = ptr_query(1, &v4_reverse(grow));
    let m2 = ecs_query(2, &ADDR, 24);
    let m3 = ptr_query(3, &v4_reverse(shrink));
    let (f1, f2, f3) = (framed(&m1), framed(&m2), framed(&m3));
    let stream: Vec<u8> = [f1.clone(), f2.clone(), f3.clone()].concat();
    let n1 = f1.len();
    let n = stream.len();
    let c = Conn::new(43000, 0xffff_fff0, stream.clone());
    let mut frames = c.syn();
    // Message 1 over three segments (its prefix alone), its last one
    // retransmitted before the server's acknowledgement; then messages 2
    // and 3 in one segment, acknowledged, and FIN.
    frames.push(c.seg(0..2));
    frames.push(c.seg(2..10));
    frames.push(c.seg(10..n1));
    frames.push(c.seg(10..n1));
    frames.push(c.ack(n1));
    frames.push(c.seg(n1..n));
    frames.push(c.ack(n));
    frames.push(c.fin());
    frames.push(c.ack(n + 1));
    let input = pcap(&frames);
    let (out, drops) = wash(dir.path(), &input, &[]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    assert_eq!(of.len(), frames.len());
    let isn = BTreeMap::from([(43000u16, c.isn)]);
    let streams = client_streams(&of, &isn);
    let s = &streams[&43000];
    // The stream as written: the three messages, reverse names washed.
    let w1 = ptr_query(1, &v4_reverse(grow_w));
    let w3 = ptr_query(3, &v4_reverse(shrink_w));
    assert!(w1.len() > m1.len() && w3.len() < m3.len());
    let mut w2 = m2.clone();
    let e = expected_prefix(dir.path(), &ADDR, 24);
    w2[48..48 + e.len()].copy_from_slice(&e);
    let want: Vec<u8> = [framed(&w1), framed(&w2), framed(&w3)].concat();
    assert_eq!(*s, want, "washed stream");
    // Acknowledgements and FIN follow the new lengths.
    let ack_of = |f: &[u8]| u32::from_be_bytes(f[14 + 20 + 8..14 + 20 + 12].try_into().unwrap());
    let seq_of = |f: &[u8]| u32::from_be_bytes(f[14 + 20 + 4..14 + 20 + 8].try_into().unwrap());
    let base = c.isn.wrapping_add(1);
    let w1n = framed(&w1).len() as u32;
    assert_eq!(ack_of(&of[7]), base.wrapping_add(w1n));
    assert_eq!(seq_of(&of[8]), base.wrapping_add(w1n));
    assert_eq!(ack_of(&of[9]), base.wrapping_add(want.len() as u32));
    assert_eq!(seq_of(&of[10]), base.wrapping_add(want.len() as u32));
    assert_eq!(ack_of(&of[11]), base.wrapping_add(want.len() as u32 + 1));
    // The handshake and the segments before the change keep their
    // numbers, as does the retransmission (which grows as the first copy).
    for i in [0, 1, 2, 3, 4, 5, 6] {
        assert_eq!(seq_of(&of[i]), seq_of(&frames[i]), "frame {i}");
        assert_eq!(ack_of(&of[i]), ack_of(&frames[i]), "frame {i}");
    }
    assert_eq!(
        of[5], of[6],
        "the retransmission is written as the first copy"
    );
    assert!(of[5].len() > frames[5].len());
    for f in &of {
        assert!(parse(f).is_some());
    }
    // Washing back restores every byte, sequence numbers included.
    let k = key_file(dir.path(), "k", KEY);
    let back = dir.path().join("back.pcap");
    run_ok(
        &[
            "wash",
            "--reverse",
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
            "-q",
            "-o",
            back.to_str().unwrap(),
            dir.path().join("out.pcap").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(frames_of(&std::fs::read(&back).unwrap()), frames);
    // tshark follows the washed stream without new analysis flags.
    if have_tool("tshark") {
        let (n0, f0) = tshark_view(&dir.path().join("in.pcap"));
        let (n1, f1) = tshark_view(&dir.path().join("out.pcap"));
        assert_eq!(n0.len(), n1.len());
        assert!(f1.is_subset(&f0), "new flags {:?}", f1.difference(&f0));
    }
}

/// A PTR query for the ip6.arpa name of 2001:db8::7 (a reverse name keeps
/// its length) with a DNS Cookie (client part of 8 bytes).
fn cookie_ptr_query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    let addr: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    for b in addr.iter().rev() {
        for n in [b & 0xf, b >> 4] {
            m.push(1);
            m.push(b"0123456789abcdef"[n as usize]);
        }
    }
    m.extend(b"\x03ip6\x04arpa\x00");
    m.extend([0, 12, 0, 1]);
    m.extend([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 12]);
    m.extend([0, 10, 0, 8]);
    m.extend(*b"cookie!!");
    m
}

/// Ethernet / IPv4 / UDP (checksum 0: none) carrying `payload`.
fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    eth_ipv4(C4, S4, 17, &u)
}

/// EDNS client identifiers and reverse names inside a message reassembled
/// from segments are washed as in the same message over UDP.
#[test]
fn identifiers_and_reverse_names_in_split_messages() {
    let dir = tempfile::tempdir().unwrap();
    let msg = cookie_ptr_query(9);
    let stream = framed(&msg);
    let mut frames = vec![udp4(39999, 53, &msg)];
    let mut isn = BTreeMap::new();
    for (port, k) in (41000u16..).zip((1..stream.len()).step_by(5)) {
        let c = Conn::new(port, 100 * k as u32, stream.clone());
        isn.insert(port, c.isn);
        frames.extend(c.syn());
        frames.push(c.seg(0..k));
        frames.push(c.seg(k..stream.len()));
        frames.push(c.fin());
    }
    let input = pcap(&frames);
    let (out, drops) = wash(dir.path(), &input, &[]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    // The UDP copy: Ethernet 14 + IPv4 20 + UDP 8.
    let udp_washed = of[0][42..].to_vec();
    assert_eq!(udp_washed.len(), msg.len());
    let name_end = 12 + 64 + 10;
    assert_ne!(
        udp_washed[12..name_end],
        msg[12..name_end],
        "reverse name washed"
    );
    assert_ne!(
        udp_washed[msg.len() - 8..],
        msg[msg.len() - 8..],
        "cookie washed"
    );
    for (p, s) in client_streams(&of, &isn) {
        assert_eq!(s[2..], udp_washed[..], "port {p}: as over UDP");
    }
}

/// Segments after two holes at the end of a capture: whatever is written
/// holds no original ECS address (the bytes after the second hole are walked
/// or dropped, never written as they came).
#[test]
fn segments_after_two_holes_are_never_written_raw() {
    let dir = tempfile::tempdir().unwrap();
    let q = framed(&ecs_query(1, &ADDR, 24));
    let n = q.len();
    let stream: Vec<u8> = (0..4).flat_map(|_| q.clone()).collect();
    let c = Conn::new(42000, 77, stream.clone());
    let mut frames = c.syn();
    frames.push(c.seg(0..n));
    // Hole: the second message's first half; then its second half.
    frames.push(c.seg(n + n / 2..2 * n));
    // Hole: the third message; then the fourth, whole, then a cut piece.
    frames.push(c.seg(3 * n..4 * n));
    let (out, _) = wash(dir.path(), &pcap(&frames), &[]);
    let raw = {
        let mut v = vec![0, 8, 0, 7, 0, 1, 24, 0];
        v.extend(ADDR);
        v
    };
    for (i, f) in frames_of(&out).iter().enumerate() {
        assert!(
            !f.windows(raw.len()).any(|w| w == raw),
            "frame {i} holds the original ECS option"
        );
    }
}

/// `--dns-port`: DNS on another port is walked as DNS (its ECS washed over
/// UDP and over TCP split across segments); without it, that port's
/// payload is not DNS to ipwash.
#[test]
fn dns_port_is_walked_as_dns() {
    let dir = tempfile::tempdir().unwrap();
    let q = ecs_query(3, &ADDR, 24);
    let stream = framed(&q);
    let c = Conn::new(43000, 9, stream.clone());
    let mut frames = vec![udp4(39998, 5300, &q)];
    // The connection to port 5300: rewrite the builder's port 53.
    let mut tcp = c.syn();
    tcp.push(c.seg(0..ECS_AT + 1));
    tcp.push(c.seg(ECS_AT + 1..stream.len()));
    for f in &mut tcp {
        if f[14 + 22..14 + 24] == [0, 53] {
            f[14 + 22..14 + 24].copy_from_slice(&5300u16.to_be_bytes());
        } else {
            f[14 + 20..14 + 22].copy_from_slice(&5300u16.to_be_bytes());
        }
        // Fix the TCP checksum for the new port (0x14b4 - 0x0035).
        let ck = u16::from_be_bytes([f[14 + 36], f[14 + 37]]);
        let mut sum = u32::from(!ck) + u32::from(!53u16) + 5300;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        f[14 + 36..14 + 38].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    frames.extend(tcp);
    let input = pcap(&frames);
    let want = expected_prefix(dir.path(), &ADDR, 24);
    let (out, drops) = wash(dir.path(), &input, &["--dns-port", "5300"]);
    assert!(drops.is_empty(), "{drops:?}");
    let of = frames_of(&out);
    let udp_ecs = 42 + 48;
    assert_eq!(of[0][udp_ecs..udp_ecs + 3], want[..], "UDP on --dns-port");
    let tcp_payload: Vec<u8> = of[4..].iter().flat_map(|f| f[14 + 40..].to_vec()).collect();
    assert_eq!(
        tcp_payload[ECS_AT..ECS_AT + 3],
        want[..],
        "TCP on --dns-port"
    );
    // Without the flag the port is not DNS: the payload is copied.
    let (out, _) = wash(dir.path(), &input, &[]);
    assert_eq!(frames_of(&out)[0][udp_ecs..udp_ecs + 3], ADDR[..]);
}
