//! Unit tests of the checksum arithmetic and the cut-message ECS walk.

use super::*;
use proptest::prelude::*;

/// Plain one's complement sum of `data`, words starting at offset 0.
fn sum(data: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in data.chunks(2) {
        s += (c[0] as u32) << 8 | c.get(1).copied().unwrap_or(0) as u32;
    }
    fold(s)
}

fn one_checksum(field: usize, udp: bool) -> Located {
    let mut l = Located::new();
    l.checksums.push(Checksum {
        field,
        udp,
        parents: [Cover::default(); MAX_REGIONS],
        nparents: 0,
    });
    l
}

fn slot(offset: usize, len: u8, odd: bool) -> Slot {
    let mut s = Slot {
        offset,
        family: Family::V4,
        len,
        prefix_bits: len * 8,
        side: Side::Unknown,
        origin: Origin::Ip,
        truncated: false,
        cover: [Cover::default(); MAX_COVER],
        ncover: 1,
    };
    s.cover[0] = Cover { ck: 0, odd };
    s
}

proptest! {
    /// Incremental update at any offset/parity equals a full recomputation
    /// (modulo the two representations of zero).
    #[test]
    fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 8..80),
                                at in 0usize..64, len in 1u8..17, new in proptest::collection::vec(any::<u8>(), 16)) {
        let n = data.len();
        let at = 2 + at % (n - 2);
        let len = (len as usize).min(n - at) as u8;
        // checksum field at 0..2, data summed from 0
        data[0] = 0; data[1] = 0;
        let c = !sum(&data);
        data[0..2].copy_from_slice(&c.to_be_bytes());
        prop_assert_eq!(sum(&data), 0xffff);
        let mut l = one_checksum(0, false);
        l.slots.push(slot(at, len, at % 2 == 1));
        patch(&mut data, &l, 0, &new[..len as usize]);
        prop_assert_eq!(&data[at..at + len as usize], &new[..len as usize]);
        let s = sum(&data);
        prop_assert!(s == 0xffff || s == 0, "sum {:04x}", s);
    }

    /// A wrong checksum stays exactly as wrong.
    #[test]
    fn wrong_stays_wrong(mut data in proptest::collection::vec(any::<u8>(), 8..80),
                         at in 0usize..64, new in proptest::collection::vec(any::<u8>(), 4)) {
        let n = data.len();
        let at = 2 + at % (n - 2);
        let len = 4usize.min(n - at);
        let before = sum(&data) % 0xffff;
        let mut l = one_checksum(0, false);
        l.slots.push(slot(at, len as u8, at % 2 == 1));
        patch(&mut data, &l, 0, &new[..len]);
        prop_assert_eq!(sum(&data) % 0xffff, before);
    }
}

#[test]
fn udp_zero_stays_zero_and_zero_result_is_ffff() {
    let mut data = vec![0u8, 0, 1, 2, 3, 4];
    let l = {
        let mut l = one_checksum(0, true);
        l.slots.push(slot(2, 4, false));
        l
    };
    patch(&mut data, &l, 0, &[9, 9, 9, 9]);
    assert_eq!(&data[..2], &[0, 0]);
    // A checksum that becomes zero is sent as 0xffff.
    let mut data = vec![0u8, 0, 0, 0, 0, 0];
    let c: u16 = !sum(&[0, 0, 0x00, 0x01]);
    data[..2].copy_from_slice(&c.to_be_bytes());
    data[3] = 1;
    patch(&mut data, &l, 0, &[0, 0, 0, 0]);
    assert_eq!(&data[..2], &[0xff, 0xff]);
}

#[test]
fn parents_get_the_field_change() {
    // outer checksum at 0 covers everything; inner at 2 covers 4..
    let mut data = vec![0u8, 0, 0, 0, 10, 20, 30, 40, 50];
    let inner = !sum(&[0, 0, 10, 20, 30, 40, 50]);
    data[2..4].copy_from_slice(&inner.to_be_bytes());
    let outer = !sum(&data);
    data[0..2].copy_from_slice(&outer.to_be_bytes());
    let mut l = Located::new();
    l.checksums.push(Checksum {
        field: 0,
        udp: false,
        parents: [Cover::default(); MAX_REGIONS],
        nparents: 0,
    });
    let mut p = [Cover::default(); MAX_REGIONS];
    p[0] = Cover { ck: 0, odd: false };
    l.checksums.push(Checksum {
        field: 2,
        udp: false,
        parents: p,
        nparents: 1,
    });
    let mut s = slot(5, 3, true);
    s.cover[1] = Cover { ck: 1, odd: true };
    s.ncover = 2;
    l.slots.push(s);
    patch(&mut data, &l, 0, &[1, 2, 3]);
    assert_eq!(sum(&data[2..]) % 0xffff, 0);
    assert_eq!(sum(&data) % 0xffff, 0);
}

fn msg_with_ecs(addr: &[u8], prefix: u8) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    let olen = 4 + addr.len();
    m.extend_from_slice(&((4 + olen) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 8]);
    m.extend_from_slice(&(olen as u16).to_be_bytes());
    m.extend_from_slice(&[0, 1, prefix, 0]);
    m.extend_from_slice(addr);
    m
}

#[test]
fn partial_walk_agrees_with_find_ecs_and_cuts() {
    let m = msg_with_ecs(&[198, 51, 100], 24);
    let mut full = Vec::new();
    crate::dns::find_ecs(&m, &mut full).unwrap();
    let mut part = Vec::new();
    walk::ecs_partial_for_test(&m, &mut part).unwrap();
    assert_eq!(full, part);
    let at = full[0].offset;
    for cut in 0..m.len() {
        walk::ecs_partial_for_test(&m[..cut], &mut part).unwrap();
        let want = cut.saturating_sub(at).min(3);
        if want == 0 {
            assert!(part.is_empty(), "cut {cut}");
        } else {
            assert_eq!(part.len(), 1);
            assert_eq!(part[0].offset, at);
            assert_eq!(part[0].len, want, "cut {cut}");
        }
    }
}

