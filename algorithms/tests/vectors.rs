//! Known-answer tests: every row of every published vector file in
//! `testdata/vectors/` (see each file's `# source:` line) is checked forward
//! and, where the technique is reversible, backward. Batch entry points are
//! checked against the same rows.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::ipcipher::{self, IpCipher};
use ipwash_algorithms::ipcrypt_det::IpcryptDeterministic;
use ipwash_algorithms::ipcrypt_nd::{IpcryptNd, IpcryptNdx};
use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
use ipwash_algorithms::{AddrMap, Key, Reversible};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

/// Rows of a vector file as column-name -> value maps; `#` lines skipped.
fn rows(rel: &str) -> Vec<HashMap<String, String>> {
    let path = vectors_dir().join(rel);
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = rdr.headers().expect("header row").clone();
    let out: Vec<_> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{rel}: {e}"));
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    assert!(!out.is_empty(), "{rel} has no rows");
    out
}

fn col<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name)
        .unwrap_or_else(|| panic!("missing column {name} in {row:?}"))
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Every file in the directory is covered by a test below.
#[test]
fn every_vector_file_is_checked() {
    let known = [
        "cryptopan/ipv4_reference_sample_trace.csv",
        "cryptopan/ipv4_refkey_200.csv",
        "cryptopan/ipv6_refkey_200.csv",
        "cryptopan/other_keys.csv",
        "ipcipher.csv",
        "ipcipher_kdf.csv",
        "ipcrypt_original.csv",
        "ipcrypt_deterministic.csv",
        "ipcrypt_pfx.csv",
        "ipcrypt_nd.csv",
        "ipcrypt_ndx.csv",
        // Our own golden vectors, checked by the unit tests in `tsa.rs`.
        "tsa_v1.csv",
    ];
    let mut found = Vec::new();
    let mut stack = vec![vectors_dir()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("vectors dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                let rel = p.strip_prefix(vectors_dir()).expect("prefix");
                found.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    for f in &found {
        assert!(known.contains(&f.as_str()), "unchecked vector file {f}");
    }
    assert_eq!(found.len(), known.len(), "{found:?}");
}

/// Check an `AddrMap + Reversible` against key,input,output rows, one at a
/// time and in batches per key.
fn check_map_rows<M: Reversible>(rel: &str, make: impl Fn(&str) -> M) {
    let mut maps: HashMap<String, M> = HashMap::new();
    // Per key: the v4 and v6 (input, expected) pairs, for the batch check.
    type Pairs<T> = Vec<(T, T)>;
    let mut by_key: BTreeMap<String, (Pairs<Ipv4Addr>, Pairs<Ipv6Addr>)> = BTreeMap::new();
    let all = rows(rel);
    for row in &all {
        let key = col(row, "key_hex").to_string();
        let m = maps.entry(key.clone()).or_insert_with(|| make(&key));
        let entry = by_key.entry(key).or_default();
        match (ip(col(row, "input")), ip(col(row, "output"))) {
            (IpAddr::V4(i), IpAddr::V4(o)) => {
                assert_eq!(m.map_v4(i), o, "{rel}: {row:?}");
                assert_eq!(m.unmap_v4(o), i, "{rel}: reverse {row:?}");
                entry.0.push((i, o));
            }
            (IpAddr::V6(i), IpAddr::V6(o)) => {
                assert_eq!(m.map_v6(i), o, "{rel}: {row:?}");
                assert_eq!(m.unmap_v6(o), i, "{rel}: reverse {row:?}");
                entry.1.push((i, o));
            }
            _ => panic!("{rel}: family changes in {row:?}"),
        }
    }
    for (key, (v4, v6)) in &by_key {
        let m = &maps[key];
        let mut b4: Vec<Ipv4Addr> = v4.iter().map(|p| p.0).collect();
        m.map_v4_batch(&mut b4);
        assert!(b4.iter().zip(v4).all(|(b, p)| *b == p.1), "{rel} v4 batch");
        let mut b6: Vec<Ipv6Addr> = v6.iter().map(|p| p.0).collect();
        m.map_v6_batch(&mut b6);
        assert!(b6.iter().zip(v6).all(|(b, p)| *b == p.1), "{rel} v6 batch");
    }
    eprintln!("{rel}: {} rows ok", all.len());
}

#[test]
fn cryptopan_vectors() {
    for rel in [
        "cryptopan/ipv4_reference_sample_trace.csv",
        "cryptopan/ipv4_refkey_200.csv",
        "cryptopan/ipv6_refkey_200.csv",
        "cryptopan/other_keys.csv",
    ] {
        check_map_rows(rel, |k| CryptoPan::new(&Key::from_hex(k).expect("key")));
    }
}

#[test]
fn ipcrypt_pfx_vectors() {
    check_map_rows("ipcrypt_pfx.csv", |k| {
        IpcryptPfx::new(&Key::from_hex(k).expect("key")).expect("valid key")
    });
}

#[test]
fn ipcipher_kdf_vectors() {
    for row in rows("ipcipher_kdf.csv") {
        assert_eq!(col(&row, "salt").as_bytes(), ipcipher::KDF_SALT);
        assert_eq!(
            col(&row, "iterations").parse::<u32>().expect("iterations"),
            ipcipher::KDF_ITERATIONS
        );
        let k = ipcipher::key_from_passphrase(col(&row, "passphrase").as_bytes());
        assert_eq!(k.bytes().to_vec(), hex(col(&row, "key_hex")), "{row:?}");
    }
}

/// Apply ipcrypt `n` times forward and then `n` times backward. The 10^8
/// round row appears in two files; its results are computed once.
fn check_ipcrypt_iterated(key: &[u8; 16], n: u64, input: Ipv4Addr, output: Ipv4Addr, what: &str) {
    type Cache = Mutex<HashMap<([u8; 16], u64, [u8; 4], bool), [u8; 4]>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let run = |x: [u8; 4], forward: bool| -> [u8; 4] {
        let cache = CACHE.get_or_init(Default::default);
        // Hold the lock while computing so the two tests share the work.
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((*key, n, x, forward)).or_insert_with(|| {
            if forward {
                ipcipher::ipcrypt_encrypt_iterated(key, x, n)
            } else {
                ipcipher::ipcrypt_decrypt_iterated(key, x, n)
            }
        })
    };
    assert_eq!(Ipv4Addr::from(run(input.octets(), true)), output, "{what}");
    assert_eq!(
        Ipv4Addr::from(run(output.octets(), false)),
        input,
        "{what}: reverse"
    );
    if n == 1 {
        assert_eq!(
            Ipv4Addr::from(ipcipher::ipcrypt_encrypt(key, input.octets())),
            output
        );
        assert_eq!(
            Ipv4Addr::from(ipcipher::ipcrypt_decrypt(key, output.octets())),
            input
        );
    }
}

#[test]
fn ipcipher_vectors() {
    let mut derived: HashMap<String, Vec<u8>> = HashMap::new();
    for row in rows("ipcipher.csv") {
        let key_hex = col(&row, "key_hex");
        let pass = col(&row, "passphrase");
        if !pass.is_empty() {
            let k = derived.entry(pass.to_string()).or_insert_with(|| {
                ipcipher::key_from_passphrase(pass.as_bytes())
                    .bytes()
                    .to_vec()
            });
            assert_eq!(*k, hex(key_hex), "KDF for {row:?}");
        }
        let key = Key::<16>::from_hex(key_hex).expect("key");
        let c = IpCipher::new(&key);
        let n: u64 = col(&row, "iterations").parse().expect("iterations");
        match (ip(col(&row, "input")), ip(col(&row, "output"))) {
            (IpAddr::V4(i), IpAddr::V4(o)) => {
                if n == 1 {
                    assert_eq!(c.map_v4(i), o, "{row:?}");
                    assert_eq!(c.unmap_v4(o), i, "{row:?}");
                }
                check_ipcrypt_iterated(key.bytes(), n, i, o, &format!("{row:?}"));
            }
            (IpAddr::V6(i), IpAddr::V6(o)) => {
                assert_eq!(n, 1, "iterated IPv6 rows are not expected");
                assert_eq!(c.map_v6(i), o, "{row:?}");
                assert_eq!(c.unmap_v6(o), i, "{row:?}");
                let mut b = [i; 3];
                c.map_v6_batch(&mut b);
                assert_eq!(b, [o; 3], "{row:?} batch");
            }
            _ => panic!("family changes in {row:?}"),
        }
    }
}

#[test]
fn ipcrypt_original_vectors() {
    for row in rows("ipcrypt_original.csv") {
        let key = Key::<16>::from_hex(col(&row, "key_hex")).expect("key");
        let ascii = col(&row, "key_ascii");
        if !ascii.is_empty() {
            assert_eq!(ascii.as_bytes(), key.bytes(), "{row:?}");
        }
        let n: u64 = col(&row, "iterations").parse().expect("iterations");
        let (IpAddr::V4(i), IpAddr::V4(o)) = (ip(col(&row, "input")), ip(col(&row, "output")))
        else {
            panic!("ipcrypt is IPv4 only: {row:?}");
        };
        check_ipcrypt_iterated(key.bytes(), n, i, o, &format!("{row:?}"));
    }
}

#[test]
fn ipcrypt_deterministic_vectors() {
    for row in rows("ipcrypt_deterministic.csv") {
        let c = IpcryptDeterministic::new(&Key::from_hex(col(&row, "key_hex")).expect("key"));
        let input = ip(col(&row, "input"));
        let output: Ipv6Addr = col(&row, "output").parse().expect("output");
        assert_eq!(c.encrypt(input), output, "{row:?}");
        assert_eq!(c.decrypt(output), input, "{row:?} reverse");
        let mut out = [Ipv6Addr::UNSPECIFIED; 2];
        c.encrypt_batch(&[input, input], &mut out);
        assert_eq!(out, [output; 2], "{row:?} batch");
    }
}

#[test]
fn ipcrypt_nd_vectors() {
    for row in rows("ipcrypt_nd.csv") {
        let c = IpcryptNd::new(&Key::from_hex(col(&row, "key_hex")).expect("key"));
        let mut tweak = [0u8; 8];
        tweak.copy_from_slice(&hex(col(&row, "tweak_hex")));
        let mut expected = [0u8; 24];
        expected.copy_from_slice(&hex(col(&row, "output_hex")));
        let input = ip(col(&row, "input"));
        assert_eq!(c.encrypt_with_tweak(input, tweak), expected, "{row:?}");
        assert_eq!(c.decrypt(&expected), input, "{row:?} reverse");
    }
}

#[test]
fn ipcrypt_ndx_vectors() {
    for row in rows("ipcrypt_ndx.csv") {
        let c = IpcryptNdx::new(&Key::from_hex(col(&row, "key_hex")).expect("key"));
        let mut tweak = [0u8; 16];
        tweak.copy_from_slice(&hex(col(&row, "tweak_hex")));
        let mut expected = [0u8; 32];
        expected.copy_from_slice(&hex(col(&row, "output_hex")));
        let input = ip(col(&row, "input"));
        assert_eq!(c.encrypt_with_tweak(input, tweak), expected, "{row:?}");
        assert_eq!(c.decrypt(&expected), input, "{row:?} reverse");
    }
}

/// cryptopANT: every line of every published output file and of the
/// `scramble_ips --pass4/--pass6` outputs, forward and reverse, for the four
/// key types (see `testdata/vectors/cryptopant/README.md`).
#[test]
fn cryptopant_every_vector_line() {
    use ipwash_algorithms::cryptopant::{CryptoPant, KeyFile};
    let dir = vectors_dir().join("cryptopant");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .lines()
            .map(|l| {
                l.parse::<IpAddr>()
                    .unwrap_or_else(|e| panic!("{name}: {l}: {e}"))
            })
            .collect::<Vec<_>>()
    };
    let mut files = 0;
    let mut lines = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some((fam, rest)) = name.split_once(".anon.") else {
            continue;
        };
        let (ty, pass) = match rest.split_once('.') {
            Some((ty, p)) => (ty, p),
            None => (rest, ""),
        };
        let bits: u8 = pass.rsplit_once('-').map_or(0, |(_, n)| n.parse().unwrap());
        let (p4, p6) = match pass.split_once('-').map(|x| x.0) {
            Some("pass4") => (bits, 0),
            Some("pass6") => (0, bits),
            None => (0, 0),
            Some(o) => panic!("{name}: unknown option {o}"),
        };
        let kf = KeyFile::parse(&std::fs::read(dir.join(format!("keyfile.{ty}"))).unwrap())
            .unwrap_or_else(|e| panic!("keyfile.{ty}: {e}"));
        let c = CryptoPant::new(&kf, p4, p6).unwrap();
        let input = read(fam);
        let want = read(&name);
        assert_eq!(input.len(), want.len(), "{name}");
        for (n, (a, w)) in input.iter().zip(&want).enumerate() {
            let (got, back) = match (a, w) {
                (IpAddr::V4(a), IpAddr::V4(w)) => {
                    (IpAddr::V4(c.map_v4(*a)), IpAddr::V4(c.unmap_v4(*w)))
                }
                (IpAddr::V6(a), IpAddr::V6(w)) => {
                    (IpAddr::V6(c.map_v6(*a)), IpAddr::V6(c.unmap_v6(*w)))
                }
                _ => panic!("{name} line {}: families differ", n + 1),
            };
            assert_eq!(got, *w, "{name} line {}: forward of {a}", n + 1);
            assert_eq!(back, *a, "{name} line {}: reverse of {w}", n + 1);
            if let (IpAddr::V4(a), IpAddr::V4(w)) = (a, w) {
                // The documented quirk: class bits kept even with no pass bits.
                let top = u32::from(*a) >> 28;
                let keep = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 32][top as usize];
                let keep = keep.max(u32::from(p4));
                let m = u32::MAX.checked_shl(32 - keep).unwrap_or(0);
                assert_eq!(
                    u32::from(*a) & m,
                    u32::from(*w) & m,
                    "{name} line {}",
                    n + 1
                );
            }
            lines += 1;
        }
        files += 1;
    }
    assert_eq!((files, lines), (16, 16_000));
}
