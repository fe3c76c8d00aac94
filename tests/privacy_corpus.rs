//! On every shared corpus capture: after `wash --method cryptopan`,
//! `ipwash audit` finds no original identifier in the link layer, ARP,
//! ICMP or pcapng metadata; and an independent check (the unicast MAC
//! addresses tshark sees in the input, searched as plain bytes in the
//! output) agrees: a MAC left anywhere (so far only inside EDNS options,
//! which are not washed yet) is one the audit reports.

mod common;

use std::collections::BTreeSet;
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
    let mut edns_macs = 0;
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
            // A MAC left in the bytes (only inside EDNS options, which are
            // not washed yet) must be one the audit reports too.
            if bytes.windows(6).any(|w| w == m) {
                assert!(
                    reported.contains(&text),
                    "{name}: MAC {text} survives unreported"
                );
                edns_macs += 1;
            }
            macs_checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} captures audited");
    eprintln!(
        "{checked} captures audited, {macs_checked} MACs checked by byte search, \
         {edns_macs} left in EDNS options"
    );
}
