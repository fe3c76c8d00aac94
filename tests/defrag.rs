//! Reassembly and ECS washing of fragmented DNS datagrams, end to end.
//!
//! Datagrams are built by hand (IPv4 and IPv6, UDP with a correct checksum,
//! a DNS query carrying an ECS option), split into fragments at every
//! possible 8-byte boundary, located with `ipwash::packet::locate` and fed
//! through `Defrag`. The output is checked with an independent reassembler
//! and checksum: the ECS address equals `wash_prefix` of the original, the
//! UDP checksum verifies, every other byte is unchanged, and units come out
//! in input order.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipwash::defrag::{Defrag, DefragLimits, Verdict};
use ipwash::packet::{locate, Located, Origin};
use ipwash::wash::{Side, Technique, Washer};
use ipwash_algorithms::AddrMap;

/// Bitwise NOT: prefix-preserving and its own inverse.
struct Flip;
impl AddrMap for Flip {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(!u32::from(a))
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(!u128::from(a))
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

fn washer() -> Washer {
    let mut w = Washer::new(Technique::Stateless(Arc::new(Flip)));
    // ECS is checked here; reverse names in fragments by tests/revnames.rs.
    w.reverse_names = ipwash::revname::ReverseNames::Keep;
    w
}

const C4: [u8; 4] = [192, 0, 2, 10];
const S4: [u8; 4] = [198, 51, 100, 53];
const C6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const S6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
/// Bytes of a fake capture record header in front of every packet.
const REC: usize = 16;

/// A DNS query whose question label has `pad` + 1 bytes, with an ECS option
/// (family, prefix, address bytes) and `tail` bytes of padding option after.
fn dns(pad: usize, fam: u16, prefix: u8, addr: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    m.push(pad as u8 + 1);
    m.extend(std::iter::repeat_n(b'a', pad + 1));
    m.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    let olen = 4 + addr.len();
    // ECS, then a 12-byte padding option (code 12) so the address is not
    // at the very end.
    m.extend_from_slice(&((4 + olen + 4 + 12) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 8]);
    m.extend_from_slice(&(olen as u16).to_be_bytes());
    m.extend_from_slice(&fam.to_be_bytes());
    m.extend_from_slice(&[prefix, 0]);
    m.extend_from_slice(addr);
    m.extend_from_slice(&[0, 12, 0, 12]);
    m.extend_from_slice(&[0; 12]);
    m
}

fn sum(data: &[u8], mut s: u64) -> u64 {
    for c in data.chunks(2) {
        s += (c[0] as u64) << 8 | c.get(1).copied().unwrap_or(0) as u64;
    }
    s
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// One's complement sum of a UDP datagram with its pseudo-header; 0xffff
/// when the checksum is valid.
fn udp_sum(src: &[u8], dst: &[u8], proto: u8, udp: &[u8]) -> u16 {
    let mut s = sum(src, 0);
    s = sum(dst, s);
    s += proto as u64 + udp.len() as u64;
    fold(sum(udp, s))
}

/// A UDP datagram (header + payload) with a valid checksum (or zero).
fn udp(sport: u16, dport: u16, payload: &[u8], src: &[u8], dst: &[u8], zero: bool) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    if !zero {
        let mut c = !udp_sum(src, dst, 17, &u);
        if c == 0 {
            c = 0xffff;
        }
        u[6..8].copy_from_slice(&c.to_be_bytes());
    }
    u
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fam {
    V4,
    V6,
}

/// Fragment `dgram` (the IP payload) at the given payload offsets; each
/// fragment is a raw IP packet (link types 228/229) behind a fake record
/// header of `REC` bytes.
fn fragments(fam: Fam, proto: u8, id: u32, dgram: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(dgram.len());
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(a % 8 == 0);
        let more = b != dgram.len();
        let mut p = vec![0xee; REC];
        match fam {
            Fam::V4 => {
                let tl = 20 + b - a;
                let fw = (a / 8) as u16 | if more { 0x2000 } else { 0 };
                p.extend_from_slice(&[0x45, 0]);
                p.extend_from_slice(&(tl as u16).to_be_bytes());
                p.extend_from_slice(&(id as u16).to_be_bytes());
                p.extend_from_slice(&fw.to_be_bytes());
                p.extend_from_slice(&[64, proto, 0, 0]);
                p.extend_from_slice(&C4);
                p.extend_from_slice(&S4);
                let c = !fold(sum(&p[REC..REC + 20], 0));
                p[REC + 10..REC + 12].copy_from_slice(&c.to_be_bytes());
            }
            Fam::V6 => {
                let pl = 8 + b - a;
                p.extend_from_slice(&[0x60, 0, 0, 0]);
                p.extend_from_slice(&(pl as u16).to_be_bytes());
                p.extend_from_slice(&[44, 64]);
                p.extend_from_slice(&C6);
                p.extend_from_slice(&S6);
                let fw = (a as u16) | more as u16;
                p.extend_from_slice(&[proto, 0]);
                p.extend_from_slice(&fw.to_be_bytes());
                p.extend_from_slice(&id.to_be_bytes());
            }
        }
        p.extend_from_slice(&dgram[a..b]);
        out.push(p);
    }
    out
}

fn linktype(fam: Fam) -> u32 {
    match fam {
        Fam::V4 => 228,
        Fam::V6 => 229,
    }
}

/// Independent reassembly of raw IP fragments (behind `REC` bytes):
/// returns the IP payload, or None if it has gaps.
fn reassemble(fam: Fam, frags: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut parts = Vec::new();
    for f in frags {
        let p = &f[REC..];
        let (off, data) = match fam {
            Fam::V4 => {
                let fw = u16::from_be_bytes([p[6], p[7]]);
                (((fw & 0x1fff) as usize) * 8, &p[20..])
            }
            Fam::V6 => {
                let fw = u16::from_be_bytes([p[42], p[43]]);
                ((fw & !7) as usize, &p[48..])
            }
        };
        parts.push((off, data.to_vec()));
    }
    parts.sort_by_key(|p| p.0);
    let mut d = Vec::new();
    for (off, data) in parts {
        if off != d.len() {
            return None;
        }
        d.extend_from_slice(&data);
    }
    Some(d)
}

/// What comes out of the reassembler: (unit, verdict) in emit order.
type Out = Vec<(Vec<u8>, Verdict)>;

/// Feed units (fragments are located on their original bytes; `Err`
/// entries are "other" units) and collect the output.
fn run(d: &mut Defrag, w: &mut Washer, fam: Fam, units: &[Result<Vec<u8>, Vec<u8>>]) -> Out {
    let mut out: Out = Vec::new();
    let mut loc = Located::new();
    let mut emit = |u: Vec<u8>, v: Verdict| {
        out.push((u, v));
        Ok(())
    };
    for u in units {
        match u {
            Ok(f) => {
                locate(linktype(fam), &f[REC..], &mut loc).expect("fragment located");
                assert!(
                    loc.slots.iter().all(|s| s.origin != Origin::Ecs),
                    "no ECS slot in a fragment"
                );
                let fi = loc.frag.clone().expect("frag info");
                d.push_fragment(f.clone(), REC..f.len(), &fi, w, &mut emit)
                    .unwrap();
            }
            Err(o) => {
                if d.holding() {
                    d.push_other(o.clone(), &mut emit).unwrap();
                } else {
                    emit(o.clone(), Verdict::Write).unwrap();
                }
            }
        }
    }
    d.finish(&mut emit).unwrap();
    assert!(!d.holding());
    out
}

/// A whole test datagram: IP payload, offset of the ECS address in it, its
/// length, prefix, and the UDP header offset.
struct Dg {
    fam: Fam,
    bytes: Vec<u8>,
    ecs: usize,
    n: usize,
    prefix: u8,
}

fn dgram(fam: Fam, pad: usize, zero: bool) -> Dg {
    dgram_to(fam, pad, zero, 53)
}

fn dgram_to(fam: Fam, pad: usize, zero: bool, dport: u16) -> Dg {
    let (f, prefix, addr): (u16, u8, &[u8]) = match fam {
        Fam::V4 => (1, 24, &[203, 0, 113]),
        Fam::V6 => (2, 56, &[0x20, 1, 0xd, 0xb8, 0xaa, 0xbb, 0xcc]),
    };
    let m = dns(pad, f, prefix, addr);
    let (src, dst): (&[u8], &[u8]) = match fam {
        Fam::V4 => (&C4, &S4),
        Fam::V6 => (&C6, &S6),
    };
    let bytes = udp(40000, dport, &m, src, dst, zero);
    let mut v = Vec::new();
    ipwash::dns::find_ecs(&bytes[8..], &mut v).unwrap();
    Dg {
        fam,
        ecs: 8 + v[0].offset,
        n: v[0].len,
        prefix,
        bytes,
    }
}

/// Check one output datagram against the input.
fn verify(dg: &Dg, out_frags: &[Vec<u8>]) {
    let got = reassemble(dg.fam, out_frags).expect("complete output");
    let mut want = dg.bytes.clone();
    let mut w = washer();
    w.wash_prefix(
        &mut want[dg.ecs..dg.ecs + dg.n],
        dg.fam == Fam::V6,
        dg.prefix,
        Side::Client,
    );
    assert_ne!(want[dg.ecs..dg.ecs + dg.n], dg.bytes[dg.ecs..dg.ecs + dg.n]);
    assert_eq!(got.len(), want.len());
    for k in 0..got.len() {
        if k == 6 || k == 7 {
            continue;
        }
        assert_eq!(got[k], want[k], "byte {k}");
    }
    let (src, dst): (&[u8], &[u8]) = match dg.fam {
        Fam::V4 => (&C4, &S4),
        Fam::V6 => (&C6, &S6),
    };
    if dg.bytes[6..8] == [0, 0] {
        assert_eq!(got[6..8], [0, 0], "zero checksum stays zero");
    } else {
        assert_eq!(udp_sum(src, dst, 17, &got), 0xffff, "UDP checksum");
    }
    // Record headers and IP headers untouched.
    for f in out_frags {
        assert!(f[..REC].iter().all(|&b| b == 0xee));
    }
}

fn frag_units(frags: &[Vec<u8>]) -> Vec<Result<Vec<u8>, Vec<u8>>> {
    frags.iter().cloned().map(Ok).collect()
}

fn other(tag: u8) -> Vec<u8> {
    vec![tag; 5]
}

#[test]
fn every_split_both_families_in_and_out_of_order() {
    let mut cases = [0usize; 3]; // first, straddling, later
    for fam in [Fam::V4, Fam::V6] {
        for pad in 0..4 {
            for zero in [false, true] {
                let dg = dgram(fam, pad, zero && fam == Fam::V4);
                let len = dg.bytes.len();
                for cut in (8..len).step_by(8) {
                    let (a, b) = (dg.ecs, dg.ecs + dg.n);
                    if b <= cut {
                        cases[0] += 1;
                    } else if a < cut {
                        cases[1] += 1;
                    } else {
                        cases[2] += 1;
                    }
                    let frags = fragments(fam, 17, 7, &dg.bytes, &[cut]);
                    for order in 0..3 {
                        let mut fs = frags.clone();
                        match order {
                            0 => {}
                            1 => fs.reverse(),
                            _ => {}
                        }
                        let mut units = frag_units(&fs);
                        if order == 2 {
                            // Interleaved with unrelated units.
                            units.insert(0, Err(other(1)));
                            units.insert(2, Err(other(2)));
                            units.push(Err(other(3)));
                        }
                        let mut d = Defrag::new(DefragLimits::default());
                        let out = run(&mut d, &mut washer(), fam, &units);
                        assert_eq!(out.len(), units.len());
                        assert!(out.iter().all(|(_, v)| *v == Verdict::Write));
                        // Input order kept: compare everything but the
                        // rewritten bytes positionally.
                        for ((u, _), i) in out.iter().zip(&units) {
                            let i = match i {
                                Ok(x) | Err(x) => x,
                            };
                            assert_eq!(u.len(), i.len());
                            assert_eq!(u[..REC.min(u.len())], i[..REC.min(i.len())]);
                        }
                        let got: Vec<Vec<u8>> = out
                            .into_iter()
                            .map(|(u, _)| u)
                            .filter(|u| u.len() > REC)
                            .collect();
                        verify(&dg, &got);
                        assert_eq!(d.rewritten(), 1);
                    }
                }
            }
        }
    }
    assert!(cases.iter().all(|&c| c > 0), "{cases:?}");
}

#[test]
fn three_fragments_and_order_with_other_units() {
    let dg = dgram(Fam::V4, 1, false);
    let len = dg.bytes.len();
    // The address straddles the second cut.
    let c2 = (dg.ecs + 1) / 8 * 8;
    let c2 = if c2 <= dg.ecs { c2 + 8 } else { c2 };
    assert!(c2 > dg.ecs && c2 < dg.ecs + dg.n, "straddle");
    let frags = fragments(Fam::V4, 17, 9, &dg.bytes, &[16, c2]);
    assert!(c2 < len);
    let units = vec![
        Err(other(1)),
        Ok(frags[2].clone()),
        Err(other(2)),
        Ok(frags[0].clone()),
        Err(other(3)),
        Err(other(4)),
        Ok(frags[1].clone()),
        Err(other(5)),
    ];
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    let tags: Vec<u8> = out.iter().map(|(u, _)| u[0]).collect();
    assert_eq!(tags, vec![1, 0xee, 2, 0xee, 3, 4, 0xee, 5]);
    let got: Vec<Vec<u8>> = out
        .into_iter()
        .map(|(u, _)| u)
        .filter(|u| u.len() > REC)
        .collect();
    verify(&dg, &got);
}

#[test]
fn two_datagrams_interleaved() {
    let a = dgram(Fam::V4, 0, false);
    let b = dgram(Fam::V4, 3, false);
    let fa = fragments(Fam::V4, 17, 1, &a.bytes, &[a.ecs / 8 * 8]);
    let fb = fragments(Fam::V4, 17, 2, &b.bytes, &[24]);
    let units = vec![
        Ok(fa[0].clone()),
        Ok(fb[1].clone()),
        Err(other(1)),
        Ok(fa[1].clone()),
        Ok(fb[0].clone()),
    ];
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert_eq!(out.len(), 5);
    assert_eq!(out[2].0, other(1));
    verify(&a, &[out[0].0.clone(), out[3].0.clone()]);
    verify(&b, &[out[1].0.clone(), out[4].0.clone()]);
}

#[test]
fn per_packet_washing_then_defrag_keeps_checksum_valid() {
    // The pipeline washes the IP addresses first (updating the UDP checksum
    // in the first fragment through the pseudo-header), then defrag.
    use ipwash::pipeline::Unparsed;
    use ipwash::pipeline::{wash_packet, Outcome, Worker};
    for fam in [Fam::V4, Fam::V6] {
        let dg = dgram(fam, 2, false);
        let frags = fragments(fam, 17, 3, &dg.bytes, &[(dg.ecs + 8) / 8 * 8]);
        let mut w = washer();
        let mut worker = Worker::new(0);
        let mut d = Defrag::new(DefragLimits::default());
        let mut out: Out = Vec::new();
        let mut loc = Located::new();
        for f in &frags {
            locate(linktype(fam), &f[REC..], &mut loc).unwrap();
            let fi = loc.frag.clone().unwrap();
            let mut u = f.clone();
            let o = wash_packet(
                &mut u[REC..],
                linktype(fam),
                &mut w,
                &mut worker,
                Unparsed::Drop,
            );
            assert!(matches!(o, Outcome::Written(true)));
            let n = u.len();
            d.push_fragment(u, REC..n, &fi, &mut w, &mut |u, v| {
                out.push((u, v));
                Ok(())
            })
            .unwrap();
        }
        d.finish(&mut |u, v| {
            out.push((u, v));
            Ok(())
        })
        .unwrap();
        let frs: Vec<Vec<u8>> = out.into_iter().map(|(u, _)| u).collect();
        let got = reassemble(fam, &frs).unwrap();
        let (src, dst) = match fam {
            Fam::V4 => (
                frs[0][REC + 12..REC + 16].to_vec(),
                frs[0][REC + 16..REC + 20].to_vec(),
            ),
            Fam::V6 => (
                frs[0][REC + 8..REC + 24].to_vec(),
                frs[0][REC + 24..REC + 40].to_vec(),
            ),
        };
        assert_ne!(&src[..], &C4[..]);
        assert_eq!(udp_sum(&src, &dst, 17, &got), 0xffff);
        let mut want = dg.bytes[dg.ecs..dg.ecs + dg.n].to_vec();
        washer().wash_prefix(&mut want, fam == Fam::V6, dg.prefix, Side::Client);
        assert_eq!(&got[dg.ecs..dg.ecs + dg.n], &want[..]);
    }
}

fn verdicts(out: &Out) -> Vec<Verdict> {
    out.iter().map(|(_, v)| *v).collect()
}

#[test]
fn incomplete_groups() {
    let dg = dgram(Fam::V4, 0, false);
    let frags = fragments(Fam::V4, 17, 5, &dg.bytes, &[16, 32]);
    // Missing last fragment of a DNS datagram.
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&frags[..2]));
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Drop("fragment_incomplete"); 2]
    );
    // Missing first fragment: cannot know.
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&frags[1..]));
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Drop("fragment_incomplete"); 2]
    );
    // Missing middle fragment; other units still come out in order.
    let units = vec![Ok(frags[0].clone()), Err(other(1)), Ok(frags[2].clone())];
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert_eq!(
        verdicts(&out),
        vec![
            Verdict::Drop("fragment_incomplete"),
            Verdict::Write,
            Verdict::Drop("fragment_incomplete")
        ]
    );
    assert_eq!(out[1].0, other(1));
    // A non-DNS datagram whose first fragment was seen is released.
    let nd = udp(40000, 5300, &dns(0, 1, 24, &[1, 2, 3]), &C4, &S4, false);
    let nf = fragments(Fam::V4, 17, 6, &nd, &[16, 32]);
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&nf[..2]));
    assert_eq!(verdicts(&out), vec![Verdict::Write; 2]);
    assert_eq!(out[0].0, nf[0]);
    // ... but not when only later fragments were seen.
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&nf[1..]));
    assert_eq!(
        verdicts(&out),
        vec![Verdict::Drop("fragment_incomplete"); 2]
    );
}

