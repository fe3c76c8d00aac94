//! ipcrypt-nd and ipcrypt-ndx (draft-denis-ipcrypt-13): non-deterministic
//! encryption of addresses with a caller-supplied random tweak.
//!
//! **Preserves:** nothing; the same address encrypts differently under
//! different tweaks, so outputs cannot even be correlated. **Reversible:**
//! yes, with the key (the tweak travels in the output). **Reference:**
//! draft-denis-ipcrypt-13 sections "ipcrypt-nd" and "ipcrypt-ndx" and their
//! Appendix A test vectors.
//!
//! The outputs are 24 or 32 bytes, not addresses, so these types do not
//! implement [`AddrMap`](crate::AddrMap). They suit text logs, not packets.
//! This crate has no random number generator: the caller draws a fresh
//! random tweak per encryption (the tweak must be unpredictable and should
//! not repeat, or equal inputs become linkable).
//!
//! - **ipcrypt-nd** uses KIASU-BC: AES-128 where an 8-byte tweak, spread to
//!   16 bytes as `t0 t1 0 0 t2 t3 0 0 t4 t5 0 0 t6 t7 0 0`, is XORed into
//!   every one of the 11 round keys. Output: `tweak(8) || ciphertext(16)`.
//!   The AES round function comes from the `aes` crate's `hazmat` API; the
//!   key schedule is computed here (its S-box lookups also go through the
//!   round function), because the high-level AES type hides round keys.
//! - **ipcrypt-ndx** is one block of AES-XTS: with `K1 = key[0..16]`,
//!   `K2 = key[16..32]` and `ET = AES(K2, tweak)`, the ciphertext is
//!   `AES(K1, P XOR ET) XOR ET`. Output: `tweak(16) || ciphertext(16)`.
//!
//! ```
//! use ipwash_algorithms::{ipcrypt_nd::IpcryptNd, Key};
//! let key = Key::<16>::from_hex("0123456789abcdeffedcba9876543210").unwrap();
//! let c = IpcryptNd::new(&key);
//! let tweak = [0x08, 0xe0, 0xc2, 0x89, 0xbf, 0xf2, 0x3b, 0x7c];
//! let ct = c.encrypt_with_tweak("0.0.0.0".parse().unwrap(), tweak);
//! assert_eq!(&ct[..8], &tweak);
//! assert_eq!(c.decrypt(&ct).to_string(), "0.0.0.0");
//! ```

use std::net::IpAddr;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::hazmat::{cipher_round, equiv_inv_cipher_round, inv_mix_columns, mix_columns};
use aes::{Aes128, Block};
use zeroize::Zeroize;

use crate::ipcrypt_det::{from_16, to_16};
use crate::Key;

/// Bytes of an ipcrypt-nd output: tweak(8) || ciphertext(16).
pub const ND_OUTPUT_BYTES: usize = 24;
/// Bytes of an ipcrypt-ndx output: tweak(16) || ciphertext(16).
pub const NDX_OUTPUT_BYTES: usize = 32;

const RCON: [u8; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

/// AES S-box applied to each byte of a 4-byte word, via the hazmat round
/// function: with four equal columns ShiftRows is the identity, so one
/// round with a zero key followed by InvMixColumns leaves SubBytes alone.
fn sub_word(w: [u8; 4]) -> [u8; 4] {
    let mut b = Block::default();
    for col in b.chunks_exact_mut(4) {
        col.copy_from_slice(&w);
    }
    cipher_round(&mut b, &Block::default());
    inv_mix_columns(&mut b);
    let out = [b[0], b[1], b[2], b[3]];
    b.as_mut_slice().zeroize();
    out
}

/// The 11 AES-128 round keys.
fn expand_key(key: &[u8; 16]) -> [Block; 11] {
    let mut w = [[0u8; 4]; 44];
    for (i, word) in w.iter_mut().take(4).enumerate() {
        word.copy_from_slice(&key[4 * i..4 * i + 4]);
    }
    for i in 4..44 {
        let mut t = w[i - 1];
        if i % 4 == 0 {
            t.rotate_left(1);
            t = sub_word(t);
            t[0] ^= RCON[i / 4 - 1];
        }
        for (x, y) in t.iter_mut().zip(w[i - 4]) {
            *x ^= y;
        }
        w[i] = t;
    }
    let mut rk = [Block::default(); 11];
    for (r, k) in rk.iter_mut().enumerate() {
        for (c, col) in k.chunks_exact_mut(4).enumerate() {
            col.copy_from_slice(&w[4 * r + c]);
        }
    }
    w.zeroize();
    rk
}

fn xor_into(s: &mut Block, k: &Block) {
    for (a, b) in s.iter_mut().zip(k.iter()) {
        *a ^= b;
    }
}

fn xored(a: &Block, b: &Block) -> Block {
    let mut out = *a;
    xor_into(&mut out, b);
    out
}

/// An ipcrypt-nd (KIASU-BC) instance for one 16-byte key.
#[derive(Clone)]
pub struct IpcryptNd {
    rk: [Block; 11],
}

impl std::fmt::Debug for IpcryptNd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpcryptNd(<keyed>)")
    }
}

