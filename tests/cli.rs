//! The command-line contract of `map` and `keygen`, run through the real
//! binary: published vectors, reverse round trips, key handling, exit codes.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Group vector rows by key so each key is one `ipwash map` run.
fn by_key(
    rows: &[Vec<String>],
    key: usize,
    inp: usize,
    out: usize,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut m: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in rows {
        m.entry(r[key].clone())
            .or_default()
            .push((r[inp].clone(), r[out].clone()));
    }
    m
}

fn norm(a: &str) -> IpAddr {
    a.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not an address: {a}"))
}

fn check_map(
    method: &str,
    key_flag: &str,
    key_path: &std::path::Path,
    pairs: &[(String, String)],
    reverse: bool,
) {
    check_map_with(method, key_flag, key_path, pairs, reverse, &[]);
}

/// [`check_map`] with extra `map` flags (also given to the reverse run).
fn check_map_with(
    method: &str,
    key_flag: &str,
    key_path: &std::path::Path,
    pairs: &[(String, String)],
    reverse: bool,
    extra: &[&str],
) {
    let input: String = pairs.iter().map(|(i, _)| format!("{i}\n")).collect();
    let mut args = vec![
        "map",
        "--method",
        method,
        key_flag,
        key_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_ok(&args, input.as_bytes());
    let out = String::from_utf8(out).unwrap();
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got.len(),
        pairs.len(),
        "{method}: one output line per input line"
    );
    for ((i, want), g) in pairs.iter().zip(&got) {
        assert_eq!(norm(g), norm(want), "{method} {i}");
    }
    if reverse {
        let back_in: String = got.iter().map(|g| format!("{g}\n")).collect();
        args.push("--reverse");
        let back = run_ok(&args, back_in.as_bytes());
        let back = String::from_utf8(back).unwrap();
        for ((i, _), b) in pairs.iter().zip(back.lines()) {
            assert_eq!(norm(b), norm(i), "{method} reverse of {i}");
        }
    }
}

#[test]
fn cryptopan_vectors_through_cli() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "cryptopan/ipv4_reference_sample_trace.csv",
        "cryptopan/ipv4_refkey_200.csv",
        "cryptopan/ipv6_refkey_200.csv",
        "cryptopan/other_keys.csv",
    ] {
        let (h, rows) = vectors(f);
        for (i, (key, pairs)) in by_key(
            &rows,
            col(&h, "key_hex"),
            col(&h, "input"),
            col(&h, "output"),
        )
        .iter()
        .enumerate()
        {
            let k = key_file(dir.path(), &format!("cp{i}.key"), key);
            // The published vectors compute IPv4-mapped inputs the 128-bit
            // way: all of them hold under `--mapped native`, and every
            // other one under the default.
            check_map_with(
                "cryptopan",
                "--key-file",
                &k,
                pairs,
                true,
                &["--mapped", "native"],
            );
            let plain: Vec<_> = pairs
                .iter()
                .filter(|(inp, _)| !inp.to_ascii_lowercase().starts_with("::ffff:"))
                .cloned()
                .collect();
            check_map("cryptopan", "--key-file", &k, &plain, true);
        }
    }
}

#[test]
fn reference_sample_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(
        dir.path(),
        "k",
        "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202",
    );
    let out = run_ok(
        &[
            "map",
            "--method",
            "cryptopan",
            "--key-file",
            k.to_str().unwrap(),
        ],
        b"24.5.0.80\n",
    );
    assert_eq!(out, b"100.9.15.210\n");
}

