//! Bloom filter sink: behaviour through the public API.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipwash::bloom::{
    self, question::parse_question, BloomError, BuildParams, Builder, Entities, Presence,
};
use ipwash_algorithms::Key;

fn key(b: u8) -> Key<32> {
    Key::new([b; 32])
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn label(&mut self) -> String {
        let len = 1 + self.next() % 12;
        (0..len)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
    fn name(&mut self) -> String {
        let n = 1 + self.next() % 4;
        let mut labels: Vec<String> = (0..n).map(|_| self.label()).collect();
        labels.push(["com", "net", "nl", "org"][(self.next() % 4) as usize].into());
        labels.join(".")
    }
}

const ENTITIES: &str = "10.0.0.0/8\tisp\n10.1.0.0/16\tcampus\n2001:db8::/32\tlab\n";

fn params(expected_items: u64, fp_rate: f64, min_clients: u32) -> BuildParams {
    BuildParams {
        period: 3600,
        fp_rate,
        expected_items,
        min_clients,
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn client(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))
}

/// Every item a query name implies, per the item rules (version 1).
fn items_of(name: &str) -> Vec<String> {
    let labels: Vec<&str> = name.split('.').collect();
    let mut v = vec![name.to_string()];
    v.extend(labels[..labels.len() - 1].iter().map(|s| s.to_string()));
    if labels.len() >= 2 {
        v.push(labels[labels.len() - 2..].join("."));
    }
    v
}

#[test]
fn no_false_negatives_for_generated_queries() {
    let dir = tempfile::tempdir().unwrap();
    let entities = Entities::parse(ENTITIES).unwrap();
    let mut b = Builder::new(&key(1), params(200_000, 1e-4, 10), entities).unwrap();
    let mut rng = Rng(1);
    let mut names = Vec::new();
    for i in 0..5_000u32 {
        let mut n = rng.name();
        if i % 3 == 0 {
            n = n.to_uppercase() + ".";
        }
        // Three periods; clients cycle through 20 campus addresses.
        b.add_query(7_200 + u64::from(i % 3) * 3600 + 17, client(i % 20), &n);
        names.push(n);
    }
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(report.files.len(), 3);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let files = files_in(dir.path());
    // Per period: every name as given and every item it implies is present
    // in the period it was added to, with and without its entity.
    for period in 0..3u64 {
        let mut wanted = BTreeSet::new();
        for (i, n) in names.iter().enumerate() {
            if i as u64 % 3 == period {
                wanted.insert(n.clone());
                wanted.extend(items_of(n.to_lowercase().trim_end_matches('.')));
            }
        }
        let wanted: Vec<String> = wanted.into_iter().collect();
        let start = 7_200 + period * 3600;
        let f = dir.path().join(bloom::file_name(start));
        for entity in [None, Some("campus")] {
            let a = bloom::query(&key(1), std::slice::from_ref(&f), &wanted, entity).unwrap();
            assert_eq!(a.len(), wanted.len());
            for (a, n) in a.iter().zip(&wanted) {
                assert_eq!(a.result, Presence::Present, "{n} {entity:?}");
                assert_eq!(a.period_start, start);
                assert_eq!(&a.name, n);
            }
        }
    }
    // The entity prefix is part of the item: another entity had no clients
    // here, so it is withheld, never a leak.
    let a = bloom::query(&key(1), &files, &names[..1], Some("isp")).unwrap();
    assert!(a.iter().all(|a| a.result == Presence::Withheld));
}

fn measure_fp(fp_rate: f64) {
    let dir = tempfile::tempdir().unwrap();
    let expected = 100_000u64;
    let mut b = Builder::new(&key(2), params(expected, fp_rate, 1), Entities::empty()).unwrap();
    // A one-label name makes two items: itself and UNKNOWN@itself.
    for i in 0..expected / 2 {
        b.add_query(0, client(0), &format!("in{i}"));
    }
    let report = b.finish(dir.path()).unwrap();
    assert!(report.warnings.is_empty());
    let files = files_in(dir.path());
    let probes: Vec<String> = (0..200_000).map(|i| format!("out{i}")).collect();
    let answers = bloom::query(&key(2), &files, &probes, None).unwrap();
    let fps = answers
        .iter()
        .filter(|a| a.result == Presence::Present)
        .count();
    let rate = fps as f64 / probes.len() as f64;
    eprintln!(
        "target {fp_rate}: {fps} false positives in {} probes",
        probes.len()
    );
    assert!(
        rate <= 2.0 * fp_rate,
        "measured {rate} over {} probes, target {fp_rate}",
        probes.len()
    );
    let info = bloom::info(&files[0]).unwrap();
    assert!(info.estimated_fp_rate <= 2.0 * fp_rate, "{info:?}");
    assert!(!info.saturated);
}

#[test]
fn measured_false_positive_rate_within_twice_target() {
    measure_fp(1e-2);
    measure_fp(1e-3);
}

#[test]
fn saturation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(2), params(100, 1e-3, 1), Entities::empty()).unwrap();
    for i in 0..2_000 {
        b.add_query(0, client(0), &format!("n{i}.example"));
    }
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(report.warnings.len(), 1);
    let text = report.warnings[0].to_string();
    assert!(text.contains("false-positive"), "{text}");
    assert!(bloom::info(&report.files[0].path).unwrap().saturated);
}

