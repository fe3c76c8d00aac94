//! C-DNS washer and query reader tests.
//!
//! The oracle is independent of the washer's own CBOR code: input and
//! output are decoded with `ciborium`, the expected changes are applied to
//! the input tree here (each address resolved through the referencing
//! fields, the technique applied by hand), and the trees must then be equal.
//! A small C-DNS file is generated in code so everything runs without the
//! corpus; with `IPWASH_CORPUS` set the real samples are used as well.
//!
//! The query reader is checked on a generated file against tuples worked
//! out by hand from RFC 8618, and on the corpus against independent
//! sources: the pcap the gold file was made from (parsed here with
//! pcap-parser and etherparse) and cdnsrdr's text dump of its sample.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use ciborium::value::Value;
use ipwash::cdns::{wash_cdns, CdnsError, CdnsOptions, CdnsStats};
use ipwash::wash::{Identity, Scope, Side, Technique, TechniqueInfo, Washer};
use ipwash_algorithms::AddrMap;

// ---------------------------------------------------------------- techniques

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

/// Adds a constant: not prefix-preserving (carries cross prefix bounds).
struct Add;
impl AddrMap for Add {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(a).wrapping_add(0x9e37_79b9))
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(a).wrapping_add(0x9e37_79b9_7f4a_7c15))
    }
    fn prefix_preserving(&self) -> bool {
        false
    }
}

/// Zeroes host bits past the prefix.
struct Trunc(u8, u8);
impl AddrMap for Trunc {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let m = if self.0 == 0 {
            0
        } else {
            u32::MAX << (32 - self.0)
        };
        Ipv4Addr::from(u32::from(a) & m)
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let m = if self.1 == 0 {
            0
        } else {
            u128::MAX << (128 - self.1)
        };
        Ipv6Addr::from(u128::from(a) & m)
    }
    fn prefix_preserving(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug)]
enum Tech {
    Not,
    Trunc(u8, u8),
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    tech: Tech,
    clients_only: bool,
    blank: bool,
}

fn washer(spec: Spec) -> Washer {
    let mut w = match spec.tech {
        Tech::Not => {
            let mut w = Washer::new(Technique::Stateless(Arc::new(Not)));
            w.info = TechniqueInfo {
                name: "not".into(),
                truncate: None,
                ..Default::default()
            };
            w
        }
        Tech::Trunc(p4, p6) => {
            let mut w = Washer::new(Technique::Stateless(Arc::new(Trunc(p4, p6))));
            w.info = TechniqueInfo {
                name: "truncate".into(),
                truncate: Some((p4, p6)),
                ..Default::default()
            };
            w
        }
    };
    if spec.clients_only {
        w.scope = Scope::Clients;
    }
    // These tests check the address fields; reverse names in name-rdata
    // are checked by tests/revnames.rs.
    w.reverse_names = ipwash::revname::ReverseNames::Keep;
    w
}

fn identity() -> Washer {
    let mut w = Washer::new(Technique::Stateless(Arc::new(Identity)));
    w.reverse_names = ipwash::revname::ReverseNames::Keep;
    w
}

const COPY: CdnsOptions = CdnsOptions {
    keep_collection_info: true,
    mark_output: false,
};

fn run(
    input: &[u8],
    w: &mut Washer,
    opts: &CdnsOptions,
) -> (Vec<u8>, Result<CdnsStats, CdnsError>) {
    let mut out = Vec::new();
    let r = wash_cdns(input, &mut out, w, opts);
    (out, r)
}

// ------------------------------------------------------- expected addresses

fn mask(mut b: Vec<u8>, bits: usize) -> Vec<u8> {
    for (i, x) in b.iter_mut().enumerate() {
        let lo = i * 8;
        if lo >= bits {
            *x = 0;
        } else if bits < lo + 8 {
            *x &= 0xffu8 << (lo + 8 - bits);
        }
    }
    b
}

/// Expected stored bytes of a table entry used on `side`.
fn exp_entry(
    spec: Spec,
    b: &[u8],
    side: Side,
    v6: Option<bool>,
    prefix: [Option<u8>; 4],
) -> Vec<u8> {
    if spec.clients_only && side == Side::Server {
        return b.to_vec();
    }
    let v6 = v6.unwrap_or(b.len() > 4);
    let full = if v6 { 128 } else { 32 };
    let stored = match side {
        Side::Client => prefix[usize::from(v6)],
        Side::Server => prefix[2 + usize::from(v6)],
        Side::Unknown => None,
    };
    let bits = usize::from(stored.unwrap_or(full)).min(b.len() * 8);
    match spec.tech {
        Tech::Not => mask(b.iter().map(|x| !x).collect(), bits),
        Tech::Trunc(p4, p6) => {
            let p = bits.min(usize::from(if v6 { p6 } else { p4 }));
            let mut m = mask(b.to_vec(), p);
            m.truncate(b.len().min(p.div_ceil(8)));
            m
        }
    }
}

/// Expected ECS address bytes (client side, length kept).
fn exp_prefix(spec: Spec, b: &[u8], v6: bool, bits: usize) -> Vec<u8> {
    match spec.tech {
        Tech::Not => mask(b.iter().map(|x| !x).collect(), bits),
        Tech::Trunc(p4, p6) => mask(b.to_vec(), bits.min(usize::from(if v6 { p6 } else { p4 }))),
    }
}

// ------------------------------------------------------------ ciborium tree

fn dec(b: &[u8]) -> Value {
    ciborium::from_reader(b).expect("output decodes as CBOR")
}

