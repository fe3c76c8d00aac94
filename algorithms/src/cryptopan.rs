//! Crypto-PAn (Xu, Fan, Ammar, Moon 2002), RFC 8932 B.2.4.
//!
//! **Preserves:** prefixes (`cpl(F(x), F(y)) == cpl(x, y)`), and it is
//! one-to-one. **Reversible:** yes, with the key. **Reference:** the 2002
//! reference code (byte-compatible for IPv4) and yacryptopan (IPv6, same loop
//! over 128 bits; an IPv4-mapped IPv6 address is treated as plain IPv6).
//!
//! The definition: `E` is AES-128 keyed with `key[0..16]`, `pad = E(key[16..32])`.
//! For every bit position `pos` (most significant first) the block
//! `(A & M_pos) | (pad & !M_pos)` is encrypted, where `A` is the address
//! shifted to the top of 128 bits and `M_pos` has the top `pos` bits set; the
//! most significant bit of the result is the flip bit XORed into `A` at `pos`.
//!
//! # Why the code looks like this
//!
//! - The flip bit at `pos` depends only on the first `pos` bits of the
//!   address, so the 32 (or 128) blocks of one address are independent of
//!   each other and can all be built before encrypting any of them. The batch
//!   entry points pack the blocks of many addresses into one stack buffer
//!   and make a single `encrypt_blocks` call per buffer (448 or 512
//!   blocks), which lets the AES backend pipeline. Measured on the
//!   development machine (release build, aes 0.8 AES-NI backend, no VAES):
//!   about 2 ns per block in such calls, and IPv4 batches at about 41 ns
//!   per address, within 30% of that AES ceiling for 16 blocks.
//! - Positions 0..15 depend on at most the first 15 bits. Those flip bits are
//!   computed once at construction (65535 AES blocks, one per trie node, in
//!   one call) and stored as a 2^15-entry table of 16-bit words indexed by
//!   the first 15 bits. IPv4 then needs only 16 AES blocks per address and
//!   IPv6 112, since the blocks for the first 32 positions of an IPv4
//!   address and of an IPv6 address are the same function of those bits.
//! - Decryption is sequential by nature (bit `pos` of the plaintext is needed
//!   before the block for `pos + 1` is known); it uses the table for the
//!   first 16 bits and one AES call per remaining bit.
//!
//! ```
//! use ipwash_algorithms::{cryptopan::CryptoPan, AddrMap, Key, Reversible};
//! let key = Key::<32>::from_hex(
//!     "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202",
//! ).unwrap();
//! let c = CryptoPan::new(&key);
//! let out = c.map_v4("24.5.0.80".parse().unwrap());
//! assert_eq!(out.to_string(), "100.9.15.210");
//! assert_eq!(c.unmap_v4(out).to_string(), "24.5.0.80");
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Block};
use zeroize::Zeroize;

use crate::{AddrMap, Key, Reversible};

/// AES blocks the Crypto-PAn definition spends on one IPv4 address. A
/// benchmark divides the AES ceiling (blocks per second) by this to get the
/// best possible addresses per second without caching.
pub const AES_BLOCKS_PER_V4: usize = 32;
/// AES blocks the Crypto-PAn definition spends on one IPv6 address.
pub const AES_BLOCKS_PER_V6: usize = 128;
/// Bit positions served from the table built at construction.
pub const TABLE_POSITIONS: usize = 16;
/// AES blocks this implementation encrypts per IPv4 address.
pub const AES_BLOCKS_PER_V4_FAST: usize = AES_BLOCKS_PER_V4 - TABLE_POSITIONS;
/// AES blocks this implementation encrypts per IPv6 address.
pub const AES_BLOCKS_PER_V6_FAST: usize = AES_BLOCKS_PER_V6 - TABLE_POSITIONS;

