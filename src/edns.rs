//! Client identifiers in EDNS(0) options, and the A and AAAA answer data,
//! of one DNS message (also of Multicast DNS and LLMNR messages, whose
//! Owner option carries MAC addresses).
//!
//! RFC 8932 §5.2.4 names the identifiers that forwarders and CPE devices
//! add to queries as correlation data to minimise. [`scan`] walks a message
//! (as [`crate::dns::find_ecs`] does) and reports
//! - every EDNS option value that may identify a client ([`IdField`]),
//! - the client addresses inside such options and, when asked for, the
//!   RDATA of every A and AAAA record in every section ([`AddrField`]).
//!
//! # Options (fail closed)
//! | code | option | what is washed |
//! |---|---|---|
//! | 10 | DNS Cookie (RFC 7873) | client cookie (8 bytes) and server cookie (8 to 32 bytes), each on its own; another length: the whole value |
//! | 65001 | dnsmasq `--add-mac` (raw MAC) | 6 bytes through the MAC map; another length: the whole value |
//! | 65073 | Nominum/Vantio device id; dnsmasq `--add-mac=base64` and `--add-mac=text` | a MAC as 8 base64 characters or 17 hex characters with `:` through the MAC map, re-encoded alike; anything else: the whole value |
//! | 65074 | Nominum/Vantio CPE id (dnsmasq `--add-cpe-id`) | the whole value |
//! | 20292 | Cisco Umbrella/OpenDNS (`ODNS` magic, dnsmasq `--umbrella`) | organisation, device and asset ids; the client's IPv4 or IPv6 address through the address map; a value that does not parse: the whole value |
//! | 26946 | Cisco Umbrella DeviceID | the whole value |
//! | any other code not listed below | unknown | the whole value |
//!
//! Options copied as they are, known to carry no client identifier: UL (2),
//! NSID (3, the server's identifier), DAU, DHU, N3U (5-7), ECS (8, washed
//! as an address prefix elsewhere), EXPIRE (9), TCP keepalive (11),
//! Padding (12), CHAIN (13), key tag (14), Extended DNS Error (15),
//! Report-Channel (18), ZONEVERSION (19). Everything else, LLQ (1), the
//! Owner option (4, which holds MAC addresses), the EDNS client and server
//! tags (16, 17) and every unassigned or private code included, is washed
//! as an opaque identifier.
//!
//! # The map
//! With `--edns wash` (the default) an opaque value is replaced by
//! [`ipwash_algorithms::bytesperm`] under a key derived from the
//! technique's key (label `ipwash EDNS id 1`) and a tweak naming the option
//! and part, so it keeps its length, equal values stay equal (a client
//! keeps its cookie across the capture) and `wash --reverse` restores it.
//! The unkeyed techniques (`truncate`, `enumerate`) have no key to build a
//! pseudonym from: they zero the value (fail closed; its code and length
//! stay). MACs follow `--mac` and the technique's MAC map, as in the
//! Ethernet header. `--edns keep` copies every option.

use std::sync::Arc;

use ipwash_algorithms::bytesperm::BytesPerm;

use crate::dns::{self, DnsError, EcsField};
use crate::method::{MethodArgs, UsageError};
use crate::wash::{Side, Washer};

/// DNS Cookie (RFC 7873).
pub const COOKIE: u16 = 10;
/// dnsmasq `--add-mac`: the client's MAC address, raw.
pub const DNSMASQ_MAC: u16 = 65001;
/// Nominum (Vantio CacheServe) device id; dnsmasq writes the client's MAC
/// there as text (`--add-mac=base64`, `--add-mac=text`).
pub const NOMINUM_DEVICE: u16 = 65073;
/// Nominum (Vantio CacheServe) CPE id; dnsmasq `--add-cpe-id`.
pub const NOMINUM_CPE: u16 = 65074;
/// Cisco Umbrella / OpenDNS identity (`ODNS` magic).
pub const UMBRELLA: u16 = 20292;
/// Cisco Umbrella DeviceID.
pub const UMBRELLA_DEVICE: u16 = 26946;

/// Option codes copied unchanged (besides ECS, washed as a prefix).
pub const HARMLESS: &[u16] = &[2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 18, 19];

