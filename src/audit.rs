//! `ipwash audit ORIGINAL WASHED`: prove that no address of the original
//! survives in the washed file.
//!
//! The audit collects every identifier of the original capture: every
//! address field the packet walker rewrites, plus the ones it leaves alone
//! (A and AAAA answer data, DHCP address fields and options) and every
//! unicast MAC address (Ethernet, Linux cooked headers, ARP, ICMPv6
//! neighbour discovery options, DHCP `chaddr`). It then searches the
//! washed file's bytes, packets and metadata alike, for each of them in
//! every form it could take:
//!
//! - IPv4: the 4 raw bytes (which also finds one inside a MAC address such
//!   as Docker's `02:42:a.b.c.d`), dotted text, the reverse name
//!   (`d.c.b.a.in-addr.arpa`) as text and as DNS wire labels;
//! - IPv6: the 16 raw bytes, compressed text in lower and upper case, the
//!   `ip6.arpa` nibble name as text and as wire labels;
//! - MAC: the 6 raw bytes, `aa:bb:..` and `aa-bb-..` text in both cases, and
//!   the modified EUI-64 interface identifier an IPv6 address built from
//!   it carries.
//!
//! Each survivor is reported with the frame number (as tshark counts),
//! its offset in the packet (or in the metadata block) and the layer it
//! sits in, followed by a summary by layer. The run exits with 1 when
//! anything survives. `--addresses FILE` searches for a given list of
//! addresses and MAC addresses instead of collecting them.
//!
//! The search is a single Aho-Corasick pass per record over every form of
//! every identifier, so it is linear in the washed file whatever the number
//! of addresses; text forms only count when they are not part of a longer
//! number or address.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;

use crate::capture::{self, CaptureReader, FileKind, ReaderOptions};
use crate::error::CliError;
use crate::packet::{self, Located, Origin};

/// `ipwash audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// ORIGINAL WASHED, or only WASHED with `--addresses`. pcap or pcapng,
    /// plain, gzip or xz; a washed C-DNS file is searched as a whole.
    #[arg(value_name = "FILE", num_args = 1..=2, required = true)]
    pub files: Vec<PathBuf>,
    /// Search for the addresses (IPv4, IPv6 or MAC, one per line; `#`
    /// starts a comment) in FILE instead of collecting them from an
    /// original capture.
    #[arg(long, value_name = "FILE")]
    pub addresses: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Survivors listed at most (the summary counts all of them).
    #[arg(long, default_value_t = 1000)]
    pub max_listed: usize,
}

/// An identifier to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ident {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A MAC address.
    Mac([u8; 6]),
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ident::Ip(a) => write!(f, "{a}"),
            Ident::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// Where in a record bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// pcapng blocks other than the packet bytes (options, other blocks).
    Metadata,
    /// Link-layer headers (Ethernet, VLAN, Linux cooked, null).
    Link,
    /// ARP.
    Arp,
    /// IP headers and IPv6 extension headers.
    Ip,
    /// UDP and TCP headers.
    Transport,
    /// ICMP and ICMPv6 headers and neighbour discovery.
    Icmp,
    /// DNS messages (names, questions, other records).
    Dns,
    /// A and AAAA record data.
    DnsAnswer,
    /// The EDNS(0) OPT record data.
    Edns,
    /// DHCP (BOOTP) messages.
    Dhcp,
    /// Any other payload.
    Payload,
    /// A C-DNS file (searched as a whole).
    Cdns,
    /// A dnstap file (searched as a whole).
    Dnstap,
}

impl Layer {
    /// The name printed.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Metadata => "pcapng-metadata",
            Layer::Link => "link",
            Layer::Arp => "arp",
            Layer::Ip => "ip",
            Layer::Transport => "transport",
            Layer::Icmp => "icmp",
            Layer::Dns => "dns",
            Layer::DnsAnswer => "dns-answer",
            Layer::Edns => "edns",
            Layer::Dhcp => "dhcp",
            Layer::Payload => "payload",
            Layer::Cdns => "cdns",
            Layer::Dnstap => "dnstap",
        }
    }
}

/// The forms an identifier is searched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// Raw bytes (4, 16 or 6).
    Raw,
    /// Text (dotted, compressed IPv6, MAC with `:` or `-`, either case).
    Text,
    /// Reverse name (`in-addr.arpa`, `ip6.arpa`) as text or wire labels.
    Reverse,
    /// The modified EUI-64 interface identifier derived from a MAC.
    Eui64,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::Text => "text",
            Form::Reverse => "reverse-name",
            Form::Eui64 => "eui-64",
        }
    }
}

