//! cryptopANT: the prefix-preserving scrambler of the USC/ISI ANT project
//! (the library behind `scramble_ips` and the DITL captures' anonymisation,
//! also shipped by DNS-OARC), reproduced output for output.
//!
//! **Preserves:** prefixes (`cpl(F(x), F(y)) == cpl(x, y)`), and it is
//! one-to-one; the top `pass` bits of every address pass through unchanged,
//! and so do the classful leading bits of IPv4 (see below).
//! **Reversible:** yes, with the key file (as `scramble_ips -r`).
//! **Reference:** the cryptopANT library (`scramble_ip4`, `scramble_ip6`,
//! `unscramble_ip4`, `unscramble_ip6`, `scramble_readstate`) and its
//! published test vectors, checked line for line in
//! `testdata/vectors/cryptopant/` together with outputs of its own
//! `scramble_ips --pass4` / `--pass6`.
//!
//! # The key file
//!
//! One line, `C4:C6:KEY:PAD:MAC:IV`, each field lower- or upper-case hex:
//! `C4` and `C6` one byte each naming the function used for IPv4 and IPv6
//! (`01` MD5, `02` Blowfish, `03` AES, `04` SHA-1), `KEY` the cipher key
//! (16 bytes as cryptopANT writes it; AES also takes 24 or 32, Blowfish 4 to
//! 56), `PAD` up to 32 bytes (missing bytes are zero), `MAC` empty or at
//! least 8 bytes (the Ethernet scrambler, not used here), `IV` up to 32 bytes
//! (not used for addresses). A field ends at the first character that is not
//! a hex digit; a field may be cut short by the end of the file. MD5 and
//! SHA-1 keys use only the pad.
//!
//! # The definition
//!
//! Like Crypto-PAn, output bit `j` (counting from the least significant) is
//! the input bit XOR one pseudo-random bit of the input's bits above `j`.
//! The differences, all visible in the vectors:
//!
//! - The bits below the kept prefix are filled with the *top* bits of a pad
//!   word (`pad >> i`), not with the pad's own bits at those positions.
//! - IPv4: the 32-byte block is the address word in little-endian byte order
//!   followed by pad bytes 4..32, and the pad word is pad bytes 0..4 read
//!   little-endian; the bit used is the lowest bit of output byte 0. MD5 hashes
//!   the first 16 bytes of the block, SHA-1 the first 20, AES encrypts one
//!   16-byte block and Blowfish one 8-byte block (ECB).
//! - IPv4 class bits: the top 1, 2, 3 or 4 bits of a class A, B, C or D
//!   address always pass (even with no pass bits), and a class E address
//!   (240.0.0.0/4) is not changed at all. The pass count is the larger of
//!   `--pass4` and the class bits.
//! - IPv6 works on four 32-bit words in network order. The block is the 16
//!   address bytes, with the words already done taken from the address and
//!   the words not yet reached taken from pad bytes 0..16, followed by pad
//!   bytes 16..32; the bit used is the lowest bit of output byte 15. Blowfish
//!   encrypts the 16 bytes in CBC mode with a zero IV. The pass bits skip
//!   whole words first (`--pass6 64` leaves words 0 and 1 alone).
//!
//! The reverse resolves the bits from the top down, each from the bits above
//! it, giving the one preimage `unscramble_ip4` / `unscramble_ip6` find by
//! iteration.
//!
//! ```
//! use ipwash_algorithms::cryptopant::{CryptoPant, KeyFile};
//! use ipwash_algorithms::{AddrMap, Reversible};
//! let kf = KeyFile::parse(b"03:03:86bdbaa5d5a46ef72354297d42eb4e66:\
//! 48ffc62219372bbf05a28f65d25ccacb1c697e8fd0b108f3fd216ecd765647d1::\
//! f0732d8b37ae4c666b4a1a011cf10e79\n").unwrap();
//! let c = CryptoPant::new(&kf, 0, 0).unwrap();
//! let out = c.map_v4("207.88.68.228".parse().unwrap());
//! assert_eq!(out.to_string(), "217.247.204.108");
//! assert_eq!(c.unmap_v4(out).to_string(), "207.88.68.228");
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use blowfish::Blowfish;
use md5::{Digest, Md5};
use sha1::Sha1;
use zeroize::{Zeroize, Zeroizing};

use crate::{AddrMap, KeyError, Reversible};

