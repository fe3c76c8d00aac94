//! Criterion benchmark of dnstap washing throughput.
//!
//! What is measured: one call of [`wash_dnstap`] over a whole dnstap
//! stream held in memory, writing into a pre-allocated in-memory buffer,
//! with a washer built once outside the timed loop. The group `bytes`
//! reports throughput in input bytes (criterion prints MiB/s), the group
//! `messages` the same runs in dnstap messages per second. Methods:
//! `cryptopan` (a fixed, public bench key) and `truncate` (IPv4 /24,
//! IPv6 /48). Options are those of real use (identity and version blanked,
//! extra dropped).
//!
//! Input: a stream generated here from a fixed seed, outside the timed
//! loop: [`PAIRS`] CLIENT_QUERY / CLIENT_RESPONSE pairs as a resolver
//! writes them (identity, version, socket family and protocol, both
//! addresses and ports, query and response times, the DNS query, and for
//! responses the query and response DNS messages). Clients are drawn with
//! a skewed popularity from [`POPULATION`] addresses, a quarter of them
//! IPv6; one query in five carries an EDNS Client Subnet option. Before
//! timing, the stream is checked once: every message must be written and
//! rewritten.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::dnstap::{wash_dnstap, DnstapOptions, DnstapStats};
use ipwash::wash::{Technique, Washer};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::truncate::Truncate;
use ipwash_algorithms::Key;
use prost::encoding::encode_varint;

/// Query/response pairs in the generated stream.
const PAIRS: usize = 100_000;
/// Distinct client addresses.
const POPULATION: u64 = 50_000;

/// SplitMix64: deterministic, good enough to shape test data.
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

fn bytes_field(out: &mut Vec<u8>, num: u64, v: &[u8]) {
    encode_varint(num << 3 | 2, out);
    encode_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

fn varint_field(out: &mut Vec<u8>, num: u64, v: u64) {
    encode_varint(num << 3, out);
    encode_varint(v, out);
}

/// A DNS query (`answer` false) or its response with one A record, with an
/// OPT record that holds an ECS /24 option when `ecs` is given.
fn dns_message(id: u16, name: &[u8], ecs: Option<&[u8]>, answer: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    let flags: &[u8] = if answer { &[0x81, 0x80] } else { &[0x01, 0x00] };
    m.extend_from_slice(flags);
    m.extend_from_slice(&[0, 1, 0, answer as u8, 0, 0, 0, 1]);
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if answer {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 80]);
    }
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    match ecs {
        Some(a) => {
            m.extend_from_slice(&[0, 11, 0, 8, 0, 7, 0, 1, 24, 0]);
            m.extend_from_slice(a);
        }
        None => m.extend_from_slice(&[0, 0]),
    }
    m
}

