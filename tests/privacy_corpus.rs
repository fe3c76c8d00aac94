//! On every shared corpus capture: after `wash --method cryptopan`,
//! `ipwash audit` finds no original identifier in the link layer, ARP,
//! ICMP or pcapng metadata; and an independent check (the unicast MAC
//! addresses tshark sees in the input, searched as plain bytes in the
//! output) agrees: no MAC is left anywhere, EDNS options included. Then
//! every capture under every technique, with and without `--answers
//! --only-dns` (see the second test).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn captures() -> Vec<PathBuf> {
    let Some(c) = common::corpus() else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for d in [c.join("pcap"), c.join("pcap/derived")] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if n.contains(".pcap") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn tshark_macs(p: &std::path::Path) -> Option<BTreeSet<[u8; 6]>> {
    if !common::have_tool("tshark") {
        return None;
    }
    let o = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(p)
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "separator=,"])
        .args([
            "-e",
            "eth.src",
            "-e",
            "eth.dst",
            "-e",
            "arp.src.hw_mac",
            "-e",
            "arp.dst.hw_mac",
        ])
        .output()
        .unwrap();
    let mut set = BTreeSet::new();
    for tok in String::from_utf8_lossy(&o.stdout).split([',', '\n', '\t']) {
        let b: Vec<u8> = tok
            .split(':')
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        if tok.len() == 17 && b.len() == 6 && b[0] & 1 == 0 && b != [0; 6] {
            set.insert([b[0], b[1], b[2], b[3], b[4], b[5]]);
        }
    }
    Some(set)
}

#[test]
fn corpus_link_layer_and_metadata_are_clean() {
    let caps = captures();
    if caps.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = common::key_file(dir.path(), "k", &"3a".repeat(32));
    let mut checked = 0;
    let mut macs_checked = 0;
    for p in caps {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let out = dir.path().join(name.trim_end_matches(".xz"));
        let o = common::run(
            &[
                "wash",
                p.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--method",
                "cryptopan",
                "--key-file",
                key.to_str().unwrap(),
                "--compress",
                "none",
                "-q",
            ],
            b"",
        );
        if !out.exists() || std::fs::metadata(&out).unwrap().len() == 0 {
            assert!(!o.status.success(), "{name}: no output");
            continue;
        }
        let a = common::run(
            &[
                "audit",
                p.to_str().unwrap(),
                out.to_str().unwrap(),
                "--json",
                "--max-listed",
                "100000",
            ],
            b"",
        );
        let j: serde_json::Value = match serde_json::from_slice(&a.stdout) {
            Ok(j) => j,
            // Inputs the audit cannot read (cut files) are checked elsewhere.
            Err(_) => continue,
        };
        for layer in ["link", "arp", "icmp", "pcapng-metadata"] {
            assert!(
                j["by_layer"][layer].is_null(),
                "{name}: survivors in {layer}: {}",
                j["by_layer"]
            );
        }
        checked += 1;
        // Independent: every unicast MAC tshark sees in the input is gone
        // from the output's bytes.
        let Some(macs) = tshark_macs(&p) else {
            continue;
        };
        let bytes = std::fs::read(&out).unwrap();
        let reported: BTreeSet<String> = j["surviving_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for m in &macs {
            let text = format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            // No MAC is left in the bytes, EDNS options (dnsmasq's and the
            // Owner option of Multicast DNS) included.
            assert!(
                !bytes.windows(6).any(|w| w == m),
                "{name}: MAC {text} survives (audit reports it: {})",
                reported.contains(&text)
            );
            macs_checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} captures audited");
    eprintln!("{checked} captures audited, {macs_checked} MACs checked by byte search, none left");
}

/// (method, key arguments) for every technique that washes captures.
fn techniques(dir: &std::path::Path) -> Vec<(&'static str, Vec<String>)> {
    let k32 = common::key_file(dir, "k32", &"5c".repeat(32));
    let k16 = common::key_file(dir, "k16", "2b7e151628aed2a6abf7158809cf4f3c");
    let cpt = common::root().join("testdata/vectors/cryptopant/keyfile.aes");
    let key = |p: &std::path::Path| vec!["--key-file".to_string(), p.to_str().unwrap().to_string()];
    vec![
        ("cryptopan", key(&k32)),
        ("truncate", vec![]),
        ("enumerate", vec![]),
        ("prefix-map", key(&k32)),
        ("tsa", key(&k32)),
        ("ipcipher", key(&k16)),
        ("ipcrypt-pfx", key(&k32)),
        ("cryptopant", key(&cpt)),
    ]
}

/// The addresses and MACs tshark sees in a capture's fields (the
/// independent list): IP and ARP addresses, A/AAAA data, ECS, MACs.
fn tshark_idents(p: &std::path::Path) -> BTreeSet<Vec<u8>> {
    tshark_fields(
        p,
        &[
            "ip.src",
            "ip.dst",
            "ipv6.src",
            "ipv6.dst",
            "arp.src.proto_ipv4",
            "arp.dst.proto_ipv4",
            "dns.a",
            "dns.aaaa",
            "eth.src",
            "eth.dst",
        ],
    )
}

/// The addresses and MACs in these tshark fields of a capture.
fn tshark_fields(p: &std::path::Path, fields: &[&str]) -> BTreeSet<Vec<u8>> {
    let mut c = std::process::Command::new("tshark");
    c.args(["-n", "-r"])
        .arg(p)
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "separator=,"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let o = c.output().unwrap();
    let mut set = BTreeSet::new();
    for tok in String::from_utf8_lossy(&o.stdout).split([',', '\n', '\t']) {
        if let Ok(a) = tok.parse::<std::net::IpAddr>() {
            // Group addresses identify no host (the audit skips them too).
            if a.is_multicast() {
                continue;
            }
            let b = match a {
                std::net::IpAddr::V4(v) => v.octets().to_vec(),
                std::net::IpAddr::V6(v) => v.octets().to_vec(),
            };
            // Unspecified and all-ones values are everywhere by nature.
            if b.iter().any(|&x| x != 0) && b.iter().any(|&x| x != 0xff) {
                set.insert(b);
            }
            continue;
        }
        let b: Vec<u8> = tok
            .split(':')
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        if tok.len() == 17 && b.len() == 6 && b[0] & 1 == 0 && b != [0; 6] {
            set.insert(b);
        }
    }
    set
}

fn ident_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).to_string(),
        _ => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The survivors of an audit as (address, layer, form).
