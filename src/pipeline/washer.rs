//! The per-packet washer: locate the address slots, map each address
//! (scope, keep-list, technique, cache), patch it back with its checksums.

use std::ops::Range;

use super::{AddrCache, Unparsed};
use crate::packet::{self, Family, Located, Origin, Plain};
use crate::stats::Stats;
use crate::wash::{Side, Technique, Washer};

/// Outcome of washing one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a packet (a pcapng block other than a packet): copied.
    Block,
    /// A block the reader marked for removal (e.g. a Name Resolution Block).
    BlockDropped(&'static str),
    /// Written; `true` when at least one address was rewritten.
    Written(bool),
    /// Could not be parsed; written unchanged because of `--unparsed pass`.
    Passed(&'static str),
    /// Dropped for this reason.
    Dropped(&'static str),
}

/// Per-worker state: reused between packets and batches.
pub struct Worker {
    /// Located slots, reused.
    pub loc: Located,
    /// Exact-address cache (stateless techniques only).
    pub cache: AddrCache,
    /// Counters.
    pub stats: Stats,
    /// Take plain UDP packets through the shortcut (on by default; tests
    /// turn it off to compare with the general path).
    pub shortcut: bool,
    /// Set by [`wash_packet`] when the washed packet has another length
    /// (a reverse name changed length): the packet to write instead of the
    /// buffer's bytes.
    pub resized: Option<Vec<u8>>,
}

impl Worker {
    /// A worker for `washer`: a cache of `cache_size` entries per family
    /// where it pays (stateless techniques that are not cheaper than a
    /// lookup).
    pub fn for_washer(washer: &Washer, cache_size: usize) -> Self {
        let (n4, n6) = match &washer.technique {
            Technique::Stateless(m) => (
                if m.cheap(false) { 0 } else { cache_size },
                if m.cheap(true) { 0 } else { cache_size },
            ),
            Technique::Stateful(_) => (0, 0),
        };
        let mut w = Worker::new(0);
        w.cache = AddrCache::with_sizes(n4, n6);
        // The pipeline's output side follows DNS over TCP.
        w.loc.follow_tcp = true;
        w.loc.answers = washer.answers;
        w.loc.dns_ports.clone_from(&washer.payload.ports);
        w
    }

    /// A fresh worker.
    pub fn new(cache_size: usize) -> Self {
        Worker {
            loc: Located::new(),
            cache: AddrCache::new(cache_size),
            stats: Stats::default(),
            shortcut: true,
            resized: None,
        }
    }
}

/// Map one IPv4 address seen on `side`, through the worker's cache when
/// the technique is stateless, and count it.
#[inline]
fn map_v4(a: u32, side: Side, washer: &mut Washer, w: &mut Worker, stateless: bool) -> u32 {
    w.stats.distinct.insert_v4(a);
    if stateless && washer.in_scope(side) {
        w.cache.v4(a, |a| washer.wash_v4(a, side))
    } else {
        washer.wash_v4(a, side)
    }
}

/// [`map_v4`] for IPv6.
#[inline]
fn map_v6(a: u128, side: Side, washer: &mut Washer, w: &mut Worker, stateless: bool) -> u128 {
    w.stats.distinct.insert_v6(a);
    if stateless && washer.in_scope(side) {
        w.cache.v6(a, |a| washer.wash_v6(a, side))
    } else {
        washer.wash_v6(a, side)
    }
}

/// Map the full address of `N` (4 or 16) bytes at `at` in `pkt`, seen on
/// `side`; `flip`: it is stored with every bit inverted (Teredo). The bytes
/// as stored and their replacement, when they differ.
#[inline]
fn map_at<const N: usize>(
    pkt: &[u8],
    at: usize,
    flip: bool,
    side: Side,
    washer: &mut Washer,
    w: &mut Worker,
    stateless: bool,
) -> Option<([u8; N], [u8; N])> {
    let old = <[u8; N]>::try_from(pkt.get(at..at + N)?).ok()?;
    let mut x = old;
    if flip {
        x.iter_mut().for_each(|v| *v = !*v);
    }
    let mut new = x;
    if let Ok(v4) = <[u8; 4]>::try_from(&x[..]) {
        let a = u32::from_be_bytes(v4);
        let m = map_v4(a, side, washer, w, stateless);
        if m == a {
            return None;
        }
        new.copy_from_slice(&m.to_be_bytes());
    } else {
        let a = u128::from_be_bytes(<[u8; 16]>::try_from(&x[..]).ok()?);
        let m = map_v6(a, side, washer, w, stateless);
        if m == a {
            return None;
        }
        new.copy_from_slice(&m.to_be_bytes());
    }
    if flip {
        new.iter_mut().for_each(|v| *v = !*v);
    }
    Some((old, new))
}

/// Wash a plain UDP packet (see [`packet::classify_plain`]): the same
/// result as the general path, without its bookkeeping.
fn wash_plain(pkt: &mut [u8], pl: &Plain, washer: &mut Washer, w: &mut Worker) -> Outcome {
    let stateless = matches!(washer.technique, Technique::Stateless(_));
    let mut changed = false;
    for (&at, &side) in pl.addr.iter().zip(&pl.side) {
        changed |= match pl.family {
            Family::V4 => map_at::<4>(pkt, at, false, side, washer, w, stateless)
                .map(|(old, new)| packet::patch_plain(pkt, pl, at, &old, &new)),
            Family::V6 => map_at::<16>(pkt, at, false, side, washer, w, stateless)
                .map(|(old, new)| packet::patch_plain(pkt, pl, at, &old, &new)),
        }
        .is_some();
    }
    Outcome::Written(changed)
}

/// Wash one packet in place. `washer` decides scope/keep and maps; MAC
/// addresses are washed after the IP addresses ([`crate::mac`]). A packet
/// passed unparsed (`--unparsed pass`) is written unchanged, MACs included.
pub fn wash_packet(
    pkt: &mut [u8],
    linktype: u32,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) -> Outcome {
    if let Some(o) = crate::payload::before_wash(pkt, linktype, washer) {
        return o;
    }
    w.resized = None;
    let o = match wash_packet_ip(pkt, linktype, washer, w, unparsed) {
        Outcome::Written(c) => {
            let p = match w.resized.as_mut() {
                Some(v) => &mut v[..],
                None => pkt,
            };
            Outcome::Written(crate::mac::wash_link(p, linktype, &mut washer.mac) | c)
        }
        o => o,
    };
    crate::payload::after_wash(pkt, linktype, washer, o)
}

fn wash_packet_ip(
    pkt: &mut [u8],
    linktype: u32,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) -> Outcome {
    if w.shortcut {
        if let Some(pl) = packet::classify_plain(linktype, pkt, &mut w.loc) {
            return wash_plain(pkt, &pl, washer, w);
        }
    }
    if let Err(reason) = packet::locate_general(linktype, pkt, &mut w.loc) {
        let r = reason.as_str();
        return match unparsed {
            Unparsed::Pass => Outcome::Passed(r),
            Unparsed::Drop => Outcome::Dropped(r),
        };
    }
    let mut changed = false;
    let stateless = matches!(washer.technique, Technique::Stateless(_));
    for i in 0..w.loc.slots.len() {
        let s = &w.loc.slots[i];
        let (family, side, n, prefix_bits) = (s.family, s.side, s.len as usize, s.prefix_bits);
        let inverted = s.origin == Origin::TeredoOrigin;
        let full = family.bytes();
        if n == full && prefix_bits as usize == full * 8 {
            // Teredo stores the client's IPv4 address with every bit inverted.
            let at = s.offset;
            changed |= match family {
                Family::V4 => map_at::<4>(pkt, at, inverted, side, washer, w, stateless)
                    .map(|(_, new)| packet::patch(pkt, &w.loc, i, &new)),
                Family::V6 => map_at::<16>(pkt, at, inverted, side, washer, w, stateless)
                    .map(|(_, new)| packet::patch(pkt, &w.loc, i, &new)),
            }
            .is_some();
            continue;
        }
        let Some(bytes) = pkt.get(s.offset..s.offset + n) else {
            continue;
        };
        // An ECS prefix, or an address cut short by the snapshot length.
        let mut cur = [0u8; 16];
        cur[..n].copy_from_slice(bytes);
        if inverted {
            cur[..n].iter_mut().for_each(|b| *b = !*b);
        }
        let mut new = cur;
        let bits = prefix_bits.min((n * 8) as u8);
        washer.wash_prefix(&mut new[..n], family == Family::V6, bits, side);
        // Bytes past `n` are equal in both (zero), so whole arrays compare.
        if new != cur {
            if inverted {
                new[..n].iter_mut().for_each(|b| *b = !*b);
            }
            packet::patch(pkt, &w.loc, i, &new[..n]);
            changed = true;
        }
    }
    changed |= crate::edns::wash_fields(pkt, &w.loc, washer);
    // Reverse names last: a change of length copies the packet.
    if !w.loc.names.is_empty() && washer.reverse_names == crate::revname::ReverseNames::Wash {
        let names = &mut w.stats.names;
        match crate::revwash::wash_names(pkt, linktype, &w.loc, washer, names) {
            crate::revwash::Names::Unchanged => {}
            crate::revwash::Names::Changed => changed = true,
            crate::revwash::Names::Resized(v) => {
                w.resized = Some(v);
                changed = true;
            }
            crate::revwash::Names::Drop(r) => {
                return match unparsed {
                    Unparsed::Pass => Outcome::Passed(r),
                    Unparsed::Drop => Outcome::Dropped(r),
                }
            }
        }
    }
    Outcome::Written(changed)
}

/// The unit to write when the washed packet changed length
/// ([`Worker::resized`]); a unit whose framing cannot be rebuilt is dropped.
pub(super) fn regrow(
    data: &[u8],
    pkt: Option<Range<usize>>,
    w: &mut Worker,
    o: Outcome,
) -> (Option<Vec<u8>>, Outcome) {
    match (w.resized.take(), pkt) {
        (Some(new), Some(r)) if matches!(o, Outcome::Written(_)) => {
            match crate::revwash::resize_unit(data, r, &new) {
                Some(u) => (Some(u), o),
                None => (None, Outcome::Dropped(crate::revwash::LENGTH)),
            }
        }
        _ => (None, o),
    }
}