#[test]
fn non_dns_groups_pass_unchanged() {
    for fam in [Fam::V4, Fam::V6] {
        let (src, dst): (&[u8], &[u8]) = match fam {
            Fam::V4 => (&C4, &S4),
            Fam::V6 => (&C6, &S6),
        };
        // Looks like DNS with ECS, but on another port.
        let nd = udp(40000, 5300, &dns(0, 1, 24, &[1, 2, 3]), src, dst, false);
        let nf = fragments(fam, 17, 6, &nd, &[16]);
        let mut d = Defrag::new(DefragLimits::default());
        let out = run(&mut d, &mut washer(), fam, &frag_units(&nf));
        assert_eq!(verdicts(&out), vec![Verdict::Write; 2]);
        assert_eq!(out[0].0, nf[0]);
        assert_eq!(out[1].0, nf[1]);
        assert_eq!(d.rewritten(), 0);
        // ICMP echo.
        let icmp: Vec<u8> = (0..100u8).collect();
        let proto = if fam == Fam::V4 { 1 } else { 58 };
        let f = fragments(fam, proto, 8, &icmp, &[48]);
        let out = run(&mut d, &mut washer(), fam, &frag_units(&f));
        assert_eq!(out.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>(), f);
        assert_eq!(verdicts(&out), vec![Verdict::Write; 2]);
    }
}

