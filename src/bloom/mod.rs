//! Bloom filters of DNS queries (RFC 8932 B.2.7, DNSBLOOM; after SURFnet's
//! "honas").
//!
//! This is a sink, not an address map: client queries go in, one filter file
//! per period comes out, and no client address is stored. The filters answer
//! "was this name asked in that period, and by that entity?" for someone who
//! holds the operator key, and nothing for anyone else:
//!
//! - **Keyed hashing.** Items are hashed with the `bloomfilter` crate's
//!   SipHash-1-3 under a seed derived from the operator key (`keys.rs`).
//!   Unlike honas, a stolen filter cannot be tested against a dictionary
//!   without the key. The file stores a one-way key fingerprint, never the
//!   seed, so a query with the wrong key is an error
//!   ([`BloomError::KeyMismatch`]), never a silent "absent".
//! - **Items** (rules version 1, `items.rs`): the normalised name, each
//!   label but the TLD (not for reverse names), the last two labels, and each
//!   of these again as `ENTITY@item`.
//! - **Periods** are aligned to multiples of the period length since the
//!   epoch and chosen by packet timestamp. File names are the period's UTC
//!   start in ISO 8601 basic format, which has no colons and so is valid on
//!   every file system: `20261122T070000Z.bloom`.
//! - **k-anonymity floor.** Each file stores its floor (`--min-clients`,
//!   default 10) next to distinct-client counts per entity and overall
//!   (`hll.rs`). A query answers [`Presence::Withheld`] when the entity, or
//!   for a query without entity the whole period, had fewer distinct clients
//!   than the floor. Applying the floor to whole-period answers too is
//!   deliberate: with three clients in a period, "present" names them just
//!   as well.
//! - **Merge** is a bitwise OR of filters with identical m, k, sizing, item
//!   rules and key fingerprint. The result spans from the earliest start to
//!   the latest end of its inputs, sums query and item counts, unions the
//!   HyperLogLog client sketches, and keeps the strictest floor. Merging the
//!   same file twice leaves the filter unchanged but double-counts queries.
//! - **Sizing**: `m = ceil(n ln p / (-8 ln^2 2))` bytes and
//!   `k = round(m/n ln 2)`, the `bloomfilter` crate's formulas, for n
//!   expected items (entity-prefixed items included) and target rate p. A
//!   filter whose estimated rate (fill ratio to the power k) exceeds ten
//!   times the target is reported as a [`BloomWarning`].
//!
//! The file format is described in `file.rs`.

mod builder;
mod entities;
mod file;
mod hll;
mod items;
mod keys;
pub mod question;

use std::path::{Path, PathBuf};

use bloomfilter::Bloom;
use ipwash_algorithms::Key;
use serde::Serialize;

pub use builder::Builder;
pub use entities::{Entities, UNKNOWN};
pub use file::{FORMAT_VERSION, MAGIC};
pub use items::ITEM_RULES;

use file::FilterData;
use items::NameBuf;
use keys::{hex, Derived};

/// A filter whose estimated false-positive rate exceeds this many times its
/// target is reported as saturated.
pub const SATURATION_FACTOR: f64 = 10.0;

/// Largest bitmap accepted when building: 1 GiB.
pub const MAX_BITMAP_BYTES: usize = 1 << 30;

/// Errors of the Bloom filter sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BloomError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A filter file is malformed.
    #[error("{}: bad filter file at byte {offset}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A filter file of a format version this build does not read.
    #[error("{}: unsupported filter format version {version}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// The filter was built with different item rules.
    #[error("{}: filter uses item rules version {found}, this build uses {ITEM_RULES}", path.display())]
    UnsupportedItemRules {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// The key does not match the filter's key fingerprint.
    #[error("{}: the key does not match this filter (key fingerprint differs)", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// Filters to merge differ in a parameter.
    #[error("{}: cannot merge, {what} differs from the first input", path.display())]
    Incompatible {
        /// The file that differs.
        path: PathBuf,
        /// Which parameter.
        what: &'static str,
    },
    /// A line of the entity (prefix) file is bad.
    #[error("entity file line {line}: {what}")]
    Entities {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Build parameters that cannot make a filter.
    #[error("bad Bloom filter parameters: {0}")]
    Params(&'static str),
    /// `--entity` names an entity none of the filters knows.
    #[error("no entity {name:?} in these filters ({})", known_list(known))]
    UnknownEntity {
        /// The name asked for.
        name: String,
        /// The entities the filters know, sorted.
        known: Vec<String>,
    },
    /// Nothing to work on.
    #[error("no input filters")]
    NoInputs,
}

impl BloomError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        BloomError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How filters are built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildParams {
    /// Period length in seconds (default 3600).
    pub period: u64,
    /// Target false-positive rate at `expected_items` (default 1e-4).
    pub fp_rate: f64,
    /// Distinct items (entity-prefixed ones included) a period is sized for
    /// (default 1,000,000: about 2.4 MB per filter at 1e-4).
    pub expected_items: u64,
    /// k-anonymity floor stored in each filter (default 10).
    pub min_clients: u32,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            period: 3600,
            fp_rate: 1e-4,
            expected_items: 1_000_000,
            min_clients: 10,
        }
    }
}