/// One place where an identifier survives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    /// 1-based packet number; for metadata, the number of the last packet
    /// before it (0 before the first).
    pub frame: u64,
    /// Offset in the packet bytes, or in the metadata block.
    pub offset: usize,
    /// Layer it sits in.
    pub layer: Layer,
    /// Form it was found in.
    pub form: Form,
    /// What was found.
    pub ident: Ident,
}

/// The result of an audit.
#[derive(Debug, Default)]
pub struct Report {
    /// Identifiers searched for.
    pub searched: usize,
    /// Every occurrence found, in file order.
    pub survivors: Vec<Survivor>,
}

impl Report {
    /// Distinct identifiers found at least once.
    pub fn surviving(&self) -> BTreeSet<Ident> {
        self.survivors.iter().map(|s| s.ident).collect()
    }

    /// Occurrences and distinct identifiers per layer.
    pub fn by_layer(&self) -> BTreeMap<&'static str, (u64, usize)> {
        let mut m: BTreeMap<&'static str, (u64, BTreeSet<Ident>)> = BTreeMap::new();
        for s in &self.survivors {
            let e = m.entry(s.layer.name()).or_default();
            e.0 += 1;
            e.1.insert(s.ident);
        }
        m.into_iter().map(|(k, (n, d))| (k, (n, d.len()))).collect()
    }
}

// ------------------------------------------------------------ dissection

/// What a light dissection of one packet finds: byte regions by layer
/// (outer before inner; the last region containing an offset is the most
/// specific) and the identifiers in them.
#[derive(Debug, Default)]
pub struct Dissection {
    /// (range, layer).
    pub regions: Vec<(Range<usize>, Layer)>,
    /// Identifiers found.
    pub idents: Vec<Ident>,
}

impl Dissection {
    /// The layer of the byte at `at`.
    pub fn layer_at(&self, at: usize) -> Layer {
        self.regions
            .iter()
            .rev()
            .find(|(r, _)| r.contains(&at))
            .map_or(Layer::Payload, |(_, l)| *l)
    }
}

struct D<'a> {
    p: &'a [u8],
    out: &'a mut Dissection,
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// A MAC worth looking for: unicast and not all zero.
fn unicast_mac(m: [u8; 6]) -> bool {
    m[0] & 1 == 0 && m != [0; 6]
}

/// An address worth looking for: not unspecified, not all ones, not
/// multicast.
fn interesting(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !v.is_unspecified() && !v.is_broadcast() && !v.is_multicast(),
        IpAddr::V6(v) => !v.is_unspecified() && !v.is_multicast(),
    }
}

