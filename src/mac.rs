//! MAC addresses: the link-layer identifiers that tie a washed capture to
//! its hosts (Docker's bridge even builds them from the IPv4 address:
//! `02:42:a.b.c.d`).
//!
//! With `--mac wash` (the command line's default) every unicast MAC
//! address is mapped the same way wherever it appears: Ethernet source and
//! destination (802.1Q and 802.1ad tags allowed), the Linux cooked (SLL,
//! SLL2) address field, ARP sender and target hardware addresses, ICMPv6
//! neighbour discovery source and target link-layer address options and
//! the DHCP `chaddr` field and client identifier option (the ICMPv6 and
//! UDP checksums are updated, staying as valid or as wrong as they were).
//! Group (multicast and broadcast) addresses and the all-zero address are
//! kept. The map follows the technique:
//!
//! - keyed techniques: the keyed permutation of
//!   [`ipwash_algorithms::macperm`] (the I/G and U/L bits kept, the other 46
//!   bits permuted) under a key derived from the technique's key with the
//!   fixed label `ipwash MAC key 1`
//!   ([`ipwash_algorithms::macperm::MacPerm::derive`]);
//! - `truncate`: the low 24 bits zeroed (the vendor prefix kept);
//! - `enumerate`: numbered in order of first appearance as locally
//!   administered unicast addresses `02:00:00:00:00:01`, `...:02`, ...;
//!   the numbering is kept in `--state` (`mac` rows) with the addresses',
//!   recorded by `ipwash scan` and replayed by `ipwash state merge`, so a
//!   series of runs or a fan-out numbers every MAC once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipwash_algorithms::ipcipher::key_from_passphrase;
use ipwash_algorithms::macperm::{from_u64, to_u64, MacPerm};

use crate::method::{read_key, read_passphrase, Method, MethodArgs, UsageError};

/// `--mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MacMode {
    /// Map every unicast MAC address (Ethernet, SLL, ARP, ND, DHCP).
    #[default]
    Wash,
    /// Leave MAC addresses as they are.
    Keep,
}

/// Entries of the per-worker cache of the keyed map.
const CACHE: usize = 4096;

/// How MAC addresses are mapped.
pub enum MacMap {
    /// Unchanged.
    Keep,
    /// The keyed permutation, with a per-worker direct-mapped cache of
    /// `(original + 1, replacement)` (0 marks an empty entry).
    Perm(Arc<MacPerm>, Vec<(u64, u64)>),
    /// The inverse of the keyed permutation (`wash --reverse`).
    Unperm(Arc<MacPerm>),
    /// Low 24 bits zeroed.
    Truncate,
    /// Numbered in order of first appearance.
    Enumerate(HashMap<[u8; 6], [u8; 6]>),
    /// Unchanged, and told to a recorder (`ipwash scan`).
    Record(Arc<dyn MacSink>),
    /// A frozen numbering (`--state-readonly`).
    Frozen(Arc<FrozenMacs>),
    /// Unchanged, holding the enumeration of a state file so that saving
    /// the state again keeps it (`--mac keep`, and commands that map no
    /// MAC address).
    Carry(Vec<([u8; 6], [u8; 6])>),
}

/// Where `ipwash scan` notes each MAC address a wash would map.
pub trait MacSink: Send + Sync {
    /// `m` is about to be mapped.
    fn note(&self, m: [u8; 6]);
}

/// The MAC numbering of a merged state table: lookups only. A MAC address
/// not in it comes out as `02:00:00:00:00:00` (never as itself) and is
/// counted; the caller then fails the file.
#[derive(Debug, Default)]
pub struct FrozenMacs {
    table: HashMap<[u8; 6], [u8; 6]>,
    misses: AtomicU64,
}

impl FrozenMacs {
    /// Freeze a numbering.
    pub fn new(table: HashMap<[u8; 6], [u8; 6]>) -> Self {
        FrozenMacs {
            table,
            misses: AtomicU64::new(0),
        }
    }

