//! pcapng metadata by allow-list, through the real binary: files built here
//! with every block and option the washer drops come out without them
//! (counted in the statistics), read cleanly in tshark, and come out byte
//! for byte with `--keep-metadata`; the Section Header Block names ipwash
//! and the technique.

mod common;
mod pkt;

use std::path::Path;

use pkt::*;

const HASH: &[u8] = &[
    2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
];
const SECRET: &[u8] = b"CLIENT_RANDOM 00112233 445566778899\n";

/// The capture with every kind of metadata the washer drops, and the
/// harmless options it keeps.
fn full_capture() -> Vec<u8> {
    let mut f = shb(&[
        (2, b"Dell R640 in rack 7"),
        (3, b"Linux 6.1 host resolver7"),
        (4, b"dumpcap (Wireshark) 4.0"),
        (2988, b"\x00\x00\x7e\xd9custom shb option"),
    ]);
    f.extend(idb(&[
        (2, b"eth-resolver7"),
        (3, b"uplink to customer 42"),
        (9, &[6]),
        (11, b"\x00host 192.0.2.7"),
        (12, b"Linux 6.1"),
        (13, &[0]),
        (15, b"Intel X710"),
        (8, &10_000_000_000u64.to_le_bytes()),
        (14, &0i64.to_le_bytes()),
        (19372, b"\x00\x00\x7e\xd9custom idb option"),
    ]));
    f.extend(dsb(SECRET));
    f.extend(epb(
        &dns_query(),
        &[(2, &[1, 0, 0, 0]), (3, HASH), (4, &3u64.to_le_bytes())],
    ));
    f.extend(block(0x0000_0BAD, b"\x00\x00\x7e\xd9copyable custom block"));
    f.extend(block(0x4000_0BAD, b"\x00\x00\x7e\xd9no-copy custom block"));
    f.extend(block(0x0000_0009, b"systemd journal entry text"));
    f.extend(block(0x0000_0123, b"unknown block contents!!"));
    f.extend(epb(&dns_query(), &[(5, &7u64.to_le_bytes())]));
    f.extend(isb(&[
        (2, &[0; 8]),
        (3, &[1; 8]),
        (4, &2u64.to_le_bytes()),
        (5, &0u64.to_le_bytes()),
        (1, b"isb comment"),
    ]));
    f
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The blocks of a little-endian pcapng file: (type, bytes).
fn blocks(f: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut v = Vec::new();
    let mut p = 0;
    while p + 12 <= f.len() {
        let t = u32::from_le_bytes(f[p..p + 4].try_into().unwrap());
        let n = u32::from_le_bytes(f[p + 4..p + 8].try_into().unwrap()) as usize;
        assert!(n >= 12 && p + n <= f.len(), "block at {p} has length {n}");
        assert_eq!(
            u32::from_le_bytes(f[p + n - 4..p + n].try_into().unwrap()) as usize,
            n,
            "trailing length at {p}"
        );
        v.push((t, f[p..p + n].to_vec()));
        p += n;
    }
    assert_eq!(p, f.len(), "trailing bytes");
    v
}

/// The options of a block whose options start at `at`: (code, value).
fn options(b: &[u8], at: usize) -> Vec<(u16, Vec<u8>)> {
    let mut v = Vec::new();
    let mut p = at;
    while p + 4 <= b.len() - 4 {
        let c = u16::from_le_bytes([b[p], b[p + 1]]);
        let l = u16::from_le_bytes([b[p + 2], b[p + 3]]) as usize;
        if c == 0 {
            break;
        }
        v.push((c, b[p + 4..p + 4 + l].to_vec()));
        p += 4 + ((l + 3) & !3);
    }
    v
}

fn wash(dir: &Path, input: &[u8], extra: &[&str]) -> (Vec<u8>, serde_json::Value) {
    let key = common::key_file(dir, "k.key", &"3a".repeat(32));
    let inp = dir.join("in.pcapng");
    let out = dir.join("out.pcapng");
    let stats = dir.join("stats.json");
    std::fs::write(&inp, input).unwrap();
    let mut args = vec![
        "wash",
        inp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--method",
        "cryptopan",
        "--key-file",
        key.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args, b"");
    let s = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    (std::fs::read(&out).unwrap(), s)
}

fn tshark_reads(path: &Path) -> Option<String> {
    if !common::have_tool("tshark") {
        return None;
    }
    let o = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "ip.src",
            "-e",
            "dns.qry.name",
        ])
        .output()
        .unwrap();
    let complaints: Vec<&str> = std::str::from_utf8(&o.stderr)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
        .collect();
    assert!(
        o.status.success() && complaints.is_empty(),
        "tshark on {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8(o.stdout).unwrap())
}

