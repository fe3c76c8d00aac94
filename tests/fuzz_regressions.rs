//! Inputs found by the fuzz targets in `fuzz/`, kept as regression tests
//! (each names its target and what went wrong).

use ipwash::packet::{locate, patch, Located};

/// Ethernet + IPv4 + TCP from 192.0.2.1 to 198.51.100.7, with the given
/// IPv4 header and TCP checksum fields (not computed: the walker does not
/// check them, and a stored 0xffff is what the finding needs).
fn tcp_packet(ip_ck: u16, tcp_ck: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    p.extend_from_slice(&[0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6]);
    p.extend_from_slice(&ip_ck.to_be_bytes());
    p.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
    p.extend_from_slice(&[
        0xc0, 0x01, 0, 53, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff,
    ]);
    p.extend_from_slice(&tcp_ck.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// fuzz target `locate`: writing an address back unchanged turned a stored
/// TCP checksum of 0xffff into 0x0000 (RFC 1624 eqn. 3 with a change of
/// zero maps one zero of one's complement onto the other), so a packet whose
/// address maps to itself (a truncated address already truncated, a
/// keep-list) came out different from its input.
#[test]
fn unchanged_address_leaves_checksums_byte_identical() {
    for (ip_ck, tcp_ck) in [(0xffff, 0xffff), (0x1234, 0xffff), (0xffff, 0x0000), (0, 0)] {
        let pkt = tcp_packet(ip_ck, tcp_ck);
        let mut loc = Located::new();
        locate(1, &pkt, &mut loc).expect("a plain TCP packet");
        assert_eq!(loc.slots.len(), 2);
        assert!(!loc.checksums.is_empty());
        let mut p = pkt.clone();
        for (i, s) in loc.slots.iter().enumerate() {
            let old = pkt[s.range()].to_vec();
            patch(&mut p, &loc, i, &old);
        }
        assert_eq!(p, pkt, "checksums {ip_ck:#06x}/{tcp_ck:#06x}");

        // A new address with the same one's complement sum (its two 16-bit
        // words swapped) needs no checksum change either.
        let mut q = pkt.clone();
        patch(&mut q, &loc, 0, &[2, 1, 192, 0]);
        assert_eq!(&q[26..30], &[2, 1, 192, 0]);
        assert_eq!(&q[24..26], &pkt[24..26], "IPv4 header checksum");
        assert_eq!(&q[50..52], &pkt[50..52], "TCP checksum");
    }
}

/// The same packet with a real change still gets its checksums updated.
#[test]
fn changed_address_still_updates_checksums() {
    let pkt = tcp_packet(0x1234, 0x4321);
    let mut loc = Located::new();
    locate(1, &pkt, &mut loc).expect("a plain TCP packet");
    let mut p = pkt.clone();
    patch(&mut p, &loc, 0, &[192, 0, 2, 2]);
    // One more in the low byte: each checksum one less (RFC 1624).
    assert_eq!(u16::from_be_bytes([p[24], p[25]]), 0x1233);
    assert_eq!(u16::from_be_bytes([p[50], p[51]]), 0x4320);
}
