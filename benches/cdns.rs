//! Criterion benchmark of C-DNS (RFC 8618) washing throughput.
//!
//! What is measured: one call of [`wash_cdns`] over a whole uncompressed
//! C-DNS file held in memory, writing into a pre-allocated in-memory
//! buffer, with a washer built once outside the timed loop. Throughput is
//! the input size in bytes per iteration (criterion prints it in binary
//! units, MiB/s). Methods: `cryptopan` (a fixed, public bench key) and
//! `truncate` (IPv4 /24, IPv6 /48, prefix storage marked in the output).
//! Options are those of real use: output marked, collection info dropped.
//!
//! Inputs:
//! - `generated`: a C-DNS 1.0 file built in this file, outside the timed
//!   loop, from a fixed seed (about 4.4 MB; the exact size is printed). It
//!   has [`BLOCKS`] blocks of [`ITEMS`] query/response items each, shaped
//!   like compactor output (indefinite-length maps, definite arrays). Per
//!   block: an `ip-address` table of about 2,000 entries (two server
//!   addresses plus the distinct clients of the block, drawn with Zipf
//!   popularity (exponent 1) from a population of [`POPULATION`]
//!   addresses, about a third of them IPv6), a `classtype` table, a `name-rdata` table of three OPT
//!   RDATA values (empty, a cookie, an ECS /24) and a few hundred query
//!   names, a `qr-sig` table built from the signatures the items use
//!   (server, transport, query type, rcodes, EDNS), query/response items
//!   with time offset, client address index, client port, transaction id,
//!   signature index, hop limit, response delay, query name index and
//!   sizes, a few address-event counts, a block preamble with
//!   `earliest-time` and block statistics. Before timing, the file is
//!   checked once: a `cryptopan` wash must accept it and rewrite addresses
//!   without splitting or blanking any entry, and an identity wash with
//!   unmarked output must reproduce it byte for byte.
//! - `corpus`: with `IPWASH_CORPUS` set, also the real sample
//!   `$IPWASH_CORPUS/cdns/cdnsrdr-testdata/cdns_test_file.cdns` (a missing
//!   file is a failure); the group is skipped when the variable is unset.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipwash::cdns::{wash_cdns, CdnsOptions, CdnsStats};
use ipwash::wash::{Identity, Technique, Washer};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::truncate::Truncate;
use ipwash_algorithms::Key;

/// Blocks in the generated file.
const BLOCKS: usize = 20;
/// Query/response items per block.
const ITEMS: usize = 5_000;
/// Distinct client addresses the blocks draw from.
const POPULATION: usize = 40_000;
/// Zipf exponent of client popularity (1.0 gives about 2,000 distinct
/// clients in a block of 5,000 items).
const ZIPF: f64 = 1.0;
/// Query names per block.
const NAMES: usize = 300;
/// OPT RDATA entries at the start of each `name-rdata` table.
const OPTS: usize = 3;
/// Ticks per second (microseconds, as the compactor writes).
const TICKS: u64 = 1_000_000;

// ------------------------------------------------------------------ random

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

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Skewed index in `0..n`: small indexes are much more likely.
    fn skewed(&mut self, n: usize, k: f64) -> usize {
        ((n as f64 * self.unit().powf(k)) as usize).min(n - 1)
    }
}

// -------------------------------------------------------------------- CBOR

/// A minimal CBOR writer for the generator.
struct Enc(Vec<u8>);

impl Enc {
    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => self.0.push(m | n as u8),
            24..=0xff => self.0.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                self.0.push(m | 25);
                self.0.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.0.push(m | 26);
                self.0.extend((n as u32).to_be_bytes());
            }
            _ => {
                self.0.push(m | 27);
                self.0.extend(n.to_be_bytes());
            }
        }
    }
    fn uint(&mut self, n: u64) {
        self.head(0, n);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn text(&mut self, t: &str) {
        self.head(3, t.len() as u64);
        self.0.extend_from_slice(t.as_bytes());
    }
    fn array(&mut self, n: usize) {
        self.head(4, n as u64);
    }
    fn map(&mut self, n: usize) {
        self.head(5, n as u64);
    }
    /// Start an indefinite-length map (closed by [`Enc::end`]).
    fn map_indef(&mut self) {
        self.0.push(0xbf);
    }
    fn begin_indef_array(&mut self) {
        self.0.push(0x9f);
    }
    fn end(&mut self) {
        self.0.push(0xff);
    }
    /// A map entry with an unsigned value.
    fn kv(&mut self, k: u64, v: u64) {
        self.uint(k);
        self.uint(v);
    }
}

