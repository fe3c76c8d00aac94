//! The general packet walker (`locate_general`) on arbitrary packets of
//! every supported link type (first byte: link type index).
//!
//! Oracles: no panic; the same result twice; on error nothing is left
//! behind; every slot, checksum field, DNS range and fragment range lies
//! inside the packet and every index points at an existing entry; patching
//! every slot (with its own bytes, then with other bytes) never panics, and
//! patching a slot with the bytes it already holds changes nothing.
#![no_main]

use ipwash::packet::{locate_general, patch, Located};
use ipwash_fuzz::linktype_and_packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((lt, pkt)) = linktype_and_packet(data) else {
        return;
    };
    let (mut a, mut b) = (Located::new(), Located::new());
    let ra = locate_general(lt, pkt, &mut a);
    let rb = locate_general(lt, pkt, &mut b);
    assert_eq!(ra, rb);
    assert_eq!(a, b);
    if ra.is_err() {
        assert_eq!(a, Located::new(), "an error leaves nothing behind");
        return;
    }
    let n = pkt.len();
    for s in &a.slots {
        assert!(
            s.range().end <= n,
            "slot {s:?} outside the packet of {n} bytes"
        );
        assert!(s.len as usize <= s.family.bytes());
        assert!(u32::from(s.prefix_bits) <= 8 * u32::from(s.len), "{s:?}");
        for c in s.checksums() {
            assert!(c < a.checksums.len());
        }
    }
    for c in &a.checksums {
        assert!(
            c.field + 2 <= n,
            "checksum field {} outside {n} bytes",
            c.field
        );
        for p in c.parents() {
            assert!(p < a.checksums.len());
        }
    }
    for r in &a.dns {
        assert!(r.start <= r.end && r.end <= n);
    }
    if let Some(c) = a.client {
        assert!(c < a.slots.len());
    }
    if let Some(f) = &a.frag {
        assert!(f.data.start <= f.data.end && f.data.end <= n);
        if let Some(u) = f.udp_checksum {
            assert!(u + 2 <= n);
        }
    }

    // Writing back what is there is a no-op, checksums included.
    let mut p = pkt.to_vec();
    for (i, s) in a.slots.iter().enumerate() {
        let old = pkt[s.range()].to_vec();
        patch(&mut p, &a, i, &old);
    }
    assert_eq!(
        p, pkt,
        "patching slots with their own bytes changed the packet"
    );
    // Other bytes: no panic, the length stays.
    for (i, s) in a.slots.iter().enumerate() {
        let new: Vec<u8> = pkt[s.range()].iter().map(|b| b ^ 0x5a).collect();
        patch(&mut p, &a, i, &new);
    }
    assert_eq!(p.len(), pkt.len());
});