#[test]
fn fragmented_mdns_and_llmnr_are_washed() {
    // Multicast DNS and LLMNR carry EDNS options too: a fragmented one is
    // reassembled and its ECS washed, as on port 53.
    for fam in [Fam::V4, Fam::V6] {
        for port in [5353, 5355] {
            let dg = dgram_to(fam, 40, false, port);
            let frags = fragments(fam, 17, 9, &dg.bytes, &[24]);
            let mut d = Defrag::new(DefragLimits::default());
            let out = run(&mut d, &mut washer(), fam, &frag_units(&frags));
            assert_eq!(verdicts(&out), vec![Verdict::Write; 2], "{port}");
            assert_eq!(d.rewritten(), 1);
            let got: Vec<_> = out.into_iter().map(|(u, _)| u).collect();
            verify(&dg, &got);
        }
    }
}

#[test]
fn tcp_dns_and_tunnels_are_dropped() {
    let mut seg = vec![
        0x9c, 0x40, 0, 53, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ];
    seg.extend_from_slice(&[0u8; 40]);
    let f = fragments(Fam::V4, 6, 4, &seg, &[24]);
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&f));
    assert_eq!(verdicts(&out), vec![Verdict::Drop("tcp_dns_fragment"); 2]);
    // GRE carrying IPv4.
    let mut gre = vec![0, 0, 0x08, 0x00, 0x45, 0, 0, 60, 0, 1, 0, 0, 64, 17, 0, 0];
    gre.extend_from_slice(&C4);
    gre.extend_from_slice(&S4);
    gre.extend_from_slice(&[0u8; 40]);
    let f = fragments(Fam::V4, 47, 4, &gre, &[32]);
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&f));
    assert_eq!(verdicts(&out), vec![Verdict::Drop("fragment_tunnel"); 2]);
}