impl D<'_> {
    fn reg(&mut self, a: usize, b: usize, l: Layer) {
        let b = b.min(self.p.len());
        if a < b {
            self.out.regions.push((a..b, l));
        }
    }

    fn mac(&mut self, at: usize) {
        if let Some(b) = self.p.get(at..at + 6) {
            let mut m = [0u8; 6];
            m.copy_from_slice(b);
            if unicast_mac(m) {
                self.out.idents.push(Ident::Mac(m));
            }
        }
    }

    fn v4(&mut self, at: usize) {
        if let Some(b) = self.p.get(at..at + 4) {
            let a = IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            if interesting(a) {
                self.out.idents.push(Ident::Ip(a));
            }
        }
    }

    fn v6(&mut self, at: usize) {
        if let Some(b) = self.p.get(at..at + 16) {
            let mut x = [0u8; 16];
            x.copy_from_slice(b);
            let a = IpAddr::V6(Ipv6Addr::from(x));
            if interesting(a) {
                self.out.idents.push(Ident::Ip(a));
            }
        }
    }

    fn link(&mut self, lt: u32) {
        let n = self.p.len();
        match lt {
            1 => self.ether(0, 0),
            113 => {
                self.reg(0, 16, Layer::Link);
                if be16(self.p, 4) == Some(6) {
                    self.mac(6);
                }
                if let Some(et) = be16(self.p, 14) {
                    self.l3(et, 16, 0);
                }
            }
            276 => {
                self.reg(0, 20, Layer::Link);
                if self.p.get(11) == Some(&6) {
                    self.mac(12);
                }
                if let Some(et) = be16(self.p, 0) {
                    self.l3(et, 20, 0);
                }
            }
            101 | 12 | 14 | 228 | 229 => self.ip(0, 0),
            0 | 108 => {
                self.reg(0, 4, Layer::Link);
                self.ip(4, 0);
            }
            _ => self.reg(0, n, Layer::Payload),
        }
    }

    fn ether(&mut self, at: usize, depth: u8) {
        let n = self.p.len();
        if at + 14 > n {
            self.reg(at, n, Layer::Link);
            return;
        }
        self.mac(at);
        self.mac(at + 6);
        let mut o = at + 12;
        let mut tags = 0;
        while let Some(0x8100 | 0x88a8 | 0x9100) = be16(self.p, o) {
            o += 4;
            tags += 1;
            if tags > 4 {
                break;
            }
        }
        self.reg(at, o + 2, Layer::Link);
        if let Some(et) = be16(self.p, o) {
            self.l3(et, o + 2, depth);
        }
    }

    fn ip(&mut self, at: usize, depth: u8) {
        match self.p.get(at).map(|b| b >> 4) {
            Some(4) => self.l3(0x0800, at, depth),
            Some(6) => self.l3(0x86dd, at, depth),
            _ => self.reg(at, self.p.len(), Layer::Payload),
        }
    }

    fn l3(&mut self, et: u16, at: usize, depth: u8) {
        let n = self.p.len();
        if depth > 4 {
            self.reg(at, n, Layer::Payload);
            return;
        }
        match et {
            0x0800 => self.ipv4(at, n, depth),
            0x86dd => self.ipv6(at, n, depth),
            0x0806 => self.arp(at),
            // PPPoE session: 6-byte header, then the PPP protocol.
            0x8864 => {
                self.reg(at, at + 8, Layer::Link);
                match be16(self.p, at + 6) {
                    Some(0x0021) => self.ipv4(at + 8, n, depth),
                    Some(0x0057) => self.ipv6(at + 8, n, depth),
                    _ => self.reg(at + 8, n, Layer::Payload),
                }
            }
            _ => self.reg(at, n, Layer::Payload),
        }
    }

    fn arp(&mut self, at: usize) {
        self.reg(at, self.p.len(), Layer::Arp);
        let (Some(&hl), Some(&pl)) = (self.p.get(at + 4), self.p.get(at + 5)) else {
            return;
        };
        let (hl, pl) = (usize::from(hl), usize::from(pl));
        let mut o = at + 8;
        for _ in 0..2 {
            if hl == 6 {
                self.mac(o);
            }
            if pl == 4 {
                self.v4(o + hl);
            }
            o += hl + pl;
        }
    }

    fn ipv4(&mut self, at: usize, end: usize, depth: u8) {
        let p = self.p;
        let Some(&vi) = p.get(at) else { return };
        let ihl = usize::from(vi & 15) * 4;
        let tl = be16(p, at + 2).map_or(end, usize::from);
        let end = end.min(at + tl.max(ihl));
        self.reg(at, at + ihl.max(20), Layer::Ip);
        self.v4(at + 12);
        self.v4(at + 16);
        let frag = be16(p, at + 6).unwrap_or(0) & 0x1fff;
        let proto = p.get(at + 9).copied().unwrap_or(0);
        if frag != 0 {
            self.reg(at + ihl, end, Layer::Payload);
            return;
        }
        self.l4(proto, at + ihl, end, false, depth);
    }

    fn ipv6(&mut self, at: usize, end: usize, depth: u8) {
        let p = self.p;
        let plen = be16(p, at + 4).map_or(0, usize::from);
        let end = if plen == 0 {
            end
        } else {
            end.min(at + 40 + plen)
        };
        self.reg(at, at + 40, Layer::Ip);
        self.v6(at + 8);
        self.v6(at + 24);
        let mut nh = p.get(at + 6).copied().unwrap_or(59);
        let mut o = at + 40;
        for _ in 0..8 {
            match nh {
                0 | 43 | 60 | 135 => {
                    let len = (usize::from(p.get(o + 1).copied().unwrap_or(0)) + 1) * 8;
                    self.reg(o, o + len, Layer::Ip);
                    if nh == 43 && p.get(o + 2) == Some(&0) {
                        // Type 0 routing header: a list of addresses.
                        let mut a = o + 8;
                        while a + 16 <= o + len {
                            self.v6(a);
                            a += 16;
                        }
                    }
                    nh = p.get(o).copied().unwrap_or(59);
                    o += len;
                }
                44 => {
                    self.reg(o, o + 8, Layer::Ip);
                    let off = be16(p, o + 2).unwrap_or(0) >> 3;
                    nh = p.get(o).copied().unwrap_or(59);
                    o += 8;
                    if off != 0 {
                        self.reg(o, end, Layer::Payload);
                        return;
                    }
                }
                _ => break,
            }
        }
        self.l4(nh, o, end, true, depth);
    }

    fn l4(&mut self, proto: u8, at: usize, end: usize, v6: bool, depth: u8) {
        let p = self.p;
        match proto {
            17 | 136 => {
                self.reg(at, at + 8, Layer::Transport);
                let (Some(sp), Some(dp)) = (be16(p, at), be16(p, at + 2)) else {
                    return;
                };
                let ulen = be16(p, at + 4).map_or(0, usize::from);
                let pend = if ulen >= 8 { end.min(at + ulen) } else { end };
                let pl = at + 8;
                if sp == 53 || dp == 53 || sp == 5353 || dp == 5353 {
                    self.dns(pl, pend);
                } else if matches!(sp, 67 | 68) || matches!(dp, 67 | 68) {
                    self.dhcp(pl, pend);
                } else if sp == 3544 || dp == 3544 {
                    self.ip(pl, depth + 1);
                } else {
                    self.reg(pl, pend, Layer::Payload);
                }
            }
            6 => {
                let doff = usize::from(p.get(at + 12).copied().unwrap_or(0x50) >> 4) * 4;
                self.reg(at, at + doff.max(20), Layer::Transport);
                let (Some(sp), Some(dp)) = (be16(p, at), be16(p, at + 2)) else {
                    return;
                };
                let mut o = at + doff.max(20);
                if sp == 53 || dp == 53 {
                    while o + 2 <= end {
                        let len = be16(p, o).map_or(0, usize::from);
                        self.reg(o, o + 2, Layer::Dns);
                        self.dns(o + 2, (o + 2 + len).min(end));
                        o += 2 + len;
                    }
                } else {
                    self.reg(o, end, Layer::Payload);
                }
            }
            1 | 58 => self.icmp(at, end, v6, depth),
            4 => self.ipv4(at, end, depth + 1),
            41 => self.ipv6(at, end, depth + 1),
            47 => {
                self.reg(at, end, Layer::Payload);
                let flags = be16(p, at).unwrap_or(0xffff);
                if flags & 0x4fff == 0 {
                    let hl = 4 + 4
                        * ((flags >> 15) as usize
                            + ((flags >> 13) & 1) as usize
                            + ((flags >> 12) & 1) as usize);
                    self.reg(at, at + hl, Layer::Transport);
                    match be16(p, at + 2) {
                        Some(0x6558) => self.ether(at + hl, depth + 1),
                        Some(et @ (0x0800 | 0x86dd)) => self.l3(et, at + hl, depth + 1),
                        _ => {}
                    }
                }
            }
            _ => self.reg(at, end, Layer::Payload),
        }
    }

    fn icmp(&mut self, at: usize, end: usize, v6: bool, depth: u8) {
        let p = self.p;
        self.reg(at, end, Layer::Icmp);
        let Some(&ty) = p.get(at) else { return };
        let quoted = if v6 {
            matches!(ty, 1..=4)
        } else {
            matches!(ty, 3 | 4 | 5 | 11 | 12)
        };
        if quoted {
            if !v6 && ty == 5 {
                self.v4(at + 4);
            }
            let q = at + 8;
            let mut d = Dissection::default();
            let mut inner = D {
                p: p.get(..end).unwrap_or(p),
                out: &mut d,
            };
            inner.ip(q, depth + 1);
            self.out.idents.append(&mut d.idents);
            self.out.regions.append(&mut d.regions);
            return;
        }
        if !v6 {
            return;
        }
        // Neighbour discovery: targets and link-layer address options.
        let opts = match ty {
            133 => at + 8,
            134 => at + 16,
            135 | 136 => {
                self.v6(at + 8);
                at + 24
            }
            137 => {
                self.v6(at + 8);
                self.v6(at + 24);
                at + 40
            }
            _ => return,
        };
        let mut o = opts;
        while o + 2 <= end {
            let (t, l) = (p[o], usize::from(p[o + 1]) * 8);
            if l == 0 {
                break;
            }
            if matches!(t, 1 | 2) && l == 8 {
                self.mac(o + 2);
            }
            o += l;
        }
    }

    fn dns(&mut self, m0: usize, m1: usize) {
        self.reg(m0, m1, Layer::Dns);
        let Some(m) = self.p.get(m0..m1.min(self.p.len())) else {
            return;
        };
        let (Some(qd), Some(an), Some(ns), Some(ar)) =
            (be16(m, 4), be16(m, 6), be16(m, 8), be16(m, 10))
        else {
            return;
        };
        let mut at = 12;
        for _ in 0..qd {
            let Ok(a) = crate::dns::skip_name(m, at) else {
                return;
            };
            at = a + 4;
        }
        for _ in 0..(usize::from(an) + usize::from(ns) + usize::from(ar)) {
            let Ok(a) = crate::dns::skip_name(m, at) else {
                return;
            };
            let (Some(ty), Some(rdlen)) = (be16(m, a), be16(m, a + 8)) else {
                return;
            };
            let rd = a + 10;
            let rdlen = usize::from(rdlen);
            match (ty, rdlen) {
                (1, 4) => {
                    self.reg(m0 + rd, m0 + rd + 4, Layer::DnsAnswer);
                    self.v4(m0 + rd);
                }
                (28, 16) => {
                    self.reg(m0 + rd, m0 + rd + 16, Layer::DnsAnswer);
                    self.v6(m0 + rd);
                }
                (41, _) => self.reg(m0 + rd, m0 + rd + rdlen, Layer::Edns),
                _ => {}
            }
            at = rd + rdlen;
            if at > m.len() {
                return;
            }
        }
    }

    fn dhcp(&mut self, at: usize, end: usize) {
        self.reg(at, end, Layer::Dhcp);
        if at + 240 > end.min(self.p.len()) {
            return;
        }
        for f in [12, 16, 20, 24] {
            self.v4(at + f);
        }
        if self.p.get(at + 2) == Some(&6) {
            self.mac(at + 28);
        }
        let mut o = at + 240;
        while o < end {
            let Some(&code) = self.p.get(o) else { return };
            match code {
                0 => {
                    o += 1;
                    continue;
                }
                255 => return,
                _ => {}
            }
            let Some(&len) = self.p.get(o + 1) else {
                return;
            };
            let len = usize::from(len);
            let v = o + 2;
            match code {
                // Routers, time, name and DNS servers, log servers, NTP,
                // NetBIOS, requested address, server identifier.
                3 | 4 | 5 | 6 | 7 | 42 | 44 | 50 | 54 => {
                    let mut a = v;
                    while a + 4 <= v + len {
                        self.v4(a);
                        a += 4;
                    }
                }
                // Client identifier: hardware type 1 and a MAC.
                61 if len == 7 && self.p.get(v) == Some(&1) => self.mac(v + 1),
                _ => {}
            }
            o = v + len;
        }
    }
}