impl Drop for IpcryptNd {
    fn drop(&mut self) {
        for k in self.rk.iter_mut() {
            k.as_mut_slice().zeroize();
        }
    }
}

/// Spread an 8-byte tweak to 16 bytes: two tweak bytes then two zeros,
/// per 4-byte column.
fn pad_tweak(t: &[u8; 8]) -> Block {
    let mut b = Block::default();
    for (col, pair) in b.chunks_exact_mut(4).zip(t.chunks_exact(2)) {
        col[..2].copy_from_slice(pair);
    }
    b
}

impl IpcryptNd {
    /// Set up from the 16-byte key.
    pub fn new(key: &Key<16>) -> Self {
        IpcryptNd {
            rk: expand_key(key.bytes()),
        }
    }

    /// KIASU-BC encryption of one block under a padded tweak.
    fn kiasu_encrypt(&self, t: &Block, block: &mut Block) {
        let [k0, middle @ .., k10] = &self.rk;
        xor_into(block, &xored(k0, t));
        for k in middle {
            cipher_round(block, &xored(k, t));
        }
        // Last round: no MixColumns.
        cipher_round(block, &Block::default());
        inv_mix_columns(block);
        xor_into(block, &xored(k10, t));
    }

    /// KIASU-BC decryption (equivalent inverse cipher).
    fn kiasu_decrypt(&self, t: &Block, block: &mut Block) {
        let [k0, middle @ .., k10] = &self.rk;
        xor_into(block, &xored(k10, t));
        for k in middle.iter().rev() {
            let mut ik = xored(k, t);
            inv_mix_columns(&mut ik);
            equiv_inv_cipher_round(block, &ik);
        }
        // Last inverse round: no InvMixColumns.
        equiv_inv_cipher_round(block, &Block::default());
        mix_columns(block);
        xor_into(block, &xored(k0, t));
    }

    /// Encrypt `a` under `tweak` (which the caller draws at random).
    /// Returns `tweak || ciphertext`.
    pub fn encrypt_with_tweak(&self, a: IpAddr, tweak: [u8; 8]) -> [u8; ND_OUTPUT_BYTES] {
        let mut b = Block::from(to_16(a));
        self.kiasu_encrypt(&pad_tweak(&tweak), &mut b);
        let mut out = [0u8; ND_OUTPUT_BYTES];
        out[..8].copy_from_slice(&tweak);
        out[8..].copy_from_slice(&b);
        out
    }

    /// Decrypt `tweak || ciphertext`. Every 24-byte string decrypts to
    /// some address; there is no authentication.
    pub fn decrypt(&self, ct: &[u8; ND_OUTPUT_BYTES]) -> IpAddr {
        let (tweak, body) = ct.split_at(8);
        let mut t = [0u8; 8];
        t.copy_from_slice(tweak);
        let mut b = Block::clone_from_slice(body);
        self.kiasu_decrypt(&pad_tweak(&t), &mut b);
        from_16(b.into())
    }
}

/// An ipcrypt-ndx (AES-XTS, one block) instance for one 32-byte key.
#[derive(Clone)]
pub struct IpcryptNdx {
    k1: Aes128,
    k2: Aes128,
}