fn ik(k: &Value) -> Option<i128> {
    match k {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

fn get(m: &Value, k: i128) -> Option<&Value> {
    m.as_map()?
        .iter()
        .find(|(kk, _)| ik(kk) == Some(k))
        .map(|(_, v)| v)
}

fn get_mut(m: &mut Value, k: i128) -> Option<&mut Value> {
    m.as_map_mut()?
        .iter_mut()
        .find(|(kk, _)| ik(kk) == Some(k))
        .map(|(_, v)| v)
}

fn set(m: &mut Value, k: i128, v: Value) {
    match get_mut(m, k) {
        Some(x) => *x = v,
        None => m
            .as_map_mut()
            .expect("map")
            .push((Value::Integer((k as i64).into()), v)),
    }
}

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn u(v: Option<&Value>) -> Option<usize> {
    v.and_then(ik).map(|x| x as usize)
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_bytes().expect("byte string").clone()
}

fn blocks(f: &Value) -> &[Value] {
    arr(f.as_array().and_then(|a| a.get(2)))
}

fn prefixes(f: &Value) -> Vec<[Option<u8>; 4]> {
    let pre = &f.as_array().unwrap()[1];
    arr(get(pre, 3))
        .iter()
        .map(|bp| {
            let sp = get(bp, 0).unwrap();
            let mut p = [None; 4];
            for (i, k) in (6..=9).enumerate() {
                p[i] = u(get(sp, k)).map(|x| x as u8);
            }
            p
        })
        .collect()
}

fn null(m: &mut Value, k: i128) {
    if let Some(v) = get_mut(m, k) {
        *v = Value::Null;
    }
}

fn map_items(m: &mut Value, k: i128, f: impl Fn(&mut Value)) {
    if let Some(Value::Array(a)) = get_mut(m, k) {
        a.iter_mut().for_each(f);
    }
}

/// Check `output` is `input` washed per `spec`; returns the number of table
/// entries appended (splits).
fn check(input: &[u8], output: &[u8], spec: Spec, method: &str) -> usize {
    let mut a = dec(input);
    let mut b = dec(output);
    let params = prefixes(&a);
    let mut splits = 0;
    // name-rdata / mm-payload replacements for the expected tree.
    let mut opt_fix: Vec<Vec<(usize, Vec<u8>)>> = Vec::new();
    let mut mm_fix: Vec<Vec<(usize, Vec<u8>)>> = Vec::new();
    assert_eq!(blocks(&a).len(), blocks(&b).len(), "block count");
    for (ab, bb) in blocks(&a).iter().zip(blocks(&b)) {
        let p = params[u(get(get(ab, 0).unwrap(), 1)).unwrap_or(0)];
        let (ta, tb) = (get(ab, 2).unwrap(), get(bb, 2).unwrap());
        let tin: Vec<Vec<u8>> = arr(get(ta, 0)).iter().map(bytes).collect();
        let tout: Vec<Vec<u8>> = arr(get(tb, 0)).iter().map(bytes).collect();
        assert!(tout.len() >= tin.len());
        splits += tout.len() - tin.len();
        let sig_v6: Vec<Option<bool>> = arr(get(ta, 3))
            .iter()
            .map(|s| u(get(s, 2)).map(|f| f & 1 != 0))
            .collect();
        let mmd_v6: Vec<Option<bool>> = arr(get(ta, 8))
            .iter()
            .map(|s| u(get(s, 2)).map(|f| f & 1 != 0))
            .collect();
        let mut used = vec![false; tin.len()];
        let mut expect = |ia: Option<usize>, ib: Option<usize>, side, v6| {
            let (Some(ia), Some(ib)) = (ia, ib) else {
                assert_eq!(ia, ib);
                return;
            };
            used[ia] = true;
            assert_eq!(
                tout[ib],
                exp_entry(spec, &tin[ia], side, v6, p),
                "entry {ia} as {side:?}"
            );
        };
        for (qa, qb) in arr(get(ab, 3)).iter().zip(arr(get(bb, 3))) {
            let v6 = u(get(qa, 4)).and_then(|s| sig_v6[s]);
            expect(u(get(qa, 1)), u(get(qb, 1)), Side::Client, v6);
        }
        for (sa, sb) in arr(get(ta, 3)).iter().zip(arr(get(tb, 3))) {
            expect(
                u(get(sa, 0)),
                u(get(sb, 0)),
                Side::Server,
                u(get(sa, 2)).map(|f| f & 1 != 0),
            );
        }
        for (sa, sb) in arr(get(ta, 8)).iter().zip(arr(get(tb, 8))) {
            expect(
                u(get(sa, 0)),
                u(get(sb, 0)),
                Side::Server,
                u(get(sa, 2)).map(|f| f & 1 != 0),
            );
        }
        for (ea, eb) in arr(get(ab, 4)).iter().zip(arr(get(bb, 4))) {
            expect(
                u(get(ea, 2)),
                u(get(eb, 2)),
                Side::Client,
                u(get(ea, 3)).map(|f| f & 1 != 0),
            );
        }
        for (ma, mb) in arr(get(ab, 5)).iter().zip(arr(get(bb, 5))) {
            let v6 = u(get(ma, 3)).and_then(|i| mmd_v6[i]);
            expect(u(get(ma, 1)), u(get(mb, 1)), Side::Client, v6);
        }
        for (j, e) in tin.iter().enumerate() {
            if !used[j] {
                assert_eq!(
                    tout[j],
                    exp_entry(spec, e, Side::Unknown, None, p),
                    "unreferenced {j}"
                );
            }
        }
        // ECS in OPT RDATA.
        let cts: Vec<Option<usize>> = arr(get(ta, 1)).iter().map(|c| u(get(c, 0))).collect();
        let mut opt: Vec<usize> = arr(get(ta, 3))
            .iter()
            .filter_map(|s| u(get(s, 15)))
            .collect();
        for rr in arr(get(ta, 7)) {
            if u(get(rr, 1)).and_then(|c| cts[c]) == Some(41) {
                opt.extend(u(get(rr, 3)));
            }
        }
        opt.sort_unstable();
        opt.dedup();
        let nr = arr(get(ta, 2));
        let mut fixes = Vec::new();
        for i in opt {
            let mut r = bytes(&nr[i]);
            let mut ecs = Vec::new();
            if ipwash::dns::opt_ecs(&r, 0, r.len(), &mut ecs).is_err() {
                r.iter_mut().for_each(|x| *x = 0);
            } else {
                for f in ecs {
                    let span = f.offset..f.offset + f.len;
                    let w = exp_prefix(
                        spec,
                        &r[span.clone()],
                        f.family == 2,
                        f.source_prefix.into(),
                    );
                    r[span].copy_from_slice(&w);
                }
            }
            fixes.push((i, r));
        }
        opt_fix.push(fixes);
        let mut fixes = Vec::new();
        for (i, m) in arr(get(ta, 8)).iter().enumerate() {
            let Some(pl) = get(m, 3) else { continue };
            let mut r = bytes(pl);
            let mut ecs = Vec::new();
            if ipwash::dns::find_ecs(&r, &mut ecs).is_err() {
                r.iter_mut().skip(12).for_each(|x| *x = 0);
            } else {
                for f in ecs {
                    let span = f.offset..f.offset + f.len;
                    let w = exp_prefix(
                        spec,
                        &r[span.clone()],
                        f.family == 2,
                        f.source_prefix.into(),
                    );
                    r[span].copy_from_slice(&w);
                }
            }
            fixes.push((i, r));
        }
        mm_fix.push(fixes);
    }

    // Normalise: drop address tables and index fields, apply the ECS fixes.
    for (k, f) in [&mut a, &mut b].into_iter().enumerate() {
        let Value::Array(top) = f else { panic!() };
        let Value::Array(bl) = &mut top[2] else {
            panic!()
        };
        for (bi, blk) in bl.iter_mut().enumerate() {
            map_items(blk, 3, |q| null(q, 1));
            map_items(blk, 4, |e| null(e, 2));
            map_items(blk, 5, |m| null(m, 1));
            let t = get_mut(blk, 2).unwrap();
            null(t, 0);
            map_items(t, 3, |s| null(s, 0));
            map_items(t, 8, |s| null(s, 0));
            if k == 0 {
                if let Some(Value::Array(nr)) = get_mut(t, 2) {
                    for (i, r) in &opt_fix[bi] {
                        nr[*i] = Value::Bytes(r.clone());
                    }
                }
                if let Some(Value::Array(mm)) = get_mut(t, 8) {
                    for (i, r) in &mm_fix[bi] {
                        set(&mut mm[*i], 3, Value::Bytes(r.clone()));
                    }
                }
            }
        }
    }

    // Expected preamble changes.
    let Value::Array(top) = &mut a else { panic!() };
    let bps = get_mut(&mut top[1], 3).unwrap().as_array_mut().unwrap();
    for bp in bps {
        let sp = get_mut(bp, 0).unwrap();
        let flags = u(get(sp, 5)).unwrap_or(0) as i64;
        set(sp, 5, Value::Integer((flags | 1).into()));
        if let Tech::Trunc(p4, p6) = spec.tech {
            for (i, k) in (6..=9).enumerate() {
                if spec.clients_only && i >= 2 {
                    continue;
                }
                let (full, p) = if i % 2 == 0 { (32, p4) } else { (128, p6) };
                let cur = u(get(sp, k)).unwrap_or(full).min(usize::from(p));
                set(sp, k, Value::Integer((cur as i64).into()));
            }
        }
        set(sp, 11, Value::Text(method.into()));
        let Some(cp) = get_mut(bp, 1) else { continue };
        if let Some(Value::Array(sa)) = get_mut(cp, 5) {
            for s in sa {
                let x = bytes(s);
                if !spec.clients_only {
                    let v6 = x.len() == 16;
                    *s = Value::Bytes(exp_prefix(spec, &x, v6, x.len() * 8));
                }
            }
        }
        if spec.blank {
            for k in [7, 9] {
                if get(cp, k).is_some() {
                    set(cp, k, Value::Text(String::new()));
                }
            }
            cp.as_map_mut().unwrap().retain(|(k, _)| ik(k) != Some(4));
        }
    }
    assert!(a == b, "trees differ:\nexpected {a:?}\n     got {b:?}");
    splits
}

// ------------------------------------------------------ generated test file

enum V {
    U(u64),
    N(i64),
    B(Vec<u8>),
    T(&'static str),
    A(Vec<V>),
    Ai(Vec<V>),
    M(Vec<(i64, V)>),
    Mi(Vec<(i64, V)>),
}

fn head(o: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => o.push(m | n as u8),
        24..=0xff => o.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            o.push(m | 25);
            o.extend((n as u16).to_be_bytes());
        }
        _ => {
            o.push(m | 26);
            o.extend((n as u32).to_be_bytes());
        }
    }
}

fn enc(v: &V, o: &mut Vec<u8>) {
    let key = |k: i64, o: &mut Vec<u8>| {
        if k < 0 {
            head(o, 1, (-1 - k) as u64)
        } else {
            head(o, 0, k as u64)
        }
    };
    match v {
        V::U(n) => head(o, 0, *n),
        V::N(n) => key(*n, o),
        V::B(b) => {
            head(o, 2, b.len() as u64);
            o.extend(b);
        }
        V::T(t) => {
            head(o, 3, t.len() as u64);
            o.extend(t.as_bytes());
        }
        V::A(a) | V::Ai(a) => {
            if let V::A(_) = v {
                head(o, 4, a.len() as u64);
            } else {
                o.push(0x9f);
            }
            a.iter().for_each(|x| enc(x, o));
            if let V::Ai(_) = v {
                o.push(0xff);
            }
        }
        V::M(m) | V::Mi(m) => {
            if let V::M(_) = v {
                head(o, 5, m.len() as u64);
            } else {
                o.push(0xbf);
            }
            for (k, x) in m {
                key(*k, o);
                enc(x, o);
            }
            if let V::Mi(_) = v {
                o.push(0xff);
            }
        }
    }
}

use V::*;

fn v4(a: &str) -> Vec<u8> {
    a.parse::<Ipv4Addr>().unwrap().octets().to_vec()
}
fn v6(a: &str) -> Vec<u8> {
    a.parse::<Ipv6Addr>().unwrap().octets().to_vec()
}

fn dns_query_with_ecs(addr: &[u8], family: u16, prefix: u8) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    let olen = 4 + addr.len();
    m.extend_from_slice(&((4 + olen) as u16).to_be_bytes());
    m.extend_from_slice(&[0, 8]);
    m.extend_from_slice(&(olen as u16).to_be_bytes());
    m.extend_from_slice(&family.to_be_bytes());
    m.extend_from_slice(&[prefix, 0]);
    m.extend_from_slice(addr);
    m
}

