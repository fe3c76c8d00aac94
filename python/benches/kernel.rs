//! The Arrow kernel of the Python bindings on one core: addresses per
//! second for string and binary columns (cryptopan, with the per-task
//! cache, on Zipf-like repeated clients as in DNS logs, and on all-distinct
//! addresses). Run: `cargo bench --manifest-path python/Cargo.toml`.

use std::sync::Arc;

use _ipwash::kernel::{Kernel, OnError};
use arrow_array::{ArrayRef, FixedSizeBinaryArray, StringArray};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::method::Built;
use ipwash::wash::{Technique, TechniqueInfo};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::Key;

const ROWS: usize = 1 << 16;

fn kernel() -> Kernel {
    let m = Arc::new(CryptoPan::new(&Key::new(
        *b"ipwash bench key, not a secret!!",
    )));
    let built = Built::Map {
        technique: Technique::Stateless(m.clone()),
        info: TechniqueInfo {
            name: "cryptopan".into(),
            ..TechniqueInfo::default()
        },
        reversible: Some(m),
    };
    Kernel::new(built, Vec::new(), None, OnError::Raise).expect("kernel")
}

/// Client numbers: skewed (a few hundred clients make most rows) or all distinct.
fn clients(skewed: bool) -> Vec<u32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..ROWS as u32)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            if skewed {
                // Roughly Zipf: the square of a uniform number favours small ids.
                let u = (s >> 40) as u32 % 4096;
                u * u / 4096
            } else {
                0x0a00_0000 | i
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let k = kernel();
    let mut g = c.benchmark_group("arrow_kernel");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    g.measurement_time(std::time::Duration::from_secs(3));
    for (name, skewed) in [("skewed", true), ("distinct", false)] {
        let ids = clients(skewed);
        let strs: ArrayRef =
            Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| {
                std::net::Ipv4Addr::from(0xc633_0000u32 ^ i).to_string()
            })));
        let bins: ArrayRef = Arc::new(
            FixedSizeBinaryArray::try_from_iter(
                ids.iter().map(|&i| (0xc633_0000u32 ^ i).to_be_bytes()),
            )
            .expect("fixed"),
        );
        let v6: ArrayRef = Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| {
            std::net::Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(i))
                .to_string()
        })));
        g.bench_function(format!("utf8_ipv4_{name}"), |b| {
            b.iter(|| k.wash(strs.as_ref()).expect("wash"))
        });
        g.bench_function(format!("utf8_ipv6_{name}"), |b| {
            b.iter(|| k.wash(v6.as_ref()).expect("wash"))
        });
        g.bench_function(format!("binary4_{name}"), |b| {
            b.iter(|| k.wash(bins.as_ref()).expect("wash"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
