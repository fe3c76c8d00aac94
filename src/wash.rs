//! The washer: one technique plus the user's scope and keep-list, applied to
//! single addresses or address prefixes. Packet rewriting, C-DNS and the
//! `map` command all go through this, so every path treats addresses alike.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipwash_algorithms::enumerate::Enumerate;
use ipwash_algorithms::prefix_map::PrefixMap;
use ipwash_algorithms::{AddrMap, StatefulMap};

/// Which end of a DNS exchange an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The DNS client (or a client subnet, as in ECS).
    Client,
    /// The DNS server side: the end on port 53, 853 or 443.
    Server,
    /// Not DNS, or the role could not be told: always rewritten.
    Unknown,
}

/// Which addresses are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every address.
    #[default]
    All,
    /// Every address except the DNS server side of DNS traffic.
    Clients,
}

/// A network left unchanged (`--keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepPrefix {
    /// Network address (host bits zero).
    pub net: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl KeepPrefix {
    /// Parse `a.b.c.d/len`, `x::/len` or a bare address (full length).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("'{s}' is not an address or prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("bad prefix length in '{s}'"))?,
            None => max,
        };
        Ok(KeepPrefix {
            net: mask_ip(addr, len),
            len,
        })
    }

    /// True when `a` lies inside this network.
    pub fn contains(&self, a: IpAddr) -> bool {
        a.is_ipv4() == self.net.is_ipv4() && mask_ip(a, self.len) == self.net
    }
}

/// Zero every bit after the first `len`.
pub fn mask_ip(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
        IpAddr::V6(v) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

/// The technique behind a washer.
pub enum Technique {
    /// A stateless map, shareable between threads.
    Stateless(Arc<dyn AddrMap>),
    /// A stateful map, used in input order on one thread.
    Stateful(Box<StatefulTech>),
}

/// The stateful techniques, kept concrete so their tables can be saved.
/// Always boxed inside [`Technique`], so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum StatefulTech {
    /// Enumeration (dnswasher style).
    Enumerate(Enumerate),
    /// The TCPdpriv -A50 prefix map.
    PrefixMap(PrefixMap),
}

impl StatefulTech {
    /// The technique as a trait object.
    pub fn as_map(&mut self) -> &mut dyn StatefulMap {
        match self {
            StatefulTech::Enumerate(e) => e,
            StatefulTech::PrefixMap(p) => p,
        }
    }

    /// The technique as a shared trait object.
    pub fn as_map_ref(&self) -> &dyn StatefulMap {
        match self {
            StatefulTech::Enumerate(e) => e,
            StatefulTech::PrefixMap(p) => p,
        }
    }
}

impl Technique {
    /// Map one address.
    pub fn map(&mut self, a: IpAddr) -> IpAddr {
        match self {
            Technique::Stateless(m) => match a {
                IpAddr::V4(v) => IpAddr::V4(m.map_v4(v)),
                IpAddr::V6(v) => IpAddr::V6(m.map_v6(v)),
            },
            Technique::Stateful(m) => {
                let m = m.as_map();
                match a {
                    IpAddr::V4(v) => IpAddr::V4(m.map_v4(v)),
                    IpAddr::V6(v) => IpAddr::V6(m.map_v6(v)),
                }
            }
        }
    }

    /// True when the technique keeps common-prefix lengths.
    pub fn prefix_preserving(&self) -> bool {
        match self {
            Technique::Stateless(m) => m.prefix_preserving(),
            Technique::Stateful(m) => m.as_map_ref().prefix_preserving(),
        }
    }
}

/// What outputs need to know about the technique (C-DNS marks its output
/// with it; prefix-only storage needs it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TechniqueInfo {
    /// The `--method` name, e.g. `cryptopan`.
    pub name: String,
    /// For truncation: the IPv4 and IPv6 prefix lengths kept.
    pub truncate: Option<(u8, u8)>,
    /// How IPv4-mapped IPv6 addresses are treated (`--mapped`).
    pub mapped: Mapped,
}

/// How an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is washed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mapped {
    /// Like the IPv4 address it holds, kept in the mapped form: a dual-stack
    /// log and an IPv4 capture washed with one key agree.
    #[default]
    Ipv4,
    /// As any other IPv6 address: all 128 bits through the IPv6 rule.
    Native,
}

/// `::ffff:0:0/96`, the IPv4-mapped prefix, as the top 96 bits.
const V4_MAPPED: u128 = 0xffff;

/// The IPv4 address inside an IPv4-mapped IPv6 address.
#[inline]
pub fn mapped_v4(a: u128) -> Option<u32> {
    (a >> 32 == V4_MAPPED).then_some(a as u32)
}

