//! Reading client queries out of a C-DNS file, for the DNSBLOOM sink.
//!
//! `ipwash bloom build` needs, for every query a client sent, the time, the
//! client address, the query name and type. [`for_each_query`] streams them
//! out of a C-DNS file one block at a time (the same framing and strict CBOR
//! walk as the washer, so memory is bounded by the largest block).
//!
//! For each `QueryResponse` item, in file order:
//! - its Q/R signature (`qr-signature-index`) must say a query is present
//!   (`qr-sig-flags` bit 0) with a question (bit 4 clear), and the
//!   signature's `query-classtype-index` must name a class/type entry of
//!   class IN (1); the type is the QTYPE;
//! - the client is the `ip-address` entry named by `client-address-index`.
//!   The family comes from the signature's `qr-transport-flags` bit 0
//!   (1 = IPv6), or, without flags, from the entry's length (which must fit
//!   one family only, given the stored prefix lengths). An entry stored as a
//!   prefix (StorageParameters `client-address-prefix-ipv4/ipv6`) is
//!   zero-extended to a full address, bits past the prefix cleared;
//! - the name is the `name-rdata` entry named by `query-name-index`, a wire
//!   name (uncompressed labels), turned into the text form the Bloom module
//!   uses for pcap input (see [`normalise_qname`]);
//! - the time, in UNIX seconds, is the block preamble's `earliest-time`
//!   (`[seconds, ticks]`) plus the item's `time-offset` (ticks), with the
//!   block parameters' `ticks-per-second` (RFC 8618 §7.3.1.1.1, §7.3.2.1,
//!   §7.3.2.5). A block without `earliest-time` counts from 0; an item
//!   without `time-offset` has offset 0.
//!
//! Items missing any of these (or whose indices point past their table, or
//! whose name or address cannot be decoded) are skipped: they are not
//! client queries this reader can report. Table indices are 0-based, as in
//! the washer. Errors name the block and the byte offset in the
//! (decompressed) input, like the washer's.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minicbor::data::Type;
use minicbor::decode::Decoder;

use super::cbor::{bstr, key, uint, uint_map, Bad, Bstr, PResult, Seq, Walker};
use super::preamble::{self, Params};
use super::{
    block_array_head, check_end, next_block, preamble_error, preamble_len, read_type_id, CdnsError,
    Input,
};
use crate::bloom::question::push_label_byte;

/// `qr-sig-flags` bit: the item has a query.
const HAS_QUERY: u64 = 1;
/// `qr-sig-flags` bit: the query has no question section.
const QUERY_NO_QUESTION: u64 = 1 << 4;
/// QCLASS IN.
const CLASS_IN: u64 = 1;
/// Longest wire name (RFC 1035 §3.1).
const MAX_NAME_WIRE: usize = 255;

/// Call `f(ts_sec, client, qname, qtype)` for every client query in a C-DNS
/// stream (RFC 8618), in file order; see the module documentation for what
/// counts as a query and how each value is found.
///
/// `qname` is lower-case dotted text without a trailing dot (`""` for the
/// root), every byte that is not printable ASCII written as `\DDD` and a
/// literal `.` or `\` in a label as `\.` or `\\`.
///
/// Returns the number of queries delivered. When `f` returns `Err(msg)`,
/// reading stops with [`CdnsError::Stopped`]. A damaged file ends with the
/// same errors as [`wash_cdns`](super::wash_cdns) (queries of the blocks
/// before the damaged one have been delivered).
pub fn for_each_query<R: Read>(
    input: R,
    mut f: impl FnMut(u64, IpAddr, &str, u16) -> Result<(), String>,
) -> Result<u64, CdnsError> {
    let mut inp = Input::new(input);
    let (_, outer_indef) = read_type_id(&mut inp)?;
    let pre_at = inp.offset();
    let len = preamble_len(&mut inp)?;
    let params = preamble::read(&inp.buf[inp.at..inp.at + len])
        .map_err(|e| preamble_error(e, pre_at, ""))?;
    inp.consume(len);
    let mut left = block_array_head(&mut inp)?;

    let mut qb = QueryBlock::default();
    let mut block = 0u64;
    let mut delivered = 0u64;
    loop {
        let at = inp.offset();
        let Some(len) = next_block(&mut inp, &mut left, block)? else {
            break;
        };
        let buf = &inp.buf[inp.at..inp.at + len];
        match qb.read(buf, &params, &mut f) {
            Ok(n) => delivered += n,
            Err(BlockErr::Bad(b)) => {
                return Err(CdnsError::Corrupt {
                    block,
                    offset: at + b.at as u64,
                    msg: b.msg,
                })
            }
            Err(BlockErr::Stop(msg)) => {
                return Err(CdnsError::Stopped {
                    block,
                    offset: at,
                    msg,
                })
            }
        }
        inp.consume(len);
        block += 1;
    }
    check_end(&mut inp, outer_indef, block)?;
    Ok(delivered)
}

