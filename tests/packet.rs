//! Packet locating and patching, end to end.
//!
//! Packets are built by hand with a small builder that records, for every
//! checksum it computes, the bytes that checksum covers (region and
//! pseudo-header). Those records drive an independent verifier: after every
//! slot has been patched, valid checksums must still be valid, wrong ones
//! exactly as wrong, zero UDP checksums zero, and no other byte changed.

use ipwash::packet::{locate, patch, Family, Located, Origin};
use ipwash::wash::Side;

// ------------------------------------------------------------------ builder

#[derive(Clone, Copy, Debug)]
struct Ps {
    src: usize,
    dst: usize,
    v6: bool,
    proto: u8,
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    field: usize,
    start: usize,
    end: usize,
    ps: Option<Ps>,
    udp: bool,
    /// Built valid (whole region present); quoted specs are not.
    full: bool,
    /// Leave the checksum zero ("none").
    zero: bool,
}

#[derive(Clone, Copy, Debug)]
enum Len {
    Ipv4(usize),
    Ipv6(usize),
    Udp(usize),
}

#[derive(Default, Clone)]
struct B {
    b: Vec<u8>,
    lens: Vec<Len>,
    specs: Vec<Spec>,
    /// Specs of quoted packets: verified, never recomputed.
    quoted: Vec<Spec>,
    src: usize,
    dst: usize,
    v6: bool,
}