/// Invert a reversible map the way [`Washer`] applies it: with
/// [`Mapped::Ipv4`], an IPv4-mapped address is inverted by the IPv4 rule.
pub fn unmap(r: &dyn ipwash_algorithms::Reversible, a: IpAddr, mapped: Mapped) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(r.unmap_v4(v)),
        IpAddr::V6(v) => match mapped_v4(u128::from(v)).filter(|_| mapped == Mapped::Ipv4) {
            Some(x) => IpAddr::V6(r.unmap_v4(x.into()).to_ipv6_mapped()),
            None => IpAddr::V6(r.unmap_v6(v)),
        },
    }
}

/// A technique plus scope and keep-list.
pub struct Washer {
    /// The technique.
    pub technique: Technique,
    /// Its name and parameters.
    pub info: TechniqueInfo,
    /// Which sides are rewritten.
    pub scope: Scope,
    /// Networks left unchanged.
    pub keep: Vec<KeepPrefix>,
    /// How MAC addresses are mapped (kept unless set; the command line
    /// washes them by default).
    pub mac: crate::mac::MacMap,
    /// How EDNS client identifiers are mapped ([`crate::edns`]; kept unless
    /// set; the command line washes them by default).
    pub ids: crate::edns::IdMap,
    /// Also wash A and AAAA answer data (`--answers`).
    pub answers: bool,
    /// `--only-dns` / `--zero-payload` ([`crate::payload`]).
    pub payload: crate::payload::Policy,
    /// Whether reverse names (`in-addr.arpa`, `ip6.arpa`) are washed.
    pub reverse_names: crate::revname::ReverseNames,
}

impl Washer {
    /// A washer with scope `all` and no keep-list.
    pub fn new(technique: Technique) -> Self {
        Washer {
            technique,
            info: TechniqueInfo::default(),
            scope: Scope::All,
            keep: Vec::new(),
            mac: crate::mac::MacMap::Keep,
            ids: crate::edns::IdMap::Keep,
            answers: false,
            payload: crate::payload::Policy::default(),
            reverse_names: crate::revname::ReverseNames::Wash,
        }
    }

    /// A copy sharing the same stateless map, for another worker thread.
    /// None for stateful techniques, which must stay on one thread.
    pub fn try_clone(&self) -> Option<Washer> {
        match &self.technique {
            Technique::Stateless(m) => Some(Washer {
                technique: Technique::Stateless(m.clone()),
                info: self.info.clone(),
                scope: self.scope,
                keep: self.keep.clone(),
                mac: self.mac.try_clone()?,
                ids: self.ids.clone(),
                answers: self.answers,
                payload: self.payload.clone(),
                reverse_names: self.reverse_names,
            }),
            Technique::Stateful(_) => None,
        }
    }

    /// True when the technique can be applied to an address prefix alone
    /// (prefix-preserving maps and truncation), as ECS and prefix-only C-DNS
    /// storage need.
    pub fn works_on_prefixes(&self) -> bool {
        self.info.truncate.is_some() || self.technique.prefix_preserving()
    }

    /// True when an address on `side` is to be rewritten at all (before the
    /// keep-list is consulted).
    pub fn in_scope(&self, side: Side) -> bool {
        !(self.scope == Scope::Clients && side == Side::Server)
    }

    fn kept(&self, a: IpAddr) -> bool {
        self.keep.iter().any(|k| k.contains(a))
    }

