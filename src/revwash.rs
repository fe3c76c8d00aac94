//! Washing reverse names in captured packets (the hook after the address
//! slots are washed), in reassembled fragments, and in capture records that
//! change length.
//!
//! # Rules (fail closed)
//! Every DNS message the walker finds with an `arpa` label, and every DNS
//! message cut by the end of the captured bytes (whose last name may be a
//! reverse name cut before its `arpa` label), is a name site
//! ([`crate::packet::NameSite`]) and is re-encoded by [`crate::dnsenc`] with
//! every reverse name washed ([`crate::revname`]). Then:
//! - the same length: the new bytes are written in place and every covering
//!   checksum is updated incrementally (UDP, TCP, ICMP-quoted, tunnelled);
//! - another length, for a whole UDP message directly over the outermost IP
//!   header: the packet is rebuilt ([`crate::packet::resize_site`]) and the
//!   capture record with it ([`resize_unit`]);
//! - another length in DNS over TCP followed by [`crate::tcpdns`]: the
//!   last segment of the message is re-cut and the stream's sequence
//!   numbers shifted there (its rules);
//! - another length anywhere else (ICMP quotes, tunnels, UDP-Lite, PPPoE,
//!   messages cut by the snapshot length, several messages in one UDP
//!   packet, DNS over TCP walked per segment): dropped,
//!   `reverse_name_length`;
//! - a name cut by the end of the captured bytes whose visible labels could
//!   be a reverse name: dropped, `reverse_name_cut`;
//! - a non-canonical reverse name ([`crate::revname::NameFault`]): dropped,
//!   `reverse_name_noncanonical`;
//! - a message whose names cannot be decoded (a pointer out of range or
//!   looping): dropped, `unparsed_dns`.
//!
//! IP fragments: the reassembled DNS message is handled by
//! [`wash_datagram`]; on a change of length the last fragment grows or
//! shrinks and every other fragment keeps its offset and length
//! (`crate::defrag`), or the datagram is dropped (`reverse_name_length`)
//! when that does not fit.

use crate::dnsenc::{self, EncError};
use crate::packet::{self, Located};
use crate::revname::{self, NameStats};
use crate::wash::Washer;

/// A reverse name would change the length of a message that cannot grow.
pub const LENGTH: &str = "reverse_name_length";
/// A possible reverse name cut by the end of the captured bytes.
pub const CUT: &str = "reverse_name_cut";
/// A non-canonical reverse name.
pub const NONCANONICAL: &str = "reverse_name_noncanonical";
/// The names of the message cannot be decoded.
pub const UNPARSED: &str = "unparsed_dns";

/// Every drop reason of this module.
pub const REASONS: &[&str] = &[LENGTH, CUT, NONCANONICAL];

/// Rewrite the reverse names of one complete DNS message (no TCP length
/// prefix). Ok(None) when nothing changed; otherwise the new message,
/// possibly of another length (for DNS over TCP the caller sets the
/// length prefix and shifts the stream).
pub fn rewrite_message(
    msg: &[u8],
    washer: &mut Washer,
    stats: &mut NameStats,
) -> Result<Option<Vec<u8>>, EncError> {
    rewrite(msg, true, washer, stats)
}

fn rewrite(
    msg: &[u8],
    complete: bool,
    washer: &mut Washer,
    stats: &mut NameStats,
) -> Result<Option<Vec<u8>>, EncError> {
    // A whole message without an `arpa` label holds no reverse name; a cut
    // one may end inside a reverse name before its `arpa` label, which only
    // the walk in `dnsenc::rewrite` can tell.
    if complete && !dnsenc::may_hold_reverse(msg) {
        return Ok(None);
    }
    let mut map = |w: &[u8]| revname::wash_wire(w, washer);
    dnsenc::rewrite(msg, complete, &mut map, stats)
}

/// The drop reason for an error.
pub fn reason(e: EncError) -> &'static str {
    match e {
        EncError::Cut => CUT,
        EncError::Name(_) => NONCANONICAL,
        EncError::Dns(_) => UNPARSED,
        _ => LENGTH,
    }
}

/// What [`wash_names`] did to a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Nothing changed.
    Unchanged,
    /// Rewritten in place.
    Changed,
    /// The packet is now these bytes (another length).
    Resized(Vec<u8>),
    /// Drop the packet for this reason.
    Drop(&'static str),
}

/// Wash the reverse names of every name site of `loc` in `pkt`.
pub fn wash_names(
    pkt: &mut [u8],
    linktype: u32,
    loc: &Located,
    washer: &mut Washer,
    stats: &mut NameStats,
) -> Names {
    let mut out = Names::Unchanged;
    for (i, s) in loc.names.iter().enumerate() {
        let Some(msg) = pkt.get(s.start..s.end) else {
            continue;
        };
        let new = match rewrite(msg, s.complete, washer, stats) {
            Ok(None) => continue,
            Ok(Some(n)) => n,
            Err(e) => return Names::Drop(reason(e)),
        };
        if new.len() == msg.len() {
            packet::patch_site(pkt, loc, i, s.start, &new);
            out = Names::Changed;
            continue;
        }
        if loc.names.len() != 1 {
            return Names::Drop(LENGTH);
        }
        return match packet::resize_site(pkt, linktype, loc, i, &new) {
            Ok(v) => Names::Resized(v),
            Err(_) => Names::Drop(LENGTH),
        };
    }
    out
}