/// Largest field of a key file, in bytes (cryptopANT's `MAX_BLK_LENGTH`).
pub const MAX_FIELD: usize = 32;
/// Key bytes cryptopANT writes into a new key file.
pub const NEW_KEY_LEN: usize = 16;
/// Pad bytes cryptopANT writes into a new key file.
pub const NEW_PAD_LEN: usize = 32;
/// IV bytes cryptopANT writes into a new key file.
pub const NEW_IV_LEN: usize = 16;
/// Random bytes [`KeyFile::generate`] takes: key, pad and IV.
pub const NEW_RANDOM_LEN: usize = NEW_KEY_LEN + NEW_PAD_LEN + NEW_IV_LEN;

/// The function cryptopANT draws its pseudo-random bits from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    /// MD5 of the block (type `01`); keyed by the pad only.
    Md5,
    /// Blowfish with the key (type `02`); cryptopANT's default.
    Blowfish,
    /// AES with the key (type `03`).
    Aes,
    /// SHA-1 of the block (type `04`); keyed by the pad only.
    Sha1,
}

impl Crypto {
    /// The type byte of the key file.
    pub fn code(self) -> u8 {
        match self {
            Crypto::Md5 => 1,
            Crypto::Blowfish => 2,
            Crypto::Aes => 3,
            Crypto::Sha1 => 4,
        }
    }

    /// The type for a key-file type byte.
    pub fn from_code(c: u8) -> Option<Crypto> {
        Some(match c {
            1 => Crypto::Md5,
            2 => Crypto::Blowfish,
            3 => Crypto::Aes,
            4 => Crypto::Sha1,
            _ => return None,
        })
    }

    /// The name `scramble_ips --type` takes.
    pub fn name(self) -> &'static str {
        match self {
            Crypto::Md5 => "md5",
            Crypto::Blowfish => "blowfish",
            Crypto::Aes => "aes",
            Crypto::Sha1 => "sha1",
        }
    }
}

/// The contents of a cryptopANT key file. Key material is zeroised on drop
/// and never shown by `Debug`.
#[derive(Clone)]
pub struct KeyFile {
    /// Function for IPv4.
    pub c4: Crypto,
    /// Function for IPv6.
    pub c6: Crypto,
    key: Zeroizing<Vec<u8>>,
    pad: Zeroizing<Vec<u8>>,
    mac: Zeroizing<Vec<u8>>,
    iv: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("c4", &self.c4)
            .field("c6", &self.c6)
            .field("key_len", &self.key.len())
            .field("pad_len", &self.pad.len())
            .finish_non_exhaustive()
    }
}

/// Reads hex fields as cryptopANT does: pairs of hex digits up to the first
/// other character (consumed) or the end of the text.
struct FieldReader<'a> {
    text: &'a [u8],
    pos: usize,
}

impl FieldReader<'_> {
    fn field(&mut self, max: usize, what: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let mut out = Zeroizing::new(Vec::with_capacity(max));
        loop {
            let Some(&c) = self.text.get(self.pos) else {
                return Ok(out);
            };
            self.pos += 1;
            let Some(hi) = hexval(c) else {
                return Ok(out);
            };
            let lo = self
                .text
                .get(self.pos)
                .and_then(|&c| hexval(c))
                .ok_or(KeyError::Invalid(match what {
                    "key" => "cryptopANT key file: the key has an odd number of hex digits",
                    "pad" => "cryptopANT key file: the pad has an odd number of hex digits",
                    "mac" => "cryptopANT key file: the MAC field has an odd number of hex digits",
                    "iv" => "cryptopANT key file: the IV has an odd number of hex digits",
                    _ => "cryptopANT key file: a type field has an odd number of hex digits",
                }))?;
            self.pos += 1;
            if out.len() == max {
                return Err(KeyError::Invalid(match what {
                    "key" => "cryptopANT key file: the key is longer than 32 bytes",
                    "pad" => "cryptopANT key file: the pad is longer than 32 bytes",
                    "mac" => "cryptopANT key file: the MAC field is longer than 32 bytes",
                    "iv" => "cryptopANT key file: the IV is longer than 32 bytes",
                    _ => "cryptopANT key file: a type field is longer than one byte",
                }));
            }
            out.push((hi << 4) | lo);
        }
    }
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn type_field(r: &mut FieldReader<'_>) -> Result<Crypto, KeyError> {
    let f = r.field(1, "type")?;
    match f.first() {
        None => Err(KeyError::Invalid(
            "cryptopANT key file: a type field (the first two fields, one byte each) is missing",
        )),
        Some(&c) => Crypto::from_code(c).ok_or(KeyError::Invalid(
            "cryptopANT key file: unknown type (01 md5, 02 blowfish, 03 aes, 04 sha1)",
        )),
    }
}

