//! dnstap washing on generated streams.
//!
//! The oracle does not use the washer's wire walk: messages are encoded
//! here with `prost`-derived structs written from the published field
//! numbers, unknown fields are appended as raw bytes, and the expected
//! output is built the same way from the input values with the technique
//! (bitwise NOT, prefix-preserving) applied by hand. The washed stream must
//! equal it byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ipwash::dnstap::{wash_dnstap, DnstapError, DnstapOptions, DnstapStats};
use ipwash::wash::{Identity, Scope, Technique, Washer};
use ipwash_algorithms::AddrMap;
use prost::Message as _;

#[derive(Clone, PartialEq, prost::Message)]
struct Dnstap {
    #[prost(bytes = "vec", optional, tag = "1")]
    identity: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    version: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    extra: Option<Vec<u8>>,
    #[prost(message, optional, tag = "14")]
    message: Option<Msg>,
    #[prost(int32, optional, tag = "15")]
    r#type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(int32, optional, tag = "1")]
    r#type: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    socket_family: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    socket_protocol: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    response_address: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    query_port: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    response_port: Option<u32>,
    #[prost(uint64, optional, tag = "8")]
    query_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "9")]
    query_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    query_message: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "11")]
    query_zone: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "12")]
    response_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "13")]
    response_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "14")]
    response_message: Option<Vec<u8>>,
}

/// Bitwise NOT: prefix-preserving, easy to compute by hand.
struct Not;
impl AddrMap for Not {
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

fn not_washer() -> Washer {
    Washer::new(Technique::Stateless(Arc::new(Not)))
}

// ------------------------------------------------------------ DNS messages

/// A DNS query for `name`, with an ECS option when `ecs` is given
/// (family, source prefix, address bytes).
fn dns_query(id: u16, ecs: Option<(u16, u8, &[u8])>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, ecs.is_some() as u8]);
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    if let Some(e) = ecs {
        push_opt(&mut m, e);
    }
    m
}

fn push_opt(m: &mut Vec<u8>, (family, prefix, addr): (u16, u8, &[u8])) {
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    let olen = 4 + addr.len();
    m.extend_from_slice(&((4 + olen) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 8]);
    m.extend_from_slice(&(olen as u16).to_be_bytes());
    m.extend_from_slice(&family.to_be_bytes());
    m.extend_from_slice(&[prefix, 0]);
    m.extend_from_slice(addr);
}

/// A response with `n` TXT records of 250 bytes (n = 240 gives ~62 KB),
/// and an ECS option.
fn dns_big_response(n: u16, ecs: (u16, u8, &[u8])) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
    m.extend_from_slice(&n.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1]);
    m.extend_from_slice(b"\x03big\x07example\x03com\x00\x00\x10\x00\x01");
    for i in 0..n {
        m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 1, 0, 0, 250, 249]);
        m.extend((0..249).map(|j| b'a' + ((i as usize + j) % 26) as u8));
    }
    push_opt(&mut m, ecs);
    m
}

/// `a` with every bit inverted, then cut to `bits` bits.
fn not_prefix(a: &[u8], bits: u8) -> Vec<u8> {
    let mut v: Vec<u8> = a.iter().map(|b| !b).collect();
    for (i, b) in v.iter_mut().enumerate() {
        let keep = (bits as usize).saturating_sub(i * 8).min(8);
        *b &= (0xffu16 << (8 - keep)) as u8;
    }
    v
}

fn not_bytes(a: &[u8]) -> Vec<u8> {
    a.iter().map(|b| !b).collect()
}

// ------------------------------------------------------------ streams

fn control(ctype: u32, ct: Option<&[u8]>) -> Vec<u8> {
    let mut body = ctype.to_be_bytes().to_vec();
    if let Some(c) = ct {
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(c.len() as u32).to_be_bytes());
        body.extend_from_slice(c);
    }
    let mut f = vec![0, 0, 0, 0];
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend(body);
    f
}

fn start() -> Vec<u8> {
    control(2, Some(b"protobuf:dnstap.Dnstap"))
}

fn stop() -> Vec<u8> {
    control(3, None)
}