#[test]
fn overlap_and_identical_duplicates() {
    let dg = dgram(Fam::V4, 0, false);
    let len = dg.bytes.len();
    let frags = fragments(Fam::V4, 17, 5, &dg.bytes, &[32]);
    // Overlap: a second fragment starting at 24 instead of 32.
    let ov = fragments(Fam::V4, 17, 5, &dg.bytes, &[24]);
    let units = vec![
        Ok(frags[0].clone()),
        Ok(ov[1].clone()),
        Ok(frags[1].clone()),
    ];
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert_eq!(
        verdicts(&out),
        vec![
            Verdict::Drop("fragment_overlap"),
            Verdict::Drop("fragment_overlap"),
            // The rest starts a new group without a first fragment.
            Verdict::Drop("fragment_incomplete"),
        ]
    );
    // A duplicate with different bytes is an overlap too.
    let mut bad = frags[0].clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let units = vec![Ok(frags[0].clone()), Ok(bad), Ok(frags[1].clone())];
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert_eq!(out[0].1, Verdict::Drop("fragment_overlap"));
    // Identical duplicates are rewritten alike.
    let cut = dg.ecs / 8 * 8 + 8; // straddle or first, either way in frag 0 partly
    let fr = fragments(Fam::V4, 17, 5, &dg.bytes, &[cut.min(len - 8) / 8 * 8]);
    let units = vec![
        Ok(fr[0].clone()),
        Ok(fr[0].clone()),
        Ok(fr[1].clone()),
        Ok(fr[1].clone()),
    ];
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    // The group completes with the third unit; a duplicate arriving after
    // that starts a new group without a first fragment (dropped).
    assert_eq!(
        verdicts(&out),
        vec![
            Verdict::Write,
            Verdict::Write,
            Verdict::Write,
            Verdict::Drop("fragment_incomplete")
        ]
    );
    assert_eq!(out[0].0, out[1].0);
    verify(&dg, &[out[0].0.clone(), out[2].0.clone()]);
    verify(&dg, &[out[1].0.clone(), out[2].0.clone()]);
}