/// Entries in the flip-bit table: one per value of the first 15 bits.
const TABLE_LEN: usize = 1 << (TABLE_POSITIONS - 1);
/// Blocks per `encrypt_blocks` call in the batch paths (8 KiB of stack).
const BUF_BLOCKS: usize = 512;
const V4_PER_BUF: usize = BUF_BLOCKS / AES_BLOCKS_PER_V4_FAST;
const V6_PER_BUF: usize = BUF_BLOCKS / AES_BLOCKS_PER_V6_FAST;

/// A Crypto-PAn instance for one 32-byte key.
#[derive(Clone)]
pub struct CryptoPan {
    aes: Aes128,
    pad: u128,
    /// Entry `i` holds the flip bits of positions 0..15 for every address
    /// whose first 15 bits are `i`; position `pos` is bit `15 - pos`, so the
    /// word shifted left by 16 is the top half of the IPv4 one-time pad.
    top: Box<[u16; TABLE_LEN]>,
}

impl CryptoPan {
    /// Set up from the 32-byte key: AES key `key[0..16]`, pad `E(key[16..32])`.
    ///
    /// Also builds the 64 KiB flip-bit table from 65535 AES blocks: about
    /// 1.5 ms in a release build, about 60 ms in a debug build.
    pub fn new(key: &Key<32>) -> Self {
        let k = key.bytes();
        let aes = Aes128::new(&Block::clone_from_slice(&k[..16]));
        let mut pad_block = Block::clone_from_slice(&k[16..32]);
        aes.encrypt_block(&mut pad_block);
        let pad = u128::from_be_bytes(pad_block.into());
        pad_block.as_mut_slice().zeroize();

        // One block per trie node of depth 0..15, heap order:
        // node (depth d, prefix p) sits at index 2^d - 1 + p.
        let nodes = (1usize << TABLE_POSITIONS) - 1;
        let mut blocks = vec![Block::default(); nodes];
        for d in 0..TABLE_POSITIONS {
            let m = top_mask(d as u32);
            let base = (1usize << d) - 1;
            for p in 0..(1usize << d) {
                let a = if d == 0 { 0 } else { (p as u128) << (128 - d) };
                blocks[base + p] = Block::from(((a & m) | (pad & !m)).to_be_bytes());
            }
        }
        aes.encrypt_blocks(&mut blocks);
        // flips[node] = flip bits of positions 0..=d on the path to the
        // node (depth d, prefix p): its parent's word plus its own bit.
        let mut flips = vec![0u16; nodes];
        for d in 0..TABLE_POSITIONS {
            let base = (1usize << d) - 1;
            for p in 0..(1usize << d) {
                let parent = if d == 0 {
                    0
                } else {
                    flips[(1usize << (d - 1)) - 1 + (p >> 1)]
                };
                flips[base + p] = parent | (u16::from(blocks[base + p][0] >> 7) << (15 - d));
            }
        }
        let mut top = Box::new([0u16; TABLE_LEN]);
        top.copy_from_slice(&flips[TABLE_LEN - 1..]);
        flips.zeroize();
        for b in blocks.iter_mut() {
            b.as_mut_slice().zeroize();
        }
        CryptoPan { aes, pad, top }
    }

    /// Flip bits of positions 0..15, left-aligned in a `u16`, for an
    /// address whose first 16 bits are `hi16`.
    fn top_flips(&self, hi16: u16) -> u16 {
        self.top[usize::from(hi16 >> 1)]
    }

    /// Fill `out` (16 blocks) with the blocks of positions 16..31 of `a`.
    /// Only bytes 0..3 vary; bytes 4..15 are `pad[4..16]`.
    fn v4_blocks(&self, a: u32, out: &mut [Block]) {
        let template = Block::from(self.pad.to_be_bytes());
        let pad_hi = (self.pad >> 96) as u32;
        for (j, b) in out.iter_mut().enumerate() {
            let m = !0u32 << (32 - TABLE_POSITIONS - j);
            let word = (a & m) | (pad_hi & !m);
            // Store the template, then patch bytes 0..4 in place (no wide
            // reload of just-written bytes).
            *b = template;
            b[..4].copy_from_slice(&word.to_be_bytes());
        }
    }