#[test]
fn ipcipher_and_ipcrypt_vectors_through_cli() {
    let dir = tempfile::tempdir().unwrap();
    // ipcipher.csv: raw keys (iterations 1); the passphrase rows also run
    // through --passphrase-file.
    let (h, rows) = vectors("ipcipher.csv");
    let (ck, cp, ci, cin, cout) = (
        col(&h, "key_hex"),
        col(&h, "passphrase"),
        col(&h, "iterations"),
        col(&h, "input"),
        col(&h, "output"),
    );
    let single: Vec<Vec<String>> = rows.iter().filter(|r| r[ci] == "1").cloned().collect();
    assert!(single.len() >= 10);
    for (i, (key, pairs)) in by_key(&single, ck, cin, cout).iter().enumerate() {
        let k = key_file(dir.path(), &format!("ipc{i}.key"), key);
        check_map("ipcipher", "--key-file", &k, pairs, true);
    }
    for (i, (pass, pairs)) in by_key(
        &single
            .iter()
            .filter(|r| !r[cp].is_empty())
            .cloned()
            .collect::<Vec<_>>(),
        cp,
        cin,
        cout,
    )
    .iter()
    .enumerate()
    {
        let p = dir.path().join(format!("pass{i}"));
        std::fs::write(&p, format!("{pass}\n")).unwrap();
        check_map("ipcipher", "--passphrase-file", &p, pairs, true);
    }
    let (h, rows) = vectors("ipcrypt_original.csv");
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| r[col(&h, "iterations")] == "1")
        .collect();
    for (i, (key, pairs)) in by_key(
        &rows,
        col(&h, "key_hex"),
        col(&h, "input"),
        col(&h, "output"),
    )
    .iter()
    .enumerate()
    {
        let k = key_file(dir.path(), &format!("orig{i}.key"), key);
        check_map("ipcipher", "--key-file", &k, pairs, true);
    }
    for (file, method) in [
        ("ipcrypt_pfx.csv", "ipcrypt-pfx"),
        ("ipcrypt_deterministic.csv", "ipcrypt-deterministic"),
    ] {
        let (h, rows) = vectors(file);
        for (i, (key, pairs)) in by_key(
            &rows,
            col(&h, "key_hex"),
            col(&h, "input"),
            col(&h, "output"),
        )
        .iter()
        .enumerate()
        {
            let k = key_file(dir.path(), &format!("{method}{i}.key"), key);
            check_map(method, "--key-file", &k, pairs, true);
        }
    }
}

#[test]
fn passphrase_derivation_matches_kdf_vectors() {
    // The key derived from a passphrase must behave exactly like the
    // published derived key given raw.
    let dir = tempfile::tempdir().unwrap();
    let (h, rows) = vectors("ipcipher_kdf.csv");
    let probe = "192.0.2.1\n2001:db8::1\n";
    for (i, r) in rows.iter().enumerate() {
        let p = dir.path().join(format!("p{i}"));
        std::fs::write(&p, &r[col(&h, "passphrase")]).unwrap();
        let k = key_file(dir.path(), &format!("k{i}"), &r[col(&h, "key_hex")]);
        let a = run_ok(
            &[
                "map",
                "--method",
                "ipcipher",
                "--passphrase-file",
                p.to_str().unwrap(),
            ],
            probe.as_bytes(),
        );
        let b = run_ok(
            &[
                "map",
                "--method",
                "ipcipher",
                "--key-file",
                k.to_str().unwrap(),
            ],
            probe.as_bytes(),
        );
        assert_eq!(a, b, "passphrase {:?}", r[col(&h, "passphrase")]);
    }
}