    /// Wash one full address seen on `side`.
    pub fn wash(&mut self, a: IpAddr, side: Side) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(self.wash_v4(v.into(), side).into()),
            IpAddr::V6(v) => IpAddr::V6(self.wash_v6(v.into(), side).into()),
        }
    }

    /// [`Washer::wash`] for an IPv4 address as an integer.
    #[inline]
    pub fn wash_v4(&mut self, a: u32, side: Side) -> u32 {
        if !self.in_scope(side) || (!self.keep.is_empty() && self.kept(IpAddr::V4(a.into()))) {
            return a;
        }
        match &mut self.technique {
            Technique::Stateless(m) => m.map_v4(a.into()).into(),
            Technique::Stateful(m) => m.as_map().map_v4(a.into()).into(),
        }
    }

    /// [`Washer::wash`] for an IPv6 address as an integer.
    /// This is the one place where IPv4-mapped addresses take the IPv4
    /// rule (unless `--mapped native`), keep-list included, and keep their
    /// mapped form.
    #[inline]
    pub fn wash_v6(&mut self, a: u128, side: Side) -> u128 {
        if !self.in_scope(side) || (!self.keep.is_empty() && self.kept(IpAddr::V6(a.into()))) {
            return a;
        }
        if let Some(v4) = mapped_v4(a).filter(|_| self.info.mapped == Mapped::Ipv4) {
            return (V4_MAPPED << 32) | u128::from(self.wash_v4(v4, side));
        }
        match &mut self.technique {
            Technique::Stateless(m) => m.map_v6(a.into()).into(),
            Technique::Stateful(m) => m.as_map().map_v6(a.into()).into(),
        }
    }

    /// Wash an address prefix stored in `bytes` (network order, possibly
    /// shorter than a full address), of which the first `prefix_bits` bits
    /// are meaningful. The prefix is zero-extended, mapped, then cut back to
    /// `prefix_bits` bits and `bytes.len()` bytes; bits past the prefix come
    /// out zero. Returns true when the bytes were changed by the map (they
    /// may still compare equal by chance).
    pub fn wash_prefix(&mut self, bytes: &mut [u8], v6: bool, prefix_bits: u8, side: Side) -> bool {
        let full = if v6 { 16 } else { 4 };
        let n = bytes.len().min(full);
        if v6 && prefix_bits >= 96 && n > 12 && self.info.mapped == Mapped::Ipv4 {
            let top: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
            if bytes[..12] == top && self.in_scope(side) {
                // An IPv4-mapped prefix: the IPv4 rule on its last bits
                // (unless the keep-list names the mapped form itself).
                let mut full6 = [0u8; 16];
                full6[..n].copy_from_slice(&bytes[..n]);
                let a = mask_ip(IpAddr::V6(Ipv6Addr::from(full6)), prefix_bits);
                if self.kept(a) {
                    return false;
                }
                let mut low = [0u8; 4];
                low[..n - 12].copy_from_slice(&bytes[12..n]);
                let changed = self.wash_prefix(&mut low, false, prefix_bits - 96, side);
                bytes[12..n].copy_from_slice(&low[..n - 12]);
                return changed;
            }
        }
        let mut buf = [0u8; 16];
        buf[..n].copy_from_slice(&bytes[..n]);
        let a = if v6 {
            IpAddr::V6(Ipv6Addr::from(buf))
        } else {
            IpAddr::V4(Ipv4Addr::new(buf[0], buf[1], buf[2], buf[3]))
        };
        let a = mask_ip(a, prefix_bits);
        if !self.in_scope(side) || self.kept(a) {
            return false;
        }
        let m = mask_ip(self.technique.map(a), prefix_bits);
        match m {
            IpAddr::V4(v) => bytes[..n].copy_from_slice(&v.octets()[..n]),
            IpAddr::V6(v) => bytes[..n].copy_from_slice(&v.octets()[..n]),
        }
        true
    }
}

/// A map that returns every address unchanged. For tests of the formats
/// (an identity wash must reproduce the input byte for byte); never offered
/// on the command line.
pub struct Identity;

impl AddrMap for Identity {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        a
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        a
    }
    fn cheap(&self, _v6: bool) -> bool {
        true
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flip;
    impl AddrMap for Flip {
        fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
            Ipv4Addr::from(!u32::from(a))
        }
        fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
            Ipv6Addr::from(!u128::from(a))
        }
        fn prefix_preserving(&self) -> bool {
            true
        }
    }

    #[test]
    fn scope_and_keep() {
        let mut w = Washer::new(Technique::Stateless(Arc::new(Flip)));
        w.scope = Scope::Clients;
        w.keep.push(KeepPrefix::parse("192.0.2.0/24").unwrap());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(w.wash(a, Side::Server), a);
        assert_ne!(w.wash(a, Side::Client), a);
        assert_ne!(w.wash(a, Side::Unknown), a);
        let k: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(w.wash(k, Side::Client), k);
    }

    #[test]
    fn prefix_wash_zeroes_host_bits() {
        let mut w = Washer::new(Technique::Stateless(Arc::new(Flip)));
        let mut b = [192, 0, 2];
        assert!(w.wash_prefix(&mut b, false, 20, Side::Client));
        assert_eq!(b, [!192u8, !0u8, 0xf0 & !2u8]);
    }

    #[test]
    fn mapped_addresses_follow_the_ipv4_rule() {
        let mut w = Washer::new(Technique::Stateless(Arc::new(Flip)));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let IpAddr::V4(f) = w.wash(v4, Side::Client) else {
            panic!()
        };
        assert_eq!(w.wash(m, Side::Client), IpAddr::V6(f.to_ipv6_mapped()));
        // An ECS-style /120 of a mapped address, and a short one.
        let mut b = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2];
        assert!(w.wash_prefix(&mut b, true, 120, Side::Client));
        assert_eq!(b[..12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(b[12..], [!192u8, !0u8, !2u8]);
        // The keep-list in IPv4 terms applies to the mapped form.
        w.keep.push(KeepPrefix::parse("192.0.2.0/24").unwrap());
        assert_eq!(w.wash(m, Side::Client), m);
        w.keep.clear();
        // Native: the 128-bit rule.
        w.info.mapped = Mapped::Native;
        assert_eq!(
            w.wash(m, Side::Client),
            IpAddr::V6(Ipv6Addr::from(!u128::from_be_bytes(match m {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(_) => unreachable!(),
            })))
        );
    }

    #[test]
    fn keep_prefix_parse() {
        assert!(KeepPrefix::parse("10.0.0.0/33").is_err());
        assert!(KeepPrefix::parse("nonsense").is_err());
        let k = KeepPrefix::parse("2001:db8::/32").unwrap();
        assert!(k.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!k.contains("10.0.0.1".parse().unwrap()));
    }
}