fn frame(p: &[u8]) -> Vec<u8> {
    let mut f = (p.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(p);
    f
}

/// Unknown fields appended inside `Message`: 50 fixed64, 51 bytes.
const MSG_UNKNOWN: &[u8] = &[
    0x91, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0x9a, 0x03, 2, 0xab, 0xcd,
];
/// Unknown field appended to `Dnstap`: 99 bytes.
const TOP_UNKNOWN: &[u8] = &[0x9a, 0x06, 3, b'x', b'y', b'z'];

/// Encode a Dnstap message: its own fields, then `message` (field 14) with
/// the Message fields and MSG_UNKNOWN, then TOP_UNKNOWN.
fn encode(top: &Dnstap, m: &Msg) -> Vec<u8> {
    let mut t = top.clone();
    t.message = None;
    let mut out = t.encode_to_vec();
    let mut inner = m.encode_to_vec();
    inner.extend_from_slice(MSG_UNKNOWN);
    out.push(0x72);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend(inner);
    out.extend_from_slice(TOP_UNKNOWN);
    out
}

/// One test message and what washing with NOT must make of it.
struct Case {
    input: Vec<u8>,
    expected: Vec<u8>,
    expected_clients: Vec<u8>,
}

fn top() -> Dnstap {
    Dnstap {
        identity: Some(b"ns1.example.net".to_vec()),
        version: Some(b"server 1.2.3".to_vec()),
        extra: Some(b"site=ams".to_vec()),
        message: None,
        r#type: Some(1),
    }
}

fn washed_top() -> Dnstap {
    Dnstap {
        identity: Some(vec![]),
        version: Some(vec![]),
        extra: None,
        message: None,
        r#type: Some(1),
    }
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let q4: [u8; 4] = [198, 51, 100, 7];
    let r4: [u8; 4] = [192, 0, 2, 53];
    let q6: [u8; 16] = "2001:db8:aa::77".parse::<Ipv6Addr>().unwrap().octets();
    let r6: [u8; 16] = "2001:db8:53::1".parse::<Ipv6Addr>().unwrap().octets();
    let ecs4: &[u8] = &[203, 0, 113];
    let ecs6: &[u8] = &[0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34];
    for (i, &(mtype, v6, with_ecs, big)) in [
        (5, false, true, false),  // CLIENT_QUERY
        (6, false, true, true),   // CLIENT_RESPONSE, big
        (5, true, true, false),   // CLIENT_QUERY over IPv6
        (6, true, false, true),   // CLIENT_RESPONSE over IPv6, big
        (3, false, false, false), // RESOLVER_QUERY
        (1, true, true, false),   // AUTH_QUERY
    ]
    .iter()
    .enumerate()
    {
        let (qa, ra): (&[u8], &[u8]) = if v6 { (&q6, &r6) } else { (&q4, &r4) };
        let ecs = if v6 {
            (2u16, 48u8, ecs6)
        } else {
            (1, 24, ecs4)
        };
        let ecs_w = (ecs.0, ecs.1, not_prefix(ecs.2, ecs.1));
        let query = dns_query(i as u16, with_ecs.then_some(ecs));
        let query_w = dns_query(i as u16, with_ecs.then_some((ecs_w.0, ecs_w.1, &ecs_w.2)));
        let resp = big.then(|| dns_big_response(240, ecs));
        let resp_w = big.then(|| dns_big_response(240, (ecs_w.0, ecs_w.1, &ecs_w.2)));
        let m = Msg {
            r#type: Some(mtype),
            socket_family: Some(if v6 { 2 } else { 1 }),
            socket_protocol: Some(1),
            query_address: Some(qa.to_vec()),
            response_address: Some(ra.to_vec()),
            query_port: Some(40000 + i as u32),
            response_port: Some(53),
            query_time_sec: Some(1_700_000_000 + i as u64),
            query_time_nsec: Some(123_456),
            query_message: Some(query),
            query_zone: None,
            response_time_sec: resp.as_ref().map(|_| 1_700_000_001),
            response_time_nsec: None,
            response_message: resp,
        };
        let mut w = m.clone();
        w.query_address = Some(not_bytes(qa));
        w.response_address = Some(not_bytes(ra));
        w.query_message = Some(query_w.clone());
        w.response_message = resp_w.clone();
        let mut wc = w.clone();
        wc.response_address = Some(ra.to_vec());
        v.push(Case {
            input: encode(&top(), &m),
            expected: encode(&washed_top(), &w),
            expected_clients: encode(&washed_top(), &wc),
        });
    }
    v
}

fn stream_of(msgs: &[&[u8]]) -> Vec<u8> {
    let mut s = start();
    for m in msgs {
        s.extend(frame(m));
    }
    s.extend(stop());
    s
}

fn wash(
    input: &[u8],
    washer: &mut Washer,
    opts: &DnstapOptions,
) -> (Vec<u8>, DnstapStats, Result<(), DnstapError>) {
    let mut out = Vec::new();
    let mut st = DnstapStats::default();
    let r = wash_dnstap(input, &mut out, washer, opts, &mut st);
    (out, st, r)
}

#[test]
fn washes_every_field_and_copies_the_rest_byte_for_byte() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    let expected = stream_of(&cs.iter().map(|c| &c.expected[..]).collect::<Vec<_>>());
    assert!(input.len() > 2 * 60_000, "big messages present");
    let (out, st, r) = wash(&input, &mut not_washer(), &DnstapOptions::default());
    r.unwrap();
    assert_eq!(out.len(), expected.len());
    assert!(
        out == expected,
        "washed stream differs from the expected one"
    );
    assert_eq!(st.messages, 6);
    assert_eq!(st.written, 6);
    assert_eq!(st.rewritten, 6);
    assert_eq!(st.control, 2);
    // 12 endpoint addresses, ECS in 4 queries and 2 big responses.
    assert_eq!(st.ecs_rewritten, 6);
    assert_eq!(st.addresses, 18);

    // The output decodes with an independent decoder to the washed values.
    let first = &out[42 + 4..42 + 4 + cs[0].expected.len()];
    let d = Dnstap::decode(first).unwrap();
    let m = d.message.unwrap();
    assert_eq!(m.query_address.unwrap(), not_bytes(&[198, 51, 100, 7]));
    assert_eq!(d.identity.unwrap(), b"");
    assert_eq!(d.extra, None);
}