/// Turn a wire-format domain name (uncompressed labels ending in the root
/// label) into the canonical text form of the Bloom module: ASCII letters
/// lower-cased, no trailing dot, the root as `""`, other non-printable bytes
/// as `\DDD`, `.` and `\` inside a label as `\.` and `\\`.
///
/// `None` for a name that is not a plain wire name: a compression pointer or
/// reserved label type, a label running past the end, bytes after the root
/// label, or more than 255 octets. A name whose final root label is missing
/// (ends right after a label) is accepted.
pub fn normalise_qname(wire: &[u8]) -> Option<String> {
    let mut s = String::new();
    wire_name_text(wire, &mut s).then_some(s)
}

/// [`normalise_qname`] into a reused buffer; false when the name is bad.
fn wire_name_text(wire: &[u8], out: &mut String) -> bool {
    out.clear();
    if wire.len() > MAX_NAME_WIRE {
        return false;
    }
    let mut at = 0usize;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            return at + 1 == wire.len();
        }
        if len & 0xc0 != 0 {
            return false;
        }
        let Some(label) = wire.get(at + 1..at + 1 + usize::from(len)) else {
            return false;
        };
        if at > 0 {
            out.push('.');
        }
        for &b in label {
            push_label_byte(out, b);
        }
        at += 1 + usize::from(len);
    }
    true
}

enum BlockErr {
    Bad(Bad),
    Stop(String),
}

