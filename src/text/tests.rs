//! Tests of the text washer on generated lines: the property that random
//! text with addresses spliced in comes back with exactly those spans
//! replaced, and the formats' handling of fields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipwash_algorithms::AddrMap;
use proptest::prelude::*;

use super::formats::{Spec, Worker};
use super::runner::{wash_bytes, TextRun};
use super::{Format, OnError};
use crate::pipeline::CompressArg;
use crate::wash::{mask_ip, Technique, Washer};

/// Every bit flipped: a known, prefix-preserving map.
struct Flip;
impl AddrMap for Flip {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(!u32::from(a))
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(!u128::from(a))
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

fn flip(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Flip.map_v4(v)),
        IpAddr::V6(v) => IpAddr::V6(Flip.map_v6(v)),
    }
}

fn washer() -> Washer {
    Washer::new(Technique::Stateless(Arc::new(Flip)))
}

fn run_with(format: Format, fields: &[&str], on_error: OnError, threads: usize) -> TextRun {
    let spec = Spec::new(
        format,
        fields.iter().map(|s| s.to_string()).collect(),
        None,
        on_error,
    );
    TextRun::new(washer(), threads, spec, false, CompressArg::None).unwrap()
}

fn wash(format: Format, fields: &[&str], input: &str) -> Result<String, String> {
    let mut r = run_with(format, fields, OnError::Fail, 1);
    wash_bytes(&mut r, input.as_bytes())
        .map(|o| String::from_utf8(o).unwrap())
        .map_err(|e| e.msg)
}

/// An address in one of the written forms: (text, expected text).
fn form(a: IpAddr, how: u8, port: u16, plen: u8) -> (String, String) {
    let f = flip(a);
    match (a, how % 9) {
        (IpAddr::V4(_), 0) | (IpAddr::V6(_), 0) => (a.to_string(), f.to_string()),
        (IpAddr::V4(_), 1) => (format!("{a}:{port}"), format!("{f}:{port}")),
        (IpAddr::V4(_), 2) => (format!("{a}#{port}"), format!("{f}#{port}")),
        (IpAddr::V4(v), 3) => (format!("::ffff:{v}"), format!("::ffff:{f}")),
        (IpAddr::V4(v), 4) => {
            let o = v.octets();
            let fo = match f {
                IpAddr::V4(x) => x.octets(),
                _ => unreachable!(),
            };
            (
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]),
                format!("{}.{}.{}.{}.in-addr.arpa", fo[3], fo[2], fo[1], fo[0]),
            )
        }
        (_, 5) => {
            let max = if a.is_ipv4() { 32 } else { 128 };
            let len = plen % max;
            let net = mask_ip(a, len);
            if net.is_ipv6() && net.is_unspecified() {
                // `::` alone is never taken for an address (rule 9).
                let t = format!("{net}/{len}");
                return (t.clone(), t);
            }
            (
                format!("{net}/{len}"),
                format!("{}/{len}", mask_ip(flip(net), len)),
            )
        }
        (IpAddr::V6(_), 1) => (format!("[{a}]:{port}"), format!("[{f}]:{port}")),
        (IpAddr::V6(_), 2) => (format!("{a}%eth0"), format!("{f}%eth0")),
        (IpAddr::V6(_), 3) => (a.to_string().to_uppercase(), f.to_string().to_uppercase()),
        (IpAddr::V6(v), 4) => {
            let s = v
                .segments()
                .iter()
                .map(|g| format!("{g:04x}"))
                .collect::<Vec<_>>()
                .join(":");
            (s, f.to_string())
        }
        (IpAddr::V6(v), 6) => {
            let x = u128::from(v);
            let fx = match f {
                IpAddr::V6(y) => u128::from(y),
                _ => unreachable!(),
            };
            let nib = |x: u128| {
                (0..32)
                    .map(|i| format!("{:x}", (x >> (4 * i)) & 15))
                    .collect::<Vec<_>>()
                    .join(".")
            };
            (
                format!("{}.ip6.arpa", nib(x)),
                format!("{}.ip6.arpa", nib(fx)),
            )
        }
        _ => (a.to_string(), f.to_string()),
    }
}