/// A C-DNS file exercising every address-bearing field, mixed definite and
/// indefinite encodings and unknown (negative) keys. With `prefix`, the
/// StorageParameters set keys 6-9 to 24/48/24/48 and entries are cut.
/// Without `bad`, every OPT RDATA and malformed payload can be walked (so an
/// identity wash changes nothing); with it, one of each cannot (and is
/// blanked, fail closed).
///
/// Table: 0 A server v4, 1 B client v4, 2 C server v6, 3 D client v6,
/// 4 E server + client + address event, 5 F unreferenced.
fn gen(prefix: bool, bad: bool) -> Vec<u8> {
    let cut = |mut b: Vec<u8>| {
        if prefix {
            b.truncate(if b.len() == 4 { 3 } else { 6 });
        }
        b
    };
    let mut storage = vec![
        (0, U(1_000_000)),
        (1, U(5000)),
        (
            2,
            M(vec![(0, U(0x3ffff)), (1, U(0x1ffff)), (2, U(3)), (3, U(3))]),
        ),
        (3, A(vec![U(0)])),
        (4, A(vec![U(1), U(28), U(41)])),
        (-7, T("private")),
    ];
    if prefix {
        storage.extend([(6, U(24)), (7, U(48)), (8, U(24)), (9, U(48))]);
    }
    let preamble = M(vec![
        (0, U(1)),
        (1, U(0)),
        (2, U(99)),
        (
            3,
            A(vec![M(vec![
                (0, if prefix { M(storage) } else { Mi(storage) }),
                (
                    1,
                    M(vec![
                        (0, U(5000)),
                        (4, A(vec![T("eth0"), T("eth1")])),
                        (5, A(vec![B(v4("192.0.2.1")), B(v6("2001:db8::53"))])),
                        (7, T("udp port 53")),
                        (8, T("gen 1.0")),
                        (9, T("ns1.example")),
                        (-1, U(53)),
                    ]),
                ),
            ])]),
        ),
        (-2, T("x")),
    ]);
    let ecs4 = vec![0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100];
    let ecs6 = vec![0, 8, 0, 11, 0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 1, 0];
    let (bad_opt, payload) = if bad {
        (vec![0, 8, 0, 2, 0, 1], vec![0xab; 20])
    } else {
        // A cookie option; a query without OPT.
        let mut q = vec![0x55, 0x66, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x00\x00\x1c\x00\x01");
        (vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], q)
    };
    let block0 = Mi(vec![
        (0, M(vec![(0, A(vec![U(1_600_000_000), U(5)]))])),
        (-5, T("unknown")),
        (
            2,
            Mi(vec![
                (
                    0,
                    A(vec![
                        B(cut(v4("192.0.2.1"))),
                        B(cut(v4("198.51.100.7"))),
                        B(cut(v6("2001:db8::53"))),
                        B(cut(v6("2001:db8:1::7"))),
                        B(cut(v4("10.0.0.1"))),
                        B(cut(v4("203.0.113.9"))),
                    ]),
                ),
                (
                    1,
                    A(vec![
                        M(vec![(0, U(1)), (1, U(1))]),
                        M(vec![(0, U(41)), (1, U(4096))]),
                    ]),
                ),
                (
                    2,
                    Ai(vec![
                        B(b"\x07example\x00".to_vec()),
                        B(ecs4),
                        B(ecs6),
                        B(bad_opt),
                    ]),
                ),
                (
                    3,
                    A(vec![
                        M(vec![(0, U(0)), (1, U(53)), (2, U(0)), (15, U(1))]),
                        Mi(vec![(0, U(2)), (2, U(1)), (15, U(2))]),
                        M(vec![(0, U(4)), (2, U(0))]),
                    ]),
                ),
                (
                    7,
                    A(vec![M(vec![(0, U(0)), (1, U(1)), (2, U(0)), (3, U(3))])]),
                ),
                (
                    8,
                    A(vec![
                        M(vec![
                            (0, U(0)),
                            (2, U(0)),
                            (3, B(dns_query_with_ecs(&[203, 0, 113], 1, 24))),
                        ]),
                        M(vec![(0, U(4)), (2, U(0)), (3, B(payload))]),
                    ]),
                ),
                (-1, A(vec![U(1), U(2)])),
            ]),
        ),
        (
            3,
            Ai(vec![
                Mi(vec![(0, U(0)), (1, U(1)), (4, U(0))]),
                M(vec![(1, U(3)), (4, U(1)), (-3, Ai(vec![U(1), U(2)]))]),
                M(vec![(1, U(4)), (4, U(2))]),
                M(vec![(1, U(1)), (4, U(0)), (7, U(0))]),
            ]),
        ),
        (
            4,
            A(vec![M(vec![
                (0, U(2)),
                (1, U(3)),
                (2, U(4)),
                (3, U(0)),
                (4, U(5)),
            ])]),
        ),
        (5, A(vec![M(vec![(0, U(10)), (1, U(1)), (3, U(0))])])),
    ]);
    let block1 = M(vec![
        (0, M(vec![(0, A(vec![U(1_600_000_001), U(7)])), (1, U(0))])),
        (
            2,
            M(vec![
                (
                    0,
                    Ai(vec![B(cut(v4("192.0.2.2"))), B(cut(v4("198.51.100.8")))]),
                ),
                (3, A(vec![M(vec![(0, U(0)), (2, U(0))])])),
            ]),
        ),
        (3, A(vec![M(vec![(1, U(1)), (4, U(0)), (-9, N(-300))])])),
    ]);
    let mut o = vec![0x83];
    enc(&T("C-DNS"), &mut o);
    enc(&preamble, &mut o);
    enc(&Ai(vec![block0, block1]), &mut o);
    o
}