    fn v4_finish(&self, a: u32, enc: &[Block]) -> u32 {
        let mut otp = u32::from(self.top_flips((a >> 16) as u16)) << 16;
        for (j, b) in enc.iter().enumerate() {
            otp |= u32::from(b[0] >> 7) << (15 - j);
        }
        a ^ otp
    }

    /// Fill `out` (112 blocks) with the blocks of positions 16..127 of `a`.
    /// Block `pos` is the top `pos` bits of `a` followed by the pad's bits.
    /// The eight blocks of one byte share a template and differ in that
    /// byte only, so each is a 16-byte store plus a 1-byte store (never a
    /// wide load of freshly stored bytes, which stalls store forwarding).
    fn v6_blocks(&self, a: u128, out: &mut [Block]) {
        let ab = a.to_be_bytes();
        let pb = self.pad.to_be_bytes();
        let mut tmpl = (a & top_mask(16)) | (self.pad & !top_mask(16));
        for (byte, group) in (2..16).zip(out.chunks_exact_mut(8)) {
            let t = Block::from(tmpl.to_be_bytes());
            for (bit, b) in group.iter_mut().enumerate() {
                // The top `bit` bits of this byte come from the address.
                let m = (0xFF00u16 >> bit) as u8;
                *b = t;
                b[byte] = (ab[byte] & m) | (pb[byte] & !m);
            }
            let sh = (15 - byte) * 8;
            tmpl = (tmpl & !(0xFFu128 << sh)) | (u128::from(ab[byte]) << sh);
        }
    }

    fn v6_finish(&self, a: u128, enc: &[Block]) -> u128 {
        let mut otp = [0u8; 16];
        otp[..2].copy_from_slice(&self.top_flips((a >> 112) as u16).to_be_bytes());
        for (o, group) in otp[2..].iter_mut().zip(enc.chunks_exact(8)) {
            let mut v = 0u8;
            for b in group {
                v = (v << 1) | (b[0] >> 7);
            }
            *o = v;
        }
        a ^ u128::from_be_bytes(otp)
    }

    /// Sequential decryption of a left-aligned `bits`-bit address.
    fn unmap_bits(&self, c: u128, bits: u32) -> u128 {
        let mut plain = 0u128;
        for pos in 0..TABLE_POSITIONS as u32 {
            // Bits not yet recovered are zero; the flip at `pos` ignores them.
            let f = u128::from(self.top_flips((plain >> 112) as u16) >> (15 - pos)) & 1;
            plain |= (((c >> (127 - pos)) & 1) ^ f) << (127 - pos);
        }
        for pos in TABLE_POSITIONS as u32..bits {
            let m = top_mask(pos);
            let mut b = Block::from(((plain & m) | (self.pad & !m)).to_be_bytes());
            self.aes.encrypt_block(&mut b);
            let f = u128::from(b[0] >> 7);
            plain |= (((c >> (127 - pos)) & 1) ^ f) << (127 - pos);
        }
        plain
    }
}

/// The top `n` bits set, for `n` in 0..=127.
fn top_mask(n: u32) -> u128 {
    if n == 0 {
        0
    } else {
        !0u128 << (128 - n)
    }
}

impl Drop for CryptoPan {
    fn drop(&mut self) {
        self.pad.zeroize();
        self.top.as_mut_slice().zeroize();
    }
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptoPan(<keyed>)")
    }
}

