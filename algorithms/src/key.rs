//! Key material: fixed-length byte keys that are zeroised on drop and never
//! shown by `Debug`.

use zeroize::Zeroize;

/// Errors parsing key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The hex text did not hold the expected number of bytes.
    #[error("key must be {expected} bytes ({} hex digits), found {found} bytes", expected * 2)]
    WrongLength {
        /// Bytes the technique needs.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error("key is not valid hex (bad character at position {0})")]
    BadHex(usize),
    /// The key is valid hex but unusable for this technique.
    #[error("{0}")]
    Invalid(&'static str),
}

/// `N` bytes of key material. Zeroised on drop; `Debug` prints no bytes.
#[derive(Clone)]
pub struct Key<const N: usize>([u8; N]);

impl<const N: usize> Key<N> {
    /// Wrap raw bytes.
    pub fn new(bytes: [u8; N]) -> Self {
        Key(bytes)
    }

    /// Parse hex text (surrounding ASCII whitespace ignored, no `0x`).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        // ASCII whitespace only, as a key file is read (`\u{85}` around a
        // key is not whitespace to the file reader, so not to this one).
        let t = text.trim_ascii().as_bytes();
        if t.len() % 2 != 0 || t.len() / 2 != N {
            // Check characters first so a bad digit is reported as such.
            if let Some(i) = t.iter().position(|c| !c.is_ascii_hexdigit()) {
                return Err(KeyError::BadHex(i));
            }
            return Err(KeyError::WrongLength {
                expected: N,
                found: t.len() / 2,
            });
        }
        let mut out = [0u8; N];
        for (i, pair) in t.chunks(2).enumerate() {
            let hi = hexval(pair[0]).ok_or(KeyError::BadHex(2 * i))?;
            let lo = hexval(pair[1]).ok_or(KeyError::BadHex(2 * i + 1))?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Key(out))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; N] {
        &self.0
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

impl<const N: usize> Drop for Key<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> std::fmt::Debug for Key<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key<{N}>(<redacted>)")
    }
}

/// A 16-byte sub-key for one use, named by `label`, from a technique key
/// (used in 16-byte pieces, the last one zero-padded): starting from
/// `label`, each piece in turn replaces the value `h` with
/// `AES-128(piece, h) XOR h` (Davies-Meyer), so the sub-key reveals nothing
/// about the technique's key and differs for every key and label.
pub fn derive_subkey(label: [u8; 16], technique_key: &[u8]) -> [u8; 16] {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let mut h = label;
    for piece in technique_key.chunks(16) {
        let mut k = [0u8; 16];
        k[..piece.len()].copy_from_slice(piece);
        let c = aes::Aes128::new(&k.into());
        let mut b = aes::Block::from(h);
        c.encrypt_block(&mut b);
        for (o, x) in h.iter_mut().zip(b.iter()) {
            *o ^= x;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let k = Key::<4>::from_hex("DEADbeef\n").unwrap();
        assert_eq!(k.bytes(), &[0xde, 0xad, 0xbe, 0xef]);
        let dbg = format!("{k:?}");
        assert!(!dbg.to_lowercase().contains("dead"), "{dbg}");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Key::<4>::from_hex("deadbe").unwrap_err(),
            KeyError::WrongLength {
                expected: 4,
                found: 3
            }
        );
        assert_eq!(Key::<2>::from_hex("zz00").unwrap_err(), KeyError::BadHex(0));
        assert_eq!(Key::<2>::from_hex("00g0").unwrap_err(), KeyError::BadHex(2));
    }
}