/// Dissect one packet for the audit.
pub fn dissect(linktype: u32, pkt: &[u8], out: &mut Dissection) {
    out.regions.clear();
    out.idents.clear();
    D { p: pkt, out }.link(linktype);
}

/// The full addresses the packet walker would rewrite (ECS prefixes
/// shorter than a full address are left out: a few bytes match anywhere).
fn walker_idents(linktype: u32, pkt: &[u8], loc: &mut Located, out: &mut BTreeSet<Ident>) {
    if packet::locate_general(linktype, pkt, loc).is_err() {
        return;
    }
    for s in &loc.slots {
        if s.truncated || s.len as usize != s.family.bytes() {
            continue;
        }
        let Some(b) = pkt.get(s.range()) else {
            continue;
        };
        let mut x = [0u8; 16];
        x[..b.len()].copy_from_slice(b);
        if s.origin == Origin::TeredoOrigin {
            x.iter_mut().for_each(|v| *v = !*v);
        }
        let a = if b.len() == 4 {
            IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]))
        } else {
            IpAddr::V6(Ipv6Addr::from(x))
        };
        if interesting(a) {
            out.insert(Ident::Ip(a));
        }
    }
}

/// IP fragments of DNS datagrams, held until complete, so that the answer
/// data (and EDNS client addresses) of a fragmented response are collected
/// too. At most [`Fragments::MAX`] datagrams are held; beyond that the
/// oldest ones are forgotten.
/// One datagram being reassembled: its key, the pieces (offset, bytes)
/// and the total length once the last fragment is seen.
type FragGroup = (packet::FragKey, Vec<(u32, Vec<u8>)>, Option<u32>);