#[test]
fn partial_walk_rejects_bad_contents() {
    let mut m = msg_with_ecs(&[198, 51, 100], 24);
    // Claim prefix 16 with 3 address bytes.
    let n = m.len();
    m[n - 5] = 16;
    let mut part = Vec::new();
    assert!(walk::ecs_partial_for_test(&m[..n - 1], &mut part).is_err());
    // Reserved label type in the question.
    let mut m = msg_with_ecs(&[198, 51, 100], 24);
    m[12] = 0x80;
    assert!(walk::ecs_partial_for_test(&m[..20], &mut part).is_err());
}

#[test]
fn drop_reason_names_are_listed() {
    for r in [
        DropReason::UnsupportedLinktype,
        DropReason::NonIp,
        DropReason::Malformed(Layer::Link),
        DropReason::Malformed(Layer::Arp),
        DropReason::Malformed(Layer::Ipv4),
        DropReason::Malformed(Layer::Ipv6),
        DropReason::Malformed(Layer::Ipv6Ext),
        DropReason::Malformed(Layer::Udp),
        DropReason::Malformed(Layer::Tcp),
        DropReason::Malformed(Layer::Icmp),
        DropReason::Malformed(Layer::Icmpv6),
        DropReason::Malformed(Layer::Gre),
        DropReason::Malformed(Layer::Tunnel),
        DropReason::UnknownTunnel,
        DropReason::TcpDnsSplit,
        DropReason::UnparsedDns,
        DropReason::RoutingHeader,
        DropReason::SourceRoute,
        DropReason::MobilityHeader,
        DropReason::TooDeep,
        DropReason::TunnelledFragment,
    ] {
        assert!(DropReason::ALL_NAMES.contains(&r.as_str()), "{r:?}");
    }
}

/// The byte-by-byte definition of the change sum, for either alignment.
fn delta_bytewise(old: &[u8], new: &[u8], odd: bool) -> u16 {
    let mut sum = 0u32;
    for (i, (&o, &n)) in old.iter().zip(new).enumerate() {
        let shift = if (i + odd as usize) % 2 == 0 { 8 } else { 0 };
        sum += (0xffff - ((o as u32) << shift)) + ((n as u32) << shift);
    }
    fold(sum)
}

proptest! {
    /// The word-wise sum, byte-swapped for odd alignment, equals the
    /// byte-wise definition exactly (same representative of zero too).
    #[test]
    fn delta_matches_bytewise_definition(
        pair in (1usize..=16).prop_flat_map(|n| (
            proptest::collection::vec(any::<u8>(), n),
            proptest::collection::vec(any::<u8>(), n),
        )),
        odd in any::<bool>(),
    ) {
        let (old, new) = pair;
        prop_assert_eq!(delta(&old, &new, odd), u32::from(delta_bytewise(&old, &new, odd)));
        prop_assert_eq!(delta(&old, &old, odd), u32::from(delta_bytewise(&old, &old, odd)));
        let ones = vec![0xffu8; old.len()];
        let zeros = vec![0u8; old.len()];
        prop_assert_eq!(delta(&ones, &zeros, odd), u32::from(delta_bytewise(&ones, &zeros, odd)));
    }
}

/// Raw IPv4/TCP from port 40000 to 53 carrying `payload` (checksums zero).
fn tcp_packet(payload: &[u8]) -> Vec<u8> {
    let total = (40 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend([192, 0, 2, 7, 198, 51, 100, 53]);
    p.extend(40000u16.to_be_bytes());
    p.extend(53u16.to_be_bytes());
    p.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend(payload);
    p
}

/// With `follow_tcp`, a DNS segment is left to the stream reassembler only
/// when it was described for it; one that could not be described has its
/// messages walked per packet (names, listing) instead of passing unwashed.
#[test]
fn undescribed_tcp_segment_is_walked_per_packet() {
    let mut msg = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in ["7", "100", "51", "198", "in-addr", "arpa"] {
        msg.push(l.len() as u8);
        msg.extend(l.as_bytes());
    }
    msg.extend([0, 0, 12, 0, 1]);
    let mut payload = (msg.len() as u16).to_be_bytes().to_vec();
    payload.extend(&msg);
    let p = tcp_packet(&payload);
    let mut l = Located::new();
    l.follow_tcp = true;
    locate_general(101, &p, &mut l).unwrap();
    assert!(l.tcp.is_some());
    assert!(l.dns.is_empty() && l.names.is_empty());

    walk::NO_SEG.with(|c| c.set(true));
    let r = locate_general(101, &p, &mut l);
    walk::NO_SEG.with(|c| c.set(false));
    r.unwrap();
    assert!(l.tcp.is_none());
    assert_eq!(l.dns, vec![42..42 + msg.len()]);
    assert_eq!(l.names.len(), 1);
    assert_eq!((l.names[0].start, l.names[0].end), (42, 42 + msg.len()));
    // A message split over segments cannot be walked per packet: refused.
    let mut l2 = Located::new();
    l2.follow_tcp = true;
    walk::NO_SEG.with(|c| c.set(true));
    let r = locate_general(101, &tcp_packet(&payload[..payload.len() - 3]), &mut l2);
    walk::NO_SEG.with(|c| c.set(false));
    assert_eq!(r, Err(DropReason::TcpDnsSplit));
}
