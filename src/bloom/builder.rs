//! Building filters from client queries, one filter per period.
//!
//! The hot path ([`Builder::add_query`]) allocates nothing once warm: the
//! name, its labels and the `ENTITY@item` text live in reused buffers, the
//! period is found by a short scan of the open periods (normally the last
//! one), and items are hashed as `&str` by the `bloomfilter` crate.
//! Allocation happens only when a period opens (its bitmap and counters) and
//! when a counter's exact client set or a cache slot grows.
//!
//! Real traffic repeats itself: the same entity asks the same name many times
//! an hour. A small direct-mapped cache of recent (period, entity, name)
//! triples, compared byte for byte, skips the item hashing (2 SipHash and k
//! bit writes with two 64-bit divisions each, inside the `bloomfilter`
//! crate) for exact repeats. Only the insertions are skipped: queries, items
//! and clients are counted as before. A period opened again after a flush
//! gets a new generation number, so stale cache slots never match it.

use std::collections::HashSet;
use std::hash::Hasher;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bloomfilter::reexports::siphasher::sip::SipHasher13;
use bloomfilter::Bloom;
use ipwash_algorithms::Key;

use super::entities::{client_bytes, Entities};
use super::file::{Counts, FilterData};
use super::hll::ClientCounter;
use super::items::{NameBuf, ITEM_RULES};
use super::keys::Derived;
use super::question::{parse_question, QCLASS_IN};
use super::{
    file_name, new_bloom, sizing, BloomError, BloomWarning, BuildParams, BuildReport,
    WrittenFilter, SATURATION_FACTOR,
};

/// Slots in the recent-query cache (a power of two).
const RECENT_SLOTS: usize = 4096;

#[derive(Default)]
struct RecentSlot {
    generation: u64,
    entity: u32,
    hash: u64,
    name: Vec<u8>,
}