#[derive(Default)]
struct Fragments {
    groups: BTreeMap<u64, FragGroup>,
    next: u64,
    found: crate::edns::Found,
}

impl Fragments {
    const MAX: usize = 1024;

    fn push(&mut self, pkt: &[u8], loc: &Located, out: &mut BTreeSet<Ident>) {
        let Some(f) = &loc.frag else { return };
        let Some(data) = pkt.get(f.data.clone()) else {
            return;
        };
        let id = match self.groups.iter().find(|(_, g)| g.0 == f.key) {
            Some((&id, _)) => id,
            None => {
                if self.groups.len() >= Self::MAX {
                    self.groups.pop_first();
                }
                self.next += 1;
                self.groups.insert(self.next, (f.key, Vec::new(), None));
                self.next
            }
        };
        let Some(g) = self.groups.get_mut(&id) else {
            return;
        };
        g.1.push((f.offset, data.to_vec()));
        if !f.more {
            g.2 = Some(f.offset + data.len() as u32);
        }
        let Some(total) = g.2 else { return };
        g.1.sort_by_key(|p| p.0);
        let mut end = 0u32;
        for (o, b) in &g.1 {
            if *o > end {
                return;
            }
            end = end.max(o + b.len() as u32);
        }
        if end < total {
            return;
        }
        let Some((key, parts, _)) = self.groups.remove(&id) else {
            return;
        };
        let mut d = vec![0u8; total as usize];
        for (o, b) in &parts {
            let o = *o as usize;
            let n = b.len().min(d.len().saturating_sub(o));
            d[o..o + n].copy_from_slice(&b[..n]);
        }
        // UDP on a DNS or Multicast DNS port, right after the IP header.
        let port = |at: usize| d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let (Some(sp), Some(dp), Some(ul)) = (port(0), port(2), port(4)) else {
            return;
        };
        let dns = sp == 53 || dp == 53 || crate::packet::is_mdns(sp, dp);
        if key.protocol != 17 || !dns || (ul as usize) < 8 {
            return;
        }
        let Some(msg) = d.get(8..(ul as usize).min(d.len())) else {
            return;
        };
        if crate::edns::scan(msg, true, true, &mut self.found).is_err() {
            return;
        }
        for a in &self.found.addrs {
            let n = if a.v6 { 16 } else { 4 };
            let Some(b) = msg.get(a.offset..a.offset + n) else {
                continue;
            };
            let ip = match <[u8; 4]>::try_from(b) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => match <[u8; 16]>::try_from(b) {
                    Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                    Err(_) => continue,
                },
            };
            if interesting(ip) {
                out.insert(Ident::Ip(ip));
            }
        }
    }
}

