//! Distinct-client counting without storing addresses.
//!
//! Each client address is hashed with SipHash-1-3 under a key derived from the
//! operator key, so neither the in-memory state nor the file lets anyone
//! without the key test whether an address was seen. Per period and per
//! entity a [`ClientCounter`] keeps
//! - a HyperLogLog sketch with 2^12 one-byte registers (standard error about
//!   1.6 %, linear counting below 2.5 * 4096), which is written to the file
//!   so that merged filters can union their client sets;
//! - while it is small (up to [`EXACT_CAP`] clients), the exact set of client
//!   hashes, in memory only, so the k-anonymity floor of a freshly built
//!   filter is decided on an exact count. Only the count is written.
//!
//! A merged filter's count is the larger of the union sketch's estimate and
//! the largest input count: the union has at least as many clients as any
//! part, so this never undercounts for a reason other than sketch error.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::entities::IntHasher;

/// HyperLogLog precision (register index bits).
pub(crate) const HLL_P: u8 = 12;
/// Number of registers.
pub(crate) const HLL_M: usize = 1 << HLL_P;
/// Largest valid register value.
pub(crate) const HLL_MAX_RANK: u8 = 64 - HLL_P + 1;
/// Clients counted exactly before falling back to the sketch.
pub(crate) const EXACT_CAP: usize = 4096;

/// One distinct-client counter.
#[derive(Debug, Clone)]
pub(crate) struct ClientCounter {
    pub regs: Vec<u8>,
    exact: Option<HashSet<u64, BuildHasherDefault<IntHasher>>>,
}

impl ClientCounter {
    pub fn new() -> Self {
        ClientCounter {
            regs: vec![0; HLL_M],
            exact: Some(HashSet::default()),
        }
    }

    /// Count a client by its keyed 64-bit hash.
    #[inline]
    pub fn add(&mut self, h: u64) {
        let idx = (h >> (64 - HLL_P)) as usize;
        let rest = h << HLL_P;
        let rank = (rest.leading_zeros() + 1).min(u32::from(HLL_MAX_RANK)) as u8;
        if let Some(r) = self.regs.get_mut(idx) {
            if *r < rank {
                *r = rank;
            }
        }
        if let Some(set) = &mut self.exact {
            set.insert(h);
            if set.len() > EXACT_CAP {
                self.exact = None;
            }
        }
    }

    /// (count, exact?)
    pub fn count(&self) -> (u64, bool) {
        match &self.exact {
            Some(set) => (set.len() as u64, true),
            None => (estimate(&self.regs), false),
        }
    }
}

/// HyperLogLog estimate (with linear counting for small cardinalities).
pub(crate) fn estimate(regs: &[u8]) -> u64 {
    if regs.is_empty() {
        return 0;
    }
    let m = regs.len() as f64;
    let mut sum = 0.0f64;
    let mut zeros = 0usize;
    for &r in regs {
        sum += 2f64.powi(-i32::from(r));
        if r == 0 {
            zeros += 1;
        }
    }
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let raw = alpha * m * m / sum;
    let e = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(i: u64) -> u64 {
        // splitmix64: stands in for the keyed hash.
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn exact_then_sketch() {
        let mut c = ClientCounter::new();
        for i in 0..10 {
            c.add(mix(i));
            c.add(mix(i));
        }
        assert_eq!(c.count(), (10, true));
        assert_eq!(estimate(&c.regs), 10);
        for i in 0..100_000 {
            c.add(mix(i));
        }
        let (n, exact) = c.count();
        assert!(!exact);
        assert!((n as f64 - 100_000.0).abs() < 100_000.0 * 0.05, "{n}");
    }
}
