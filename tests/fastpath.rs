//! The shortcut for plain UDP packets against the general walker: for any
//! bytes, `locate` (shortcut first) and `locate_general` (walker only) give
//! the same result, slot for slot and checksum for checksum. Checked on
//! generated packets, many of them deliberately broken, on the bundled
//! sample and, with `IPWASH_CORPUS`, on every packet of the real captures.

mod common;

use std::path::Path;

use ipwash::capture::{open_input, CaptureReader, ReaderOptions};
use std::sync::Arc;

use ipwash::packet::{locate, locate_general, locate_plain, Located};
use ipwash::pipeline::{wash_packet, Unparsed, Worker};
use ipwash::wash::{KeepPrefix, Scope, StatefulTech, Technique, Washer};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::truncate::{TruncMode, Truncate};
use ipwash_algorithms::Key;
use proptest::prelude::*;

/// Compare the two locators on one packet; true when the shortcut took it.
fn same(linktype: u32, pkt: &[u8]) -> bool {
    let (mut a, mut b, mut c) = (Located::new(), Located::new(), Located::new());
    let ra = locate(linktype, pkt, &mut a);
    let rb = locate_general(linktype, pkt, &mut b);
    assert_eq!(ra, rb, "linktype {linktype}, packet {pkt:02x?}");
    assert_eq!(a, b, "linktype {linktype}, packet {pkt:02x?}");
    let took = locate_plain(linktype, pkt, &mut c);
    if took {
        assert!(rb.is_ok());
        assert_eq!(c, b, "linktype {linktype}, packet {pkt:02x?}");
    } else {
        assert_eq!(c, Located::new(), "a refused packet leaves nothing behind");
    }
    took
}

/// The washers the shortcut is compared under: a cipher through the cache,
/// truncation with client scope and a keep-list, a stateful numbering.
fn washers() -> Vec<Washer> {
    let cp = Washer::new(Technique::Stateless(Arc::new(CryptoPan::new(&Key::new(
        *b"0123456789abcdef0123456789abcdef",
    )))));
    let mut tr = Washer::new(Technique::Stateless(Arc::new(
        Truncate::new(24, 48, TruncMode::Keep).expect("prefixes"),
    )));
    tr.scope = Scope::Clients;
    tr.keep
        .push(KeepPrefix::parse("10.1.0.0/16").expect("prefix"));
    let en = Washer::new(Technique::Stateful(Box::new(StatefulTech::Enumerate(
        Enumerate::new(Numbering::Sequential),
    ))));
    vec![cp, tr, en]
}

/// Wash one packet with and without the shortcut (each side with its own
/// washer and worker, fed the same packets): same bytes, same outcome.
struct Twin {
    pairs: Vec<(Washer, Worker, Washer, Worker)>,
}

impl Twin {
    fn new() -> Self {
        let pairs = washers()
            .into_iter()
            .zip(washers())
            .map(|(a, b)| {
                let mut general = Worker::new(64);
                general.shortcut = false;
                (a, Worker::new(64), b, general)
            })
            .collect();
        Twin { pairs }
    }

    fn check(&mut self, linktype: u32, pkt: &[u8]) {
        for (wa, ka, wb, kb) in &mut self.pairs {
            let (mut a, mut b) = (pkt.to_vec(), pkt.to_vec());
            let oa = wash_packet(&mut a, linktype, wa, ka, Unparsed::Drop);
            let ob = wash_packet(&mut b, linktype, wb, kb, Unparsed::Drop);
            assert_eq!(oa, ob, "linktype {linktype}, packet {pkt:02x?}");
            assert_eq!(a, b, "linktype {linktype}, packet {pkt:02x?}");
            assert_eq!(ka.loc.frag, kb.loc.frag);
        }
    }
}

/// One pair of twins for all generated cases (washers are costly to set up).
fn twin_check(linktype: u32, pkt: &[u8]) {
    static TWIN: std::sync::OnceLock<std::sync::Mutex<Twin>> = std::sync::OnceLock::new();
    let t = TWIN.get_or_init(|| std::sync::Mutex::new(Twin::new()));
    t.lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(linktype, pkt);
}

// ------------------------------------------------------------- generator