/// What [`wash_datagram`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// Rewritten in place (or unchanged): the checksum delta.
    Same(u32),
    /// The new message, of another length (nothing written).
    Resized(Vec<u8>),
}

/// Wash the reverse names of the DNS message `d[u + 8..m1]` of a
/// reassembled datagram whose UDP header is at `u` (checksum coverage ends
/// at `cov`). Same length: each changed byte is written and passed to
/// `write` (datagram offset, byte), and the returned checksum delta covers
/// them (parity relative to `u`). Err: the drop reason.
pub fn wash_datagram(
    d: &mut [u8],
    u: usize,
    m1: usize,
    cov: usize,
    washer: &mut Washer,
    stats: &mut NameStats,
    mut write: impl FnMut(usize, u8),
) -> Result<Datagram, &'static str> {
    let m0 = u + 8;
    let Some(msg) = d.get(m0..m1) else {
        return Ok(Datagram::Same(0));
    };
    let new = match rewrite(msg, true, washer, stats) {
        Ok(None) => return Ok(Datagram::Same(0)),
        Ok(Some(n)) => n,
        Err(e) => return Err(reason(e)),
    };
    if new.len() != msg.len() {
        return Ok(Datagram::Resized(new));
    }
    let mut delta = 0u32;
    for (i, &nb) in new.iter().enumerate() {
        let k = m0 + i;
        let o = d[k];
        if o == nb {
            continue;
        }
        if k < cov {
            let shift = if (k - u) % 2 == 0 { 8 } else { 0 };
            delta += (0xffff - ((o as u32) << shift)) + ((nb as u32) << shift);
            while delta > 0xffff_0000 {
                delta = (delta & 0xffff) + (delta >> 16);
            }
        }
        d[k] = nb;
        write(k, nb);
    }
    Ok(Datagram::Same(delta))
}

/// Wash the reverse names in a stored name or RDATA (C-DNS `name-rdata`:
/// names uncompressed) that holds an `arpa` label. `rtype`: the RR type
/// when the entry is known to be RDATA of one type. An entry that is a
/// whole name is washed as a name; RDATA of a type holding names has each
/// name washed; RDATA of a known type without names is left (as
/// [`crate::dnsenc`] copies it in messages). Err: fail closed (a
/// non-canonical name, RDATA of a name type that does not parse, or an
/// entry that is not a whole name and whose type is not known: it may be
/// RDATA with a reverse name inside).
pub fn wash_stored(
    entry: &[u8],
    rtype: Option<u64>,
    washer: &mut Washer,
    stats: &mut NameStats,
) -> Result<Option<Vec<u8>>, revname::NameFault> {
    let mut one = |w: &[u8], stats: &mut NameStats| {
        let (found, new) = revname::wash_wire(w, washer)?;
        stats.found += u64::from(found);
        stats.washed += u64::from(new.is_some());
        Ok::<_, revname::NameFault>(new)
    };
    if revname::wire_labels(entry).is_some() {
        return one(entry, stats);
    }
    let bad = revname::NameFault::NonCanonical;
    let t = rtype.and_then(|t| u16::try_from(t).ok()).ok_or(bad)?;
    let Some((fixed, names, rest)) = dnsenc::rdata_shape(t) else {
        return Ok(None);
    };
    let mut out = entry.get(..fixed).ok_or(bad)?.to_vec();
    let mut at = fixed;
    let mut changed = false;
    for _ in 0..names {
        let len = name_len(entry.get(at..).ok_or(bad)?).ok_or(bad)?;
        let w = &entry[at..at + len];
        match one(w, stats)? {
            Some(n) => {
                out.extend_from_slice(&n);
                changed = true;
            }
            None => out.extend_from_slice(w),
        }
        at += len;
    }
    if at != entry.len() && !rest {
        return Err(bad);
    }
    out.extend_from_slice(&entry[at..]);
    Ok(changed.then_some(out))
}

/// Length of the uncompressed wire name at the start of `b`.
fn name_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let l = *b.get(at)? as usize;
        if l == 0 {
            return Some(at + 1);
        }
        if l > 63 || at > 255 {
            return None;
        }
        at += 1 + l;
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn put32(v: &mut [u8], at: usize, x: u32, big: bool) {
    let b = if big {
        x.to_be_bytes()
    } else {
        x.to_le_bytes()
    };
    v[at..at + 4].copy_from_slice(&b);
}

