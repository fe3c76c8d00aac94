//! The `ipwash map` line loop and line parser on arbitrary input, through a
//! reversible map, the deterministic ipcrypt mode and the non-deterministic
//! hex decoders.
//!
//! Oracles: no panic; never more lines than the input holds (records out <=
//! records in), numbered 1, 2, 3...; a line that parses prints as an address
//! that parses back to itself; the map reverses (Crypto-PAn, ipcrypt-pfx,
//! ipcrypt-deterministic); the non-deterministic modes decrypt what they
//! encrypt.
#![no_main]

use std::io::Cursor;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipwash::cli::for_each_line;
use ipwash::method::{self, parse_addr, Built, Method};
use ipwash_fuzz::{key_file, method_args, KEY16, KEY32};
use libfuzzer_sys::fuzz_target;

struct Maps {
    reversible: Vec<std::sync::Arc<dyn ipwash_algorithms::Reversible>>,
    det: Box<ipwash_algorithms::ipcrypt_det::IpcryptDeterministic>,
    nd: Vec<method::NdCipher>,
}

fn maps() -> &'static Maps {
    static M: OnceLock<Maps> = OnceLock::new();
    M.get_or_init(|| {
        let k32 = key_file("map32", KEY32);
        let k16 = key_file("map16", KEY16);
        let build = |m: Method, k: &std::path::Path| {
            method::build(&method_args(m, Some(k.to_path_buf()))).expect("build")
        };
        let mut reversible = Vec::new();
        for m in [Method::Cryptopan, Method::IpcryptPfx] {
            if let Built::Map {
                reversible: Some(r),
                ..
            } = build(m, &k32)
            {
                reversible.push(r);
            }
        }
        let Built::Deterministic(det) = build(Method::IpcryptDeterministic, &k16) else {
            panic!("ipcrypt-deterministic")
        };
        let mut nd = Vec::new();
        for (m, k) in [(Method::IpcryptNd, &k16), (Method::IpcryptNdx, &k32)] {
            if let Built::NonDeterministic(c) = build(m, k) {
                nd.push(c);
            }
        }
        Maps {
            reversible,
            det,
            nd,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let m = maps();
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let mut lines = 0u64;
    let mut text = String::new();
    let _ = for_each_line(Cursor::new(data), |n, line| {
        lines += 1;
        assert_eq!(n, lines, "line numbers skip");
        assert!(!line.ends_with('\n'));
        for c in &m.nd {
            let _ = c.decrypt_hex(line);
        }
        let Some(a) = parse_addr(line) else {
            return Ok(());
        };
        assert_eq!(
            parse_addr(&a.to_string()),
            Some(a),
            "{a} does not print back"
        );
        for r in &m.reversible {
            match a {
                IpAddr::V4(v) => assert_eq!(r.unmap_v4(r.map_v4(v)), v),
                IpAddr::V6(v) => assert_eq!(r.unmap_v6(r.map_v6(v)), v),
            }
        }
        assert_eq!(canon(m.det.decrypt(m.det.encrypt(a))), canon(a));
        for c in &m.nd {
            text.clear();
            c.encrypt_hex(a, &[0x11; 16], &mut text);
            assert_eq!(c.decrypt_hex(&text).map(canon), Some(canon(a)));
        }
        Ok(())
    });
    assert!(
        lines as usize <= newlines + 1,
        "more lines than the input holds"
    );
});

/// IPv4 addresses come back from the 16-byte ciphers as IPv4-mapped IPv6
/// or as IPv4; compare both as IPv6.
fn canon(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V6(v.to_ipv6_mapped()),
        v => v,
    }
}