fn survivors(j: &serde_json::Value) -> Vec<(String, String, String)> {
    j["survivors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["layer"].as_str().unwrap().to_string(),
                s["form"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ip_like(addrs: &BTreeSet<String>) -> bool {
    addrs.iter().any(|a| a.parse::<std::net::IpAddr>().is_ok())
}

/// What the wash maps each of `addrs` to (`ipwash map`, as below).
fn map_all(
    addrs: &BTreeSet<String>,
    method: &str,
    key: &[String],
    state: &std::path::Path,
) -> BTreeSet<String> {
    let mut a: Vec<String> = vec!["map".into(), "--method".into(), method.into()];
    a.extend(key.iter().cloned());
    if matches!(method, "enumerate" | "prefix-map") {
        if !state.exists() {
            return BTreeSet::new();
        }
        a.extend(["--state".into(), state.to_str().unwrap().into()]);
    }
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let input: String = addrs.iter().map(|s| format!("{s}\n")).collect();
    let out = common::run_ok(&args, input.as_bytes());
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| a.to_string())
        .collect()
}

/// The addresses among `addrs` that the wash maps to themselves (kept or
/// reserved ranges, a truncation that changes nothing, ...): `ipwash map`
/// with the same method, key and (stateful methods) the wash's state.
fn self_mapped(
    addrs: &BTreeSet<String>,
    method: &str,
    key: &[String],
    state: &std::path::Path,
) -> BTreeSet<String> {
    let ips: Vec<&String> = addrs
        .iter()
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .collect();
    if ips.is_empty() {
        return BTreeSet::new();
    }
    let mut a: Vec<String> = vec!["map".into(), "--method".into(), method.into()];
    a.extend(key.iter().cloned());
    if matches!(method, "enumerate" | "prefix-map") {
        a.extend(["--state".into(), state.to_str().unwrap().into()]);
    }
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let input: String = ips.iter().map(|s| format!("{s}\n")).collect();
    let out = common::run_ok(&args, input.as_bytes());
    ips.iter()
        .zip(String::from_utf8_lossy(&out).lines())
        .filter(|(i, o)| i.parse::<std::net::IpAddr>().ok() == o.trim().parse().ok())
        .map(|(i, _)| (*i).clone())
        .collect()
}

/// Every corpus capture, every technique. With `--answers --only-dns`
/// the audit finds nothing but addresses the technique maps to themselves
/// and reverse names (their own subject, not washed here: excluded by
/// form). Without them, nothing survives in the IP headers (other than
/// chance byte matches that are no address field, checked against
/// tshark's address fields of the output), ARP, ICMP, EDNS (ECS and the
/// identifier options), the link layer, pcapng metadata, nor any MAC
/// anywhere; what remains is printed by layer. Independently, every
/// original that tshark sees and a plain byte search finds in an output
/// is one the audit reports.
#[test]
fn corpus_every_technique_answers_only_dns_and_default() {
    let caps = captures();
    if caps.is_empty() || !common::have_tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let techs = techniques(dir.path());
    let originals: Vec<BTreeSet<Vec<u8>>> = caps.iter().map(|p| tshark_idents(p)).collect();
    let mut remain: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut audited, mut excused, mut reverse_names, mut byte_hits, mut chance) = (0, 0, 0, 0, 0);
    let mut pseudonyms = 0;
    for (ti, (method, key)) in techs.iter().enumerate() {
        let method: &str = method;
        for (ci, p) in caps.iter().enumerate() {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // The two large live captures once, with the first technique.
            if name.ends_with(".xz") && ti != 0 {
                continue;
            }
            for flagged in [true, false] {
                let out = dir.path().join(format!("{ti}-{ci}-{flagged}.out"));
                let state = dir.path().join(format!("{ti}-{ci}-{flagged}.state"));
                let mut a: Vec<String> =
                    ["wash", "--method", method, "--compress", "none", "-q", "-o"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                a.push(out.to_str().unwrap().into());
                a.push(p.to_str().unwrap().into());
                a.extend(key.iter().cloned());
                if matches!(method, "enumerate" | "prefix-map") {
                    a.extend(["--state".into(), state.to_str().unwrap().into()]);
                }
                if flagged {
                    a.extend(["--answers".into(), "--only-dns".into()]);
                }
                let args: Vec<&str> = a.iter().map(String::as_str).collect();
                let o = common::run(&args, b"");
                if !out.exists() || std::fs::metadata(&out).unwrap().len() == 0 {
                    assert!(!o.status.success(), "{name}: no output");
                    continue;
                }
                let au = common::run(
                    &[
                        "audit",
                        p.to_str().unwrap(),
                        out.to_str().unwrap(),
                        "--json",
                        "--max-listed",
                        "1000000",
                    ],
                    b"",
                );
                let Ok(j) = serde_json::from_slice::<serde_json::Value>(&au.stdout) else {
                    continue;
                };
                audited += 1;
                let surv = survivors(&j);
                let addrs: BTreeSet<String> = surv.iter().map(|s| s.0.clone()).collect();
                let same = self_mapped(&addrs, method, key, &state);
                // A pseudonym may equal another original (enumerate numbers
                // IPv6 addresses ::1, ::2, ...): not a survivor of that one.
                let images = if ip_like(&addrs) {
                    let all: BTreeSet<String> = originals[ci]
                        .iter()
                        .filter(|b| b.len() != 6)
                        .map(|b| ident_text(b))
                        .collect();
                    map_all(&all, method, key, &state)
                } else {
                    BTreeSet::new()
                };
                let what = format!("{method} {name} flags={flagged}");
                let mut ip_survivors = BTreeSet::new();
                for (addr, layer, form) in &surv {
                    if form == "reverse-name" {
                        reverse_names += 1;
                        continue;
                    }
                    if same.contains(addr) {
                        excused += 1;
                        continue;
                    }
                    if images.contains(addr) {
                        pseudonyms += 1;
                        continue;
                    }
                    if layer == "ip" && form == "raw" {
                        ip_survivors.insert(addr.clone());
                        continue;
                    }
                    if flagged {
                        panic!("{what}: {addr} survives in {layer} ({form})");
                    }
                    let is_mac = addr.parse::<std::net::IpAddr>().is_err();
                    assert!(!is_mac, "{what}: MAC {addr} survives in {layer} ({form})");
                    assert!(
                        !["arp", "icmp", "edns", "link", "pcapng-metadata"]
                            .contains(&layer.as_str()),
                        "{what}: {addr} survives in {layer} ({form})"
                    );
                    if ti == 0 {
                        *remain
                            .entry(layer.clone())
                            .or_default()
                            .entry(addr.clone())
                            .or_default() += 1;
                    }
                }
                if !ip_survivors.is_empty() {
                    // A chance match across neighbouring fields, never an
                    // address field of the output.
                    let fields = tshark_fields(&out, &["ip.src", "ip.dst", "ipv6.src", "ipv6.dst"]);
                    for a in &ip_survivors {
                        let b: Vec<u8> = match a.parse::<std::net::IpAddr>().unwrap() {
                            std::net::IpAddr::V4(v) => v.octets().to_vec(),
                            std::net::IpAddr::V6(v) => v.octets().to_vec(),
                        };
                        assert!(
                            !fields.contains(&b),
                            "{what}: {a} is still an IP address field"
                        );
                        chance += 1;
                    }
                }
                // Independent: originals tshark sees, found as raw bytes in
                // the output, are reported by the audit.
                let bytes = std::fs::read(&out).unwrap();
                for id in &originals[ci] {
                    if bytes.windows(id.len()).any(|w| w == &id[..]) {
                        byte_hits += 1;
                        let t = ident_text(id);
                        assert!(
                            addrs.contains(&t) || images.contains(&t),
                            "{what}: {t} found by a byte search, not reported by the audit"
                        );
                    }
                }
            }
        }
    }
    assert!(audited >= 300, "{audited} audits");
    eprintln!(
        "{audited} audits; {excused} survivors excused as mapped to themselves; \
         {reverse_names} reverse-name forms excluded; {pseudonyms} equal to another original's \
         pseudonym; {chance} chance matches in IP headers \
         (no address field); {byte_hits} byte-search hits all reported"
    );
    for (layer, m) in &remain {
        eprintln!(
            "cryptopan without --answers --only-dns: {layer}: {} identifiers, {} occurrences",
            m.len(),
            m.values().sum::<usize>()
        );
    }
}
