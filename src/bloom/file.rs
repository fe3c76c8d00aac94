//! The filter file format, version 1.
//!
//! One file holds one filter. All integers are big-endian.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `IPWBLOOM` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | item-rules version (see `items.rs`) |
//! | 12 | 8 | period start, seconds since the Unix epoch (UTC) |
//! | 20 | 8 | period length, seconds (a merged file spans its inputs) |
//! | 28 | 8 | m, filter size in bits (a multiple of 8) |
//! | 36 | 4 | k, hash functions |
//! | 40 | 8 | target false-positive rate (IEEE 754 binary64) |
//! | 48 | 8 | expected items the filter was sized for |
//! | 56 | 4 | k-anonymity floor: minimum distinct clients for an answer |
//! | 60 | 16 | key fingerprint (see `keys.rs`; not the key) |
//! | 76 | 8 | queries added |
//! | 84 | 8 | item insertions (with repeats) |
//! | 92 | 1 | HyperLogLog precision p (12) |
//! | 93 | 4 | number of entity records E |
//! | 97 | .. | client record for all clients, then E entity records |
//! | .. | 8 | bitmap length in bytes (m / 8) |
//! | .. | m/8 | the bits: bit i is bit `i % 8` of byte `i / 8` (the `bloomfilter` crate's layout) |
//! | .. | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! An entity record is a name length (1 byte), the UTF-8 name, then a client
//! record. A client record is: distinct clients (8 bytes), 1 if that count is
//! exact (1 byte), the register encoding (1 byte: 0 dense, 1 sparse), and
//! the registers: dense is 2^p bytes; sparse is a count (2 bytes) and that
//! many (index: 2 bytes, value: 1 byte) pairs for the non-zero registers.
//! No client address and no key material is stored.

use std::path::Path;

use super::entities::valid_entity_name;
use super::hll::{HLL_M, HLL_MAX_RANK, HLL_P};
use super::BloomError;

/// File magic.
pub const MAGIC: &[u8; 8] = b"IPWBLOOM";
/// Current format version.
pub const FORMAT_VERSION: u16 = 1;

/// Distinct clients of one entity (or of all) in one filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Counts {
    pub clients: u64,
    pub exact: bool,
    pub regs: Vec<u8>,
}

impl Counts {
    /// Union with another count: register maximum, and the larger of the
    /// union estimate and either part.
    pub fn union(&mut self, other: &Counts) {
        for (a, b) in self.regs.iter_mut().zip(&other.regs) {
            *a = (*a).max(*b);
        }
        self.clients = super::hll::estimate(&self.regs)
            .max(self.clients)
            .max(other.clients);
        self.exact = false;
    }
}

/// Everything in one filter file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FilterData {
    pub item_rules: u16,
    pub period_start: u64,
    pub period_len: u64,
    pub k: u32,
    pub fp_target: f64,
    pub expected_items: u64,
    pub min_clients: u32,
    pub fingerprint: [u8; 16],
    pub queries: u64,
    pub items: u64,
    pub total: Counts,
    /// Sorted by name.
    pub entities: Vec<(String, Counts)>,
    pub bits: Vec<u8>,
}