/// A deterministic generator for test addresses (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn reverse_round_trip_100k_for_every_reversible_technique() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let mut input = String::new();
    for i in 0..100_000u32 {
        if i % 2 == 0 {
            let v = rng.next() as u32;
            input.push_str(&format!("{}\n", std::net::Ipv4Addr::from(v)));
        } else {
            let v = ((rng.next() as u128) << 64) | rng.next() as u128;
            input.push_str(&format!("{}\n", std::net::Ipv6Addr::from(v)));
        }
    }
    let k32 = key_file(
        dir.path(),
        "k32",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    );
    let k16 = key_file(dir.path(), "k16", "0f0e0d0c0b0a09080706050403020100");
    for (method, key) in [
        ("cryptopan", &k32),
        ("tsa", &k32),
        ("ipcrypt-pfx", &k32),
        ("ipcipher", &k16),
        ("ipcrypt-deterministic", &k16),
        ("ipcrypt-nd", &k16),
        ("ipcrypt-ndx", &k32),
    ] {
        let ks = key.to_str().unwrap();
        let fwd = run_ok(
            &["map", "--method", method, "--key-file", ks],
            input.as_bytes(),
        );
        assert_ne!(fwd, input.as_bytes(), "{method} changed nothing");
        let back = run_ok(
            &["map", "--method", method, "--key-file", ks, "--reverse"],
            &fwd,
        );
        let back = String::from_utf8(back).unwrap();
        let n = back
            .lines()
            .zip(input.lines())
            .filter(|(b, i)| norm(b) == norm(i))
            .count();
        assert_eq!(
            n, 100_000,
            "{method}: reverse after forward must be the identity"
        );
    }
}

