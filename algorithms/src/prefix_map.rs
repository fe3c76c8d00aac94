//! Prefix-preserving map by table (RFC 8932 B.2.3), the TCPdpriv `-A50`
//! algorithm, for IPv4 and IPv6.
//!
//! - **Preserves:** common-prefix lengths: `cpl(F(x), F(y)) == cpl(x, y)`
//!   for every pair of addresses of one family. One-to-one.
//! - **Reversible:** only with the table ([`PrefixMap::export`]), which must
//!   be kept as safe as a key.
//! - **Stateful:** outputs depend on the key *and* on the order in which
//!   addresses are first seen, so the map runs on one thread in input order.
//!   Memory grows with the number of distinct addresses
//!   ([`StatefulMap::memory_bytes`]).
//!
//! ## Algorithm
//!
//! To map a new `n`-bit address `a` (n = 32 or 128):
//!
//! 1. find the stored input `b` sharing the longest prefix with `a`; say they
//!    first differ at bit `s` (bit 1 is the most significant);
//! 2. the output copies bits `1..s-1` of `b`'s output,
//! 3. complements bit `s` of `b`'s output,
//! 4. and takes bits `s+1..n` from the random stream.
//!
//! In an empty table every bit is random. The stored input with the longest
//! common prefix is always one of `a`'s two neighbours in sorted order, so
//! the table is a sorted map per family and a lookup is `O(log N)`.
//!
//! Randomness is ChaCha20 keyed by the 32-byte key, with one stream per
//! family (stream ids [`STREAM_V4`] and [`STREAM_V6`]), so IPv4 and IPv6 do
//! not interact. Each new address consumes a fixed number of words (one for
//! IPv4, four for IPv6), whatever `s` is. The output is therefore a pure
//! function of the key and the order of first appearance. Unlike TCPdpriv we
//! do not seed from the clock and do not force bit `s+1` to 0.
//!
//! With `preserve_class` (TCPdpriv `-C`), the classful leading bits of an
//! IPv4 address are kept as they are: up to and including the first 0 bit,
//! at most 4 bits (class A `0`, B `10`, C `110`, D `1110`, E `1111`). Class
//! prefixes form a prefix code, so the map stays prefix-preserving. IPv6 is
//! unaffected.
//!
//! ## State
//!
//! [`PrefixMap::export`] returns the pairs in first-appearance order plus the
//! two ChaCha word positions; [`PrefixMap::import`] checks that the pairs are
//! one-to-one and prefix-consistent and restores the stream positions, so a
//! loaded map continues exactly as if it had never stopped.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use ipwash_algorithms::{cpl, Key, StatefulMap};
//! use ipwash_algorithms::prefix_map::PrefixMap;
//!
//! let mut m = PrefixMap::new(&Key::new([7; 32]), false);
//! let a = m.map_v4(Ipv4Addr::new(192, 0, 2, 1));
//! let b = m.map_v4(Ipv4Addr::new(192, 0, 2, 200));
//! assert_eq!(cpl(u32::from(a).into(), u32::from(b).into(), 32), 24);
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::{cpl, Key, StatefulMap};

/// ChaCha20 stream id of the IPv4 table ("pfxmap4" in ASCII).
pub const STREAM_V4: u64 = 0x0070_6678_6d61_7034;
/// ChaCha20 stream id of the IPv6 table ("pfxmap6" in ASCII).
pub const STREAM_V6: u64 = 0x0070_6678_6d61_7036;

/// A saved prefix-map state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixState {
    /// Whether classful IPv4 bits are kept.
    pub preserve_class: bool,
    /// ChaCha20 word position of the IPv4 stream.
    pub word_pos_v4: u128,
    /// ChaCha20 word position of the IPv6 stream.
    pub word_pos_v6: u128,
    /// `(original, replacement)` pairs, in first-appearance order.
    pub pairs: Vec<(IpAddr, IpAddr)>,
    /// Top IPv4 bits passed unchanged (0 when none).
    pub pass4: u8,
    /// Top IPv6 bits passed unchanged (0 when none).
    pub pass6: u8,
}

