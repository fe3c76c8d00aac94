//! The Bloom filter file reader (`ipwash bloom info` / `query`) on
//! arbitrary bytes, and on arbitrary bodies given a valid checksum so the
//! fuzzer gets past the CRC.
//!
//! Oracles: no panic; a file that reads re-encodes to a file that reads
//! and re-encodes to the same bytes (encoding is canonical after one pass).
#![no_main]

use ipwash::bloom::parse_filter_bytes;
use libfuzzer_sys::fuzz_target;

fn check(b: &[u8]) {
    if let Ok(once) = parse_filter_bytes(b) {
        let twice = parse_filter_bytes(&once).expect("a re-encoded filter reads");
        assert_eq!(once, twice, "re-encoding is not stable");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes with their CRC-32 recomputed over all but the last four.
    if data.len() >= 4 {
        let body = &data[..data.len() - 4];
        let mut crc = flate2::Crc::new();
        crc.update(body);
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(&crc.sum().to_be_bytes());
        check(&fixed);
    }
});