/// `--edns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EdnsMode {
    /// Wash client identifiers in EDNS options (cookies, MAC and device
    /// options, unknown options).
    #[default]
    Wash,
    /// Copy every EDNS option as it is.
    Keep,
}

/// How an identifier is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Opaque bytes: the keyed permutation under this tweak (option code
    /// in the high 16 bits, the part below).
    Opaque(u32),
    /// A raw 6-byte MAC address.
    Mac,
    /// A MAC address as 17 characters `xx:xx:xx:xx:xx:xx`.
    MacHex,
    /// A MAC address as 8 characters of base64 (dnsmasq's encoding, two
    /// groups of three bytes, no padding).
    MacBase64,
}

/// The tweak of part `part` of option `code`.
pub fn tweak(code: u16, part: u16) -> u32 {
    (u32::from(code) << 16) | u32::from(part)
}

/// An identifier inside a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdField {
    /// Offset within the message.
    pub offset: usize,
    /// Bytes present.
    pub len: usize,
    /// How it is rewritten.
    pub kind: IdKind,
}

/// Where an address inside a DNS message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// A or AAAA RDATA (with `--answers`).
    Answer,
    /// The client's address inside an EDNS option (Umbrella).
    Edns,
}

/// An address inside a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrField {
    /// Offset within the message.
    pub offset: usize,
    /// IPv6 (16 bytes) or IPv4 (4).
    pub v6: bool,
    /// Where it is.
    pub kind: AddrKind,
}

impl AddrField {
    /// The DNS role the address is washed as: an EDNS client address is
    /// the client's; answer data belongs to no end of the exchange and is
    /// always rewritten (unless `--keep`).
    pub fn side(&self) -> Side {
        match self.kind {
            AddrKind::Answer => Side::Unknown,
            AddrKind::Edns => Side::Client,
        }
    }
}

/// What [`scan`] found. Reuse it across messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    /// ECS options, exactly as [`dns::find_ecs`] reports them (complete
    /// messages only).
    pub ecs: Vec<EcsField>,
    /// Identifiers.
    pub ids: Vec<IdField>,
    /// Addresses.
    pub addrs: Vec<AddrField>,
}

impl Found {
    /// Forget the previous message.
    pub fn clear(&mut self) {
        self.ecs.clear();
        self.ids.clear();
        self.addrs.clear();
    }

    /// Nothing to rewrite.
    pub fn is_empty(&self) -> bool {
        self.ecs.is_empty() && self.ids.is_empty() && self.addrs.is_empty()
    }
}

fn u16_at(m: &[u8], at: usize) -> Result<u16, DnsError> {
    match m.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError::Truncated(at)),
    }
}

/// Walk the DNS message `m` and report its identifiers and (with
/// `answers`) its A/AAAA RDATA into `out` (cleared first).
///
/// A `complete` message that cannot be walked is an error, in exactly the
/// cases [`dns::find_ecs`] fails. A message cut short (`complete` false:
/// snaplen, ICMP quote) is walked as far as its bytes go; a field cut by
/// the end is reported with the bytes present.
pub fn scan(m: &[u8], complete: bool, answers: bool, out: &mut Found) -> Result<(), DnsError> {
    out.clear();
    match walk(m, complete, answers, out) {
        Err(DnsError::Truncated(_)) if !complete => Ok(()),
        r => r,
    }
}

