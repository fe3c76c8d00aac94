//! Key derivation for the filters.
//!
//! The operator key (32 bytes) is never used directly and never stored. Three
//! values are derived from it with AES-256 used as a pseudo-random function
//! on fixed, distinct 16-byte blocks (domain separation by the block text):
//!
//! | value | input block | use |
//! | --- | --- | --- |
//! | SipHash seed, first half  | `ipwash/bloom/sd0` | Bloom hashing (`bloomfilter` seed bytes 0..16) |
//! | SipHash seed, second half | `ipwash/bloom/sd1` | Bloom hashing (seed bytes 16..32) |
//! | client-hash key | `ipwash/bloom/cli` | SipHash-1-3 of client addresses for counting |
//! | key fingerprint | `ipwash/bloom/kfp` | stored in every filter file |
//!
//! AES is a pseudo-random permutation, so outputs on distinct inputs are
//! independent pseudo-random values; in particular the fingerprint says
//! nothing about the seed, and recovering the key from the fingerprint is an
//! AES key-recovery problem from one known plaintext. The fingerprint lets a
//! query with the wrong key fail loudly instead of answering "absent".

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes256;
use ipwash_algorithms::Key;
use zeroize::Zeroize;

const SEED0: &[u8; 16] = b"ipwash/bloom/sd0";
const SEED1: &[u8; 16] = b"ipwash/bloom/sd1";
const CLIENT: &[u8; 16] = b"ipwash/bloom/cli";
const FINGERPRINT: &[u8; 16] = b"ipwash/bloom/kfp";

/// Values derived from the operator key. Zeroised on drop, redacted `Debug`.
pub(crate) struct Derived {
    pub seed: [u8; 32],
    pub client_key: [u8; 16],
    pub fingerprint: [u8; 16],
}

impl Derived {
    pub fn new(key: &Key<32>) -> Self {
        let aes = Aes256::new(GenericArray::from_slice(key.bytes()));
        let prf = |block: &[u8; 16]| -> [u8; 16] {
            let mut b = GenericArray::clone_from_slice(block);
            aes.encrypt_block(&mut b);
            b.into()
        };
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&prf(SEED0));
        seed[16..].copy_from_slice(&prf(SEED1));
        Derived {
            seed,
            client_key: prf(CLIENT),
            fingerprint: prf(FINGERPRINT),
        }
    }
}

impl Drop for Derived {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.client_key.zeroize();
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived(<redacted>)")
    }
}

/// Lower-case hex of a byte string (for fingerprints only).
pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_separated_and_keyed() {
        let k1 = Key::new([7u8; 32]);
        let k2 = Key::new([8u8; 32]);
        let a = Derived::new(&k1);
        let b = Derived::new(&k2);
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(a.seed, b.seed);
        assert_ne!(a.seed[..16], a.fingerprint);
        assert_ne!(a.seed[..16], a.seed[16..]);
        assert_ne!(a.client_key, a.fingerprint);
        assert!(!format!("{a:?}").contains('7'));
    }

    /// Golden vector: AES-256 under key 00..1f of the block
    /// "ipwash/bloom/kfp", checked independently with
    /// `printf ipwash/bloom/kfp | openssl enc -aes-256-ecb -nopad -K 0001..1f`.
    /// Changing the derivation breaks every stored
    /// filter, so this must only change with a new file format version.
    #[test]
    fn fingerprint_golden() {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        let d = Derived::new(&Key::new(k));
        assert_eq!(hex(&d.fingerprint), GOLDEN_FP);
    }
    const GOLDEN_FP: &str = "7f68169d63d18c84503f9b6d46124f2f";
}