// --------------------------------------------------------------- generator

/// Cumulative Zipf weights over `n` ranks.
fn zipf_table(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|r| {
            acc += 1.0 / (r as f64).powf(ZIPF);
            acc
        })
        .collect()
}

/// A rank drawn from the table of [`zipf_table`].
fn zipf_rank(rng: &mut Rng, cum: &[f64]) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let x = rng.unit() * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

/// One client of the population.
#[derive(Clone, Copy)]
enum Client {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Client {
    fn v6(self) -> bool {
        matches!(self, Client::V6(_))
    }
    fn octets(self, buf: &mut [u8; 16]) -> &[u8] {
        match self {
            Client::V4(a) => {
                buf[..4].copy_from_slice(&a.octets());
                &buf[..4]
            }
            Client::V6(a) => {
                *buf = a.octets();
                &buf[..]
            }
        }
    }
}

/// The client population: IPv4 clients clustered in a few hundred /24s of
/// a few /8s, IPv6 clients in a few hundred /48s (mostly one /64 each).
fn population(rng: &mut Rng) -> Vec<Client> {
    const V4_NETS: [u8; 6] = [24, 62, 81, 100, 151, 203];
    (0..POPULATION)
        .map(|_| {
            if rng.chance(0.3) {
                let site = rng.below(400) as u128;
                let sub = rng.below(4) as u128;
                let net = (0x2001_0db8_u128 << 96) | (site << 80) | (sub << 64);
                let host = if rng.chance(0.5) {
                    rng.below(256) as u128
                } else {
                    u128::from(rng.next())
                };
                Client::V6(Ipv6Addr::from(net | host))
            } else {
                let a = V4_NETS[rng.below(V4_NETS.len() as u64) as usize];
                let b = rng.below(32) as u8;
                let c = rng.below(16) as u8;
                Client::V4(Ipv4Addr::new(a, b, c, rng.below(254) as u8 + 1))
            }
        })
        .collect()
}

/// A random lowercase label of 3 to 12 letters, in wire form.
fn label(rng: &mut Rng, out: &mut Vec<u8>) {
    let n = 3 + rng.below(10) as u8;
    out.push(n);
    for _ in 0..n {
        out.push(b'a' + rng.below(26) as u8);
    }
}

/// A query name in wire form: one to three labels under a common TLD.
fn qname(rng: &mut Rng) -> Vec<u8> {
    const TLDS: [&[u8]; 5] = [b"\x03com", b"\x03net", b"\x03org", b"\x02nl", b"\x02de"];
    let mut n = Vec::with_capacity(40);
    if rng.chance(0.4) {
        n.extend_from_slice(b"\x03www");
    }
    for _ in 0..1 + rng.below(2) {
        label(rng, &mut n);
    }
    n.extend_from_slice(TLDS[rng.below(TLDS.len() as u64) as usize]);
    n.push(0);
    n
}

/// Query signature fields chosen per item; deduplicated into `qr-sig`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Sig {
    v6: bool,
    tcp: bool,
    classtype: u8,
    rcode: u8,
    /// Index into the OPT RDATA entries of `name-rdata`, if EDNS.
    opt: Option<u8>,
}

/// (type, class) pairs of the `classtype` table with their weights.
const CLASSTYPES: [(u64, u64, u32); 9] = [
    (1, 1, 45),  // A
    (28, 1, 25), // AAAA
    (65, 1, 8),  // HTTPS
    (12, 1, 6),  // PTR
    (15, 1, 4),  // MX
    (16, 1, 4),  // TXT
    (2, 1, 3),   // NS
    (43, 1, 3),  // DS
    (6, 1, 2),   // SOA
];

