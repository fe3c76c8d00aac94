//! Truncation (RFC 8932 B.2.1): keep the top `p` bits of an address and
//! zero the rest.
//!
//! - **Preserves:** the network part, up to `p` bits. Common-prefix lengths
//!   are *not* preserved in general (every address in a /p collapses to one
//!   value), so [`AddrMap::prefix_preserving`] is false: the map is not
//!   one-to-one.
//! - **Reversible:** no. Truncation is idempotent: truncating twice gives
//!   the same result as truncating once.
//! - **Defaults:** IPv4 /24 and IPv6 /48, as Google Analytics and dnscap's
//!   `anonmask` use.
//! - **Variants:** [`TruncMode::Reverse`] zeroes the top bits and keeps the
//!   low `p` bits; the black-marker technique is `p = 0`
//!   ([`Truncate::black_marker`]), which maps every address to `0.0.0.0` or
//!   `::`.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) takes the IPv4 rule on its
//! last 32 bits and stays IPv4-mapped, as Matomo and anonip do, so the same
//! client truncates to the same /24 whichever way the socket reported it.
//!
//! **Caveat, embedded IPv4:** other IPv6 forms that carry an IPv4 address
//! are truncated as plain IPv6 and are *not* special-cased. With the default
//! /48, a 6to4 address `2002:AABB:CCDD::/48` keeps its whole embedded IPv4
//! address `A.B.C.D` (bits 16..48), and a Teredo address (`2001:0::/32`)
//! keeps the top 16 bits of its server's IPv4 address. Choose a shorter IPv6
//! prefix (for example /16 for 6to4) if such traffic matters. We do not
//! rewrite them with the IPv4 rule because the result would no longer be a
//! plain "top p bits" truncation, which operators and C-DNS readers rely on.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use ipwash_algorithms::AddrMap;
//! use ipwash_algorithms::truncate::Truncate;
//!
//! let t = Truncate::default();
//! assert_eq!(t.map_v4(Ipv4Addr::new(192, 0, 2, 77)), Ipv4Addr::new(192, 0, 2, 0));
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::AddrMap;

/// Which bits truncation keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TruncMode {
    /// Keep the top `p` bits and zero the rest (the usual truncation).
    #[default]
    Keep,
    /// Zero the top bits and keep the low `p` bits (reverse truncation).
    Reverse,
}

/// Errors building a [`Truncate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TruncError {
    /// The IPv4 prefix length is above 32.
    #[error("IPv4 prefix length {0} is out of range 0..=32")]
    V4Prefix(u8),
    /// The IPv6 prefix length is above 128.
    #[error("IPv6 prefix length {0} is out of range 0..=128")]
    V6Prefix(u8),
}

/// Truncation with separate IPv4 and IPv6 prefix lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncate {
    v4_prefix: u8,
    v6_prefix: u8,
    mode: TruncMode,
    v4_mask: u32,
    v6_mask: u128,
}

/// Mask with the top `p` bits of a `bits`-bit word set (`p <= bits`).
fn top_mask(p: u32, bits: u32) -> u128 {
    let all: u128 = if bits == 128 { !0 } else { (1u128 << bits) - 1 };
    all & !all.checked_shr(p).unwrap_or(0)
}

impl Truncate {
    /// Keep (or, with [`TruncMode::Reverse`], keep the low) `v4_prefix` bits
    /// of IPv4 addresses and `v6_prefix` bits of IPv6 addresses.
    pub fn new(v4_prefix: u8, v6_prefix: u8, mode: TruncMode) -> Result<Self, TruncError> {
        if v4_prefix > 32 {
            return Err(TruncError::V4Prefix(v4_prefix));
        }
        if v6_prefix > 128 {
            return Err(TruncError::V6Prefix(v6_prefix));
        }
        let (m4, m6) = (
            top_mask(u32::from(v4_prefix), 32),
            top_mask(u32::from(v6_prefix), 128),
        );
        let (v4_mask, v6_mask) = match mode {
            TruncMode::Keep => (m4 as u32, m6),
            // Keep the low p bits: the complement of the top (bits - p) bits.
            TruncMode::Reverse => (
                !(top_mask(32 - u32::from(v4_prefix), 32) as u32),
                !top_mask(128 - u32::from(v6_prefix), 128),
            ),
        };
        Ok(Truncate {
            v4_prefix,
            v6_prefix,
            mode,
            v4_mask,
            v6_mask,
        })
    }

    /// The black-marker technique: every address becomes `0.0.0.0` or `::`
    /// (`::ffff:0.0.0.0` for IPv4-mapped input).
    pub fn black_marker() -> Self {
        Truncate {
            v4_prefix: 0,
            v6_prefix: 0,
            mode: TruncMode::Keep,
            v4_mask: 0,
            v6_mask: 0,
        }
    }

    /// The IPv4 and IPv6 prefix lengths.
    pub fn prefixes(&self) -> (u8, u8) {
        (self.v4_prefix, self.v6_prefix)
    }

    /// Which bits are kept.
    pub fn mode(&self) -> TruncMode {
        self.mode
    }
}

