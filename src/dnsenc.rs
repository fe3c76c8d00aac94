//! Re-encoding a DNS message whose names change, possibly in length.
//!
//! [`rewrite`] walks a message section by section and passes every name
//! (QNAME, owner names, and the names inside the RDATA of the types that
//! hold names) through a map. When no name changes, nothing is rebuilt and
//! the message stays as it is. Otherwise a new message is written:
//!
//! - Header, fixed RR fields and RDATA of other types are copied byte for
//!   byte; RDLENGTH is recomputed.
//! - **Compression keeps its shape.** A name written as labels followed by
//!   a pointer is written as its new labels followed by a pointer to the new
//!   place of the same target, when the target's new name is still the end
//!   of the new name (a washed reverse name pointing at its own washed
//!   suffix, or any unchanged name). Otherwise the longest ending of the new
//!   name already written (exact bytes) is pointed at, or the name is
//!   written in full. Pointers into changed names are thus re-pointed, and a
//!   pointer never lands inside a label. So the new message decodes to the
//!   mapped names, and a message whose names are unchanged is re-encoded
//!   to the same bytes.
//! - RDATA names are parsed for NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR,
//!   MINFO, MX, RP, AFSDB, RT, PX, SRV, KX, DNAME, RRSIG (signer) and NSEC
//!   (next name); a record of one of these types whose RDATA does not
//!   parse is an error (it may hold a name that cannot be seen). Other types
//!   are copied (RFC 3597 and the later type definitions forbid compression
//!   in them); so is empty RDATA (RFC 2136 deletions).
//!
//! A message cut by the capture (`complete` false) is walked as far as it
//! goes and the rest is copied; it can only be rewritten when every name
//! keeps its length and label boundaries (offsets past the cut are
//! unknown), and a name cut by the end whose visible labels could belong to
//! a reverse name is an error ([`EncError::Cut`]).

use std::collections::HashMap;

use crate::dns::DnsError;
use crate::revname::{NameFault, NameStats};

/// Why a message could not be re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncError {
    /// The message cannot be walked.
    #[error("{0}")]
    Dns(#[from] DnsError),
    /// A name could not be mapped safely.
    #[error("{0}")]
    Name(#[from] NameFault),
    /// A name cut by the end of the captured bytes may be a reverse name.
    #[error("a possible reverse name is cut by the end of the captured bytes")]
    Cut,
    /// A cut message whose names would change length.
    #[error("a cut DNS message cannot change length")]
    Length,
    /// The new message would exceed 65,535 bytes.
    #[error("the re-encoded DNS message is too long")]
    TooLong,
}

/// The name map: an uncompressed wire name in, whether it counts as found
/// and its replacement (None: unchanged) out.
pub type NameMap<'a> = dyn FnMut(&[u8]) -> Result<(bool, Option<Vec<u8>>), NameFault> + 'a;

/// A name as it stands in the message.
struct Occ {
    /// The full name, uncompressed.
    wire: Vec<u8>,
    /// Old positions of the labels written here, and their offset in `wire`.
    lits: Vec<(usize, usize)>,
    /// Target of the final pointer, if any.
    ptr: Option<usize>,
    /// Offset just after the name in the message.
    end: usize,
}

enum Dec {
    Ok(Occ),
    /// Ran past the end; the labels seen so far.
    Cut(Vec<u8>),
}

fn decode(m: &[u8], pos: usize) -> Result<Dec, DnsError> {
    let mut wire = Vec::new();
    let mut lits = Vec::new();
    let mut ptr = None;
    let mut end = None;
    let mut at = pos;
    let mut hops = 0;
    loop {
        let Some(&len) = m.get(at) else {
            return Ok(Dec::Cut(wire));
        };
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    wire.push(0);
                    if end.is_none() {
                        end = Some(at + 1);
                    }
                    break;
                }
                if end.is_none() {
                    lits.push((at, wire.len()));
                }
                let l = len as usize;
                let Some(lab) = m.get(at + 1..at + 1 + l) else {
                    wire.push(len);
                    wire.extend_from_slice(&m[at + 1..]);
                    return Ok(Dec::Cut(wire));
                };
                wire.push(len);
                wire.extend_from_slice(lab);
                if wire.len() > 255 {
                    return Err(DnsError::BadName(at));
                }
                at += 1 + l;
            }
            0xc0 => {
                let Some(&lo) = m.get(at + 1) else {
                    return Ok(Dec::Cut(wire));
                };
                let q = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if end.is_none() {
                    end = Some(at + 2);
                    ptr = Some(q);
                }
                hops += 1;
                if hops > 127 {
                    return Err(DnsError::BadName(at));
                }
                at = q;
            }
            _ => return Err(DnsError::BadName(at)),
        }
    }
    Ok(Dec::Ok(Occ {
        wire,
        lits,
        ptr,
        end: end.unwrap_or(at + 1),
    }))
}

