//! A keyed, tweaked, length-preserving permutation of byte strings, for
//! identifiers that are not addresses (DNS Cookies, device and
//! organisation identifiers in EDNS options).
//!
//! The string is split into two halves (the left one `n / 2` bytes, the
//! right one the rest) and each of the [`ROUNDS`] rounds XORs into one half,
//! alternately, a key stream computed from the other half: a CBC-MAC under
//! AES-128 of a first block holding the round, the tweak and both lengths,
//! followed by the half's bytes, then expanded in counter mode. Whatever
//! the round function, such an (unbalanced) Feistel network is a
//! permutation of the strings of each length, so two identifiers never
//! collide and the map can be inverted with the key. A single byte has no
//! two halves of bytes: it is split into two 4-bit halves instead, and
//! [`NIBBLE_ROUNDS`] rounds take 4 bits of one AES block each (a keyed
//! permutation of the 256 values, not a fixed XOR).
//!
//! - preserves: the length; nothing else;
//! - reversible: yes, with the key ([`BytesPerm::unmap`]);
//! - tweak: a 32-bit value naming the field (for example an EDNS option
//!   code and the part of the option), so equal bytes in different fields
//!   map differently;
//! - key: 16 bytes, normally derived from a technique's key with
//!   [`BytesPerm::derive`] and the fixed label [`LABEL`].
//!
//! ```
//! use ipwash_algorithms::bytesperm::BytesPerm;
//! let p = BytesPerm::new(&[7u8; 16]);
//! let cookie = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
//! let mut w = cookie;
//! p.map(10, &mut w);
//! assert_ne!(w, cookie);
//! p.unmap(10, &mut w);
//! assert_eq!(w, cookie);
//! ```

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// Feistel rounds.
pub const ROUNDS: u8 = 8;

/// Feistel rounds over the two 4-bit halves of a one-byte string.
pub const NIBBLE_ROUNDS: u8 = 16;

/// The label an identifier key is derived under (see [`BytesPerm::derive`]).
pub const LABEL: [u8; 16] = *b"ipwash EDNS id 1";

/// The keyed byte-string permutation.
#[derive(Clone)]
pub struct BytesPerm {
    aes: Aes128,
}

impl std::fmt::Debug for BytesPerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BytesPerm")
    }
}

impl BytesPerm {
    /// A permutation under a 16-byte key.
    pub fn new(key: &[u8; 16]) -> Self {
        BytesPerm {
            aes: Aes128::new(key.into()),
        }
    }

    /// The identifier key for a technique key (used in 16-byte pieces, the
    /// last one zero-padded): starting from [`LABEL`], each piece in turn
    /// replaces the value `h` with `AES-128(piece, h) XOR h`, as
    /// [`crate::macperm::MacPerm::derive`] does under its own label.
    pub fn derive(technique_key: &[u8]) -> [u8; 16] {
        crate::key::derive_subkey(LABEL, technique_key)
    }

    fn enc(&self, b: &mut [u8; 16]) {
        let mut blk = aes::Block::from(*b);
        self.aes.encrypt_block(&mut blk);
        b.copy_from_slice(&blk);
    }

    /// XOR into `target` the key stream of round `round` for `input`.
    fn f(&self, round: u8, tweak: u32, total: usize, input: &[u8], target: &mut [u8]) {
        let mut h = [0u8; 16];
        h[0] = round;
        h[1..5].copy_from_slice(&tweak.to_be_bytes());
        h[5..9].copy_from_slice(&(total as u32).to_be_bytes());
        h[9..13].copy_from_slice(&(input.len() as u32).to_be_bytes());
        h[15] = 0x49;
        self.enc(&mut h);
        // The first block fixes the length, so the CBC-MAC inputs are
        // prefix-free.
        for c in input.chunks(16) {
            for (x, y) in h.iter_mut().zip(c) {
                *x ^= y;
            }
            self.enc(&mut h);
        }
        for (j, o) in target.chunks_mut(16).enumerate() {
            let mut b = h;
            let ctr = (j as u32).wrapping_add(1).to_be_bytes();
            for (x, y) in b[12..].iter_mut().zip(ctr) {
                *x ^= y;
            }
            self.enc(&mut b);
            for (x, y) in o.iter_mut().zip(b) {
                *x ^= y;
            }
        }
    }

