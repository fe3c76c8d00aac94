//! Client address to entity: the prefix file and longest-prefix match.
//!
//! The file has one `PREFIX<TAB>ENTITY` per line (any run of spaces or tabs
//! separates the two). `#` starts a comment, blank lines are skipped. A
//! prefix is `ADDR/LEN` or a bare address (a host route). Host bits set below
//! the prefix length are refused, since they usually mean a typo. The same
//! prefix given twice must name the same entity.
//!
//! Entity names may not contain `@` (it separates entity and name in filter
//! items, so `a@b` + `c` and `a` + `b@c` must not collide), whitespace, `#`,
//! or control characters. A client that matches nothing is `UNKNOWN`.
//! A client written as an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
//! looked up as the IPv4 address.
//!
//! Lookup probes one hash table per prefix length present, longest first,
//! with a multiplicative integer hash, so it is a handful of nanoseconds per
//! length and allocates nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use super::BloomError;

/// The entity of clients that match no prefix.
pub const UNKNOWN: &str = "UNKNOWN";

/// A fast hasher for integer keys (addresses masked to a prefix).
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, v: u128) {
        // Truncation to the halves is the point here.
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}

type IntMap<K> = HashMap<K, u32, BuildHasherDefault<IntHasher>>;

/// A prefix-to-entity table. Entity 0 is always [`UNKNOWN`].
#[derive(Debug, Clone)]
pub struct Entities {
    names: Vec<String>,
    /// (prefix length, masked address -> entity id), longest first.
    v4: Vec<(u8, IntMap<u32>)>,
    v6: Vec<(u8, IntMap<u128>)>,
}

impl Default for Entities {
    fn default() -> Self {
        Entities {
            names: vec![UNKNOWN.to_string()],
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

/// Whether `name` is usable as an entity name.
pub(crate) fn valid_entity_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| !(c == '@' || c == '#' || c.is_whitespace() || c.is_control()))
}

impl Entities {
    /// No prefixes: every client is [`UNKNOWN`].
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parse a prefix file (see the module doc).
    pub fn parse(text: &str) -> Result<Self, BloomError> {
        let mut e = Entities::default();
        let mut ids: HashMap<String, u32> = HashMap::new();
        ids.insert(UNKNOWN.to_string(), 0);
        let mut v4: HashMap<u8, IntMap<u32>> = HashMap::new();
        let mut v6: HashMap<u8, IntMap<u128>> = HashMap::new();
        for (no, raw) in text.lines().enumerate() {
            let line_no = no + 1;
            let bad = |what: &'static str| BloomError::Entities {
                line: line_no,
                what,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(prefix), Some(name), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected PREFIX<TAB>ENTITY"));
            };
            if !valid_entity_name(name) {
                return Err(bad(
                    "entity name must be 1-255 characters without '@', '#', whitespace or controls",
                ));
            }
            let next_id = u32::try_from(e.names.len()).map_err(|_| bad("too many entities"))?;
            let id = *ids.entry(name.to_string()).or_insert_with(|| {
                e.names.push(name.to_string());
                next_id
            });
            let (addr, len) = match prefix.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (prefix, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad("bad address in prefix"))?;
            let len = match len {
                Some(l) => Some(l.parse::<u8>().map_err(|_| bad("bad prefix length"))?),
                None => None,
            };
            let previous = match addr {
                IpAddr::V4(a) => {
                    let len = len.unwrap_or(32);
                    if len > 32 {
                        return Err(bad("IPv4 prefix length over 32"));
                    }
                    let a = u32::from(a);
                    if mask4(a, len) != a {
                        return Err(bad("host bits set below the prefix length"));
                    }
                    v4.entry(len).or_default().insert(a, id)
                }
                IpAddr::V6(a) => {
                    let len = len.unwrap_or(128);
                    if len > 128 {
                        return Err(bad("IPv6 prefix length over 128"));
                    }
                    let a = u128::from(a);
                    if mask6(a, len) != a {
                        return Err(bad("host bits set below the prefix length"));
                    }
                    v6.entry(len).or_default().insert(a, id)
                }
            };
            if previous.is_some_and(|p| p != id) {
                return Err(bad("prefix already assigned to another entity"));
            }
        }
        e.v4 = v4.into_iter().collect();
        e.v4.sort_by_key(|x| std::cmp::Reverse(x.0));
        e.v6 = v6.into_iter().collect();
        e.v6.sort_by_key(|x| std::cmp::Reverse(x.0));
        Ok(e)
    }

    /// The entity of client `a` (longest matching prefix, else `UNKNOWN`).
    pub fn lookup(&self, a: IpAddr) -> &str {
        self.name(self.lookup_id(a))
    }

    /// The entity id of client `a`; 0 is `UNKNOWN`.
    pub(crate) fn lookup_id(&self, a: IpAddr) -> u32 {
        match canonical(a) {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                for (len, map) in &self.v4 {
                    if let Some(&id) = map.get(&mask4(a, *len)) {
                        return id;
                    }
                }
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                for (len, map) in &self.v6 {
                    if let Some(&id) = map.get(&mask6(a, *len)) {
                        return id;
                    }
                }
            }
        }
        0
    }

    /// The name of entity `id` (`UNKNOWN` for an id out of range).
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or(UNKNOWN)
    }

    /// Number of entities, `UNKNOWN` included.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// IPv4-mapped IPv6 addresses become IPv4.
pub(crate) fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// 16 bytes identifying a client (IPv4 as IPv4-mapped IPv6).
pub(crate) fn client_bytes(a: IpAddr) -> [u8; 16] {
    match canonical(a) {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let e = Entities::parse(
            "# comment\n10.0.0.0/8\tisp\n10.1.0.0/16\tcampus # trailing\n\n\
             10.1.2.3\thost\n2001:db8::/32 isp\n2001:db8:1::/48\tcampus\n0.0.0.0/0\tworld\n",
        )
        .unwrap();
        let l = |s: &str| e.lookup(s.parse().unwrap()).to_string();
        assert_eq!(l("10.2.3.4"), "isp");
        assert_eq!(l("10.1.9.9"), "campus");
        assert_eq!(l("10.1.2.3"), "host");
        assert_eq!(l("::ffff:10.1.2.3"), "host");
        assert_eq!(l("192.0.2.1"), "world");
        assert_eq!(l("2001:db8:1::5"), "campus");
        assert_eq!(l("2001:db8:2::5"), "isp");
        assert_eq!(l("2001:db9::1"), UNKNOWN);
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn refuses_bad_lines() {
        for (text, line) in [
            ("10.0.0.0/8\n", 1),
            ("# x\n10.0.0.1/8\tisp\n", 2),
            ("10.0.0.0/33\tisp\n", 1),
            ("10.0.0.0/8\ta@b\n", 1),
            ("nonsense\tisp\n", 1),
            ("10.0.0.0/8\ta\n10.0.0.0/8\tb\n", 2),
            ("10.0.0.0/8\ta b\n", 1),
        ] {
            match Entities::parse(text) {
                Err(BloomError::Entities { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