fn message(rng: &mut Rng, i: usize, out: &mut Vec<u8>) {
    let c = rng.next() % POPULATION;
    let c = c * c / POPULATION; // skewed towards small indices
    let v6 = c % 4 == 0;
    let (qa, ra): (Vec<u8>, Vec<u8>) = if v6 {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[8..].copy_from_slice(&c.to_be_bytes());
        (
            a.to_vec(),
            vec![
                0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
        )
    } else {
        let a = (0x0a00_0000u32 | c as u32).to_be_bytes();
        (a.to_vec(), vec![192, 0, 2, 53])
    };
    let name = format!("\x03www\x08site{:04}\x07example\x00", rng.next() % 10_000);
    let ecs = (rng.next() % 5 == 0).then_some([198u8, 51, 100]);
    let ecs = ecs.as_ref().map(|e| &e[..]);
    let q = dns_message(i as u16, name.as_bytes(), ecs, false);
    let r = dns_message(i as u16, name.as_bytes(), ecs, true);
    for resp in [false, true] {
        let mut m = Vec::new();
        varint_field(&mut m, 1, if resp { 6 } else { 5 });
        varint_field(&mut m, 2, if v6 { 2 } else { 1 });
        varint_field(&mut m, 3, 1);
        bytes_field(&mut m, 4, &qa);
        bytes_field(&mut m, 5, &ra);
        varint_field(&mut m, 6, 1024 + (rng.next() % 60_000));
        varint_field(&mut m, 7, 53);
        varint_field(&mut m, 8, 1_700_000_000 + i as u64 / 1000);
        m.extend_from_slice(&[0x4d, 1, 2, 3, 4]);
        bytes_field(&mut m, 10, &q);
        if resp {
            varint_field(&mut m, 12, 1_700_000_000 + i as u64 / 1000);
            m.extend_from_slice(&[0x6d, 5, 6, 7, 8]);
            bytes_field(&mut m, 14, &r);
        }
        let mut d = Vec::new();
        bytes_field(&mut d, 1, b"resolver1.example.net");
        bytes_field(&mut d, 2, b"resolver 9.18.1");
        bytes_field(&mut d, 14, &m);
        varint_field(&mut d, 15, 1);
        out.extend_from_slice(&(d.len() as u32).to_be_bytes());
        out.extend_from_slice(&d);
    }
}

fn generate() -> Vec<u8> {
    let ct = b"protobuf:dnstap.Dnstap";
    let mut s = vec![
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        12 + ct.len() as u8,
        0,
        0,
        0,
        2,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        ct.len() as u8,
    ];
    s.extend_from_slice(ct);
    let mut rng = Rng(15);
    for i in 0..PAIRS {
        message(&mut rng, i, &mut s);
    }
    s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    s
}

fn bench_key() -> Key<32> {
    Key::new(*b"ipwash bench key, not a secret!!")
}

fn cryptopan() -> Washer {
    let mut w = Washer::new(Technique::Stateless(Arc::new(CryptoPan::new(&bench_key()))));
    w.info.name = "cryptopan".into();
    w
}

fn truncate() -> Washer {
    let t = Truncate::default();
    let mut w = Washer::new(Technique::Stateless(Arc::new(t)));
    w.info.name = "truncate".into();
    w.info.truncate = Some(t.prefixes());
    w
}

type Make = fn() -> Washer;
const METHODS: [(&str, Make); 2] = [("cryptopan", cryptopan), ("truncate", truncate)];

fn wash_once(input: &[u8], w: &mut Washer, out: &mut Vec<u8>) -> DnstapStats {
    out.clear();
    let mut st = DnstapStats::default();
    wash_dnstap(input, out, w, &DnstapOptions::default(), &mut st).expect("wash");
    st
}

fn benches(c: &mut Criterion) {
    let input = generate();
    let mut out = Vec::with_capacity(input.len());
    let st = wash_once(&input, &mut cryptopan(), &mut out);
    let msgs = (2 * PAIRS) as u64;
    assert_eq!(st.messages, msgs);
    assert_eq!(st.written, msgs);
    assert_eq!(st.rewritten, msgs);
    eprintln!(
        "dnstap bench input: {} bytes, {} messages, {:.1} bytes/message, {} ECS rewritten",
        input.len(),
        msgs,
        input.len() as f64 / msgs as f64,
        st.ecs_rewritten
    );
    for (group, tp) in [
        ("bytes", Throughput::Bytes(input.len() as u64)),
        ("messages", Throughput::Elements(msgs)),
    ] {
        let mut g = c.benchmark_group(format!("dnstap_{group}"));
        g.sample_size(10);
        g.measurement_time(std::time::Duration::from_secs(4));
        g.warm_up_time(std::time::Duration::from_secs(1));
        g.throughput(tp);
        for (method, make) in METHODS {
            let mut w = make();
            g.bench_function(method, |b| b.iter(|| wash_once(&input, &mut w, &mut out)));
        }
        g.finish();
    }
}

criterion_group!(dnstap, benches);
criterion_main!(dnstap);