impl BuildParams {
    /// Check that the parameters can make a filter of at most
    /// [`MAX_BITMAP_BYTES`].
    pub fn validate(&self) -> Result<(), BloomError> {
        sizing(self).map(|_| ())
    }
}

/// (bitmap bytes, k) for `p`.
fn sizing(p: &BuildParams) -> Result<(usize, u32), BloomError> {
    if p.period == 0 {
        return Err(BloomError::Params("period must be at least 1 second"));
    }
    if !(p.fp_rate > 0.0 && p.fp_rate < 1.0) {
        return Err(BloomError::Params(
            "false-positive rate must be between 0 and 1",
        ));
    }
    if p.expected_items == 0 {
        return Err(BloomError::Params("expected items must be at least 1"));
    }
    let ln2 = std::f64::consts::LN_2;
    let bytes = (p.expected_items as f64 * p.fp_rate.ln() / (-8.0 * ln2 * ln2)).ceil();
    if !(1.0..=MAX_BITMAP_BYTES as f64).contains(&bytes) {
        return Err(BloomError::Params(
            "filter would exceed 1 GiB: lower expected items or raise the rate",
        ));
    }
    let bytes = bytes as usize;
    let k = ((bytes as f64 * 8.0) / p.expected_items as f64 * ln2).round();
    if k > 64.0 {
        return Err(BloomError::Params("more than 64 hash functions"));
    }
    Ok((bytes, (k as u32).max(1)))
}

/// A `bloomfilter` filter of `bytes` bytes sized for `items`, seeded.
fn new_bloom(bytes: usize, items: u64, seed: &[u8; 32]) -> Result<Bloom<str>, &'static str> {
    if bytes == 0 || items == 0 {
        return Err("empty filter");
    }
    let items = usize::try_from(items).map_err(|_| "too many items")?;
    Bloom::new_with_seed(bytes, items, seed)
}

/// Rebuild a `bloomfilter` filter from stored bits.
fn load_bloom(d: &FilterData, seed: &[u8; 32], path: &Path) -> Result<Bloom<str>, BloomError> {
    let bad = |what| BloomError::Format {
        path: path.to_path_buf(),
        offset: 28,
        what,
    };
    let b = new_bloom(d.bits.len(), d.expected_items, seed).map_err(bad)?;
    if b.number_of_hash_functions() != d.k {
        return Err(bad("k does not match m and the expected items"));
    }
    let mut raw = b.into_bytes();
    let header = raw
        .len()
        .checked_sub(d.bits.len())
        .ok_or_else(|| bad("bitmap size"))?;
    raw.get_mut(header..)
        .ok_or_else(|| bad("bitmap size"))?
        .copy_from_slice(&d.bits);
    Bloom::from_bytes(raw).map_err(bad)
}

/// The file name of the period starting at `start`: `YYYYMMDDTHHMMSSZ.bloom`.
pub fn file_name(start: u64) -> String {
    format!("{}.bloom", utc(start, false))
}

/// `t` as UTC: with `extended` RFC 3339 (`2026-11-22T07:00:00Z`), else ISO
/// 8601 basic (`20261122T070000Z`).
fn utc(t: u64, extended: bool) -> String {
    let days = t / 86_400;
    let secs = t % 86_400;
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    if extended {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
    }
}

/// Something the caller should tell the operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum BloomWarning {
    /// A filter holds far more items than it was sized for.
    Saturated {
        /// The file.
        path: PathBuf,
        /// Its period start (Unix seconds).
        period_start: u64,
        /// Estimated false-positive rate (fill ratio ^ k).
        estimated_fp: f64,
        /// The configured target.
        target: f64,
    },
}