// ------------------------------------------------------------ collection

fn open(path: &Path) -> Result<(capture::Input, String), CliError> {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let inp = capture::open_input(path).map_err(|e| CliError::data(format!("{name}: {e}")))?;
    Ok((inp, name))
}

/// Every identifier in an original capture (pcap or pcapng).
pub fn collect(path: &Path) -> Result<BTreeSet<Ident>, CliError> {
    let (inp, name) = open(path)?;
    if !matches!(inp.kind, FileKind::Pcap | FileKind::Pcapng) {
        return Err(CliError::usage(format!(
            "{name}: audit collects addresses from pcap and pcapng captures; \
             for other formats give the list with --addresses"
        )));
    }
    let mut rd = CaptureReader::new(inp.into_reader(), ReaderOptions::KEEP_ALL)
        .map_err(|e| CliError::data(format!("{name}: {e}")))?;
    let mut set = BTreeSet::new();
    let mut loc = Located::new();
    let mut d = Dissection::default();
    let mut frags = Fragments::default();
    loop {
        let u = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => break,
            Err(e) => return Err(CliError::data(format!("{name}: {e}"))),
        };
        let Some(p) = &u.packet else { continue };
        let Some(pkt) = u.data.get(p.range.clone()) else {
            continue;
        };
        walker_idents(p.linktype, pkt, &mut loc, &mut set);
        frags.push(pkt, &loc, &mut set);
        dissect(p.linktype, pkt, &mut d);
        set.extend(d.idents.iter().copied());
    }
    Ok(set)
}

/// Parse an `--addresses` file.
pub fn read_list(path: &Path) -> Result<BTreeSet<Ident>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("--addresses {}: {e}", path.display())))?;
    let mut set = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let id = parse_ident(line).ok_or_else(|| {
            CliError::data(format!(
                "--addresses {} line {}: not an IP or MAC address: {line:?}",
                path.display(),
                i + 1
            ))
        })?;
        set.insert(id);
    }
    Ok(set)
}

fn parse_ident(s: &str) -> Option<Ident> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(Ident::Ip(a));
    }
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(Ident::Mac(m))
}

// ---------------------------------------------------------------- search