#[test]
fn scope_clients_keeps_the_server_side() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    let expected = stream_of(
        &cs.iter()
            .map(|c| &c.expected_clients[..])
            .collect::<Vec<_>>(),
    );
    let mut w = not_washer();
    w.scope = Scope::Clients;
    let (out, _, r) = wash(&input, &mut w, &DnstapOptions::default());
    r.unwrap();
    assert!(out == expected);

    // Without a message type the roles are unknown: both are rewritten.
    let m = Msg {
        query_address: Some(vec![10, 0, 0, 1]),
        response_address: Some(vec![10, 0, 0, 2]),
        ..Default::default()
    };
    let mut w = not_washer();
    w.scope = Scope::Clients;
    let (out, _, r) = wash(
        &stream_of(&[&encode(&top(), &m)]),
        &mut w,
        &DnstapOptions::default(),
    );
    r.unwrap();
    let d = Dnstap::decode(&out[46..out.len() - 12])
        .unwrap()
        .message
        .unwrap();
    assert_eq!(d.query_address.unwrap(), [245, 255, 255, 254]);
    assert_eq!(d.response_address.unwrap(), [245, 255, 255, 253]);
}

#[test]
fn identity_wash_with_collection_info_is_byte_identical() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    // Two streams back to back, as `cat a.tap b.tap` gives.
    let mut two = input.clone();
    two.extend_from_slice(&input);
    let mut w = Washer::new(Technique::Stateless(Arc::new(Identity)));
    let opts = DnstapOptions {
        keep_collection_info: true,
        pass_unparsed: false,
    };
    let (out, st, r) = wash(&two, &mut w, &opts);
    r.unwrap();
    assert!(out == two);
    assert_eq!(st.control, 4);
}