impl AddrMap for CryptoPan {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let a = u32::from(a);
        let mut buf = [Block::default(); AES_BLOCKS_PER_V4_FAST];
        self.v4_blocks(a, &mut buf);
        self.aes.encrypt_blocks(&mut buf);
        Ipv4Addr::from(self.v4_finish(a, &buf))
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let a = u128::from(a);
        let mut buf = [Block::default(); AES_BLOCKS_PER_V6_FAST];
        self.v6_blocks(a, &mut buf);
        self.aes.encrypt_blocks(&mut buf);
        Ipv6Addr::from(self.v6_finish(a, &buf))
    }

    fn map_v4_batch(&self, addrs: &mut [Ipv4Addr]) {
        let mut buf = [Block::default(); V4_PER_BUF * AES_BLOCKS_PER_V4_FAST];
        for chunk in addrs.chunks_mut(V4_PER_BUF) {
            let used = chunk.len() * AES_BLOCKS_PER_V4_FAST;
            let blocks = &mut buf[..used];
            for (a, out) in chunk
                .iter()
                .zip(blocks.chunks_exact_mut(AES_BLOCKS_PER_V4_FAST))
            {
                self.v4_blocks(u32::from(*a), out);
            }
            self.aes.encrypt_blocks(blocks);
            for (a, enc) in chunk
                .iter_mut()
                .zip(blocks.chunks_exact(AES_BLOCKS_PER_V4_FAST))
            {
                *a = Ipv4Addr::from(self.v4_finish(u32::from(*a), enc));
            }
        }
    }

    fn map_v6_batch(&self, addrs: &mut [Ipv6Addr]) {
        let mut buf = [Block::default(); V6_PER_BUF * AES_BLOCKS_PER_V6_FAST];
        for chunk in addrs.chunks_mut(V6_PER_BUF) {
            let used = chunk.len() * AES_BLOCKS_PER_V6_FAST;
            let blocks = &mut buf[..used];
            for (a, out) in chunk
                .iter()
                .zip(blocks.chunks_exact_mut(AES_BLOCKS_PER_V6_FAST))
            {
                self.v6_blocks(u128::from(*a), out);
            }
            self.aes.encrypt_blocks(blocks);
            for (a, enc) in chunk
                .iter_mut()
                .zip(blocks.chunks_exact(AES_BLOCKS_PER_V6_FAST))
            {
                *a = Ipv6Addr::from(self.v6_finish(u128::from(*a), enc));
            }
        }
    }

    fn prefix_preserving(&self) -> bool {
        true
    }
}

impl Reversible for CryptoPan {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let c = u128::from(u32::from(a)) << 96;
        Ipv4Addr::from((self.unmap_bits(c, 32) >> 96) as u32)
    }

    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.unmap_bits(u128::from(a), 128))
    }
}

/// The definition, one AES block at a time, kept to check the fast paths.
#[cfg(test)]
mod reference {
    use aes::cipher::{BlockEncrypt, KeyInit};
    use aes::Aes128;

    pub struct Slow {
        aes: Aes128,
        pad: u128,
    }

    impl Slow {
        pub fn new(k: &[u8; 32]) -> Self {
            let aes = Aes128::new(&aes::Block::clone_from_slice(&k[..16]));
            let mut pad = aes::Block::clone_from_slice(&k[16..32]);
            aes.encrypt_block(&mut pad);
            Slow {
                aes,
                pad: u128::from_be_bytes(pad.into()),
            }
        }

        fn otp(&self, a: u128, bits: u32, decrypt: bool) -> u128 {
            let mut out = 0u128;
            let mut known = if decrypt { 0 } else { a };
            for pos in 0..bits {
                let m: u128 = if pos == 0 { 0 } else { !0u128 << (128 - pos) };
                let block = (known & m) | (self.pad & !m);
                let mut b = aes::Block::from(block.to_be_bytes());
                self.aes.encrypt_block(&mut b);
                let flip = u128::from(b[0] >> 7) << (127 - pos);
                out |= flip;
                if decrypt {
                    known |= (a ^ flip) & (1u128 << (127 - pos));
                }
            }
            out
        }

        /// `a` in the low `bits` bits.
        pub fn run(&self, a: u128, bits: u32, decrypt: bool) -> u128 {
            let left = a << (128 - bits);
            (left ^ self.otp(left, bits, decrypt)) >> (128 - bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reference::Slow;
    use super::*;
    use crate::cpl;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    const REF_KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0x1c0ffee)
    }

    fn rand_key(r: &mut ChaCha8Rng) -> Key<32> {
        let mut k = [0u8; 32];
        r.fill_bytes(&mut k);
        Key::new(k)
    }

    fn rand_v6(r: &mut ChaCha8Rng) -> u128 {
        (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())
    }