fn sum_words(data: &[u8], odd: bool, mut s: u64) -> u64 {
    for (i, &b) in data.iter().enumerate() {
        if (i + odd as usize) % 2 == 0 {
            s += (b as u64) << 8;
        } else {
            s += b as u64;
        }
    }
    s
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The one's complement sum over what `spec` covers (available bytes only),
/// reduced mod 0xffff: 0 means valid.
fn spec_sum(p: &[u8], sp: &Spec) -> u16 {
    let end = sp.end.min(p.len());
    let mut s = sum_words(&p[sp.start..end], false, 0);
    if let Some(ps) = sp.ps {
        let n = if ps.v6 { 16 } else { 4 };
        s = sum_words(&p[ps.src..ps.src + n], false, s);
        s = sum_words(&p[ps.dst..ps.dst + n], false, s);
        let len = (sp.end - sp.start) as u64;
        s += ps.proto as u64 + (len & 0xffff) + (len >> 16);
    }
    fold(s) % 0xffff
}

impl B {
    fn new() -> B {
        B::default()
    }
    fn raw(&mut self, bytes: &[u8]) -> usize {
        let at = self.b.len();
        self.b.extend_from_slice(bytes);
        at
    }
    fn u16(&mut self, v: u16) {
        self.b.extend_from_slice(&v.to_be_bytes());
    }
    fn eth(&mut self, et: u16) {
        self.raw(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        self.u16(et);
    }
    fn spec(&mut self, field: usize, start: usize, ps: Option<Ps>, udp: bool, zero: bool) {
        self.specs.push(Spec {
            field,
            start,
            end: usize::MAX,
            ps,
            udp,
            full: true,
            zero,
        });
    }
    fn ps(&self, proto: u8) -> Ps {
        Ps {
            src: self.src,
            dst: self.dst,
            v6: self.v6,
            proto,
        }
    }
    fn ipv4_opts(&mut self, proto: u8, src: [u8; 4], dst: [u8; 4], opts: &[u8]) -> usize {
        assert!(opts.len() % 4 == 0);
        let at = self.b.len();
        let ihl = (20 + opts.len()) / 4;
        self.raw(&[0x40 | ihl as u8, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0]);
        self.raw(&src);
        self.raw(&dst);
        self.raw(opts);
        self.lens.push(Len::Ipv4(at));
        self.spec(at + 10, at, None, false, false);
        let i = self.specs.len() - 1;
        self.specs[i].end = at + ihl * 4;
        self.src = at + 12;
        self.dst = at + 16;
        self.v6 = false;
        at
    }
    fn ipv4(&mut self, proto: u8, src: [u8; 4], dst: [u8; 4]) -> usize {
        self.ipv4_opts(proto, src, dst, &[])
    }
    fn ipv6(&mut self, nh: u8, src: [u8; 16], dst: [u8; 16]) -> usize {
        let at = self.b.len();
        self.raw(&[0x60, 0, 0, 0, 0, 0, nh, 64]);
        self.raw(&src);
        self.raw(&dst);
        self.lens.push(Len::Ipv6(at));
        self.src = at + 8;
        self.dst = at + 24;
        self.v6 = true;
        at
    }
    fn udp(&mut self, sport: u16, dport: u16) -> usize {
        self.udp_x(sport, dport, false)
    }
    fn udp_x(&mut self, sport: u16, dport: u16, zero: bool) -> usize {
        let at = self.b.len();
        self.u16(sport);
        self.u16(dport);
        self.raw(&[0, 0, 0, 0]);
        self.lens.push(Len::Udp(at));
        let ps = self.ps(17);
        self.spec(at + 6, at, Some(ps), true, zero);
        at
    }
    fn tcp(&mut self, sport: u16, dport: u16, opts: &[u8]) -> usize {
        assert!(opts.len() % 4 == 0);
        let at = self.b.len();
        self.u16(sport);
        self.u16(dport);
        self.raw(&[0, 0, 0, 1, 0, 0, 0, 2]);
        self.raw(&[
            ((20 + opts.len()) / 4 * 16) as u8,
            0x18,
            0xff,
            0xff,
            0,
            0,
            0,
            0,
        ]);
        self.raw(opts);
        let ps = self.ps(6);
        self.spec(at + 16, at, Some(ps), false, false);
        at
    }
    fn icmp4(&mut self, ty: u8, code: u8, rest: [u8; 4]) -> usize {
        let at = self.raw(&[ty, code, 0, 0]);
        self.raw(&rest);
        self.spec(at + 2, at, None, false, false);
        at
    }
    fn icmp6(&mut self, ty: u8, code: u8, rest: [u8; 4]) -> usize {
        let at = self.raw(&[ty, code, 0, 0]);
        self.raw(&rest);
        let ps = self.ps(58);
        self.spec(at + 2, at, Some(ps), false, false);
        at
    }
    fn gre(&mut self, ck: bool, key: bool, seq: bool, ptype: u16) -> usize {
        let at = self.b.len();
        let flags = (ck as u16) << 15 | (key as u16) << 13 | (seq as u16) << 12;
        self.u16(flags);
        self.u16(ptype);
        if ck {
            self.raw(&[0, 0, 0, 0]);
            self.spec(at + 4, at, None, false, false);
        }
        if key {
            self.raw(&[0, 0, 0, 7]);
        }
        if seq {
            self.raw(&[0, 0, 0, 9]);
        }
        at
    }
    /// Append the first `n` bytes of a finished packet as an ICMP quote.
    fn quote(&mut self, inner: &(Vec<u8>, Vec<Spec>), n: usize) {
        let at = self.raw(&inner.0[..n]);
        for s in &inner.1 {
            if s.field + 2 > n {
                continue;
            }
            let mut s = *s;
            s.field += at;
            s.start += at;
            s.end = (s.end + at).min(at + n);
            s.full = false;
            if let Some(ps) = s.ps.as_mut() {
                ps.src += at;
                ps.dst += at;
            }
            self.quoted.push(s);
        }
    }
    fn finish(mut self) -> (Vec<u8>, Vec<Spec>) {
        let n = self.b.len();
        for l in self.lens.iter().rev() {
            match *l {
                Len::Ipv4(a) => {
                    self.b[a + 2..a + 4].copy_from_slice(&((n - a) as u16).to_be_bytes())
                }
                Len::Ipv6(a) => {
                    self.b[a + 4..a + 6].copy_from_slice(&((n - a - 40) as u16).to_be_bytes())
                }
                Len::Udp(a) => {
                    self.b[a + 4..a + 6].copy_from_slice(&((n - a) as u16).to_be_bytes())
                }
            }
        }
        for s in self.specs.iter_mut() {
            s.end = s.end.min(n);
        }
        for s in self.specs.iter().rev() {
            self.b[s.field..s.field + 2].copy_from_slice(&[0, 0]);
            if s.zero {
                continue;
            }
            let mut c = !(fold(sum_words(&self.b[s.start..s.end], false, 0)) as u32) as u16;
            if let Some(ps) = s.ps {
                let k = if ps.v6 { 16 } else { 4 };
                let mut t = sum_words(&self.b[ps.src..ps.src + k], false, 0);
                t = sum_words(&self.b[ps.dst..ps.dst + k], false, t);
                let len = (s.end - s.start) as u64;
                t += ps.proto as u64 + (len & 0xffff) + (len >> 16);
                t += sum_words(&self.b[s.start..s.end], false, 0);
                c = !fold(t);
            }
            if s.udp && c == 0 {
                c = 0xffff;
            }
            self.b[s.field..s.field + 2].copy_from_slice(&c.to_be_bytes());
        }
        let mut specs = self.specs;
        specs.extend(self.quoted);
        (self.b, specs)
    }
}

/// A DNS message: question with a label of `pad` + 1 bytes (to move the
/// ECS address between even and odd offsets), one answer, and an OPT record
/// with ECS when asked.
fn dns(response: bool, pad: usize, ecs: Option<(u16, u8, &[u8])>) -> Vec<u8> {
    let flags = if response { 0x81 } else { 0x01 };
    let mut m = vec![
        0xab,
        0xcd,
        flags,
        0x00,
        0,
        1,
        0,
        response as u8,
        0,
        0,
        0,
        ecs.is_some() as u8,
    ];
    m.push(pad as u8 + 1);
    m.extend(std::iter::repeat_n(b'a', pad + 1));
    m.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
    if response {
        m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
    }
    if let Some((fam, prefix, addr)) = ecs {
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        let olen = 4 + addr.len();
        m.extend_from_slice(&((4 + olen) as u16).to_be_bytes());
        m.extend_from_slice(&[0, 8]);
        m.extend_from_slice(&(olen as u16).to_be_bytes());
        m.extend_from_slice(&fam.to_be_bytes());
        m.extend_from_slice(&[prefix, 0]);
        m.extend_from_slice(addr);
    }
    m
}

const C4: [u8; 4] = [192, 0, 2, 10];
const S4: [u8; 4] = [198, 51, 100, 53];
const C6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const S6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];

fn a6(last: u8) -> [u8; 16] {
    let mut a = S6;
    a[5] = 9;
    a[15] = last;
    a
}

// ---------------------------------------------------------------- verifier

/// Patch every slot of `pkt` and check the invariants against `specs`.
/// Specs whose field is not inside `pkt` are ignored.
fn patch_all_and_verify(pkt: &[u8], loc: &Located, specs: &[Spec]) {
    patch_all_and_verify_x(pkt, loc, specs, false)
}

/// With `foreign`, checksums found by locate that the builder did not make
/// (inside random payloads) may change too.
fn patch_all_and_verify_x(pkt: &[u8], loc: &Located, specs: &[Spec], foreign: bool) {
    let n = pkt.len();
    let live: Vec<&Spec> = specs.iter().filter(|s| s.field + 2 <= n).collect();
    let before: Vec<(u16, [u8; 2])> = live
        .iter()
        .map(|s| (spec_sum(pkt, s), [pkt[s.field], pkt[s.field + 1]]))
        .collect();
    let mut p = pkt.to_vec();
    for (i, s) in loc.slots.iter().enumerate() {
        assert!(s.offset + s.len as usize <= n, "slot {i} out of bounds");
        let new: Vec<u8> = p[s.range()]
            .iter()
            .enumerate()
            .map(|(j, b)| b ^ 0xa5u8.wrapping_add((i * 7 + j) as u8))
            .collect();
        patch(&mut p, loc, i, &new);
        assert_eq!(&p[s.range()], &new[..], "slot {i} not written");
    }
    for (s, (sum, field)) in live.iter().zip(&before) {
        if s.udp && *field == [0, 0] {
            assert_eq!(
                &p[s.field..s.field + 2],
                &[0, 0],
                "zero UDP checksum at {}",
                s.field
            );
            continue;
        }
        assert_eq!(
            spec_sum(&p, s),
            *sum,
            "checksum at {} changed its error (n={n}) {:?}",
            s.field,
            loc
        );
    }
    for k in 0..n {
        let in_slot = loc.slots.iter().any(|s| s.range().contains(&k));
        let in_ck = specs.iter().any(|s| k == s.field || k == s.field + 1)
            || (foreign
                && loc
                    .checksums
                    .iter()
                    .any(|c| k == c.field || k == c.field + 1));
        if !in_slot && !in_ck {
            assert_eq!(p[k], pkt[k], "byte {k} changed");
        }
    }
}

/// Locate (must succeed), check all specs start valid, patch and verify;
/// then the same with every checksum made wrong.
fn check(lt: u32, built: &(Vec<u8>, Vec<Spec>)) -> Located {
    let (pkt, specs) = built;
    for s in specs.iter().filter(|s| s.full && !s.zero) {
        assert_eq!(
            spec_sum(pkt, s),
            0,
            "builder made a bad checksum at {}",
            s.field
        );
    }
    let mut loc = Located::new();
    locate(lt, pkt, &mut loc).unwrap_or_else(|e| panic!("dropped: {}", e.as_str()));
    for c in &loc.checksums {
        assert!(
            specs.iter().any(|s| s.field == c.field),
            "unexpected checksum at {}",
            c.field
        );
    }
    patch_all_and_verify(pkt, &loc, specs);
    let mut bad = pkt.clone();
    for s in specs {
        let v = u16::from_be_bytes([bad[s.field], bad[s.field + 1]]);
        if v != 0 {
            let w = v.wrapping_add(0x1111).max(1);
            bad[s.field..s.field + 2].copy_from_slice(&w.to_be_bytes());
        }
    }
    patch_all_and_verify(&bad, &loc, specs);
    all_cuts(lt, pkt, specs);
    loc
}

/// Every truncation: no panic; kept packets have slots inside the bytes and
/// keep the checksum invariants for the checksums still present.
fn all_cuts(lt: u32, pkt: &[u8], specs: &[Spec]) {
    let mut loc = Located::new();
    for n in 0..pkt.len() {
        let cut = &pkt[..n];
        if locate(lt, cut, &mut loc).is_ok() {
            for c in &loc.checksums {
                assert!(c.field + 2 <= n);
            }
            patch_all_and_verify(cut, &loc, specs);
        }
    }
}

fn origins(loc: &Located) -> Vec<(Origin, Side)> {
    loc.slots.iter().map(|s| (s.origin, s.side)).collect()
}

fn drop_of(lt: u32, pkt: &[u8]) -> &'static str {
    let mut loc = Located::new();
    match locate(lt, pkt, &mut loc) {
        Ok(()) => "kept",
        Err(e) => e.as_str(),
    }
}

