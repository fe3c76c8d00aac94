//! ipcipher (PowerDNS), RFC 8932 B.2.6: format-preserving encryption of
//! whole addresses.
//!
//! **Preserves:** the address family and length, nothing else (not
//! prefix-preserving). **Reversible:** yes, with the key. **Reference:** the
//! PowerDNS ipcipher specification and `dnswasher -k` / `-p`, which this
//! matches byte for byte.
//!
//! - IPv4: ipcrypt (J.-P. Aumasson), a 32-bit ARX permutation with a 128-bit
//!   key: four key XORs around three applications of a byte-wise ARX
//!   function, on the 4 address bytes in network order.
//! - IPv6: AES-128 on the single 16-byte block.
//! - Key: 16 bytes, either raw or derived from a passphrase with
//!   [`key_from_passphrase`] (PBKDF2-HMAC-SHA1, salt `"ipcipheripcipher"`,
//!   50000 iterations). The caller decides which; this module never guesses.
//!
//! # Security note
//!
//! RFC 8932 (B.2.6) cautions that ipcrypt is weak: it is an ad-hoc design
//! without the analysis a standard block cipher has, and a 32-bit block means
//! the whole IPv4 codebook is small enough to enumerate. Use it only to match
//! existing ipcipher/dnswasher output. For new deployments prefer
//! [`crate::ipcrypt_pfx`] (AES-based, prefix-preserving) or
//! [`crate::cryptopan`].
//!
//! ```
//! use ipwash_algorithms::{ipcipher::IpCipher, AddrMap, Key, Reversible};
//! let key = Key::new(*b"some 16-byte key");
//! let c = IpCipher::new(&key);
//! let out = c.map_v4("127.0.0.1".parse().unwrap());
//! assert_eq!(out.to_string(), "114.62.227.59");
//! assert_eq!(c.unmap_v4(out).to_string(), "127.0.0.1");
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};
use zeroize::Zeroize;

use crate::{AddrMap, Key, Reversible};

/// One-line warning for help texts (RFC 8932 B.2.6).
pub const SECURITY_NOTE: &str =
    "ipcipher encrypts IPv4 with ipcrypt, which RFC 8932 notes is weak; \
     prefer ipcrypt-pfx or cryptopan for new deployments";

/// PBKDF2 salt fixed by the ipcipher specification.
pub const KDF_SALT: &[u8] = b"ipcipheripcipher";
/// PBKDF2 iteration count fixed by the ipcipher specification.
pub const KDF_ITERATIONS: u32 = 50_000;

/// Blocks per `encrypt_blocks` call in the IPv6 batch path.
const BUF_BLOCKS: usize = 256;

/// Derive the 16-byte ipcipher key from a passphrase:
/// `PBKDF2-HMAC-SHA1(pass, "ipcipheripcipher", 50000, 16)`.
pub fn key_from_passphrase(pass: &[u8]) -> Key<16> {
    let mut out = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pass, KDF_SALT, KDF_ITERATIONS, &mut out);
    let key = Key::new(out);
    out.zeroize();
    key
}

/// An ipcipher instance for one 16-byte key.
#[derive(Clone)]
pub struct IpCipher {
    v4_key: [u8; 16],
    aes: Aes128,
}

impl IpCipher {
    /// Set up from the raw 16-byte key (see [`key_from_passphrase`]).
    pub fn new(key: &Key<16>) -> Self {
        let k = key.bytes();
        IpCipher {
            v4_key: *k,
            aes: Aes128::new(&Block::from(*k)),
        }
    }
}

impl Drop for IpCipher {
    fn drop(&mut self) {
        self.v4_key.zeroize();
    }
}

impl std::fmt::Debug for IpCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpCipher(<keyed>)")
    }
}

// The byte operations are written on `u32` values held in 0..=255 with
// plain operators in one unrolled loop body, not `wrapping_add` /
// `rotate_left` calls in helper functions: the published vectors iterate
// ipcrypt 10^8 times, and in a debug build each call costs far more than
// the arithmetic.

