//! The C-DNS washer (file preamble, block array, every block through the
//! block washer) on arbitrary bytes, under one of three washers (the
//! input's length picks it, and whether names are kept: every pairing is
//! reached, at a third of the cost of washing each input three times).
//!
//! Oracles: no panic; the same output and the same result twice (fresh
//! washers); whatever was written (a complete file, or everything up to the
//! last complete block before an error) is a valid C-DNS file that washes
//! again without error, with the same number of blocks.
#![no_main]

use ipwash::cdns::{wash_cdns, CdnsOptions};
use ipwash_fuzz::washers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = CdnsOptions::new(data.len().is_multiple_of(2));
    let pick = (data.len() / 2) % 3;
    // Three fresh washers of the same kind: two for the first wash, one for
    // the second.
    let (mut w1, mut w2, mut w3) = (
        washers().swap_remove(pick),
        washers().swap_remove(pick),
        washers().swap_remove(pick),
    );
    let (mut o1, mut o2) = (Vec::new(), Vec::new());
    let r1 = wash_cdns(data, &mut o1, &mut w1, &opts);
    let r2 = wash_cdns(data, &mut o2, &mut w2, &opts);
    assert_eq!(o1, o2, "the output is not deterministic");
    assert_eq!(
        r1.as_ref().map(|s| s.blocks).map_err(|e| e.to_string()),
        r2.as_ref().map(|s| s.blocks).map_err(|e| e.to_string())
    );
    if o1.is_empty() {
        return;
    }
    let mut o3 = Vec::new();
    let again = wash_cdns(&o1[..], &mut o3, &mut w3, &opts);
    match (&r1, &again) {
        (_, Err(e)) => panic!(
            "the output does not wash again: {e} (first run: {:?})",
            r1.as_ref().map(|s| s.blocks).map_err(|e| e.to_string())
        ),
        (Ok(a), Ok(b)) => assert_eq!(a.blocks, b.blocks),
        (Err(_), Ok(_)) => {}
    }
});
