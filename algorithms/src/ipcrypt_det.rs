//! ipcrypt-deterministic (draft-denis-ipcrypt-13): AES-128 on the 16-byte
//! form of an address.
//!
//! **Preserves:** nothing but equality (the same input and key always give
//! the same output); not prefix-preserving. **Reversible:** yes, with the
//! key. **Reference:** draft-denis-ipcrypt-13 section
//! "ipcrypt-deterministic" and its Appendix A test vectors.
//!
//! An IPv4 address is first written as `::ffff:a.b.c.d`, so its ciphertext
//! is 16 bytes and almost always an ordinary IPv6 address. This mode is
//! therefore **not format-preserving for IPv4**, and for that reason
//! [`IpcryptDeterministic`] deliberately does not implement
//! [`AddrMap`](crate::AddrMap): the type system stops it from being used
//! where an IPv4 address must stay 4 bytes (for example inside an IPv4
//! header). Use it where the output can be any 16-byte address, such as
//! text logs, or use [`crate::ipcrypt_pfx`] for a format-preserving map.
//!
//! ```
//! use ipwash_algorithms::{ipcrypt_det::IpcryptDeterministic, Key};
//! let key = Key::<16>::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
//! let c = IpcryptDeterministic::new(&key);
//! let ct = c.encrypt("192.0.2.1".parse().unwrap());
//! assert_eq!(ct.to_string(), "1dbd:c1b9:fff1:7586:7d0b:67b4:e76e:4777");
//! assert_eq!(c.decrypt(ct).to_string(), "192.0.2.1");
//! ```

use std::net::{IpAddr, Ipv6Addr};

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

use crate::Key;

/// Blocks per `encrypt_blocks` call in [`IpcryptDeterministic::encrypt_batch`].
const BUF_BLOCKS: usize = 256;

/// An ipcrypt-deterministic instance for one 16-byte key.
#[derive(Clone)]
pub struct IpcryptDeterministic {
    aes: Aes128,
}

impl std::fmt::Debug for IpcryptDeterministic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpcryptDeterministic(<keyed>)")
    }
}

/// The 16-byte form of an address: IPv4 becomes `::ffff:a.b.c.d`.
pub(crate) fn to_16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Back from 16 bytes: `::ffff:a.b.c.d` becomes IPv4.
pub(crate) fn from_16(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl IpcryptDeterministic {
    /// Set up from the 16-byte AES key.
    pub fn new(key: &Key<16>) -> Self {
        IpcryptDeterministic {
            aes: Aes128::new(&Block::from(*key.bytes())),
        }
    }

    /// Encrypt an address to 16 bytes, shown as an IPv6 address.
    pub fn encrypt(&self, a: IpAddr) -> Ipv6Addr {
        let mut b = Block::from(to_16(a));
        self.aes.encrypt_block(&mut b);
        Ipv6Addr::from(<[u8; 16]>::from(b))
    }

    /// Encrypt many addresses with batched AES calls. `out` receives one
    /// ciphertext per input; extra entries of the longer slice are ignored.
    pub fn encrypt_batch(&self, addrs: &[IpAddr], out: &mut [Ipv6Addr]) {
        let mut buf = [Block::default(); BUF_BLOCKS];
        for (ins, outs) in addrs.chunks(BUF_BLOCKS).zip(out.chunks_mut(BUF_BLOCKS)) {
            let n = ins.len().min(outs.len());
            let blocks = &mut buf[..n];
            for (b, a) in blocks.iter_mut().zip(ins) {
                *b = Block::from(to_16(*a));
            }
            self.aes.encrypt_blocks(blocks);
            for (o, b) in outs.iter_mut().zip(blocks.iter()) {
                *o = Ipv6Addr::from(<[u8; 16]>::from(*b));
            }
        }
    }

    /// Decrypt 16 bytes; a plaintext of the form `::ffff:a.b.c.d` is
    /// returned as IPv4.
    pub fn decrypt(&self, c: Ipv6Addr) -> IpAddr {
        let mut b = Block::from(c.octets());
        self.aes.decrypt_block(&mut b);
        from_16(b.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::net::Ipv4Addr;

    #[test]
    fn round_trips_and_batches() {
        let mut r = ChaCha8Rng::seed_from_u64(11);
        let mut k = [0u8; 16];
        r.fill_bytes(&mut k);
        let c = IpcryptDeterministic::new(&Key::new(k));
        for n in [0usize, 1, 7, 33, 1000] {
            let ins: Vec<IpAddr> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        IpAddr::V4(Ipv4Addr::from(r.next_u32()))
                    } else {
                        let x = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
                        IpAddr::V6(Ipv6Addr::from(x))
                    }
                })
                .collect();
            let mut out = vec![Ipv6Addr::UNSPECIFIED; n];
            c.encrypt_batch(&ins, &mut out);
            for (a, o) in ins.iter().zip(&out) {
                assert_eq!(c.encrypt(*a), *o);
                assert_eq!(c.decrypt(*o), *a);
            }
        }
    }

    #[test]
    fn v4_and_mapped_agree() {
        let c = IpcryptDeterministic::new(&Key::new([3u8; 16]));
        let a = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(
            c.encrypt(IpAddr::V4(a)),
            c.encrypt(IpAddr::V6(a.to_ipv6_mapped()))
        );
    }
}