#[test]
fn wrong_key_is_an_error_not_absent() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(3), params(1000, 1e-4, 1), Entities::empty()).unwrap();
    b.add_query(100, client(1), "example.com");
    b.finish(dir.path()).unwrap();
    let files = files_in(dir.path());
    let names = ["example.com".to_string()];
    let ok = bloom::query(&key(3), &files, &names, None).unwrap();
    assert_eq!(ok[0].result, Presence::Present);
    match bloom::query(&key(4), &files, &names, None) {
        Err(BloomError::KeyMismatch { path }) => assert_eq!(path, files[0]),
        other => panic!("{other:?}"),
    }
    // The fingerprint in the file is the documented one for the key.
    let info = bloom::info(&files[0]).unwrap();
    assert_eq!(info.key_fingerprint, bloom::key_fingerprint(&key(3)));
    assert_ne!(info.key_fingerprint, bloom::key_fingerprint(&key(4)));
    // No key byte pattern in the file: the seed is not stored.
    let raw = std::fs::read(&files[0]).unwrap();
    assert!(!raw.windows(8).any(|w| w == [3u8; 8]));
}

#[test]
fn k_anonymity_floor() {
    let dir = tempfile::tempdir().unwrap();
    let entities = Entities::parse("10.1.0.0/16\tnine\n10.2.0.0/16\tten\n").unwrap();
    let mut b = Builder::new(&key(5), params(10_000, 1e-4, 10), entities).unwrap();
    for c in 0..9u32 {
        // Several queries per client: clients, not queries, are counted.
        for _ in 0..3 {
            b.add_query(0, IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + c)), "a.example");
        }
    }
    for c in 0..10u32 {
        b.add_query(0, IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + c)), "b.example");
    }
    b.finish(dir.path()).unwrap();
    let files = files_in(dir.path());
    let names = vec!["a.example".to_string(), "b.example".to_string()];
    let nine = bloom::query(&key(5), &files, &names, Some("nine")).unwrap();
    assert!(
        nine.iter().all(|a| a.result == Presence::Withheld),
        "{nine:?}"
    );
    let ten = bloom::query(&key(5), &files, &names, Some("ten")).unwrap();
    assert_eq!(ten[0].result, Presence::Absent);
    assert_eq!(ten[1].result, Presence::Present);
    // 19 clients overall: whole-period answers are given.
    let all = bloom::query(&key(5), &files, &names, None).unwrap();
    assert!(all.iter().all(|a| a.result == Presence::Present));
    // An entity that never appeared has 0 clients.
    let none = bloom::query(&key(5), &files, &names, Some("other")).unwrap();
    assert!(none.iter().all(|a| a.result == Presence::Withheld));
    let info = bloom::info(&files[0]).unwrap();
    let counts: Vec<(String, u64, bool)> = info
        .entities
        .iter()
        .map(|e| (e.name.clone(), e.clients, e.exact))
        .collect();
    assert_eq!(
        counts,
        [("nine".to_string(), 9, true), ("ten".to_string(), 10, true)]
    );
    assert_eq!((info.clients, info.clients_exact), (19, true));
    assert_eq!(info.min_clients, 10);

    // The floor also applies to whole-period answers.
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(5), params(10_000, 1e-4, 10), Entities::empty()).unwrap();
    b.add_query(0, client(1), "a.example");
    b.finish(dir.path()).unwrap();
    let a = bloom::query(&key(5), &files_in(dir.path()), &names[..1], None).unwrap();
    assert_eq!(a[0].result, Presence::Withheld);
}