    /// The round function of a one-byte string: 4 bits from the round,
    /// the tweak and the other half.
    fn f_nibble(&self, round: u8, tweak: u32, half: u8) -> u8 {
        let mut h = [0u8; 16];
        h[0] = round;
        h[1..5].copy_from_slice(&tweak.to_be_bytes());
        h[5] = half;
        h[15] = 0x31;
        self.enc(&mut h);
        h[0] & 15
    }

    fn run_byte(&self, tweak: u32, b: &mut u8, forward: bool) {
        let (mut l, mut r) = (*b >> 4, *b & 15);
        let mut round = |i: u8| {
            if i % 2 == 0 {
                l ^= self.f_nibble(i, tweak, r);
            } else {
                r ^= self.f_nibble(i, tweak, l);
            }
        };
        if forward {
            (0..NIBBLE_ROUNDS).for_each(&mut round);
        } else {
            (0..NIBBLE_ROUNDS).rev().for_each(&mut round);
        }
        *b = l << 4 | r;
    }

    fn run(&self, tweak: u32, d: &mut [u8], forward: bool) {
        let n = d.len();
        if n == 0 {
            return;
        }
        if let [b] = d {
            return self.run_byte(tweak, b, forward);
        }
        let (l, r) = d.split_at_mut(n / 2);
        let mut round = |i: u8| {
            if i % 2 == 0 {
                self.f(i, tweak, n, r, l);
            } else {
                self.f(i, tweak, n, l, r);
            }
        };
        if forward {
            (0..ROUNDS).for_each(&mut round);
        } else {
            (0..ROUNDS).rev().for_each(&mut round);
        }
    }

    /// Map `d` in place under `tweak`.
    pub fn map(&self, tweak: u32, d: &mut [u8]) {
        self.run(tweak, d, true);
    }

    /// Invert [`BytesPerm::map`].
    pub fn unmap(&self, tweak: u32, d: &mut [u8]) {
        self.run(tweak, d, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn round_trips_every_length() {
        let p = BytesPerm::new(&[3u8; 16]);
        for n in 0..70usize {
            let orig: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(29)).collect();
            let mut d = orig.clone();
            p.map(7, &mut d);
            if n >= 1 {
                assert_ne!(d, orig, "length {n}");
            }
            p.unmap(7, &mut d);
            assert_eq!(d, orig, "length {n}");
        }
    }

    #[test]
    fn a_permutation_of_two_byte_strings() {
        let p = BytesPerm::new(&[9u8; 16]);
        let mut seen = HashSet::new();
        for x in 0..=u16::MAX {
            let mut d = x.to_be_bytes();
            p.map(1, &mut d);
            assert!(seen.insert(d));
        }
    }

    #[test]
    fn one_byte_strings_are_permuted_not_xored() {
        let p = BytesPerm::new(&[4u8; 16]);
        let mut seen = HashSet::new();
        let mut diffs = HashSet::new();
        for x in 0..=u8::MAX {
            let mut d = [x];
            p.map(3, &mut d);
            assert!(seen.insert(d[0]));
            diffs.insert(d[0] ^ x);
            p.unmap(3, &mut d);
            assert_eq!(d, [x]);
        }
        assert!(diffs.len() > 64, "{} distinct differences", diffs.len());
    }

    #[test]
    fn tweak_and_key_change_the_output() {
        let (a, b) = (BytesPerm::new(&[1u8; 16]), BytesPerm::new(&[2u8; 16]));
        let mut x = [5u8; 8];
        let mut y = x;
        let mut z = x;
        a.map(1, &mut x);
        a.map(2, &mut y);
        b.map(1, &mut z);
        assert_ne!(x, y);
        assert_ne!(x, z);
        assert_ne!(BytesPerm::derive(&[1; 32]), BytesPerm::derive(&[2; 32]));
    }
}