#[test]
fn unwashable_messages_are_dropped_or_passed() {
    let good = cases().remove(0);
    let bad_len = Msg {
        r#type: Some(5),
        socket_family: Some(1),
        query_address: Some(vec![1, 2, 3, 4, 5]),
        ..Default::default()
    };
    let bad_family = Msg {
        r#type: Some(5),
        socket_family: Some(2),
        query_address: Some(vec![1, 2, 3, 4]),
        ..Default::default()
    };
    let bad_dns = Msg {
        r#type: Some(5),
        socket_family: Some(1),
        query_address: Some(vec![1, 2, 3, 4]),
        query_message: Some(vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        ..Default::default()
    };
    let msgs = [
        encode(&top(), &bad_len),
        good.input.clone(),
        encode(&top(), &bad_family),
        encode(&top(), &bad_dns),
    ];
    let input = stream_of(&msgs.iter().map(|m| &m[..]).collect::<Vec<_>>());
    let (out, st, r) = wash(&input, &mut not_washer(), &DnstapOptions::default());
    r.unwrap();
    assert!(out == stream_of(&[&good.expected]));
    assert_eq!(st.written, 1);
    let mut d = st.dropped.clone();
    d.sort();
    assert_eq!(
        d,
        [
            ("dnstap_address_family", 1),
            ("dnstap_address_length", 1),
            ("dnstap_unparsed_dns", 1)
        ]
    );
    let opts = DnstapOptions {
        keep_collection_info: false,
        pass_unparsed: true,
    };
    let (_, st, r) = wash(&input, &mut not_washer(), &opts);
    r.unwrap();
    assert_eq!(st.written, 4);
    assert_eq!(st.passed.iter().map(|p| p.1).sum::<u64>(), 3);
}

/// Split a stream into its frames (an independent reader for the checks).
fn frames_of(s: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut at = 0;
    while at + 4 <= s.len() {
        let n = u32::from_be_bytes(s[at..at + 4].try_into().unwrap()) as usize;
        let total = if n == 0 {
            8 + u32::from_be_bytes(s[at + 4..at + 8].try_into().unwrap()) as usize
        } else {
            4 + n
        };
        v.push(&s[at..at + total]);
        at += total;
    }
    assert_eq!(at, s.len(), "output ends inside a frame");
    v
}

#[test]
fn truncated_streams_keep_every_complete_frame() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    let expected = stream_of(&cs.iter().map(|c| &c.expected[..]).collect::<Vec<_>>());
    let starts: Vec<usize> = frames_of(&input)
        .iter()
        .scan(0, |at, f| {
            let s = *at;
            *at += f.len();
            Some(s)
        })
        .collect();
    let exp_frames = frames_of(&expected);
    let step = 997;
    for cut in (43..input.len() - 1)
        .step_by(step)
        .chain([input.len() - 12, input.len() - 1])
    {
        let (out, _, r) = wash(&input[..cut], &mut not_washer(), &DnstapOptions::default());
        // Frames wholly before the cut (START included).
        let complete =
            starts.iter().filter(|&&s| s < cut).count() - usize::from(!starts.contains(&cut));
        let e = r.unwrap_err();
        if starts.contains(&cut) {
            assert!(matches!(e, DnstapError::NoStop { .. }), "cut {cut}: {e}");
        } else {
            match e {
                DnstapError::Truncated { frame, offset } => {
                    assert_eq!(frame as usize, complete, "cut {cut}");
                    assert_eq!(offset as usize, starts[complete], "cut {cut}");
                }
                e => panic!("cut {cut}: {e}"),
            }
        }
        let got = frames_of(&out);
        assert_eq!(
            got.len(),
            complete + 1,
            "cut {cut}: complete frames and STOP"
        );
        assert_eq!(&got[..complete], &exp_frames[..complete]);
        assert_eq!(got[complete], &stop()[..]);
    }
}