impl KeyFile {
    /// Parse the bytes of a key file.
    pub fn parse(text: &[u8]) -> Result<KeyFile, KeyError> {
        let mut r = FieldReader { text, pos: 0 };
        let c4 = type_field(&mut r)?;
        let c6 = type_field(&mut r)?;
        let key = r.field(MAX_FIELD, "key")?;
        let pad = r.field(MAX_FIELD, "pad")?;
        let mac = r.field(MAX_FIELD, "mac")?;
        let iv = r.field(MAX_FIELD, "iv")?;
        if !mac.is_empty() && mac.len() < 8 {
            return Err(KeyError::Invalid(
                "cryptopANT key file: the MAC field is shorter than 8 bytes",
            ));
        }
        let kf = KeyFile {
            c4,
            c6,
            key,
            pad,
            mac,
            iv,
        };
        // Check the key suits the ciphers now, so errors come before any data.
        Prf::new(&kf, kf.c4)?;
        Prf::new(&kf, kf.c6)?;
        Ok(kf)
    }

    /// A new key file as `scramble_ips --newkey --type T` makes one: the same
    /// type for both families, 16 key bytes, 32 pad bytes, no MAC, 16 IV
    /// bytes, all taken from `random`.
    pub fn generate(crypto: Crypto, random: &[u8; NEW_RANDOM_LEN]) -> KeyFile {
        let (k, rest) = random.split_at(NEW_KEY_LEN);
        let (p, iv) = rest.split_at(NEW_PAD_LEN);
        KeyFile {
            c4: crypto,
            c6: crypto,
            key: Zeroizing::new(k.to_vec()),
            pad: Zeroizing::new(p.to_vec()),
            mac: Zeroizing::new(Vec::new()),
            iv: Zeroizing::new(iv.to_vec()),
        }
    }

    /// The file's text, as cryptopANT writes it (`%02x` fields, a final
    /// newline).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(20 + 2 * 112));
        push_hex(&mut s, &[self.c4.code()]);
        s.push(':');
        push_hex(&mut s, &[self.c6.code()]);
        for f in [&self.key, &self.pad, &self.mac, &self.iv] {
            s.push(':');
            push_hex(&mut s, f);
        }
        s.push('\n');
        s
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// One pseudo-random function of a 32-byte block.
#[derive(Clone)]
enum Prf {
    Md5,
    Sha1,
    Blowfish(Box<Blowfish>),
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
}

impl Prf {
    fn new(kf: &KeyFile, c: Crypto) -> Result<Prf, KeyError> {
        Ok(match c {
            Crypto::Md5 => Prf::Md5,
            Crypto::Sha1 => Prf::Sha1,
            Crypto::Blowfish => Prf::Blowfish(Box::new(
                Blowfish::new_from_slice(&kf.key).map_err(|_| {
                    KeyError::Invalid("cryptopANT key file: a Blowfish key must be 4 to 56 bytes")
                })?,
            )),
            Crypto::Aes => match kf.key.len() {
                16 => Prf::Aes128(Box::new(Aes128::new_from_slice(&kf.key).expect("16"))),
                24 => Prf::Aes192(Box::new(Aes192::new_from_slice(&kf.key).expect("24"))),
                32 => Prf::Aes256(Box::new(Aes256::new_from_slice(&kf.key).expect("32"))),
                _ => {
                    return Err(KeyError::Invalid(
                        "cryptopANT key file: an AES key must be 16, 24 or 32 bytes",
                    ))
                }
            },
        })
    }

