//! `ipwash bench`: measure every technique on the user's own machine.
//!
//! Method: for each technique and family, map 1,000,000 addresses drawn
//! either uniformly at random (every address new) or from a Zipf
//! distribution over 20,000 distinct addresses (s = 1, the realistic case
//! for DNS clients), through the same path `wash` uses (batch entry points;
//! for Zipf, the per-worker exact-address cache in front). One thread. The
//! AES ceiling is measured in the same run: AES-128 blocks per second at the
//! best batch size, divided by the blocks one address needs. Each figure is
//! the best of three timed passes, after a warm-up pass.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes::cipher::{BlockEncrypt, KeyInit};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::ipcipher::IpCipher;
use ipwash_algorithms::ipcrypt_det::IpcryptDeterministic;
use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
use ipwash_algorithms::prefix_map::PrefixMap;
use ipwash_algorithms::truncate::Truncate;
use ipwash_algorithms::tsa::Tsa;
use ipwash_algorithms::{AddrMap, Key, StatefulMap};
use serde::Serialize;

use crate::error::CliError;
use crate::method::Method;
use crate::pipeline::{AddrCache, DEFAULT_CACHE_ENTRIES};

/// `ipwash bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Techniques to measure (repeatable; default: all).
    #[arg(long, value_enum)]
    pub method: Vec<Method>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Addresses per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: usize,
}

/// One row of the result table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Technique name.
    pub technique: String,
    /// "IPv4" or "IPv6".
    pub family: &'static str,
    /// "random" or "zipf".
    pub distribution: &'static str,
    /// Addresses per second.
    pub addresses_per_s: f64,
    /// Nanoseconds per address.
    pub ns_per_address: f64,
    /// AES-128 blocks one address needs without caches (None: not AES-based).
    pub aes_blocks_per_address: Option<u32>,
    /// Throughput divided by the AES ceiling for this technique.
    pub ratio_to_ceiling: Option<f64>,
    /// Bytes of memory the technique holds after the run.
    pub memory_bytes: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// AES-128 blocks per second at the best batch size, one core.
    pub aes_blocks_per_s: f64,
    /// The batch size (blocks per call) that gave it.
    pub aes_best_batch: usize,
    /// Rows.
    pub rows: Vec<Row>,
}

/// splitmix64: a small, fixed generator so every run measures the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Indices drawn from Zipf(s=1) over `n` items.
pub fn zipf_indices(count: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for i in 1..=n {
        acc += 1.0 / i as f64;
        cdf.push(acc);
    }
    let total = acc;
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let u = rng.unit() * total;
            cdf.partition_point(|&c| c < u).min(n - 1)
        })
        .collect()
}

/// Random IPv4 addresses.
pub fn random_v4(count: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut r = Rng(seed);
    (0..count)
        .map(|_| Ipv4Addr::from(r.next() as u32))
        .collect()
}

/// Random IPv6 addresses.
pub fn random_v6(count: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut r = Rng(seed);
    (0..count)
        .map(|_| Ipv6Addr::from(((r.next() as u128) << 64) | r.next() as u128))
        .collect()
}