/// Errors importing a [`PrefixState`]. `index` is the pair's position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state was saved with another `preserve_class` setting.
    #[error("state has preserve_class={found}, but the map was built with {expected}")]
    PreserveClass {
        /// The setting in the state.
        found: bool,
        /// The setting of the map being loaded.
        expected: bool,
    },
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
    /// The pair breaks prefix preservation with an earlier pair.
    #[error("pair {index}: {original} -> {replacement} is not prefix-consistent with {other_original} -> {other_replacement}")]
    Inconsistent {
        /// Pair position.
        index: usize,
        /// The original address.
        original: IpAddr,
        /// Its replacement.
        replacement: IpAddr,
        /// The earlier original it conflicts with.
        other_original: IpAddr,
        /// That original's replacement.
        other_replacement: IpAddr,
    },
    /// With `preserve_class`, the replacement changes the IPv4 class bits.
    #[error("pair {index}: {original} -> {replacement} changes the address class")]
    ClassChanged {
        /// Pair position.
        index: usize,
        /// The original address.
        original: IpAddr,
        /// Its replacement.
        replacement: IpAddr,
    },
    /// A pair that changes one of the top pass bits, or a state saved with
    /// other pass bits.
    #[error(
        "pair {index}: {original} -> {replacement} changes a passed bit, or the pass bits differ"
    )]
    PassChanged {
        /// Pair position (0 when the state's own pass bits differ).
        index: usize,
        /// The original address.
        original: IpAddr,
        /// Its replacement.
        replacement: IpAddr,
    },
    /// A word position beyond ChaCha20's 68-bit counter.
    #[error("ChaCha word position {0} is out of range")]
    WordPos(u128),
}

/// An address family's word type.
trait Word: Copy + Ord + std::fmt::Debug {
    const BITS: u32;
    fn to_u128(self) -> u128;
    fn from_u128(x: u128) -> Self;
}

impl Word for u32 {
    const BITS: u32 = 32;
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    fn from_u128(x: u128) -> Self {
        x as u32
    }
}

impl Word for u128 {
    const BITS: u32 = 128;
    fn to_u128(self) -> u128 {
        self
    }
    fn from_u128(x: u128) -> Self {
        x
    }
}

/// One family's table: input -> (output, first-appearance sequence number).
struct Table<W: Word> {
    map: BTreeMap<W, (W, u64)>,
    rng: ChaCha20Rng,
    seq: u64,
}

/// Result of checking a candidate pair against a table.
enum Fit<W> {
    Ok,
    Conflict(W, W),
}

impl<W: Word> Table<W> {
    fn new(key: &Key<32>, stream: u64) -> Self {
        let mut rng = ChaCha20Rng::from_seed(*key.bytes());
        rng.set_stream(stream);
        Table {
            map: BTreeMap::new(),
            rng,
            seq: 0,
        }
    }

    /// The stored pair sharing the longest prefix with `a` (a neighbour in
    /// sorted order), and that prefix length.
    fn nearest(&self, a: W) -> Option<(W, W, u32)> {
        let below = self.map.range(..a).next_back();
        let above = self.map.range(a..).next();
        let score = |e: Option<(&W, &(W, u64))>| {
            e.map(|(&i, &(o, _))| (i, o, cpl(i.to_u128(), a.to_u128(), W::BITS)))
        };
        match (score(below), score(above)) {
            (Some(x), Some(y)) => Some(if y.2 > x.2 { y } else { x }),
            (x, y) => x.or(y),
        }
    }

    fn random(&mut self) -> u128 {
        if W::BITS == 32 {
            u128::from(self.rng.next_u32())
        } else {
            (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64())
        }
    }

