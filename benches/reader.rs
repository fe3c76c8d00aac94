//! Criterion benchmarks of the capture reader and the packet walker, in
//! memory, on the generated capture of 1,000,000 DNS packets that the
//! pipeline bench uses (`ipwash::synth`, 50,000 Zipf clients).
//!
//! - `reader/next_unit`: every record one unit at a time, as the sequential
//!   and live-pipe paths read them.
//! - `reader/read_into`: the same records copied out in batches of up to
//!   1,024 units or 1 MiB, as the batched workers read them.
//! - `walker/locate_general`: the general walker on every packet (link,
//!   IP, UDP, DNS and EDNS), without the plain shortcut.
//! - `walker/locate_plain`: the plain-UDP shortcut on every packet.
//!
//! Each iteration checks the count of units or located packets, so a
//! reader or walker that stopped early would fail the bench, not flatter it.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::capture::{CaptureReader, ReaderOptions};
use ipwash::packet::{locate_general, locate_plain, Located};
use ipwash::synth::{write_capture, SynthSpec};

const PACKETS: u64 = 1_000_000;

fn capture() -> Vec<u8> {
    let mut cap = Vec::new();
    write_capture(
        SynthSpec {
            packets: PACKETS,
            clients: 50_000,
            seed: 1,
            random_clients: false,
        },
        &mut cap,
    )
    .expect("generate");
    cap
}

/// The packets of `cap` (link type and bytes), read once outside the timing.
fn packets(cap: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut r = CaptureReader::new(Cursor::new(cap), ReaderOptions::default()).expect("header");
    let mut v = Vec::new();
    while let Some(u) = r.next_unit().expect("unit") {
        if let Some(p) = &u.packet {
            v.push((p.linktype, u.data[p.range.clone()].to_vec()));
        }
    }
    v
}

fn reader(c: &mut Criterion) {
    let cap = capture();
    let mut g = c.benchmark_group("reader");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PACKETS));
    g.bench_function("next_unit", |b| {
        b.iter(|| {
            let mut r = CaptureReader::new(Cursor::new(&cap[..]), ReaderOptions::default())
                .expect("header");
            let mut n = 0u64;
            while let Some(u) = r.next_unit().expect("unit") {
                n += u64::from(u.packet.is_some());
            }
            assert_eq!(n, PACKETS);
        })
    });
    let mut out = Vec::with_capacity(2 << 20);
    g.bench_function("read_into", |b| {
        b.iter(|| {
            let mut r = CaptureReader::new(Cursor::new(&cap[..]), ReaderOptions::default())
                .expect("header");
            let mut n = 0u64;
            loop {
                out.clear();
                let more = r
                    .read_into(&mut out, 1024, 1 << 20, |_, _, p, _| {
                        n += u64::from(p.is_some());
                    })
                    .expect("batch");
                if !more {
                    break;
                }
            }
            assert_eq!(n, PACKETS);
        })
    });
    g.finish();
}

fn walker(c: &mut Criterion) {
    let pkts = packets(&capture());
    let mut g = c.benchmark_group("walker");
    g.sample_size(10);
    g.throughput(Throughput::Elements(pkts.len() as u64));
    let mut loc = Located::new();
    g.bench_function("locate_general", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for (lt, p) in &pkts {
                n += u64::from(locate_general(*lt, p, &mut loc).is_ok());
            }
            assert_eq!(n, PACKETS);
        })
    });
    g.bench_function("locate_plain", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for (lt, p) in &pkts {
                n += u64::from(locate_plain(*lt, p, &mut loc));
            }
            assert!(n > 0);
        })
    });
    g.finish();
}

criterion_group!(benches, reader, walker);
criterion_main!(benches);