impl std::fmt::Display for BloomWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BloomWarning::Saturated {
                path,
                estimated_fp,
                target,
                ..
            } => write!(
                f,
                "{}: estimated false-positive rate {estimated_fp:.3e} is over {SATURATION_FACTOR}x \
                 the target {target:.1e}; raise --expected-items or shorten --period",
                path.display()
            ),
        }
    }
}

/// One file written by a build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrittenFilter {
    /// Where.
    pub path: PathBuf,
    /// Period start, Unix seconds.
    pub period_start: u64,
    /// Queries added.
    pub queries: u64,
    /// Item insertions.
    pub items: u64,
    /// Distinct clients.
    pub clients: u64,
    /// Fraction of bits set.
    pub fill_ratio: f64,
    /// Estimated false-positive rate.
    pub estimated_fp: f64,
}

/// What a build did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildReport {
    /// Files written, by period start.
    pub files: Vec<WrittenFilter>,
    /// Warnings for the operator.
    pub warnings: Vec<BloomWarning>,
    /// Messages ignored because they were responses.
    pub ignored_responses: u64,
    /// Messages ignored because QCLASS was not IN.
    pub ignored_class: u64,
    /// Messages ignored because the question could not be parsed.
    pub ignored_unparsable: u64,
}

/// The answer for one name in one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// The filter holds the item (true, or a false positive at about the
    /// filter's rate).
    Present,
    /// The filter does not hold the item (certain).
    Absent,
    /// Refused: fewer distinct clients than the filter's floor.
    Withheld,
}

/// One line of a query answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryAnswer {
    /// The name as given.
    pub name: String,
    /// Start of the filter's period, Unix seconds (serialised as RFC 3339
    /// UTC, e.g. `"2026-11-22T07:00:00Z"`).
    #[serde(serialize_with = "ser_utc")]
    pub period_start: u64,
    /// The entity asked about, if any.
    pub entity: Option<String>,
    /// The answer.
    pub result: Presence,
    /// The filter is saturated (estimated false-positive rate over
    /// [`SATURATION_FACTOR`] x its target): `present` is unreliable.
    pub saturated: bool,
    /// The filter file answering.
    #[serde(skip)]
    pub filter: PathBuf,
}

fn ser_utc<S: serde::Serializer>(t: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&utc(*t, true))
}

/// For each filter (in period order) and each name, whether the name (or,
/// with `entity`, `ENTITY@name`) is present. Names are normalised like
/// queries at build time. Answers are [`Presence::Withheld`] below the
/// filter's k-anonymity floor. A filter built under another key is an error.
pub fn query(
    key: &Key<32>,
    filters: &[PathBuf],
    names: &[String],
    entity: Option<&str>,
) -> Result<Vec<QueryAnswer>, BloomError> {
    run_query(key, filters, names, &[entity], false)
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "they were built without --entities".to_string()
    } else {
        format!("known: {}", known.join(", "))
    }
}

/// [`query`] for several entities at once (none: all clients), each filter
/// read once; answers by period, then entity, then name. An entity that no
/// filter knows is an error listing the known ones.
pub fn query_entities(
    key: &Key<32>,
    filters: &[PathBuf],
    names: &[String],
    entities: &[String],
) -> Result<Vec<QueryAnswer>, BloomError> {
    let ents: Vec<Option<&str>> = if entities.is_empty() {
        vec![None]
    } else {
        entities.iter().map(|e| Some(e.as_str())).collect()
    };
    run_query(key, filters, names, &ents, true)
}