    /// MAC addresses looked up and not found so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// The `n`-th enumerated MAC address (from 1): `02:` and 40 bits of `n`.
fn numbered(n: u64) -> [u8; 6] {
    from_u64((0x02u64 << 40) | (n & ((1 << 40) - 1)))
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn to_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse `aa:bb:cc:dd:ee:ff` (either case).
pub fn from_text(t: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = t.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

impl MacMap {
    /// The map `--mac mode` gives for the technique `args` names. Reads the
    /// technique's key file again (before any data is read).
    pub fn build(args: &MethodArgs, mode: MacMode) -> Result<MacMap, UsageError> {
        if mode == MacMode::Keep {
            return Ok(MacMap::Keep);
        }
        let Some(key) = key_material(args)? else {
            return Ok(match args.method {
                Method::Enumerate => MacMap::Enumerate(HashMap::new()),
                _ => MacMap::Truncate,
            });
        };
        let k = zeroize::Zeroizing::new(MacPerm::derive(&key));
        let mut key = key;
        zeroize::Zeroize::zeroize(&mut key);
        Ok(MacMap::Perm(
            Arc::new(MacPerm::new(&k)),
            vec![(0, 0); CACHE],
        ))
    }

    /// The map that undoes [`MacMap::build`] for `wash --reverse`: the
    /// keyed permutation inverted; MACs that truncation or enumeration
    /// replaced cannot come back and are left as they are.
    pub fn build_reverse(args: &MethodArgs, mode: MacMode) -> Result<MacMap, UsageError> {
        Ok(match MacMap::build(args, mode)? {
            MacMap::Perm(p, _) => MacMap::Unperm(p),
            _ => MacMap::Keep,
        })
    }

    /// True when MAC addresses are left alone.
    pub fn keeps(&self) -> bool {
        matches!(self, MacMap::Keep | MacMap::Carry(_))
    }

    /// The enumeration's table in numbering order; None for the other maps.
    pub fn enumerated(&self) -> Option<Vec<([u8; 6], [u8; 6])>> {
        let t = match self {
            MacMap::Enumerate(t) => t,
            MacMap::Carry(v) => return Some(v.clone()),
            _ => return None,
        };
        let mut v: Vec<([u8; 6], [u8; 6])> = t.iter().map(|(a, b)| (*a, *b)).collect();
        v.sort_by_key(|p| to_u64(p.1));
        Some(v)
    }

    /// The enumeration that goes on from `pairs` (in numbering order, as
    /// [`MacMap::enumerated`] gives them): they must be numbered 1, 2, ...
    /// and one-to-one.
    pub fn enumeration_from(pairs: &[([u8; 6], [u8; 6])]) -> Result<MacMap, String> {
        let mut t = HashMap::with_capacity(pairs.len());
        for (i, (a, b)) in pairs.iter().enumerate() {
            if *b != numbered(i as u64 + 1) {
                return Err(format!(
                    "MAC {} is numbered {}, not {} (the numbering must run 1, 2, ...)",
                    to_text(*a),
                    to_text(*b),
                    to_text(numbered(i as u64 + 1))
                ));
            }
            if a[0] & 1 != 0 || *a == [0; 6] || t.insert(*a, *b).is_some() {
                return Err(format!(
                    "MAC {} is a group address, zero or listed twice",
                    to_text(*a)
                ));
            }
        }
        Ok(MacMap::Enumerate(t))
    }

    /// The numbering frozen for `--state-readonly` (the other maps, which
    /// keep no table, are returned as they are).
    pub fn frozen(self) -> (MacMap, Option<Arc<FrozenMacs>>) {
        match self {
            MacMap::Enumerate(t) => {
                let f = Arc::new(FrozenMacs::new(t));
                (MacMap::Frozen(f.clone()), Some(f))
            }
            m => (m, None),
        }
    }

    /// A copy for another worker (with its own cache); None for the
    /// enumeration, which must stay on one thread.
    pub fn try_clone(&self) -> Option<MacMap> {
        match self {
            MacMap::Keep => Some(MacMap::Keep),
            MacMap::Carry(v) => Some(MacMap::Carry(v.clone())),
            MacMap::Truncate => Some(MacMap::Truncate),
            MacMap::Perm(p, _) => Some(MacMap::Perm(p.clone(), vec![(0, 0); CACHE])),
            MacMap::Unperm(p) => Some(MacMap::Unperm(p.clone())),
            MacMap::Record(r) => Some(MacMap::Record(r.clone())),
            MacMap::Frozen(f) => Some(MacMap::Frozen(f.clone())),
            MacMap::Enumerate(_) => None,
        }
    }

    /// Map one MAC address; group addresses and all-zero are kept.
    pub fn map(&mut self, m: [u8; 6]) -> [u8; 6] {
        if m[0] & 1 != 0 || m == [0; 6] {
            return m;
        }
        match self {
            MacMap::Keep | MacMap::Carry(_) => m,
            MacMap::Truncate => [m[0], m[1], m[2], 0, 0, 0],
            MacMap::Unperm(p) => p.unmap(m),
            MacMap::Perm(p, cache) => {
                let x = to_u64(m);
                let i = (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % CACHE;
                if let Some(e) = cache.get(i) {
                    if e.0 == x + 1 {
                        return from_u64(e.1);
                    }
                }
                let w = p.map(m);
                if let Some(e) = cache.get_mut(i) {
                    *e = (x + 1, to_u64(w));
                }
                w
            }
            MacMap::Enumerate(t) => {
                let n = t.len() as u64 + 1;
                *t.entry(m).or_insert_with(|| numbered(n))
            }
            MacMap::Record(r) => {
                r.note(m);
                m
            }
            MacMap::Frozen(f) => match f.table.get(&m) {
                Some(&o) => o,
                None => {
                    f.misses.fetch_add(1, Ordering::Relaxed);
                    numbered(0)
                }
            },
        }
    }
}

/// The key material of the technique `args` names, read again from its key
/// file (before any data is read), from which the MAC and EDNS identifier
/// keys are derived; None for the unkeyed techniques (truncate, enumerate).
pub(crate) fn key_material(args: &MethodArgs) -> Result<Option<Vec<u8>>, UsageError> {
    Ok(Some(match args.method {
        Method::Truncate | Method::Enumerate => return Ok(None),
        Method::Ipcipher | Method::IpcryptDeterministic | Method::IpcryptNd => {
            match (&args.key_file, &args.passphrase_file) {
                (Some(p), _) => read_key::<16>(p)?.bytes().to_vec(),
                (None, Some(p)) => key_from_passphrase(&read_passphrase(p)?).bytes().to_vec(),
                _ => {
                    return Err(UsageError(
                        "the MAC and identifier maps need the technique's key".into(),
                    ))
                }
            }
        }
        // A cryptopANT key file is text in its own format: its bytes
        // are the key material.
        Method::Cryptopant => match &args.key_file {
            Some(p) => std::fs::read(p)
                .map_err(|e| UsageError(format!("cannot read key file {}: {e}", p.display())))?,
            None => {
                return Err(UsageError(
                    "the MAC and identifier maps need the technique's key".into(),
                ))
            }
        },
        _ => match &args.key_file {
            Some(p) => read_key::<32>(p)?.bytes().to_vec(),
            None => {
                return Err(UsageError(
                    "the MAC and identifier maps need the technique's key".into(),
                ))
            }
        },
    }))
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Map the MAC address at `at`; returns the old and new bytes when it
/// changed.
fn wash6(p: &mut [u8], at: usize, mac: &mut MacMap) -> Option<([u8; 6], [u8; 6])> {
    let cur = p.get_mut(at..at + 6)?;
    let mut old = [0u8; 6];
    old.copy_from_slice(cur);
    let new = mac.map(old);
    if new == old {
        return None;
    }
    cur.copy_from_slice(&new);
    Some((old, new))
}

/// One's complement sum of `b` as 16-bit words, its first byte the high
/// byte of a word unless `odd`.
fn sum(b: &[u8], odd: bool) -> u32 {
    b.iter()
        .enumerate()
        .map(|(i, &x)| {
            if (i % 2 == 0) != odd {
                u32::from(x) << 8
            } else {
                u32::from(x)
            }
        })
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Update the checksum at `field` for `old` replaced by `new` at an `odd`
/// or even distance from the start of the checksummed data (RFC 1624).
/// `udp`: zero means no checksum and a result of zero is sent as 0xffff.
fn fix(p: &mut [u8], field: usize, udp: bool, old: &[u8], new: &[u8], odd: bool) {
    let Some(f) = p.get_mut(field..field + 2) else {
        return;
    };
    let hc = u16::from_be_bytes([f[0], f[1]]);
    if udp && hc == 0 {
        return;
    }
    let m = fold(sum(old, odd));
    let m2 = fold(sum(new, odd));
    let mut nc = !fold(u32::from(!hc) + u32::from(!m) + u32::from(m2));
    if udp && nc == 0 {
        nc = 0xffff;
    }
    f.copy_from_slice(&nc.to_be_bytes());
}

/// Wash every MAC address of one captured packet in place. Returns true
/// when one changed.
pub fn wash_link(p: &mut [u8], linktype: u32, mac: &mut MacMap) -> bool {
    if mac.keeps() {
        return false;
    }
    let mut changed = false;
    let (l3, et) = match linktype {
        1 => {
            changed |= wash6(p, 0, mac).is_some();
            changed |= wash6(p, 6, mac).is_some();
            let mut o = 12;
            let mut tags = 0;
            while let Some(0x8100 | 0x88a8 | 0x9100) = be16(p, o) {
                o += 4;
                tags += 1;
                if tags > 4 {
                    return changed;
                }
            }
            match be16(p, o) {
                Some(et) => (o + 2, et),
                None => return changed,
            }
        }
        113 => {
            if be16(p, 4) == Some(6) {
                changed |= wash6(p, 6, mac).is_some();
            }
            match be16(p, 14) {
                Some(et) => (16, et),
                None => return changed,
            }
        }
        276 => {
            if p.get(11) == Some(&6) {
                changed |= wash6(p, 12, mac).is_some();
            }
            match be16(p, 0) {
                Some(et) => (20, et),
                None => return changed,
            }
        }
        _ => return false,
    };
    match et {
        // Ethernet/IPv4 ARP: sender and target hardware addresses.
        0x0806
            if be16(p, l3) == Some(1) && p.get(l3 + 4) == Some(&6) && p.get(l3 + 5) == Some(&4) =>
        {
            changed |= wash6(p, l3 + 8, mac).is_some();
            changed |= wash6(p, l3 + 18, mac).is_some();
        }
        0x0800 => changed |= ipv4(p, l3, mac),
        0x86dd => changed |= ipv6(p, l3, mac),
        _ => {}
    }
    changed
}

/// DHCP over an unfragmented IPv4 packet.
fn ipv4(p: &mut [u8], at: usize, mac: &mut MacMap) -> bool {
    let (Some(&vi), Some(&proto)) = (p.get(at), p.get(at + 9)) else {
        return false;
    };
    let frag = be16(p, at + 6).unwrap_or(1) & 0x3fff;
    if vi >> 4 != 4 || proto != 17 || frag != 0 {
        return false;
    }
    let udp = at + usize::from(vi & 15) * 4;
    let (Some(sp), Some(dp)) = (be16(p, udp), be16(p, udp + 2)) else {
        return false;
    };
    if !(matches!(sp, 67 | 68) || matches!(dp, 67 | 68)) {
        return false;
    }
    let tl = be16(p, at + 2).map_or(p.len(), |t| (at + usize::from(t)).min(p.len()));
    let ulen = be16(p, udp + 4).map_or(0, usize::from);
    let end = if ulen >= 8 { tl.min(udp + ulen) } else { tl };
    dhcp(p, udp, end, mac)
}

fn dhcp(p: &mut [u8], udp: usize, end: usize, mac: &mut MacMap) -> bool {
    let m = udp + 8;
    let ck = udp + 6;
    let mut changed = false;
    // Ethernet hardware type and length.
    if p.get(m + 1) == Some(&1) && p.get(m + 2) == Some(&6) && m + 34 <= end {
        if let Some((o, n)) = wash6(p, m + 28, mac) {
            fix(p, ck, true, &o, &n, (m + 28 - udp) % 2 == 1);
            changed = true;
        }
    }
    if p.get(m + 236..m + 240) != Some(&[99, 130, 83, 99][..]) {
        return changed;
    }
    let mut o = m + 240;
    while o < end {
        let Some(&code) = p.get(o) else { break };
        if code == 0 {
            o += 1;
            continue;
        }
        if code == 255 {
            break;
        }
        let Some(&len) = p.get(o + 1) else { break };
        let v = o + 2;
        // Client identifier: hardware type 1 and a MAC.
        if code == 61 && len == 7 && p.get(v) == Some(&1) && v + 7 <= end {
            if let Some((a, b)) = wash6(p, v + 1, mac) {
                fix(p, ck, true, &a, &b, (v + 1 - udp) % 2 == 1);
                changed = true;
            }
        }
        o = v + usize::from(len);
    }
    changed
}

/// ICMPv6 neighbour discovery directly after the IPv6 header.
fn ipv6(p: &mut [u8], at: usize, mac: &mut MacMap) -> bool {
    if p.get(at).map(|b| b >> 4) != Some(6) || p.get(at + 6) != Some(&58) {
        return false;
    }
    let plen = be16(p, at + 4).map_or(0, usize::from);
    let icmp = at + 40;
    let end = (icmp + plen).min(p.len());
    let opts = match p.get(icmp) {
        Some(133) => icmp + 8,
        Some(134) => icmp + 16,
        Some(135 | 136) => icmp + 24,
        Some(137) => icmp + 40,
        _ => return false,
    };
    let mut changed = false;
    let mut o = opts;
    while o + 8 <= end {
        let (Some(&t), Some(&l)) = (p.get(o), p.get(o + 1)) else {
            break;
        };
        if l == 0 {
            break;
        }
        if matches!(t, 1 | 2) && l == 1 {
            if let Some((a, b)) = wash6(p, o + 2, mac) {
                fix(p, icmp + 2, false, &a, &b, (o + 2 - icmp) % 2 == 1);
                changed = true;
            }
        }
        o += usize::from(l) * 8;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_zero_addresses_are_kept() {
        let mut m = MacMap::Truncate;
        for g in [
            [0xff; 6],
            [0x01, 0x00, 0x5e, 0, 0, 1],
            [0x33, 0x33, 0, 0, 0, 1],
            [0; 6],
        ] {
            assert_eq!(m.map(g), g);
        }
        assert_eq!(m.map([0, 0x1b, 0x21, 1, 2, 3]), [0, 0x1b, 0x21, 0, 0, 0]);
    }

    #[test]
    fn enumeration_in_order_of_appearance() {
        let mut m = MacMap::Enumerate(HashMap::new());
        let a = [0, 0x1b, 0x21, 1, 2, 3];
        let b = [0x02, 0x42, 0xac, 0x11, 0, 2];
        assert_eq!(m.map(b), [2, 0, 0, 0, 0, 1]);
        assert_eq!(m.map(a), [2, 0, 0, 0, 0, 2]);
        assert_eq!(m.map(b), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn checksum_fix_matches_a_recomputation() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        let full = |d: &[u8]| !fold(sum(d, false));
        for at in [3usize, 8, 11] {
            let mut p = data.clone();
            let c = full(&p[2..]);
            p[0..2].copy_from_slice(&c.to_be_bytes());
            let old = p[at..at + 6].to_vec();
            let new = [9u8, 8, 7, 6, 5, 4];
            p[at..at + 6].copy_from_slice(&new);
            fix(&mut p, 0, false, &old, &new, (at - 2) % 2 == 1);
            let mut q = p.clone();
            q[0..2].fill(0);
            let want = full(&q[2..]);
            assert_eq!(u16::from_be_bytes([p[0], p[1]]), want, "at {at}");
        }
    }
}
