//! The per-worker exact-address cache.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Default entries per family of [`AddrCache`]: 512 KiB for IPv4 and 2 MiB
/// for IPv6 per worker thread.
pub const DEFAULT_CACHE_ENTRIES: usize = 1 << 16;

/// A direct-mapped exact-address cache, one per worker and family. Skewed
/// real traffic repeats addresses, and a hit skips the cipher entirely.
/// Entries are compact (8 bytes for IPv4, 32 for IPv6) so a useful cache
/// stays in the L2 cache. The all-zero address is never cached: a zero key
/// marks an empty slot.
pub struct AddrCache {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    shift4: u32,
    shift6: u32,
}

impl AddrCache {
    /// A cache with at least `n` entries per family (rounded up to a power
    /// of two); 0 disables it.
    pub fn new(n: usize) -> Self {
        Self::with_sizes(n, n)
    }

    /// At least `n4` IPv4 and `n6` IPv6 entries; 0 disables a family.
    pub fn with_sizes(n4: usize, n6: usize) -> Self {
        let size = |n: usize| {
            if n == 0 {
                0
            } else {
                n.next_power_of_two().max(2)
            }
        };
        let (n4, n6) = (size(n4), size(n6));
        AddrCache {
            v4: vec![(0, 0); n4],
            v6: vec![(0, 0); n6],
            shift4: 32 - n4.trailing_zeros().min(32),
            shift6: 64 - n6.trailing_zeros().min(64),
        }
    }

    /// Look up, or compute and remember, an IPv4 address.
    #[inline]
    pub fn v4(&mut self, a: u32, f: impl FnOnce(u32) -> u32) -> u32 {
        if self.v4.is_empty() || a == 0 {
            return f(a);
        }
        let i = (a.wrapping_mul(0x9E37_79B1) >> self.shift4) as usize;
        let slot = &mut self.v4[i];
        if slot.0 == a {
            return slot.1;
        }
        let v = f(a);
        *slot = (a, v);
        v
    }

    /// Look up, or compute and remember, an IPv6 address.
    #[inline]
    pub fn v6(&mut self, a: u128, f: impl FnOnce(u128) -> u128) -> u128 {
        if self.v6.is_empty() || a == 0 {
            return f(a);
        }
        let h =
            ((a as u64) ^ ((a >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (h >> self.shift6) as usize;
        let slot = &mut self.v6[i];
        if slot.0 == a {
            return slot.1;
        }
        let v = f(a);
        *slot = (a, v);
        v
    }

    /// Either family.
    #[inline]
    pub fn get_or(&mut self, a: IpAddr, f: impl FnOnce(IpAddr) -> IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(self.v4(u32::from(v), |x| {
                match f(IpAddr::V4(Ipv4Addr::from(x))) {
                    IpAddr::V4(m) => u32::from(m),
                    IpAddr::V6(_) => x,
                }
            }))),
            IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(self.v6(u128::from(v), |x| {
                match f(IpAddr::V6(Ipv6Addr::from(x))) {
                    IpAddr::V6(m) => u128::from(m),
                    IpAddr::V4(_) => x,
                }
            }))),
        }
    }
}