#[test]
fn limits_resolve_the_oldest_group() {
    let dg = dgram(Fam::V4, 0, false);
    let frags = fragments(Fam::V4, 17, 5, &dg.bytes, &[32]);
    // max_span: the last fragment comes too late.
    let mut units = vec![Ok(frags[0].clone())];
    for i in 0..5 {
        units.push(Err(other(i)));
    }
    units.push(Ok(frags[1].clone()));
    let lim = DefragLimits {
        max_span: 4,
        ..DefragLimits::default()
    };
    let mut d = Defrag::new(lim);
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert_eq!(out[0].1, Verdict::Drop("fragment_incomplete"));
    assert!(out[1..6].iter().all(|(_, v)| *v == Verdict::Write));
    assert_eq!(out[6].1, Verdict::Drop("fragment_incomplete"));
    let tags: Vec<u8> = out.iter().map(|(u, _)| u[0]).collect();
    assert_eq!(tags, vec![0xee, 0, 1, 2, 3, 4, 0xee]);
    // Within the span it completes.
    let mut d = Defrag::new(DefragLimits {
        max_span: 6,
        ..DefragLimits::default()
    });
    let out = run(&mut d, &mut washer(), Fam::V4, &units);
    assert!(out.iter().all(|(_, v)| *v == Verdict::Write));
    // max_held_units and max_held_bytes.
    for lim in [
        DefragLimits {
            max_held_units: 3,
            ..DefragLimits::default()
        },
        DefragLimits {
            max_held_bytes: frags[0].len() + 10,
            ..DefragLimits::default()
        },
    ] {
        let mut d = Defrag::new(lim);
        let out = run(&mut d, &mut washer(), Fam::V4, &units);
        assert_eq!(out.len(), units.len());
        assert_eq!(out[0].1, Verdict::Drop("fragment_incomplete"));
        assert_eq!(out[6].1, Verdict::Drop("fragment_incomplete"));
    }
}

