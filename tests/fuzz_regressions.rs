//! Inputs found by the fuzz targets in `fuzz/`, kept as regression tests
//! (each names its target and what went wrong).

use ipwash::packet::{locate, locate_general, locate_plain, patch, DropReason, Located};

/// Ethernet + IPv4 + TCP from 192.0.2.1 to 198.51.100.7, with the given
/// IPv4 header and TCP checksum fields (not computed: the walker does not
/// check them, and a stored 0xffff is what the finding needs).
fn tcp_packet(ip_ck: u16, tcp_ck: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    p.extend_from_slice(&[0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6]);
    p.extend_from_slice(&ip_ck.to_be_bytes());
    p.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
    p.extend_from_slice(&[
        0xc0, 0x01, 0, 53, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff,
    ]);
    p.extend_from_slice(&tcp_ck.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// fuzz target `locate`: writing an address back unchanged turned a stored
/// TCP checksum of 0xffff into 0x0000 (RFC 1624 eqn. 3 with a change of
/// zero maps one zero of one's complement onto the other), so a packet whose
/// address maps to itself (a truncated address already truncated, a
/// keep-list) came out different from its input.
#[test]
fn unchanged_address_leaves_checksums_byte_identical() {
    for (ip_ck, tcp_ck) in [(0xffff, 0xffff), (0x1234, 0xffff), (0xffff, 0x0000), (0, 0)] {
        let pkt = tcp_packet(ip_ck, tcp_ck);
        let mut loc = Located::new();
        locate(1, &pkt, &mut loc).expect("a plain TCP packet");
        assert_eq!(loc.slots.len(), 2);
        assert!(!loc.checksums.is_empty());
        let mut p = pkt.clone();
        for (i, s) in loc.slots.iter().enumerate() {
            let old = pkt[s.range()].to_vec();
            patch(&mut p, &loc, i, &old);
        }
        assert_eq!(p, pkt, "checksums {ip_ck:#06x}/{tcp_ck:#06x}");

        // A new address with the same one's complement sum (its two 16-bit
        // words swapped) needs no checksum change either.
        let mut q = pkt.clone();
        patch(&mut q, &loc, 0, &[2, 1, 192, 0]);
        assert_eq!(&q[26..30], &[2, 1, 192, 0]);
        assert_eq!(&q[24..26], &pkt[24..26], "IPv4 header checksum");
        assert_eq!(&q[50..52], &pkt[50..52], "TCP checksum");
    }
}

/// The same packet with a real change still gets its checksums updated.
#[test]
fn changed_address_still_updates_checksums() {
    let pkt = tcp_packet(0x1234, 0x4321);
    let mut loc = Located::new();
    locate(1, &pkt, &mut loc).expect("a plain TCP packet");
    let mut p = pkt.clone();
    patch(&mut p, &loc, 0, &[192, 0, 2, 2]);
    // One more in the low byte: each checksum one less (RFC 1624).
    assert_eq!(u16::from_be_bytes([p[24], p[25]]), 0x1233);
    assert_eq!(u16::from_be_bytes([p[50], p[51]]), 0x4320);
}

/// fuzz target `plain_vs_general`: a Linux cooked (SLL) header with
/// protocol 0 in front of an IPv4/UDP/DNS packet. The walker refuses it as
/// not IP; the shortcut took protocol 0 as "look at the IP version", as for
/// raw IP, and washed it.
#[test]
fn cooked_header_protocol_zero_is_left_to_the_walker() {
    let pkt: &[u8] = &[
        0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 0x00, 0x67, 0x30, 0x08, 0x00, 0x49, 0x9f, 0x51, 0x00,
        0x00, 0x45, 0x00, 0x00, 0x33, 0xc5, 0x56, 0x00, 0x00, 0x40, 0x11, 0x31, 0x13, 0xc0, 0xa8,
        0x01, 0x02, 0xc0, 0xa8, 0x02, 0x05, 0xd0, 0x81, 0x00, 0x35, 0x00, 0x1f, 0xb9, 0x79, 0x12,
        0xf2, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x6c, 0x6f, 0x63,
        0x61, 0x6c, 0x00, 0x00, 0x06, 0x00, 0x01,
    ];
    let (mut a, mut b, mut c) = (Located::new(), Located::new(), Located::new());
    assert_eq!(locate_general(113, pkt, &mut b), Err(DropReason::NonIp));
    assert_eq!(locate(113, pkt, &mut a), Err(DropReason::NonIp));
    assert_eq!(a, b);
    assert!(!locate_plain(113, pkt, &mut c), "the shortcut must decline");
    assert_eq!(c, Located::new());
    // The same bytes from protocol 0x0800 on are plain IPv4 for both.
    let mut ip = pkt.to_vec();
    ip[14..16].copy_from_slice(&[0x08, 0x00]);
    assert!(locate_plain(113, &ip, &mut c));
    assert_eq!(locate_general(113, &ip, &mut b), Ok(()));
    assert_eq!(c, b);
}

/// fuzz target `state_csv`: a state file whose IPv6 table holds an
/// IPv4-mapped original (`::ffff:10.0.0.1,::3`) was loaded, but under the
/// default `--mapped ipv4` such an address is washed through the IPv4 table,
/// so the stored pair was silently never used. It is refused now.
#[test]
fn state_with_an_ipv4_mapped_original_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("s.csv");
    std::fs::write(
        &st,
        "kind,family,original,replacement\nparam,,method,enumerate\n\
         param,,numbering,dnswasher\ncounter,ipv4,,4\ncounter,ipv6,,4\n\
         pair,ipv4,192.0.2.1,0.0.0.0\npair,ipv4,198.51.100.7,1.0.0.0\n\
         pair,ipv6,2001:db8::1,::2\npair,ipv6,::ffff:10.0.0.1,::3\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_ipwash");
    let run = |extra: &[&str]| {
        let mut c = std::process::Command::new(bin);
        c.args([
            "map",
            "--method",
            "enumerate",
            "--numbering",
            "dnswasher",
            "--state",
        ])
        .arg(&st)
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        // A refused state ends the process before it reads: the pipe may be
        // closed already.
        let _ = ch.stdin.take().unwrap().write_all(b"::ffff:10.0.0.1\n");
        ch.wait_with_output().unwrap()
    };
    let o = run(&[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("IPv4-mapped"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Under --mapped native the pair is the one used.
    let o = run(&["--mapped", "native"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "::3");
}

/// key_file: a key text holding the words of the error message ("at
/// posi...") made the fuzz oracle take the message for a copy of the key.
/// The message is the fixed text with numbers: it never holds the key.
#[test]
fn key_error_is_the_fixed_text() {
    let data = std::fs::read(fuzz_input("key_file-template-words.bin")).unwrap();
    let text = String::from_utf8(data).unwrap();
    let e = ipwash_algorithms::Key::<16>::from_hex(&text).unwrap_err();
    let bare: String = e
        .to_string()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    assert_eq!(bare, "key is not valid hex (bad character at position )");
    assert!(!e.to_string().contains(text.trim()));
}

/// key_file: a binary key file holding words of the error message ("ata);
/// a ") made the fuzz oracle take the message for a copy of the key. Run as
/// a user would: the refusal is the fixed text, naming the file and its
/// size, and shows nothing of the file.
#[test]
fn binary_key_file_error_is_the_fixed_text() {
    let key = fuzz_input("key_file-binary-template-words.bin");
    let data = std::fs::read(&key).unwrap();
    let o = map_with_key_file(&key);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let msg = err.replace(&key.display().to_string(), "");
    let bare: String = msg.chars().filter(|c| !c.is_ascii_digit()).collect();
    assert_eq!(
        bare.trim(),
        "ipwash: key file  is not hex text ( bytes of binary data); a key file holds  hex \
         digits, as `ipwash keygen` writes"
    );
    assert!(err.contains(&format!("({} bytes of binary data)", data.len())));
    // No run of 16 bytes of the file is in the message.
    for w in data.windows(16) {
        assert!(!err.as_bytes().windows(16).any(|x| x == w));
    }
}

/// key_file: 64 hex digits between U+0085 (NEL) characters were a key to
/// `Key::from_hex` (which trimmed Unicode whitespace) but not to the key
/// file reader (which takes ASCII text only). Both now refuse it: only
/// ASCII whitespace around a key is ignored.
#[test]
fn key_between_unicode_spaces_is_refused_everywhere() {
    let key = fuzz_input("key_file-unicode-space.bin");
    let text = String::from_utf8(std::fs::read(&key).unwrap()).unwrap();
    assert!(text.contains('\u{85}'));
    assert!(ipwash_algorithms::Key::<32>::from_hex(&text).is_err());
    // The same digits with ASCII whitespace around them are a key.
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    assert!(ipwash_algorithms::Key::<32>::from_hex(&format!(" \t{digits}\r\n")).is_ok());
    let o = map_with_key_file(&key);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not hex text"));
}

/// An input kept from a fuzz finding, in `testdata/fuzz/`.
fn fuzz_input(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz")
        .join(name)
}

/// `ipwash map --method cryptopan --key-file KEY`, with nothing on stdin.
fn map_with_key_file(key: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ipwash"))
        .args(["map", "--method", "cryptopan", "--key-file"])
        .arg(key)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}
