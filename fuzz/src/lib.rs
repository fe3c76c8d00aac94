//! Shared pieces of the fuzz targets: the link-type table the packet
//! targets draw from, fixed keys written once to temporary key files, and
//! the washers the targets wash under.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use ipwash::method::{self, Built, Method, MethodArgs};
use ipwash::wash::{KeepPrefix, Scope, StatefulTech, Technique, Washer};
use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::truncate::{TruncMode, Truncate};
use ipwash_algorithms::Key;

/// The link types `locate` understands; the packet targets take the first
/// input byte modulo this table's length as the link type (the seed script
/// writes the same index).
pub const LINKTYPES: [u32; 10] = [1, 0, 12, 14, 101, 108, 113, 228, 229, 276];

/// Split a packet-target input into its link type and packet bytes.
pub fn linktype_and_packet(data: &[u8]) -> Option<(u32, &[u8])> {
    let (&sel, pkt) = data.split_first()?;
    Some((LINKTYPES[usize::from(sel) % LINKTYPES.len()], pkt))
}

/// A fixed 32-byte test key.
pub const KEY32: &str = "15e7c1b2d3a4f50617e8c9dab0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3";
/// A 16-byte test key.
pub const KEY16: &str = "2b7e151628aed2a6abf7158809cf4f3c";

/// A key file holding `hex`, written once per process in the temp folder.
pub fn key_file(name: &str, hex: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ipwash-fuzz-{}-{name}.key", std::process::id()));
    if !p.exists() {
        std::fs::write(&p, hex).expect("write the fuzz key file");
    }
    p
}

/// Method options as the command line would give them.
pub fn method_args(method: Method, key: Option<PathBuf>) -> MethodArgs {
    MethodArgs {
        method,
        key_file: key,
        passphrase_file: None,
        // Unset method options take the method's defaults (a set option of
        // another method would be refused).
        ipv4_prefix: None,
        ipv6_prefix: None,
        reverse_truncation: false,
        black_marker: false,
        numbering: None,
        preserve_class: false,
        tsa_pool: None,
        pass4: 0,
        pass6: 0,
        mapped: ipwash::wash::Mapped::Ipv4,
    }
}

/// The technique the options describe, as a washer (panics on other kinds).
pub fn built_washer(args: &MethodArgs) -> Washer {
    match method::build(args) {
        Ok(Built::Map {
            technique, info, ..
        }) => {
            let mut w = Washer::new(technique);
            w.info = info;
            w
        }
        _ => panic!("{:?} does not build an address map", args.method),
    }
}

/// Washers the data targets run under: a keyed cipher with every address in
/// scope, truncation of the client side with a keep-list, and a stateful
/// numbering. Fresh ones each call (stateful tables start empty).
pub fn washers() -> Vec<Washer> {
    // Crypto-PAn's tables take a while to build: one map, shared (it is
    // stateless, so sharing it changes no result).
    static CP: OnceLock<Arc<CryptoPan>> = OnceLock::new();
    let map = CP.get_or_init(|| {
        Arc::new(CryptoPan::new(&Key::new(
            *b"0123456789abcdef0123456789abcdef",
        )))
    });
    let cp = Washer::new(Technique::Stateless(map.clone()));
    let mut tr = Washer::new(Technique::Stateless(Arc::new(
        Truncate::new(24, 48, TruncMode::Keep).expect("prefixes"),
    )));
    tr.scope = Scope::Clients;
    tr.keep
        .push(KeepPrefix::parse("10.1.0.0/16").expect("prefix"));
    let en = Washer::new(Technique::Stateful(Box::new(StatefulTech::Enumerate(
        Enumerate::new(Numbering::Sequential),
    ))));
    vec![cp, tr, en]
}