/// A fast, unkeyed hash for the cache index only (never stored).
fn fast_hash(b: &[u8], entity: u32) -> u64 {
    let mut h = u64::from(entity).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let mut w = [0u8; 8];
    let rest = chunks.remainder();
    if let Some(d) = w.get_mut(..rest.len()) {
        d.copy_from_slice(rest);
    }
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

struct Period {
    start: u64,
    /// Unique per opening of a period (cache validity); never 0.
    generation: u64,
    bloom: Bloom<str>,
    queries: u64,
    items: u64,
    total: ClientCounter,
    /// Indexed by entity id; allocated on first client of that entity.
    entities: Vec<Option<ClientCounter>>,
}

/// Accumulates queries into per-period filters and writes them.
///
/// Typical use: [`add_message`](Self::add_message) for every captured DNS
/// message, [`flush_stale`](Self::flush_stale) every so often (e.g. once per
/// batch) so memory stays bounded for time-ordered input, then
/// [`finish`](Self::finish). A query for a period already written (late
/// input) opens it again; writing it then merges with the file written
/// earlier by this builder. A file left in the directory by another run is
/// replaced.
pub struct Builder {
    params: BuildParams,
    entities: Entities,
    derived: Derived,
    bitmap_bytes: usize,
    client_hasher: SipHasher13,
    open: Vec<Period>,
    written: HashSet<u64>,
    latest: Option<u64>,
    report: BuildReport,
    wire_name: String,
    name: NameBuf,
    item: String,
    recent: Vec<RecentSlot>,
    generations: u64,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("params", &self.params)
            .field("open_periods", &self.open.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder for `params`, hashing under `key`. Refuses parameters that
    /// cannot make a filter (see [`BuildParams::validate`]).
    pub fn new(key: &Key<32>, params: BuildParams, entities: Entities) -> Result<Self, BloomError> {
        let (bitmap_bytes, _k) = sizing(&params)?;
        let derived = Derived::new(key);
        let client_hasher = SipHasher13::new_with_key(&derived.client_key);
        Ok(Builder {
            params,
            entities,
            derived,
            bitmap_bytes,
            client_hasher,
            open: Vec::new(),
            written: HashSet::new(),
            latest: None,
            report: BuildReport::default(),
            wire_name: String::with_capacity(256),
            name: NameBuf::default(),
            item: String::with_capacity(512),
            recent: (0..RECENT_SLOTS).map(|_| RecentSlot::default()).collect(),
            generations: 0,
        })
    }

    /// Add one DNS message (raw bytes, no TCP length prefix) sent by
    /// `client` at `ts_sec`. Responses, classes other than IN and messages
    /// whose question cannot be parsed are counted in the report and
    /// ignored; the return value says whether the message was used.
    pub fn add_message(&mut self, ts_sec: u64, client: IpAddr, msg: &[u8]) -> bool {
        match parse_question(msg, &mut self.wire_name) {
            Err(_) => {
                self.report.ignored_unparsable += 1;
                false
            }
            Ok(q) if q.is_response => {
                self.report.ignored_responses += 1;
                false
            }
            Ok(q) if q.qclass != QCLASS_IN => {
                self.report.ignored_class += 1;
                false
            }
            Ok(_) => {
                let wire = std::mem::take(&mut self.wire_name);
                self.add_query(ts_sec, client, &wire);
                self.wire_name = wire;
                true
            }
        }
    }

    /// Add one query name (presentation text; normalised here) asked by
    /// `client` at `ts_sec`.
    pub fn add_query(&mut self, ts_sec: u64, client: IpAddr, qname: &str) {
        self.name.set(qname);
        let start = ts_sec - ts_sec % self.params.period;
        self.latest = Some(self.latest.map_or(ts_sec, |l| l.max(ts_sec)));
        let idx = match self.open.iter().rposition(|p| p.start == start) {
            Some(i) => i,
            None => {
                let Ok(bloom) = new_bloom(
                    self.bitmap_bytes,
                    self.params.expected_items,
                    &self.derived.seed,
                ) else {
                    // Sizing was validated in `new`; unreachable in practice.
                    return;
                };
                self.generations += 1;
                self.open.push(Period {
                    start,
                    generation: self.generations,
                    bloom,
                    queries: 0,
                    items: 0,
                    total: ClientCounter::new(),
                    entities: Vec::new(),
                });
                self.open.len() - 1
            }
        };
        let entity_id = self.entities.lookup_id(client);
        let entity = self.entities.name(entity_id);
        let mut h = self.client_hasher;
        h.write(&client_bytes(client));
        let client_hash = h.finish();

        let Some(p) = self.open.get_mut(idx) else {
            return;
        };
        p.queries += 1;
        p.total.add(client_hash);
        let slot = entity_id as usize;
        if p.entities.len() <= slot {
            p.entities
                .resize_with(self.entities.len().max(slot + 1), || None);
        }
        if let Some(c) = p.entities.get_mut(slot) {
            c.get_or_insert_with(ClientCounter::new).add(client_hash);
        }
        let text = self.name.text.as_bytes();
        let h = fast_hash(text, entity_id);
        let repeat = match self.recent.get_mut(h as usize & (RECENT_SLOTS - 1)) {
            Some(slot) => {
                let hit = slot.generation == p.generation
                    && slot.entity == entity_id
                    && slot.hash == h
                    && slot.name == text;
                if !hit {
                    slot.generation = p.generation;
                    slot.entity = entity_id;
                    slot.hash = h;
                    slot.name.clear();
                    slot.name.extend_from_slice(text);
                }
                hit
            }
            None => false,
        };
        let item = &mut self.item;
        let bloom = &mut p.bloom;
        let mut n = 0u64;
        self.name.for_each_item(|it| {
            n += 2;
            if repeat {
                return;
            }
            bloom.set(it);
            item.clear();
            item.push_str(entity);
            item.push('@');
            item.push_str(it);
            bloom.set(item.as_str());
        });
        p.items += n;
    }

    /// Number of periods held in memory.
    pub fn open_periods(&self) -> usize {
        self.open.len()
    }

    /// Write (and drop from memory) every open period that ends at or
    /// before `ts_sec`. Returns how many files were written.
    pub fn flush_before(&mut self, dir: &Path, ts_sec: u64) -> Result<usize, BloomError> {
        let len = self.params.period;
        let mut n = 0;
        let mut i = 0;
        while i < self.open.len() {
            let ends = self.open.get(i).map(|p| p.start.saturating_add(len));
            if ends.is_some_and(|e| e <= ts_sec) {
                let p = self.open.remove(i);
                self.write_period(dir, p)?;
                n += 1;
            } else {
                i += 1;
            }
        }
        Ok(n)
    }

    /// Write every open period older than the one before the newest
    /// timestamp seen: for time-ordered input, at most two periods stay
    /// open, and packets up to one period late still land in memory.
    pub fn flush_stale(&mut self, dir: &Path) -> Result<usize, BloomError> {
        match self.latest {
            Some(t) => {
                let cur = t - t % self.params.period;
                self.flush_before(dir, cur.saturating_sub(self.params.period))
            }
            None => Ok(0),
        }
    }

    /// Write every remaining period and return the report of the whole run.
    pub fn finish(mut self, dir: &Path) -> Result<BuildReport, BloomError> {
        let open = std::mem::take(&mut self.open);
        for p in open {
            self.write_period(dir, p)?;
        }
        self.report.files.sort_by_key(|f| f.period_start);
        Ok(std::mem::take(&mut self.report))
    }

    /// Why the filter file at `path` (from an earlier run) cannot take this
    /// builder's filter of its period, or None when its parameters and key
    /// match (the two are then merged when the period is written).
    pub fn mismatch(&self, path: &Path) -> Result<Option<&'static str>, BloomError> {
        let d = FilterData::read(path)?;
        let (bytes, k) = sizing(&self.params)?;
        Ok(if d.fingerprint != self.derived.fingerprint {
            Some("key")
        } else if d.period_len != self.params.period {
            Some("--period")
        } else if d.period_start % self.params.period != 0 {
            Some("period alignment")
        } else if d.bits.len() != bytes || d.k != k {
            Some("filter size (--fp-rate, --expected-items)")
        } else if d.fp_target.to_bits() != self.params.fp_rate.to_bits() {
            Some("--fp-rate")
        } else if d.expected_items != self.params.expected_items {
            Some("--expected-items")
        } else if d.min_clients != self.params.min_clients {
            Some("--min-clients")
        } else if d.item_rules != ITEM_RULES {
            Some("item rules version")
        } else {
            None
        })
    }

    fn write_period(&mut self, dir: &Path, p: Period) -> Result<(), BloomError> {
        let slice = p.bloom.as_slice();
        let header = slice.len().saturating_sub(self.bitmap_bytes);
        let bits = slice.get(header..).unwrap_or_default().to_vec();
        let to_counts = |c: &ClientCounter| {
            let (clients, exact) = c.count();
            Counts {
                clients,
                exact,
                regs: c.regs.clone(),
            }
        };
        let mut entities: Vec<(String, Counts)> = p
            .entities
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .map(|c| (self.entities.name(i as u32).to_string(), to_counts(c)))
            })
            .collect();
        entities.sort_by(|a, b| a.0.cmp(&b.0));
        let mut data = FilterData {
            item_rules: ITEM_RULES,
            period_start: p.start,
            period_len: self.params.period,
            k: p.bloom.number_of_hash_functions(),
            fp_target: self.params.fp_rate,
            expected_items: self.params.expected_items,
            min_clients: self.params.min_clients,
            fingerprint: self.derived.fingerprint,
            queries: p.queries,
            items: p.items,
            total: to_counts(&p.total),
            entities,
            bits,
        };
        let path: PathBuf = dir.join(file_name(p.start));
        // A filter of this period written earlier in this run, or by an
        // earlier run into the same folder (checked by `mismatch` first):
        // merged, never replaced, so no name seen before is lost.
        if self.written.contains(&p.start) || path.is_file() {
            let earlier = FilterData::read(&path)?;
            data = super::merge_data(vec![(earlier, path.clone()), (data, path.clone())])?;
            // Remove the earlier entry; the merged one replaces it.
            self.report.files.retain(|f| f.period_start != p.start);
        }
        data.write(&path)?;
        self.written.insert(p.start);
        let estimated_fp = data.estimated_fp();
        if estimated_fp > SATURATION_FACTOR * data.fp_target {
            self.report.warnings.push(BloomWarning::Saturated {
                path: path.clone(),
                period_start: data.period_start,
                estimated_fp,
                target: data.fp_target,
            });
        }
        self.report.files.push(WrittenFilter {
            path,
            period_start: data.period_start,
            queries: data.queries,
            items: data.items,
            clients: data.total.clients,
            fill_ratio: data.fill_ratio(),
            estimated_fp,
        });
        Ok(())
    }
}