fn gen_file(prefix: bool) -> Vec<u8> {
    gen(prefix, false)
}

// ------------------------------------------------------------- CBOR extents

/// Length of the CBOR item at `p` (input known well-formed).
fn item_len(b: &[u8], p: usize) -> usize {
    let ai = b[p] & 31;
    let major = b[p] >> 5;
    let (n, h) = match ai {
        0..=23 => (u64::from(ai), 1),
        24..=27 => {
            let k = 1usize << (ai - 24);
            (
                b[p + 1..p + 1 + k]
                    .iter()
                    .fold(0u64, |a, &x| (a << 8) | u64::from(x)),
                1 + k,
            )
        }
        _ => (0, 1),
    };
    let mut q = p + h;
    match (major, ai) {
        (2..=5, 31) => {
            while b[q] != 0xff {
                q += item_len(b, q);
            }
            q + 1 - p
        }
        (2 | 3, _) => h + n as usize,
        (4 | 5, _) => {
            for _ in 0..n * if major == 5 { 2 } else { 1 } {
                q += item_len(b, q);
            }
            q - p
        }
        (6, _) => h + item_len(b, q),
        _ => h,
    }
}

/// Start of the block array body and the end offset of every block.
fn block_ends(f: &[u8]) -> (usize, Vec<usize>) {
    let mut p = 1 + 6;
    p += item_len(f, p);
    assert_eq!(f[p], 0x9f, "samples use an indefinite block array");
    p += 1;
    let start = p;
    let mut ends = Vec::new();
    while f[p] != 0xff {
        p += item_len(f, p);
        ends.push(p);
    }
    (start, ends)
}

// ------------------------------------------------------------------ corpus

fn corpus() -> Option<PathBuf> {
    match std::env::var_os("IPWASH_CORPUS") {
        Some(c) => Some(PathBuf::from(c).join("cdns")),
        None => {
            eprintln!("IPWASH_CORPUS not set: skipping corpus part");
            None
        }
    }
}

const SAMPLES: &[&str] = &[
    "compactor-testdata/gold.cdns.xz",
    "cdnsrdr-testdata/cdns_test_file.cdns",
    "generated/testcontent-full.cdns",
    "generated/testcontent-prefix.cdns",
    "generated/nsd-live.cdns.xz",
    "generated/matching.cdns.gz",
    "generated/malformed.cdns",
];

fn load(p: &std::path::Path) -> Vec<u8> {
    use std::io::Read;
    let raw = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = Vec::new();
    if raw.starts_with(b"\xfd7zXZ\0") {
        liblzma::read::XzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
    } else if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = raw;
    }
    out
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let Some(c) = corpus() else { return Vec::new() };
    SAMPLES
        .iter()
        .map(|s| (s.to_string(), load(&c.join(s))))
        .collect()
}

// ------------------------------------------------------------------- tests

#[test]
fn identity_copy_is_byte_identical() {
    for prefix in [false, true] {
        let f = gen_file(prefix);
        let (out, r) = run(&f, &mut identity(), &COPY);
        let st = r.unwrap();
        assert_eq!(out, f);
        assert_eq!(st.blocks, 2);
        assert_eq!(st.records, 5);
        assert_eq!(st.addresses, 8 + 2);
    }
    for (name, f) in samples() {
        let (out, r) = run(&f, &mut identity(), &COPY);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out == f, "{name}: identity output differs");
    }
}

#[test]
fn generated_not_all() {
    let spec = Spec {
        tech: Tech::Not,
        clients_only: false,
        blank: true,
    };
    for prefix in [false, true] {
        for bad in [false, true] {
            let f = gen(prefix, bad);
            let (out, r) = run(&f, &mut washer(spec), &CdnsOptions::default());
            let st = r.unwrap();
            assert_eq!(check(&f, &out, spec, "ipwash:not"), 0);
            assert_eq!(st.split_entries, 0);
            // Two ECS options in OPT RDATA, one in a malformed payload.
            assert_eq!(st.ecs_rewritten, 3);
            // The bad OPT RDATA and the unparsable payload.
            assert_eq!(st.blanked, if bad { 2 } else { 0 });
            assert_eq!(st.rewritten, 8 + 2);
        }
    }
}

#[test]
fn generated_clients_split() {
    let spec = Spec {
        tech: Tech::Not,
        clients_only: true,
        blank: false,
    };
    let f = gen_file(false);
    let (out, r) = run(
        &f,
        &mut washer(spec),
        &CdnsOptions {
            keep_collection_info: true,
            mark_output: true,
        },
    );
    let st = r.unwrap();
    assert_eq!(check(&f, &out, spec, "ipwash:not?scope=clients"), 1);
    assert_eq!(st.split_entries, 1);
    // E stays (server), its washed copy is appended, both client uses
    // (Q/R and address event) point at the copy.
    let t = dec(&out);
    let b0 = &blocks(&t)[0];
    let table = arr(get(get(b0, 2).unwrap(), 0));
    assert_eq!(table.len(), 7);
    assert_eq!(bytes(&table[4]), v4("10.0.0.1"));
    assert_eq!(bytes(&table[6]), v4("245.255.255.254"));
    assert_eq!(u(get(&arr(get(b0, 3))[2], 1)), Some(6));
    assert_eq!(u(get(&arr(get(b0, 4))[0], 2)), Some(6));
    // Server addresses kept.
    assert_eq!(bytes(&table[0]), v4("192.0.2.1"));
}

#[test]
fn generated_truncation() {
    for clients_only in [false, true] {
        let spec = Spec {
            tech: Tech::Trunc(24, 48),
            clients_only,
            blank: true,
        };
        let f = gen_file(false);
        let (out, r) = run(&f, &mut washer(spec), &CdnsOptions::default());
        r.unwrap();
        let method = if clients_only {
            "ipwash:truncate?ipv4=24&ipv6=48&scope=clients"
        } else {
            "ipwash:truncate?ipv4=24&ipv6=48"
        };
        check(&f, &out, spec, method);
        // Client entries are stored as prefixes.
        let t = dec(&out);
        let table = arr(get(get(&blocks(&t)[0], 2).unwrap(), 0));
        assert_eq!(bytes(&table[1]), vec![198, 51, 100]);
        assert_eq!(bytes(&table[3]), v6("2001:db8:1::")[..6].to_vec());
        // The output is itself a valid prefix-storage file: washing it again
        // changes nothing but is accepted.
        let (again, r) = run(&out, &mut washer(spec), &CdnsOptions::default());
        r.unwrap();
        let (a, b) = (dec(&out), dec(&again));
        assert_eq!(blocks(&a), blocks(&b));
    }
}

#[test]
fn prefix_storage_needs_prefix_technique() {
    let mut inputs = vec![("generated".to_string(), gen_file(true))];
    if let Some(c) = corpus() {
        inputs.push((
            "testcontent-prefix".into(),
            load(&c.join("generated/testcontent-prefix.cdns")),
        ));
    }
    for (name, f) in inputs {
        let mut w = Washer::new(Technique::Stateless(Arc::new(Add)));
        w.info.name = "add".into();
        let (out, r) = run(&f, &mut w, &CdnsOptions::default());
        let e = r.expect_err(&name);
        assert!(
            matches!(e, CdnsError::NeedsFullAddress { .. }),
            "{name}: {e}"
        );
        assert!(e.is_usage());
        assert!(e.to_string().contains("add"));
        assert!(out.is_empty(), "{name}: nothing written");
        // On full-address files the same technique is fine.
        let (_, r) = run(&gen_file(false), &mut w, &CdnsOptions::default());
        r.unwrap();
    }
}

