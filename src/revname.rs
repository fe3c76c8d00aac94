//! Reverse names: the addresses written as DNS names under `in-addr.arpa`
//! (RFC 1035 §3.5) and `ip6.arpa` (RFC 3596 §2.5), read from and written
//! back to DNS wire labels.
//!
//! # Rules
//! - **Suffix.** A name is a reverse name when its last two labels are
//!   `in-addr.arpa` or `ip6.arpa`, in any case. The suffix labels (and every
//!   label that is not an address label) are copied byte for byte, so their
//!   case is kept.
//! - **Address labels** are read from the right: up to four canonical
//!   decimal labels (`0`..`255`, no leading zero) under `in-addr.arpa`, up
//!   to 32 one-digit hex labels under `ip6.arpa`. Four octets or 32 nibbles
//!   are a full address; fewer are a prefix (`2.0.192.in-addr.arpa` is
//!   `192.0.2.0/24`, 16 nibbles a `/64`).
//! - **Full names** are washed as the address they hold, with
//!   [`Washer::wash`] as an address of unknown side: the keep-list and the
//!   `--mapped` rule apply as for IP headers (`--scope clients` does not
//!   keep them: a reverse name belongs to neither end of the exchange).
//! - **Partial names** are washed with [`Washer::wash_prefix`], the rule of
//!   the EDNS Client Subnet option: the prefix is zero-extended, mapped and
//!   cut back to its labels. For prefix-preserving techniques (and
//!   truncation) that is exactly the prefix of every washed address inside
//!   it, so `2.0.192.in-addr.arpa` and `5.2.0.192.in-addr.arpa` stay
//!   consistent. For the others (`ipcipher`, `enumerate`) it is the washed
//!   network address cut back: no original bit survives, but prefixes and
//!   the addresses in them no longer agree.
//! - **Nibble case.** Each new hex letter takes the case of the letter it
//!   replaces; where a digit is replaced by a letter, the letter is upper
//!   case when the name's nibbles hold upper-case letters and no lower-case
//!   ones, lower case otherwise.
//! - **Extra labels** to the left of the address labels (DNS-SD's
//!   `b._dns-sd._udp`, a fifth decimal label) are kept as they are. When the
//!   address is not complete, the labels between it and the first label
//!   starting with `_` must not continue it: an `in-addr.arpa` label there
//!   holding a decimal digit (`01`, `256`, RFC 2317's `0/25`) or an
//!   `ip6.arpa` label there made of hex digits only (`ab`) makes the name
//!   *non-canonical*, and the caller fails closed ([`NameFault`]): such a
//!   label may carry the rest of the address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wash::{Side, Washer};

/// What `--reverse-names` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReverseNames {
    /// Map the address inside every reverse name (the default).
    #[default]
    Wash,
    /// Leave reverse names as they are (they MAY hold the addresses washed
    /// elsewhere).
    Keep,
}

/// A reverse name that cannot be washed safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameFault {
    /// A label next to the address labels may continue the address.
    #[error("non-canonical reverse name")]
    NonCanonical,
}

/// A reverse name read from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reverse {
    /// The address labels, most significant first, zero-extended.
    pub addr: IpAddr,
    /// Number of address labels: octets (0..=4) or nibbles (0..=32).
    pub n: u8,
    /// Index of the leftmost address label in the name's label list.
    pub first: usize,
}

impl Reverse {
    /// True for a full address (four octets, 32 nibbles).
    pub fn full(&self) -> bool {
        self.n == if self.addr.is_ipv4() { 4 } else { 32 }
    }

    /// Prefix length in bits of the address labels.
    pub fn bits(&self) -> u8 {
        if self.addr.is_ipv4() {
            self.n * 8
        } else {
            self.n * 4
        }
    }
}

/// Counters of reverse names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameStats {
    /// Reverse names seen (with at least one address label).
    pub found: u64,
    /// Reverse names written with a different address.
    pub washed: u64,
}

impl NameStats {
    /// Add another counter.
    pub fn add(&mut self, o: &NameStats) {
        self.found += o.found;
        self.washed += o.washed;
    }
}