/// The byte patterns of an identifier, with their forms; `true` marks text
/// forms, which must not be part of a longer token.
fn forms(id: Ident) -> Vec<(Vec<u8>, Form, bool)> {
    let mut v = Vec::new();
    match id {
        Ident::Ip(IpAddr::V4(a)) => {
            let o = a.octets();
            v.push((o.to_vec(), Form::Raw, false));
            v.push((a.to_string().into_bytes(), Form::Text, true));
            let rev = format!("{}.{}.{}.{}.in-addr", o[3], o[2], o[1], o[0]);
            v.push((rev.clone().into_bytes(), Form::Reverse, true));
            v.push((rev.to_uppercase().into_bytes(), Form::Reverse, true));
            let mut wire = Vec::new();
            for b in o.iter().rev() {
                let t = b.to_string();
                wire.push(t.len() as u8);
                wire.extend(t.as_bytes());
            }
            for tail in [&b"\x07in-addr"[..], b"\x07IN-ADDR"] {
                let mut w = wire.clone();
                w.extend(tail);
                v.push((w, Form::Reverse, false));
            }
        }
        Ident::Ip(IpAddr::V6(a)) => {
            let o = a.octets();
            v.push((o.to_vec(), Form::Raw, false));
            let t = a.to_string();
            if t.to_uppercase() != t {
                v.push((t.to_uppercase().into_bytes(), Form::Text, true));
            }
            v.push((t.into_bytes(), Form::Text, true));
            let hex = b"0123456789abcdef";
            let mut text = Vec::new();
            let mut wire = Vec::new();
            for b in o.iter().rev() {
                for n in [b & 15, b >> 4] {
                    text.push(hex[usize::from(n)]);
                    text.push(b'.');
                    wire.push(1);
                    wire.push(hex[usize::from(n)]);
                }
            }
            text.extend(b"ip6");
            wire.extend(b"\x03ip6");
            v.push((text.to_ascii_uppercase(), Form::Reverse, true));
            v.push((text, Form::Reverse, true));
            v.push((wire.to_ascii_uppercase(), Form::Reverse, false));
            v.push((wire, Form::Reverse, false));
        }
        Ident::Mac(m) => {
            v.push((m.to_vec(), Form::Raw, false));
            let t = id.to_string();
            for s in [t.clone(), t.replace(':', "-")] {
                v.push((s.to_uppercase().into_bytes(), Form::Text, true));
                v.push((s.into_bytes(), Form::Text, true));
            }
            let eui = [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
            v.push((eui.to_vec(), Form::Eui64, false));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The compiled search for a set of identifiers.
pub struct Searcher {
    ac: Option<AhoCorasick>,
    /// Per pattern: identifier, form, text (boundary-checked).
    meta: Vec<(Ident, Form, bool)>,
    lens: Vec<usize>,
    /// Identifiers searched for.
    pub count: usize,
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b'-'
}

impl Searcher {
    /// Compile the search.
    pub fn new(ids: &BTreeSet<Ident>) -> Result<Searcher, CliError> {
        let mut pats = Vec::new();
        let mut meta = Vec::new();
        for &id in ids {
            for (p, f, text) in forms(id) {
                pats.push(p);
                meta.push((id, f, text));
            }
        }
        let lens = pats.iter().map(Vec::len).collect();
        let ac = if pats.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::new(&pats)
                    .map_err(|e| CliError::data(format!("cannot build the search: {e}")))?,
            )
        };
        Ok(Searcher {
            ac,
            meta,
            lens,
            count: ids.len(),
        })
    }

    /// Every occurrence in `hay`: (offset, identifier, form).
    pub fn find(&self, hay: &[u8], mut f: impl FnMut(usize, Ident, Form)) {
        let Some(ac) = &self.ac else { return };
        for m in ac.find_overlapping_iter(hay) {
            let i = m.pattern().as_usize();
            let (id, form, text) = self.meta[i];
            let (s, e) = (m.start(), m.start() + self.lens[i]);
            if text {
                let before = s.checked_sub(1).and_then(|b| hay.get(b)).copied();
                if form == Form::Reverse {
                    // A reverse name ends in ".arpa": only its start can
                    // extend a longer token.
                    if before.is_some_and(token_byte) {
                        continue;
                    }
                    f(s, id, form);
                    continue;
                }
                let after = hay.get(e).copied();
                // A dot after an address may end a sentence; a dot before
                // or any other address character extends the token.
                let ext_after = after.is_some_and(|b| token_byte(b) && b != b'.')
                    || (after == Some(b'.')
                        && hay.get(e + 1).is_some_and(|b| b.is_ascii_hexdigit()));
                if before.is_some_and(token_byte) || ext_after {
                    continue;
                }
            }
            f(s, id, form);
        }
    }
}

/// Search a washed file for the identifiers.
pub fn search(path: &Path, s: &Searcher) -> Result<Report, CliError> {
    let (inp, name) = open(path)?;
    let mut rep = Report {
        searched: s.count,
        ..Default::default()
    };
    match inp.kind {
        FileKind::Pcap | FileKind::Pcapng => {}
        FileKind::Cdns | FileKind::Dnstap => {
            let layer = if inp.kind == FileKind::Cdns {
                Layer::Cdns
            } else {
                Layer::Dnstap
            };
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut inp.into_reader(), &mut all)
                .map_err(|e| CliError::data(format!("{name}: {e}")))?;
            s.find(&all, |offset, ident, form| {
                rep.survivors.push(Survivor {
                    frame: 0,
                    offset,
                    layer,
                    form,
                    ident,
                })
            });
            return Ok(rep);
        }
        FileKind::Unknown => {
            return Err(CliError::data(format!(
                "{name}: unknown format (not pcap, pcapng, C-DNS or dnstap)"
            )))
        }
    }
    let mut rd = CaptureReader::new(inp.into_reader(), ReaderOptions::KEEP_ALL)
        .map_err(|e| CliError::data(format!("{name}: {e}")))?;
    let mut d = Dissection::default();
    let mut frame = 0u64;
    loop {
        let u = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => break,
            Err(e) => return Err(CliError::data(format!("{name}: {e}"))),
        };
        let range = u.packet.as_ref().map(|p| (p.range.clone(), p.linktype));
        let data: &[u8] = u.data;
        match range {
            Some((r, lt)) => {
                frame += 1;
                let pkt = data.get(r.clone()).unwrap_or_default();
                dissect(lt, pkt, &mut d);
                s.find(pkt, |offset, ident, form| {
                    rep.survivors.push(Survivor {
                        frame,
                        offset,
                        layer: d.layer_at(offset),
                        form,
                        ident,
                    })
                });
                // The record around the packet (pcapng options).
                if rd_is_block(data, &r) {
                    let mut meta = data.to_vec();
                    meta[r].fill(0);
                    s.find(&meta, |offset, ident, form| {
                        rep.survivors.push(Survivor {
                            frame,
                            offset,
                            layer: Layer::Metadata,
                            form,
                            ident,
                        })
                    });
                }
            }
            None => s.find(data, |offset, ident, form| {
                rep.survivors.push(Survivor {
                    frame,
                    offset,
                    layer: Layer::Metadata,
                    form,
                    ident,
                })
            }),
        }
    }
    Ok(rep)
}