#[test]
fn corpus_semantics() {
    for (name, f) in samples() {
        for spec in [
            Spec {
                tech: Tech::Not,
                clients_only: false,
                blank: true,
            },
            Spec {
                tech: Tech::Not,
                clients_only: true,
                blank: true,
            },
            Spec {
                tech: Tech::Trunc(24, 48),
                clients_only: false,
                blank: true,
            },
        ] {
            let (out, r) = run(&f, &mut washer(spec), &CdnsOptions::default());
            let st = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            let method = match (spec.tech, spec.clients_only) {
                (Tech::Not, false) => "ipwash:not",
                (Tech::Not, true) => "ipwash:not?scope=clients",
                _ => "ipwash:truncate?ipv4=24&ipv6=48",
            };
            let splits = check(&f, &out, spec, method);
            assert_eq!(splits as u64, st.split_entries, "{name}");
            if name.contains("nsd-live") && spec.clients_only {
                // Block 1 has an address used as server and as client.
                assert!(splits >= 1, "{name}: expected a split");
            }
        }
    }
}

/// Cut `f` at `cut`; the run must fail, and the output must be every
/// complete block, closed: identical bytes for an identity copy.
fn check_cut(f: &[u8], cut: usize, start: usize, ends: &[usize]) {
    let (out, r) = run(&f[..cut], &mut identity(), &COPY);
    let e = r.expect_err("cut input must fail");
    if cut < start {
        assert!(
            out.is_empty(),
            "cut {cut} in the header: nothing written ({e})"
        );
        return;
    }
    let k = ends.iter().filter(|&&x| x <= cut).count();
    let b = if k == 0 { start } else { ends[k - 1] };
    let mut want = f[..b].to_vec();
    want.push(0xff);
    assert!(
        out == want,
        "cut {cut}: output is not the {k} complete blocks"
    );
    match e {
        CdnsError::Truncated { block, offset } => {
            assert_eq!(block, k as u64, "cut {cut}");
            assert_eq!(offset, cut as u64, "cut {cut}");
        }
        e => panic!("cut {cut}: unexpected {e}"),
    }
    // With a real technique the output is still a valid C-DNS file.
    let spec = Spec {
        tech: Tech::Not,
        clients_only: false,
        blank: true,
    };
    let (out, r) = run(&f[..cut], &mut washer(spec), &CdnsOptions::default());
    assert!(r.is_err());
    let t = dec(&out);
    assert_eq!(blocks(&t).len(), k, "cut {cut}");
}

#[test]
fn cut_at_every_offset_generated() {
    let f = gen_file(false);
    let (start, ends) = block_ends(&f);
    for cut in 0..f.len() {
        check_cut(&f, cut, start, &ends);
    }
}

#[test]
fn cut_corpus() {
    for (name, f) in samples() {
        let (start, ends) = block_ends(&f);
        let mut cuts: Vec<usize> = (0..40).map(|i| i * f.len() / 40).collect();
        for &e in &ends {
            cuts.extend([e - 1, e, e + 1]);
        }
        cuts.extend([start - 1, start, f.len() - 1]);
        for cut in cuts.into_iter().filter(|&c| c < f.len()) {
            eprintln!("{name} cut {cut}");
            check_cut(&f, cut, start, &ends);
        }
    }
}

#[test]
fn corrupt_block_is_reported_and_earlier_blocks_kept() {
    let f = gen_file(false);
    let (_, ends) = block_ends(&f);
    // A reserved CBOR head where block 1 starts.
    let mut bad = f.clone();
    bad[ends[0]] = 0x1c;
    let (out, r) = run(&bad, &mut identity(), &COPY);
    let e = r.unwrap_err();
    assert!(
        matches!(e, CdnsError::Corrupt { block: 1, offset, .. } if offset == ends[0] as u64),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("block 1") && msg.contains(&format!("byte {}", ends[0])),
        "{msg}"
    );
    let mut want = f[..ends[0]].to_vec();
    want.push(0xff);
    assert_eq!(out, want);
    assert_eq!(blocks(&dec(&out)).len(), 1);

    // Well-formed CBOR, wrong type: block 1's client-address-index as text.
    // Block 1's Q/R is `a3 01 01 04 00 28 19 01 2b`.
    let mut bad = f.clone();
    let at = (ends[0]..f.len())
        .rev()
        .find(|&i| f[i] == 0xa3 && f[i + 1] == 0x01)
        .unwrap();
    bad[at + 2] = 0x60; // "" instead of 1
    let (out, r) = run(&bad, &mut identity(), &COPY);
    let e = r.unwrap_err();
    assert!(
        matches!(e, CdnsError::Corrupt { block: 1, offset, .. } if offset == (at + 2) as u64),
        "{e}"
    );
    assert_eq!(blocks(&dec(&out)).len(), 1);
}

#[test]
fn not_cdns_is_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("pcap", vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0]),
        ("wrong id", {
            let mut f = gen_file(false);
            f[5] = b'X';
            f
        }),
        ("text", b"hello world, this is not CBOR".to_vec()),
    ];
    for (name, f) in cases {
        let (out, r) = run(&f, &mut identity(), &COPY);
        let e = r.expect_err(name);
        assert!(matches!(e, CdnsError::NotCdns { .. }), "{name}: {e}");
        assert!(!e.is_usage());
        assert!(out.is_empty());
    }
    // Major version 2.
    let mut f = gen_file(false);
    let at = f.windows(2).position(|w| w == [0x00, 0x01]).unwrap();
    f[at + 1] = 0x02;
    let (out, r) = run(&f, &mut identity(), &COPY);
    assert!(matches!(
        r,
        Err(CdnsError::UnsupportedVersion { major: 2, minor: 0 })
    ));
    assert!(out.is_empty());

    if let Some(c) = corpus() {
        let f = load(&c.join("compactor-testdata/gold.cbor05.xz"));
        let (out, r) = run(&f, &mut identity(), &COPY);
        let e = r.unwrap_err();
        assert!(
            matches!(e, CdnsError::UnsupportedVersion { major: 0, minor: 5 }),
            "{e}"
        );
        assert!(e.to_string().contains("0.5"));
        assert!(out.is_empty());
    }
}

#[test]
fn trailing_data_is_reported_after_complete_output() {
    let f = gen_file(false);
    let mut g = f.clone();
    g.extend_from_slice(b"junk");
    let (out, r) = run(&g, &mut identity(), &COPY);
    assert!(matches!(r, Err(CdnsError::Corrupt { block: 2, .. })));
    assert_eq!(out, f);
}

#[test]
fn definite_block_array_is_written_indefinite() {
    let f = gen_file(false);
    let (start, ends) = block_ends(&f);
    let mut g = f[..start - 1].to_vec();
    g.push(0x82);
    g.extend_from_slice(&f[start..ends[1]]);
    let (out, r) = run(&g, &mut identity(), &COPY);
    assert_eq!(r.unwrap().blocks, 2);
    assert_eq!(out, f);
    // Cut inside block 1: block 0 written, output valid.
    let (out, r) = run(&g[..ends[0] + 3], &mut identity(), &COPY);
    assert!(matches!(r, Err(CdnsError::Truncated { block: 1, .. })));
    assert_eq!(blocks(&dec(&out)).len(), 1);
}

#[test]
fn byte_flips_never_panic_and_output_stays_valid() {
    let f = gen(false, true);
    let spec = Spec {
        tech: Tech::Not,
        clients_only: true,
        blank: true,
    };
    for i in 0..f.len() {
        for v in [0x00, 0x18, 0x1c, 0x5f, 0x7f, 0x9f, 0xbb, 0xff, f[i] ^ 1] {
            let mut g = f.clone();
            g[i] = v;
            for mut w in [identity(), washer(spec)] {
                let (out, r) = run(&g, &mut w, &CdnsOptions::default());
                if r.is_ok() || !out.is_empty() {
                    let t: Result<Value, _> = ciborium::from_reader(&out[..]);
                    assert!(t.is_ok(), "flip {i}={v:#x}: output does not decode ({r:?})");
                }
            }
        }
    }
}