impl Default for Truncate {
    /// IPv4 /24 and IPv6 /48, keeping the top bits.
    fn default() -> Self {
        Truncate {
            v4_prefix: 24,
            v6_prefix: 48,
            mode: TruncMode::Keep,
            v4_mask: 0xffff_ff00,
            v6_mask: top_mask(48, 128),
        }
    }
}

/// The top 96 bits of an IPv4-mapped IPv6 address, `::ffff:0:0/96`.
const V4_MAPPED: u128 = 0xffff;

impl AddrMap for Truncate {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(a) & self.v4_mask)
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let x = u128::from(a);
        if x >> 32 == V4_MAPPED {
            let low = (x as u32) & self.v4_mask;
            return Ipv6Addr::from((V4_MAPPED << 32) | u128::from(low));
        }
        Ipv6Addr::from(x & self.v6_mask)
    }

    fn cheap(&self, _v6: bool) -> bool {
        true
    }
    fn prefix_preserving(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_keep_24_and_48() {
        let t = Truncate::default();
        assert_eq!(t, Truncate::new(24, 48, TruncMode::Keep).unwrap());
        assert_eq!(t.prefixes(), (24, 48));
        assert_eq!(t.map_v4(v4("198.51.100.200")), v4("198.51.100.0"));
        assert_eq!(
            t.map_v6(v6("2001:db8:abcd:1234:5678::1")),
            v6("2001:db8:abcd::")
        );
        assert!(!t.prefix_preserving());
    }

    #[test]
    fn odd_prefixes_and_extremes() {
        let t = Truncate::new(13, 65, TruncMode::Keep).unwrap();
        assert_eq!(t.map_v4(v4("255.255.255.255")), v4("255.248.0.0"));
        assert_eq!(
            t.map_v6(v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            v6("ffff:ffff:ffff:ffff:8000::")
        );
        let all = Truncate::new(32, 128, TruncMode::Keep).unwrap();
        assert_eq!(all.map_v4(v4("1.2.3.4")), v4("1.2.3.4"));
        assert_eq!(all.map_v6(v6("2001:db8::1")), v6("2001:db8::1"));
    }

    #[test]
    fn reverse_keeps_low_bits() {
        let t = Truncate::new(8, 16, TruncMode::Reverse).unwrap();
        assert_eq!(t.mode(), TruncMode::Reverse);
        assert_eq!(t.map_v4(v4("10.20.30.40")), v4("0.0.0.40"));
        assert_eq!(t.map_v6(v6("2001:db8::abcd:1234")), v6("::1234"));
        let none = Truncate::new(0, 0, TruncMode::Reverse).unwrap();
        assert_eq!(none.map_v4(v4("10.20.30.40")), v4("0.0.0.0"));
        let all = Truncate::new(32, 128, TruncMode::Reverse).unwrap();
        assert_eq!(all.map_v4(v4("10.20.30.40")), v4("10.20.30.40"));
        assert_eq!(all.map_v6(v6("2001:db8::1")), v6("2001:db8::1"));
    }

    #[test]
    fn black_marker_zeroes_everything() {
        let t = Truncate::black_marker();
        assert_eq!(t, Truncate::new(0, 0, TruncMode::Keep).unwrap());
        assert_eq!(t.map_v4(v4("203.0.113.9")), v4("0.0.0.0"));
        assert_eq!(t.map_v6(v6("2001:db8::9")), v6("::"));
        assert_eq!(t.map_v6(v6("::ffff:203.0.113.9")), v6("::ffff:0.0.0.0"));
    }

    #[test]
    fn mapped_v4_uses_the_v4_rule() {
        let t = Truncate::default();
        assert_eq!(t.map_v6(v6("::ffff:192.0.2.130")), v6("::ffff:192.0.2.0"));
        let r = Truncate::new(8, 16, TruncMode::Reverse).unwrap();
        assert_eq!(r.map_v6(v6("::ffff:192.0.2.130")), v6("::ffff:0.0.0.130"));
        // An IPv4-compatible (not mapped) address is plain IPv6.
        assert_eq!(t.map_v6(v6("::192.0.2.130")), v6("::"));
    }

    #[test]
    fn six_to_four_keeps_embedded_v4_at_48() {
        // Documented caveat: 2002:c000:0282::/48 still names 192.0.2.130.
        let t = Truncate::default();
        assert_eq!(t.map_v6(v6("2002:c000:282:1::5")), v6("2002:c000:282::"));
    }

    #[test]
    fn rejects_out_of_range() {
        assert_eq!(
            Truncate::new(33, 48, TruncMode::Keep),
            Err(TruncError::V4Prefix(33))
        );
        assert_eq!(
            Truncate::new(24, 129, TruncMode::Reverse),
            Err(TruncError::V6Prefix(129))
        );
    }

    #[test]
    fn idempotent_on_samples() {
        for t in [
            Truncate::default(),
            Truncate::new(7, 99, TruncMode::Reverse).unwrap(),
            Truncate::black_marker(),
        ] {
            for a in ["0.0.0.0", "255.255.255.255", "10.1.2.3"] {
                let once = t.map_v4(v4(a));
                assert_eq!(t.map_v4(once), once);
            }
            for a in ["::", "::ffff:1.2.3.4", "2001:db8::1", "ffff::ffff"] {
                let once = t.map_v6(v6(a));
                assert_eq!(t.map_v6(once), once);
            }
        }
    }
}