fn best_of<F: FnMut()>(mut f: F) -> Duration {
    f();
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// AES-128 blocks/s at the best batch size, and that size.
pub fn aes_ceiling() -> (f64, usize) {
    let aes = aes::Aes128::new_from_slice(&[7u8; 16]).unwrap_or_else(|_| unreachable!());
    let mut best = (0.0, 0);
    for batch in [1usize, 8, 32, 128, 512, 2048] {
        let mut blocks = vec![aes::Block::default(); batch];
        let total = 1usize << 22;
        let d = best_of(|| {
            for _ in 0..total / batch {
                aes.encrypt_blocks(&mut blocks);
            }
        });
        std::hint::black_box(&blocks);
        let rate = total as f64 / d.as_secs_f64().max(1e-9);
        if rate > best.0 {
            best = (rate, batch);
        }
    }
    best
}

const BENCH_KEY32: [u8; 32] = *b"ipwash bench key, not a secret!!";
const BENCH_KEY16: [u8; 16] = *b"ipwash bench key";

enum Subject {
    Stateless(Arc<dyn AddrMap>, usize),
    Stateful(Box<dyn FnMut() -> Box<dyn StatefulMap>>),
    Deterministic(Box<IpcryptDeterministic>),
}

fn subject(m: Method) -> Result<Subject, CliError> {
    let k32 = Key::<32>::new(BENCH_KEY32);
    let k16 = Key::<16>::new(BENCH_KEY16);
    Ok(match m {
        Method::Truncate => Subject::Stateless(Arc::new(Truncate::default()), 0),
        Method::Cryptopan => {
            let c = CryptoPan::new(&k32);
            // The flip-bit table: one u16 per value of the first 15 bits.
            let mem = std::mem::size_of::<CryptoPan>()
                + (1usize << (ipwash_algorithms::cryptopan::TABLE_POSITIONS - 1)) * 2;
            Subject::Stateless(Arc::new(c), mem)
        }
        Method::Tsa => {
            let t = Tsa::new(&k32, 4096).map_err(|e| CliError::data(e.to_string()))?;
            let mem = t.memory_bytes();
            Subject::Stateless(Arc::new(t), mem)
        }
        Method::Ipcipher => Subject::Stateless(Arc::new(IpCipher::new(&k16)), 0),
        Method::Cryptopant => {
            use ipwash_algorithms::cryptopant::{Crypto, CryptoPant, KeyFile, NEW_RANDOM_LEN};
            let mut r = [0u8; NEW_RANDOM_LEN];
            r[..32].copy_from_slice(&BENCH_KEY32);
            r[32..].copy_from_slice(&BENCH_KEY32);
            let c = CryptoPant::new(&KeyFile::generate(Crypto::Aes, &r), 0, 0)
                .map_err(|e| CliError::data(e.to_string()))?;
            Subject::Stateless(Arc::new(c), 0)
        }
        Method::IpcryptPfx => Subject::Stateless(
            Arc::new(IpcryptPfx::new(&k32).map_err(|e| CliError::data(e.to_string()))?),
            0,
        ),
        Method::IpcryptDeterministic => {
            Subject::Deterministic(Box::new(IpcryptDeterministic::new(&k16)))
        }
        Method::Enumerate => {
            Subject::Stateful(Box::new(|| Box::new(Enumerate::new(Numbering::Sequential))))
        }
        Method::PrefixMap => Subject::Stateful(Box::new(move || {
            Box::new(PrefixMap::new(&Key::<32>::new(BENCH_KEY32), false))
        })),
        Method::IpcryptNd | Method::IpcryptNdx => {
            return Err(CliError::usage(format!(
                "{} produces ciphertexts, not addresses: bench measures address techniques",
                m.name()
            )))
        }
    })
}

fn aes_blocks(m: Method, v6: bool) -> Option<u32> {
    match (m, v6) {
        (Method::Cryptopan, false) => Some(32),
        (Method::Cryptopan, true) | (Method::Tsa, true) => Some(128),
        (Method::IpcryptPfx, false) => Some(64),
        (Method::IpcryptPfx, true) => Some(256),
        (Method::Ipcipher, true) | (Method::IpcryptDeterministic, _) => Some(1),
        _ => None,
    }
}

fn measure(m: Method, count: usize, ceiling: f64) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    let distinct = 20_000;
    let z = zipf_indices(count, distinct, 11);
    for v6 in [false, true] {
        let fam = if v6 { "IPv6" } else { "IPv4" };
        for dist in ["random", "zipf"] {
            let (d, mem) = match subject(m)? {
                Subject::Stateless(map, mem) => {
                    let d = if !v6 {
                        let src: Vec<Ipv4Addr> = if dist == "random" {
                            random_v4(count, 1)
                        } else {
                            let pool = random_v4(distinct, 2);
                            z.iter().map(|&i| pool[i]).collect()
                        };
                        let mut buf = src.clone();
                        let d = if dist == "random" {
                            best_of(|| {
                                buf.copy_from_slice(&src);
                                for c in buf.chunks_mut(1024) {
                                    map.map_v4_batch(c);
                                }
                            })
                        } else {
                            best_of(|| {
                                let mut cache = AddrCache::new(DEFAULT_CACHE_ENTRIES);
                                for (o, a) in buf.iter_mut().zip(&src) {
                                    if let IpAddr::V4(v) = cache.get_or(IpAddr::V4(*a), |x| match x
                                    {
                                        IpAddr::V4(v) => IpAddr::V4(map.map_v4(v)),
                                        other => other,
                                    }) {
                                        *o = v;
                                    }
                                }
                            })
                        };
                        std::hint::black_box(&buf);
                        d
                    } else {
                        let src = if dist == "random" {
                            random_v6(count, 3)
                        } else {
                            let pool = random_v6(distinct, 4);
                            z.iter().map(|&i| pool[i]).collect()
                        };
                        let mut buf = src.clone();
                        let d = if dist == "random" {
                            best_of(|| {
                                buf.copy_from_slice(&src);
                                for c in buf.chunks_mut(1024) {
                                    map.map_v6_batch(c);
                                }
                            })
                        } else {
                            best_of(|| {
                                let mut cache = AddrCache::new(DEFAULT_CACHE_ENTRIES);
                                for (o, a) in buf.iter_mut().zip(&src) {
                                    if let IpAddr::V6(v) = cache.get_or(IpAddr::V6(*a), |x| match x
                                    {
                                        IpAddr::V6(v) => IpAddr::V6(map.map_v6(v)),
                                        other => other,
                                    }) {
                                        *o = v;
                                    }
                                }
                            })
                        };
                        std::hint::black_box(&buf);
                        d
                    };
                    (d, mem)
                }
                Subject::Deterministic(det) => {
                    let src: Vec<IpAddr> = if v6 {
                        random_v6(count, 5).into_iter().map(IpAddr::V6).collect()
                    } else {
                        random_v4(count, 6).into_iter().map(IpAddr::V4).collect()
                    };
                    let src: Vec<IpAddr> = if dist == "zipf" {
                        z.iter().map(|&i| src[i]).collect()
                    } else {
                        src
                    };
                    let mut out = Vec::new();
                    out.resize(count, std::net::Ipv6Addr::UNSPECIFIED);
                    let d = best_of(|| {
                        for (i, o) in src.chunks(1024).zip(out.chunks_mut(1024)) {
                            det.encrypt_batch(i, o);
                        }
                    });
                    std::hint::black_box(&out);
                    (d, 0)
                }
                Subject::Stateful(mut make) => {
                    let mut mem = 0;
                    let src4 = random_v4(if dist == "random" { count } else { distinct }, 7);
                    let src6 = random_v6(if dist == "random" { count } else { distinct }, 8);
                    let d = best_of(|| {
                        let mut t = make();
                        if dist == "random" {
                            if v6 {
                                for a in &src6 {
                                    std::hint::black_box(t.map_v6(*a));
                                }
                            } else {
                                for a in &src4 {
                                    std::hint::black_box(t.map_v4(*a));
                                }
                            }
                        } else {
                            for &i in &z {
                                if v6 {
                                    std::hint::black_box(t.map_v6(src6[i]));
                                } else {
                                    std::hint::black_box(t.map_v4(src4[i]));
                                }
                            }
                        }
                        mem = t.memory_bytes();
                    });
                    (d, mem)
                }
            };
            let secs = d.as_secs_f64().max(1e-9);
            let rate = count as f64 / secs;
            let blocks = aes_blocks(m, v6);
            rows.push(Row {
                technique: m.name().to_string(),
                family: fam,
                distribution: dist,
                addresses_per_s: rate,
                ns_per_address: secs * 1e9 / count as f64,
                aes_blocks_per_address: blocks,
                ratio_to_ceiling: blocks.map(|b| rate / (ceiling / b as f64)),
                memory_bytes: mem,
            });
        }
    }
    Ok(rows)
}