// ------------------------------------------------------------ query reader

use ipwash::cdns::{for_each_query, normalise_qname};
use std::collections::BTreeSet;
use std::net::IpAddr;

type Query = (u64, IpAddr, String, u16);

fn read_queries(f: &[u8]) -> Result<Vec<Query>, CdnsError> {
    let mut v = Vec::new();
    let n = for_each_query(f, |ts, c, q, t| {
        v.push((ts, c, q.to_string(), t));
        Ok(())
    })?;
    assert_eq!(n, v.len() as u64);
    Ok(v)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A two-block file for the query reader. Block 0 uses full addresses and
/// microsecond ticks; block 1 uses parameters with 1000 ticks per second and
/// client prefixes /20 (3 bytes) and /40 (5 bytes). Every item that is not a
/// deliverable IN query says why in a comment.
fn gen_queries() -> Vec<u8> {
    let storage = |tps: u64, extra: Vec<(i64, V)>| {
        let mut s = vec![
            (0, U(tps)),
            (1, U(5000)),
            (2, M(vec![(0, U(0x3ffff)), (1, U(0x1ffff)), (2, U(3))])),
            (3, A(vec![U(0)])),
            (4, A(vec![U(1), U(28)])),
        ];
        s.extend(extra);
        M(s)
    };
    let preamble = M(vec![
        (0, U(1)),
        (1, U(0)),
        (
            3,
            A(vec![
                M(vec![(0, storage(1_000_000, vec![]))]),
                Mi(vec![(
                    0,
                    storage(1000, vec![(6, U(20)), (7, U(40)), (-4, T("x"))]),
                )]),
            ]),
        ),
    ]);
    let ct = |t: u64, c: u64| M(vec![(0, U(t)), (1, U(c))]);
    let block0 = M(vec![
        (0, M(vec![(0, A(vec![U(1_600_000_000), U(999_000)]))])),
        (
            2,
            Mi(vec![
                (
                    0,
                    A(vec![
                        B(v4("192.0.2.1")),
                        B(v4("198.51.100.7")),
                        B(v6("2001:db8:1::7")),
                        B(v4("10.0.0.1")),
                    ]),
                ),
                (1, A(vec![ct(1, 1), ct(28, 1), ct(16, 3)])),
                (
                    2,
                    Ai(vec![
                        B(b"\x07EXAMPLE\x03com\x00".to_vec()),
                        B(b"\x00".to_vec()),
                        B(b"\x04a.b\\\x03\x00\x7fZ\x00".to_vec()),
                        B(b"\x03www\xc0\x0c".to_vec()),
                    ]),
                ),
                (
                    3,
                    A(vec![
                        // 0: IPv4, query and response, A IN.
                        M(vec![(0, U(0)), (2, U(0)), (4, U(3)), (8, U(0))]),
                        // 1: IPv6, query only, AAAA IN.
                        Mi(vec![(2, U(1)), (4, U(1)), (8, U(1))]),
                        // 2: response only.
                        M(vec![(2, U(0)), (4, U(2)), (8, U(0))]),
                        // 3: class CH.
                        M(vec![(2, U(0)), (4, U(1)), (8, U(2))]),
                        // 4: query without a question.
                        M(vec![(2, U(0)), (4, U(0x11)), (8, U(0))]),
                        // 5: no class/type.
                        M(vec![(2, U(0)), (4, U(1))]),
                        // 6: no transport flags (family from length).
                        M(vec![(4, U(1)), (8, U(0))]),
                    ]),
                ),
            ]),
        ),
        (
            3,
            Ai(vec![
                M(vec![(0, U(1000)), (1, U(1)), (4, U(0)), (7, U(0))]),
                Mi(vec![(7, U(1)), (4, U(1)), (1, U(2)), (0, U(0))]),
                M(vec![(0, U(1)), (1, U(1)), (4, U(2)), (7, U(0))]), // response only
                M(vec![(0, U(1)), (1, U(1)), (4, U(3)), (7, U(0))]), // CH
                M(vec![(0, U(1)), (1, U(1)), (4, U(4)), (7, U(0))]), // no question
                M(vec![(0, U(1)), (1, U(1)), (4, U(5)), (7, U(0))]), // no class/type
                M(vec![(0, U(1)), (4, U(0)), (7, U(0))]),            // no client
                M(vec![(0, U(1)), (1, U(1)), (4, U(0))]),            // no name
                M(vec![(0, U(1)), (1, U(1)), (4, U(0)), (7, U(3))]), // bad name
                M(vec![(0, U(1)), (1, U(99)), (4, U(0)), (7, U(0))]), // dangling
                M(vec![(0, U(1)), (1, U(1)), (7, U(0))]),            // no signature
                M(vec![(0, U(2_500_000)), (1, U(3)), (4, U(6)), (7, U(2))]),
                // No time-offset: the block's earliest time.
                M(vec![(1, U(1)), (4, U(0)), (7, U(2)), (-2, U(7))]),
            ]),
        ),
        (4, A(vec![M(vec![(0, U(2)), (2, U(0)), (4, U(5))])])),
    ]);
    let block1 = Mi(vec![
        (
            0,
            M(vec![(0, A(vec![U(1_700_000_000), U(500)])), (1, U(1))]),
        ),
        (
            2,
            M(vec![
                (
                    0,
                    A(vec![
                        B(vec![10, 1, 0xff]),
                        B(vec![0x20, 1, 0xd, 0xb8, 0xab]),
                    ]),
                ),
                (1, A(vec![ct(1, 1)])),
                (2, A(vec![B(b"\x03FoO\x00".to_vec())])),
                (
                    3,
                    A(vec![
                        M(vec![(2, U(0)), (4, U(1)), (8, U(0))]),
                        M(vec![(2, U(1)), (4, U(1)), (8, U(0))]),
                        M(vec![(4, U(1)), (8, U(0))]),
                    ]),
                ),
            ]),
        ),
        (
            3,
            A(vec![
                M(vec![(0, U(499)), (1, U(0)), (4, U(0)), (7, U(0))]),
                M(vec![(0, U(500)), (1, U(1)), (4, U(1)), (7, U(0))]),
                M(vec![(0, U(0)), (1, U(0)), (4, U(2)), (7, U(0))]),
                // A negative offset (not RFC 8618, accepted) before the
                // earliest time.
                M(vec![(0, N(-600)), (1, U(0)), (4, U(0)), (7, U(0))]),
            ]),
        ),
    ]);
    let mut o = vec![0x83];
    enc(&T("C-DNS"), &mut o);
    enc(&preamble, &mut o);
    enc(&Ai(vec![block0, block1]), &mut o);
    o
}

#[test]
fn queries_generated_exact() {
    let got = read_queries(&gen_queries()).unwrap();
    let s = |x: &str| x.to_string();
    let want: Vec<Query> = vec![
        // 1_600_000_000 s + 999_000 µs + 1000 µs.
        (1_600_000_001, ip("198.51.100.7"), s("example.com"), 1),
        (1_600_000_000, ip("2001:db8:1::7"), s(""), 28),
        // 999_000 + 2_500_000 µs = 3.499 s.
        (1_600_000_003, ip("10.0.0.1"), s(r"a\.b\\.\000\127z"), 1),
        (1_600_000_000, ip("198.51.100.7"), s(r"a\.b\\.\000\127z"), 1),
        // 500 + 499 ms; /20 keeps 10.1.240.0 of 10.1.255.x.
        (1_700_000_000, ip("10.1.240.0"), s("foo"), 1),
        // 500 + 500 ms; /40 stored in 5 bytes, nothing to clear.
        (1_700_000_001, ip("2001:db8:ab00::"), s("foo"), 1),
        // No transport flags: 3 bytes can only be the IPv4 /20.
        (1_700_000_000, ip("10.1.240.0"), s("foo"), 1),
        // 500 - 600 ms.
        (1_699_999_999, ip("10.1.240.0"), s("foo"), 1),
    ];
    assert_eq!(got, want);
}

#[test]
fn queries_callback_stop_and_damage() {
    let f = gen_queries();
    // The callback's error stops the run and names the block.
    let mut seen = 0;
    let e = for_each_query(&f[..], |_, _, _, _| {
        seen += 1;
        if seen == 5 {
            Err("enough".into())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert_eq!(seen, 5);
    match e {
        CdnsError::Stopped { block, msg, .. } => assert_eq!((block, msg.as_str()), (1, "enough")),
        e => panic!("{e}"),
    }
    // Cut anywhere: an error, never a panic; cut inside block 1, the queries
    // of block 0 were delivered first.
    let (start, ends) = block_ends(&f);
    for cut in 0..f.len() {
        let mut n = 0u64;
        let r = for_each_query(&f[..cut], |_, _, _, _| {
            n += 1;
            Ok(())
        });
        assert!(r.is_err(), "cut {cut}");
        if cut >= ends[1] {
            assert_eq!(n, 8, "cut {cut}");
        } else if cut >= ends[0] {
            assert_eq!(n, 4, "cut {cut}");
        }
        if cut > start && cut < ends[0] {
            assert_eq!(n, 0, "cut {cut}");
            assert!(
                matches!(r, Err(CdnsError::Truncated { block: 0, .. })),
                "cut {cut}"
            );
        }
    }
    // Byte flips never panic.
    for i in 0..f.len() {
        for x in [0x01u8, 0x20, 0x80, 0xff] {
            let mut g = f.clone();
            g[i] ^= x;
            let _ = for_each_query(&g[..], |_, _, _, _| Ok(()));
        }
    }
    // Not C-DNS.
    assert!(matches!(
        for_each_query(&b"\x83\x65C-DNX"[..], |_, _, _, _| Ok(())),
        Err(CdnsError::NotCdns { .. })
    ));
}

#[test]
fn normalise_qname_examples() {
    assert_eq!(normalise_qname(b"\x02Ab\x00").as_deref(), Some("ab"));
    assert_eq!(normalise_qname(b"\x00").as_deref(), Some(""));
    assert_eq!(normalise_qname(b"\x01 \x00").as_deref(), Some(r"\032"));
    assert_eq!(normalise_qname(b"\x02ab\x01"), None);
}

/// Canonical text of a wire name, written independently of the library:
/// ASCII lower-cased, printable ASCII kept, `.`/`\` escaped, others `\DDD`.
fn name_text(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut s = String::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            return Some((s, at + 1));
        }
        if len > 63 {
            return None;
        }
        if !s.is_empty() || at > 12 {
            s.push('.');
        }
        for &b in msg.get(at + 1..at + 1 + len)? {
            match b {
                b'.' | b'\\' => {
                    s.push('\\');
                    s.push(b as char);
                }
                0x21..=0x7e => s.push(b.to_ascii_lowercase() as char),
                _ => s.push_str(&format!("\\{b:03}")),
            }
        }
        at += 1 + len;
    }
}

/// (seconds, client, qname) of every QR=0 class-IN query in a pcap (UDP,
/// and TCP segments holding whole length-prefixed messages).
fn pcap_client_names(raw: &[u8]) -> BTreeSet<(u64, IpAddr, String)> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let cap = pcap_parser::PcapCapture::from_file(raw).expect("pcap");
    let linktype = cap.header.network.0;
    let mut out = BTreeSet::new();
    for blk in &cap.blocks {
        let p = match linktype {
            1 => SlicedPacket::from_ethernet(blk.data),
            101 => SlicedPacket::from_ip(blk.data),
            other => panic!("linktype {other} not handled"),
        };
        let Ok(p) = p else { continue };
        let src = match &p.net {
            Some(NetSlice::Ipv4(v4)) => IpAddr::V4(v4.header().source_addr()),
            Some(NetSlice::Ipv6(v6)) => IpAddr::V6(v6.header().source_addr()),
            _ => continue,
        };
        let mut msgs: Vec<&[u8]> = Vec::new();
        match &p.transport {
            Some(TransportSlice::Udp(u)) if u.destination_port() == 53 => msgs.push(u.payload()),
            Some(TransportSlice::Tcp(t)) if t.destination_port() == 53 => {
                let mut b = t.payload();
                while b.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
                    let Some(m) = b.get(2..2 + n) else { break };
                    msgs.push(m);
                    b = &b[2 + n..];
                }
            }
            _ => {}
        }
        for m in msgs {
            if m.len() < 12 || m[2] & 0x80 != 0 || m[4..6] == [0, 0] {
                continue;
            }
            let Some((name, end)) = name_text(m, 12) else {
                continue;
            };
            if m.get(end + 2..end + 4) == Some(&[0, 1]) {
                out.insert((u64::from(blk.ts_sec), src, name));
            }
        }
    }
    out
}

