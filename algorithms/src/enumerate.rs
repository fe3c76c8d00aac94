//! Enumeration (RFC 8932 B.2.2): replace each distinct address by a counter,
//! in order of first appearance, as PowerDNS dnswasher does.
//!
//! - **Preserves:** nothing but equality (the same input always gets the
//!   same number within one state) and the order of first appearance. It is
//!   one-to-one, but not prefix-preserving.
//! - **Reversible:** only with the table, which [`Enumerate::export`] gives
//!   out. The table *is* the secret: keep a saved state as safe as a key.
//! - **Stateful:** the output depends on the order addresses are seen, so it
//!   runs on one thread in input order. [`Enumerate::export`] and
//!   [`Enumerate::import`] carry the state across files and runs (the caller
//!   writes it as CSV).
//!
//! Two numberings exist ([`Numbering`]):
//!
//! - `Sequential` (default): one counter per family, each starting at 1.
//!   IPv4 goes 0.0.0.1, 0.0.0.2, ... in network byte order; IPv6 goes ::1,
//!   ::2, ...
//! - `Dnswasher`: PowerDNS dnswasher 4.7.3 exactly. One counter shared by
//!   both families, starting at 0. IPv4 holds the counter in little-endian
//!   byte order (0.0.0.0, 1.0.0.0, ..., 255.0.0.0, 0.1.0.0, ...); IPv6 is
//!   `::` with the counter big-endian in its last bytes, so after three IPv4
//!   clients the first IPv6 client becomes `::3`.
//!
//! ## When the counters run out
//!
//! The map never panics and never gives two inputs the same output.
//!
//! - `Sequential` IPv4 uses 0.0.0.1 ..= 255.255.255.255 for the first
//!   2^32 - 1 addresses and 0.0.0.0 for the last possible one, so all 2^32
//!   IPv4 addresses fit. IPv6 counts in 128 bits and cannot run out.
//! - `Dnswasher` IPv6 keeps counting past 2^32 (`::1:0:0`, ...), where
//!   dnswasher's 32-bit counter would wrap and repeat; counting on is the
//!   injective continuation. Its IPv4 side can only hold 2^32 values
//!   and part of them were skipped while the counter numbered IPv6 clients;
//!   once the shared counter passes 2^32, each new IPv4 address takes the
//!   first still-unused IPv4 output instead, searching in dnswasher's order
//!   (0.0.0.0, 1.0.0.0, ...). A free one always exists because fewer than
//!   2^32 IPv4 addresses have been seen. Both cases need tables of tens of
//!   gigabytes, so they matter only for correctness, not in practice.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use ipwash_algorithms::StatefulMap;
//! use ipwash_algorithms::enumerate::{Enumerate, Numbering};
//!
//! let mut e = Enumerate::new(Numbering::Dnswasher);
//! assert_eq!(e.map_v4(Ipv4Addr::new(192, 0, 2, 1)), Ipv4Addr::new(0, 0, 0, 0));
//! assert_eq!(e.map_v4(Ipv4Addr::new(192, 0, 2, 9)), Ipv4Addr::new(1, 0, 0, 0));
//! assert_eq!(e.map_v4(Ipv4Addr::new(192, 0, 2, 1)), Ipv4Addr::new(0, 0, 0, 0));
//! ```

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::StatefulMap;

/// How replacements are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Numbering {
    /// One counter per family, both starting at 1, in network byte order.
    #[default]
    Sequential,
    /// PowerDNS dnswasher: one shared counter from 0, IPv4 little-endian.
    Dnswasher,
}

/// A saved enumeration state: the counters and every pair, in order of
/// first appearance.
///
/// For `Sequential`, the IPv4 pairs come first, then the IPv6 pairs (each
/// family in first-appearance order; the two families are numbered
/// independently, so their interleaving does not matter). For `Dnswasher`,
/// the pairs are in exact global first-appearance order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumState {
    /// The numbering in use.
    pub numbering: Numbering,
    /// `Sequential`: the next IPv4 number (1 + IPv4 pairs).
    /// `Dnswasher`: the shared counter (number of pairs).
    pub next_v4: u128,
    /// `Sequential`: the next IPv6 number (1 + IPv6 pairs).
    /// `Dnswasher`: equal to `next_v4`.
    pub next_v6: u128,
    /// `(original, replacement)` pairs.
    pub pairs: Vec<(IpAddr, IpAddr)>,
}

