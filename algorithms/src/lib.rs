//! # ipwash-algorithms
//!
//! The IP address techniques surveyed in RFC 8932 (BCP 232) Appendix B, plus
//! the newer IETF ipcrypt modes. This crate is pure: it does no I/O and knows
//! nothing about packets. One module per technique; each module's doc says
//! what the technique preserves, whether it is reversible, and its reference.
//!
//! - Stateless maps implement [`AddrMap`] (`Send + Sync`, usable from many
//!   threads, with batch entry points for AES throughput).
//! - Reversible stateless maps also implement [`Reversible`].
//! - Stateful maps (enumeration, prefix map) implement [`StatefulMap`] and
//!   take `&mut self`; their tables can be exported and re-imported so that
//!   several files and runs stay consistent.
#![warn(missing_docs)]

use std::net::{Ipv4Addr, Ipv6Addr};

pub mod bytesperm;
pub mod cryptopan;
pub mod cryptopant;
pub mod enumerate;
pub mod ipcipher;
pub mod ipcrypt_det;
pub mod ipcrypt_nd;
pub mod ipcrypt_pfx;
pub mod key;
pub mod macperm;
pub mod pass;
pub mod prefix_map;
pub mod truncate;
pub mod tsa;

pub use key::{Key, KeyError};

/// A stateless address map: the same input always gives the same output.
pub trait AddrMap: Send + Sync {
    /// Map one IPv4 address.
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr;
    /// Map one IPv6 address.
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr;
    /// Map many IPv4 addresses in place. Implementations based on AES
    /// override this to encrypt many blocks per call.
    fn map_v4_batch(&self, addrs: &mut [Ipv4Addr]) {
        for a in addrs {
            *a = self.map_v4(*a);
        }
    }
    /// Map many IPv6 addresses in place.
    fn map_v6_batch(&self, addrs: &mut [Ipv6Addr]) {
        for a in addrs {
            *a = self.map_v6(*a);
        }
    }
    /// True when `cpl(F(x), F(y)) == cpl(x, y)` for all x, y.
    fn prefix_preserving(&self) -> bool;
    /// True when mapping one address of the family (`v6` or IPv4) costs
    /// less than looking it up in a cache (a likely cache miss): callers
    /// then map directly.
    fn cheap(&self, v6: bool) -> bool {
        let _ = v6;
        false
    }
}

/// A stateless map that can be inverted with the same key.
pub trait Reversible: AddrMap {
    /// Invert [`AddrMap::map_v4`].
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr;
    /// Invert [`AddrMap::map_v6`].
    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr;
}

/// A map whose output depends on the order addresses are first seen.
/// Runs on one thread, in input order.
pub trait StatefulMap: Send {
    /// Map one IPv4 address, recording it if new.
    fn map_v4(&mut self, a: Ipv4Addr) -> Ipv4Addr;
    /// Map one IPv6 address, recording it if new.
    fn map_v6(&mut self, a: Ipv6Addr) -> Ipv6Addr;
    /// True when the map is prefix-preserving.
    fn prefix_preserving(&self) -> bool;
    /// Number of distinct addresses held.
    fn len(&self) -> usize;
    /// True when no address has been mapped yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Approximate bytes of memory held by the table.
    fn memory_bytes(&self) -> usize;
}

/// Length of the common prefix of two addresses of `bits` bits, held in the
/// low bits of a `u128`.
pub fn cpl(x: u128, y: u128, bits: u32) -> u32 {
    let d = (x ^ y) << (128 - bits);
    if d == 0 {
        bits
    } else {
        d.leading_zeros()
    }
}