impl From<Bad> for BlockErr {
    fn from(b: Bad) -> Self {
        BlockErr::Bad(b)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sig {
    transport: Option<u64>,
    flags: Option<u64>,
    classtype: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Item {
    /// Ticks from the block's earliest time.
    offset: i128,
    client: Option<u64>,
    sig: Option<u64>,
    name: Option<u64>,
}

/// Per-block state, reused from block to block.
#[derive(Debug, Default)]
struct QueryBlock {
    w: Walker,
    params_index: u64,
    /// `earliest-time` as (seconds, ticks).
    earliest: Option<(u64, u64)>,
    addrs: Vec<Option<Bstr>>,
    /// (type, class) of each class/type entry.
    classtypes: Vec<(Option<u64>, Option<u64>)>,
    names: Vec<Option<Bstr>>,
    sigs: Vec<Sig>,
    items: Vec<Item>,
    name: String,
}

fn get<T: Copy>(v: &[T], i: Option<u64>) -> Option<T> {
    v.get(usize::try_from(i?).ok()?).copied()
}

impl QueryBlock {
    fn reset(&mut self) {
        self.params_index = 0;
        self.earliest = None;
        self.addrs.clear();
        self.classtypes.clear();
        self.names.clear();
        self.sigs.clear();
        self.items.clear();
    }

    /// Parse the block in `buf` and deliver its queries; return how many.
    fn read(
        &mut self,
        buf: &[u8],
        params: &[Params],
        f: &mut impl FnMut(u64, IpAddr, &str, u16) -> Result<(), String>,
    ) -> Result<u64, BlockErr> {
        self.reset();
        self.parse(buf)?;
        let p = params
            .get(usize::try_from(self.params_index).unwrap_or(usize::MAX))
            .copied()
            .ok_or_else(|| {
                Bad::new(
                    0,
                    format!("block-parameters-index {} out of range", self.params_index),
                )
            })?;
        let (secs, ticks) = self.earliest.unwrap_or((0, 0));
        let mut delivered = 0;
        for i in 0..self.items.len() {
            let it = self.items[i];
            let Some(sig) = get(&self.sigs, it.sig) else {
                continue;
            };
            let Some(flags) = sig.flags else { continue };
            if flags & HAS_QUERY == 0 || flags & QUERY_NO_QUESTION != 0 {
                continue;
            }
            let Some((Some(qtype), Some(CLASS_IN))) = get(&self.classtypes, sig.classtype) else {
                continue;
            };
            let Ok(qtype) = u16::try_from(qtype) else {
                continue;
            };
            let Some(Some(addr)) = get(&self.addrs, it.client) else {
                continue;
            };
            let Some(client) = client_addr(
                buf.get(addr.range()).unwrap_or_default(),
                sig.transport.map(|t| t & 1 != 0),
                &p,
            ) else {
                continue;
            };
            let Some(Some(name)) = get(&self.names, it.name) else {
                continue;
            };
            if !wire_name_text(buf.get(name.range()).unwrap_or_default(), &mut self.name) {
                continue;
            }
            let tps = match p.ticks_per_second {
                Some(t) if t > 0 => t,
                _ => {
                    return Err(Bad::new(
                        0,
                        format!(
                            "block parameters {} have no usable ticks-per-second",
                            self.params_index
                        ),
                    )
                    .into())
                }
            };
            let total = i128::from(ticks) + it.offset;
            let ts = i128::from(secs) + total.div_euclid(i128::from(tps));
            let ts = u64::try_from(ts.max(0)).unwrap_or(u64::MAX);
            f(ts, client, &self.name, qtype).map_err(BlockErr::Stop)?;
            delivered += 1;
        }
        Ok(delivered)
    }

    fn parse(&mut self, buf: &[u8]) -> PResult<()> {
        let mut d = Decoder::new(buf);
        let mut m = Seq::map(&mut d)?;
        while m.next(&mut d)? {
            match key(&mut d, &mut self.w)? {
                Some(0) => self.block_preamble(&mut d)?,
                Some(2) => self.tables(&mut d)?,
                Some(3) => self.query_responses(&mut d)?,
                _ => self.w.skip(&mut d)?,
            }
        }
        if d.position() != buf.len() {
            return Err(Bad::new(d.position(), "data after the block map"));
        }
        Ok(())
    }

    fn block_preamble(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut m = Seq::map(d)?;
        while m.next(d)? {
            match key(d, &mut self.w)? {
                Some(0) => {
                    let pos = d.position();
                    let mut a = Seq::array(d)?;
                    let mut v = [0u64; 2];
                    let mut n = 0usize;
                    while a.next(d)? {
                        let u = uint(d, "earliest-time")?.value;
                        if let Some(slot) = v.get_mut(n) {
                            *slot = u;
                        }
                        n += 1;
                    }
                    if n != 2 {
                        return Err(Bad::new(pos, "earliest-time is not [seconds, ticks]"));
                    }
                    self.earliest = Some((v[0], v[1]));
                }
                Some(1) => self.params_index = uint(d, "block-parameters-index")?.value,
                _ => self.w.skip(d)?,
            }
        }
        Ok(())
    }

    fn tables(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut m = Seq::map(d)?;
        while m.next(d)? {
            match key(d, &mut self.w)? {
                Some(0) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let b = bstr(d, &mut self.w)?;
                        self.addrs.push(b);
                    }
                }
                Some(1) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let (mut t, mut c) = (None, None);
                        uint_map(
                            d,
                            &mut self.w,
                            &[(0, "classtype type"), (1, "classtype class")],
                            |k, u| match k {
                                0 => t = Some(u.value),
                                _ => c = Some(u.value),
                            },
                        )?;
                        self.classtypes.push((t, c));
                    }
                }
                Some(2) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let b = bstr(d, &mut self.w)?;
                        self.names.push(b);
                    }
                }
                Some(3) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let mut s = Sig::default();
                        uint_map(
                            d,
                            &mut self.w,
                            &[
                                (2, "qr-transport-flags"),
                                (4, "qr-sig-flags"),
                                (8, "query-classtype-index"),
                            ],
                            |k, u| match k {
                                2 => s.transport = Some(u.value),
                                4 => s.flags = Some(u.value),
                                _ => s.classtype = Some(u.value),
                            },
                        )?;
                        self.sigs.push(s);
                    }
                }
                _ => self.w.skip(d)?,
            }
        }
        Ok(())
    }

    fn query_responses(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut a = Seq::array(d)?;
        while a.next(d)? {
            let mut it = Item::default();
            let mut m = Seq::map(d)?;
            while m.next(d)? {
                match key(d, &mut self.w)? {
                    Some(0) => it.offset = time_offset(d)?,
                    Some(1) => it.client = Some(uint(d, "client-address-index")?.value),
                    Some(4) => it.sig = Some(uint(d, "qr-signature-index")?.value),
                    Some(7) => it.name = Some(uint(d, "query-name-index")?.value),
                    _ => self.w.skip(d)?,
                }
            }
            self.items.push(it);
        }
        Ok(())
    }
}