/// Errors importing an [`EnumState`]. `index` is the pair's position in
/// [`EnumState::pairs`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Original and replacement are of different families.
    #[error(
        "pair {index}: original {original} and replacement {replacement} are of different families"
    )]
    FamilyMismatch {
        /// Pair position.
        index: usize,
        /// The original address.
        original: IpAddr,
        /// The replacement address.
        replacement: IpAddr,
    },
    /// The same original address appears twice.
    #[error("pair {index}: original {original} appears more than once")]
    DuplicateOriginal {
        /// Pair position.
        index: usize,
        /// The original address.
        original: IpAddr,
    },
    /// The replacement is not the one the numbering gives at this position.
    #[error("pair {index}: replacement for {original} is {found}, but the numbering gives {expected} here")]
    WrongReplacement {
        /// Pair position.
        index: usize,
        /// The original address.
        original: IpAddr,
        /// The replacement in the state.
        found: IpAddr,
        /// The replacement the numbering gives.
        expected: IpAddr,
    },
    /// A counter disagrees with the pairs.
    #[error("counter {family} is {found}, but the pairs imply {expected}")]
    Counter {
        /// `"v4"` or `"v6"`.
        family: &'static str,
        /// The counter in the state.
        found: u128,
        /// The counter implied by the pairs.
        expected: u128,
    },
}

/// The enumeration map. See the module docs.
#[derive(Debug, Clone)]
pub struct Enumerate {
    numbering: Numbering,
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u128>,
    /// `Sequential`: next IPv4 number. `Dnswasher`: the shared counter.
    next_v4: u128,
    /// `Sequential`: next IPv6 number. `Dnswasher`: unused (equal to `next_v4`).
    next_v6: u128,
    /// `Dnswasher` only, once the shared counter passed 2^32: the IPv4
    /// outputs in use, and where the search for a free one continues.
    spill: Option<Spill>,
}

#[derive(Debug, Clone)]
struct Spill {
    used: HashSet<u32>,
    cursor: u64,
    /// The counter value each spilled output was given at, for export order.
    counter_of: HashMap<u32, u128>,
}

/// The dnswasher counter value behind an IPv4 output (little-endian).
fn dnswasher_counter(o: u32) -> u128 {
    u128::from(u32::from_le_bytes(o.to_be_bytes()))
}

const V4_SPACE: u128 = 1 << 32;

impl Enumerate {
    /// An empty map with the given numbering.
    pub fn new(numbering: Numbering) -> Self {
        let start = match numbering {
            Numbering::Sequential => 1,
            Numbering::Dnswasher => 0,
        };
        Enumerate {
            numbering,
            v4: HashMap::new(),
            v6: HashMap::new(),
            next_v4: start,
            next_v6: start,
            spill: None,
        }
    }

    /// The numbering in use.
    pub fn numbering(&self) -> Numbering {
        self.numbering
    }

    /// Look an address up without recording it.
    pub fn get(&self, a: IpAddr) -> Option<IpAddr> {
        match a {
            IpAddr::V4(v) => self
                .v4
                .get(&u32::from(v))
                .map(|&o| IpAddr::V4(Ipv4Addr::from(o))),
            IpAddr::V6(v) => self
                .v6
                .get(&u128::from(v))
                .map(|&o| IpAddr::V6(Ipv6Addr::from(o))),
        }
    }