#[test]
fn map_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let k32 = key_file(dir.path(), "k32", secret);
    let ks = k32.to_str().unwrap();
    // A bad line: exit 1, names the line, earlier lines were written.
    let o = run(
        &["map", "--method", "cryptopan", "--key-file", ks],
        b"192.0.2.1\nnot-an-ip\n10.0.0.1\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    // --reverse on a technique that cannot be reversed: usage error.
    let o = run(
        &["map", "--method", "truncate", "--reverse"],
        b"192.0.2.1\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    // Wrong key length and bad hex: exit 2, and the key never shows.
    let short = key_file(dir.path(), "short", &secret[..40]);
    let o = run(
        &[
            "map",
            "--method",
            "cryptopan",
            "--key-file",
            short.to_str().unwrap(),
        ],
        b"192.0.2.1\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(&secret[..16]));
    let bad = key_file(dir.path(), "bad", &format!("zz{}", &secret[2..]));
    let o = run(
        &[
            "map",
            "--method",
            "cryptopan",
            "--key-file",
            bad.to_str().unwrap(),
        ],
        b"192.0.2.1\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(&secret[2..18]));
    // A missing key: exit 2.
    let o = run(&["map", "--method", "cryptopan"], b"192.0.2.1\n");
    assert_eq!(o.status.code(), Some(2));
    // An unknown method: exit 2.
    let o = run(&["map", "--method", "rot13"], b"192.0.2.1\n");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn truncate_defaults_and_options() {
    let out = run_ok(
        &["map", "--method", "truncate"],
        b"192.0.2.77\n2001:db8:1234:5678::1\n::ffff:198.51.100.9\n",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "192.0.2.0\n2001:db8:1234::\n::ffff:198.51.100.0\n"
    );
    let out = run_ok(
        &[
            "map",
            "--method",
            "truncate",
            "--ipv4-prefix",
            "16",
            "--ipv6-prefix",
            "32",
        ],
        b"192.0.2.77\n2001:db8:1234::1\n",
    );
    assert_eq!(String::from_utf8(out).unwrap(), "192.0.0.0\n2001:db8::\n");
    let out = run_ok(
        &["map", "--method", "truncate", "--black-marker"],
        b"192.0.2.77\n",
    );
    assert_eq!(String::from_utf8(out).unwrap(), "0.0.0.0\n");
    let o = run(&["map", "--method", "truncate", "--ipv4-prefix", "33"], b"");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn enumerate_numberings_through_cli() {
    let input = b"192.0.2.1\n192.0.2.2\n192.0.2.1\n192.0.2.3\n2001:db8::1\n192.0.2.4\n";
    let out = run_ok(&["map", "--method", "enumerate"], input);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0.0.0.1\n0.0.0.2\n0.0.0.1\n0.0.0.3\n::1\n0.0.0.4\n"
    );
    // dnswasher: one shared counter from 0, IPv4 in host byte order.
    let out = run_ok(
        &["map", "--method", "enumerate", "--numbering", "dnswasher"],
        input,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0.0.0.0\n1.0.0.0\n0.0.0.0\n2.0.0.0\n::3\n4.0.0.0\n"
    );
}

#[test]
fn state_file_keeps_runs_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state.csv");
    let s = st.to_str().unwrap();
    let k = key_file(
        dir.path(),
        "k",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    );
    let ks = k.to_str().unwrap();
    for method in ["enumerate", "prefix-map"] {
        let _ = std::fs::remove_file(&st);
        let mut args = vec!["map", "--method", method, "--state", s];
        if method == "prefix-map" {
            args.extend(["--key-file", ks]);
        }
        let all = {
            let mut a = args.clone();
            a.truncate(3);
            if method == "prefix-map" {
                a.extend(["--key-file", ks]);
            }
            run_ok(
                &a,
                b"10.0.0.1\n10.0.0.2\n2001:db8::1\n10.1.0.1\n2001:db8::2\n",
            )
        };
        let first = run_ok(&args, b"10.0.0.1\n10.0.0.2\n2001:db8::1\n");
        let second = run_ok(&args, b"10.1.0.1\n2001:db8::2\n10.0.0.1\n");
        let all = String::from_utf8(all).unwrap();
        let first = String::from_utf8(first).unwrap();
        let second = String::from_utf8(second).unwrap();
        let all: Vec<&str> = all.lines().collect();
        assert_eq!(first.lines().collect::<Vec<_>>(), all[..3], "{method}");
        assert_eq!(
            second.lines().collect::<Vec<_>>(),
            vec![all[3], all[4], all[0]],
            "{method}"
        );
    }
}

#[test]
fn keygen_writes_private_keys_of_the_right_length() {
    let dir = tempfile::tempdir().unwrap();
    for (method, len) in [
        ("cryptopan", 64),
        ("ipcipher", 32),
        ("prefix-map", 64),
        ("tsa", 64),
        ("ipcrypt-pfx", 64),
        ("ipcrypt-deterministic", 32),
    ] {
        let p = dir.path().join(method);
        run_ok(
            &["keygen", "--method", method, "-o", p.to_str().unwrap()],
            b"",
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.trim().len(), len, "{method}");
        assert!(text.trim().bytes().all(|c| c.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // The key works.
        let flag = "--key-file";
        run_ok(
            &["map", "--method", method, flag, p.to_str().unwrap()],
            b"192.0.2.1\n",
        );
        // An existing key is never overwritten.
        let o = run(
            &["keygen", "--method", method, "-o", p.to_str().unwrap()],
            b"",
        );
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    }
    let a = run_ok(&["keygen", "--method", "cryptopan"], b"");
    let b = run_ok(&["keygen", "--method", "cryptopan"], b"");
    assert_ne!(a, b, "two keys from the OS generator differ");
    let o = run(&["keygen", "--method", "truncate"], b"");
    assert_eq!(o.status.code(), Some(2));
}

/// The non-deterministic ipcrypt modes through `map`: every published
/// ciphertext decrypts to its address with `--reverse`, and forward output
/// is fresh hex of the right length each run that decrypts back.
#[test]
fn ipcrypt_nd_and_ndx_vectors_through_cli() {
    let dir = tempfile::tempdir().unwrap();
    for (file, method, hex_len) in [
        ("ipcrypt_nd.csv", "ipcrypt-nd", 48),
        ("ipcrypt_ndx.csv", "ipcrypt-ndx", 64),
    ] {
        let (h, rows) = vectors(file);
        let groups = by_key(
            &rows,
            col(&h, "key_hex"),
            col(&h, "input"),
            col(&h, "output_hex"),
        );
        assert!(!groups.is_empty(), "{file}: no rows");
        for (i, (key, pairs)) in groups.iter().enumerate() {
            let k = key_file(dir.path(), &format!("{method}{i}.key"), key);
            let ks = k.to_str().unwrap();
            // Published ciphertexts decrypt to their addresses.
            let cts: String = pairs.iter().map(|(_, o)| format!("{o}\n")).collect();
            let back = run_ok(
                &["map", "--method", method, "--key-file", ks, "--reverse"],
                cts.as_bytes(),
            );
            let back = String::from_utf8(back).unwrap();
            let back: Vec<&str> = back.lines().collect();
            assert_eq!(back.len(), pairs.len(), "{method}");
            for ((inp, _), b) in pairs.iter().zip(&back) {
                assert_eq!(norm(b), norm(inp), "{method} reverse of a vector");
            }
            // Forward: fresh tweaks, so two runs differ, and both decrypt.
            let addrs: String = pairs.iter().map(|(a, _)| format!("{a}\n")).collect();
            let run1 = run_ok(
                &["map", "--method", method, "--key-file", ks],
                addrs.as_bytes(),
            );
            let run2 = run_ok(
                &["map", "--method", method, "--key-file", ks],
                addrs.as_bytes(),
            );
            assert_ne!(run1, run2, "{method}: a random tweak per address");
            for out in [&run1, &run2] {
                let text = String::from_utf8(out.clone()).unwrap();
                for l in text.lines() {
                    assert_eq!(l.len(), hex_len, "{method}: {l}");
                    assert!(l
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                }
                let back = run_ok(
                    &["map", "--method", method, "--key-file", ks, "--reverse"],
                    out,
                );
                let back = String::from_utf8(back).unwrap();
                let n = back
                    .lines()
                    .zip(pairs)
                    .filter(|(b, (a, _))| norm(b) == norm(a))
                    .count();
                assert_eq!(n, pairs.len(), "{method}: reverse after forward");
            }
        }
        // A line that is not a ciphertext: exit 1 naming the line.
        let k = key_file(dir.path(), "bad.key", &rows[0][col(&h, "key_hex")]);
        let o = run(
            &[
                "map",
                "--method",
                method,
                "--key-file",
                k.to_str().unwrap(),
                "--reverse",
            ],
            b"00\n",
        );
        assert_eq!(o.status.code(), Some(1), "{method}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"));
        // Ciphertexts are not addresses: `wash` refuses with a usage error.
        let o = run(
            &[
                "wash",
                root().join("testdata/sample-dns.pcap").to_str().unwrap(),
                "-o",
                dir.path().join("x.pcap").to_str().unwrap(),
                "--method",
                method,
                "--key-file",
                k.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(o.status.code(), Some(2), "{method}: wash refuses");
        assert!(!dir.path().join("x.pcap").exists());
    }
}

/// Client addresses of the queries (UDP to port 53) in a generated capture:
/// (queries, distinct clients).
fn synth_clients(args: &[&str]) -> (usize, usize) {
    let mut a = vec!["synth", "-o", "-", "--packets", "4000"];
    a.extend_from_slice(args);
    let cap = common::run_ok(&a, b"");
    let mut at = 24;
    let mut seen = std::collections::HashSet::new();
    let mut queries = 0;
    while at + 16 <= cap.len() {
        let len = u32::from_le_bytes(cap[at + 8..at + 12].try_into().unwrap()) as usize;
        let f = &cap[at + 16..at + 16 + len];
        let (src, udp) = match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 => (&f[26..30], 34),
            0x86dd => (&f[22..38], 54),
            et => panic!("ethertype {et:#x}"),
        };
        if u16::from_be_bytes([f[udp + 2], f[udp + 3]]) == 53 {
            queries += 1;
            seen.insert(src.to_vec());
        }
        at += 16 + len;
    }
    assert_eq!(at, cap.len());
    (queries, seen.len())
}

#[test]
fn synth_random_clients_are_all_new() {
    let (q, distinct) = synth_clients(&["--random-clients"]);
    assert_eq!(q, 2000);
    assert_eq!(distinct, q, "every query from a new client");
    // The default draws from --clients Zipf-distributed ones.
    let (q, distinct) = synth_clients(&["--clients", "100"]);
    assert_eq!(q, 2000);
    assert!(distinct <= 100 && distinct > 10, "{distinct}");
}