/// Filler that holds no address, some of it address-like.
const TRICKY: &[&str] = &[
    "9.18.28",
    "12:34:56",
    "12:34:56.789",
    "1.2.3.4.5",
    "v1.2.3.4",
    "00:11:22:33:44:55",
    "std::vector",
    "3.14159",
    "1.2.3.256",
    "2026-12-01T22:52:09Z",
    "@0x7f8b2c00a000",
    "example.com",
    "+E(0)K",
    "::",
];
const SEPS: &[&str] = &[
    " ", "  ", "\t", ", ", " (", ") ", " = ", " \"", "\" ", " [x] ",
];

fn addr_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|x| IpAddr::V4(Ipv4Addr::from(x))),
        any::<u128>()
            .prop_filter("not ::", |x| *x != 0)
            .prop_map(|x| IpAddr::V6(Ipv6Addr::from(x))),
        // Small IPv6 values: long runs of zeros, `::` forms.
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b))),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Word(String),
    Tricky(usize),
    Addr(IpAddr, u8, u16, u8),
}

fn piece_strategy() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[g-zG-Z0-9_-]{1,8}".prop_map(Piece::Word),
        (0..TRICKY.len()).prop_map(Piece::Tricky),
        (addr_strategy(), any::<u8>(), any::<u16>(), any::<u8>())
            .prop_map(|(a, h, p, l)| Piece::Addr(a, h, p, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn spliced_addresses_are_exactly_replaced(
        pieces in proptest::collection::vec((piece_strategy(), 0..SEPS.len()), 1..24),
        lines in 1usize..4,
    ) {
        let mut input = String::new();
        let mut expected = String::new();
        for l in 0..lines {
            for (i, (p, s)) in pieces.iter().enumerate() {
                if (i + l) % lines != 0 && lines > 1 && i % 3 == 0 {
                    continue;
                }
                let (a, b) = match p {
                    Piece::Word(w) => (w.clone(), w.clone()),
                    Piece::Tricky(t) => (TRICKY[*t].to_string(), TRICKY[*t].to_string()),
                    Piece::Addr(a, h, port, len) => form(*a, *h, *port, *len),
                };
                input.push_str(&a);
                expected.push_str(&b);
                input.push_str(SEPS[*s]);
                expected.push_str(SEPS[*s]);
            }
            input.push('\n');
            expected.push('\n');
        }
        let out = wash(Format::Plain, &[], &input).unwrap();
        prop_assert_eq!(out, expected);
    }
}

#[test]
fn lines_without_addresses_are_unchanged() {
    let text = "BIND 9.18.28-1~deb12u2-Debian (Extended Support Version)\n\
                zone example.com/IN: loaded serial 2026120101\n\
                12:34:56.789 mac 00:11:22:33:44:55 std::vector\n\
                no newline at the end";
    assert_eq!(wash(Format::Plain, &[], text).unwrap(), text);
    assert_eq!(wash(Format::Plain, &[], "").unwrap(), "");
}

#[test]
fn csv_keeps_quoting_and_selects_columns() {
    let input = "time,client,\"server addr\",note\r\n\
                 1,192.0.2.1,\"2001:db8::1\",\"said \"\"hi\"\" from 10.0.0.1\"\r\n\
                 2,\"192.0.2.2:53\",-,plain\r\n";
    // Default: every address anywhere.
    let all = wash(Format::Csv, &[], input).unwrap();
    let f = |s: &str| flip(s.parse().unwrap()).to_string();
    assert_eq!(
        all,
        format!(
            "time,client,\"server addr\",note\r\n\
             1,{},\"{}\",\"said \"\"hi\"\" from {}\"\r\n\
             2,\"{}:53\",-,plain\r\n",
            f("192.0.2.1"),
            f("2001:db8::1"),
            f("10.0.0.1"),
            f("192.0.2.2")
        )
    );
    // By name and by index: only those columns.
    for sel in [&["client", "server addr"][..], &["2", "3"][..]] {
        let some = wash(Format::Csv, sel, input).unwrap();
        assert_eq!(
            some,
            format!(
                "time,client,\"server addr\",note\r\n\
                 1,{},\"{}\",\"said \"\"hi\"\" from 10.0.0.1\"\r\n\
                 2,\"{}:53\",-,plain\r\n",
                f("192.0.2.1"),
                f("2001:db8::1"),
                f("192.0.2.2")
            )
        );
    }
    let err = wash(Format::Csv, &["nosuch"], input).unwrap_err();
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn csv_unreadable_lines_follow_on_error() {
    let input = "a,ip\n1,192.0.2.1\n2,garbage\n3\n4,\"192.0.2.9\n5,198.51.100.1\n";
    let err = wash(Format::Csv, &["ip"], input).unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    let go = |p: OnError| {
        let mut r = run_with(Format::Csv, &["ip"], p, 1);
        let o = String::from_utf8(wash_bytes(&mut r, input.as_bytes()).unwrap()).unwrap();
        (o, r.stats())
    };
    let (skip, st) = go(OnError::Skip);
    assert_eq!(skip, "a,ip\n1,63.255.253.254\n5,57.204.155.254\n");
    assert_eq!(st.skipped, 3);
    let (mark, st) = go(OnError::Mark);
    assert_eq!(
        mark,
        "a,ip\n1,63.255.253.254\n2,ipwash-unreadable\nipwash-unreadable\nipwash-unreadable\n5,57.204.155.254\n"
    );
    assert_eq!(st.marked, 3);
    let (pass, st) = go(OnError::Pass);
    assert_eq!(
        pass,
        "a,ip\n1,63.255.253.254\n2,garbage\n3\n4,\"192.0.2.9\n5,57.204.155.254\n"
    );
    assert_eq!(st.passed, 3);
}

#[test]
fn json_lines_change_only_the_values() {
    let input = concat!(
        r#"{"ts": 1.5, "id.orig_h":"192.0.2.1", "id": {"resp_h" :"2001:DB8::53"}, "answers":["example.com","198.51.100.7"], "n":null, "k":true}"#,
        "\n",
        r#"{"client":"192.0.2.1#4242","note":"from \u0031\u0039\u0032.0.2.1"}"#,
        "\n\n"
    );
    let f = |s: &str| flip(s.parse().unwrap()).to_string();
    let out = wash(Format::Json, &[], input).unwrap();
    let mut exp = input.to_string();
    exp = exp.replacen("\"192.0.2.1\"", &format!("\"{}\"", f("192.0.2.1")), 1);
    exp = exp.replace("2001:DB8::53", &f("2001:db8::53").to_uppercase());
    exp = exp.replace("198.51.100.7", &f("198.51.100.7"));
    exp = exp.replace("192.0.2.1#", &format!("{}#", f("192.0.2.1")));
    exp = exp.replace(
        r#""from \u0031\u0039\u0032.0.2.1""#,
        &format!("\"from {}\"", f("192.0.2.1")),
    );
    assert_eq!(out, exp);
    // Selected paths: a flat dotted key and a nested path both match.
    let out = wash(Format::Json, &["id.orig_h", "id.resp_h"], input).unwrap();
    assert!(out.contains(&f("192.0.2.1")));
    assert!(out.contains("198.51.100.7"));
    let err = wash(Format::Json, &[], "{\"a\": \"1.2.3.4\"\n").unwrap_err();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn zeek_columns_by_fields_header() {
    let input = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n\
                 #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tquery\tanswers\n\
                 #types\ttime\tstring\taddr\tport\taddr\tport\tstring\tvector[string]\n\
                 1300000000.123456\tCHhAvVGS1DHFjwGM9\t192.0.2.1\t53000\t2001:db8::53\t53\t4.3.2.1.in-addr.arpa\texample.com,198.51.100.7\n\
                 #close\t2026-12-01-23-00-00\n";
    let f = |s: &str| flip(s.parse().unwrap()).to_string();
    let out = wash(Format::Zeek, &[], input).unwrap();
    let exp = input
        .replace("\t192.0.2.1\t", &format!("\t{}\t", f("192.0.2.1")))
        .replace("2001:db8::53", &f("2001:db8::53"))
        .replace("4.3.2.1.in", "251.252.253.254.in")
        .replace("198.51.100.7", &f("198.51.100.7"));
    assert_eq!(out, exp);
    let only = wash(Format::Zeek, &["id.orig_h"], input).unwrap();
    assert!(only.contains(&f("192.0.2.1")) && only.contains("2001:db8::53"));
    // A typed addr column that holds no address is unreadable.
    let bad = input.replace("\t192.0.2.1\t", "\tnot-an-ip\t");
    assert!(wash(Format::Zeek, &[], &bad)
        .unwrap_err()
        .contains("line 8"));
    let short = input.replace("\t53\t4.3", "\t4.3");
    assert!(wash(Format::Zeek, &[], &short)
        .unwrap_err()
        .contains("fields"));
}

#[test]
fn regex_washes_group_one_only() {
    let spec = Spec::new(
        Format::Plain,
        Vec::new(),
        Some(regex::bytes::Regex::new(r"client=(\S+)").unwrap()),
        OnError::Fail,
    );
    let mut r = TextRun::new(washer(), 1, spec, false, CompressArg::None).unwrap();
    let out = wash_bytes(&mut r, b"client=192.0.2.1 server=192.0.2.53\n").unwrap();
    assert_eq!(out, b"client=63.255.253.254 server=192.0.2.53\n");
    assert!(wash_bytes(&mut r, b"nothing here\n").is_err());
}

#[test]
fn any_thread_count_gives_the_same_bytes() {
    let mut text = String::new();
    for i in 0..60_000u32 {
        text.push_str(&format!(
            "01-Dec-2026 client @0x1 10.{}.{}.{}#{} (x.example): query: x.example IN A + (2001:db8::{:x})\n",
            i % 7,
            i % 251,
            i % 13,
            1024 + i % 5000,
            i
        ));
    }
    let one = wash_bytes(
        &mut run_with(Format::Plain, &[], OnError::Fail, 1),
        text.as_bytes(),
    )
    .unwrap();
    let two = wash_bytes(
        &mut run_with(Format::Plain, &[], OnError::Fail, 2),
        text.as_bytes(),
    )
    .unwrap();
    let four = wash_bytes(
        &mut run_with(Format::Plain, &[], OnError::Fail, 4),
        text.as_bytes(),
    )
    .unwrap();
    assert!(one == two && two == four);
    assert_ne!(one, text.as_bytes());
}

#[test]
fn worker_counts_addresses() {
    let mut w = Worker::new(washer(), 16);
    let mut o = Vec::new();
    assert_eq!(w.wash_text(b"a 192.0.2.1 b ::1 c", &mut o), 2);
    assert_eq!(w.stats.addresses, 2);
}

#[test]
fn a_fault_deep_in_the_input_stops_at_the_same_line_for_every_thread_count() {
    // About 1 MB of CSV (several batches); one value is unreadable.
    let mut text = String::from("ip,n\n");
    for i in 0..50_000u32 {
        if i == 31_336 {
            text.push_str("not-an-address,1\n");
        } else {
            text.push_str(&format!("10.0.{}.{},{}\n", i % 256, i % 199, i));
        }
    }
    let mut outs = Vec::new();
    for threads in [1, 2, 4] {
        let mut r = run_with(Format::Csv, &["ip"], OnError::Fail, threads);
        let mut out = Vec::new();
        let e = r
            .wash_stream(Box::new(text.as_bytes()), &mut out, false, "<in>")
            .unwrap_err();
        assert!(e.msg.starts_with("<in> line 31338, byte 0:"), "{}", e.msg);
        outs.push(out);
    }
    // The header and every line before the fault, washed; nothing after.
    let lines: Vec<&[u8]> = outs[0].split_inclusive(|&c| c == b'\n').collect();
    assert_eq!(lines.len(), 31_337);
    assert_eq!(lines[1], b"245.255.255.255,0\n");
    assert!(outs[0] == outs[1] && outs[1] == outs[2]);
}

/// A reader that fails after `left` bytes.
struct FailsAfter<'a> {
    data: &'a [u8],
    left: usize,
}

impl std::io::Read for FailsAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_read_error_keeps_every_batch_before_it_for_every_thread_count() {
    let mut text = String::new();
    for i in 0..40_000u32 {
        text.push_str(&format!("q {} from 10.1.{}.{}#53\n", i, i % 256, i % 97));
    }
    let cut = 700_000;
    let mut outs = Vec::new();
    for threads in [1, 2, 4] {
        let mut r = run_with(Format::Plain, &[], OnError::Fail, threads);
        let mut out = Vec::new();
        let rd = std::io::BufReader::new(FailsAfter {
            data: text.as_bytes(),
            left: cut,
        });
        let e = r
            .wash_stream(Box::new(rd), &mut out, false, "<in>")
            .unwrap_err();
        assert!(e.msg.contains("the disk went away"), "{}", e.msg);
        outs.push(out);
    }
    // Whole lines only, all of them washed, and every thread count agrees.
    assert!(outs[0].ends_with(b"\n"));
    assert!(outs[0].len() > cut / 2, "{}", outs[0].len());
    assert!(!String::from_utf8_lossy(&outs[0]).contains(" 10.1."));
    assert!(outs[0] == outs[1] && outs[1] == outs[2]);
}
