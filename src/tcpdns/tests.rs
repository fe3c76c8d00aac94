use super::*;
use crate::packet::locate;
use crate::wash::{Technique, Washer};
use ipwash_algorithms::AddrMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Bitwise NOT: prefix-preserving and easy to check.
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
    Washer::new(Technique::Stateless(Arc::new(Flip)))
}

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

/// Raw IPv4 (link type 228) / TCP, valid checksums.
fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if dport == 53 {
        ([192, 0, 2, 7], [198, 51, 100, 1])
    } else {
        ([198, 51, 100, 1], [192, 0, 2, 7])
    };
    let mut t = sport.to_be_bytes().to_vec();
    t.extend(dport.to_be_bytes());
    t.extend(seq.to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(payload);
    let mut ph: Vec<u8> = src.to_vec();
    ph.extend(dst);
    ph.extend([0, 6]);
    ph.extend((t.len() as u16).to_be_bytes());
    ph.extend(&t);
    let ck = csum(&ph);
    t[16..18].copy_from_slice(&ck.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&((20 + t.len()) as u16).to_be_bytes());
    ip.extend(src);
    ip.extend(dst);
    let ck = csum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend(t);
    ip
}

fn tcp_ok(p: &[u8]) -> bool {
    let mut ph = p[12..20].to_vec();
    ph.extend([0, 6]);
    ph.extend(((p.len() - 20) as u16).to_be_bytes());
    ph.extend(&p[20..]);
    csum(&ph) == 0
}

/// A framed query with ECS 203.0.113.0/24 (address at stream byte 50).
fn query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend(b"\x07example\x03com\x00");
    m.extend([0, 1, 0, 1]);
    m.extend([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 11]);
    m.extend([0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113]);
    let mut v = (m.len() as u16).to_be_bytes().to_vec();
    v.extend(m);
    v
}

struct Run {
    t: TcpDns,
    w: Washer,
    out: Vec<(Vec<u8>, Verdict)>,
}

impl Run {
    fn new(limits: TcpLimits) -> Self {
        Run {
            t: TcpDns::new(limits),
            w: washer(),
            out: Vec::new(),
        }
    }
    fn push(&mut self, p: Vec<u8>) {
        let mut loc = Located::new();
        loc.follow_tcp = true;
        locate(228, &p, &mut loc).expect("locate");
        let n = p.len();
        self.t
            .push(p, Some(0..n), None, loc.tcp.as_ref(), &mut self.w);
        self.drain();
    }
    fn drain(&mut self) {
        for r in self.t.take_ready() {
            self.out.push((r.unit, r.verdict));
        }
    }
    fn finish(&mut self) {
        self.t.finish(&mut self.w);
        self.drain();
    }
}

const ECS: usize = 50;

#[test]
fn located_segment_has_no_dns_slot() {
    let s = query(1);
    let p = tcp(40000, 53, 1, 0x18, &s);
    let mut loc = Located::new();
    loc.follow_tcp = true;
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.slots.iter().all(|s| s.origin != Origin::Ecs));
    let seg = loc.tcp.as_ref().unwrap();
    assert_eq!(seg.payload, 40..p.len());
    assert_eq!(seg.seq, 1);
    // Without follow_tcp the walker finds the ECS itself.
    let mut loc = Located::new();
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.tcp.is_none());
    assert!(loc.slots.iter().any(|s| s.origin == Origin::Ecs));
}

#[test]
fn split_message_is_washed_in_both_segments() {
    let s = query(1);
    for k in 1..s.len() {
        let mut r = Run::new(TcpLimits::default());
        r.push(tcp(40000, 53, 100, 0x02, &[]));
        r.push(tcp(40000, 53, 101, 0x18, &s[..k]));
        assert!(r.out.len() == 1 || k == s.len(), "held until complete");
        r.push(tcp(40000, 53, 101 + k as u32, 0x18, &s[k..]));
        r.finish();
        assert_eq!(r.out.len(), 3);
        let mut stream: Vec<u8> = Vec::new();
        for (u, v) in &r.out[1..] {
            assert_eq!(*v, Verdict::Write);
            assert!(tcp_ok(u), "checksum at split {k}");
            stream.extend(&u[40..]);
        }
        assert_eq!(&stream[ECS..ECS + 3], &[!203u8, !0, !113], "split {k}");
        assert_eq!(stream[..ECS], s[..ECS]);
    }
}

