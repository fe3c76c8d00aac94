//! Criterion benchmark of the whole `wash` pipeline on a generated capture
//! of 1,000,000 DNS packets from 50,000 Zipf-distributed clients (see
//! `ipwash::synth`), read from memory and written to memory. The capture is
//! generated once, outside the timed loop. Throughput is reported in packets
//! (elements) and in bytes. Each iteration checks that every packet was
//! written and that addresses changed.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::pipeline::{wash_stream, Plan};
use ipwash::synth::{write_capture, SynthSpec};

fn benches(c: &mut Criterion) {
    let packets = 1_000_000u64;
    let mut cap = Vec::new();
    write_capture(
        SynthSpec {
            packets,
            clients: 50_000,
            seed: 1,
            random_clients: false,
        },
        &mut cap,
    )
    .expect("generate");
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    for (method, threads) in [
        ("truncate", 1),
        ("cryptopan", 1),
        ("cryptopan", 2),
        ("tsa", 2),
        ("ipcrypt-pfx", 2),
    ] {
        let id = format!("{method}-threads{threads}");
        let mut out = Vec::with_capacity(cap.len());
        g.throughput(Throughput::Elements(packets));
        g.bench_function(format!("{id}/packets"), |b| {
            b.iter(|| {
                out.clear();
                let mut plan = Plan::for_bench(method, threads);
                let st = wash_stream(Cursor::new(&cap), &mut out, &mut plan).expect("wash");
                assert_eq!(st.written, packets);
                assert!(st.rewritten > 0);
            })
        });
        g.throughput(Throughput::Bytes(cap.len() as u64));
        g.bench_function(format!("{id}/bytes"), |b| {
            b.iter(|| {
                out.clear();
                let mut plan = Plan::for_bench(method, threads);
                wash_stream(Cursor::new(&cap), &mut out, &mut plan).expect("wash");
            })
        });
    }
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
