//! Crypto-PAn (Xu, Fan, Ammar, Moon 2002), RFC 8932 B.2.4.
//!
//! Prefix-preserving, one-to-one and reversible with the key. Byte-compatible
//! with the 2002 reference code for IPv4, and with yacryptopan for IPv6.
//!
//! PLACEHOLDER: straightforward one-block-at-a-time version; the batched
//! implementation replaces it.

use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

use crate::{AddrMap, Key, Reversible};

/// A Crypto-PAn instance for one 32-byte key.
pub struct CryptoPan {
    aes: Aes128,
    pad: u128,
}

impl CryptoPan {
    /// Set up from the 32-byte key: AES key `key[0..16]`, pad `E(key[16..32])`.
    pub fn new(key: &Key<32>) -> Self {
        let k = key.bytes();
        let aes = Aes128::new_from_slice(&k[..16]).expect("16-byte key");
        let mut pad = aes::Block::clone_from_slice(&k[16..32]);
        aes.encrypt_block(&mut pad);
        let pad = u128::from_be_bytes(pad.into());
        CryptoPan { aes, pad }
    }

    fn otp(&self, a: u128, bits: u32, decrypt: bool) -> u128 {
        // `a` is left-aligned in 128 bits.
        let mut out = 0u128;
        let mut known = if decrypt { 0 } else { a };
        for pos in 0..bits {
            let m: u128 = if pos == 0 { 0 } else { !0u128 << (128 - pos) };
            let block = (known & m) | (self.pad & !m);
            let mut b = aes::Block::from(block.to_be_bytes());
            self.aes.encrypt_block(&mut b);
            let bit = (b[0] >> 7) as u128;
            let flip = bit << (127 - pos);
            out |= flip;
            if decrypt {
                known |= (a ^ flip) & (1u128 << (127 - pos));
            }
        }
        out
    }

    fn run(&self, a: u128, bits: u32, decrypt: bool) -> u128 {
        let left = a << (128 - bits);
        (left ^ self.otp(left, bits, decrypt)) >> (128 - bits)
    }
}

impl AddrMap for CryptoPan {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.run(u32::from(a) as u128, 32, false) as u32)
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.run(u128::from(a), 128, false))
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

impl Reversible for CryptoPan {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.run(u32::from(a) as u128, 32, true) as u32)
    }
    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.run(u128::from(a), 128, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_sample() {
        let key =
            Key::<32>::from_hex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202")
                .unwrap();
        let c = CryptoPan::new(&key);
        let a: Ipv4Addr = "24.5.0.80".parse().unwrap();
        let m = c.map_v4(a);
        assert_eq!(m, "100.9.15.210".parse::<Ipv4Addr>().unwrap());
        assert_eq!(c.unmap_v4(m), a);
        let v6: Ipv6Addr = "::1".parse().unwrap();
        assert_eq!(
            c.map_v6(v6),
            "78ff:f001:9fc0:20df:8380:b1f1:704:ed"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(c.unmap_v6(c.map_v6(v6)), v6);
    }
}
