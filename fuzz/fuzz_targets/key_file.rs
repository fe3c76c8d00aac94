//! Key files: the hex parser for 16- and 32-byte keys, and reading a key
//! file from disk. Oracles: no panic; a key is accepted exactly when the
//! text (surrounding whitespace ignored) is 2N hex digits, and then holds
//! those bytes; an error message is one of the fixed texts (numbers and
//! the file's path aside), so it never repeats the key text.
#![no_main]

use ipwash::method::read_key;
use ipwash_algorithms::Key;
use libfuzzer_sys::fuzz_target;

/// The errors of `Key::from_hex`, digits removed.
const HEX_ERRORS: [&str; 2] = [
    "key must be  bytes ( hex digits), found  bytes",
    "key is not valid hex (bad character at position )",
];

/// The errors of `read_key` for a file that is not text, path and digits
/// removed (for text it is `key file PATH: ` and one of [`HEX_ERRORS`]).
const BINARY_ERRORS: [&str; 2] = [
    "key file  is not hex text ( bytes of binary data); a key file holds  hex digits, \
     as `ipwash keygen` writes",
    "key file  is not hex text ( bytes of binary data, which looks like a raw -byte key: \
     store it as hex (`xxd -p -c `)); a key file holds  hex digits, as `ipwash keygen` writes",
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check<const N: usize>(text: &str) {
    let t = text.trim_ascii();
    let valid = t.len() == 2 * N && t.bytes().all(|c| c.is_ascii_hexdigit());
    match Key::<N>::from_hex(text) {
        Ok(k) => {
            assert!(valid, "accepted {text:?} as a {N}-byte key");
            assert_eq!(hex(k.bytes()), t.to_ascii_lowercase());
        }
        Err(e) => {
            assert!(!valid, "refused a valid {N}-byte key: {e}");
            // The message is one of the fixed texts with numbers in it,
            // so nothing of the key text is in it (a window of the key that
            // happens to read like the fixed text is not a leak).
            let msg = e.to_string();
            let bare: String = msg.chars().filter(|c| !c.is_ascii_digit()).collect();
            assert!(
                HEX_ERRORS.contains(&bare.as_str()),
                "the error {msg:?} is not one of the fixed texts"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check::<16>(text);
        check::<32>(text);
    }
    // The same bytes through a file, as `--key-file` reads them (one input
    // in eight: writing a file costs more than the parse).
    if !data.len().is_multiple_of(8) {
        return;
    }
    let p = std::env::temp_dir().join(format!("ipwash-fuzz-{}-input.key", std::process::id()));
    std::fs::write(&p, data).expect("write the key file");
    let from_file = read_key::<32>(&p).map(|k| *k.bytes());
    let direct = std::str::from_utf8(data)
        .ok()
        .and_then(|t| Key::<32>::from_hex(t).ok())
        .map(|k| *k.bytes());
    assert_eq!(from_file.as_ref().ok(), direct.as_ref());
    if let Err(e) = from_file {
        // The message is the path plus one of the fixed texts with numbers
        // in it: no part of the key text can be in it (a key holding the
        // message's own words is not a leak).
        let msg = e.to_string().replace(&p.display().to_string(), "");
        let bare: String = msg.chars().filter(|c| !c.is_ascii_digit()).collect();
        assert!(
            BINARY_ERRORS.contains(&bare.as_str())
                || bare
                    .strip_prefix("key file : ")
                    .is_some_and(|e| HEX_ERRORS.contains(&e)),
            "the error {msg:?} is not one of the fixed texts"
        );
    }
});