    /// Map `a`, adding it if new. `class` is the number of leading bits
    /// kept as they are.
    fn map(&mut self, a: W, class: impl Fn(W) -> u32) -> W {
        if let Some(&(o, _)) = self.map.get(&a) {
            return o;
        }
        let n = W::BITS;
        let r = self.random();
        let x = a.to_u128();
        let out = match self.nearest(a) {
            None => r,
            Some((_, bo, k)) => {
                // Keep bits 1..=k of b's output, flip bit k+1, random after.
                // k < n because a is not stored.
                let keep = high_mask(k, n);
                let flip = 1u128 << (n - 1 - k);
                let rest = low_mask(n - 1 - k);
                (bo.to_u128() & keep) | ((bo.to_u128() ^ flip) & flip) | (r & rest)
            }
        };
        let c = class(a);
        let cm = high_mask(c, n);
        let out = ((out & !cm) | (x & cm)) & low_mask(n);
        let o = W::from_u128(out);
        self.map.insert(a, (o, self.seq));
        self.seq += 1;
        o
    }

    /// Check that adding `a -> o` keeps the table prefix-consistent.
    fn fits(&self, a: W, o: W) -> Fit<W> {
        match self.nearest(a) {
            None => Fit::Ok,
            Some((bi, bo, k)) => {
                if cpl(bo.to_u128(), o.to_u128(), W::BITS) == k {
                    Fit::Ok
                } else {
                    Fit::Conflict(bi, bo)
                }
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        // BTreeMap leaves hold up to 11 entries; count ~1.5x the payload
        // plus node overhead per entry.
        let entry = 2 * std::mem::size_of::<W>() + 8;
        self.map.len() * (entry * 3 / 2 + 8)
    }
}

/// Mask with the top `k` bits of an `n`-bit word set.
fn high_mask(k: u32, n: u32) -> u128 {
    low_mask(n) & !(low_mask(n).checked_shr(k).unwrap_or(0))
}

/// Mask with the low `k` bits set.
fn low_mask(k: u32) -> u128 {
    if k >= 128 {
        !0
    } else {
        (1u128 << k) - 1
    }
}

/// Classful leading bits of an IPv4 address: up to and including the first
/// zero bit, at most 4.
fn class_bits(a: u32) -> u32 {
    (a.leading_ones() + 1).min(4)
}

/// The TCPdpriv-style prefix-preserving table map. See the module docs.
pub struct PrefixMap {
    preserve_class: bool,
    pass4: u8,
    pass6: u8,
    v4: Table<u32>,
    v6: Table<u128>,
}

impl std::fmt::Debug for PrefixMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ChaCha state holds the key: never print it.
        f.debug_struct("PrefixMap")
            .field("preserve_class", &self.preserve_class)
            .field("v4_len", &self.v4.map.len())
            .field("v6_len", &self.v6.map.len())
            .finish_non_exhaustive()
    }
}

impl PrefixMap {
    /// An empty map keyed by `key`. `preserve_class` keeps classful IPv4
    /// leading bits (TCPdpriv `-C`).
    pub fn new(key: &Key<32>, preserve_class: bool) -> Self {
        Self::with_pass(key, preserve_class, 0, 0)
    }

    /// An empty map that also passes the top `pass4` IPv4 bits (at most 32)
    /// and the top `pass6` IPv6 bits (at most 128) unchanged; below them
    /// the table works as usual (see [`crate::pass`]).
    pub fn with_pass(key: &Key<32>, preserve_class: bool, pass4: u8, pass6: u8) -> Self {
        PrefixMap {
            preserve_class,
            pass4: pass4.min(32),
            pass6: pass6.min(128),
            v4: Table::new(key, STREAM_V4),
            v6: Table::new(key, STREAM_V6),
        }
    }

    /// Whether classful IPv4 bits are kept.
    pub fn preserve_class(&self) -> bool {
        self.preserve_class
    }

    /// The IPv4 and IPv6 pass bits.
    pub fn pass_bits(&self) -> (u8, u8) {
        (self.pass4, self.pass6)
    }

    fn class_v4(&self) -> impl Fn(u32) -> u32 {
        let on = self.preserve_class;
        let pass = u32::from(self.pass4);
        move |a| pass.max(if on { class_bits(a) } else { 0 })
    }