/// 8-bit rotation left by `r` (1..=7) of a byte held in a `u32`.
macro_rules! rotl8 {
    ($x:expr, $r:expr) => {
        ((($x) << $r) | (($x) >> (8 - $r))) & 0xff
    };
}

/// 8-bit rotation right by `r` (1..=7) of a byte held in a `u32`.
macro_rules! rotr8 {
    ($x:expr, $r:expr) => {
        ((($x) >> $r) | (($x) << (8 - $r))) & 0xff
    };
}

type State = [u32; 4];

fn to_state(b: [u8; 4]) -> State {
    b.map(u32::from)
}

fn from_state(s: State) -> [u8; 4] {
    s.map(|x| (x & 0xff) as u8)
}

/// ipcrypt encryption of 4 bytes in network order.
pub fn ipcrypt_encrypt(key: &[u8; 16], b: [u8; 4]) -> [u8; 4] {
    ipcrypt_encrypt_iterated(key, b, 1)
}

/// ipcrypt decryption of 4 bytes in network order.
pub fn ipcrypt_decrypt(key: &[u8; 16], b: [u8; 4]) -> [u8; 4] {
    ipcrypt_decrypt_iterated(key, b, 1)
}

/// ipcrypt encryption applied `n` times in a row, as the published
/// iterated test vectors define (10^8 rounds of the whole cipher). The loop
/// body is written out on locals so that even a debug build runs it fast.
pub fn ipcrypt_encrypt_iterated(key: &[u8; 16], b: [u8; 4], n: u64) -> [u8; 4] {
    let k = key.map(u32::from);
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15] = k;
    let [mut s0, mut s1, mut s2, mut s3] = to_state(b);
    let mut i = 0;
    while i < n {
        s0 ^= k0;
        s1 ^= k1;
        s2 ^= k2;
        s3 ^= k3;
        // Three rounds of F, each followed by the next key word, unrolled.
        macro_rules! round {
            ($a:expr, $b:expr, $c:expr, $d:expr) => {
                s0 = (s0 + s1) & 0xff;
                s2 = (s2 + s3) & 0xff;
                s1 = rotl8!(s1, 2);
                s3 = rotl8!(s3, 5);
                s1 ^= s0;
                s3 ^= s2;
                s0 = rotl8!(s0, 4);
                s0 = (s0 + s3) & 0xff;
                s2 = (s2 + s1) & 0xff;
                s1 = rotl8!(s1, 3);
                s3 = rotl8!(s3, 7);
                s1 ^= s2;
                s3 ^= s0;
                s2 = rotl8!(s2, 4);
                s0 ^= $a;
                s1 ^= $b;
                s2 ^= $c;
                s3 ^= $d;
            };
        }
        round!(k4, k5, k6, k7);
        round!(k8, k9, k10, k11);
        round!(k12, k13, k14, k15);
        i += 1;
    }
    from_state([s0, s1, s2, s3])
}

/// The inverse of [`ipcrypt_encrypt_iterated`]: ipcrypt decryption applied
/// `n` times in a row.
pub fn ipcrypt_decrypt_iterated(key: &[u8; 16], b: [u8; 4], n: u64) -> [u8; 4] {
    let k = key.map(u32::from);
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15] = k;
    let [mut s0, mut s1, mut s2, mut s3] = to_state(b);
    let mut i = 0;
    while i < n {
        // Undo a key word, then one round of F, three times, unrolled.
        macro_rules! unround {
            ($a:expr, $b:expr, $c:expr, $d:expr) => {
                s0 ^= $a;
                s1 ^= $b;
                s2 ^= $c;
                s3 ^= $d;
                s2 = rotr8!(s2, 4);
                s3 ^= s0;
                s1 ^= s2;
                s3 = rotr8!(s3, 7);
                s1 = rotr8!(s1, 3);
                s2 = (s2 + 256 - s1) & 0xff;
                s0 = (s0 + 256 - s3) & 0xff;
                s0 = rotr8!(s0, 4);
                s3 ^= s2;
                s1 ^= s0;
                s3 = rotr8!(s3, 5);
                s1 = rotr8!(s1, 2);
                s2 = (s2 + 256 - s3) & 0xff;
                s0 = (s0 + 256 - s1) & 0xff;
            };
        }
        unround!(k12, k13, k14, k15);
        unround!(k8, k9, k10, k11);
        unround!(k4, k5, k6, k7);
        s0 ^= k0;
        s1 ^= k1;
        s2 ^= k2;
        s3 ^= k3;
        i += 1;
    }
    from_state([s0, s1, s2, s3])
}