/// A pcapng packet block has more than a 16-byte pcap record header and
/// the packet.
fn rd_is_block(data: &[u8], r: &Range<usize>) -> bool {
    r.start != 16 && r.start != 24 || data.len() != r.end
}

// ---------------------------------------------------------------- output

/// Run `ipwash audit`.
pub fn run_audit(args: &AuditArgs) -> Result<(), CliError> {
    let (ids, washed) = match (&args.addresses, args.files.as_slice()) {
        (Some(list), [w]) => (read_list(list)?, w),
        (None, [o, w]) => (collect(o)?, w),
        (Some(_), _) => {
            return Err(CliError::usage(
                "with --addresses give only the washed file",
            ))
        }
        (None, _) => return Err(CliError::usage("give ORIGINAL and WASHED")),
    };
    let searcher = Searcher::new(&ids)?;
    let rep = search(washed, &searcher)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let listed: Vec<serde_json::Value> = rep
            .survivors
            .iter()
            .take(args.max_listed)
            .map(|s| {
                serde_json::json!({
                    "frame": s.frame,
                    "offset": s.offset,
                    "layer": s.layer.name(),
                    "form": s.form.name(),
                    "address": s.ident.to_string(),
                })
            })
            .collect();
        let by_layer: BTreeMap<&str, serde_json::Value> = rep
            .by_layer()
            .into_iter()
            .map(|(k, (n, d))| (k, serde_json::json!({"occurrences": n, "addresses": d})))
            .collect();
        let v = serde_json::json!({
            "searched": rep.searched,
            "surviving": rep.surviving().len(),
            "occurrences": rep.survivors.len(),
            "by_layer": by_layer,
            "survivors": listed,
            "surviving_addresses": rep.surviving().iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        out.write_all(s.as_bytes())?;
    } else {
        for s in rep.survivors.iter().take(args.max_listed) {
            writeln!(
                out,
                "frame {} offset {} layer {} form {} {}",
                s.frame,
                s.offset,
                s.layer.name(),
                s.form.name(),
                s.ident
            )?;
        }
        if rep.survivors.len() > args.max_listed {
            writeln!(
                out,
                "... {} more (--max-listed)",
                rep.survivors.len() - args.max_listed
            )?;
        }
        writeln!(
            out,
            "audit: {} of {} identifiers survive, {} occurrences",
            rep.surviving().len(),
            rep.searched,
            rep.survivors.len()
        )?;
        for (k, (n, d)) in rep.by_layer() {
            writeln!(out, "  {k}: {d} identifiers, {n} occurrences")?;
        }
    }
    out.flush()?;
    if rep.survivors.is_empty() {
        Ok(())
    } else {
        Err(CliError::data(""))
    }
}