    /// The state: counters and pairs (see [`EnumState`] for the order).
    pub fn export(&self) -> EnumState {
        // First-appearance order is recovered from the outputs: within a
        // family, outputs follow the counter. The sort key is (family group,
        // counter value).
        let mut pairs: Vec<((u8, u128), IpAddr, IpAddr)> =
            Vec::with_capacity(self.v4.len() + self.v6.len());
        for (&i, &o) in &self.v4 {
            let key = match self.numbering {
                // 0.0.0.0 is the last slot, after 255.255.255.255.
                Numbering::Sequential if o == 0 => (0, V4_SPACE),
                Numbering::Sequential => (0, u128::from(o)),
                Numbering::Dnswasher => {
                    let spilled = self.spill.as_ref().and_then(|s| s.counter_of.get(&o));
                    (0, spilled.copied().unwrap_or_else(|| dnswasher_counter(o)))
                }
            };
            pairs.push((key, IpAddr::V4(i.into()), IpAddr::V4(o.into())));
        }
        let v6_group = match self.numbering {
            Numbering::Sequential => 1,
            Numbering::Dnswasher => 0,
        };
        for (&i, &o) in &self.v6 {
            pairs.push(((v6_group, o), IpAddr::V6(i.into()), IpAddr::V6(o.into())));
        }
        pairs.sort_unstable_by_key(|p| p.0);
        EnumState {
            numbering: self.numbering,
            next_v4: self.next_v4,
            next_v6: self.next_v6,
            pairs: pairs.into_iter().map(|(_, i, o)| (i, o)).collect(),
        }
    }

    /// Rebuild a map from a saved state, checking it: families match, no
    /// original repeats, every replacement is what the numbering gives at
    /// that position, and the counters agree. Numbering then continues
    /// exactly where the saved run stopped.
    pub fn import(state: EnumState) -> Result<Self, StateError> {
        let mut e = Enumerate::new(state.numbering);
        let (n4, n6) = state.pairs.iter().fold((0, 0), |(a, b), p| match p.0 {
            IpAddr::V4(_) => (a + 1, b),
            IpAddr::V6(_) => (a, b + 1),
        });
        e.v4.reserve(n4);
        e.v6.reserve(n6);
        for (index, &(original, replacement)) in state.pairs.iter().enumerate() {
            if original.is_ipv4() != replacement.is_ipv4() {
                return Err(StateError::FamilyMismatch {
                    index,
                    original,
                    replacement,
                });
            }
            if e.get(original).is_some() {
                return Err(StateError::DuplicateOriginal { index, original });
            }
            let expected = match original {
                IpAddr::V4(v) => IpAddr::V4(StatefulMap::map_v4(&mut e, v)),
                IpAddr::V6(v) => IpAddr::V6(StatefulMap::map_v6(&mut e, v)),
            };
            if expected != replacement {
                return Err(StateError::WrongReplacement {
                    index,
                    original,
                    found: replacement,
                    expected,
                });
            }
        }
        if state.next_v4 != e.next_v4 {
            return Err(StateError::Counter {
                family: "v4",
                found: state.next_v4,
                expected: e.next_v4,
            });
        }
        if state.next_v6 != e.next_v6 {
            return Err(StateError::Counter {
                family: "v6",
                found: state.next_v6,
                expected: e.next_v6,
            });
        }
        Ok(e)
    }

    fn next_dnswasher_v4(&mut self) -> u32 {
        let c = self.next_v4;
        self.next_v4 = self.next_v4.wrapping_add(1);
        self.next_v6 = self.next_v4;
        if c < V4_SPACE {
            // dnswasher stores the host-order counter without htonl.
            return u32::from_be_bytes((c as u32).to_le_bytes());
        }
        let spill = self.spill.get_or_insert_with(|| Spill {
            used: self.v4.values().copied().collect(),
            cursor: 0,
            counter_of: HashMap::new(),
        });
        while spill.cursor < 1 << 32 {
            let o = u32::from_be_bytes((spill.cursor as u32).to_le_bytes());
            spill.cursor += 1;
            if spill.used.insert(o) {
                spill.counter_of.insert(o, c);
                return o;
            }
        }
        // Unreachable: a new IPv4 address means fewer than 2^32 are used.
        0
    }
}

impl Default for Enumerate {
    fn default() -> Self {
        Enumerate::new(Numbering::Sequential)
    }
}