// ------------------------------------------------------------------- cases

#[test]
fn ipv4_udp_query_with_ecs_both_parities() {
    for pad in 0..4 {
        let mut b = B::new();
        b.eth(0x0800);
        b.ipv4(17, C4, S4);
        b.udp(40000, 53);
        let m = dns(false, pad, Some((1, 24, &[203, 0, 113])));
        let m0 = b.raw(&m);
        let built = b.finish();
        let loc = check(1, &built);
        assert_eq!(
            origins(&loc),
            vec![
                (Origin::Ip, Side::Client),
                (Origin::Ip, Side::Server),
                (Origin::Ecs, Side::Client)
            ]
        );
        assert_eq!(loc.client, Some(0));
        assert_eq!(loc.dns, vec![m0..m0 + m.len()]);
        let e = loc.slots[2];
        assert_eq!((e.len, e.prefix_bits, e.family), (3, 24, Family::V4));
        assert_eq!(&built.0[e.range()], &[203, 0, 113]);
        assert!(!loc.is_fragment);
    }
}

#[test]
fn ipv6_response_with_qinq_and_ecs6() {
    let mut b = B::new();
    b.raw(&[
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xa8, 0, 5, 0x81, 0, 0, 6, 0x91, 0, 0, 7,
    ]);
    b.u16(0x86dd);
    b.ipv6(17, S6, C6);
    b.udp(53, 40000);
    b.raw(&dns(
        true,
        1,
        Some((2, 56, &[0x20, 1, 0xd, 0xb8, 0xaa, 0xbb, 0xcc])),
    ));
    let loc = check(1, &b.finish());
    assert_eq!(
        origins(&loc),
        vec![
            (Origin::Ip, Side::Server),
            (Origin::Ip, Side::Client),
            (Origin::Ecs, Side::Client)
        ]
    );
    assert_eq!(loc.client, Some(1));
    assert_eq!(loc.slots[2].len, 7);
}

#[test]
fn zero_udp_checksum_stays_zero() {
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.udp_x(40000, 53, true);
    b.raw(&dns(false, 0, Some((1, 32, &[203, 0, 113, 7]))));
    let loc = check(228, &b.finish());
    assert_eq!(loc.slots.len(), 3);
}

#[test]
fn sides_from_ports_and_qr() {
    let side = |sport: u16, dport: u16, resp: bool| {
        let mut b = B::new();
        b.ipv4(17, C4, S4);
        b.udp(sport, dport);
        b.raw(&dns(resp, 0, None));
        let loc = check(101, &b.finish());
        (loc.slots[0].side, loc.slots[1].side, loc.client)
    };
    use Side::*;
    assert_eq!(side(53, 53, false), (Client, Server, Some(0)));
    assert_eq!(side(53, 53, true), (Server, Client, Some(1)));
    assert_eq!(side(5353, 853, false), (Client, Server, Some(0)));
    assert_eq!(side(443, 5000, false), (Server, Client, Some(1)));
    assert_eq!(side(443, 853, false), (Unknown, Unknown, None));
    assert_eq!(side(123, 123, false), (Unknown, Unknown, None));
}

#[test]
fn tcp_two_messages_in_one_segment() {
    let m1 = dns(false, 0, Some((1, 24, &[203, 0, 113])));
    let m2 = dns(false, 3, Some((1, 20, &[203, 0, 112])));
    let mut b = B::new();
    b.eth(0x0800);
    b.ipv4(6, C4, S4);
    b.tcp(40000, 53, &[1, 1, 1, 0]);
    let a = b.raw(&(m1.len() as u16).to_be_bytes());
    b.raw(&m1);
    b.raw(&(m2.len() as u16).to_be_bytes());
    b.raw(&m2);
    let loc = check(1, &b.finish());
    assert_eq!(
        loc.slots.iter().filter(|s| s.origin == Origin::Ecs).count(),
        2
    );
    assert_eq!(loc.dns.len(), 2);
    assert_eq!(loc.dns[0], a + 2..a + 2 + m1.len());
    assert_eq!(loc.slots[0].side, Side::Client);
}

#[test]
fn tcp_split_and_empty() {
    let m1 = dns(false, 0, Some((1, 24, &[203, 0, 113])));
    let seg = |payload: &[u8]| {
        let mut b = B::new();
        b.ipv6(6, C6, S6);
        b.tcp(40000, 53, &[]);
        b.raw(payload);
        b.finish()
    };
    let mut half = (m1.len() as u16).to_be_bytes().to_vec();
    half.extend_from_slice(&m1[..10]);
    assert_eq!(drop_of(229, &seg(&half).0), "tcp_dns_split");
    assert_eq!(drop_of(229, &seg(&[0]).0), "tcp_dns_split");
    let loc = check(229, &seg(&[]));
    assert_eq!(loc.slots.len(), 2);
    assert!(loc.dns.is_empty());
    // A complete message that cannot be walked.
    let mut junk = vec![0, 13];
    junk.extend_from_slice(&[0xff; 13]);
    assert_eq!(drop_of(229, &seg(&junk).0), "unparsed_dns");
}