fn pick_classtype(rng: &mut Rng) -> u8 {
    let total: u32 = CLASSTYPES.iter().map(|c| c.2).sum();
    let mut r = rng.below(u64::from(total)) as u32;
    for (i, c) in CLASSTYPES.iter().enumerate() {
        if r < c.2 {
            return i as u8;
        }
        r -= c.2;
    }
    0
}

fn write_preamble(e: &mut Enc) {
    e.map(3);
    e.kv(0, 1); // major-format-version
    e.kv(1, 0); // minor-format-version
    e.uint(3); // block-parameters
    e.array(1);
    e.map(2);
    e.uint(0); // storage-parameters
    e.map_indef();
    e.kv(0, TICKS);
    e.kv(1, ITEMS as u64);
    e.uint(2); // storage-hints
    e.map(4);
    e.kv(0, 0x3_ffff);
    e.kv(1, 0x1_ffff);
    e.kv(2, 3);
    e.kv(3, 3);
    e.uint(3); // opcodes
    e.array(6);
    for op in [0, 1, 2, 4, 5, 6] {
        e.uint(op);
    }
    e.uint(4); // rr-types
    e.array(CLASSTYPES.len() + 1);
    for c in CLASSTYPES {
        e.uint(c.0);
    }
    e.uint(41);
    e.end();
    e.uint(1); // collection-parameters
    e.map_indef();
    e.kv(0, 5_000); // query-timeout
    e.kv(1, 10); // skew-timeout
    e.kv(2, 65_535); // snaplen
    e.uint(4); // interfaces
    e.array(1);
    e.text("eth0");
    e.uint(5); // server-addresses
    e.array(2);
    e.bytes(&[192, 0, 2, 53]);
    e.bytes(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53).octets());
    e.uint(7);
    e.text("port 53");
    e.uint(8);
    e.text("ipwash bench generator");
    e.uint(9);
    e.text("ns1.example");
    e.end();
}

