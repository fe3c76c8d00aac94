//! Criterion benchmark of `ipwash text` on a generated BIND query log of
//! 1,000,000 lines from 100,000 Zipf-distributed clients (s = 1.1; one in
//! ten clients IPv6), read from memory and written to memory. The log is
//! generated once, outside the timed loop. Throughput is reported in lines
//! (elements) and bytes. Techniques: truncate (/24, /48: the setting closest
//! to anonip's masking) and Crypto-PAn, at 1 and 2 threads. Each iteration
//! checks the line count.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::pipeline::CompressArg;
use ipwash::text::formats::Spec;
use ipwash::text::runner::{wash_bytes, TextRun};
use ipwash::text::{Format, OnError};
use ipwash::wash::{Technique, Washer};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::truncate::{TruncMode, Truncate};

/// xorshift64*: a fixed, fast generator, so the log is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A BIND 9.18 query log (`print-time yes`), Zipf clients.
pub fn bind_querylog(lines: usize, clients: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut cdf = Vec::with_capacity(clients);
    let mut sum = 0.0f64;
    for r in 1..=clients {
        sum += 1.0 / (r as f64).powf(1.1);
        cdf.push(sum);
    }
    let addrs: Vec<IpAddr> = (0..clients)
        .map(|_| {
            let x = rng.next();
            if x % 10 == 0 {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    (x >> 16) as u16,
                    (x >> 32) as u16,
                    0,
                    0,
                    0,
                    (x >> 48) as u16 | 1,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(
                    0x0a00_0000 | ((x >> 8) as u32 & 0x00ff_ffff),
                ))
            }
        })
        .collect();
    let types = ["A", "AAAA", "A", "HTTPS", "A", "MX", "TXT", "PTR"];
    let mut out = Vec::with_capacity(lines * 150);
    use std::io::Write;
    for i in 0..lines {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * sum;
        let c = cdf.partition_point(|&v| v < u).min(clients - 1);
        let a = addrs[c];
        let server = if a.is_ipv4() {
            "192.0.2.53"
        } else {
            "2001:db8::53"
        };
        let x = rng.next();
        let name = format!("host{}.zone{}.example", x % 5000, (x >> 20) % 300);
        let t = types[(x >> 40) as usize % types.len()];
        let s = i / 1000;
        let _ = writeln!(
            out,
            "01-Dec-2026 {:02}:{:02}:{:02}.{:03} client @0x7f{:010x} {a}#{} ({name}): query: {name} IN {t} +E(0)K ({server})",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60,
            i % 1000,
            x & 0xff_ffff_ffff,
            1024 + (x >> 48) % 60000,
        );
    }
    out
}

fn benches(c: &mut Criterion) {
    let lines = 1_000_000usize;
    let log = bind_querylog(lines, 100_000, 7);
    let mut g = c.benchmark_group("text");
    g.sample_size(10);
    for (method, threads) in [
        ("truncate", 1),
        ("truncate", 2),
        ("cryptopan", 1),
        ("cryptopan", 2),
    ] {
        let make = || {
            let tech: Technique = if method == "truncate" {
                Technique::Stateless(Arc::new(
                    Truncate::new(24, 48, TruncMode::Keep).expect("prefixes"),
                ))
            } else {
                Technique::Stateless(Arc::new(CryptoPan::new(&ipwash_algorithms::Key::new(
                    *b"ipwash bench key, not a secret!!",
                ))))
            };
            let spec = Spec::new(Format::Plain, Vec::new(), None, OnError::Fail);
            TextRun::new(Washer::new(tech), threads, spec, false, CompressArg::None).expect("run")
        };
        let id = format!("{method}-threads{threads}");
        g.throughput(Throughput::Elements(lines as u64));
        g.bench_function(format!("{id}/lines"), |b| {
            b.iter(|| {
                let mut run = make();
                let out = wash_bytes(&mut run, &log).expect("wash");
                assert_eq!(run.stats().lines_written, lines as u64);
                out.len()
            })
        });
        g.throughput(Throughput::Bytes(log.len() as u64));
        g.bench_function(format!("{id}/bytes"), |b| {
            b.iter(|| {
                let mut run = make();
                wash_bytes(&mut run, &log).expect("wash").len()
            })
        });
    }
    g.finish();
}

criterion_group!(text, benches);
criterion_main!(text);