#[test]
fn dropped_metadata_is_gone_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = full_capture();
    let (out, stats) = wash(dir.path(), &input, &[]);
    for leak in [
        &b"Dell R640"[..],
        b"Linux 6.1",
        b"dumpcap",
        b"eth-resolver7",
        b"customer 42",
        b"host 192.0.2.7",
        b"Intel X710",
        b"custom shb option",
        b"custom idb option",
        b"CLIENT_RANDOM",
        b"copyable custom block",
        b"no-copy custom block",
        b"systemd journal",
        b"unknown block",
        b"isb comment",
        &HASH[1..],
    ] {
        assert!(
            !contains(&out, leak),
            "{:?} survived",
            String::from_utf8_lossy(leak)
        );
    }
    let bl = blocks(&out);
    let types: Vec<u32> = bl.iter().map(|b| b.0).collect();
    assert_eq!(types, [0x0A0D_0D0A, 1, 6, 6, 5], "only SHB, IDB, EPBs, ISB");
    // The SHB names ipwash and the method, and nothing else.
    let shb_opts = options(&bl[0].1, 24);
    assert_eq!(shb_opts.len(), 1, "{shb_opts:?}");
    assert_eq!(shb_opts[0].0, 4);
    let app = String::from_utf8(shb_opts[0].1.clone()).unwrap();
    assert!(app.starts_with("ipwash ") && app.ends_with("(--method cryptopan)"));
    // Harmless options survive unchanged, in order.
    let le = |v: u64| v.to_le_bytes().to_vec();
    assert_eq!(
        options(&bl[1].1, 16),
        vec![(9, vec![6]), (13, vec![0]), (14, le(0))]
    );
    let caplen = u32::from_le_bytes(bl[2].1[20..24].try_into().unwrap()) as usize;
    let at = 28 + ((caplen + 3) & !3);
    assert_eq!(
        options(&bl[2].1, at),
        vec![(2, vec![1, 0, 0, 0]), (4, le(3))]
    );
    assert_eq!(options(&bl[3].1, at), vec![]);
    assert_eq!(
        options(&bl[4].1, 20),
        vec![(2, vec![0; 8]), (3, vec![1; 8]), (4, le(2)), (5, le(0))]
    );
    // Counted by kind.
    let blocks_removed = &stats["blocks_removed"];
    for (k, n) in [
        ("decryption_secrets", 1),
        ("custom", 1),
        ("custom_nocopy", 1),
        ("unknown_block", 2),
    ] {
        assert_eq!(blocks_removed[k], n, "{k}: {stats}");
    }
    let opts_removed = &stats["options_removed"];
    for k in [
        "shb_hardware",
        "shb_os",
        "shb_userappl",
        "if_name",
        "if_description",
        "if_filter",
        "if_os",
        "if_hardware",
        "if_speed",
        "epb_hash",
        "epb_packetid",
        "opt_comment",
    ] {
        assert_eq!(opts_removed[k], 1, "{k}: {stats}");
    }
    assert_eq!(opts_removed["custom_option"], 2, "{stats}");
    // The packets themselves were washed.
    assert_eq!(stats["packets_rewritten"], 2);
    let p = dir.path().join("out.pcapng");
    if let Some(t) = tshark_reads(&p) {
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        for l in lines {
            assert!(l.ends_with("\texample.com"), "{l}");
            assert!(!l.contains("192.0.2.7"), "{l}");
        }
    }
}