#[test]
fn queries_gold_match_source_pcap() {
    let Some(c) = corpus() else { return };
    let dir = c.join("compactor-testdata");
    let cdns = load(&dir.join("gold.cdns.xz"));
    let pcap = load(&dir.join("dns.pcap.xz"));
    let got = read_queries(&cdns).unwrap();
    assert!(!got.is_empty());
    // Times too: the query's capture second.
    let from_cdns: BTreeSet<(u64, IpAddr, String)> =
        got.iter().map(|q| (q.0, q.1, q.2.clone())).collect();
    let from_pcap = pcap_client_names(&pcap);
    eprintln!(
        "gold: {} queries, {} distinct (time, client, name); pcap: {}",
        got.len(),
        from_cdns.len(),
        from_pcap.len()
    );
    let only_cdns: Vec<_> = from_cdns.difference(&from_pcap).take(5).collect();
    let only_pcap: Vec<_> = from_pcap.difference(&from_cdns).take(5).collect();
    assert!(
        only_cdns.is_empty() && only_pcap.is_empty(),
        "C-DNS {} vs pcap {}; only in C-DNS {only_cdns:?}; only in pcap {only_pcap:?}",
        from_cdns.len(),
        from_pcap.len()
    );
}

#[test]
fn queries_cdnsrdr_match_reference_dump() {
    let Some(c) = corpus() else { return };
    let dir = c.join("cdnsrdr-testdata");
    let got = read_queries(&load(&dir.join("cdns_test_file.cdns"))).unwrap();
    assert!(!got.is_empty());
    for q in &got {
        assert!(!q.2.bytes().any(|b| b.is_ascii_uppercase()), "{q:?}");
    }
    // cdnsrdr's text dump: one line per Q/R item; query lines carry the
    // time in microseconds, the name (with a trailing dot) and CL=/RR=.
    let dump = String::from_utf8(load(&dir.join("cdns_test_ref_rfc.txt.xz"))).unwrap();
    let mut want = Vec::new();
    for line in dump.lines().filter(|l| l.starts_with("Qsize:")) {
        let Some(cl) = line.rfind(", CL=") else {
            continue;
        };
        let (head, tail) = line.split_at(cl);
        let mut f = tail[5..].split(", RR=");
        let class: u64 = f.next().unwrap().parse().unwrap();
        let qtype: u16 = f.next().unwrap().parse().unwrap();
        if class != 1 {
            continue;
        }
        let t: u64 = head
            .split("t: ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let name = head.rsplit(", ").next().unwrap();
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        want.push((t / 1_000_000, name, qtype));
    }
    assert_eq!(got.len(), want.len(), "queries delivered vs dump");
    eprintln!("cdnsrdr: {} queries", got.len());
    // The dump's escapes are ambiguous: compare names without any.
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.0, g.3), (w.0, w.2), "{g:?} vs {w:?}");
        if !w.1.contains('\\') && !g.2.contains('\\') {
            assert_eq!(g.2, w.1);
        }
    }
}