#[test]
fn sequence_numbers_wrap() {
    let s = query(1);
    let isn = u32::MAX - 30;
    let mut r = Run::new(TcpLimits::default());
    r.push(tcp(40000, 53, isn, 0x02, &[]));
    r.push(tcp(40000, 53, isn.wrapping_add(1), 0x18, &s[..40]));
    r.push(tcp(40000, 53, isn.wrapping_add(41), 0x18, &s[40..]));
    r.finish();
    assert_eq!(r.out[2].0[40 + ECS - 40..][..3], [!203u8, !0, !113]);
}

#[test]
fn hold_limit_drops_the_message_and_keeps_order() {
    let s = query(1);
    let limits = TcpLimits {
        max_span: 5,
        ..TcpLimits::default()
    };
    let mut r = Run::new(limits);
    r.push(tcp(40000, 53, 0, 0x02, &[]));
    r.push(tcp(40000, 53, 1, 0x18, &s[..20]));
    // Unrelated units wait behind the held segment, then the limit gives
    // the message up.
    for i in 0..6u16 {
        r.push(tcp(5000 + i, 5001, 1, 0x10, b"x"));
    }
    assert_eq!(r.out.len(), 8);
    assert_eq!(r.out[1].1, Verdict::Drop(HOLD));
    // The rest of that message is dropped too; the next one is followed.
    r.push(tcp(40000, 53, 21, 0x18, &s[20..]));
    r.push(tcp(40000, 53, 1 + s.len() as u32, 0x18, &s));
    r.finish();
    let v: Vec<Verdict> = r.out.iter().map(|o| o.1).collect();
    assert_eq!(v.len(), 10);
    assert_eq!(v[8], Verdict::Drop(HOLD));
    assert_eq!(v[9], Verdict::Write);
    assert_eq!(r.out[9].0[40 + ECS..][..3], [!203u8, !0, !113]);
    // Input order.
    for (i, o) in r.out[2..8].iter().enumerate() {
        let sport = u16::from_be_bytes([o.0[20], o.0[21]]);
        if i < 6 {
            assert_eq!(sport, 5000 + i as u16);
        }
    }
}

#[test]
fn flows_are_evicted_by_count_and_age() {
    let s = query(1);
    let limits = TcpLimits {
        max_flows: 2,
        ..TcpLimits::default()
    };
    let mut r = Run::new(limits);
    for p in 0..3u16 {
        r.push(tcp(40000 + p, 53, 0, 0x02, &[]));
        r.push(tcp(40000 + p, 53, 1, 0x18, &s));
    }
    r.finish();
    assert_eq!(r.t.evicted(), 1);
    assert!(r.out.iter().all(|o| o.1 == Verdict::Write));
    let limits = TcpLimits {
        max_idle: 10,
        ..TcpLimits::default()
    };
    let mut r = Run::new(limits);
    r.push(tcp(40000, 53, 0, 0x02, &[]));
    for i in 0..2100u32 {
        r.push(tcp(40001, 53, i, 0x10, &[]));
    }
    assert!(r.t.evicted() >= 1);
}

#[test]
fn end_of_input_walks_an_incomplete_message() {
    let s = query(1);
    let mut r = Run::new(TcpLimits::default());
    r.push(tcp(40000, 53, 0, 0x02, &[]));
    // Cut after the first two address bytes: what is there is washed.
    r.push(tcp(40000, 53, 1, 0x18, &s[..ECS + 2]));
    r.finish();
    assert_eq!(r.out[1].1, Verdict::Write);
    assert_eq!(r.out[1].0[40 + ECS..][..2], [!203u8, !0]);
    assert!(tcp_ok(&r.out[1].0));
}