/// The capture unit `unit` (a pcap record or a pcapng packet block, as the
/// reader frames it) whose packet `unit[pkt]` is replaced by `new`: caplen
/// and origlen grow or shrink by the change, pcapng padding and block
/// lengths follow, options are copied. None when the unit's framing cannot
/// be told (the caller drops the packet).
pub fn resize_unit(unit: &[u8], pkt: std::ops::Range<usize>, new: &[u8]) -> Option<Vec<u8>> {
    let caplen = pkt.len();
    let grow = |v: u32| (u64::from(v) + new.len() as u64).checked_sub(caplen as u64);
    // pcapng: a block whose type and two lengths agree in one byte order.
    for big in [false, true] {
        let (Some(ty), Some(total)) = (u32_at(unit, 0, big), u32_at(unit, 4, big)) else {
            break;
        };
        if total as usize != unit.len() || u32_at(unit, unit.len() - 4, big) != Some(total) {
            continue;
        }
        let (cap_at, orig_at) = match ty {
            // EPB, obsolete packet block: caplen and origlen at 20 and 24.
            6 | 2 if pkt.start == 28 => (Some(20), 24),
            // Simple packet block: origlen only.
            3 if pkt.start == 12 => (None, 8),
            _ => continue,
        };
        let pad_old = caplen.div_ceil(4) * 4;
        let opts = unit.get(pkt.start + pad_old..unit.len() - 4)?;
        let pad_new = new.len().div_ceil(4) * 4;
        let mut v = Vec::with_capacity(pkt.start + pad_new + opts.len() + 4);
        v.extend_from_slice(&unit[..pkt.start]);
        v.extend_from_slice(new);
        v.resize(pkt.start + pad_new, 0);
        v.extend_from_slice(opts);
        v.extend_from_slice(&[0; 4]);
        let total = u32::try_from(v.len()).ok()?;
        put32(&mut v, 4, total, big);
        let n = v.len();
        put32(&mut v, n - 4, total, big);
        if let Some(c) = cap_at {
            if u32_at(unit, c, big)? as usize != caplen {
                return None;
            }
            put32(&mut v, c, u32::try_from(new.len()).ok()?, big);
        }
        let orig = u32::try_from(grow(u32_at(unit, orig_at, big)?)?).ok()?;
        put32(&mut v, orig_at, orig, big);
        return Some(v);
    }
    // Classic pcap: a 16- or 24-byte record header whose caplen is the
    // packet's length in exactly one byte order.
    if pkt.start != 16 && pkt.start != 24 || pkt.end != unit.len() {
        return None;
    }
    let le = u32_at(unit, 8, false)? as usize == caplen;
    let be = u32_at(unit, 8, true)? as usize == caplen;
    if le == be {
        return None;
    }
    let big = be;
    let mut v = Vec::with_capacity(pkt.start + new.len());
    v.extend_from_slice(&unit[..pkt.start]);
    v.extend_from_slice(new);
    put32(&mut v, 8, u32::try_from(new.len()).ok()?, big);
    let orig = u32::try_from(grow(u32_at(unit, 12, big)?)?).ok()?;
    put32(&mut v, 12, orig, big);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_record_grows() {
        let mut unit = vec![0u8; 16];
        unit[8..12].copy_from_slice(&5u32.to_le_bytes());
        unit[12..16].copy_from_slice(&9u32.to_le_bytes());
        unit.extend_from_slice(b"abcde");
        let v = resize_unit(&unit, 16..21, b"abcdefg").unwrap();
        assert_eq!(&v[8..12], &7u32.to_le_bytes());
        assert_eq!(&v[12..16], &11u32.to_le_bytes());
        assert_eq!(&v[16..], b"abcdefg");
    }

    #[test]
    fn pcapng_block_grows_with_padding_and_options() {
        for big in [false, true] {
            let p = |x: u32| {
                if big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            };
            let mut b = Vec::new();
            b.extend_from_slice(&p(6));
            b.extend_from_slice(&p(0));
            b.extend_from_slice(&p(0));
            b.extend_from_slice(&p(1));
            b.extend_from_slice(&p(2));
            b.extend_from_slice(&p(5));
            b.extend_from_slice(&p(5));
            b.extend_from_slice(b"abcde\0\0\0");
            b.extend_from_slice(&[1, 2, 3, 4]);
            b.extend_from_slice(&p(0));
            let n = b.len() as u32;
            b[4..8].copy_from_slice(&p(n));
            let l = b.len();
            b[l - 4..].copy_from_slice(&p(n));
            let v = resize_unit(&b, 28..33, b"abcdefghi").unwrap();
            assert_eq!(v.len(), 28 + 12 + 4 + 4);
            assert_eq!(&v[4..8], &p(v.len() as u32));
            assert_eq!(&v[v.len() - 4..], &p(v.len() as u32));
            assert_eq!(&v[20..24], &p(9));
            assert_eq!(&v[24..28], &p(9));
            assert_eq!(&v[28..40], b"abcdefghi\0\0\0");
            assert_eq!(&v[40..44], &[1, 2, 3, 4]);
        }
    }
}