#[test]
fn cut_fragments_and_unparsable_dns() {
    let dg = dgram(Fam::V4, 0, false);
    let frags = fragments(Fam::V4, 17, 5, &dg.bytes, &[32]);
    // The second fragment cut by snaplen (total length still claims all).
    let mut cut = frags[1].clone();
    cut.truncate(cut.len() - 3);
    let mut d = Defrag::new(DefragLimits::default());
    let mut loc = Located::new();
    let mut out: Out = Vec::new();
    let mut emit = |u: Vec<u8>, v: Verdict| {
        out.push((u, v));
        Ok(())
    };
    let mut w = washer();
    for f in [&frags[0], &cut] {
        locate(228, &f[REC..], &mut loc).unwrap();
        let fi = loc.frag.clone().unwrap();
        let n = f.len();
        d.push_fragment(f.clone(), REC..n, &fi, &mut w, &mut emit)
            .unwrap();
    }
    d.finish(&mut emit).unwrap();
    assert_eq!(verdicts(&out), vec![Verdict::Drop("fragment_cut"); 2]);
    // A complete datagram whose DNS message cannot be walked.
    let mut m = dns(0, 1, 24, &[1, 2, 3]);
    m[12] = 0x80; // reserved label type
    let bad = udp(40000, 53, &m, &C4, &S4, false);
    let f = fragments(Fam::V4, 17, 5, &bad, &[16]);
    let mut d = Defrag::new(DefragLimits::default());
    let out = run(&mut d, &mut washer(), Fam::V4, &frag_units(&f));
    assert_eq!(verdicts(&out), vec![Verdict::Drop("unparsed_dns"); 2]);
}