impl std::fmt::Debug for IpcryptNdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpcryptNdx(<keyed>)")
    }
}

impl IpcryptNdx {
    /// Set up from the 32-byte key: `K1 = key[0..16]` encrypts the
    /// address, `K2 = key[16..32]` encrypts the tweak.
    pub fn new(key: &Key<32>) -> Self {
        let (h1, h2) = key.bytes().split_at(16);
        IpcryptNdx {
            k1: Aes128::new(Block::from_slice(h1)),
            k2: Aes128::new(Block::from_slice(h2)),
        }
    }

    fn encrypted_tweak(&self, tweak: &[u8]) -> Block {
        let mut et = Block::clone_from_slice(tweak);
        self.k2.encrypt_block(&mut et);
        et
    }

    /// Encrypt `a` under `tweak` (which the caller draws at random).
    /// Returns `tweak || ciphertext`.
    pub fn encrypt_with_tweak(&self, a: IpAddr, tweak: [u8; 16]) -> [u8; NDX_OUTPUT_BYTES] {
        let et = self.encrypted_tweak(&tweak);
        let mut b = Block::from(to_16(a));
        xor_into(&mut b, &et);
        self.k1.encrypt_block(&mut b);
        xor_into(&mut b, &et);
        let mut out = [0u8; NDX_OUTPUT_BYTES];
        out[..16].copy_from_slice(&tweak);
        out[16..].copy_from_slice(&b);
        out
    }

    /// Decrypt `tweak || ciphertext`. Every 32-byte string decrypts to
    /// some address; there is no authentication.
    pub fn decrypt(&self, ct: &[u8; NDX_OUTPUT_BYTES]) -> IpAddr {
        let (tweak, body) = ct.split_at(16);
        let et = self.encrypted_tweak(tweak);
        let mut b = Block::clone_from_slice(body);
        xor_into(&mut b, &et);
        self.k1.decrypt_block(&mut b);
        xor_into(&mut b, &et);
        from_16(b.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn rand_addr(r: &mut ChaCha8Rng, i: usize) -> IpAddr {
        if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(r.next_u32()))
        } else {
            let x = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
            IpAddr::V6(Ipv6Addr::from(x))
        }
    }

    #[test]
    fn kiasu_with_zero_tweak_is_aes() {
        let mut r = ChaCha8Rng::seed_from_u64(21);
        for _ in 0..50 {
            let mut k = [0u8; 16];
            r.fill_bytes(&mut k);
            let nd = IpcryptNd::new(&Key::new(k));
            let aes = Aes128::new(&Block::from(k));
            let mut p = [0u8; 16];
            r.fill_bytes(&mut p);
            let mut a = Block::from(p);
            aes.encrypt_block(&mut a);
            let mut b = Block::from(p);
            nd.kiasu_encrypt(&Block::default(), &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn nd_round_trips_and_tweak_matters() {
        let mut r = ChaCha8Rng::seed_from_u64(22);
        let mut k = [0u8; 16];
        r.fill_bytes(&mut k);
        let c = IpcryptNd::new(&Key::new(k));
        for i in 0..500 {
            let a = rand_addr(&mut r, i);
            let mut t = [0u8; 8];
            r.fill_bytes(&mut t);
            let ct = c.encrypt_with_tweak(a, t);
            assert_eq!(c.decrypt(&ct), a);
            t[i % 8] ^= 1;
            assert_ne!(c.encrypt_with_tweak(a, t)[8..], ct[8..]);
        }
    }

    #[test]
    fn ndx_round_trips_and_tweak_matters() {
        let mut r = ChaCha8Rng::seed_from_u64(23);
        let mut k = [0u8; 32];
        r.fill_bytes(&mut k);
        let c = IpcryptNdx::new(&Key::new(k));
        for i in 0..500 {
            let a = rand_addr(&mut r, i);
            let mut t = [0u8; 16];
            r.fill_bytes(&mut t);
            let ct = c.encrypt_with_tweak(a, t);
            assert_eq!(c.decrypt(&ct), a);
            t[i % 16] ^= 1;
            assert_ne!(c.encrypt_with_tweak(a, t)[16..], ct[16..]);
        }
    }
}