impl StatefulMap for Enumerate {
    fn map_v4(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let k = u32::from(a);
        if let Some(&o) = self.v4.get(&k) {
            return Ipv4Addr::from(o);
        }
        let o = match self.numbering {
            Numbering::Sequential => {
                // 1..=2^32-1, then 2^32 truncates to 0.0.0.0 for the last one.
                let o = self.next_v4 as u32;
                self.next_v4 = self.next_v4.wrapping_add(1);
                o
            }
            Numbering::Dnswasher => self.next_dnswasher_v4(),
        };
        self.v4.insert(k, o);
        Ipv4Addr::from(o)
    }

    fn map_v6(&mut self, a: Ipv6Addr) -> Ipv6Addr {
        let k = u128::from(a);
        if let Some(&o) = self.v6.get(&k) {
            return Ipv6Addr::from(o);
        }
        let o = match self.numbering {
            Numbering::Sequential => {
                let o = self.next_v6;
                self.next_v6 = self.next_v6.wrapping_add(1);
                o
            }
            Numbering::Dnswasher => {
                let o = self.next_v4;
                self.next_v4 = self.next_v4.wrapping_add(1);
                self.next_v6 = self.next_v4;
                o
            }
        };
        self.v6.insert(k, o);
        Ipv6Addr::from(o)
    }

