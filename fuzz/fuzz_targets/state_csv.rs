//! The state-file loader (`--state`) on arbitrary bytes, for enumerate
//! (both numberings) and prefix-map; the input's length picks the method
//! (the CSV reader's set-up dominates a run, so one method per input
//! reaches all three at a third of the cost).
//!
//! Oracles: no panic; a table that loads keeps what it says (every pair's
//! original maps to its replacement), stays one-to-one (no two originals
//! share a replacement) and goes on one-to-one for new addresses.
#![no_main]

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use ipwash::method::{Method, NumberingArg};
use ipwash::state::load_bytes;
use ipwash::wash::{Side, StatefulTech, Technique};
use ipwash_fuzz::{built_washer, key_file, method_args, KEY32};
use libfuzzer_sys::fuzz_target;

fn pairs(t: &Technique) -> Vec<(IpAddr, IpAddr)> {
    match t {
        Technique::Stateful(s) => match s.as_ref() {
            StatefulTech::Enumerate(e) => e.export().pairs,
            StatefulTech::PrefixMap(p) => p.export().pairs,
        },
        Technique::Stateless(_) => unreachable!(),
    }
}

fuzz_target!(|data: &[u8]| {
    let key = key_file("state", KEY32);
    let mut dnsw = method_args(Method::Enumerate, None);
    dnsw.numbering = Some(NumberingArg::Dnswasher);
    let all = [
        method_args(Method::Enumerate, None),
        dnsw,
        method_args(Method::PrefixMap, Some(key)),
    ];
    for args in all.into_iter().skip(data.len() % 3).take(1) {
        let mut w = built_washer(&args);
        if load_bytes(Path::new("fuzz.csv"), data, &mut w.technique, &args).is_err() {
            continue;
        }
        let loaded = pairs(&w.technique);
        let mut seen: HashMap<IpAddr, IpAddr> = HashMap::new();
        for &(a, b) in &loaded {
            if let Some(prev) = seen.insert(b, a) {
                assert_eq!(prev, a, "{prev} and {a} both map to {b}");
            }
        }
        for &(a, b) in &loaded {
            assert_eq!(
                w.wash(a, Side::Unknown),
                b,
                "{a} does not map to its stored {b}"
            );
        }
        // New addresses drawn from the input's bytes.
        for c in data.chunks(16).take(8) {
            let mut x = [0u8; 16];
            x[..c.len()].copy_from_slice(c);
            for a in [IpAddr::from([x[0], x[1], x[2], x[3]]), IpAddr::from(x)] {
                let b = w.wash(a, Side::Unknown);
                assert_eq!(a.is_ipv4(), b.is_ipv4());
                if let Some(prev) = seen.insert(b, a) {
                    assert_eq!(prev, a, "{prev} and {a} both map to {b}");
                }
            }
        }
    }
});