fn walk(m: &[u8], complete: bool, answers: bool, out: &mut Found) -> Result<(), DnsError> {
    if m.len() < 12 {
        return Err(DnsError::Truncated(m.len()));
    }
    let qd = u16_at(m, 4)? as usize;
    let an = u16_at(m, 6)? as usize;
    let ns = u16_at(m, 8)? as usize;
    let ar = u16_at(m, 10)? as usize;
    let mut at = 12;
    for _ in 0..qd {
        at = dns::skip_name(m, at)? + 4;
        if at > m.len() {
            return Err(DnsError::Truncated(m.len()));
        }
    }
    for i in 0..an + ns + ar {
        at = dns::skip_name(m, at)?;
        let rtype = u16_at(m, at)?;
        let class = u16_at(m, at + 2)?;
        let rdlen = u16_at(m, at + 8)? as usize;
        let rdata = at + 10;
        let end = rdata + rdlen;
        if rtype == 41 && i >= an + ns {
            if complete {
                if end > m.len() {
                    return Err(DnsError::Truncated(m.len()));
                }
                dns::opt_ecs(m, rdata, end, &mut out.ecs)?;
            }
            options(m, rdata, end.min(m.len()), out);
        } else if answers && class & 0x7fff == 1 && rdata < m.len() {
            match (rtype, rdlen) {
                (1, 4) | (28, 16) => out.addrs.push(AddrField {
                    offset: rdata,
                    v6: rtype == 28,
                    kind: AddrKind::Answer,
                }),
                _ => {}
            }
        }
        if end > m.len() {
            return Err(DnsError::Truncated(m.len()));
        }
        at = end;
    }
    Ok(())
}

/// The options of OPT RDATA `m[start..end]` (`end` may cut it).
fn options(m: &[u8], start: usize, end: usize, out: &mut Found) {
    let mut o = start;
    while o + 4 <= end {
        let code = u16::from_be_bytes([m[o], m[o + 1]]);
        let olen = u16::from_be_bytes([m[o + 2], m[o + 3]]) as usize;
        let data = o + 4;
        let full = data + olen;
        option(m, code, data, olen, full.min(end), out);
        o = full;
    }
}

/// One option: `olen` bytes announced at `data`, present up to `avail`.
fn option(m: &[u8], code: u16, data: usize, olen: usize, avail: usize, out: &mut Found) {
    if olen == 0 || data >= avail || HARMLESS.contains(&code) {
        return;
    }
    let whole = avail == data + olen;
    let id = |out: &mut Found, offset: usize, len: usize, kind: IdKind| {
        let len = len.min(avail.saturating_sub(offset));
        if len > 0 {
            out.ids.push(IdField { offset, len, kind });
        }
    };
    let value = &m[data..avail];
    if code == UMBRELLA && whole && umbrella(m, data, avail, out) {
        return;
    }
    match code {
        COOKIE if olen == 8 || (16..=40).contains(&olen) => {
            id(out, data, 8, IdKind::Opaque(tweak(COOKIE, 0)));
            if olen > 8 {
                id(out, data + 8, olen - 8, IdKind::Opaque(tweak(COOKIE, 1)));
            }
        }
        COOKIE => id(out, data, olen, IdKind::Opaque(tweak(COOKIE, 2))),
        DNSMASQ_MAC if olen == 6 && whole => id(out, data, 6, IdKind::Mac),
        NOMINUM_DEVICE if whole && parse_hex_mac(value).is_some() => {
            id(out, data, 17, IdKind::MacHex)
        }
        NOMINUM_DEVICE if whole && decode_b64_mac(value).is_some() => {
            id(out, data, 8, IdKind::MacBase64)
        }
        _ => id(out, data, olen, IdKind::Opaque(tweak(code, 0))),
    }
}