#[test]
fn query_answers_serialise_to_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(6), params(1000, 1e-4, 1), Entities::empty()).unwrap();
    b.add_query(1_795_330_800 + 5, client(1), "Example.COM.");
    b.finish(dir.path()).unwrap();
    let files = files_in(dir.path());
    assert_eq!(files[0].file_name().unwrap(), "20261122T070000Z.bloom");
    let a = bloom::query(
        &key(6),
        &files,
        &["example.com".into(), "nope.com".into()],
        None,
    )
    .unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"name": "example.com", "period_start": "2026-11-22T07:00:00Z", "entity": null, "result": "present", "saturated": false},
            {"name": "nope.com", "period_start": "2026-11-22T07:00:00Z", "entity": null, "result": "absent", "saturated": false},
        ])
    );
    let a = bloom::query(&key(6), &files, &["example.com".into()], Some("UNKNOWN")).unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json[0]["entity"], "UNKNOWN");
    assert_eq!(json[0]["result"], "present");
}

fn build_hours(k: &Key<32>, p: BuildParams, dir: &Path, hours: &[(u64, &str)]) -> Vec<PathBuf> {
    let mut b = Builder::new(k, p, Entities::parse(ENTITIES).unwrap()).unwrap();
    for &(h, name) in hours {
        for c in 0..12 {
            b.add_query(h * 3600 + 10, client(c), name);
        }
    }
    b.finish(dir)
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[test]
fn merge_is_the_union_and_refuses_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(10_000, 1e-4, 10);
    let hours: Vec<(u64, String)> = (0..24).map(|h| (h, format!("h{h}.example"))).collect();
    let refs: Vec<(u64, &str)> = hours.iter().map(|(h, n)| (*h, n.as_str())).collect();
    let files = build_hours(&key(7), p, dir.path(), &refs);
    assert_eq!(files.len(), 24);
    let out = dir.path().join("day.bloom");
    bloom::merge(&files, &out).unwrap();
    let names: Vec<String> = hours.iter().map(|(_, n)| n.clone()).collect();
    let merged = bloom::query(&key(7), std::slice::from_ref(&out), &names, Some("campus")).unwrap();
    assert!(merged.iter().all(|a| a.result == Presence::Present));
    // The union answers "present" exactly where some part does.
    let probe: Vec<String> = (0..2_000).map(|i| format!("x{i}.example")).collect();
    let parts = bloom::query(&key(7), &files, &probe, None).unwrap();
    let whole = bloom::query(&key(7), std::slice::from_ref(&out), &probe, None).unwrap();
    for (i, w) in whole.iter().enumerate() {
        let any = parts
            .iter()
            .skip(i)
            .step_by(probe.len())
            .any(|a| a.result == Presence::Present);
        // OR of bitmaps can only add false positives, never lose a part's.
        if any {
            assert_eq!(w.result, Presence::Present);
        }
    }
    let info = bloom::info(&out).unwrap();
    assert_eq!(info.period_start_unix, 0);
    assert_eq!(info.period_length, 24 * 3600);
    assert_eq!(info.queries, 24 * 12);
    // Same 12 clients every hour: the sketch union says 12, not 288.
    assert_eq!(info.clients, 12);
    assert!(!info.clients_exact);

    // Different sizing: refused.
    let other = tempfile::tempdir().unwrap();
    let f2 = build_hours(
        &key(7),
        params(20_000, 1e-4, 10),
        other.path(),
        &[(30, "z.example")],
    );
    let err =
        bloom::merge(&[files[0].clone(), f2[0].clone()], &dir.path().join("bad")).unwrap_err();
    assert!(matches!(err, BloomError::Incompatible { .. }), "{err:?}");
    // Different key: refused.
    let other = tempfile::tempdir().unwrap();
    let f3 = build_hours(&key(8), p, other.path(), &[(30, "z.example")]);
    match bloom::merge(&[files[0].clone(), f3[0].clone()], &dir.path().join("bad")) {
        Err(BloomError::Incompatible { what, .. }) => assert_eq!(what, "key fingerprint"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("bad").exists());
    assert!(matches!(
        bloom::merge(&[], &dir.path().join("bad")),
        Err(BloomError::NoInputs)
    ));
}

#[test]
fn file_round_trip_and_info_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(5_000, 1e-3, 3);
    let mut b = Builder::new(&key(9), p, Entities::parse(ENTITIES).unwrap()).unwrap();
    b.add_query(3_600 * 5 + 1, client(1), "www.example.com");
    b.add_query(3_600 * 5 + 2, client(2), "www.example.com");
    b.add_query(
        3_600 * 5 + 3,
        "2001:db8::1".parse().unwrap(),
        "mail.example.org",
    );
    b.add_query(3_600 * 5 + 4, "192.0.2.1".parse().unwrap(), "x.nl");
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(report.files.len(), 1);
    let w = &report.files[0];
    assert_eq!(w.queries, 4);
    assert_eq!(w.clients, 4);
    // www.example.com: 4 items; mail.example.org: 4; x.nl: 2; each twice.
    assert_eq!(w.items, 2 * (4 + 4 + 4 + 2));
    let info = bloom::info(&w.path).unwrap();
    assert_eq!(info.format_version, bloom::FORMAT_VERSION);
    assert_eq!(info.item_rules, bloom::ITEM_RULES);
    assert_eq!(info.period_start, "1970-01-01T05:00:00Z");
    assert_eq!(info.period_length, 3600);
    assert_eq!(
        info.m,
        8 * bloomfilter::Bloom::<str>::compute_bitmap_size(5_000, 1e-3) as u64
    );
    assert_eq!(info.k, 10);
    assert_eq!(info.fp_target, 1e-3);
    assert_eq!(info.expected_items, 5_000);
    assert_eq!(info.min_clients, 3);
    assert_eq!(info.queries, 4);
    assert_eq!(info.items_inserted, w.items);
    assert_eq!(info.fill_ratio, w.fill_ratio);
    assert!(info.fill_ratio > 0.0 && info.fill_ratio < 0.01);
    // Distinct items: 9 without entity prefix ("example" twice), 10 with.
    assert!((info.estimated_items - 19.0).abs() < 1.5, "{info:?}");
    let names: Vec<(&str, u64)> = info
        .entities
        .iter()
        .map(|e| (e.name.as_str(), e.clients))
        .collect();
    assert_eq!(names, [("UNKNOWN", 1), ("campus", 2), ("lab", 1)]);
    serde_json::to_string(&info).unwrap();

    // Parse and re-serialise (a merge of one file) is byte-identical.
    let copy = dir.path().join("copy.bloom");
    bloom::merge(std::slice::from_ref(&w.path), &copy).unwrap();
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&w.path).unwrap()
    );

    // Damaged files are errors, with an offset.
    let mut raw = std::fs::read(&w.path).unwrap();
    let n = raw.len();
    raw[n / 2] ^= 1;
    std::fs::write(&copy, &raw).unwrap();
    assert!(matches!(bloom::info(&copy), Err(BloomError::Format { .. })));
    std::fs::write(&copy, &raw[..10]).unwrap();
    assert!(bloom::info(&copy).is_err());
    std::fs::write(&copy, b"").unwrap();
    assert!(bloom::info(&copy).is_err());
    assert!(matches!(
        bloom::info(&dir.path().join("missing")),
        Err(BloomError::Io { .. })
    ));
}