    /// The 16 (or 20) output bytes cryptopANT reads its bit from.
    fn output(&self, block: &[u8; 32]) -> [u8; 16] {
        let mut out = [0u8; 16];
        match self {
            Prf::Md5 => out.copy_from_slice(&Md5::digest(&block[..16])),
            Prf::Sha1 => out.copy_from_slice(&Sha1::digest(&block[..20])[..16]),
            Prf::Aes128(a) => aes_block(a.as_ref(), block, &mut out),
            Prf::Aes192(a) => aes_block(a.as_ref(), block, &mut out),
            Prf::Aes256(a) => aes_block(a.as_ref(), block, &mut out),
            Prf::Blowfish(b) => {
                // CBC with a zero IV over 16 bytes; IPv4 uses only the first
                // block, which is plain ECB.
                let mut c0 = blowfish::cipher::Block::<Blowfish>::clone_from_slice(&block[..8]);
                b.encrypt_block(&mut c0);
                let mut c1 = blowfish::cipher::Block::<Blowfish>::default();
                for i in 0..8 {
                    c1[i] = block[8 + i] ^ c0[i];
                }
                b.encrypt_block(&mut c1);
                out[..8].copy_from_slice(&c0);
                out[8..].copy_from_slice(&c1);
            }
        }
        out
    }
}

fn aes_block<C: BlockEncrypt + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>>(
    c: &C,
    block: &[u8; 32],
    out: &mut [u8; 16],
) {
    let mut b = aes::Block::clone_from_slice(&block[..16]);
    c.encrypt_block(&mut b);
    out.copy_from_slice(&b);
}

/// Classful bits that always pass, by the top four bits of an IPv4 address.
const CLASS_BITS: [u32; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 32];

/// The bits kept by `x & m` for the step that computes output bit `31 - i`:
/// the top `i` bits.
fn top_mask(i: u32) -> u32 {
    u32::MAX.checked_shl(32 - i).unwrap_or(0)
}

/// A cryptopANT scrambler for one key file and one pair of pass-bit counts.
#[derive(Clone)]
pub struct CryptoPant {
    prf4: Prf,
    prf6: Prf,
    pad: [u8; 32],
    pass4: u32,
    pass6: u32,
}

impl Drop for CryptoPant {
    fn drop(&mut self) {
        self.pad.zeroize();
    }
}

impl CryptoPant {
    /// A scrambler passing the top `pass4` bits of IPv4 (0..=32) and the top
    /// `pass6` bits of IPv6 (0..=128) unchanged, as `scramble_ips --pass4
    /// --pass6`.
    pub fn new(kf: &KeyFile, pass4: u8, pass6: u8) -> Result<CryptoPant, KeyError> {
        if pass4 > 32 {
            return Err(KeyError::Invalid("cryptopANT: --pass4 must be 0..=32"));
        }
        if pass6 > 128 {
            return Err(KeyError::Invalid("cryptopANT: --pass6 must be 0..=128"));
        }
        let mut pad = [0u8; 32];
        let n = kf.pad.len().min(32);
        pad[..n].copy_from_slice(&kf.pad[..n]);
        Ok(CryptoPant {
            prf4: Prf::new(kf, kf.c4)?,
            prf6: Prf::new(kf, kf.c6)?,
            pad,
            pass4: u32::from(pass4),
            pass6: u32::from(pass6),
        })
    }

    fn pbits4(&self, x: u32) -> u32 {
        self.pass4.max(CLASS_BITS[(x >> 28) as usize])
    }

    /// The flip bit for output bit `31 - i` of an IPv4 address whose top `i`
    /// bits are those of `x`.
    fn flip4(&self, block: &mut [u8; 32], x: u32, i: u32) -> u32 {
        let pad4 = u32::from_le_bytes([self.pad[0], self.pad[1], self.pad[2], self.pad[3]]);
        let v = (x & top_mask(i)) | (pad4 >> i);
        block[..4].copy_from_slice(&v.to_le_bytes());
        u32::from(self.prf4.output(block)[0] & 1)
    }

    /// Scramble an IPv4 address given as a host-order integer.
    pub fn scramble_u32(&self, x: u32) -> u32 {
        let mut block = self.pad;
        let mut flips = 0u32;
        for i in self.pbits4(x)..32 {
            flips |= self.flip4(&mut block, x, i) << (31 - i);
        }
        x ^ flips
    }

    /// Invert [`CryptoPant::scramble_u32`].
    pub fn unscramble_u32(&self, y: u32) -> u32 {
        // The class bits and the pass bits are the same in the output.
        let mut block = self.pad;
        let mut x = y;
        for i in self.pbits4(y)..32 {
            x ^= self.flip4(&mut block, x, i) << (31 - i);
        }
        x
    }

    fn flip6(&self, block: &mut [u8; 32], w: usize, x: u32, i: u32) -> u32 {
        let hpad = u32::from_be_bytes([
            self.pad[4 * w],
            self.pad[4 * w + 1],
            self.pad[4 * w + 2],
            self.pad[4 * w + 3],
        ]);
        let v = (x & top_mask(i)) | (hpad >> i);
        block[4 * w..4 * w + 4].copy_from_slice(&v.to_be_bytes());
        u32::from(self.prf6.output(block)[15] & 1)
    }