    /// Look an address up without recording it.
    pub fn get(&self, a: IpAddr) -> Option<IpAddr> {
        match a {
            IpAddr::V4(v) => self
                .v4
                .map
                .get(&u32::from(v))
                .map(|&(o, _)| IpAddr::V4(o.into())),
            IpAddr::V6(v) => self
                .v6
                .map
                .get(&u128::from(v))
                .map(|&(o, _)| IpAddr::V6(o.into())),
        }
    }

    /// The state: pairs in first-appearance order (IPv4 first, then IPv6;
    /// the families are independent) and both stream positions.
    pub fn export(&self) -> PrefixState {
        let mut v4: Vec<_> = self.v4.map.iter().map(|(&i, &(o, s))| (s, i, o)).collect();
        v4.sort_unstable_by_key(|p| p.0);
        let mut v6: Vec<_> = self.v6.map.iter().map(|(&i, &(o, s))| (s, i, o)).collect();
        v6.sort_unstable_by_key(|p| p.0);
        let pairs = v4
            .into_iter()
            .map(|(_, i, o)| (IpAddr::V4(i.into()), IpAddr::V4(o.into())))
            .chain(
                v6.into_iter()
                    .map(|(_, i, o)| (IpAddr::V6(i.into()), IpAddr::V6(o.into()))),
            )
            .collect();
        PrefixState {
            preserve_class: self.preserve_class,
            pass4: self.pass4,
            pass6: self.pass6,
            word_pos_v4: self.v4.rng.get_word_pos(),
            word_pos_v6: self.v6.rng.get_word_pos(),
            pairs,
        }
    }

    /// Rebuild a map keyed by `key` from a saved state. Every pair is checked
    /// against the pairs before it: same family, no repeated original, the
    /// common-prefix length with its nearest earlier input is kept (which,
    /// added one at a time, makes the whole table prefix-preserving and
    /// one-to-one), and with `preserve_class` the class bits are unchanged.
    /// The streams resume at the saved word positions.
    ///
    /// The key is not checked against the pairs: a state saved under another
    /// key loads, and new addresses then follow this key.
    pub fn import(key: &Key<32>, state: &PrefixState) -> Result<Self, StateError> {
        let mut m = PrefixMap::with_pass(key, state.preserve_class, state.pass4, state.pass6);
        let pass_kept = |i: u128, o: u128, bits: u32, pass: u8| cpl(i, o, bits) >= u32::from(pass);
        for wp in [state.word_pos_v4, state.word_pos_v6] {
            if wp >> 68 != 0 {
                return Err(StateError::WordPos(wp));
            }
        }
        for (index, &(original, replacement)) in state.pairs.iter().enumerate() {
            let conflict = |a: IpAddr, b: IpAddr| StateError::Inconsistent {
                index,
                original,
                replacement,
                other_original: a,
                other_replacement: b,
            };
            match (original, replacement) {
                (IpAddr::V4(i), IpAddr::V4(o)) => {
                    let (i, o) = (u32::from(i), u32::from(o));
                    if m.v4.map.contains_key(&i) {
                        return Err(StateError::DuplicateOriginal { index, original });
                    }
                    if m.preserve_class {
                        let c = class_bits(i);
                        if cpl(i.into(), o.into(), 32) < c {
                            return Err(StateError::ClassChanged {
                                index,
                                original,
                                replacement,
                            });
                        }
                    }
                    if !pass_kept(i.into(), o.into(), 32, m.pass4) {
                        return Err(StateError::PassChanged {
                            index,
                            original,
                            replacement,
                        });
                    }
                    if let Fit::Conflict(bi, bo) = m.v4.fits(i, o) {
                        return Err(conflict(IpAddr::V4(bi.into()), IpAddr::V4(bo.into())));
                    }
                    m.v4.map.insert(i, (o, m.v4.seq));
                    m.v4.seq += 1;
                }
                (IpAddr::V6(i), IpAddr::V6(o)) => {
                    let (i, o) = (u128::from(i), u128::from(o));
                    if m.v6.map.contains_key(&i) {
                        return Err(StateError::DuplicateOriginal { index, original });
                    }
                    if !pass_kept(i, o, 128, m.pass6) {
                        return Err(StateError::PassChanged {
                            index,
                            original,
                            replacement,
                        });
                    }
                    if let Fit::Conflict(bi, bo) = m.v6.fits(i, o) {
                        return Err(conflict(IpAddr::V6(bi.into()), IpAddr::V6(bo.into())));
                    }
                    m.v6.map.insert(i, (o, m.v6.seq));
                    m.v6.seq += 1;
                }
                _ => {
                    return Err(StateError::FamilyMismatch {
                        index,
                        original,
                        replacement,
                    })
                }
            }
        }
        m.v4.rng.set_word_pos(state.word_pos_v4);
        m.v6.rng.set_word_pos(state.word_pos_v6);
        Ok(m)
    }