#[test]
fn random_segmentation_keeps_order_and_washes() {
    // A small deterministic generator: segment sizes, retransmissions and
    // swaps of neighbours, with unrelated units in between.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..200 {
        let mut stream = Vec::new();
        for i in 0..3 {
            stream.extend(query(i));
        }
        let mut cuts = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let n = 1 + rnd(60) as usize;
            let e = (at + n).min(stream.len());
            cuts.push(at..e);
            at = e;
        }
        let mut order: Vec<std::ops::Range<usize>> = Vec::new();
        for c in &cuts {
            order.push(c.clone());
            if rnd(5) == 0 {
                order.push(c.clone());
            }
        }
        for i in 1..order.len() {
            if rnd(6) == 0 {
                order.swap(i - 1, i);
            }
        }
        let mut r = Run::new(TcpLimits::default());
        let isn = rnd(u32::MAX as u64) as u32;
        let mut input = vec![tcp(40000, 53, isn, 0x02, &[])];
        for (i, c) in order.iter().enumerate() {
            let seq = isn.wrapping_add(1).wrapping_add(c.start as u32);
            input.push(tcp(40000, 53, seq, 0x18, &stream[c.clone()]));
            if rnd(3) == 0 {
                input.push(tcp(6000 + i as u16, 6001, 0, 0x10, b"other"));
            }
        }
        for p in &input {
            r.push(p.clone());
        }
        r.finish();
        assert_eq!(r.out.len(), input.len(), "round {round}");
        let mut rebuilt = vec![None; stream.len()];
        for (o, i) in r.out.iter().zip(&input) {
            assert_eq!(o.1, Verdict::Write, "round {round}");
            assert_eq!(o.0.len(), i.len(), "order, round {round}");
            assert_eq!(o.0[20..24], i[20..24], "order, round {round}");
            assert!(tcp_ok(&o.0));
            if u16::from_be_bytes([o.0[22], o.0[23]]) != 53 {
                continue;
            }
            let seq = u32::from_be_bytes([o.0[24], o.0[25], o.0[26], o.0[27]]);
            let off = seq.wrapping_sub(isn.wrapping_add(1)) as usize;
            for (k, b) in o.0[40..].iter().enumerate() {
                if let Some(prev) = rebuilt[off + k].replace(*b) {
                    assert_eq!(prev, *b, "copies differ, round {round}");
                }
            }
        }
        let rebuilt: Vec<u8> = rebuilt.into_iter().map(|b| b.unwrap()).collect();
        let one = query(0).len();
        for m in 0..3 {
            assert_eq!(
                rebuilt[m * one + ECS..][..3],
                [!203u8, !0, !113],
                "round {round}"
            );
        }
    }
}

#[test]
fn walks_to_end_is_strict() {
    let q = query(1);
    assert!(walks_to_end(&q[2..]));
    let mut longer = q[2..].to_vec();
    longer.push(0);
    assert!(!walks_to_end(&longer));
    assert!(!walks_to_end(&[0u8; 12]));
    assert!(!walks_to_end(&q[2..20]));
}