/// `time-offset` is an unsigned tick count in RFC 8618; a negative integer
/// is accepted too (earlier drafts and some writers use a signed type).
fn time_offset(d: &mut Decoder<'_>) -> PResult<i128> {
    let pos = d.position();
    match d.datatype()? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(i128::from(d.u64()?)),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => Ok(i128::from(d.int()?)),
        _ => Err(Bad::new(pos, "time-offset is not an integer")),
    }
}

/// The client address stored in `b`: family from the transport flags when
/// known, else from the length; a stored prefix is zero-extended.
fn client_addr(b: &[u8], v6: Option<bool>, p: &Params) -> Option<IpAddr> {
    let bits4 = p.prefix[0].unwrap_or(32).min(32);
    let bits6 = p.prefix[1].unwrap_or(128).min(128);
    let len4 = usize::from(bits4).div_ceil(8);
    let len6 = usize::from(bits6).div_ceil(8);
    let v6 = match v6 {
        Some(f) => f,
        None => match (b.len() == len4, b.len() == len6) {
            (true, false) => false,
            (false, true) => true,
            _ => return None,
        },
    };
    if v6 {
        let mut a = [0u8; 16];
        a.get_mut(..b.len())?.copy_from_slice(b);
        mask(&mut a, bits6);
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        let mut a = [0u8; 4];
        a.get_mut(..b.len())?.copy_from_slice(b);
        mask(&mut a, bits4);
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    }
}

/// Clear every bit past the first `bits`.
fn mask(a: &mut [u8], bits: u8) {
    for (i, byte) in a.iter_mut().enumerate() {
        let start = i * 8;
        let keep = usize::from(bits).saturating_sub(start).min(8);
        *byte &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalise_qname(b"\0").as_deref(), Some(""));
        assert_eq!(normalise_qname(b"").as_deref(), Some(""));
        assert_eq!(
            normalise_qname(b"\x03WwW\x07Example\x03COM\0").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            normalise_qname(b"\x03www\x07example").as_deref(),
            Some("www.example")
        );
        assert_eq!(
            normalise_qname(b"\x04a.b\\\x02\x00\xff\0").as_deref(),
            Some("a\\.b\\\\.\\000\\255")
        );
        assert_eq!(normalise_qname(b"\x03www\xc0\x0c"), None);
        assert_eq!(normalise_qname(b"\x05www\0"), None);
        assert_eq!(normalise_qname(b"\x03www\0\0"), None);
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(normalise_qname(&long), None);
    }

    #[test]
    fn addresses() {
        let full = Params::default();
        assert_eq!(
            client_addr(&[192, 0, 2, 1], None, &full),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(client_addr(&[192, 0, 2], None, &full), None);
        assert_eq!(client_addr(&[0; 17], Some(true), &full), None);
        let p = Params {
            prefix: [Some(20), Some(40), None, None],
            ticks_per_second: None,
        };
        // 3 bytes = IPv4 /20 (bits past 20 cleared), 5 bytes = IPv6 /40.
        assert_eq!(
            client_addr(&[10, 1, 0xff], None, &p),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0xf0, 0)))
        );
        assert_eq!(
            client_addr(&[0x20, 0x01, 0x0d, 0xb8, 0xff], None, &p),
            Some(IpAddr::V6("2001:db8:ff00::".parse().unwrap()))
        );
        // Flags win over length.
        assert_eq!(
            client_addr(&[10, 1, 0xff], Some(true), &p),
            Some(IpAddr::V6("a01:ff00::".parse().unwrap()))
        );
    }
}