#[test]
fn unparsed_udp_dns_is_dropped_but_cut_dns_kept() {
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&[0xff; 30]);
    assert_eq!(drop_of(228, &b.finish().0), "unparsed_dns");
    // Cut by snaplen in the middle of the ECS address: the present byte is a slot.
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    let (p, _) = b.finish();
    let mut loc = Located::new();
    locate(228, &p[..p.len() - 2], &mut loc).unwrap();
    let e = loc.slots.last().unwrap();
    assert_eq!(
        (e.origin, e.len, e.truncated, e.prefix_bits),
        (Origin::Ecs, 1, true, 8)
    );
    assert!(loc.dns.is_empty());
}

#[test]
fn icmp4_port_unreachable_quoting_dns_response() {
    // The server's response came back as unreachable from the client.
    let mut q = B::new();
    q.ipv4(17, S4, C4);
    q.udp(53, 40000);
    q.raw(&dns(true, 0, Some((1, 24, &[203, 0, 113]))));
    let q = q.finish();
    for n in [28, 40, q.0.len()] {
        let mut b = B::new();
        b.eth(0x0800);
        b.ipv4(1, C4, S4);
        b.icmp4(3, 3, [0; 4]);
        b.quote(&q, n);
        let loc = check(1, &b.finish());
        let o = origins(&loc);
        assert_eq!(o[0], (Origin::Ip, Side::Client));
        assert_eq!(o[1], (Origin::Ip, Side::Server));
        assert_eq!(o[2], (Origin::QuotedIp, Side::Server));
        assert_eq!(o[3], (Origin::QuotedIp, Side::Client));
        if n == q.0.len() {
            assert_eq!(o[4], (Origin::Ecs, Side::Client));
        }
        assert_eq!(loc.client, None);
        assert!(loc.dns.is_empty());
    }
}

#[test]
fn icmp4_time_exceeded_from_router_is_unknown() {
    let mut q = B::new();
    q.ipv4(17, C4, S4);
    q.udp(40000, 53);
    q.raw(&dns(false, 0, None));
    let q = q.finish();
    let mut b = B::new();
    b.ipv4(1, [10, 9, 9, 9], C4);
    b.icmp4(11, 0, [0; 4]);
    b.quote(&q, 28);
    let loc = check(228, &b.finish());
    let o = origins(&loc);
    assert_eq!(o[0], (Origin::Ip, Side::Unknown));
    assert_eq!(o[1], (Origin::Ip, Side::Client));
    assert_eq!(o[2], (Origin::QuotedIp, Side::Client));
    assert_eq!(o[3], (Origin::QuotedIp, Side::Server));
}

#[test]
fn icmp4_redirect_gateway() {
    let mut q = B::new();
    q.ipv4(6, C4, S4);
    q.tcp(40000, 53, &[]);
    let q = q.finish();
    let mut b = B::new();
    b.ipv4(1, [10, 0, 0, 1], C4);
    b.icmp4(5, 1, [10, 0, 0, 254]);
    b.quote(&q, 28);
    let loc = check(228, &b.finish());
    assert!(loc
        .slots
        .iter()
        .any(|s| s.origin == Origin::NdTarget && s.offset == 24));
}

#[test]
fn icmp6_errors_and_nd() {
    let mut q = B::new();
    q.ipv6(17, S6, C6);
    q.udp(53, 40000);
    q.raw(&dns(true, 2, Some((2, 48, &[0x20, 1, 0xd, 0xb8, 0, 7]))));
    let q = q.finish();
    for ty in 1..=4u8 {
        let mut b = B::new();
        b.eth(0x86dd);
        b.ipv6(58, C6, S6);
        b.icmp6(ty, 0, [0, 0, 5, 0xdc]);
        b.quote(&q, q.0.len());
        let loc = check(1, &b.finish());
        let o = origins(&loc);
        assert_eq!(
            &o[..4],
            &[
                (Origin::Ip, Side::Client),
                (Origin::Ip, Side::Server),
                (Origin::QuotedIp, Side::Server),
                (Origin::QuotedIp, Side::Client)
            ]
        );
        assert_eq!(o[4], (Origin::Ecs, Side::Client));
    }
    for ty in [135u8, 136] {
        let mut b = B::new();
        b.ipv6(58, C6, S6);
        b.icmp6(ty, 0, [0; 4]);
        b.raw(&a6(1));
        b.raw(&[1, 1, 2, 0, 0, 0, 0, 1]);
        let loc = check(229, &b.finish());
        assert_eq!(loc.slots[2].origin, Origin::NdTarget);
        assert_eq!(loc.slots[2].offset, 48);
    }
    // Redirect with a redirected-header option quoting a packet.
    let mut b = B::new();
    b.ipv6(58, C6, S6);
    b.icmp6(137, 0, [0; 4]);
    b.raw(&a6(1));
    b.raw(&a6(2));
    let n = 48;
    b.raw(&[4, (8 + n as u8) / 8, 0, 0, 0, 0, 0, 0]);
    b.quote(&q, n);
    let loc = check(229, &b.finish());
    let o: Vec<Origin> = loc.slots.iter().map(|s| s.origin).collect();
    assert_eq!(
        o,
        vec![
            Origin::Ip,
            Origin::Ip,
            Origin::NdTarget,
            Origin::NdTarget,
            Origin::QuotedIp,
            Origin::QuotedIp
        ]
    );
}

#[test]
fn ipv4_fragments() {
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    let (mut p, specs) = b.finish();
    // First fragment: MF set, cut after 40 bytes of IP payload.
    let cut = 20 + 8 + 20;
    p.truncate(cut);
    p[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
    p[6] = 0x20;
    fix_ipv4(&mut p, 0);
    let specs: Vec<Spec> = specs
        .iter()
        .map(|s| Spec {
            full: false,
            end: s.end.min(cut),
            ..*s
        })
        .collect();
    let mut loc = Located::new();
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.is_fragment);
    assert_eq!(loc.slots.len(), 2);
    assert_eq!(loc.slots[0].side, Side::Client);
    patch_all_and_verify(&p, &loc, &specs);
    // A later fragment: addresses only.
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.raw(&[0xff; 30]);
    let (mut p, specs) = b.finish();
    p[6] = 0x00;
    p[7] = 5;
    fix_ipv4(&mut p, 0);
    let loc = check(228, &(p, specs));
    assert!(loc.is_fragment);
    assert_eq!(
        origins(&loc),
        vec![(Origin::Ip, Side::Unknown), (Origin::Ip, Side::Unknown)]
    );
}