fn run_query(
    key: &Key<32>,
    filters: &[PathBuf],
    names: &[String],
    entities: &[Option<&str>],
    check_entities: bool,
) -> Result<Vec<QueryAnswer>, BloomError> {
    if filters.is_empty() {
        return Err(BloomError::NoInputs);
    }
    let derived = Derived::new(key);
    let mut loaded = Vec::with_capacity(filters.len());
    for path in filters {
        let d = FilterData::read(path)?;
        if d.fingerprint != derived.fingerprint {
            return Err(BloomError::KeyMismatch { path: path.clone() });
        }
        if d.item_rules != ITEM_RULES {
            return Err(BloomError::UnsupportedItemRules {
                path: path.clone(),
                found: d.item_rules,
            });
        }
        let bloom = load_bloom(&d, &derived.seed, path)?;
        let withheld: Vec<bool> = entities
            .iter()
            .map(|e| d.clients(*e) < u64::from(d.min_clients))
            .collect();
        let saturated = d.estimated_fp() > SATURATION_FACTOR * d.fp_target;
        let known: Vec<String> = d.entities.iter().map(|(n, _)| n.clone()).collect();
        loaded.push((d.period_start, bloom, withheld, saturated, path, known));
    }
    if check_entities {
        let mut known: Vec<String> = loaded.iter().flat_map(|l| l.5.iter().cloned()).collect();
        known.sort();
        known.dedup();
        for e in entities.iter().flatten() {
            if known.binary_search_by(|k| k.as_str().cmp(e)).is_err() {
                return Err(BloomError::UnknownEntity {
                    name: e.to_string(),
                    known,
                });
            }
        }
    }
    loaded.sort_by_key(|l| l.0);
    let mut name = NameBuf::default();
    let mut item = String::new();
    let mut out = Vec::with_capacity(loaded.len() * names.len() * entities.len());
    for (start, bloom, withheld, saturated, path, _) in &loaded {
        for (&entity, &withheld) in entities.iter().zip(withheld) {
            for n in names {
                let result = if withheld {
                    Presence::Withheld
                } else {
                    name.set(n);
                    item.clear();
                    if let Some(e) = entity {
                        item.push_str(e);
                        item.push('@');
                    }
                    item.push_str(&name.text);
                    if bloom.check(item.as_str()) {
                        Presence::Present
                    } else {
                        Presence::Absent
                    }
                };
                out.push(QueryAnswer {
                    name: n.clone(),
                    period_start: *start,
                    entity: entity.map(str::to_string),
                    result,
                    saturated: *saturated,
                    filter: path.to_path_buf(),
                });
            }
        }
    }
    Ok(out)
}

/// Merge `parts` (data, path for errors) into one.
fn merge_data(parts: Vec<(FilterData, PathBuf)>) -> Result<FilterData, BloomError> {
    let mut it = parts.into_iter();
    let (mut acc, _) = it.next().ok_or(BloomError::NoInputs)?;
    for (d, path) in it {
        let what = if d.fingerprint != acc.fingerprint {
            Some("key fingerprint")
        } else if d.bits.len() != acc.bits.len() {
            Some("filter size m")
        } else if d.k != acc.k {
            Some("hash count k")
        } else if d.item_rules != acc.item_rules {
            Some("item rules version")
        } else if d.fp_target.to_bits() != acc.fp_target.to_bits() {
            Some("target false-positive rate")
        } else if d.expected_items != acc.expected_items {
            Some("expected items")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(BloomError::Incompatible { path, what });
        }
        for (a, b) in acc.bits.iter_mut().zip(&d.bits) {
            *a |= b;
        }
        let end = (acc.period_start.saturating_add(acc.period_len))
            .max(d.period_start.saturating_add(d.period_len));
        acc.period_start = acc.period_start.min(d.period_start);
        acc.period_len = end - acc.period_start;
        acc.min_clients = acc.min_clients.max(d.min_clients);
        acc.queries = acc.queries.saturating_add(d.queries);
        acc.items = acc.items.saturating_add(d.items);
        acc.total.union(&d.total);
        for (name, c) in d.entities {
            match acc.entities.binary_search_by(|(n, _)| n.cmp(&name)) {
                Ok(i) => {
                    if let Some((_, a)) = acc.entities.get_mut(i) {
                        a.union(&c);
                    }
                }
                Err(i) => {
                    let mut c = c;
                    c.exact = false;
                    acc.entities.insert(i, (name, c));
                }
            }
        }
        // Entities only in the accumulator keep their counts, but are no
        // longer exact counts of the merged period.
        for (_, c) in &mut acc.entities {
            c.exact = false;
        }
    }
    Ok(acc)
}

/// OR filters with identical parameters and key into `out` (see the module
/// doc). The key is not needed: the fingerprints must agree.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<(), BloomError> {
    let mut acc: Option<FilterData> = None;
    for path in inputs {
        let d = FilterData::read(path)?;
        acc = Some(match acc {
            None => d,
            Some(a) => merge_data(vec![(a, path.clone()), (d, path.clone())])?,
        });
    }
    acc.ok_or(BloomError::NoInputs)?.write(out)
}

/// Distinct clients of one entity (or all) in a filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityInfo {
    /// Entity name.
    pub name: String,
    /// Distinct clients.
    pub clients: u64,
    /// Whether `clients` is exact (else a HyperLogLog estimate).
    pub exact: bool,
}