fn eq_ci(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A canonical decimal octet label.
fn canon_octet(l: &[u8]) -> Option<u8> {
    if l.is_empty() || l.len() > 3 || !l.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if l.len() > 1 && l[0] == b'0' {
        return None;
    }
    let v = l.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
    u8::try_from(v).ok()
}

fn nibble(l: &[u8]) -> Option<u8> {
    match l {
        [c] => (*c as char).to_digit(16).map(|d| d as u8),
        _ => None,
    }
}

/// Read a reverse name from its labels (root excluded). `Ok(None)` when it
/// is not under `in-addr.arpa` / `ip6.arpa`.
pub fn parse(labels: &[&[u8]]) -> Result<Option<Reverse>, NameFault> {
    let k = labels.len();
    if k < 2 || !eq_ci(labels[k - 1], b"arpa") {
        return Ok(None);
    }
    let v6 = if eq_ci(labels[k - 2], b"in-addr") {
        false
    } else if eq_ci(labels[k - 2], b"ip6") {
        true
    } else {
        return Ok(None);
    };
    let mut i = k - 2;
    let (addr, n, full) = if v6 {
        let mut v = 0u128;
        let mut n = 0u8;
        while n < 32 && i > 0 {
            let Some(d) = nibble(labels[i - 1]) else {
                break;
            };
            v |= u128::from(d) << (124 - 4 * u32::from(n));
            n += 1;
            i -= 1;
        }
        (IpAddr::V6(Ipv6Addr::from(v)), n, 32)
    } else {
        let mut o = [0u8; 4];
        let mut n = 0u8;
        while n < 4 && i > 0 {
            let Some(d) = canon_octet(labels[i - 1]) else {
                break;
            };
            o[n as usize] = d;
            n += 1;
            i -= 1;
        }
        (IpAddr::V4(Ipv4Addr::from(o)), n, 4)
    };
    if n < full {
        for l in labels[..i].iter().rev() {
            if l.first() == Some(&b'_') {
                break;
            }
            let continues = if v6 {
                !l.is_empty() && l.iter().all(u8::is_ascii_hexdigit)
            } else {
                l.iter().any(u8::is_ascii_digit)
            };
            if continues {
                return Err(NameFault::NonCanonical);
            }
        }
    }
    Ok(Some(Reverse { addr, n, first: i }))
}

/// The labels of an uncompressed wire name (`len label ... 0`); None when
/// it is not one.
pub fn wire_labels(wire: &[u8]) -> Option<Vec<&[u8]>> {
    let mut v = Vec::new();
    let mut at = 0;
    loop {
        let len = *wire.get(at)? as usize;
        if len == 0 {
            return (at + 1 == wire.len()).then_some(v);
        }
        if len > 63 {
            return None;
        }
        v.push(wire.get(at + 1..at + 1 + len)?);
        at += 1 + len;
    }
}

/// Wash the address of a parsed reverse name.
fn wash_addr(r: &Reverse, washer: &mut Washer) -> IpAddr {
    if r.full() {
        return washer.wash(r.addr, Side::Unknown);
    }
    let nbytes = usize::from(r.bits()).div_ceil(8);
    match r.addr {
        IpAddr::V4(a) => {
            let mut b = a.octets();
            washer.wash_prefix(&mut b[..nbytes], false, r.bits(), Side::Unknown);
            let mut o = [0u8; 4];
            o[..nbytes].copy_from_slice(&b[..nbytes]);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        IpAddr::V6(a) => {
            let mut b = a.octets();
            washer.wash_prefix(&mut b[..nbytes], true, r.bits(), Side::Unknown);
            // `wash_prefix` leaves the bits past the prefix zero, the low
            // nibble of an odd count included.
            let mut o = [0u8; 16];
            o[..nbytes].copy_from_slice(&b[..nbytes]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

fn push_label(out: &mut Vec<u8>, l: &[u8]) {
    out.push(l.len() as u8);
    out.extend_from_slice(l);
}

fn push_dec_label(out: &mut Vec<u8>, x: u8) {
    let mut b = [0u8; 3];
    let mut n = 0;
    if x >= 100 {
        b[n] = b'0' + x / 100;
        n += 1;
    }
    if x >= 10 {
        b[n] = b'0' + (x / 10) % 10;
        n += 1;
    }
    b[n] = b'0' + x % 10;
    n += 1;
    push_label(out, &b[..n]);
}

/// Write the address labels of `a` (its first `n` octets or nibbles, least
/// significant first) as wire labels. `case` gives, per nibble label (in
/// output order), the original character, for case keeping; `upper` is the
/// style for letters replacing digits.
fn push_address(out: &mut Vec<u8>, a: IpAddr, n: u8, case: &[&[u8]], upper: bool) {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            for i in (0..usize::from(n.min(4))).rev() {
                push_dec_label(out, o[i]);
            }
        }
        IpAddr::V6(v) => {
            let x = u128::from(v);
            for (j, i) in (0..u32::from(n.min(32))).rev().enumerate() {
                let d = ((x >> (124 - 4 * i)) & 15) as u8;
                let mut c = b"0123456789abcdef"[d as usize];
                if c.is_ascii_alphabetic() {
                    let orig = case.get(j).and_then(|l| l.first()).copied();
                    let up = match orig {
                        Some(o) if o.is_ascii_uppercase() => true,
                        Some(o) if o.is_ascii_lowercase() => false,
                        _ => upper,
                    };
                    if up {
                        c = c.to_ascii_uppercase();
                    }
                }
                push_label(out, &[c]);
            }
        }
    }
}

/// The reverse name (wire form) of the first `n` labels of `a`, with the
/// given suffix labels appended as they are. For tests and builders.
pub fn build_wire(a: IpAddr, n: u8, upper: bool) -> Vec<u8> {
    let mut out = Vec::new();
    push_address(&mut out, a, n, &[], upper);
    match a {
        IpAddr::V4(_) => {
            push_label(&mut out, b"in-addr");
        }
        IpAddr::V6(_) => {
            push_label(&mut out, b"ip6");
        }
    }
    push_label(&mut out, b"arpa");
    out.push(0);
    out
}

/// Wash the reverse name in the uncompressed wire name `wire`. Returns
/// whether it is a reverse name with address labels, and the new wire name
/// when it changed.
pub fn wash_wire(wire: &[u8], washer: &mut Washer) -> Result<(bool, Option<Vec<u8>>), NameFault> {
    let Some(labels) = wire_labels(wire) else {
        return Ok((false, None));
    };
    let Some(r) = parse(&labels)? else {
        return Ok((false, None));
    };
    if r.n == 0 {
        return Ok((false, None));
    }
    let new = wash_addr(&r, washer);
    if new == r.addr {
        return Ok((true, None));
    }
    let addr_labels = &labels[r.first..r.first + usize::from(r.n)];
    let upper = addr_labels.iter().any(|l| l[0].is_ascii_uppercase())
        && !addr_labels.iter().any(|l| l[0].is_ascii_lowercase());
    let mut out = Vec::with_capacity(wire.len() + 8);
    for l in &labels[..r.first] {
        push_label(&mut out, l);
    }
    push_address(&mut out, new, r.n, addr_labels, upper);
    for l in &labels[r.first + usize::from(r.n)..] {
        push_label(&mut out, l);
    }
    out.push(0);
    if out.len() > 255 {
        // Cannot happen (the address labels are at most as long as
        // canonical ones), but a name over 255 bytes must never be written.
        return Err(NameFault::NonCanonical);
    }
    Ok((true, Some(out)))
}

/// Wash a reverse name written as text (`5.2.0.192.in-addr.arpa`, with or
/// without the final dot). None when it is not a reverse name or does not
/// change. For tests and the text paths.
pub fn wash_text(name: &str, washer: &mut Washer) -> Result<Option<String>, NameFault> {
    let t = name.strip_suffix('.').unwrap_or(name);
    let mut wire = Vec::new();
    for l in t.split('.') {
        if l.is_empty() || l.len() > 63 {
            return Ok(None);
        }
        push_label(&mut wire, l.as_bytes());
    }
    wire.push(0);
    let (_, new) = wash_wire(&wire, washer)?;
    Ok(new.map(|w| wire_to_text(&w)))
}

/// An uncompressed wire name as dotted text (no final dot).
pub fn wire_to_text(w: &[u8]) -> String {
    wire_labels(w)
        .unwrap_or_default()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wash::{KeepPrefix, Technique};
    use ipwash_algorithms::AddrMap;
    use std::sync::Arc;

    /// Adds one to every byte: easy to check by hand, prefix-preserving
    /// enough for these tests (it maps prefixes bytewise).
    struct Inc;
    impl AddrMap for Inc {
        fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
            let o = a.octets().map(|b| b.wrapping_add(1));
            Ipv4Addr::from(o)
        }
        fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
            Ipv6Addr::from(a.octets().map(|b| b.wrapping_add(0x11)))
        }
        fn prefix_preserving(&self) -> bool {
            true
        }
    }

    fn w() -> Washer {
        Washer::new(Technique::Stateless(Arc::new(Inc)))
    }

    fn t(s: &str) -> Option<String> {
        wash_text(s, &mut w()).unwrap()
    }

    #[test]
    fn full_and_partial_ipv4() {
        assert_eq!(
            t("5.2.0.192.in-addr.arpa").as_deref(),
            Some("6.3.1.193.in-addr.arpa")
        );
        // A /24: zero-extended, mapped, cut back.
        assert_eq!(
            t("2.0.192.in-addr.arpa").as_deref(),
            Some("3.1.193.in-addr.arpa")
        );
        assert_eq!(t("192.IN-ADDR.ARPA.").as_deref(), Some("193.IN-ADDR.ARPA"));
        assert_eq!(t("in-addr.arpa"), None);
        assert_eq!(t("www.example.com"), None);
        // 255 wraps to 0: the label gets shorter.
        assert_eq!(
            t("255.0.0.10.in-addr.arpa").as_deref(),
            Some("0.1.1.11.in-addr.arpa")
        );
    }

    #[test]
    fn ipv6_nibbles_keep_their_case() {
        let name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.IP6.ARPA";
        // 2001:db8::1 + 0x11 per byte = 3112:ec9:1111:...:1112
        let got = t(name).unwrap();
        assert!(got.ends_with(".IP6.ARPA"), "{got}");
        assert_eq!(
            got,
            "2.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.9.C.E.1.2.1.1.3.IP6.ARPA"
        );
        let lower = "8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(t(lower).as_deref(), Some("9.c.e.1.2.1.1.3.ip6.arpa"));
        // A letter replacing a digit follows the name's style.
        let upper = "0.0.0.A.ip6.arpa";
        assert_eq!(t(upper).as_deref(), Some("1.1.1.B.ip6.arpa"));
    }

    #[test]
    fn extra_labels_and_noncanonical_forms() {
        assert_eq!(
            t("b._dns-sd._udp.0.2.0.192.in-addr.arpa").as_deref(),
            Some("b._dns-sd._udp.1.3.1.193.in-addr.arpa")
        );
        // A fifth label does not continue a complete address.
        assert_eq!(
            t("9.5.2.0.192.in-addr.arpa").as_deref(),
            Some("9.6.3.1.193.in-addr.arpa")
        );
        let mut wa = w();
        for bad in [
            "01.2.0.192.in-addr.arpa",
            "256.2.0.192.in-addr.arpa",
            "1.0/25.2.0.192.in-addr.arpa",
            "ab.8.b.d.0.1.0.0.2.ip6.arpa",
        ] {
            assert_eq!(
                wash_text(bad, &mut wa),
                Err(NameFault::NonCanonical),
                "{bad}"
            );
        }
        // Non-address labels next to a partial address are fine.
        assert_eq!(
            t("host.2.0.192.in-addr.arpa").as_deref(),
            Some("host.3.1.193.in-addr.arpa")
        );
    }

    #[test]
    fn keep_and_mapped_rules() {
        let mut wa = w();
        wa.keep.push(KeepPrefix::parse("192.0.2.0/24").unwrap());
        assert_eq!(wash_text("5.2.0.192.in-addr.arpa", &mut wa), Ok(None));
        assert_eq!(wash_text("2.0.192.in-addr.arpa", &mut wa), Ok(None));
        assert!(wash_text("5.2.0.198.in-addr.arpa", &mut wa)
            .unwrap()
            .is_some());
        // ::ffff:192.0.2.5 under the default --mapped ipv4: the IPv4 rule.
        let m = "5.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa";
        let got = wash_text(m, &mut w()).unwrap().unwrap();
        // 192.0.2.5 -> 193.1.3.6 = c1.01.03.06
        assert_eq!(
            got,
            "6.0.3.0.1.0.1.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
        );
    }

    #[test]
    fn build_matches_parse() {
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let wire = build_wire(a, 4, false);
        assert_eq!(wire_to_text(&wire), "7.100.51.198.in-addr.arpa");
        let labels = wire_labels(&wire).unwrap();
        let r = parse(&labels).unwrap().unwrap();
        assert_eq!((r.addr, r.n, r.first), (a, 4, 0));
    }
}