fn fix_ipv4(p: &mut [u8], at: usize) {
    let ihl = (p[at] & 15) as usize * 4;
    p[at + 10] = 0;
    p[at + 11] = 0;
    let c = !fold(sum_words(&p[at..at + ihl], false, 0));
    p[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn ipv6_fragment_header() {
    let mut b = B::new();
    b.ipv6(44, C6, S6);
    b.raw(&[17, 0, 0, 1, 0, 0, 0, 42]);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(229, &b.finish());
    assert!(loc.is_fragment);
    assert_eq!(loc.slots[0].side, Side::Client);
    let mut b = B::new();
    b.ipv6(44, C6, S6);
    b.raw(&[17, 0, 0, 0x10, 0, 0, 0, 42]);
    b.raw(&[0xee; 40]);
    let loc = check(229, &b.finish());
    assert!(loc.is_fragment);
    assert_eq!(loc.slots.len(), 2);
}

#[test]
fn ipv6_routing_headers_use_final_destination() {
    // Type 0 with two addresses, segments left 2: final = last address.
    let mut b = B::new();
    b.ipv6(43, C6, a6(1));
    b.raw(&[17, 4, 0, 2, 0, 0, 0, 0]);
    b.raw(&a6(2));
    let fin = b.raw(&S6);
    b.dst = fin;
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(229, &b.finish());
    assert_eq!(
        origins(&loc),
        vec![
            (Origin::Ip, Side::Client),
            (Origin::Ip, Side::Unknown),
            (Origin::Routing, Side::Unknown),
            (Origin::Routing, Side::Server)
        ]
    );
    // SRH (type 4): segment list [0] is the final segment.
    let mut b = B::new();
    b.ipv6(43, C6, a6(1));
    b.raw(&[17, 4, 4, 1, 1, 0, 0, 0]);
    let fin = b.raw(&S6);
    b.raw(&a6(1));
    b.dst = fin;
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots[2].side, Side::Server);
    assert_eq!(loc.slots.len(), 4);
    // Type 2 with segments left 0: the header's destination is final.
    let mut b = B::new();
    b.ipv6(43, C6, S6);
    b.raw(&[6, 2, 2, 0, 0, 0, 0, 0]);
    b.raw(&a6(3));
    b.tcp(40000, 53, &[]);
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots[1].side, Side::Server);
    assert_eq!(loc.slots[2].origin, Origin::Routing);
    // Unknown type.
    let mut b = B::new();
    b.ipv6(43, C6, S6);
    b.raw(&[17, 2, 3, 1, 0, 0, 0, 0]);
    b.raw(&a6(3));
    b.udp(40000, 53);
    assert_eq!(drop_of(229, &b.finish().0), "routing_header");
}

#[test]
fn home_address_option() {
    let mut b = B::new();
    b.ipv6(60, a6(7), S6);
    b.raw(&[58, 3, 1, 2, 0, 0, 201, 16]);
    let home = b.raw(&C6);
    b.raw(&[1, 2, 0, 0, 1, 0, 0, 0]);
    b.src = home;
    b.icmp6(128, 0, [0, 1, 0, 1]);
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots[2].origin, Origin::HomeAddress);
    let mut b = B::new();
    b.ipv6(60, a6(7), S6);
    b.raw(&[17, 3, 1, 2, 0, 0, 201, 16]);
    let home = b.raw(&C6);
    b.raw(&[1, 2, 0, 0, 1, 0, 0, 0]);
    b.src = home;
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots[0].side, Side::Unknown);
    assert_eq!(loc.slots[2].side, Side::Client);
    assert_eq!(loc.client, Some(2));
}

#[test]
fn ipv4_options() {
    // Record route with one filled entry of two, timestamp with prespecified
    // addresses, end of list.
    let opts = [
        7, 11, 8, 10, 1, 1, 1, 0, 0, 0, 0, //
        68, 12, 5, 3, 10, 2, 2, 2, 0, 0, 0, 0, //
        0,
    ];
    let mut b = B::new();
    b.ipv4_opts(17, C4, S4, &opts);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(228, &b.finish());
    let o: Vec<(usize, Origin)> = loc.slots.iter().map(|s| (s.offset, s.origin)).collect();
    assert_eq!(
        o,
        vec![
            (12, Origin::Ip),
            (16, Origin::Ip),
            (23, Origin::IpOption),
            (35, Origin::IpOption)
        ]
    );
    let mut b = B::new();
    b.ipv4_opts(17, C4, S4, &[131, 7, 4, 10, 0, 0, 1, 0]);
    b.udp(40000, 53);
    assert_eq!(drop_of(228, &b.finish().0), "ipv4_source_route");
}

