//! Bloom filter insertion throughput.
//!
//! Method: 100,000 generated client queries (one to five labels under four
//! TLDs, 10,000 clients spread over three entities and UNKNOWN) are built
//! outside the timed loop, both as names and as DNS wire messages. Each
//! iteration feeds all of them, in one period, into a fresh builder sized
//! with the defaults (1,000,000 expected items at 1e-4: 2.4 MB, k = 13); the
//! builder is created outside the timing. Throughput is reported in queries
//! (elements) and, for the message path, bytes of DNS messages. A query of
//! n labels inserts about 2(n + 1) items. Every generated name is distinct,
//! which is the worst case: the builder's recent-query cache never hits.
//! The `skewed` workload draws the same number of queries from 5,000
//! distinct names with a heavy-headed distribution (index = 5000 u^3 for
//! uniform u), closer to resolver traffic, where repeats skip the hashing.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ipwash::bloom::{BuildParams, Builder, Entities};
use ipwash_algorithms::Key;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn queries(n: usize) -> Vec<(IpAddr, String, Vec<u8>)> {
    let mut r = Rng(42);
    (0..n)
        .map(|_| {
            let labels = 1 + r.next() % 4;
            let mut name = String::new();
            let mut wire = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            for _ in 0..labels {
                let len = 3 + r.next() % 10;
                let l: String = (0..len)
                    .map(|_| char::from(b'a' + (r.next() % 26) as u8))
                    .collect();
                name.push_str(&l);
                name.push('.');
                wire.push(l.len() as u8);
                wire.extend_from_slice(l.as_bytes());
            }
            let tld = ["com", "net", "nl", "org"][(r.next() % 4) as usize];
            name.push_str(tld);
            wire.push(tld.len() as u8);
            wire.extend_from_slice(tld.as_bytes());
            wire.extend_from_slice(&[0, 0, 1, 0, 1]);
            let client = IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 + (r.next() % 10_000) as u32 * 97,
            ));
            (client, name, wire)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = Key::new([9u8; 32]);
    let entities = Entities::parse("10.0.0.0/8\tisp\n10.1.0.0/16\tcampus\n10.2.0.0/24\tlab\n")
        .expect("entity file");
    let qs = queries(100_000);
    let distinct = queries(5_000);
    let mut r = Rng(7);
    let skewed: Vec<(IpAddr, String, Vec<u8>)> = (0..100_000)
        .map(|_| {
            let u = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
            let i = ((u * u * u) * distinct.len() as f64) as usize;
            distinct[i.min(distinct.len() - 1)].clone()
        })
        .collect();
    let bytes: u64 = qs.iter().map(|q| q.2.len() as u64).sum();
    let fresh =
        || Builder::new(&key, BuildParams::default(), entities.clone()).expect("default params");

    let mut g = c.benchmark_group("bloom_insert");
    g.throughput(Throughput::Elements(qs.len() as u64));
    g.bench_function("add_query", |b| {
        b.iter_batched(
            fresh,
            |mut bld| {
                for (i, (client, name, _)) in qs.iter().enumerate() {
                    bld.add_query(3_600_000 + (i as u64 & 1023), *client, black_box(name));
                }
                assert_eq!(bld.open_periods(), 1);
                bld
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("add_query_skewed", |b| {
        b.iter_batched(
            fresh,
            |mut bld| {
                for (i, (client, name, _)) in skewed.iter().enumerate() {
                    bld.add_query(3_600_000 + (i as u64 & 1023), *client, black_box(name));
                }
                assert_eq!(bld.open_periods(), 1);
                bld
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("add_message", |b| {
        b.iter_batched(
            fresh,
            |mut bld| {
                for (i, (client, _, wire)) in qs.iter().enumerate() {
                    let used =
                        bld.add_message(3_600_000 + (i as u64 & 1023), *client, black_box(wire));
                    assert!(used);
                }
                bld
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
