//! ipcrypt-pfx (draft-denis-ipcrypt-13): prefix-preserving, format-preserving
//! encryption built on AES-128.
//!
//! **Preserves:** prefixes and the address family; one-to-one.
//! **Reversible:** yes, with the key. **Reference:** draft-denis-ipcrypt-13
//! section "ipcrypt-pfx" and its Appendix A test vectors.
//!
//! Every address is handled as 16 bytes (IPv4 as `::ffff:a.b.c.d`). The key is
//! 32 bytes: `K1 = key[0..16]`, `K2 = key[16..32]`, which must differ (equal
//! halves would make every flip bit zero). For each processed bit, most
//! significant first, the *padded prefix* `p = (1 << len) | (first len bits)`
//! is encrypted under both keys; the least significant bit of
//! `AES(K1, p) XOR AES(K2, p)` is XORed into the address bit.
//!
//! An IPv4-mapped address (and therefore every IPv4 address) processes only
//! bits 96..127, so `a.b.c.d` and `::ffff:a.b.c.d` give the same result and
//! IPv4 stays IPv4. Decryption decides the same way from the ciphertext,
//! because the top 96 bits of a mapped address are left unchanged.
//!
//! Caveats that follow from the draft, not from this code:
//! - Prefixes are preserved within IPv4 and within IPv6, but not between an
//!   IPv4-mapped address and an ordinary IPv6 address (their leading bits
//!   are processed differently).
//! - The single 96-bit IPv6 prefix that the 128-bit process maps onto
//!   `::ffff:0:0/96` (one in 2^96) would decrypt as IPv4-mapped.
//!
//! # Why the code looks like this
//!
//! In encryption every padded prefix is made of *original* bits, all known
//! up front, so the 32 (or 128) blocks of an address are built at once and
//! encrypted with one `encrypt_blocks` call per key over many addresses.
//! Decryption needs each recovered bit before the next block and is
//! sequential.
//!
//! ```
//! use ipwash_algorithms::{ipcrypt_pfx::IpcryptPfx, AddrMap, Key, Reversible};
//! let key = Key::<32>::from_hex(
//!     "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
//! ).unwrap();
//! let c = IpcryptPfx::new(&key).unwrap();
//! let out = c.map_v4("192.0.2.1".parse().unwrap());
//! assert_eq!(out.to_string(), "100.115.72.131");
//! assert_eq!(c.unmap_v4(out).to_string(), "192.0.2.1");
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

use crate::{AddrMap, Key, KeyError, Reversible};

/// AES blocks per IPv4 address (each encrypted under both keys).
pub const AES_BLOCKS_PER_V4: usize = 2 * 32;
/// AES blocks per IPv6 address (each encrypted under both keys).
pub const AES_BLOCKS_PER_V6: usize = 2 * 128;

/// Blocks per buffer; two buffers (one per key) live on the stack.
const BUF_BLOCKS: usize = 512;
const V4_PER_BUF: usize = BUF_BLOCKS / 32;
const V6_PER_BUF: usize = BUF_BLOCKS / 128;

/// `::ffff:0:0` — the IPv4-mapped prefix.
const MAPPED: u128 = 0xffff << 32;

/// An ipcrypt-pfx instance for one 32-byte key.
#[derive(Clone)]
pub struct IpcryptPfx {
    k1: Aes128,
    k2: Aes128,
}

impl std::fmt::Debug for IpcryptPfx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpcryptPfx(<keyed>)")
    }
}

impl IpcryptPfx {
    /// Set up from the 32-byte key. Fails with [`KeyError::Invalid`] when
    /// the two halves are equal, as the draft requires.
    pub fn new(key: &Key<32>) -> Result<Self, KeyError> {
        let k = key.bytes();
        let (h1, h2) = k.split_at(16);
        if h1 == h2 {
            return Err(KeyError::Invalid(
                "ipcrypt-pfx key halves K1 and K2 must differ",
            ));
        }
        Ok(IpcryptPfx {
            k1: Aes128::new(Block::from_slice(h1)),
            k2: Aes128::new(Block::from_slice(h2)),
        })
    }