impl AddrMap for IpCipher {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(ipcrypt_encrypt(&self.v4_key, a.octets()))
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let mut b = Block::from(a.octets());
        self.aes.encrypt_block(&mut b);
        Ipv6Addr::from(<[u8; 16]>::from(b))
    }

    fn map_v6_batch(&self, addrs: &mut [Ipv6Addr]) {
        let mut buf = [Block::default(); BUF_BLOCKS];
        for chunk in addrs.chunks_mut(BUF_BLOCKS) {
            let blocks = &mut buf[..chunk.len()];
            for (a, b) in chunk.iter().zip(blocks.iter_mut()) {
                *b = Block::from(a.octets());
            }
            self.aes.encrypt_blocks(blocks);
            for (a, b) in chunk.iter_mut().zip(blocks.iter()) {
                *a = Ipv6Addr::from(<[u8; 16]>::from(*b));
            }
        }
    }

    fn prefix_preserving(&self) -> bool {
        false
    }
}

impl Reversible for IpCipher {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(ipcrypt_decrypt(&self.v4_key, a.octets()))
    }

    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let mut b = Block::from(a.octets());
        self.aes.decrypt_block(&mut b);
        Ipv6Addr::from(<[u8; 16]>::from(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn readme_examples() {
        let c = IpCipher::new(&Key::new(*b"some 16-byte key"));
        for (i, o) in [
            ("127.0.0.1", "114.62.227.59"),
            ("8.8.8.8", "46.48.51.50"),
            ("1.2.3.4", "171.238.15.199"),
        ] {
            let i: Ipv4Addr = i.parse().unwrap();
            let o: Ipv4Addr = o.parse().unwrap();
            assert_eq!(c.map_v4(i), o);
            assert_eq!(c.unmap_v4(o), i);
        }
    }

    #[test]
    fn round_trips_and_batches() {
        let mut r = ChaCha8Rng::seed_from_u64(7);
        let mut k = [0u8; 16];
        r.fill_bytes(&mut k);
        let c = IpCipher::new(&Key::new(k));
        assert!(!c.prefix_preserving());
        for n in [0usize, 1, 7, 33, 1000] {
            let v4: Vec<Ipv4Addr> = (0..n).map(|_| Ipv4Addr::from(r.next_u32())).collect();
            let mut b4 = v4.clone();
            c.map_v4_batch(&mut b4);
            for (a, m) in v4.iter().zip(&b4) {
                assert_eq!(c.map_v4(*a), *m);
                assert_eq!(c.unmap_v4(*m), *a);
            }
            let v6: Vec<Ipv6Addr> = (0..n)
                .map(|_| {
                    Ipv6Addr::from((u128::from(r.next_u64()) << 64) | u128::from(r.next_u64()))
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
    fn iterated_matches_repeated() {
        let mut r = ChaCha8Rng::seed_from_u64(9);
        let mut k = [0u8; 16];
        r.fill_bytes(&mut k);
        for _ in 0..100 {
            let x = r.next_u32().to_be_bytes();
            let n = u64::from(r.next_u32() % 20);
            let mut y = x;
            for _ in 0..n {
                y = ipcrypt_encrypt(&k, y);
            }
            assert_eq!(ipcrypt_encrypt_iterated(&k, x, n), y);
            assert_eq!(ipcrypt_decrypt_iterated(&k, y, n), x);
            if n == 1 {
                assert_eq!(ipcrypt_decrypt(&k, y), x);
            }
        }
    }

    #[test]
    fn passphrase_kdf() {
        assert_eq!(
            key_from_passphrase(b"crypto is not a coin").bytes(),
            Key::<16>::from_hex("06c4bad23a38b9e0ad9d0590b0a3d93a")
                .unwrap()
                .bytes()
        );
    }
}