impl FilterData {
    /// Filter size in bits.
    pub fn m_bits(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    /// Fraction of bits set.
    pub fn fill_ratio(&self) -> f64 {
        if self.bits.is_empty() {
            return 0.0;
        }
        let ones: u64 = self.bits.iter().map(|b| u64::from(b.count_ones())).sum();
        ones as f64 / self.m_bits() as f64
    }

    /// Estimated false-positive rate from the fill: fill^k.
    pub fn estimated_fp(&self) -> f64 {
        self.fill_ratio()
            .powi(i32::try_from(self.k).unwrap_or(i32::MAX))
    }

    /// Estimated distinct items from the fill: -m/k ln(1 - fill).
    pub fn estimated_items(&self) -> f64 {
        let f = self.fill_ratio();
        if f >= 1.0 || self.k == 0 {
            return f64::INFINITY;
        }
        -(self.m_bits() as f64) / f64::from(self.k) * (1.0 - f).ln()
    }

    /// Clients of `entity` (None: all), 0 if the entity never appeared.
    pub fn clients(&self, entity: Option<&str>) -> u64 {
        match entity {
            None => self.total.clients,
            Some(e) => self
                .entities
                .binary_search_by(|(n, _)| n.as_str().cmp(e))
                .ok()
                .and_then(|i| self.entities.get(i))
                .map_or(0, |(_, c)| c.clients),
        }
    }

    /// Serialise.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(self.bits.len() + 256);
        o.extend_from_slice(MAGIC);
        o.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        o.extend_from_slice(&self.item_rules.to_be_bytes());
        o.extend_from_slice(&self.period_start.to_be_bytes());
        o.extend_from_slice(&self.period_len.to_be_bytes());
        o.extend_from_slice(&self.m_bits().to_be_bytes());
        o.extend_from_slice(&self.k.to_be_bytes());
        o.extend_from_slice(&self.fp_target.to_bits().to_be_bytes());
        o.extend_from_slice(&self.expected_items.to_be_bytes());
        o.extend_from_slice(&self.min_clients.to_be_bytes());
        o.extend_from_slice(&self.fingerprint);
        o.extend_from_slice(&self.queries.to_be_bytes());
        o.extend_from_slice(&self.items.to_be_bytes());
        o.push(HLL_P);
        o.extend_from_slice(&(self.entities.len() as u32).to_be_bytes());
        write_counts(&mut o, &self.total);
        for (name, c) in &self.entities {
            o.push(name.len() as u8);
            o.extend_from_slice(name.as_bytes());
            write_counts(&mut o, c);
        }
        o.extend_from_slice(&(self.bits.len() as u64).to_be_bytes());
        o.extend_from_slice(&self.bits);
        let mut crc = flate2::Crc::new();
        crc.update(&o);
        o.extend_from_slice(&crc.sum().to_be_bytes());
        o
    }