#[test]
fn flush_keeps_memory_bounded_and_late_input_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(10), params(1000, 1e-4, 1), Entities::empty()).unwrap();
    for h in 0..10u64 {
        b.add_query(h * 3600 + 5, client(1), &format!("h{h}.example"));
        b.flush_stale(dir.path()).unwrap();
        assert!(b.open_periods() <= 2);
    }
    // Late query for hour 0, already written.
    b.add_query(5, client(2), "late.example");
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(report.files.len(), 10);
    assert_eq!(report.files[0].queries, 2);
    let f = dir.path().join(bloom::file_name(0));
    let a = bloom::query(
        &key(10),
        &[f],
        &[
            "h0.example".into(),
            "late.example".into(),
            "h1.example".into(),
        ],
        None,
    )
    .unwrap();
    let r: Vec<Presence> = a.iter().map(|a| a.result).collect();
    assert_eq!(r, [Presence::Present, Presence::Present, Presence::Absent]);
}

fn dns_msg(flags: u16, qname: &str, qclass: u16) -> Vec<u8> {
    let mut m = vec![0, 1];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for l in qname.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&qclass.to_be_bytes());
    m
}

#[test]
fn add_message_filters_queries() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(11), params(1000, 1e-4, 1), Entities::empty()).unwrap();
    assert!(b.add_message(0, client(1), &dns_msg(0x0100, "Query.Example", 1)));
    assert!(!b.add_message(0, client(1), &dns_msg(0x8180, "response.example", 1)));
    assert!(!b.add_message(0, client(1), &dns_msg(0x0100, "chaos.example", 3)));
    assert!(!b.add_message(0, client(1), &[1, 2, 3]));
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(
        (
            report.ignored_responses,
            report.ignored_class,
            report.ignored_unparsable
        ),
        (1, 1, 1)
    );
    let names: Vec<String> = ["query.example", "response.example", "chaos.example"]
        .map(String::from)
        .to_vec();
    let a = bloom::query(&key(11), &files_in(dir.path()), &names, None).unwrap();
    let r: Vec<Presence> = a.iter().map(|a| a.result).collect();
    assert_eq!(r, [Presence::Present, Presence::Absent, Presence::Absent]);
}