/// Measure and return the report.
pub fn bench(methods: &[Method], count: usize) -> Result<Report, CliError> {
    let (ceiling, batch) = aes_ceiling();
    let mut rows = Vec::new();
    for &m in methods {
        rows.extend(measure(m, count, ceiling)?);
    }
    Ok(Report {
        aes_blocks_per_s: ceiling,
        aes_best_batch: batch,
        rows,
    })
}

fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0} ")
    }
}

/// Run `ipwash bench`.
pub fn run_bench(args: &BenchArgs) -> Result<(), CliError> {
    if args.count == 0 {
        return Err(CliError::usage("--count must be positive"));
    }
    let methods: Vec<Method> = if args.method.is_empty() {
        Method::ALL.to_vec()
    } else {
        args.method.clone()
    };
    let r = bench(&methods, args.count)?;
    let mut s = String::new();
    if args.json {
        s = serde_json::to_string_pretty(&r).map_err(|e| CliError::data(e.to_string()))?;
        s.push('\n');
    } else {
        s.push_str(&format!(
            "AES-128 ceiling: {}blocks/s (one core, {} blocks per call)\n\n",
            human(r.aes_blocks_per_s),
            r.aes_best_batch
        ));
        s.push_str(&format!(
            "{:<22} {:<6} {:<7} {:>14} {:>11} {:>9} {:>12}\n",
            "technique", "family", "distrib", "addresses/s", "ns/address", "ceiling", "memory"
        ));
        for row in &r.rows {
            s.push_str(&format!(
                "{:<22} {:<6} {:<7} {:>14} {:>11.2} {:>9} {:>12}\n",
                row.technique,
                row.family,
                row.distribution,
                human(row.addresses_per_s),
                row.ns_per_address,
                row.ratio_to_ceiling
                    .map_or("-".to_string(), |x| format!("{:.0} %", x * 100.0)),
                format!("{} KiB", row.memory_bytes / 1024),
            ));
        }
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(s.as_bytes())?;
    Ok(())
}