    /// Scramble (or, with `reverse`, unscramble) the 16 bytes of an IPv6
    /// address.
    fn run6(&self, a: [u8; 16], reverse: bool) -> [u8; 16] {
        let mut block = self.pad;
        let mut out = [0u8; 16];
        let mut pbits = self.pass6;
        for w in 0..4 {
            let word = |b: &[u8; 16]| {
                u32::from_be_bytes([b[4 * w], b[4 * w + 1], b[4 * w + 2], b[4 * w + 3]])
            };
            let y = word(&a);
            let start = pbits.min(32);
            let x = if reverse {
                let mut x = y;
                for i in start..32 {
                    x ^= self.flip6(&mut block, w, x, i) << (31 - i);
                }
                x
            } else {
                let mut flips = 0u32;
                for i in start..32 {
                    flips |= self.flip6(&mut block, w, y, i) << (31 - i);
                }
                y ^ flips
            };
            out[4 * w..4 * w + 4].copy_from_slice(&x.to_be_bytes());
            // The next words see this word's original value.
            let orig = if reverse { x } else { y };
            block[4 * w..4 * w + 4].copy_from_slice(&orig.to_be_bytes());
            pbits = pbits.saturating_sub(32);
        }
        out
    }
}

impl AddrMap for CryptoPant {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.scramble_u32(u32::from(a)))
    }

    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.run6(a.octets(), false))
    }

    fn prefix_preserving(&self) -> bool {
        true
    }
}

impl Reversible for CryptoPant {
    fn unmap_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.unscramble_u32(u32::from(a)))
    }

    fn unmap_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.run6(a.octets(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kf(t: &str) -> KeyFile {
        let p = format!(
            "{}/../testdata/vectors/cryptopant/keyfile.{t}",
            env!("CARGO_MANIFEST_DIR")
        );
        KeyFile::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn key_files_read_and_write_back_identically() {
        for t in ["aes", "blowfish", "md5", "sha1"] {
            let p = format!(
                "{}/../testdata/vectors/cryptopant/keyfile.{t}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(p).unwrap();
            let k = KeyFile::parse(text.as_bytes()).unwrap();
            assert_eq!(k.c4.name(), t);
            assert_eq!(k.to_text().as_str(), text);
        }
    }

    #[test]
    fn key_file_errors() {
        for (text, frag) in [
            ("", "missing"),
            ("03", "missing"),
            ("05:05:00", "unknown type"),
            ("0303:03:", "longer than one byte"),
            ("03:03:abc:", "odd number"),
            ("03:03:0011:", "AES key must be"),
            ("02:02:0011:", "Blowfish key must be"),
            ("01:01::00:0011:", "MAC field is shorter"),
        ] {
            let e = KeyFile::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(frag), "{text:?}: {e}");
        }
        // Fields cut short by the end of the file are empty, as in cryptopANT;
        // MD5 and SHA-1 need no key.
        let k = KeyFile::parse(b"01:04").unwrap();
        assert_eq!((k.c4, k.c6), (Crypto::Md5, Crypto::Sha1));
        let long_key = format!("03:03:{}:", "00".repeat(33));
        assert!(KeyFile::parse(long_key.as_bytes()).is_err());
    }

    #[test]
    fn class_bits_pass_and_class_e_is_unchanged() {
        let c = CryptoPant::new(&kf("aes"), 0, 0).unwrap();
        for x in (0u32..1 << 16).map(|i| i.wrapping_mul(0x9e37_79b9)) {
            let y = c.scramble_u32(x);
            let keep = CLASS_BITS[(x >> 28) as usize];
            assert_eq!(x & top_mask(keep), y & top_mask(keep));
            if x >> 28 == 15 {
                assert_eq!(x, y);
            }
            assert_eq!(c.unscramble_u32(y), x);
        }
    }

    #[test]
    fn generated_key_file_parses_back() {
        let mut r = [0u8; NEW_RANDOM_LEN];
        for (i, b) in r.iter_mut().enumerate() {
            *b = i as u8;
        }
        for t in [Crypto::Md5, Crypto::Blowfish, Crypto::Aes, Crypto::Sha1] {
            let k = KeyFile::generate(t, &r);
            let text = k.to_text();
            assert!(text.starts_with(&format!("0{}:0{}:00010203", t.code(), t.code())));
            assert!(text.contains("::"), "no MAC field");
            let back = KeyFile::parse(text.as_bytes()).unwrap();
            assert_eq!(back.to_text().as_str(), text.as_str());
        }
    }
}