/// Client queries (UDP to port 53) from a classic little-endian pcap.
fn pcap_queries(path: &Path) -> Vec<(u64, IpAddr, Vec<u8>)> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cap = pcap_parser::PcapCapture::from_file(&raw)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    let linktype = cap.header.network.0;
    let mut out = Vec::new();
    for blk in &cap.blocks {
        let sliced = match linktype {
            1 => SlicedPacket::from_ethernet(blk.data),
            101 => SlicedPacket::from_ip(blk.data),
            other => panic!("{}: linktype {other} not handled", path.display()),
        };
        let Ok(p) = sliced else { continue };
        let src = match &p.net {
            Some(NetSlice::Ipv4(v4)) => IpAddr::V4(v4.header().source_addr()),
            Some(NetSlice::Ipv6(v6)) => IpAddr::V6(v6.header().source_addr()),
            _ => continue,
        };
        if let Some(TransportSlice::Udp(u)) = &p.transport {
            if u.destination_port() == 53 {
                out.push((u64::from(blk.ts_sec), src, u.payload().to_vec()));
            }
        }
    }
    out
}

#[test]
fn corpus_names_have_no_false_negatives() {
    let Some(corpus) = std::env::var_os("IPWASH_CORPUS") else {
        eprintln!("IPWASH_CORPUS unset: skipping the corpus test");
        return;
    };
    let pcap_dir = Path::new(&corpus).join("pcap");
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(&key(12), params(100_000, 1e-4, 0), Entities::empty()).unwrap();
    let mut expected: Vec<(u64, String)> = Vec::new();
    let mut name = String::new();
    for f in [
        "oarc-dnscap__dns.pcap",
        "oarc-dnscap__dns6.pcap",
        "oarc-dnscap__vlan11.pcap",
        "compactor__matching.pcap",
        "oarc-dnsjit__pellets.pcap",
    ] {
        let msgs = pcap_queries(&pcap_dir.join(f));
        assert!(!msgs.is_empty(), "{f}: no UDP queries found");
        for (ts, src, m) in msgs {
            let used = b.add_message(ts, src, &m);
            let q = parse_question(&m, &mut name);
            assert_eq!(
                used,
                q.is_ok_and(|q| !q.is_response && q.qclass == 1),
                "{f}"
            );
            if used {
                expected.push((ts - ts % 3600, name.clone()));
            }
        }
    }
    assert!(expected.len() > 10, "only {} queries", expected.len());
    eprintln!("corpus: {} client queries", expected.len());
    b.finish(dir.path()).unwrap();
    for (period, n) in &expected {
        let f = dir.path().join(bloom::file_name(*period));
        let a = bloom::query(&key(12), &[f], std::slice::from_ref(n), None).unwrap();
        assert_eq!(a[0].result, Presence::Present, "{n}");
    }
}

#[test]
fn repeated_queries_land_in_every_period_and_entity() {
    // Exercises the builder's recent-query cache: repeats are skipped only
    // within the same period and entity.
    let dir = tempfile::tempdir().unwrap();
    let mut b = Builder::new(
        &key(13),
        params(1000, 1e-4, 1),
        Entities::parse(ENTITIES).unwrap(),
    )
    .unwrap();
    let other = "192.0.2.7".parse().unwrap();
    for h in 0..3u64 {
        for _ in 0..3 {
            b.add_query(h * 3600, client(1), "Same.Example");
            b.add_query(h * 3600, other, "same.example.");
        }
    }
    let report = b.finish(dir.path()).unwrap();
    assert_eq!(report.files.len(), 3);
    for f in &report.files {
        assert_eq!(f.queries, 6);
        assert_eq!(f.items, 6 * 4);
    }
    let files = files_in(dir.path());
    let names = ["same.example".to_string(), "same".to_string()];
    for entity in [None, Some("campus"), Some("UNKNOWN")] {
        let a = bloom::query(&key(13), &files, &names, entity).unwrap();
        assert_eq!(a.len(), 6);
        assert!(
            a.iter().all(|a| a.result == Presence::Present),
            "{entity:?}"
        );
    }
    let a = bloom::query(&key(13), &files, &names, Some("lab")).unwrap();
    assert!(a.iter().all(|a| a.result == Presence::Withheld));
}