/// The fields of an Umbrella option (`ODNS`, version, flags, then
/// type/value pairs); false (nothing reported) when it does not parse.
fn umbrella(m: &[u8], data: usize, end: usize, out: &mut Found) -> bool {
    let d = &m[data..end];
    if d.len() < 6 || &d[..4] != b"ODNS" {
        return false;
    }
    let (n_ids, n_addrs) = (out.ids.len(), out.addrs.len());
    let mut i = 6;
    let mut ok = true;
    while i < d.len() {
        let t = match d.get(i..i + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => {
                ok = false;
                break;
            }
        };
        i += 2;
        let size = match t {
            0x0004 | 0x0008 | 0x0010 => 4,
            0x0020 => 16,
            0x0040 => 8,
            _ => 0,
        };
        if size == 0 || i + size > d.len() {
            ok = false;
            break;
        }
        match t {
            0x0010 | 0x0020 => out.addrs.push(AddrField {
                offset: data + i,
                v6: t == 0x0020,
                kind: AddrKind::Edns,
            }),
            _ => out.ids.push(IdField {
                offset: data + i,
                len: size,
                kind: IdKind::Opaque(tweak(UMBRELLA, t)),
            }),
        }
        i += size;
    }
    if !ok {
        out.ids.truncate(n_ids);
        out.addrs.truncate(n_addrs);
    }
    ok
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `xx:xx:xx:xx:xx:xx` (either case).
fn parse_hex_mac(t: &[u8]) -> Option<[u8; 6]> {
    if t.len() != 17 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        let p = i * 3;
        if i < 5 && t[p + 2] != b':' {
            return None;
        }
        *b = (hex(t[p])? << 4) | hex(t[p + 1])?;
    }
    Some(m)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn decode_b64_mac(t: &[u8]) -> Option<[u8; 6]> {
    if t.len() != 8 {
        return None;
    }
    let mut v = [0u8; 8];
    for (o, &c) in v.iter_mut().zip(t) {
        *o = B64.iter().position(|&x| x == c)? as u8;
    }
    let mut m = [0u8; 6];
    for g in 0..2 {
        let (a, b, c, d) = (v[4 * g], v[4 * g + 1], v[4 * g + 2], v[4 * g + 3]);
        m[3 * g] = (a << 2) | (b >> 4);
        m[3 * g + 1] = (b << 4) | (c >> 2);
        m[3 * g + 2] = (c << 6) | d;
    }
    // Only the canonical encoding (dnsmasq's) is taken for a MAC.
    (encode_b64_mac(m) == *<&[u8; 8]>::try_from(t).ok()?).then_some(m)
}

fn encode_b64_mac(m: [u8; 6]) -> [u8; 8] {
    let mut o = [0u8; 8];
    for g in 0..2 {
        let (a, b, c) = (m[3 * g], m[3 * g + 1], m[3 * g + 2]);
        o[4 * g] = B64[(a >> 2) as usize];
        o[4 * g + 1] = B64[(((a << 4) | (b >> 4)) & 63) as usize];
        o[4 * g + 2] = B64[(((b << 2) | (c >> 6)) & 63) as usize];
        o[4 * g + 3] = B64[(c & 63) as usize];
    }
    o
}

/// How EDNS identifiers are mapped.
#[derive(Debug, Clone, Default)]
pub enum IdMap {
    /// Copied (`--edns keep`, and the default of a library [`Washer`]).
    #[default]
    Keep,
    /// Zeroed (unkeyed techniques).
    Zero,
    /// The keyed permutation.
    Perm(Arc<BytesPerm>),
    /// Its inverse (`wash --reverse`).
    Unperm(Arc<BytesPerm>),
}

impl IdMap {
    /// The map `--edns mode` gives for the technique `args` names.
    pub fn build(args: &MethodArgs, mode: EdnsMode) -> Result<IdMap, UsageError> {
        if mode == EdnsMode::Keep {
            return Ok(IdMap::Keep);
        }
        let Some(mut key) = crate::mac::key_material(args)? else {
            return Ok(IdMap::Zero);
        };
        let k = zeroize::Zeroizing::new(BytesPerm::derive(&key));
        zeroize::Zeroize::zeroize(&mut key);
        Ok(IdMap::Perm(Arc::new(BytesPerm::new(&k))))
    }

    /// The map that undoes [`IdMap::build`]: zeroed values cannot come
    /// back and are left as they are.
    pub fn build_reverse(args: &MethodArgs, mode: EdnsMode) -> Result<IdMap, UsageError> {
        Ok(match IdMap::build(args, mode)? {
            IdMap::Perm(p) => IdMap::Unperm(p),
            _ => IdMap::Keep,
        })
    }

    /// True when identifiers are rewritten at all.
    pub fn active(&self) -> bool {
        !matches!(self, IdMap::Keep)
    }

    /// Rewrite opaque bytes.
    pub fn apply(&self, tweak: u32, d: &mut [u8]) {
        match self {
            IdMap::Keep => {}
            IdMap::Zero => d.fill(0),
            IdMap::Perm(p) => p.map(tweak, d),
            IdMap::Unperm(p) => p.unmap(tweak, d),
        }
    }
}

/// Rewrite the identifier `b` of kind `kind` in place (a value cut by the
/// capture is rewritten as opaque bytes).
pub fn wash_id(kind: IdKind, b: &mut [u8], washer: &mut Washer) {
    if !washer.ids.active() {
        return;
    }
    let mac_tweak = tweak(0xffff, 0);
    match kind {
        IdKind::Opaque(t) => washer.ids.apply(t, b),
        IdKind::Mac => match <[u8; 6]>::try_from(&*b) {
            Ok(m) => b.copy_from_slice(&washer.mac.map(m)),
            Err(_) => washer.ids.apply(mac_tweak, b),
        },
        IdKind::MacHex => match parse_hex_mac(b) {
            Some(m) => {
                // Upper case when any letter is (so washing back restores it).
                let upper = b.iter().any(|c| c.is_ascii_uppercase());
                let w = washer.mac.map(m);
                for (i, x) in w.iter().enumerate() {
                    for (j, nib) in [x >> 4, x & 15].into_iter().enumerate() {
                        let c = b"0123456789abcdef"[nib as usize];
                        b[i * 3 + j] = if upper { c.to_ascii_uppercase() } else { c };
                    }
                }
            }
            None => washer.ids.apply(mac_tweak, b),
        },
        IdKind::MacBase64 => match decode_b64_mac(b) {
            Some(m) => b.copy_from_slice(&encode_b64_mac(washer.mac.map(m))),
            None => washer.ids.apply(mac_tweak, b),
        },
    }
}

/// Wash one whole DNS message in place: its EDNS identifiers, the client
/// addresses in EDNS options and, with `washer.answers`, its A and AAAA
/// RDATA (ECS is not touched here). For callers holding a whole message
/// (reassembled datagrams and TCP streams, dnstap, C-DNS); the caller
/// fixes any checksum from the bytes that changed. Returns true when a byte
/// changed; an error when the message cannot be walked.
pub fn wash_message(
    m: &mut [u8],
    washer: &mut Washer,
    scratch: &mut Found,
) -> Result<bool, DnsError> {
    scan(m, true, washer.answers, scratch)?;
    let mut changed = false;
    for a in &scratch.addrs {
        changed |= wash_addr(m, a, washer);
    }
    for f in &scratch.ids {
        if let Some(b) = m.get_mut(f.offset..f.offset + f.len) {
            changed |= wash_id_changed(f.kind, b, washer);
        }
    }
    Ok(changed)
}

/// [`wash_id`], telling whether a byte changed.
fn wash_id_changed(kind: IdKind, b: &mut [u8], washer: &mut Washer) -> bool {
    let mut small = [0u8; 64];
    if b.len() <= small.len() {
        small[..b.len()].copy_from_slice(b);
        wash_id(kind, b, washer);
        *b != small[..b.len()]
    } else {
        let old = b.to_vec();
        wash_id(kind, b, washer);
        *b != old[..]
    }
}

/// Map one whole address field of `m` in place; true when it changed.
pub fn wash_addr(m: &mut [u8], a: &AddrField, washer: &mut Washer) -> bool {
    let side = a.side();
    if a.v6 {
        let Some(b) = m.get_mut(a.offset..a.offset + 16) else {
            return false;
        };
        let Ok(v) = <[u8; 16]>::try_from(&*b) else {
            return false;
        };
        let old = u128::from_be_bytes(v);
        let new = washer.wash_v6(old, side);
        b.copy_from_slice(&new.to_be_bytes());
        new != old
    } else {
        let Some(b) = m.get_mut(a.offset..a.offset + 4) else {
            return false;
        };
        let Ok(v) = <[u8; 4]>::try_from(&*b) else {
            return false;
        };
        let old = u32::from_be_bytes(v);
        let new = washer.wash_v4(old, side);
        b.copy_from_slice(&new.to_be_bytes());
        new != old
    }
}

/// The pipeline's hook: rewrite every identifier [`crate::packet::locate`]
/// found in `pkt` (checksums updated). Returns true when a byte changed.
pub fn wash_fields(pkt: &mut [u8], loc: &crate::packet::Located, washer: &mut Washer) -> bool {
    if !washer.ids.active() {
        return false;
    }
    let mut changed = false;
    let mut buf = Vec::new();
    for (i, f) in loc.fields.iter().enumerate() {
        let Some(b) = pkt.get(f.range()) else {
            continue;
        };
        buf.clear();
        buf.extend_from_slice(b);
        wash_id(f.kind, &mut buf, washer);
        if buf[..] != pkt[f.range()] {
            crate::packet::patch_field(pkt, loc, i, &buf);
            changed = true;
        }
    }
    changed
}

/// Wash the identifiers and client addresses of OPT RDATA held on its own
/// (a C-DNS `name-rdata` entry used as OPT RDATA). Returns true when a byte
/// changed.
pub fn wash_opt_rdata(rdata: &mut [u8], washer: &mut Washer, scratch: &mut Found) -> bool {
    scratch.clear();
    options(rdata, 0, rdata.len(), scratch);
    let mut changed = false;
    let found = std::mem::take(scratch);
    for a in &found.addrs {
        changed |= wash_addr(rdata, a, washer);
    }
    for f in &found.ids {
        if let Some(b) = rdata.get_mut(f.offset..f.offset + f.len) {
            changed |= wash_id_changed(f.kind, b, washer);
        }
    }
    *scratch = found;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt_msg(opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        let rdlen: usize = opts.iter().map(|(_, d)| 4 + d.len()).sum();
        m.extend_from_slice(&(rdlen as u16).to_be_bytes());
        for (c, d) in opts {
            m.extend_from_slice(&c.to_be_bytes());
            m.extend_from_slice(&(d.len() as u16).to_be_bytes());
            m.extend_from_slice(d);
        }
        m
    }

    #[test]
    fn cookie_parts_and_unknown_options() {
        let mut srv = [7u8; 24];
        srv[..8].copy_from_slice(&[1; 8]);
        let m = opt_msg(&[(10, &srv), (12, &[0; 4]), (3, b""), (4000, b"abc")]);
        let mut f = Found::default();
        scan(&m, true, false, &mut f).unwrap();
        let kinds: Vec<_> = f.ids.iter().map(|i| (i.len, i.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (8, IdKind::Opaque(tweak(10, 0))),
                (16, IdKind::Opaque(tweak(10, 1))),
                (3, IdKind::Opaque(tweak(4000, 0))),
            ]
        );
        // Cut anywhere: never an error, never a field past the end.
        for cut in 0..m.len() {
            scan(&m[..cut], false, true, &mut f).unwrap();
            assert!(f.ids.iter().all(|i| i.offset + i.len <= cut));
        }
    }

    #[test]
    fn mac_forms() {
        let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
        assert_eq!(parse_hex_mac(b"02:42:AC:11:00:02"), Some(mac));
        let b = encode_b64_mac(mac);
        assert_eq!(decode_b64_mac(&b), Some(mac));
        assert_eq!(&b, b"AkKsEQAC");
        let m = opt_msg(&[(65001, &mac), (65073, b"02:42:ac:11:00:02"), (65073, &b)]);
        let mut f = Found::default();
        scan(&m, true, false, &mut f).unwrap();
        let kinds: Vec<_> = f.ids.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, vec![IdKind::Mac, IdKind::MacHex, IdKind::MacBase64]);
    }

    #[test]
    fn umbrella_fields() {
        let mut d = b"ODNS\x01\x00".to_vec();
        d.extend_from_slice(&[0, 8, 0, 0, 0x30, 0x39]);
        d.extend_from_slice(&[0, 0x10, 192, 0, 2, 7]);
        d.extend_from_slice(&[0, 0x40, 1, 2, 3, 4, 5, 6, 7, 8]);
        let m = opt_msg(&[(20292, &d)]);
        let mut f = Found::default();
        scan(&m, true, false, &mut f).unwrap();
        assert_eq!(f.addrs.len(), 1);
        assert_eq!(
            &m[f.addrs[0].offset..f.addrs[0].offset + 4],
            &[192, 0, 2, 7]
        );
        assert_eq!(f.ids.len(), 2);
        // A field of unknown type: the whole value is opaque.
        d.extend_from_slice(&[0, 0x99, 1]);
        let m = opt_msg(&[(20292, &d)]);
        scan(&m, true, false, &mut f).unwrap();
        assert!(f.addrs.is_empty());
        assert_eq!(f.ids.len(), 1);
        assert_eq!(f.ids[0].len, d.len());
    }
}