/// Could the labels of a cut name belong to a reverse name? Every visible
/// label (the last possibly incomplete) is a decimal or hex string, or a
/// suffix label.
fn may_be_reverse(wire: &[u8]) -> bool {
    let mut at = 0;
    while at < wire.len() {
        let len = wire[at] as usize;
        let lab = &wire[at + 1..(at + 1 + len).min(wire.len())];
        let ok = lab.iter().all(u8::is_ascii_hexdigit)
            || [&b"in-addr"[..], b"ip6", b"arpa"]
                .iter()
                .any(|s| s.len() >= lab.len() && s[..lab.len()].eq_ignore_ascii_case(lab));
        if !ok {
            return false;
        }
        at += 1 + len;
    }
    true
}

/// Label boundaries of an uncompressed wire name (offset of each label).
fn boundaries(wire: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < wire.len() && wire[at] != 0 {
        v.push(at);
        at += 1 + wire[at] as usize;
    }
    v
}

struct Enc<'m, 'f, 'g> {
    m: &'m [u8],
    out: Vec<u8>,
    /// Old label position -> (new offset, the new name written there).
    newoff: HashMap<usize, (usize, Vec<u8>)>,
    /// New name -> earliest new offset holding it.
    avail: HashMap<Vec<u8>, usize>,
    cache: HashMap<Vec<u8>, (bool, Option<Vec<u8>>)>,
    map: &'f mut NameMap<'g>,
    changed: bool,
    /// Some name changed its length or label boundaries.
    moved: bool,
    stats: NameStats,
}

