//! Pass bits: the top `N` bits of every address pass through unchanged and
//! the rest is mapped by a prefix-preserving technique, as ISI's cryptopANT
//! does with `--pass4` / `--pass6` (researchers keep, say, the /24 or the
//! /64 in clear so that routing-level studies still work).
//!
//! **Preserves:** the top `N` bits exactly; below them, prefixes
//! (`cpl(F'(x), F'(y)) == cpl(x, y)`) and injectivity, as the inner
//! technique. **Reversible:** when the inner technique is. **Reference:**
//! cryptopANT's pass bits (see [`crate::cryptopant`], which implements them
//! natively).
//!
//! The definition: `F'(x) = top_N(x) | low(F(x))`. For a prefix-preserving
//! `F`, the top `N` bits of `F(x)` depend only on the top `N` bits of `x`, so
//! the low bits of `F(x)` are the bits a prefix-preserving scrambler that
//! skips its first `N` steps would produce (for Crypto-PAn and ipcrypt-pfx
//! exactly those). Two addresses with the same top `N` bits keep their
//! common prefix below them because `F` does; two with different top `N`
//! bits differ there in the output too. The inverse: the top bits of `x`
//! are those of `y`; `F(y)` shares them, so its top bits are those of
//! `F(x)`, which complete `F(x)` for the inner inverse.
//!
//! ipcrypt-pfx encrypts an IPv4-mapped IPv6 address as IPv4 (its
//! definition), so it preserves prefixes within the IPv4-mapped block and
//! within the rest of IPv6, not across the two; the same holds with pass
//! bits. (An address outside the block whose output lands inside it, which
//! needs its top `N` bits zero and a 96-N-bit coincidence, would not wash
//! back.)

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{AddrMap, Reversible};

/// A prefix-preserving map with its top bits passed through.
#[derive(Clone)]
pub struct Pass<M> {
    inner: M,
    mask4: u32,
    mask6: u128,
}

/// Mask of the top `n` bits of a 32-bit word.
pub fn mask32(n: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(n.min(32))).unwrap_or(0)
}

/// Mask of the top `n` bits of a 128-bit word.
pub fn mask128(n: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(n.min(128)))
        .unwrap_or(0)
}

impl<M: AddrMap> Pass<M> {
    /// Wrap `inner`, passing the top `pass4` (0..=32) IPv4 bits and `pass6`
    /// (0..=128) IPv6 bits. None when `inner` is not prefix-preserving or a
    /// count is out of range.
    pub fn new(inner: M, pass4: u8, pass6: u8) -> Option<Self> {
        if !inner.prefix_preserving() || pass4 > 32 || pass6 > 128 {
            return None;
        }
        Some(Pass {
            inner,
            mask4: mask32(pass4),
            mask6: mask128(pass6),
        })
    }

    fn merge4(&self, x: Ipv4Addr, y: Ipv4Addr) -> Ipv4Addr {
        let (x, y) = (u32::from(x), u32::from(y));
        Ipv4Addr::from((x & self.mask4) | (y & !self.mask4))
    }

    fn merge6(&self, x: Ipv6Addr, y: Ipv6Addr) -> Ipv6Addr {
        let (x, y) = (u128::from(x), u128::from(y));
        Ipv6Addr::from((x & self.mask6) | (y & !self.mask6))
    }
}

const CHUNK: usize = 256;

impl<M: AddrMap> AddrMap for Pass<M> {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        self.merge4(a, self.inner.map_v4(a))
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        self.merge6(a, self.inner.map_v6(a))
    }

    fn map_v4_batch(&self, addrs: &mut [Ipv4Addr]) {
        let mut orig = [Ipv4Addr::UNSPECIFIED; CHUNK];
        for chunk in addrs.chunks_mut(CHUNK) {
            orig[..chunk.len()].copy_from_slice(chunk);
            self.inner.map_v4_batch(chunk);
            for (a, &x) in chunk.iter_mut().zip(&orig) {
                *a = self.merge4(x, *a);
            }
        }
    }

    fn map_v6_batch(&self, addrs: &mut [Ipv6Addr]) {
        let mut orig = [Ipv6Addr::UNSPECIFIED; CHUNK];
        for chunk in addrs.chunks_mut(CHUNK) {
            orig[..chunk.len()].copy_from_slice(chunk);
            self.inner.map_v6_batch(chunk);
            for (a, &x) in chunk.iter_mut().zip(&orig) {
                *a = self.merge6(x, *a);
            }
        }
    }

    fn prefix_preserving(&self) -> bool {
        true
    }

    fn cheap(&self, v6: bool) -> bool {
        self.inner.cheap(v6)
    }
}

impl<M: Reversible> Reversible for Pass<M> {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let y = u32::from(a);
        // y shares the top bits of x, so F(y) shares the top bits of F(x).
        let top = u32::from(self.inner.map_v4(a)) & self.mask4;
        let x = self.inner.unmap_v4(Ipv4Addr::from(top | (y & !self.mask4)));
        self.merge4(a, x)
    }

    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let y = u128::from(a);
        let top = u128::from(self.inner.map_v6(a)) & self.mask6;
        let x = self.inner.unmap_v6(Ipv6Addr::from(top | (y & !self.mask6)));
        self.merge6(a, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cryptopan::CryptoPan;
    use crate::Key;

    #[test]
    fn pass_matches_a_scrambler_that_skips_its_first_steps() {
        // Crypto-PAn's flip bit at position p depends on bits above p only,
        // so passing the top N bits equals not flipping positions < N.
        let key = Key::<32>::new(*b"0123456789abcdef0123456789abcdef");
        let c = CryptoPan::new(&key);
        for n in [0u8, 1, 8, 16, 24, 31, 32] {
            let p = Pass::new(c.clone(), n, 0).unwrap();
            for x in [0u32, 0x0a00_0001, 0xc0a8_0101, 0xffff_ffff, 0x1234_5678] {
                let a = Ipv4Addr::from(x);
                let y = u32::from(p.map_v4(a));
                let full = u32::from(c.map_v4(a));
                let m = mask32(n);
                assert_eq!(y & m, x & m);
                assert_eq!(y & !m, full & !m);
                assert_eq!(p.unmap_v4(Ipv4Addr::from(y)), a);
            }
        }
    }
}