    fn prefix_preserving(&self) -> bool {
        false
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn memory_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the entry.
        let spill = self.spill.as_ref().map_or(0, |s| {
            s.used.capacity() * (4 + 1) + s.counter_of.capacity() * (32 + 1)
        });
        std::mem::size_of::<Self>()
            + self.v4.capacity() * (8 + 1)
            + self.v6.capacity() * (32 + 1)
            + spill
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn sequential_counts_per_family_from_one() {
        let mut e = Enumerate::default();
        assert_eq!(e.numbering(), Numbering::Sequential);
        assert!(e.is_empty());
        assert_eq!(e.map_v4(v4("192.0.2.1")), v4("0.0.0.1"));
        assert_eq!(e.map_v6(v6("2001:db8::1")), v6("::1"));
        assert_eq!(e.map_v4(v4("192.0.2.2")), v4("0.0.0.2"));
        assert_eq!(e.map_v4(v4("192.0.2.1")), v4("0.0.0.1"));
        assert_eq!(e.map_v6(v6("2001:db8::2")), v6("::2"));
        for i in 3..=300u32 {
            assert_eq!(e.map_v4(Ipv4Addr::from(0x0a00_0000 + i)), Ipv4Addr::from(i));
        }
        assert_eq!(e.map_v4(Ipv4Addr::from(0x0a00_0000 + 256)), v4("0.0.1.0"));
        assert_eq!(e.len(), 302);
        assert!(!e.prefix_preserving());
        assert!(e.memory_bytes() > 300 * 9);
    }

    #[test]
    fn dnswasher_shares_one_little_endian_counter() {
        let mut e = Enumerate::new(Numbering::Dnswasher);
        assert_eq!(e.map_v4(v4("10.0.0.1")), v4("0.0.0.0"));
        assert_eq!(e.map_v4(v4("10.0.0.2")), v4("1.0.0.0"));
        assert_eq!(e.map_v4(v4("10.0.0.3")), v4("2.0.0.0"));
        assert_eq!(e.map_v6(v6("2001:db8::1")), v6("::3"));
        assert_eq!(e.map_v4(v4("10.0.0.4")), v4("4.0.0.0"));
        assert_eq!(e.map_v4(v4("10.0.0.1")), v4("0.0.0.0"));
        for i in 5..=255u32 {
            e.map_v4(Ipv4Addr::from(0x0b00_0000 + i));
        }
        assert_eq!(e.map_v4(v4("12.0.0.0")), v4("0.1.0.0"));
        assert_eq!(e.map_v6(v6("2001:db8::2")), v6("::101"));
    }

    #[test]
    fn export_import_continues_numbering() {
        for numbering in [Numbering::Sequential, Numbering::Dnswasher] {
            let mut whole = Enumerate::new(numbering);
            let mut first = Enumerate::new(numbering);
            let inputs: Vec<IpAddr> = (0..40u32)
                .map(|i| {
                    if i % 3 == 0 {
                        IpAddr::V6(Ipv6Addr::from(0x2001_0db8u128 << 96 | u128::from(i % 17)))
                    } else {
                        IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i % 23))
                    }
                })
                .collect();
            let map = |e: &mut Enumerate, a: IpAddr| match a {
                IpAddr::V4(v) => IpAddr::V4(e.map_v4(v)),
                IpAddr::V6(v) => IpAddr::V6(e.map_v6(v)),
            };
            let expect: Vec<IpAddr> = inputs.iter().map(|&a| map(&mut whole, a)).collect();
            for &a in &inputs[..20] {
                map(&mut first, a);
            }
            let state = first.export();
            let mut second = Enumerate::import(state.clone()).unwrap();
            assert_eq!(second.export(), state);
            let got: Vec<IpAddr> = inputs.iter().map(|&a| map(&mut second, a)).collect();
            assert_eq!(got, expect, "{numbering:?}");
            assert_eq!(second.export(), whole.export());
        }
    }

    #[test]
    fn import_rejects_bad_states() {
        let mut e = Enumerate::new(Numbering::Dnswasher);
        e.map_v4(v4("10.0.0.1"));
        e.map_v6(v6("2001:db8::1"));
        e.map_v4(v4("10.0.0.2"));
        let good = e.export();
        assert_eq!(good.next_v4, 3);

        let mut s = good.clone();
        s.pairs[1].1 = IpAddr::V4(v4("1.0.0.0"));
        assert!(matches!(
            Enumerate::import(s),
            Err(StateError::FamilyMismatch { index: 1, .. })
        ));

        let mut s = good.clone();
        s.pairs[2].0 = s.pairs[0].0;
        assert!(matches!(
            Enumerate::import(s),
            Err(StateError::DuplicateOriginal { index: 2, .. })
        ));

        let mut s = good.clone();
        s.pairs.swap(0, 2);
        assert!(matches!(
            Enumerate::import(s),
            Err(StateError::WrongReplacement { index: 0, .. })
        ));

        let mut s = good.clone();
        s.next_v4 = 7;
        assert!(matches!(
            Enumerate::import(s),
            Err(StateError::Counter { family: "v4", .. })
        ));
        let mut s = good;
        s.numbering = Numbering::Sequential;
        assert!(Enumerate::import(s).is_err());
    }

    #[test]
    fn sequential_v4_last_slot_is_zero() {
        let mut e = Enumerate::new(Numbering::Sequential);
        e.map_v4(v4("10.0.0.1"));
        // Pretend 2^32 - 1 addresses were seen.
        e.next_v4 = V4_SPACE;
        assert_eq!(e.map_v4(v4("10.0.0.2")), v4("0.0.0.0"));
    }

    #[test]
    fn dnswasher_spill_stays_injective() {
        let mut e = Enumerate::new(Numbering::Dnswasher);
        assert_eq!(e.map_v4(v4("10.0.0.1")), v4("0.0.0.0"));
        assert_eq!(e.map_v6(v6("2001:db8::1")), v6("::1"));
        // Pretend the shared counter ran past 2^32: counter value 1 was
        // given to IPv6, so IPv4 output 1.0.0.0 is still free.
        e.next_v4 = V4_SPACE;
        e.next_v6 = V4_SPACE;
        assert_eq!(e.map_v4(v4("10.0.0.2")), v4("1.0.0.0"));
        assert_eq!(e.map_v4(v4("10.0.0.3")), v4("2.0.0.0"));
        assert_eq!(e.map_v6(v6("2001:db8::2")), v6("::1:0:2"));
        assert_eq!(e.map_v4(v4("10.0.0.2")), v4("1.0.0.0"));
        let s = e.export();
        let outs: Vec<IpAddr> = s.pairs.iter().map(|p| p.1).collect();
        assert_eq!(
            outs,
            [
                IpAddr::V4(v4("0.0.0.0")),
                IpAddr::V6(v6("::1")),
                IpAddr::V4(v4("1.0.0.0")),
                IpAddr::V4(v4("2.0.0.0")),
                IpAddr::V6(v6("::1:0:2")),
            ]
        );
    }
}