#[test]
fn corrupt_frames_are_errors_with_frame_and_offset() {
    let cs = cases();
    // A length running past the end of the message, in the third data frame.
    let mut bad = cs[2].input.clone();
    bad.extend_from_slice(&[0x62, 0x7f, 1]);
    let msgs = [
        &cs[0].input[..],
        &cs[1].input[..],
        &bad[..],
        &cs[3].input[..],
    ];
    let input = stream_of(&msgs);
    let (out, _, r) = wash(&input, &mut not_washer(), &DnstapOptions::default());
    let frame3 = 42 + 8 + cs[0].input.len() + cs[1].input.len();
    match r.unwrap_err() {
        DnstapError::Corrupt { frame, offset, msg } => {
            assert_eq!(frame, 3);
            assert_eq!(offset as usize, frame3 + 4 + cs[2].input.len(), "{msg}");
        }
        e => panic!("{e}"),
    }
    assert!(out == [stream_of(&[&cs[0].expected, &cs[1].expected])].concat());

    // Through the command line: exit 1, the message names frame and byte,
    // and the output holds the frames before the fault.
    let dir = tempfile::tempdir().unwrap();
    let key = common::root().join("testdata/sample.key");
    let (inp, outp) = (dir.path().join("bad.tap"), dir.path().join("out.tap"));
    std::fs::write(&inp, &input).unwrap();
    let o = common::run(
        &[
            "wash",
            inp.to_str().unwrap(),
            "-o",
            outp.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "corrupt dnstap frame 3 at byte {}",
            frame3 + 4 + cs[2].input.len()
        )),
        "{err}"
    );
    let written = std::fs::read(&outp).unwrap();
    assert_eq!(frames_of(&written).len(), 4, "START, two messages, STOP");

    // A bad control frame in the middle.
    let mut s = stream_of(&[&cs[0].input]);
    let at = s.len() - 12;
    s.splice(at..at, control(1, None));
    let (_, _, r) = wash(&s, &mut not_washer(), &DnstapOptions::default());
    assert!(
        matches!(r, Err(DnstapError::Corrupt { frame: 2, .. })),
        "{r:?}"
    );
}

#[test]
fn cli_stdin_compressed_and_sniffed() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    let key = common::root().join("testdata/sample.key");
    let k = key.to_str().unwrap();
    let plain = common::run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "-q",
        ],
        &input,
    );
    assert_eq!(frames_of(&plain).len(), 8);
    assert_ne!(plain, input);

    // gzip in, gzip out (same wrapping), same content.
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("in.tap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&input).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let out = dir.path().join("out.tap.gz");
    common::run_ok(
        &[
            "wash",
            gz.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "-q",
        ],
        b"",
    );
    let mut dec = flate2::read::MultiGzDecoder::new(std::fs::File::open(&out).unwrap());
    let mut got = Vec::new();
    dec.read_to_end(&mut got).unwrap();
    assert_eq!(got, plain);

    // Not dnstap: another content type is not recognised.
    let other = [control(2, Some(b"protobuf:other.Thing")), stop()].concat();
    let o = common::run(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
        ],
        &other,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown format"));
}

#[test]
fn live_stream_is_flushed_frame_by_frame() {
    let cs = cases();
    let key = common::root().join("testdata/sample.key");
    let mut child = Command::new(common::bin())
        .args([
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            key.to_str().unwrap(),
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    let mut sout = child.stdout.take().unwrap();
    let want = 42 + 4 + cs[0].expected.len();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < want {
            match sout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(got);
        sout
    });
    // The START frame and one message, with the input left open.
    sin.write_all(&[start(), frame(&cs[0].input)].concat())
        .unwrap();
    sin.flush().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("washed frame while the input is open");
    assert_eq!(got.len(), want);
    let d = Dnstap::decode(&got[46..]).unwrap();
    assert_ne!(d.message.unwrap().query_address.unwrap(), [198, 51, 100, 7]);
    sin.write_all(&stop()).unwrap();
    drop(sin);
    let mut sout = reader.join().unwrap();
    let mut rest = Vec::new();
    sout.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, stop());
    assert!(child.wait().unwrap().success());
}

