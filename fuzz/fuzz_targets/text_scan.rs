//! The `ipwash text` scanner on arbitrary bytes.
//!
//! Oracles: no panic; the 64-byte block scanner finds exactly what the
//! byte-at-a-time reference scanner finds; spans are in order, inside the
//! input and apart; every address found (but `::`) is written back as text the
//! scanner reads as that same address; the IPv6 parser agrees with `std`
//! on every colon run of the input.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use ipwash::text::scanner::{parse_v6, scan_into, scan_into_scalar, write_addr, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    scan_into(data, &mut fast);
    scan_into_scalar(data, &mut slow);
    assert_eq!(fast, slow);
    let mut last = 0;
    for f in &fast {
        assert!(last <= f.span.start && f.span.start < f.span.end && f.span.end <= data.len());
        last = f.span.end;
        // `::` alone is never taken for an address (the scanner's rule for
        // runs of colons), and an IPv4-mapped address is written with its
        // dotted tail, which reads back as the IPv4 address.
        if let Kind::Addr { addr, upper } = f.kind {
            if addr.is_unspecified() && addr.is_ipv6() {
                continue;
            }
            let mut text = Vec::new();
            write_addr(&mut text, addr, upper);
            let mut again = Vec::new();
            scan_into(&text, &mut again);
            let back: Vec<IpAddr> = again
                .iter()
                .filter_map(|g| match g.kind {
                    Kind::Addr { addr, .. } => Some(addr.to_canonical()),
                    _ => None,
                })
                .collect();
            assert_eq!(back, [addr.to_canonical()], "{:?}", String::from_utf8_lossy(&text));
        }
    }
    for run in data.split(|c| !(c.is_ascii_hexdigit() || *c == b':' || *c == b'.')) {
        if run.contains(&b':') {
            let std = std::str::from_utf8(run)
                .ok()
                .and_then(|s| s.parse::<Ipv6Addr>().ok());
            assert_eq!(parse_v6(run), std, "{:?}", String::from_utf8_lossy(run));
        }
    }
});