    /// Parse; `path` is only used in errors.
    pub fn parse(b: &[u8], path: &Path) -> Result<Self, BloomError> {
        let mut r = Reader { b, at: 0, path };
        if r.take(8)? != MAGIC {
            return Err(r.err(0, "not an ipwash Bloom filter (bad magic)"));
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(BloomError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        // Check the CRC before trusting any length field.
        let body_len = b
            .len()
            .checked_sub(4)
            .ok_or_else(|| r.err(b.len(), "truncated"))?;
        let (body, tail) = b.split_at(body_len);
        let mut crc = flate2::Crc::new();
        crc.update(body);
        if tail != crc.sum().to_be_bytes() {
            return Err(r.err(body_len, "checksum mismatch (damaged file)"));
        }
        r.b = body;
        let item_rules = r.u16()?;
        let period_start = r.u64()?;
        let period_len = r.u64()?;
        let m_at = r.at;
        let m_bits = r.u64()?;
        let k_at = r.at;
        let k = r.u32()?;
        let fp_target = f64::from_bits(r.u64()?);
        let expected_items = r.u64()?;
        let min_clients = r.u32()?;
        let mut fingerprint = [0u8; 16];
        fingerprint.copy_from_slice(r.take(16)?);
        let queries = r.u64()?;
        let items = r.u64()?;
        let p_at = r.at;
        if r.u8()? != HLL_P {
            return Err(r.err(p_at, "unsupported HyperLogLog precision"));
        }
        let n_at = r.at;
        let n = r.u32()?;
        if n as usize > body.len() {
            return Err(r.err(n_at, "entity count larger than the file"));
        }
        let total = read_counts(&mut r)?;
        let mut entities: Vec<(String, Counts)> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name_at = r.at;
            let len = r.u8()?;
            let name = std::str::from_utf8(r.take(usize::from(len))?)
                .ok()
                .filter(|s| valid_entity_name(s))
                .ok_or_else(|| r.err(name_at, "bad entity name"))?
                .to_string();
            if entities.last().is_some_and(|(prev, _)| *prev >= name) {
                return Err(r.err(name_at, "entity names not sorted and unique"));
            }
            let c = read_counts(&mut r)?;
            entities.push((name, c));
        }
        let len_at = r.at;
        let len = r.u64()?;
        if Some(m_bits) != len.checked_mul(8) || len == 0 {
            return Err(r.err(m_at, "filter size m does not match the bitmap"));
        }
        let len = usize::try_from(len).map_err(|_| r.err(len_at, "bitmap too large"))?;
        let bits = r.take(len)?.to_vec();
        if r.at != body.len() {
            return Err(r.err(r.at, "trailing bytes after the bitmap"));
        }
        if k == 0 || k > 64 {
            return Err(r.err(k_at, "k out of range (1..=64)"));
        }
        if !(fp_target > 0.0 && fp_target < 1.0) || expected_items == 0 || period_len == 0 {
            return Err(r.err(40, "bad sizing or period parameters"));
        }
        Ok(FilterData {
            item_rules,
            period_start,
            period_len,
            k,
            fp_target,
            expected_items,
            min_clients,
            fingerprint,
            queries,
            items,
            total,
            entities,
            bits,
        })
    }

    /// Read a file.
    pub fn read(path: &Path) -> Result<Self, BloomError> {
        let b = std::fs::read(path).map_err(|e| BloomError::io(path, e))?;
        Self::parse(&b, path)
    }

    /// Write atomically (see [`crate::capture::write_replacing`]).
    pub fn write(&self, path: &Path) -> Result<(), BloomError> {
        crate::capture::write_replacing(path, &self.to_bytes()).map_err(|e| BloomError::io(path, e))
    }
}

fn write_counts(o: &mut Vec<u8>, c: &Counts) {
    o.extend_from_slice(&c.clients.to_be_bytes());
    o.push(u8::from(c.exact));
    let nonzero = c.regs.iter().filter(|&&r| r != 0).count();
    if nonzero * 3 + 2 < c.regs.len() {
        o.push(1);
        o.extend_from_slice(&(nonzero as u16).to_be_bytes());
        for (i, &r) in c.regs.iter().enumerate() {
            if r != 0 {
                o.extend_from_slice(&(i as u16).to_be_bytes());
                o.push(r);
            }
        }
    } else {
        o.push(0);
        o.extend_from_slice(&c.regs);
    }
}

fn read_counts(r: &mut Reader<'_>) -> Result<Counts, BloomError> {
    let clients = r.u64()?;
    let exact_at = r.at;
    let exact = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(r.err(exact_at, "bad exact flag")),
    };
    let enc_at = r.at;
    let regs = match r.u8()? {
        0 => r.take(HLL_M)?.to_vec(),
        1 => {
            let n = r.u16()?;
            let mut regs = vec![0u8; HLL_M];
            for _ in 0..n {
                let at = r.at;
                let i = usize::from(r.u16()?);
                let v = r.u8()?;
                match regs.get_mut(i) {
                    Some(slot) if v != 0 => *slot = v,
                    _ => return Err(r.err(at, "bad sparse register")),
                }
            }
            regs
        }
        _ => return Err(r.err(enc_at, "bad register encoding")),
    };
    if let Some(i) = regs.iter().position(|&v| v > HLL_MAX_RANK) {
        return Err(r.err(enc_at + i, "register value out of range"));
    }
    Ok(Counts {
        clients,
        exact,
        regs,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, offset: usize, what: &'static str) -> BloomError {
        BloomError::Format {
            path: self.path.to_path_buf(),
            offset,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BloomError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or_else(|| self.err(self.at, "truncated"))?;
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, BloomError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<u16, BloomError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(a))
    }

    fn u32(&mut self) -> Result<u32, BloomError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, BloomError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FilterData {
        let mut regs = vec![0u8; HLL_M];
        regs[5] = 3;
        regs[4000] = 9;
        FilterData {
            item_rules: 1,
            period_start: 1_800_000_000,
            period_len: 3600,
            k: 7,
            fp_target: 0.01,
            expected_items: 10,
            min_clients: 10,
            fingerprint: [0xab; 16],
            queries: 42,
            items: 300,
            total: Counts {
                clients: 2,
                exact: true,
                regs: regs.clone(),
            },
            entities: vec![
                (
                    "UNKNOWN".into(),
                    Counts {
                        clients: 1,
                        exact: true,
                        regs: vec![1u8; HLL_M],
                    },
                ),
                (
                    "isp".into(),
                    Counts {
                        clients: 1,
                        exact: false,
                        regs,
                    },
                ),
            ],
            bits: vec![0x5a; 13],
        }
    }

    #[test]
    fn round_trip_and_every_truncation_fails() {
        let f = sample();
        let b = f.to_bytes();
        let p = Path::new("x.bloom");
        assert_eq!(FilterData::parse(&b, p).unwrap(), f);
        for cut in 0..b.len() {
            assert!(FilterData::parse(&b[..cut], p).is_err(), "cut {cut}");
        }
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            assert!(FilterData::parse(&d, p).is_err(), "flip at {i}");
        }
    }
}