    /// Encrypt a chunk of 16-byte addresses in place with one
    /// `encrypt_blocks` call per key. The chunk must need at most
    /// `BUF_BLOCKS` blocks (32 per mapped address, 128 per other).
    fn encrypt_chunk(&self, chunk: &mut [u128], b1: &mut [Block], b2: &mut [Block]) {
        let mut used = 0;
        let mut slots = b1.iter_mut();
        for &a in chunk.iter() {
            for (len, slot) in (first_bit(a)..128).zip(&mut slots) {
                *slot = Block::from(padded_prefix(a, len).to_be_bytes());
                used += 1;
            }
        }
        debug_assert!(used <= b1.len().min(b2.len()));
        let used = used.min(b1.len()).min(b2.len());
        let (b1, b2) = (&mut b1[..used], &mut b2[..used]);
        b2.copy_from_slice(b1);
        self.k1.encrypt_blocks(b1);
        self.k2.encrypt_blocks(b2);
        let mut enc = b1.iter().zip(b2.iter());
        for a in chunk.iter_mut() {
            let mut otp = 0u128;
            for (len, (e1, e2)) in (first_bit(*a)..128).zip(&mut enc) {
                otp |= u128::from((e1[15] ^ e2[15]) & 1) << (127 - len);
            }
            *a ^= otp;
        }
    }

    fn encrypt_one(&self, a: u128) -> u128 {
        let mut b1 = [Block::default(); 128];
        let mut b2 = [Block::default(); 128];
        let mut one = [a];
        self.encrypt_chunk(&mut one, &mut b1, &mut b2);
        one[0]
    }

    fn flip(&self, p: u128) -> u128 {
        let mut e1 = Block::from(p.to_be_bytes());
        let mut e2 = e1;
        self.k1.encrypt_block(&mut e1);
        self.k2.encrypt_block(&mut e2);
        u128::from((e1[15] ^ e2[15]) & 1)
    }

    fn decrypt_one(&self, c: u128) -> u128 {
        let start = first_bit(c);
        // The bits before `start` are not encrypted.
        let mut plain = if start == 0 {
            0
        } else {
            c & (!0u128 << (128 - start))
        };
        for len in start..128 {
            let bit = ((c >> (127 - len)) & 1) ^ self.flip(padded_prefix(plain, len));
            plain |= bit << (127 - len);
        }
        plain
    }
}

/// First processed bit: 96 for IPv4-mapped addresses, else 0.
fn first_bit(a: u128) -> u32 {
    if a >> 32 == 0xffff {
        96
    } else {
        0
    }
}

/// `(1 << len) | (first len bits of a)`, for `len` in 0..=127.
fn padded_prefix(a: u128, len: u32) -> u128 {
    if len == 0 {
        1
    } else {
        (1u128 << len) | (a >> (128 - len))
    }
}

impl AddrMap for IpcryptPfx {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.encrypt_one(MAPPED | u128::from(u32::from(a))) as u32)
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.encrypt_one(u128::from(a)))
    }

    fn map_v4_batch(&self, addrs: &mut [Ipv4Addr]) {
        let mut b1 = [Block::default(); BUF_BLOCKS];
        let mut b2 = [Block::default(); BUF_BLOCKS];
        let mut wide = [0u128; V4_PER_BUF];
        for chunk in addrs.chunks_mut(V4_PER_BUF) {
            let wide = &mut wide[..chunk.len()];
            for (w, a) in wide.iter_mut().zip(chunk.iter()) {
                *w = MAPPED | u128::from(u32::from(*a));
            }
            self.encrypt_chunk(wide, &mut b1, &mut b2);
            for (w, a) in wide.iter().zip(chunk.iter_mut()) {
                *a = Ipv4Addr::from(*w as u32);
            }
        }
    }

    fn map_v6_batch(&self, addrs: &mut [Ipv6Addr]) {
        let mut b1 = [Block::default(); BUF_BLOCKS];
        let mut b2 = [Block::default(); BUF_BLOCKS];
        let mut wide = [0u128; V6_PER_BUF];
        for chunk in addrs.chunks_mut(V6_PER_BUF) {
            let wide = &mut wide[..chunk.len()];
            for (w, a) in wide.iter_mut().zip(chunk.iter()) {
                *w = u128::from(*a);
            }
            self.encrypt_chunk(wide, &mut b1, &mut b2);
            for (w, a) in wide.iter().zip(chunk.iter_mut()) {
                *a = Ipv6Addr::from(*w);
            }
        }
    }

    fn prefix_preserving(&self) -> bool {
        true
    }
}