#[test]
fn gre_with_checksum_key_seq() {
    for (ck, key, seq) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let mut b = B::new();
        b.eth(0x0800);
        b.ipv4(47, [10, 0, 0, 1], [10, 0, 0, 2]);
        b.gre(ck, key, seq, 0x0800);
        b.ipv4(17, C4, S4);
        b.udp(40000, 53);
        b.raw(&dns(false, 1, Some((1, 24, &[203, 0, 113]))));
        let loc = check(1, &b.finish());
        let o = origins(&loc);
        assert_eq!(
            o,
            vec![
                (Origin::Ip, Side::Unknown),
                (Origin::Ip, Side::Unknown),
                (Origin::InnerIp, Side::Client),
                (Origin::InnerIp, Side::Server),
                (Origin::Ecs, Side::Client)
            ]
        );
        assert_eq!(loc.client, Some(2));
    }
    // Transparent Ethernet bridging with IPv6 inside.
    let mut b = B::new();
    b.ipv4(47, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.gre(true, false, false, 0x6558);
    b.eth(0x86dd);
    b.ipv6(17, C6, S6);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(228, &b.finish());
    assert_eq!(loc.slots.len(), 4);
    let mut b = B::new();
    b.ipv4(47, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.gre(false, false, false, 0x880b);
    b.raw(&[0; 20]);
    assert_eq!(drop_of(228, &b.finish().0), "unknown_tunnel");
}

#[test]
fn ip_in_ip_and_nesting_limit() {
    let mut b = B::new();
    b.ipv6(4, a6(1), a6(2));
    b.ipv4(41, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.ipv6(17, C6, S6);
    b.udp(40000, 53);
    b.raw(&dns(
        false,
        0,
        Some((2, 64, &[0x20, 1, 0xd, 0xb8, 1, 2, 3, 4])),
    ));
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots.len(), 7);
    assert_eq!(loc.slots[4].side, Side::Client);
    assert_eq!(loc.slots[4].origin, Origin::InnerIp);
    let mut b = B::new();
    for _ in 0..6 {
        b.ipv4(4, [10, 0, 0, 1], [10, 0, 0, 2]);
    }
    b.ipv4(17, C4, S4);
    assert_eq!(drop_of(228, &b.finish().0), "nesting_too_deep");
}

#[test]
fn teredo_with_auth_and_origin() {
    let mut b = B::new();
    b.eth(0x0800);
    b.ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.udp(3544, 50000);
    // auth: id len 1, auth len 2 => 13 + 3 = 16 bytes; origin: 8 bytes.
    b.raw(&[0, 1, 1, 2, 9, 8, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
    b.raw(&[0, 0, 0xff, 0xfe, !192, !0, !2, !77]);
    b.ipv6(17, C6, S6);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    let loc = check(1, &b.finish());
    let o: Vec<Origin> = loc.slots.iter().map(|s| s.origin).collect();
    assert_eq!(
        o,
        vec![
            Origin::Ip,
            Origin::Ip,
            Origin::TeredoOrigin,
            Origin::InnerIp,
            Origin::InnerIp,
            Origin::Ecs
        ]
    );
    // Without headers, and with an odd-length auth header.
    let mut b = B::new();
    b.ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.udp(50000, 3544);
    b.raw(&[0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
    b.ipv6(17, C6, S6);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    check(228, &b.finish());
}

#[test]
fn mptcp_add_addr() {
    let mut b = B::new();
    b.ipv4(6, C4, S4);
    b.tcp(40000, 80, &[30, 8, 0x30, 1, 192, 0, 2, 99, 1, 1, 1, 1]);
    let loc = check(228, &b.finish());
    assert_eq!(loc.slots[2].origin, Origin::MptcpAddr);
    assert_eq!(loc.slots[2].offset, 44);
}

#[test]
fn arp_and_non_ip() {
    let mut b = B::new();
    b.eth(0x0806);
    b.raw(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1]);
    b.raw(&C4);
    b.raw(&[0; 6]);
    b.raw(&S4);
    let loc = check(1, &b.finish());
    assert_eq!(
        loc.slots
            .iter()
            .map(|s| (s.offset, s.origin))
            .collect::<Vec<_>>(),
        vec![(28, Origin::Arp), (38, Origin::Arp)]
    );
    let mut b = B::new();
    b.eth(0x8035);
    b.raw(&[
        0, 1, 8, 0, 6, 4, 0, 3, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    ]);
    assert_eq!(check(1, &b.finish()).slots.len(), 2);
    let mut b = B::new();
    b.eth(0x0806);
    b.raw(&[
        0, 1, 0x60, 0x03, 6, 2, 0, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    assert_eq!(drop_of(1, &b.finish().0), "non_ip");
    let mut b = B::new();
    b.eth(0x88cc);
    b.raw(&[0; 30]);
    assert_eq!(drop_of(1, &b.finish().0), "non_ip");
    let mut b = B::new();
    b.eth(46);
    b.raw(&[0; 46]);
    assert_eq!(drop_of(1, &b.finish().0), "non_ip");
    assert_eq!(drop_of(147, &[0; 40]), "unsupported_linktype");
}

/// One IPv4 and one IPv6 DNS packet behind every supported link header.
#[test]
fn link_types() {
    let ip = |b: &mut B, v6: bool| {
        if v6 {
            b.ipv6(17, C6, S6);
        } else {
            b.ipv4(17, C4, S4);
        }
        b.udp(40000, 53);
        b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    };
    type Hdr = Box<dyn Fn(bool) -> Vec<u8>>;
    let cases: Vec<(u32, Hdr)> = vec![
        (
            1,
            Box::new(|v6| {
                let mut h = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0, 0, 1];
                h.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[8, 0] });
                h
            }),
        ),
        (
            113,
            Box::new(|v6| {
                let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
                h.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[8, 0] });
                h
            }),
        ),
        (
            276,
            Box::new(|v6| {
                let mut h = if v6 { vec![0x86, 0xdd] } else { vec![8, 0] };
                h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                h
            }),
        ),
        (101, Box::new(|_| vec![])),
        (12, Box::new(|_| vec![])),
        (14, Box::new(|_| vec![])),
        (
            0,
            Box::new(|v6| {
                if v6 {
                    vec![30, 0, 0, 0]
                } else {
                    vec![2, 0, 0, 0]
                }
            }),
        ),
        (
            0,
            Box::new(|v6| {
                if v6 {
                    vec![0, 0, 0, 24]
                } else {
                    vec![0, 0, 0, 2]
                }
            }),
        ),
        (
            0,
            Box::new(|v6| {
                if v6 {
                    vec![28, 0, 0, 0]
                } else {
                    vec![0, 0, 0, 2]
                }
            }),
        ),
        (
            108,
            Box::new(|v6| {
                if v6 {
                    vec![0, 0, 0, 24]
                } else {
                    vec![0, 0, 0, 2]
                }
            }),
        ),
    ];
    for (lt, hdr) in &cases {
        for v6 in [false, true] {
            let mut b = B::new();
            b.raw(&hdr(v6));
            ip(&mut b, v6);
            let loc = check(*lt, &b.finish());
            assert_eq!(loc.slots.len(), 3, "linktype {lt}");
            assert_eq!(loc.client, Some(0));
        }
    }
    let mut b = B::new();
    ip(&mut b, false);
    check(228, &b.finish());
    let mut b = B::new();
    ip(&mut b, true);
    check(229, &b.finish());
    assert_eq!(drop_of(0, &[7, 0, 0, 0, 0x45, 0, 0, 20]), "non_ip");
    assert_eq!(drop_of(101, &[0x55, 0, 0, 20]), "malformed_link");
}

#[test]
fn sll_on_gre_device_rewrites_link_address() {
    let mut b = B::new();
    b.raw(&[0, 0, 0x03, 0x0a, 0, 4, 10, 0, 0, 1, 0, 0, 0, 0, 8, 0]);
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    let loc = check(113, &b.finish());
    assert_eq!(
        (loc.slots[0].origin, loc.slots[0].offset, loc.slots[0].len),
        (Origin::LinkLayer, 6, 4)
    );
}

#[test]
fn pppoe_and_mpls() {
    let mut b = B::new();
    b.eth(0x8864);
    b.raw(&[0x11, 0, 0, 1, 0, 0, 0, 0x21]);
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    assert_eq!(check(1, &b.finish()).slots.len(), 2);
    let mut b = B::new();
    b.eth(0x8847);
    b.raw(&[0, 1, 0, 64, 0, 2, 1, 64]);
    b.ipv6(17, C6, S6);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, None));
    assert_eq!(check(1, &b.finish()).slots.len(), 2);
}

