//! Criterion benchmarks of the address techniques, one group per technique.
//!
//! Method: 1,000,000 addresses per iteration (100,000 for the slow
//! sequential ones), generated outside the timed loop by a fixed generator:
//! `random` = uniformly random (every address new), `zipf` = 1 M draws over
//! 20,000 distinct addresses (s = 1), mapped through the per-worker exact
//! cache as `wash` does. IPv4 and IPv6. Throughput is reported in addresses
//! (elements) and in address bytes. The result is checked (not all equal to
//! the input) so the work cannot be optimised away.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use ipwash::bench::{random_v4, random_v6, zipf_indices};
use ipwash::pipeline::{AddrCache, DEFAULT_CACHE_ENTRIES};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::ipcipher::IpCipher;
use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
use ipwash_algorithms::prefix_map::PrefixMap;
use ipwash_algorithms::truncate::Truncate;
use ipwash_algorithms::tsa::Tsa;
use ipwash_algorithms::{AddrMap, Key, StatefulMap};

const N: usize = 1_000_000;
const DISTINCT: usize = 20_000;

fn key32() -> Key<32> {
    Key::new(*b"ipwash bench key, not a secret!!")
}

/// One pass over `src` into `buf`: batched for random addresses, through
/// the exact-address cache (as `wash` does) for Zipf ones.
fn pass_v4(map: &dyn AddrMap, zipf: bool, src: &[Ipv4Addr], buf: &mut [Ipv4Addr]) {
    if zipf {
        let mut cache = AddrCache::new(DEFAULT_CACHE_ENTRIES);
        for (o, a) in buf.iter_mut().zip(src) {
            *o = Ipv4Addr::from(
                cache.v4(u32::from(*a), |x| u32::from(map.map_v4(Ipv4Addr::from(x)))),
            );
        }
    } else {
        buf.copy_from_slice(src);
        for ch in buf.chunks_mut(1024) {
            map.map_v4_batch(ch);
        }
    }
}

fn pass_v6(map: &dyn AddrMap, zipf: bool, src: &[Ipv6Addr], buf: &mut [Ipv6Addr]) {
    if zipf {
        let mut cache = AddrCache::new(DEFAULT_CACHE_ENTRIES);
        for (o, a) in buf.iter_mut().zip(src) {
            *o = Ipv6Addr::from(cache.v6(u128::from(*a), |x| {
                u128::from(map.map_v6(Ipv6Addr::from(x)))
            }));
        }
    } else {
        buf.copy_from_slice(src);
        for ch in buf.chunks_mut(1024) {
            map.map_v6_batch(ch);
        }
    }
}

type Pass<A> = fn(&dyn AddrMap, bool, &[A], &mut [A]);

/// One family's benches: each distribution reported twice, in addresses
/// and in address bytes (`width` bytes each).
fn family<A: Clone + PartialEq>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    map: &dyn AddrMap,
    fam: &str,
    width: u64,
    sets: [(&str, &Vec<A>); 2],
    pass: Pass<A>,
) {
    for (dist, src) in sets {
        let zipf = dist == "zipf";
        for (id, tp) in [
            (fam.to_string(), Throughput::Elements(N as u64)),
            (format!("{fam}-bytes"), Throughput::Bytes(width * N as u64)),
        ] {
            g.throughput(tp);
            g.bench_with_input(BenchmarkId::new(id, dist), src, |b, src| {
                let mut buf = src.clone();
                b.iter(|| pass(map, zipf, src, &mut buf));
                assert!(buf.iter().zip(src.iter()).any(|(a, b)| a != b));
            });
        }
    }
}

fn stateless(c: &mut Criterion, name: &str, map: Arc<dyn AddrMap>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let z = zipf_indices(N, DISTINCT, 11);
    let r4 = random_v4(N, 1);
    let p4 = random_v4(DISTINCT, 2);
    let z4: Vec<Ipv4Addr> = z.iter().map(|&i| p4[i]).collect();
    let r6 = random_v6(N, 3);
    let p6 = random_v6(DISTINCT, 4);
    let z6: Vec<Ipv6Addr> = z.iter().map(|&i| p6[i]).collect();
    family(
        &mut g,
        &*map,
        "ipv4",
        4,
        [("random", &r4), ("zipf", &z4)],
        pass_v4,
    );
    family(
        &mut g,
        &*map,
        "ipv6",
        16,
        [("random", &r6), ("zipf", &z6)],
        pass_v6,
    );
    g.finish();
}

fn stateful(c: &mut Criterion, name: &str, make: &dyn Fn() -> Box<dyn StatefulMap>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let n = 100_000;
    let z = zipf_indices(n, DISTINCT, 11);
    let r4 = random_v4(n, 1);
    let p4 = random_v4(DISTINCT, 2);
    let r6 = random_v6(n, 3);
    let p6 = random_v6(DISTINCT, 4);
    // Random draws may repeat (birthday collisions): the table holds one
    // entry per distinct address.
    let d4 = r4.iter().collect::<std::collections::HashSet<_>>().len();
    let d6 = r6.iter().collect::<std::collections::HashSet<_>>().len();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("ipv4", "random"), |b| {
        b.iter(|| {
            let mut t = make();
            for a in &r4 {
                std::hint::black_box(t.map_v4(*a));
            }
            assert_eq!(t.len(), d4);
        })
    });
    g.bench_function(BenchmarkId::new("ipv4", "zipf"), |b| {
        b.iter(|| {
            let mut t = make();
            for &i in &z {
                std::hint::black_box(t.map_v4(p4[i]));
            }
        })
    });
    g.bench_function(BenchmarkId::new("ipv6", "random"), |b| {
        b.iter(|| {
            let mut t = make();
            for a in &r6 {
                std::hint::black_box(t.map_v6(*a));
            }
            assert_eq!(t.len(), d6);
        })
    });
    g.bench_function(BenchmarkId::new("ipv6", "zipf"), |b| {
        b.iter(|| {
            let mut t = make();
            for &i in &z {
                std::hint::black_box(t.map_v6(p6[i]));
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let k = key32();
    stateless(c, "truncate", Arc::new(Truncate::default()));
    stateless(c, "cryptopan", Arc::new(CryptoPan::new(&k)));
    stateless(c, "tsa", Arc::new(Tsa::new(&k, 4096).expect("tsa")));
    stateless(
        c,
        "ipcipher",
        Arc::new(IpCipher::new(&Key::new(*b"ipwash bench key"))),
    );
    stateless(
        c,
        "ipcrypt-pfx",
        Arc::new(IpcryptPfx::new(&k).expect("pfx")),
    );
    stateful(c, "enumerate", &|| {
        Box::new(Enumerate::new(Numbering::Sequential))
    });
    stateful(c, "prefix-map", &|| {
        Box::new(PrefixMap::new(&key32(), false))
    });
}

criterion_group!(algorithms, benches);
criterion_main!(algorithms);