    /// [`PrefixMap::import`], also checking the state's `preserve_class`
    /// against the one the caller expects.
    pub fn import_checked(
        key: &Key<32>,
        preserve_class: bool,
        state: &PrefixState,
    ) -> Result<Self, StateError> {
        if state.preserve_class != preserve_class {
            return Err(StateError::PreserveClass {
                found: state.preserve_class,
                expected: preserve_class,
            });
        }
        Self::import(key, state)
    }
}

impl StatefulMap for PrefixMap {
    fn map_v4(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let class = self.class_v4();
        Ipv4Addr::from(self.v4.map(u32::from(a), class))
    }

    fn map_v6(&mut self, a: Ipv6Addr) -> Ipv6Addr {
        let pass = u32::from(self.pass6);
        Ipv6Addr::from(self.v6.map(u128::from(a), move |_| pass))
    }

    fn prefix_preserving(&self) -> bool {
        true
    }

    fn len(&self) -> usize {
        self.v4.map.len() + self.v6.map.len()
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.v4.memory_bytes() + self.v6.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key<32> {
        Key::new([b; 32])
    }

    fn addrs() -> Vec<IpAddr> {
        let mut v = Vec::new();
        for i in 0..60u32 {
            v.push(IpAddr::V4(Ipv4Addr::from(0xc000_0200 ^ (i * 0x0101_0307))));
            if i % 4 == 0 {
                v.push(IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8u128 << 96) ^ (u128::from(i) * 0x1234_5678_9abc),
                )));
            }
        }
        v
    }

    fn run(m: &mut PrefixMap, a: IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(m.map_v4(v)),
            IpAddr::V6(v) => IpAddr::V6(m.map_v6(v)),
        }
    }

    fn bits(a: IpAddr) -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u32::from(v).into(), 32),
            IpAddr::V6(v) => (v.into(), 128),
        }
    }

    #[test]
    fn prefix_preserving_and_one_to_one() {
        for pc in [false, true] {
            let mut m = PrefixMap::new(&key(1), pc);
            let ins = addrs();
            let outs: Vec<IpAddr> = ins.iter().map(|&a| run(&mut m, a)).collect();
            for (i, &x) in ins.iter().enumerate() {
                for (j, &y) in ins.iter().enumerate() {
                    let ((xb, n), (yb, n2)) = (bits(x), bits(y));
                    if n != n2 {
                        continue;
                    }
                    let (ox, _) = bits(outs[i]);
                    let (oy, _) = bits(outs[j]);
                    assert_eq!(cpl(xb, yb, n), cpl(ox, oy, n), "{x} {y}");
                }
            }
            assert_eq!(m.len(), ins.len());
            assert!(m.memory_bytes() > 0);
        }
    }

    #[test]
    fn preserve_class_keeps_class_bits() {
        let mut m = PrefixMap::new(&key(2), true);
        for (a, c) in [
            ("10.1.2.3", 1),
            ("172.16.0.1", 2),
            ("192.0.2.1", 3),
            ("224.0.0.251", 4),
            ("240.0.0.1", 4),
            ("255.255.255.255", 4),
        ] {
            let a: Ipv4Addr = a.parse().unwrap();
            let o = m.map_v4(a);
            assert!(
                cpl(u32::from(a).into(), u32::from(o).into(), 32) >= c,
                "{a} -> {o}"
            );
        }
    }

    #[test]
    fn same_key_same_order_same_output_and_keys_differ() {
        let ins = addrs();
        let mut a = PrefixMap::new(&key(3), false);
        let mut b = PrefixMap::new(&key(3), false);
        let mut c = PrefixMap::new(&key(4), false);
        let oa: Vec<_> = ins.iter().map(|&x| run(&mut a, x)).collect();
        let ob: Vec<_> = ins.iter().map(|&x| run(&mut b, x)).collect();
        let oc: Vec<_> = ins.iter().map(|&x| run(&mut c, x)).collect();
        assert_eq!(oa, ob);
        assert_ne!(oa, oc);
        // Repeat lookups do not change anything.
        let again: Vec<_> = ins.iter().map(|&x| run(&mut a, x)).collect();
        assert_eq!(again, oa);
    }

    #[test]
    fn families_do_not_interact() {
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut a = PrefixMap::new(&key(5), false);
        let mut b = PrefixMap::new(&key(5), false);
        b.map_v4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(a.map_v6(v6), b.map_v6(v6));
    }

    #[test]
    fn save_load_continues_exactly() {
        let ins = addrs();
        let (first, second) = ins.split_at(ins.len() / 2);
        for pc in [false, true] {
            let mut whole = PrefixMap::new(&key(6), pc);
            let expect: Vec<_> = ins.iter().map(|&x| run(&mut whole, x)).collect();

            let mut m = PrefixMap::new(&key(6), pc);
            let mut got: Vec<_> = first.iter().map(|&x| run(&mut m, x)).collect();
            let state = m.export();
            let mut loaded = PrefixMap::import_checked(&key(6), pc, &state).unwrap();
            assert_eq!(loaded.export(), state);
            got.extend(second.iter().map(|&x| run(&mut loaded, x)));
            assert_eq!(got, expect);
            assert_eq!(loaded.export(), whole.export());
        }
    }

    #[test]
    fn import_rejects_bad_states() {
        let mut m = PrefixMap::new(&key(7), true);
        for a in ["10.0.0.1", "10.0.0.2", "192.0.2.1"] {
            m.map_v4(a.parse().unwrap());
        }
        m.map_v6("2001:db8::1".parse().unwrap());
        let good = m.export();
        let k = key(7);

        assert!(matches!(
            PrefixMap::import_checked(&k, false, &good),
            Err(StateError::PreserveClass { .. })
        ));

        let mut s = good.clone();
        s.pairs[1].0 = s.pairs[0].0;
        assert!(matches!(
            PrefixMap::import(&k, &s),
            Err(StateError::DuplicateOriginal { index: 1, .. })
        ));

        let mut s = good.clone();
        s.pairs[3].1 = s.pairs[0].1;
        assert!(matches!(
            PrefixMap::import(&k, &s),
            Err(StateError::FamilyMismatch { index: 3, .. })
        ));

        // 10.0.0.1 and 10.0.0.2 share 30 bits; give the second an output
        // that shares 31 with the first one's output.
        let mut s = good.clone();
        let IpAddr::V4(o0) = s.pairs[0].1 else {
            panic!()
        };
        s.pairs[1].1 = IpAddr::V4(Ipv4Addr::from(u32::from(o0) ^ 1));
        assert!(matches!(
            PrefixMap::import(&k, &s),
            Err(StateError::Inconsistent { index: 1, .. })
        ));

        let mut s = good.clone();
        s.pairs[0].1 = IpAddr::V4(Ipv4Addr::new(200, 0, 0, 1));
        assert!(matches!(
            PrefixMap::import(&k, &s),
            Err(StateError::ClassChanged { index: 0, .. })
        ));

        let mut s = good;
        s.word_pos_v6 = 1 << 68;
        assert_eq!(
            PrefixMap::import(&k, &s).unwrap_err(),
            StateError::WordPos(1 << 68)
        );
    }

    #[test]
    fn debug_hides_key() {
        let m = PrefixMap::new(&Key::new([0xab; 32]), false);
        let d = format!("{m:?}");
        assert!(
            !d.contains("171") && !d.to_lowercase().contains("ab, "),
            "{d}"
        );
    }
}