#[test]
fn udp_lite_partial_coverage() {
    let mut b = B::new();
    b.ipv4(136, C4, S4);
    let at = b.b.len();
    b.raw(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    // checksum over the header only (coverage 8) plus pseudo-header.
    b.specs.push(Spec {
        field: at + 6,
        start: at,
        end: at + 8,
        ps: Some(Ps {
            src: 12,
            dst: 16,
            v6: false,
            proto: 136,
        }),
        udp: false,
        full: true,
        zero: false,
    });
    let (mut p, specs) = b.finish();
    // finish() used the region length as pseudo length; UDP-Lite uses the
    // whole datagram length: recompute by hand.
    let total = (p.len() - at) as u64;
    p[at + 6] = 0;
    p[at + 7] = 0;
    let mut t = sum_words(&p[12..20], false, 0) + 136 + total;
    t = sum_words(&p[at..at + 8], false, t);
    let c = !fold(t);
    p[at + 6..at + 8].copy_from_slice(&c.to_be_bytes());
    let mut loc = Located::new();
    locate(228, &p, &mut loc).unwrap();
    assert_eq!(loc.slots.len(), 3);
    // The verifier's pseudo length differs, but preservation still holds.
    patch_all_and_verify(&p, &loc, &specs);
}

// ---------------------------------------------------------------- fuzzing

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(lt in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999]),
                                    data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut loc = Located::new();
            if locate(lt, &data, &mut loc).is_ok() {
                for s in &loc.slots {
                    prop_assert!(s.offset + s.len as usize <= data.len());
                }
                let mut p = data.clone();
                for i in 0..loc.slots.len() {
                    let n = loc.slots[i].len as usize;
                    patch(&mut p, &loc, i, &[0x55; 16][..n]);
                }
            }
        }

        /// Random bytes after a valid IPv4/IPv6 + UDP/TCP/ICMP/GRE header
        /// reach the deeper parsers.
        #[test]
        fn random_payloads_never_panic(v6: bool, proto in prop::sample::select(vec![1u8, 4, 6, 17, 41, 43, 44, 47, 58, 60, 135]),
                                       port in prop::sample::select(vec![53u16, 3544, 4789, 443]),
                                       data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = B::new();
            if v6 { b.ipv6(proto, C6, S6); } else { b.ipv4(proto, C4, S4); }
            if proto == 17 { b.udp(40000, port); }
            if proto == 6 { b.tcp(port, 40000, &[]); }
            b.raw(&data);
            let (p, specs) = b.finish();
            let mut loc = Located::new();
            if locate(101, &p, &mut loc).is_ok() {
                patch_all_and_verify_x(&p, &loc, &specs, true);
            }
        }
    }
}

// ----------------------------------------------------------------- corpus

/// Minimal classic pcap reader: (linktype, records).
fn read_pcap(data: &[u8]) -> Option<(u32, Vec<&[u8]>)> {
    let magic = data.get(0..4)?;
    let le = match magic {
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

#[test]
fn corpus_classic_pcaps() {
    let Ok(dir) = std::env::var("IPWASH_CORPUS") else {
        eprintln!("IPWASH_CORPUS not set: skipping corpus test");
        return;
    };
    let dir = std::path::Path::new(&dir).join("pcap");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus pcap directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no pcap files in {}", dir.display());
    let mut loc = Located::new();
    for path in names {
        let data = std::fs::read(&path).expect("read pcap");
        let Some((lt, recs)) = read_pcap(&data) else {
            eprintln!("{}: not a classic pcap", path.display());
            continue;
        };
        let mut drops: std::collections::BTreeMap<&str, usize> = Default::default();
        let mut slots = 0;
        for r in &recs {
            match locate(lt, r, &mut loc) {
                Ok(()) => {
                    slots += loc.slots.len();
                    let mut p = r.to_vec();
                    for i in 0..loc.slots.len() {
                        let s = loc.slots[i];
                        assert!(s.offset + s.len as usize <= r.len());
                        let new: Vec<u8> = p[s.range()].iter().map(|b| !b).collect();
                        patch(&mut p, &loc, i, &new);
                    }
                    // Patch back: the original bytes return (checksums may
                    // differ only between the two forms of zero).
                    for i in 0..loc.slots.len() {
                        let s = loc.slots[i];
                        patch(&mut p, &loc, i, &r[s.range()]);
                    }
                    for k in 0..r.len() {
                        if p[k] != r[k] {
                            let ck = loc
                                .checksums
                                .iter()
                                .any(|c| c.field == k || c.field + 1 == k);
                            assert!(ck, "{}: byte {k} differs after round trip", path.display());
                        }
                    }
                }
                Err(e) => *drops.entry(e.as_str()).or_default() += 1,
            }
        }
        eprintln!(
            "{}: linktype {lt}, {} packets, {slots} slots, dropped {:?}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            recs.len(),
            drops
        );
    }
}

#[test]
fn mobility_binding_error_and_alternate_coa() {
    // Binding Error (type 7): status, reserved, home address.
    let mut b = B::new();
    b.ipv6(135, C6, S6);
    let at = b.raw(&[59, 2, 7, 0, 0, 0, 1, 0]);
    b.raw(&a6(4));
    b.specs.push(Spec {
        field: at + 4,
        start: at,
        end: usize::MAX,
        ps: Some(Ps {
            src: 8,
            dst: 24,
            v6: true,
            proto: 135,
        }),
        udp: false,
        full: true,
        zero: false,
    });
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots[2].origin, Origin::HomeAddress);
    // Binding Update with an Alternate Care-of Address option.
    let mut b = B::new();
    b.ipv6(135, C6, S6);
    let at = b.raw(&[59, 3, 5, 0, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 3, 16]);
    b.raw(&a6(5));
    b.specs.push(Spec {
        field: at + 4,
        start: at,
        end: usize::MAX,
        ps: Some(Ps {
            src: 8,
            dst: 24,
            v6: true,
            proto: 135,
        }),
        udp: false,
        full: true,
        zero: false,
    });
    let loc = check(229, &b.finish());
    assert_eq!(loc.slots.len(), 3);
    let mut b = B::new();
    b.ipv6(135, C6, S6);
    b.raw(&[59, 0, 42, 0, 0, 0, 0, 0]);
    assert_eq!(drop_of(229, &b.finish().0), "mobility_header");
}

#[test]
fn vxlan_and_other_udp_tunnels() {
    let mut b = B::new();
    b.ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.udp(50000, 4789);
    b.raw(&[8, 0, 0, 0, 0, 0, 1, 0]);
    b.eth(0x0800);
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    let loc = check(228, &b.finish());
    assert_eq!(loc.slots.len(), 5);
    assert_eq!(loc.client, Some(2));
    let mut b = B::new();
    b.ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.udp(50000, 6081);
    b.raw(&[0; 30]);
    assert_eq!(drop_of(228, &b.finish().0), "unknown_tunnel");
}

#[test]
fn tso_zero_total_length_and_cut_tcp_segment_kept() {
    let m1 = dns(false, 0, Some((1, 24, &[203, 0, 113])));
    let mut b = B::new();
    b.ipv4(6, C4, S4);
    b.tcp(40000, 53, &[]);
    b.raw(&(m1.len() as u16).to_be_bytes());
    b.raw(&m1);
    let (p, specs) = b.finish();
    let mut loc = Located::new();
    // Cut inside the message: kept, ECS found when its first byte is there.
    for n in 41..p.len() {
        locate(228, &p[..n], &mut loc).unwrap();
        let ecs = loc.slots.iter().any(|s| s.origin == Origin::Ecs);
        assert_eq!(ecs, n > p.len() - 3, "cut {n}");
    }
    // Total length zero (segmentation offload): the captured length counts.
    let mut q = p.clone();
    q[2] = 0;
    q[3] = 0;
    fix_ipv4(&mut q, 0);
    locate(228, &q, &mut loc).unwrap();
    assert_eq!(loc.dns.len(), 1);
    patch_all_and_verify(&q, &loc, &specs);
}

#[test]
fn warmed_up_located_does_not_reallocate() {
    let mut b = B::new();
    b.eth(0x0800);
    b.ipv4(47, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.gre(true, false, false, 0x0800);
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 1, Some((1, 24, &[203, 0, 113]))));
    let (p, _) = b.finish();
    let mut loc = Located::new();
    locate(1, &p, &mut loc).unwrap();
    let ptrs = (loc.slots.as_ptr(), loc.checksums.as_ptr(), loc.dns.as_ptr());
    let caps = (
        loc.slots.capacity(),
        loc.checksums.capacity(),
        loc.dns.capacity(),
    );
    for _ in 0..100 {
        locate(1, &p, &mut loc).unwrap();
    }
    assert_eq!(
        ptrs,
        (loc.slots.as_ptr(), loc.checksums.as_ptr(), loc.dns.as_ptr())
    );
    assert_eq!(
        caps,
        (
            loc.slots.capacity(),
            loc.checksums.capacity(),
            loc.dns.capacity()
        )
    );
}