/// Write one block; appends to `e`.
fn write_block(e: &mut Enc, rng: &mut Rng, pop: &[Client], zipf: &[f64], block: usize) {
    // Items first (as a collector sees them), then the tables they need.
    struct Item {
        offset: u64,
        client: u32,
        port: u16,
        id: u16,
        sig: u32,
        hop: u8,
        delay: u32,
        name: u16,
        qsize: u16,
        rsize: u16,
    }
    let mut addr_index: HashMap<usize, u32> = HashMap::new();
    // Table: 0 = server v4, 1 = server v6, then clients in order of use.
    let mut addrs: Vec<Client> = vec![
        Client::V4(Ipv4Addr::new(192, 0, 2, 53)),
        Client::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53)),
    ];
    let mut sig_index: HashMap<Sig, u32> = HashMap::new();
    let mut sigs: Vec<Sig> = Vec::new();
    let mut items = Vec::with_capacity(ITEMS);
    let mut offset = 0u64;
    for _ in 0..ITEMS {
        offset += rng.below(40);
        let rank = zipf_rank(rng, zipf);
        let c = pop[rank];
        let client = *addr_index.entry(rank).or_insert_with(|| {
            addrs.push(c);
            (addrs.len() - 1) as u32
        });
        let tcp = rng.chance(0.05);
        let rcode = if rng.chance(0.8) {
            0
        } else if rng.chance(0.85) {
            3
        } else {
            2
        };
        let opt = if rng.chance(0.25) {
            None
        } else if rng.chance(0.02) {
            Some(2) // ECS
        } else if rng.chance(0.5) {
            Some(1) // cookie
        } else {
            Some(0) // empty
        };
        let s = Sig {
            v6: c.v6(),
            tcp,
            classtype: pick_classtype(rng),
            rcode,
            opt,
        };
        let sig = *sig_index.entry(s).or_insert_with(|| {
            sigs.push(s);
            (sigs.len() - 1) as u32
        });
        // Mostly cache hits; a tail of slow recursions.
        let delay_range = if rng.chance(0.9) { 2_000 } else { 200_000 };
        items.push(Item {
            offset,
            client,
            port: 1024 + rng.below(64_512) as u16,
            id: rng.below(65_536) as u16,
            sig,
            hop: if rng.chance(0.7) { 57 } else { 119 },
            delay: 50 + rng.below(delay_range) as u32,
            name: OPTS as u16 + rng.skewed(NAMES, 2.0) as u16,
            qsize: 28 + rng.below(60) as u16,
            rsize: 40 + rng.below(460) as u16,
        });
    }

    e.map_indef();
    // block-preamble: earliest-time.
    e.uint(0);
    e.map(1);
    e.uint(0);
    e.array(2);
    e.uint(1_700_000_000 + block as u64);
    e.uint(rng.below(TICKS));
    // block-statistics.
    e.uint(1);
    e.map_indef();
    e.kv(0, ITEMS as u64 * 2 + 17);
    e.kv(1, ITEMS as u64);
    e.kv(2, 9);
    e.kv(3, 8);
    e.kv(5, 0);
    e.end();
    // block-tables.
    e.uint(2);
    e.map_indef();
    e.uint(0); // ip-address
    e.array(addrs.len());
    let mut buf = [0u8; 16];
    for a in &addrs {
        e.bytes(a.octets(&mut buf));
    }
    e.uint(1); // classtype
    e.array(CLASSTYPES.len());
    for c in CLASSTYPES {
        e.map_indef();
        e.kv(0, c.0);
        e.kv(1, c.1);
        e.end();
    }
    e.uint(2); // name-rdata
    e.array(OPTS + NAMES);
    e.bytes(&[]);
    e.bytes(&[0, 10, 0, 8, 0x5c, 0x1a, 0x77, 0x03, 0xe8, 0x91, 0x2d, 0x40]);
    e.bytes(&[0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100]);
    for _ in 0..NAMES {
        e.bytes(&qname(rng));
    }
    e.uint(3); // qr-sig
    e.array(sigs.len());
    for s in &sigs {
        e.map_indef();
        e.kv(0, u64::from(s.v6)); // server-address-index
        e.kv(1, 53); // server-port
        e.kv(2, (u64::from(s.tcp) << 1) | u64::from(s.v6)); // qr-transport-flags
        e.kv(3, 0); // qr-type: stub
        let opt_flags = if s.opt.is_some() { 0x04 | 0x08 } else { 0 };
        e.kv(4, 0x03 | opt_flags); // qr-sig-flags
        e.kv(5, 0); // query-opcode
        e.kv(6, 0x0100 | 0x80); // qr-dns-flags: RD, RA
        e.kv(7, 0); // query-rcode
        e.kv(8, u64::from(s.classtype));
        e.kv(9, 1); // query-qdcount
        e.kv(10, 0);
        e.kv(11, 0);
        e.kv(12, u64::from(s.opt.is_some()));
        if let Some(o) = s.opt {
            e.kv(13, 0); // query-edns-version
            e.kv(14, 1_232); // query-udp-size
            e.kv(15, u64::from(o)); // query-opt-rdata-index
        }
        e.kv(16, u64::from(s.rcode)); // response-rcode
        e.end();
    }
    e.end();
    // query-responses.
    e.uint(3);
    e.array(items.len());
    for it in &items {
        e.map_indef();
        e.kv(0, it.offset);
        e.kv(1, u64::from(it.client));
        e.kv(2, u64::from(it.port));
        e.kv(3, u64::from(it.id));
        e.kv(4, u64::from(it.sig));
        e.kv(5, u64::from(it.hop));
        e.kv(6, u64::from(it.delay));
        e.kv(7, u64::from(it.name));
        e.kv(8, u64::from(it.qsize));
        e.kv(9, u64::from(it.rsize));
        e.end();
    }
    // address-event-counts: ICMP port unreachable from a few clients.
    let events: Vec<u32> = (0..4)
        .map(|_| 2 + rng.below((addrs.len() - 2) as u64) as u32)
        .collect();
    e.uint(4);
    e.array(events.len());
    for &i in &events {
        e.map_indef();
        e.kv(0, 2); // ae-type: icmp-dest-unreachable
        e.kv(1, 3); // ae-code: port unreachable
        e.kv(2, u64::from(i)); // ae-address-index
        e.kv(3, u64::from(addrs[i as usize].v6())); // ae-transport-flags
        e.kv(4, 1 + rng.below(5)); // ae-count
        e.end();
    }
    e.end();
}