#[test]
fn each_dropped_item_alone_reads_in_tshark() {
    // One file per dropped item, so tshark sees each removal on its own.
    let dir = tempfile::tempdir().unwrap();
    let q = dns_query();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("epb_hash", {
            let mut f = shb(&[]);
            f.extend(idb(&[]));
            f.extend(epb(&q, &[(3, HASH)]));
            f
        }),
        ("if_filter", {
            let mut f = shb(&[]);
            f.extend(idb(&[(11, b"\x00host 192.0.2.7")]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("if_name", {
            let mut f = shb(&[]);
            f.extend(idb(&[(2, b"eth-resolver7")]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("if_description", {
            let mut f = shb(&[]);
            f.extend(idb(&[(3, b"uplink to customer 42")]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("if_os", {
            let mut f = shb(&[]);
            f.extend(idb(&[(12, b"Linux 6.1")]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("if_hardware", {
            let mut f = shb(&[]);
            f.extend(idb(&[(15, b"Intel X710")]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("shb_hardware", {
            let mut f = shb(&[(2, b"Dell R640 in rack 7")]);
            f.extend(idb(&[]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("shb_os", {
            let mut f = shb(&[(3, b"Linux 6.1 host resolver7")]);
            f.extend(idb(&[]));
            f.extend(epb(&q, &[]));
            f
        }),
        ("decryption_secrets", {
            let mut f = shb(&[]);
            f.extend(idb(&[]));
            f.extend(dsb(SECRET));
            f.extend(epb(&q, &[]));
            f
        }),
        ("custom", {
            let mut f = shb(&[]);
            f.extend(idb(&[]));
            f.extend(block(0x0000_0BAD, b"\x00\x00\x7e\xd9copyable custom block"));
            f.extend(epb(&q, &[]));
            f
        }),
        ("unknown_block", {
            let mut f = shb(&[]);
            f.extend(idb(&[]));
            f.extend(block(0x0000_0123, b"unknown block contents!!"));
            f.extend(epb(&q, &[]));
            f
        }),
    ];
    let plain = {
        let mut f = shb(&[]);
        f.extend(idb(&[]));
        f.extend(epb(&q, &[]));
        wash(dir.path(), &f, &[]).0
    };
    for (name, f) in cases {
        let (out, stats) = wash(dir.path(), &f, &[]);
        let counted = stats["options_removed"][name]
            .as_u64()
            .or(stats["blocks_removed"][name].as_u64());
        assert_eq!(counted, Some(1), "{name}: {stats}");
        // Without the item, the output is that of the file that never had it.
        assert_eq!(out, plain, "{name}");
        let p = dir.path().join("out.pcapng");
        if let Some(t) = tshark_reads(&p) {
            assert_eq!(t.lines().count(), 1, "{name}: {t}");
        }
    }
}

#[test]
fn keep_metadata_keeps_it_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let input = full_capture();
    let (out, stats) = wash(dir.path(), &input, &["--keep-metadata", "--keep-comments"]);
    assert_eq!(stats["packets_rewritten"], 2);
    let inb = blocks(&input);
    let outb = blocks(&out);
    // Everything but the no-copy custom block, which is never copied into a
    // rewritten file.
    let inb: Vec<_> = inb.into_iter().filter(|b| b.0 != 0x4000_0BAD).collect();
    assert_eq!(outb.len(), inb.len());
    for (i, (a, b)) in inb.iter().zip(&outb).enumerate() {
        assert_eq!(a.0, b.0, "block {i}");
        match a.0 {
            // Packets: the same except the washed addresses and checksums.
            6 => {
                assert_eq!(a.1.len(), b.1.len());
                let caplen = u32::from_le_bytes(a.1[20..24].try_into().unwrap()) as usize;
                let at = 28 + ((caplen + 3) & !3);
                assert_eq!(a.1[at..], b.1[at..], "EPB options byte for byte");
                assert_ne!(a.1[28..at], b.1[28..at], "packet washed");
            }
            // The SHB: every option but shb_userappl, which names ipwash.
            0x0A0D_0D0A => {
                let (oa, ob) = (options(&a.1, 24), options(&b.1, 24));
                let oa: Vec<_> = oa.into_iter().filter(|o| o.0 != 4).collect();
                let ob_rest: Vec<_> = ob.iter().filter(|o| o.0 != 4).cloned().collect();
                assert_eq!(oa, ob_rest);
                assert!(ob.iter().any(|o| o.0 == 4 && o.1.starts_with(b"ipwash ")));
            }
            _ => assert_eq!(a.1, b.1, "block {i} byte for byte"),
        }
    }
    let p = dir.path().join("out.pcapng");
    if let Some(t) = tshark_reads(&p) {
        // tshark also lists the kept unknown blocks as frames without IP.
        let packets: Vec<&str> = t.lines().filter(|l| l.contains("\texample.com")).collect();
        assert_eq!(packets.len(), 2, "{t}");
    }
}