impl Enc<'_, '_, '_> {
    fn mapped(&mut self, wire: &[u8]) -> Result<(bool, Option<Vec<u8>>), NameFault> {
        if let Some(v) = self.cache.get(wire) {
            return Ok(v.clone());
        }
        let v = (self.map)(wire)?;
        self.cache.insert(wire.to_vec(), v.clone());
        Ok(v)
    }

    fn new_name(&mut self, wire: &[u8]) -> Result<Vec<u8>, NameFault> {
        Ok(self.mapped(wire)?.1.unwrap_or_else(|| wire.to_vec()))
    }

    /// Copy old bytes.
    fn copy(&mut self, a: usize, b: usize) {
        self.out.extend_from_slice(&self.m[a..b]);
    }

    /// Re-encode the name at `pos`; returns the old offset after it, or
    /// None when the message is cut inside it (and not a possible reverse
    /// name).
    fn name(&mut self, pos: usize, complete: bool) -> Result<Option<usize>, EncError> {
        let occ = match decode(self.m, pos)? {
            Dec::Ok(o) => o,
            Dec::Cut(w) => {
                if complete {
                    return Err(DnsError::Truncated(self.m.len()).into());
                }
                if !w.is_empty() && may_be_reverse(&w) {
                    return Err(EncError::Cut);
                }
                return Ok(None);
            }
        };
        let (found, newv) = self.mapped(&occ.wire)?;
        if found {
            self.stats.found += 1;
        }
        let new = match newv {
            Some(n) => {
                self.stats.washed += 1;
                self.changed = true;
                if boundaries(&n) != boundaries(&occ.wire) {
                    self.moved = true;
                }
                n
            }
            None => occ.wire.clone(),
        };
        let nb = boundaries(&new);
        // Where the written labels stop and a pointer takes over.
        let mut split: Option<(usize, usize)> = None;
        if let Some(q) = occ.ptr {
            let tail_off = occ
                .lits
                .last()
                .map_or(0, |&(p, o)| o + 1 + self.m[p] as usize);
            let tail_new = self.new_name(&occ.wire[tail_off..])?;
            if let Some((t, nm)) = self.newoff.get(&q) {
                if *nm == tail_new && new.ends_with(&tail_new) {
                    let b = new.len() - tail_new.len();
                    if (b == 0 || nb.contains(&b)) && *t <= 0x3fff {
                        split = Some((b, *t));
                    }
                }
            }
        }
        // A name written in full stays in full (the message keeps its
        // shape); only a pointer that no longer fits falls back to the
        // longest ending already written.
        if split.is_none() && occ.ptr.is_some() {
            for &b in &nb {
                if let Some(&t) = self.avail.get(&new[b..]) {
                    split = Some((b, t));
                    break;
                }
            }
        }
        let start = self.out.len();
        match split {
            Some((b, t)) => {
                self.out.extend_from_slice(&new[..b]);
                self.out.push(0xc0 | (t >> 8) as u8);
                self.out.push(t as u8);
            }
            None => self.out.extend_from_slice(&new),
        }
        let lit_end = split.map_or(new.len(), |s| s.0);
        for &b in nb.iter().take_while(|&&b| b < lit_end) {
            let o = start + b;
            if o <= 0x3fff {
                self.avail.entry(new[b..].to_vec()).or_insert(o);
            }
        }
        // Old label positions written here: the label at the same index in
        // the new name (mapping keeps the label count).
        let ob = boundaries(&occ.wire);
        if ob.len() == nb.len() {
            for (i, &(p, _)) in occ.lits.iter().enumerate() {
                let b = nb[i];
                if b < lit_end && start + b <= 0x3fff {
                    self.newoff.insert(p, (start + b, new[b..].to_vec()));
                }
            }
        }
        Ok(Some(occ.end))
    }
}