#[test]
fn bloom_build_reads_client_queries() {
    let cs = cases();
    let input = stream_of(&cs.iter().map(|c| &c.input[..]).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("q.tap");
    std::fs::write(&tap, &input).unwrap();
    let key = common::root().join("testdata/sample.key");
    let k = key.to_str().unwrap();
    let filters = dir.path().join("filters");
    let o = common::run(
        &[
            "bloom",
            "build",
            tap.to_str().unwrap(),
            "-o",
            filters.to_str().unwrap(),
            "--key-file",
            k,
            "--period",
            "3600",
            "--min-clients",
            "1",
            "--expected-items",
            "1000",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    // CLIENT_QUERY and AUTH_QUERY messages: 3 of the 6.
    assert!(err.contains("3 queries"), "{err}");
    let f: Vec<String> = std::fs::read_dir(&filters)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".bloom"))
        .collect();
    let mut args = vec!["bloom", "query", "--key-file", k];
    args.extend(f.iter().map(String::as_str));
    args.extend(["--name", "www.example.com", "--name", "big.example.com"]);
    let out = String::from_utf8(common::run_ok(&args, b"")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("www.example.com") && l.contains("present")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("big.example.com") && l.contains("absent")),
        "{out}"
    );
}

#[test]
fn cli_keep_collection_info_and_scope() {
    let cs = cases();
    let input = stream_of(&[&cs[0].input]);
    let key = common::root().join("testdata/sample.key");
    let k = key.to_str().unwrap();
    let payload = |s: &[u8]| Dnstap::decode(&s[46..s.len() - 12]).unwrap();
    let plain = common::run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "-q",
        ],
        &input,
    );
    let d = payload(&plain);
    assert_eq!(d.identity.as_deref(), Some(&b""[..]));
    assert_eq!(d.extra, None);
    let m = d.message.unwrap();
    assert_ne!(m.response_address.unwrap(), [192, 0, 2, 53]);
    let kept = common::run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "-q",
            "--keep-collection-info",
            "--scope",
            "clients",
        ],
        &input,
    );
    let d = payload(&kept);
    assert_eq!(d.identity.as_deref(), Some(&b"ns1.example.net"[..]));
    assert_eq!(d.version.as_deref(), Some(&b"server 1.2.3"[..]));
    assert_eq!(d.extra.as_deref(), Some(&b"site=ams"[..]));
    let m = d.message.unwrap();
    assert_eq!(
        m.response_address.unwrap(),
        [192, 0, 2, 53],
        "server side kept"
    );
    assert_ne!(m.query_address.unwrap(), [198, 51, 100, 7]);
    // --keep leaves a listed client network unchanged.
    let kept = common::run_ok(
        &[
            "wash",
            "-",
            "-o",
            "-",
            "--method",
            "cryptopan",
            "--key-file",
            k,
            "-q",
            "--keep",
            "198.51.100.0/24",
        ],
        &input,
    );
    let m = payload(&kept).message.unwrap();
    assert_eq!(m.query_address.unwrap(), [198, 51, 100, 7]);
    assert_ne!(m.response_address.unwrap(), [192, 0, 2, 53]);
}

/// Reverse names in dnstap messages are washed like the addresses they
/// hold, also when the name changes length (the field is re-encoded).
#[test]
fn reverse_names_in_messages_are_washed() {
    let mut q = 7u16.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x011\x012\x010\x03192\x07in-addr\x04arpa\x00\x00\x0c\x00\x01");
    let m = Msg {
        r#type: Some(5),
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(vec![198, 51, 100, 7]),
        query_message: Some(q),
        ..Default::default()
    };
    let input = stream_of(&[&encode(&top(), &m)]);
    let (out, _, r) = wash(&input, &mut not_washer(), &DnstapOptions::default());
    r.unwrap();
    let frames = frames_of(&out);
    let top = Dnstap::decode(&frames[1][4..]).unwrap();
    let qm = top.message.unwrap().query_message.unwrap();
    // NOT of 192.0.2.1 is 63.255.253.254.
    let mut want = b"\x03254\x03253\x03255\x0263\x07in-addr\x04arpa\x00".to_vec();
    want.extend_from_slice(&[0x00, 0x0c, 0x00, 0x01]);
    assert_eq!(qm[12..], want[..]);
}