fn name(m: &mut Vec<u8>, labels: &[&str]) {
    for l in labels {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
}

/// A DNS message: a query or a response with one A answer, optionally an
/// OPT record, optionally with an ECS option of the given family.
fn dns(response: bool, opt: bool, ecs: Option<u16>) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, if response { 0x81 } else { 0x01 }, 0];
    m.extend_from_slice(&[0, 1, 0, response as u8, 0, 0, 0, opt as u8]);
    name(&mut m, &["www", "example", "com"]);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if response {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 7]);
    }
    if opt {
        let mut rdata = Vec::new();
        if let Some(fam) = ecs {
            let (prefix, addr): (u8, &[u8]) = if fam == 1 {
                (24, &[198, 51, 100])
            } else {
                (56, &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 2])
            };
            rdata.extend_from_slice(&[0, 8]);
            rdata.extend_from_slice(&(4 + addr.len() as u16).to_be_bytes());
            rdata.extend_from_slice(&fam.to_be_bytes());
            rdata.extend_from_slice(&[prefix, 0]);
            rdata.extend_from_slice(addr);
        }
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

fn sum(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| (c[0] as u32) << 8 | c.get(1).copied().unwrap_or(0) as u32)
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// What a generated packet looks like; `tweak` breaks one field.
#[derive(Debug, Clone)]
struct Gen {
    link: u8,
    vlans: u8,
    v6: bool,
    sport: u16,
    dport: u16,
    payload: u8,
    tweak: Option<(u8, u16)>,
    cut: Option<usize>,
    pad: u8,
    /// UDP checksum: valid, zero ("none") or wrong.
    ck: u8,
}

const PORTS: [u16; 12] = [
    53, 53, 53, 853, 443, 3544, 4789, 6081, 2152, 1701, 5353, 40000,
];