/// The generated C-DNS file (deterministic).
fn generate() -> Vec<u8> {
    let mut rng = Rng(0x1b_5e_ed);
    let pop = population(&mut rng);
    let zipf = zipf_table(pop.len());
    let mut e = Enc(Vec::with_capacity(6 << 20));
    e.array(3);
    e.text("C-DNS");
    write_preamble(&mut e);
    e.begin_indef_array();
    for b in 0..BLOCKS {
        write_block(&mut e, &mut rng, &pop, &zipf, b);
    }
    e.end();
    e.0
}

// ------------------------------------------------------------------ washers

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

fn wash(input: &[u8], out: &mut Vec<u8>, w: &mut Washer, opts: &CdnsOptions) -> CdnsStats {
    out.clear();
    match wash_cdns(input, &mut *out, w, opts) {
        Ok(st) => st,
        Err(e) => panic!("C-DNS wash failed: {e}"),
    }
}

/// Check the generated file once, before anything is timed.
fn check_generated(f: &[u8]) {
    let mut out = Vec::with_capacity(f.len() + 4096);
    let st = wash(f, &mut out, &mut cryptopan(), &CdnsOptions::default());
    assert_eq!(st.blocks, BLOCKS as u64, "blocks");
    assert_eq!(st.records, (BLOCKS * ITEMS) as u64, "Q/R items");
    assert!(st.rewritten > 0, "no address rewritten");
    assert_eq!(st.split_entries, 0, "an entry needed two treatments");
    assert_eq!(st.blanked, 0, "something was blanked");
    assert!(st.ecs_rewritten > 0, "no ECS rewritten");
    assert_ne!(out, f, "cryptopan changed nothing");
    eprintln!(
        "cdns bench: generated {} bytes, {} blocks, {} Q/R items, {} addresses ({} rewritten)",
        f.len(),
        st.blocks,
        st.records,
        st.addresses,
        st.rewritten
    );
    let copy = CdnsOptions {
        mark_output: false,
        keep_collection_info: true,
    };
    let mut id = Washer::new(Technique::Stateless(Arc::new(Identity)));
    wash(f, &mut out, &mut id, &copy);
    assert!(
        out == f,
        "identity wash does not reproduce the generated file"
    );
}

type Make = fn() -> Washer;
const METHODS: [(&str, Make); 2] = [("cryptopan", cryptopan), ("truncate", truncate)];

fn run_group(c: &mut Criterion, name: &str, input: &[u8]) {
    let opts = CdnsOptions::default();
    let mut out = Vec::with_capacity(input.len() + (64 << 10));
    let mut g = c.benchmark_group(format!("cdns/{name}"));
    g.sample_size(10);
    g.throughput(Throughput::Bytes(input.len() as u64));
    for (method, make) in METHODS {
        let mut w = make();
        let st = wash(input, &mut out, &mut w, &opts);
        assert!(st.blocks > 0, "{name}: no block");
        g.bench_function(method, |b| {
            b.iter(|| wash(input, &mut out, &mut w, &opts));
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let f = generate();
    check_generated(&f);
    run_group(c, "generated", &f);

    match std::env::var_os("IPWASH_CORPUS") {
        None => eprintln!("IPWASH_CORPUS not set: skipping the corpus C-DNS bench"),
        Some(dir) => {
            let p = std::path::Path::new(&dir).join("cdns/cdnsrdr-testdata/cdns_test_file.cdns");
            let real = match std::fs::read(&p) {
                Ok(b) => b,
                Err(e) => panic!("{}: {e}", p.display()),
            };
            eprintln!("cdns bench: corpus file {} bytes", real.len());
            run_group(c, "corpus", &real);
        }
    }
}

criterion_group!(cdns, benches);
criterion_main!(cdns);