#[test]
fn queries_prefix_file_matches_full_file() {
    let Some(c) = corpus() else { return };
    let full = read_queries(&load(&c.join("generated/testcontent-full.cdns"))).unwrap();
    let pre = read_queries(&load(&c.join("generated/testcontent-prefix.cdns"))).unwrap();
    assert!(!full.is_empty());
    assert_eq!(full.len(), pre.len());
    for (f, p) in full.iter().zip(&pre) {
        let cut = match f.1 {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & !(u32::MAX >> 16))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !(u128::MAX >> 18))),
        };
        assert_eq!((f.0, cut, &f.2, f.3), (p.0, p.1, &p.2, p.3));
    }
    // Every other sample reads without error.
    for (name, f) in samples() {
        read_queries(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// ------------------------------------- reverse names and unknown RR types

/// A wire name from dotted text.
fn wire(n: &str) -> Vec<u8> {
    let mut o = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        o.push(l.len() as u8);
        o.extend(l.as_bytes());
    }
    o.push(0);
    o
}

/// A query for `n`, type `qtype`.
fn query_msg(n: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![0x43, 0x21, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend(wire(n));
    m.extend(qtype.to_be_bytes());
    m.extend([0, 1]);
    m
}

/// One block: `name-rdata` entries, RRs `(classtype-index, rdata-index)`
/// over the class/type table [A, MX], and malformed-message data with the
/// given payloads.
fn names_file(rdata: &[Vec<u8>], rrs: &[(Option<u64>, u64)], payloads: &[Vec<u8>]) -> Vec<u8> {
    let storage = vec![
        (0, U(1_000_000)),
        (1, U(5000)),
        (
            2,
            M(vec![(0, U(0x3ffff)), (1, U(0x1ffff)), (2, U(3)), (3, U(3))]),
        ),
        (3, A(vec![U(0)])),
        (4, A(vec![U(1), U(15), U(41)])),
    ];
    let preamble = M(vec![
        (0, U(1)),
        (1, U(0)),
        (2, U(99)),
        (3, A(vec![M(vec![(0, M(storage))])])),
    ]);
    let rr = |&(ct, rd): &(Option<u64>, u64)| {
        let mut m = vec![(0, U(0))];
        if let Some(c) = ct {
            m.push((1, U(c)));
        }
        m.push((3, U(rd)));
        M(m)
    };
    let block = M(vec![
        (0, M(vec![(0, A(vec![U(1_600_000_000), U(5)]))])),
        (
            2,
            M(vec![
                (0, A(vec![B(v4("192.0.2.1"))])),
                (
                    1,
                    A(vec![
                        M(vec![(0, U(1)), (1, U(1))]),
                        M(vec![(0, U(15)), (1, U(1))]),
                    ]),
                ),
                (2, A(rdata.iter().map(|b| B(b.clone())).collect())),
                (7, A(rrs.iter().map(rr).collect())),
                (
                    8,
                    A(payloads
                        .iter()
                        .map(|p| M(vec![(0, U(0)), (2, U(0)), (3, B(p.clone()))]))
                        .collect()),
                ),
            ]),
        ),
    ]);
    let mut o = vec![0x83];
    enc(&T("C-DNS"), &mut o);
    enc(&preamble, &mut o);
    enc(&Ai(vec![block]), &mut o);
    o
}

fn names_washer() -> Washer {
    let mut w = washer(Spec {
        tech: Tech::Not,
        clients_only: false,
        blank: true,
    });
    w.reverse_names = ipwash::revname::ReverseNames::Wash;
    w
}

/// The `name-rdata` entries and malformed payloads of the only block.
fn names_out(out: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let f = dec(out);
    let t = get(&blocks(&f)[0], 2).unwrap();
    let rd = arr(get(t, 2)).iter().map(bytes).collect();
    let mm = arr(get(t, 8))
        .iter()
        .map(|m| bytes(get(m, 3).unwrap()))
        .collect();
    (rd, mm)
}

/// 198.51.100.7 under NOT is 57.204.155.248.
const REV: &str = "7.100.51.198.in-addr.arpa";
const REV_NOT: &str = "248.155.204.57.in-addr.arpa";

/// Reverse names in malformed-message payloads are washed as in packets;
/// the byte string takes the new length. A payload whose names cannot be
/// rewritten (a non-canonical reverse name) keeps its header and has the
/// rest zeroed.
#[test]
fn malformed_payload_reverse_names() {
    let nc = query_msg("01.100.51.198.in-addr.arpa", 12);
    let plain = query_msg("www.example.com", 1);
    let f = names_file(&[], &[], &[query_msg(REV, 12), nc.clone(), plain.clone()]);
    let (out, r) = run(&f, &mut names_washer(), &CdnsOptions::default());
    let st = r.unwrap();
    let (_, mm) = names_out(&out);
    assert_eq!(mm[0], query_msg(REV_NOT, 12));
    let mut blank = nc[..12].to_vec();
    blank.resize(nc.len(), 0);
    assert_eq!(mm[1], blank);
    assert_eq!(mm[2], plain);
    assert_eq!(st.blanked, 1);
    assert_eq!(st.names.found, 1);
    assert_eq!(st.names.washed, 1);
    // `--reverse-names keep`: payloads as they came.
    let mut keep = names_washer();
    keep.reverse_names = ipwash::revname::ReverseNames::Keep;
    let (out, r) = run(&f, &mut keep, &CdnsOptions::default());
    assert_eq!(r.unwrap().blanked, 0);
    assert_eq!(names_out(&out).1[0], query_msg(REV, 12));
}

/// RDATA of an RR whose type cannot be told (no class/type index, or one
/// past the table) is zeroed when it holds an `arpa` label and is not a
/// whole name (it may be RDATA with a reverse name inside); RDATA of a
/// known type is washed; RDATA without `arpa` is left. With `--answers`,
/// 4- or 16-byte RDATA of an RR of unknown type (possibly A/AAAA) is
/// zeroed.
#[test]
fn rdata_of_unknown_type_fails_closed() {
    let mx = |n: &str| {
        let mut v = vec![0, 10];
        v.extend(wire(n));
        v
    };
    let rdata = vec![
        mx(REV),             // 0: unknown type (no classtype-index)
        mx(REV),             // 1: MX
        mx("mail.example"),  // 2: unknown type, no arpa
        mx(REV),             // 3: dangling classtype-index
        wire(REV),           // 4: a whole name, unknown type
        v4("198.51.100.9"),  // 5: unknown type, 4 bytes
        v4("198.51.100.10"), // 6: A
    ];
    let rrs = [
        (None, 0),
        (Some(1), 1),
        (None, 2),
        (Some(9), 3),
        (None, 4),
        (None, 5),
        (Some(0), 6),
    ];
    let f = names_file(&rdata, &rrs, &[]);
    let (out, r) = run(&f, &mut names_washer(), &CdnsOptions::default());
    let st = r.unwrap();
    let (rd, _) = names_out(&out);
    assert_eq!(rd[0], vec![0; rdata[0].len()]);
    assert_eq!(rd[1], mx(REV_NOT));
    assert_eq!(rd[2], rdata[2]);
    assert_eq!(rd[3], vec![0; rdata[3].len()]);
    assert_eq!(rd[4], wire(REV_NOT));
    // Without --answers, RDATA of A records is not touched.
    assert_eq!(rd[5], rdata[5]);
    assert_eq!(rd[6], rdata[6]);
    assert_eq!(st.blanked, 2);

    let mut w = names_washer();
    w.answers = true;
    let (out, r) = run(&f, &mut w, &CdnsOptions::default());
    let st = r.unwrap();
    let (rd, _) = names_out(&out);
    assert_eq!(rd[5], vec![0; 4]);
    // 16 bytes, so possibly AAAA RDATA.
    assert_eq!(rdata[2].len(), 16);
    assert_eq!(rd[2], vec![0; 16]);
    assert_eq!(rd[6], v4("57.204.155.245"));
    assert_eq!(st.blanked, 4);
    assert_eq!(st.answers_rewritten, 1);
}