impl Reversible for IpcryptPfx {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.decrypt_one(MAPPED | u128::from(u32::from(a))) as u32)
    }

    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.decrypt_one(u128::from(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpl;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    fn setup(seed: u64) -> (ChaCha8Rng, IpcryptPfx) {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let mut k = [0u8; 32];
        r.fill_bytes(&mut k);
        let c = IpcryptPfx::new(&Key::new(k)).unwrap();
        (r, c)
    }

    fn rand_v6(r: &mut ChaCha8Rng) -> u128 {
        (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())
    }

    #[test]
    fn equal_halves_rejected() {
        let e = IpcryptPfx::new(&Key::new([7u8; 32])).unwrap_err();
        assert!(matches!(e, KeyError::Invalid(_)));
    }

    #[test]
    fn draft_example() {
        let key =
            Key::<32>::from_hex("0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301")
                .unwrap();
        let c = IpcryptPfx::new(&key).unwrap();
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let out: Ipv6Addr = "c180:5dd4:2587:3524:30ab:fa65:6ab6:f88".parse().unwrap();
        assert_eq!(c.map_v6(v6), out);
        assert_eq!(c.unmap_v6(out), v6);
    }

    #[test]
    fn v4_equals_mapped_v6() {
        let (mut r, c) = setup(1);
        for _ in 0..200 {
            let a = Ipv4Addr::from(r.next_u32());
            let m = c.map_v4(a);
            assert_eq!(c.map_v6(a.to_ipv6_mapped()), m.to_ipv6_mapped());
            assert_eq!(c.unmap_v6(m.to_ipv6_mapped()), a.to_ipv6_mapped());
        }
    }

    #[test]
    fn round_trips_and_batches() {
        let (mut r, c) = setup(2);
        for n in [0usize, 1, 7, 33, 1000] {
            let v4: Vec<Ipv4Addr> = (0..n).map(|_| Ipv4Addr::from(r.next_u32())).collect();
            let mut b4 = v4.clone();
            c.map_v4_batch(&mut b4);
            for (a, m) in v4.iter().zip(&b4) {
                assert_eq!(c.map_v4(*a), *m);
                assert_eq!(c.unmap_v4(*m), *a);
            }
            // Mix in IPv4-mapped addresses, which take the short path.
            let v6: Vec<Ipv6Addr> = (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        Ipv4Addr::from(r.next_u32()).to_ipv6_mapped()
                    } else {
                        Ipv6Addr::from(rand_v6(&mut r))
                    }
                })
                .collect();
            let mut b6 = v6.clone();
            c.map_v6_batch(&mut b6);
            for (a, m) in v6.iter().zip(&b6) {
                assert_eq!(c.map_v6(*a), *m);
                assert_eq!(c.unmap_v6(*m), *a);
            }
        }
    }

    #[test]
    fn preserves_prefixes() {
        let (mut r, c) = setup(3);
        for _ in 0..1000 {
            let x = r.next_u32();
            let keep = r.next_u32() % 33;
            let m = if keep == 0 { 0 } else { !0u32 << (32 - keep) };
            let y = (x & m) | (r.next_u32() & !m);
            let (fx, fy) = (c.map_v4(x.into()), c.map_v4(y.into()));
            assert_eq!(
                cpl(u32::from(fx).into(), u32::from(fy).into(), 32),
                cpl(x.into(), y.into(), 32)
            );
            let x6 = rand_v6(&mut r);
            let keep6 = r.next_u32() % 129;
            let m6 = match keep6 {
                0 => 0,
                128 => !0,
                k => !0u128 << (128 - k),
            };
            let y6 = (x6 & m6) | (rand_v6(&mut r) & !m6);
            let (fx6, fy6) = (c.map_v6(x6.into()), c.map_v6(y6.into()));
            assert_eq!(cpl(fx6.into(), fy6.into(), 128), cpl(x6, y6, 128));
        }
    }
}