#[test]
fn reasons_are_listed() {
    for r in [
        "fragment_overlap",
        "fragment_incomplete",
        "fragment_cut",
        "fragment_tunnel",
        "fragment_malformed",
        "tcp_dns_fragment",
        "unparsed_dns",
    ] {
        assert!(Defrag::REASONS.contains(&r));
    }
}

#[test]
fn locate_reports_fragment_info() {
    let dg = dgram(Fam::V6, 0, false);
    let frags = fragments(
        Fam::V6,
        17,
        0xdead_beef,
        &dg.bytes,
        &[dg.bytes.len() / 16 * 8],
    );
    let mut loc = Located::new();
    // First fragment holds the whole ECS option? Regardless: no ECS slot.
    locate(229, &frags[0][REC..], &mut loc).unwrap();
    let fi = loc.frag.clone().unwrap();
    assert_eq!(fi.key.id, 0xdead_beef);
    assert_eq!(fi.key.protocol, 17);
    assert_eq!(fi.key.src, C6);
    assert_eq!(fi.offset, 0);
    assert!(fi.more);
    assert_eq!(fi.data, 48..frags[0].len() - REC);
    assert_eq!(fi.udp_checksum, Some(48 + 6));
    assert!(!fi.cut());
    assert_eq!(loc.slots.len(), 2);
    assert_eq!(loc.slots[0].side, Side::Client);
    locate(229, &frags[1][REC..], &mut loc).unwrap();
    let fi = loc.frag.clone().unwrap();
    assert_eq!(fi.offset as usize, dg.bytes.len() / 16 * 8);
    assert!(!fi.more);
    assert_eq!(fi.udp_checksum, None);
    // The key uses the original addresses: same for both fragments.
    let mut k0 = Located::new();
    locate(229, &frags[0][REC..], &mut k0).unwrap();
    assert_eq!(k0.frag.unwrap().key, fi.key);
}

// ------------------------------------------------------------------ corpus