fn build(g: &Gen) -> (u32, Vec<u8>) {
    let payload = match g.payload % 6 {
        0 => dns(false, false, None),
        1 => dns(true, false, None),
        2 => dns(false, true, None),
        3 => dns(false, true, Some(1)),
        4 => dns(true, true, Some(2)),
        _ => vec![0xde, 0xad, 0xbe],
    };
    let ulen = 8 + payload.len();
    let (src, dst): (Vec<u8>, Vec<u8>) = if g.v6 {
        (
            [0x20, 1, 0xd, 0xb8]
                .iter()
                .chain(&[0; 11])
                .chain(&[5])
                .copied()
                .collect(),
            [0x20, 1, 0xd, 0xb8]
                .iter()
                .chain(&[0; 11])
                .chain(&[53])
                .copied()
                .collect(),
        )
    } else {
        (vec![10, 1, 2, 3], vec![192, 0, 2, 53])
    };
    let mut udp = Vec::new();
    udp.extend_from_slice(&g.sport.to_be_bytes());
    udp.extend_from_slice(&g.dport.to_be_bytes());
    udp.extend_from_slice(&(ulen as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let mut ps = sum(&src) + sum(&dst) + 17 + ulen as u32;
    ps += sum(&udp);
    let ck = match fold(ps) {
        _ if g.ck % 3 == 1 => 0,
        c if g.ck % 3 == 2 => c ^ 0x1234,
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&ck.to_be_bytes());
    let mut ip = Vec::new();
    if g.v6 {
        ip.extend_from_slice(&[0x60, 0, 0, 0]);
        ip.extend_from_slice(&(ulen as u16).to_be_bytes());
        ip.extend_from_slice(&[17, 64]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
    } else {
        ip.extend_from_slice(&[0x45, 0]);
        ip.extend_from_slice(&(20 + ulen as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = fold(sum(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let ipstart;
    let (linktype, mut p) = match g.link % 6 {
        0 | 1 => {
            let mut p = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
            for i in 0..g.vlans % 4 {
                p.extend_from_slice(&[0x81, 0, 0, i]);
            }
            p.extend_from_slice(if g.v6 { &[0x86, 0xdd] } else { &[8, 0] });
            ipstart = p.len();
            (1, p)
        }
        2 => {
            let mut p = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            p.extend_from_slice(if g.v6 { &[0x86, 0xdd] } else { &[8, 0] });
            ipstart = p.len();
            (113, p)
        }
        3 => {
            let mut p = if g.v6 { vec![0x86, 0xdd] } else { vec![8, 0] };
            p.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            ipstart = p.len();
            (276, p)
        }
        4 => {
            ipstart = 0;
            (101, Vec::new())
        }
        _ => {
            ipstart = 0;
            (if g.v6 { 229 } else { 228 }, Vec::new())
        }
    };
    p.extend_from_slice(&ip);
    p.extend_from_slice(&udp);
    p.extend(std::iter::repeat_n(0u8, g.pad as usize % 8));
    if let Some((at, v)) = g.tweak {
        // Overwrite a 16-bit word somewhere in the link, IP or UDP header.
        let at = ipstart.saturating_sub(4) + at as usize % (ip.len() + 12);
        if at + 2 <= p.len() {
            p[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
    }
    if let Some(c) = g.cut {
        p.truncate(c % (p.len() + 1));
    }
    (linktype, p)
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        (0..PORTS.len(), 0..PORTS.len(), any::<u16>()),
        any::<u8>(),
        prop::option::weighted(0.5, (any::<u8>(), any::<u16>())),
        prop::option::weighted(0.2, any::<usize>()),
        (any::<u8>(), any::<u8>()),
    )
        .prop_map(
            |(link, vlans, v6, (s, d, r), payload, tweak, cut, (pad, ck))| {
                let port = |i: usize| {
                    if PORTS[i] == 40000 {
                        r | 1024
                    } else {
                        PORTS[i]
                    }
                };
                Gen {
                    link,
                    vlans,
                    v6,
                    sport: port(s),
                    dport: port(d),
                    payload,
                    tweak,
                    cut,
                    pad,
                    ck,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn shortcut_agrees_with_the_walker(g in gen()) {
        let (lt, p) = build(&g);
        let took = same(lt, &p);
        twin_check(lt, &p);
        // An untouched packet without VLAN stacks, tunnel ports or ECS is
        // the shortcut's to take.
        let tunnel = [3544, 4789, 6081, 2152, 1701].iter().any(|&t| t == g.sport || t == g.dport);
        // Multicast DNS and LLMNR are walked for EDNS identifiers too.
        let dnsish = [53, 5353, 5355].iter().any(|&p| p == g.sport || p == g.dport);
        let ecs = matches!(g.payload % 6, 3 | 4) && dnsish;
        let bad_dns = g.payload % 6 == 5 && dnsish;
        if g.tweak.is_none() && g.cut.is_none() && g.vlans % 4 <= 2 && !tunnel && !ecs && !bad_dns {
            prop_assert!(took, "{:?}", g);
        }
    }

    #[test]
    fn shortcut_agrees_on_random_bytes(lt in prop::sample::select(vec![1u32, 101, 113, 228, 229, 276]),
                                       p in prop::collection::vec(any::<u8>(), 0..120)) {
        same(lt, &p);
        twin_check(lt, &p);
    }
}

// ----------------------------------------------------------- real files

fn check_file(path: &Path) -> (u64, u64) {
    let input = open_input(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rd = match CaptureReader::new(input.into_reader(), ReaderOptions::KEEP_ALL) {
        Ok(r) => r,
        Err(_) => return (0, 0),
    };
    let (mut n, mut took) = (0, 0);
    let mut twin = Twin::new();
    while let Ok(Some(u)) = rd.next_unit() {
        if let Some(p) = &u.packet {
            n += 1;
            let bytes = &u.data[p.range.clone()];
            took += same(p.linktype, bytes) as u64;
            twin.check(p.linktype, bytes);
        }
    }
    (n, took)
}

#[test]
fn shortcut_agrees_on_the_sample() {
    let (n, took) = check_file(&common::root().join("testdata/sample-dns.pcap"));
    assert!(n > 0 && took > 0, "shortcut took {took} of {n} packets");
}

#[test]
fn shortcut_takes_every_plain_dns_packet() {
    // The generated benchmark traffic is plain UDP DNS over Ethernet, IPv4
    // and IPv6: every packet is the shortcut's.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synth.pcap");
    let spec = ipwash::synth::SynthSpec {
        packets: 5000,
        clients: 300,
        seed: 7,
        random_clients: false,
    };
    let f = std::fs::File::create(&path).expect("create");
    ipwash::synth::write_capture(spec, std::io::BufWriter::new(f)).expect("write");
    let (n, took) = check_file(&path);
    assert_eq!((n, took), (5000, 5000));
}

#[test]
fn shortcut_agrees_on_the_corpus() {
    let Some(dir) = common::corpus() else {
        return;
    };
    let mut files = Vec::new();
    for sub in ["pcap", "pcap/derived"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("corpus folder") {
            let p = e.expect("entry").path();
            let name = p.to_string_lossy().to_string();
            if name.contains(".pcap") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty());
    let (mut all, mut took) = (0, 0);
    for f in &files {
        let (n, t) = check_file(f);
        all += n;
        took += t;
    }
    eprintln!(
        "{} files, {all} packets, {took} through the shortcut",
        files.len()
    );
    assert!(took > 0 && all > took);
}