#[test]
fn fragments_report_frag_info_and_no_ecs() {
    // A whole UDP DNS query with ECS in an IPv4 first fragment (MF set):
    // the ECS is left to the defragmenter.
    let mut b = B::new();
    b.ipv4(17, C4, S4);
    b.udp(40000, 53);
    b.raw(&dns(false, 0, Some((1, 24, &[203, 0, 113]))));
    let (mut p, _) = b.finish();
    p[6] = 0x20;
    fix_ipv4(&mut p, 0);
    let mut loc = Located::new();
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.slots.iter().all(|s| s.origin == Origin::Ip));
    assert!(loc.dns.is_empty());
    assert_eq!(loc.slots[0].side, Side::Client);
    let f = loc.frag.clone().unwrap();
    assert_eq!(f.key.family, Family::V4);
    assert_eq!(&f.key.src[..4], &C4);
    assert_eq!(&f.key.dst[..4], &S4);
    assert_eq!(f.key.id, 0x1234);
    assert_eq!(f.key.protocol, 17);
    assert_eq!((f.offset, f.more), (0, true));
    assert_eq!(f.data, 20..p.len());
    assert_eq!(f.len as usize, p.len() - 20);
    assert_eq!(f.udp_checksum, Some(26));
    // Cut by snaplen.
    locate(228, &p[..27], &mut loc).unwrap();
    let f = loc.frag.clone().unwrap();
    assert!(f.cut());
    assert_eq!(f.data, 20..27);
    assert_eq!(f.udp_checksum, None);
    // Not a fragment: no info, ECS found as before.
    p[6] = 0;
    fix_ipv4(&mut p, 0);
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.frag.is_none());
    assert!(loc.slots.iter().any(|s| s.origin == Origin::Ecs));
    // An ICMP error quoting a fragment is not itself a fragment.
    let mut b = B::new();
    b.ipv4(1, S4, C4);
    b.icmp4(3, 3, [0; 4]);
    b.quote(&(p.clone(), vec![]), 40);
    let (mut q, _) = b.finish();
    q[20 + 8 + 6] = 0x20;
    locate(228, &q, &mut loc).unwrap();
    assert!(loc.frag.is_none());
    assert!(!loc.is_fragment);
}

#[test]
fn tunnelled_fragments_that_may_carry_dns_are_dropped() {
    let inner = |proto: u8, frag: [u8; 2], payload: &[u8]| {
        let mut b = B::new();
        b.ipv4(4, [10, 0, 0, 1], [10, 0, 0, 2]);
        let at = b.ipv4(proto, C4, S4);
        b.raw(payload);
        let (mut p, _) = b.finish();
        p[at + 6..at + 8].copy_from_slice(&frag);
        p
    };
    let udp53 = [0x9c, 0x40, 0, 53, 0, 40, 0, 0, 1, 2, 3, 4];
    let udp80 = [0x9c, 0x40, 0, 80, 0, 40, 0, 0, 1, 2, 3, 4];
    assert_eq!(
        drop_of(228, &inner(17, [0x20, 0], &udp53)),
        "tunnelled_fragment"
    );
    assert_eq!(
        drop_of(228, &inner(17, [0, 3], &udp80)),
        "tunnelled_fragment"
    );
    assert_eq!(
        drop_of(228, &inner(6, [0, 3], &udp80)),
        "tunnelled_fragment"
    );
    assert_eq!(
        drop_of(228, &inner(47, [0x20, 0], &udp80)),
        "tunnelled_fragment"
    );
    assert_eq!(drop_of(228, &inner(17, [0x20, 0], &udp80)), "kept");
    assert_eq!(drop_of(228, &inner(1, [0, 3], &udp80)), "kept");
    // IPv6 inside IPv4 with a fragment header.
    let mut b = B::new();
    b.ipv4(41, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.ipv6(44, C6, S6);
    b.raw(&[17, 0, 0, 0x11, 0, 0, 0, 42]);
    b.raw(&[0xee; 24]);
    let (p, _) = b.finish();
    assert_eq!(drop_of(228, &p), "tunnelled_fragment");
    let mut loc = Located::new();
    // The outer header is not a fragment: no frag info.
    let mut b = B::new();
    b.ipv4(4, [10, 0, 0, 1], [10, 0, 0, 2]);
    b.ipv4(1, C4, S4);
    b.raw(&[0; 8]);
    let (p, _) = b.finish();
    locate(228, &p, &mut loc).unwrap();
    assert!(loc.frag.is_none());
}