    #[test]
    fn reference_sample() {
        let c = CryptoPan::new(&Key::from_hex(REF_KEY).unwrap());
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

    #[test]
    fn fast_equals_reference_and_round_trips() {
        let mut r = rng();
        for _ in 0..4 {
            let key = rand_key(&mut r);
            let fast = CryptoPan::new(&key);
            let slow = Slow::new(key.bytes());
            for _ in 0..300 {
                let a = r.next_u32();
                let m = fast.map_v4(Ipv4Addr::from(a));
                assert_eq!(u32::from(m), slow.run(a.into(), 32, false) as u32);
                assert_eq!(fast.unmap_v4(m), Ipv4Addr::from(a));
                let x = rand_v6(&mut r);
                let m6 = fast.map_v6(Ipv6Addr::from(x));
                assert_eq!(u128::from(m6), slow.run(x, 128, false));
                assert_eq!(slow.run(u128::from(m6), 128, true), x);
                assert_eq!(u128::from(fast.unmap_v6(m6)), x);
            }
        }
    }

    #[test]
    fn table_covers_every_top_prefix() {
        // Every value of the first 16 bits, against the reference.
        let key = Key::<32>::from_hex(REF_KEY).unwrap();
        let fast = CryptoPan::new(&key);
        let slow = Slow::new(key.bytes());
        for hi in (0u32..=0xffff).step_by(97).chain([0, 0xffff]) {
            let a = (hi << 16) | 0x5a5a;
            assert_eq!(
                u32::from(fast.map_v4(Ipv4Addr::from(a))),
                slow.run(a.into(), 32, false) as u32,
                "{a:#x}"
            );
        }
    }

    #[test]
    fn batch_equals_single() {
        let mut r = rng();
        let c = CryptoPan::new(&rand_key(&mut r));
        for n in [0usize, 1, 7, 33, 1000] {
            let v4: Vec<Ipv4Addr> = (0..n).map(|_| Ipv4Addr::from(r.next_u32())).collect();
            let mut b4 = v4.clone();
            c.map_v4_batch(&mut b4);
            for (a, m) in v4.iter().zip(&b4) {
                assert_eq!(c.map_v4(*a), *m);
            }
            let v6: Vec<Ipv6Addr> = (0..n).map(|_| Ipv6Addr::from(rand_v6(&mut r))).collect();
            let mut b6 = v6.clone();
            c.map_v6_batch(&mut b6);
            for (a, m) in v6.iter().zip(&b6) {
                assert_eq!(c.map_v6(*a), *m);
            }
        }
    }

    #[test]
    fn preserves_prefixes() {
        let mut r = rng();
        let c = CryptoPan::new(&rand_key(&mut r));
        for _ in 0..2000 {
            let x = r.next_u32();
            // Make y share a random-length prefix with x.
            let keep = r.next_u32() % 33;
            let y = if keep == 32 {
                x
            } else {
                let m = if keep == 0 { 0 } else { !0u32 << (32 - keep) };
                (x & m) | (r.next_u32() & !m)
            };
            let (fx, fy) = (c.map_v4(x.into()), c.map_v4(y.into()));
            assert_eq!(
                cpl(u32::from(fx).into(), u32::from(fy).into(), 32),
                cpl(x.into(), y.into(), 32)
            );
            let x6 = rand_v6(&mut r);
            let keep6 = r.next_u32() % 129;
            let m6 = if keep6 == 128 { !0 } else { top_mask(keep6) };
            let y6 = (x6 & m6) | (rand_v6(&mut r) & !m6);
            let (fx6, fy6) = (c.map_v6(x6.into()), c.map_v6(y6.into()));
            assert_eq!(
                cpl(fx6.into(), fy6.into(), 128),
                cpl(x6, y6, 128),
                "{x6:x} {y6:x}"
            );
        }
    }

    #[test]
    fn debug_hides_key() {
        let c = CryptoPan::new(&Key::from_hex(REF_KEY).unwrap());
        assert_eq!(format!("{c:?}"), "CryptoPan(<keyed>)");
    }
}