/// What `ipwash bloom info` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterInfo {
    /// File format version.
    pub format_version: u16,
    /// Item rules version.
    pub item_rules: u16,
    /// Period start, RFC 3339 UTC.
    pub period_start: String,
    /// Period start, Unix seconds.
    pub period_start_unix: u64,
    /// Period length, seconds.
    pub period_length: u64,
    /// Filter size in bits.
    pub m: u64,
    /// Hash functions.
    pub k: u32,
    /// Target false-positive rate.
    pub fp_target: f64,
    /// Items the filter was sized for.
    pub expected_items: u64,
    /// k-anonymity floor.
    pub min_clients: u32,
    /// Key fingerprint, hex (one-way; not the key).
    pub key_fingerprint: String,
    /// Queries added.
    pub queries: u64,
    /// Item insertions (with repeats).
    pub items_inserted: u64,
    /// Fraction of bits set.
    pub fill_ratio: f64,
    /// Distinct items estimated from the fill.
    pub estimated_items: f64,
    /// Estimated false-positive rate (fill ratio ^ k).
    pub estimated_fp_rate: f64,
    /// Whether the estimate exceeds [`SATURATION_FACTOR`] x the target.
    pub saturated: bool,
    /// Distinct clients over all entities.
    pub clients: u64,
    /// Whether `clients` is exact.
    pub clients_exact: bool,
    /// Per entity, by name.
    pub entities: Vec<EntityInfo>,
}

/// Describe one filter file. Needs no key.
pub fn info(path: &Path) -> Result<FilterInfo, BloomError> {
    let d = FilterData::read(path)?;
    let estimated_fp_rate = d.estimated_fp();
    Ok(FilterInfo {
        format_version: FORMAT_VERSION,
        item_rules: d.item_rules,
        period_start: utc(d.period_start, true),
        period_start_unix: d.period_start,
        period_length: d.period_len,
        m: d.m_bits(),
        k: d.k,
        fp_target: d.fp_target,
        expected_items: d.expected_items,
        min_clients: d.min_clients,
        key_fingerprint: hex(&d.fingerprint),
        queries: d.queries,
        items_inserted: d.items,
        fill_ratio: d.fill_ratio(),
        estimated_items: d.estimated_items(),
        estimated_fp_rate,
        saturated: estimated_fp_rate > SATURATION_FACTOR * d.fp_target,
        clients: d.total.clients,
        clients_exact: d.total.exact,
        entities: d
            .entities
            .iter()
            .map(|(n, c)| EntityInfo {
                name: n.clone(),
                clients: c.clients,
                exact: c.exact,
            })
            .collect(),
    })
}

/// The key fingerprint stored in filters built under `key`, as hex.
pub fn key_fingerprint(key: &Key<32>) -> String {
    hex(&Derived::new(key).fingerprint)
}

/// Read the bytes of a filter file as `info` and `query` do (every derived
/// figure computed, the Bloom filter rebuilt under a fixed seed and probed)
/// and return the filter encoded again. For the fuzz targets.
#[doc(hidden)]
pub fn parse_filter_bytes(b: &[u8]) -> Result<Vec<u8>, BloomError> {
    let path = Path::new("fuzz-input.bloom");
    let d = FilterData::parse(b, path)?;
    let _ = (
        d.m_bits(),
        d.fill_ratio(),
        d.estimated_items(),
        d.estimated_fp(),
        d.clients(None),
        utc(d.period_start, true),
    );
    for (name, _) in &d.entities {
        let _ = d.clients(Some(name));
    }
    let bloom = load_bloom(&d, &[7; 32], path)?;
    let _ = bloom.check("www.example.com");
    Ok(d.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats() {
        assert_eq!(utc(0, true), "1970-01-01T00:00:00Z");
        assert_eq!(file_name(1_795_330_800), "20261122T070000Z.bloom");
        assert_eq!(utc(951_782_400, true), "2000-02-29T00:00:00Z");
        assert_eq!(utc(4_102_444_799, true), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn sizing_matches_crate() {
        let p = BuildParams::default();
        let (bytes, k) = sizing(&p).unwrap();
        assert_eq!(bytes, Bloom::<str>::compute_bitmap_size(1_000_000, 1e-4));
        let b = new_bloom(bytes, p.expected_items, &[0; 32]).unwrap();
        assert_eq!(b.number_of_hash_functions(), k);
        for bad in [
            BuildParams { period: 0, ..p },
            BuildParams { fp_rate: 0.0, ..p },
            BuildParams { fp_rate: 1.0, ..p },
            BuildParams {
                fp_rate: f64::NAN,
                ..p
            },
            BuildParams {
                expected_items: 0,
                ..p
            },
            BuildParams {
                expected_items: u64::MAX,
                ..p
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