fn read_pcap(data: &[u8]) -> Option<(u32, Vec<&[u8]>)> {
    let le = match data.get(0..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let lt = u32_at(20)? & 0x0fff_ffff;
    let mut at = 24;
    let mut recs = Vec::new();
    while let Some(cap) = u32_at(at + 8) {
        let s = at + 16;
        let Some(r) = data.get(s..s + cap as usize) else {
            break;
        };
        recs.push(r);
        at = s + cap as usize;
    }
    Some((lt, recs))
}

/// Reassemble the UDP DNS datagrams of a list of (packet, FragInfo) and
/// return, per datagram key, every ECS (datagram offset, len, prefix, v6)
/// with the datagram bytes.
type Ecs = (usize, usize, u8, bool);
fn dns_datagrams(
    pkts: &[(Vec<u8>, ipwash::packet::FragInfo)],
) -> Vec<(ipwash::packet::FragKey, Vec<u8>, Vec<Ecs>)> {
    use std::collections::BTreeMap;
    type Parts = (ipwash::packet::FragKey, BTreeMap<u32, Vec<u8>>, Option<u32>);
    let mut by: Vec<Parts> = Vec::new();
    for (p, f) in pkts {
        let i = match by.iter().position(|g| g.0 == f.key) {
            Some(i) => i,
            None => {
                by.push((f.key, BTreeMap::new(), None));
                by.len() - 1
            }
        };
        by[i].1.insert(f.offset, p[f.data.clone()].to_vec());
        if !f.more {
            by[i].2 = Some(f.offset + f.len);
        }
    }
    let mut out = Vec::new();
    for (k, parts, total) in by {
        let mut d = Vec::new();
        for (off, b) in parts {
            if off as usize != d.len() {
                break;
            }
            d.extend_from_slice(&b);
        }
        if Some(d.len() as u32) != total || k.protocol != 17 || d.len() < 8 {
            continue;
        }
        let (sp, dp) = (
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
        );
        if sp != 53 && dp != 53 {
            continue;
        }
        let mut v = Vec::new();
        if ipwash::dns::find_ecs(&d[8..], &mut v).is_err() {
            continue;
        }
        let e = v
            .iter()
            .map(|e| (8 + e.offset, e.len, e.source_prefix, e.family == 2))
            .collect();
        out.push((k, d, e));
    }
    out
}

#[test]
fn corpus_fragmented_dns() {
    let Ok(dir) = std::env::var("IPWASH_CORPUS") else {
        eprintln!("IPWASH_CORPUS unset: skipping corpus_fragmented_dns");
        return;
    };
    let mut total_ecs = 0;
    for name in [
        "ndpi__dns_fragmented.pcap",
        "zeek__dns-edns-ecs.pcap",
        "oarc-dnscap__frags.pcap",
        "zeek__ipv6-fragmented-dns.pcap",
    ] {
        let path = std::path::Path::new(&dir).join("pcap").join(name);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (lt, recs) = read_pcap(&data).expect("classic pcap");
        let mut d = Defrag::new(DefragLimits::default());
        let mut w = washer();
        let mut loc = Located::new();
        let mut out: Vec<(usize, Verdict)> = Vec::new();
        let mut emitted: Vec<Vec<u8>> = Vec::new();
        let mut input_frags = Vec::new();
        let mut n = 0usize;
        for r in &recs {
            // Tag each unit with its index in 8 leading bytes.
            let mut u = (n as u64).to_be_bytes().to_vec();
            u.extend_from_slice(r);
            n += 1;
            let mut emit = |u: Vec<u8>, v: Verdict| {
                let i = u64::from_be_bytes(u[..8].try_into().unwrap()) as usize;
                out.push((i, v));
                emitted.push(u[8..].to_vec());
                Ok(())
            };
            if locate(lt, r, &mut loc).is_ok() {
                if let Some(f) = loc.frag.clone() {
                    assert!(loc.slots.iter().all(|s| s.origin != Origin::Ecs));
                    input_frags.push((r.to_vec(), f.clone()));
                    let l = u.len();
                    d.push_fragment(u, 8..l, &f, &mut w, &mut emit).unwrap();
                    continue;
                }
            }
            d.push_other(u, &mut emit).unwrap();
        }
        d.finish(&mut |u, v| {
            let i = u64::from_be_bytes(u[..8].try_into().unwrap()) as usize;
            out.push((i, v));
            emitted.push(u[8..].to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>(),
            "{name}: order"
        );
        // Output datagrams: the written fragments, located again on their
        // (washed) bytes with the original keys.
        let mut out_frags = Vec::new();
        for (p, f) in &input_frags {
            let idx = recs.iter().position(|r| *r == &p[..]).unwrap();
            if out[idx].1 == Verdict::Write {
                out_frags.push((emitted[idx].clone(), f.clone()));
            }
        }
        let before = dns_datagrams(&input_frags);
        let after = dns_datagrams(&out_frags);
        let mut drops = std::collections::BTreeMap::new();
        for (_, v) in &out {
            if let Verdict::Drop(r) = v {
                *drops.entry(*r).or_insert(0) += 1;
            }
        }
        eprintln!(
            "{name}: {} units, {} fragments, {} DNS datagrams, {} rewritten, drops {drops:?}",
            n,
            input_frags.len(),
            before.len(),
            d.rewritten()
        );
        for (k, orig, ecs) in &before {
            let (_, got, _) = after
                .iter()
                .find(|a| a.0 == *k)
                .unwrap_or_else(|| panic!("{name}: complete DNS datagram not written"));
            for &(at, len, prefix, v6) in ecs {
                let mut want = orig[at..at + len].to_vec();
                washer().wash_prefix(&mut want, v6, prefix, Side::Client);
                assert_eq!(&got[at..at + len], &want[..], "{name}: ECS");
                total_ecs += 1;
            }
            if orig[6..8] != [0, 0] {
                let (s, t): (&[u8], &[u8]) = match k.family {
                    ipwash::packet::Family::V4 => (&k.src[..4], &k.dst[..4]),
                    ipwash::packet::Family::V6 => (&k.src[..], &k.dst[..]),
                };
                let valid_before = udp_sum(s, t, 17, orig) == 0xffff;
                assert_eq!(
                    udp_sum(s, t, 17, got) == 0xffff,
                    valid_before,
                    "{name}: checksum"
                );
            }
        }
    }
    eprintln!("ECS options washed in fragmented datagrams: {total_ecs}");
}