/// A segment with options: MSS, SACK-permitted-free NOPs and a SACK block
/// pair, ACK set.
fn sack_seg(seq: u32, ack: u32, blocks: &[(u32, u32)], payload: &[u8]) -> Vec<u8> {
    let mut opts = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (a, b) in blocks {
        opts.extend(a.to_be_bytes());
        opts.extend(b.to_be_bytes());
    }
    while opts.len() % 4 != 0 {
        opts.push(1);
    }
    let mut p = tcp(40000, 53, seq, 0x10, &[]);
    p.truncate(40);
    p[28..32].copy_from_slice(&ack.to_be_bytes());
    p[32] = (((20 + opts.len()) / 4) << 4) as u8;
    p.extend(&opts);
    p.extend(payload);
    let tl = p.len() as u16;
    p[2..4].copy_from_slice(&tl.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let ck = csum(&p[..20]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p[36..38].copy_from_slice(&[0, 0]);
    let mut ph = p[12..20].to_vec();
    ph.extend([0, 6]);
    ph.extend(((p.len() - 20) as u16).to_be_bytes());
    ph.extend(&p[20..]);
    let ck = csum(&ph);
    p[36..38].copy_from_slice(&ck.to_be_bytes());
    p
}

#[test]
fn shift_then_shift_back_gives_the_input() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut moved = 0;
    for round in 0..500 {
        let isn = [rnd(1 << 32) as u32, rnd(1 << 32) as u32];
        let mut sh = SeqShift::new(isn);
        let mut at = [1u32, 1u32];
        let mut removed: Vec<(usize, u32, u32)> = Vec::new();
        for _ in 0..rnd(6) {
            let d = rnd(2) as usize;
            at[d] += 1 + rnd(5000) as u32;
            let delta = rnd(41) as i32 - 20;
            if sh.change(d, isn[d].wrapping_add(at[d]), delta).is_ok() && delta < 0 {
                removed.push((d, at[d] - delta.unsigned_abs(), at[d]));
            }
        }
        // Sequence numbers of bytes a shrink removed have no image.
        let kept = |d: usize, s: u32| {
            let off = s.wrapping_sub(isn[d]);
            !removed
                .iter()
                .any(|&(rd, a, b)| rd == d && off >= a && off < b)
        };
        let inv = sh.inverse();
        for _ in 0..20 {
            // Direction 0 sends; its ack and SACK blocks speak of
            // direction 1's bytes.
            let seq = isn[0].wrapping_add(rnd(30000) as u32);
            let ack = isn[1].wrapping_add(rnd(30000) as u32);
            let b: Vec<(u32, u32)> = (0..rnd(3))
                .map(|_| {
                    let a = isn[1].wrapping_add(rnd(30000) as u32);
                    (a, a.wrapping_add(rnd(3000) as u32))
                })
                .collect();
            if !kept(0, seq) || !kept(1, ack) || b.iter().any(|x| !kept(1, x.0) || !kept(1, x.1)) {
                continue;
            }
            let orig = sack_seg(seq, ack, &b, b"payload");
            assert!(tcp_ok(&orig));
            let mut loc = Located::new();
            loc.follow_tcp = true;
            locate(228, &orig, &mut loc).unwrap();
            let seg = loc.tcp.clone().unwrap();
            let mut p = orig.clone();
            sh.apply(&mut p, &seg, 0);
            assert!(tcp_ok(&p), "round {round}");
            moved += usize::from(p != orig);
            let new_seq = u32::from_be_bytes([p[24], p[25], p[26], p[27]]);
            assert_eq!(new_seq, sh.map(0, seq));
            let mut loc2 = Located::new();
            loc2.follow_tcp = true;
            locate(228, &p, &mut loc2).unwrap();
            inv.apply(&mut p, loc2.tcp.as_ref().unwrap(), 0);
            assert_eq!(p, orig, "round {round}");
        }
    }
    assert!(moved > 1000, "only {moved} segments moved");
}

#[test]
fn shift_moves_later_bytes_only() {
    let mut sh = SeqShift::new([100, 5000]);
    sh.change(0, 160, 7).unwrap();
    sh.change(0, 300, -3).unwrap();
    assert_eq!(sh.map(0, 150), 150);
    assert_eq!(sh.map(0, 160), 167);
    assert_eq!(sh.map(0, 299), 306);
    assert_eq!(sh.map(0, 300), 304);
    assert_eq!(sh.map(1, 9000), 9000);
    assert_eq!(sh.change(0, 200, 1), Err(ShiftError::OutOfOrder));
    assert_eq!(sh.change(0, 301, -500), Err(ShiftError::TooShort));
    let inv = sh.inverse();
    // (297..300 were removed by the shrink.)
    for s in [150u32, 160, 296, 300, 1000] {
        assert_eq!(inv.map(0, sh.map(0, s)), s);
    }
}