fn u16_at(m: &[u8], at: usize) -> Option<u16> {
    m.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// What RDATA of `rtype` holds: fixed bytes before names, number of names,
/// and whether bytes may follow the last name.
pub fn rdata_shape(rtype: u16) -> Option<(usize, usize, bool)> {
    Some(match rtype {
        2..=5 | 7..=9 | 12 | 39 => (0, 1, false),
        6 => (0, 2, true),
        14 | 17 => (0, 2, false),
        15 | 18 | 21 | 36 => (2, 1, false),
        26 => (2, 2, false),
        33 => (6, 1, false),
        46 => (18, 1, true),
        47 => (0, 1, true),
        _ => return None,
    })
}

/// Re-encode `m` (a DNS message without TCP length prefix) with every name
/// passed through `map`. Ok(None) when no name changed (the message stays
/// as it is). `complete` is false for a message cut by the capture.
pub fn rewrite(
    m: &[u8],
    complete: bool,
    map: &mut NameMap<'_>,
    stats: &mut NameStats,
) -> Result<Option<Vec<u8>>, EncError> {
    let mut e = Enc {
        m,
        out: Vec::with_capacity(m.len() + 32),
        newoff: HashMap::new(),
        avail: HashMap::new(),
        cache: HashMap::new(),
        map,
        changed: false,
        moved: false,
        stats: NameStats::default(),
    };
    let r = walk(&mut e, complete);
    stats.add(&e.stats);
    r?;
    if !e.changed {
        return Ok(None);
    }
    if !complete && (e.moved || e.out.len() != m.len()) {
        return Err(EncError::Length);
    }
    if e.out.len() > 65535 {
        return Err(EncError::TooLong);
    }
    Ok(Some(e.out))
}

/// [`rewrite`] that always re-encodes (for tests of the encoder).
#[doc(hidden)]
pub fn reencode(m: &[u8], map: &mut NameMap<'_>) -> Result<Vec<u8>, EncError> {
    let mut e = Enc {
        m,
        out: Vec::new(),
        newoff: HashMap::new(),
        avail: HashMap::new(),
        cache: HashMap::new(),
        map,
        changed: false,
        moved: false,
        stats: NameStats::default(),
    };
    walk(&mut e, true)?;
    Ok(e.out)
}

fn walk(e: &mut Enc<'_, '_, '_>, complete: bool) -> Result<(), EncError> {
    let m = e.m;
    if m.len() < 12 {
        if complete {
            return Err(DnsError::Truncated(m.len()).into());
        }
        e.copy(0, m.len());
        return Ok(());
    }
    e.copy(0, 12);
    let count = |i: usize| u16_at(m, 4 + 2 * i).unwrap_or(0) as usize;
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    let mut at = 12;
    // Stop at the cut: copy the rest as it is (the output so far stands for
    // the old bytes before `from` when no name moved, which `rewrite`
    // checks).
    macro_rules! cut {
        ($from:expr) => {{
            if complete {
                return Err(DnsError::Truncated(m.len()).into());
            }
            let from: usize = $from;
            e.copy(from.min(m.len()), m.len());
            return Ok(());
        }};
    }
    for _ in 0..qd {
        let Some(end) = e.name(at, complete)? else {
            cut!(at)
        };
        at = end;
        if at + 4 > m.len() {
            cut!(at)
        }
        e.copy(at, at + 4);
        at += 4;
    }
    for _ in 0..an + ns + ar {
        let Some(end) = e.name(at, complete)? else {
            cut!(at)
        };
        at = end;
        let (Some(rtype), Some(rdlen)) = (u16_at(m, at), u16_at(m, at + 8)) else {
            cut!(at)
        };
        let rd = at + 10;
        let rend = rd + rdlen as usize;
        e.copy(at, rd);
        let len_at = e.out.len() - 2;
        match rdata_shape(rtype).filter(|_| rdlen > 0) {
            None => {
                if rend > m.len() {
                    cut!(rd)
                }
                e.copy(rd, rend);
            }
            Some((fixed, names, rest)) => {
                if rd + fixed > rend.min(m.len()) {
                    if rend > m.len() {
                        cut!(rd)
                    }
                    return Err(DnsError::Truncated(rend).into());
                }
                e.copy(rd, rd + fixed);
                let mut o = rd + fixed;
                for _ in 0..names {
                    // A name must lie inside the RDATA.
                    let Some(end) = e.name(o, complete)? else {
                        cut!(o)
                    };
                    if end > rend {
                        return Err(DnsError::BadName(o).into());
                    }
                    o = end;
                }
                if o != rend && !rest {
                    return Err(DnsError::BadName(o).into());
                }
                if rend > m.len() {
                    cut!(o)
                }
                e.copy(o, rend);
            }
        }
        let n = e.out.len() - len_at - 2;
        let n = u16::try_from(n).map_err(|_| EncError::TooLong)?;
        e.out[len_at..len_at + 2].copy_from_slice(&n.to_be_bytes());
        at = rend;
    }
    if at < m.len() {
        e.copy(at, m.len());
    }
    Ok(())
}

/// True when `m` may hold a reverse name: it contains an `arpa` label (any
/// case). A message without one is never rewritten.
pub fn may_hold_reverse(m: &[u8]) -> bool {
    memchr::memchr_iter(4, m).any(|i| {
        m.get(i + 1..i + 5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"arpa"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encode labels with compression against earlier suffixes.
    fn put(out: &mut Vec<u8>, labels: &[String], dict: &mut HashMap<Vec<String>, usize>) {
        for i in 0..labels.len() {
            let suf = labels[i..].to_vec();
            if let Some(&o) = dict.get(&suf) {
                out.push(0xc0 | (o >> 8) as u8);
                out.push(o as u8);
                return;
            }
            if out.len() < 0x3fff {
                dict.insert(suf, out.len());
            }
            out.push(labels[i].len() as u8);
            out.extend_from_slice(labels[i].as_bytes());
        }
        out.push(0);
    }

    fn labels(s: &str) -> Vec<String> {
        s.split('.')
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// A message: one question and RRs of name-holding and other types.
    fn message(names: &[String], rrs: &[(u16, usize, usize)]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, rrs.len() as u8, 0, 0, 0, 0];
        let mut dict = HashMap::new();
        put(&mut m, &labels(&names[0]), &mut dict);
        m.extend_from_slice(&[0, 12, 0, 1]);
        for &(t, owner, target) in rrs {
            put(&mut m, &labels(&names[owner % names.len()]), &mut dict);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 0]);
            let rd = m.len();
            let tn = labels(&names[target % names.len()]);
            match t {
                1 => m.extend_from_slice(&[192, 0, 2, 1]),
                15 => {
                    m.extend_from_slice(&[0, 10]);
                    put(&mut m, &tn, &mut dict);
                }
                6 => {
                    put(&mut m, &tn, &mut dict);
                    put(&mut m, &labels("hostmaster.example"), &mut dict);
                    m.extend_from_slice(&[0; 20]);
                }
                _ => put(&mut m, &tn, &mut dict),
            }
            let n = (m.len() - rd) as u16;
            m[rd - 2..rd].copy_from_slice(&n.to_be_bytes());
        }
        m
    }

    /// Every name of a message, decoded independently (question, owners,
    /// RDATA names of the types `message` writes).
    fn all_names(m: &[u8]) -> Vec<String> {
        fn dec(m: &[u8], mut at: usize) -> (String, usize) {
            let mut v = Vec::new();
            let mut end = None;
            loop {
                let l = m[at] as usize;
                if l & 0xc0 == 0xc0 {
                    end.get_or_insert(at + 2);
                    at = ((l & 0x3f) << 8) | m[at + 1] as usize;
                    continue;
                }
                if l == 0 {
                    end.get_or_insert(at + 1);
                    break;
                }
                v.push(String::from_utf8_lossy(&m[at + 1..at + 1 + l]).into_owned());
                at += 1 + l;
            }
            (v.join("."), end.unwrap())
        }
        let mut out = Vec::new();
        let (n, mut at) = dec(m, 12);
        out.push(n);
        at += 4;
        let an = u16::from_be_bytes([m[6], m[7]]);
        for _ in 0..an {
            let (n, e) = dec(m, at);
            out.push(n);
            let t = u16::from_be_bytes([m[e], m[e + 1]]);
            let rdlen = u16::from_be_bytes([m[e + 8], m[e + 9]]) as usize;
            let rd = e + 10;
            match t {
                1 => {}
                15 => out.push(dec(m, rd + 2).0),
                6 => {
                    let (a, e2) = dec(m, rd);
                    out.push(a);
                    out.push(dec(m, e2).0);
                }
                _ => out.push(dec(m, rd).0),
            }
            at = rd + rdlen;
        }
        assert_eq!(at, m.len());
        out
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            (any::<[u8; 4]>(), 1usize..=4).prop_map(|(o, n)| {
                let mut l: Vec<String> = o[..n].iter().rev().map(|b| b.to_string()).collect();
                l.push("in-addr.arpa".into());
                l.join(".")
            }),
            (any::<u128>(), 1usize..=32, any::<bool>()).prop_map(|(x, n, up)| {
                let mut l: Vec<String> = (0..n)
                    .rev()
                    .map(|i| format!("{:x}", (x >> (124 - 4 * i)) & 15))
                    .collect();
                l.push("ip6.arpa".into());
                let s = l.join(".");
                if up {
                    s.to_ascii_uppercase()
                } else {
                    s
                }
            }),
            "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}\\.example",
        ]
    }

    fn msg_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(name_strategy(), 1..6),
            prop::collection::vec(
                (
                    prop::sample::select(vec![1u16, 2, 5, 6, 12, 15, 39]),
                    0usize..8,
                    0usize..8,
                ),
                0..8,
            ),
        )
            .prop_map(|(names, rrs)| message(&names, &rrs))
    }

    /// Add one to the address under a reverse name (or leave names alone).
    fn inc_map(w: &[u8]) -> Result<(bool, Option<Vec<u8>>), NameFault> {
        use std::sync::Arc;
        struct Inc;
        impl ipwash_algorithms::AddrMap for Inc {
            fn map_v4(&self, a: std::net::Ipv4Addr) -> std::net::Ipv4Addr {
                (u32::from(a).wrapping_add(0x0909_0909)).into()
            }
            fn map_v6(&self, a: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
                (u128::from(a) ^ (u128::MAX >> 3)).into()
            }
            fn prefix_preserving(&self) -> bool {
                false
            }
        }
        let mut w8 = crate::wash::Washer::new(crate::wash::Technique::Stateless(Arc::new(Inc)));
        crate::revname::wash_wire(w, &mut w8)
    }

    fn wire_of(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in labels(s) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Names that do not change: the same bytes, re-encoded or not.
        #[test]
        fn unchanged_names_give_the_same_bytes(m in msg_strategy()) {
            let mut id = |_: &[u8]| Ok((false, None));
            prop_assert_eq!(reencode(&m, &mut id).unwrap(), m.clone());
            let mut st = NameStats::default();
            prop_assert_eq!(rewrite(&m, true, &mut id, &mut st).unwrap(), None);
        }

        /// Changed names: every name decodes to the mapped name, and
        /// RDLENGTHs add up (the independent decoder walks to the end).
        #[test]
        fn changed_names_decode_to_the_mapped_names(m in msg_strategy()) {
            let before = all_names(&m);
            let mut st = NameStats::default();
            let new = rewrite(&m, true, &mut inc_map, &mut st).unwrap().unwrap_or(m.clone());
            let after = all_names(&new);
            prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                let want = match inc_map(&wire_of(b)).unwrap().1 {
                    Some(w) => crate::revname::wire_to_text(&w),
                    None => b.clone(),
                };
                prop_assert_eq!(a, &want);
            }
        }

        /// A cut message: either rewritten in place (same length) or
        /// refused, never a panic.
        #[test]
        fn cut_messages(m in msg_strategy(), cut in 0usize..400) {
            let c = cut.min(m.len());
            let mut st = NameStats::default();
            if let Ok(Some(n)) = rewrite(&m[..c], false, &mut inc_map, &mut st) {
                prop_assert_eq!(n.len(), c);
            }
        }
    }

    #[test]
    fn pointer_into_a_changed_name_is_repointed() {
        // QNAME 7.100.51.198.in-addr.arpa, then an NS record whose owner
        // points at "100.51.198.in-addr.arpa" inside it.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&wire_of("7.100.51.198.in-addr.arpa"));
        m.extend_from_slice(&[0, 12, 0, 1, 0xc0, 14, 0, 2, 0, 1, 0, 0, 0, 1, 0, 4]);
        m.extend_from_slice(&[2, b'n', b's', 0]);
        let mut st = NameStats::default();
        let new = rewrite(&m, true, &mut inc_map, &mut st).unwrap().unwrap();
        let names = all_names(&new);
        assert_eq!(names[0], "16.109.60.207.in-addr.arpa");
        // The owner is the washed /24 (a non-prefix-preserving map: not a
        // suffix of the QNAME, so written out).
        let want = crate::revname::wire_to_text(
            &inc_map(&wire_of("100.51.198.in-addr.arpa"))
                .unwrap()
                .1
                .unwrap(),
        );
        assert_eq!(names[1], want);
        assert_eq!(
            st,
            NameStats {
                found: 2,
                washed: 2
            }
        );
    }

    #[test]
    fn cut_reverse_name_is_refused() {
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&wire_of("7.100.51.198.in-addr.arpa"));
        let mut st = NameStats::default();
        assert_eq!(
            rewrite(&m[..20], false, &mut inc_map, &mut st),
            Err(EncError::Cut)
        );
        let mut h = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        h.extend_from_slice(&wire_of("www.example.com"));
        assert_eq!(rewrite(&h[..18], false, &mut inc_map, &mut st), Ok(None));
    }
}
