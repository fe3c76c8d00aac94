//! Property tests shared by every technique.
//!
//! Every one-to-one prefix-preserving map is "flip bits on a trie", so one
//! helper ([`check_outputs`]) checks common-prefix-length equality and
//! injectivity for all of them, on random and adversarial address sets.
//! Which properties apply to a technique follows from the registry it is in
//! and from its own `prefix_preserving()`: to cover a new technique, add one
//! line to [`stateless`] (as `Tech::Rev` when it is reversible) or to
//! [`stateful`].
//!
//! Case counts are kept small so the suite stays fast in debug builds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;

use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::prefix_map::PrefixMap;
use ipwash_algorithms::truncate::{TruncMode, Truncate};
use ipwash_algorithms::tsa::{Tsa, MIN_R};
use ipwash_algorithms::{cpl, AddrMap, Key, Reversible, StatefulMap};

// ---------------------------------------------------------------- registry

/// A stateless technique under test.
enum Tech {
    /// Not reversible.
    #[allow(dead_code)]
    Map(Box<dyn AddrMap>),
    /// Reversible: round trips are checked too.
    Rev(Box<dyn Reversible>),
}

impl Tech {
    fn map(&self, a: IpAddr) -> IpAddr {
        match (self, a) {
            (Tech::Map(m), IpAddr::V4(v)) => IpAddr::V4(m.map_v4(v)),
            (Tech::Map(m), IpAddr::V6(v)) => IpAddr::V6(m.map_v6(v)),
            (Tech::Rev(m), IpAddr::V4(v)) => IpAddr::V4(m.map_v4(v)),
            (Tech::Rev(m), IpAddr::V6(v)) => IpAddr::V6(m.map_v6(v)),
        }
    }

    fn prefix_preserving(&self) -> bool {
        match self {
            Tech::Map(m) => m.prefix_preserving(),
            Tech::Rev(m) => m.prefix_preserving(),
        }
    }
}

fn key32(k: &[u8; 32]) -> Key<32> {
    Key::new(*k)
}

/// The first 16 bytes, for techniques with 128-bit keys.
#[allow(dead_code)]
fn key16(k: &[u8; 32]) -> Key<16> {
    let mut b = [0u8; 16];
    b.copy_from_slice(&k[..16]);
    Key::new(b)
}

/// Every keyed stateless technique, one line each.
fn stateless(k: &[u8; 32]) -> Vec<(&'static str, Tech)> {
    vec![
        ("cryptopan", Tech::Rev(Box::new(CryptoPan::new(&key32(k))))),
        (
            "tsa",
            Tech::Rev(Box::new(Tsa::new(&key32(k), MIN_R).unwrap())),
        ),
        // ("ipcrypt-pfx", Tech::Rev(Box::new(IpcryptPfx::new(&key32(k)).unwrap()))),
        // ("ipcipher", Tech::Rev(Box::new(Ipcipher::new(&key16(k))))),
    ]
}

/// Every keyed stateful technique, one line each.
fn stateful(k: &[u8; 32]) -> Vec<(&'static str, Box<dyn StatefulMap>)> {
    vec![
        ("prefix-map", Box::new(PrefixMap::new(&key32(k), false))),
        ("prefix-map -C", Box::new(PrefixMap::new(&key32(k), true))),
    ]
}

/// Fixed distinct keys (halves differ, as ipcrypt-pfx requires).
fn keys() -> [[u8; 32]; 4] {
    let mut out = [[0u8; 32]; 4];
    for (i, k) in out.iter_mut().enumerate() {
        for (j, b) in k.iter_mut().enumerate() {
            *b = (i as u8)
                .wrapping_mul(67)
                .wrapping_add((j as u8).wrapping_mul(29))
                ^ 0x5a;
        }
    }
    out
}

/// Stateless instances for each of [`keys`], built once (TSA tables take a
/// moment in debug builds).
fn cached() -> &'static [Vec<(&'static str, Tech)>] {
    static REG: OnceLock<Vec<Vec<(&'static str, Tech)>>> = OnceLock::new();
    REG.get_or_init(|| keys().iter().map(stateless).collect())
}

fn run_stateful(m: &mut dyn StatefulMap, a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(m.map_v4(v)),
        IpAddr::V6(v) => IpAddr::V6(m.map_v6(v)),
    }
}

// ----------------------------------------------------------------- helpers

fn bits(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(v) => (u32::from(v).into(), 32),
        IpAddr::V6(v) => (v.into(), 128),
    }
}

/// Check that `outs[i]` is a valid image of distinct `ins[i]`: same family,
/// one-to-one, and, when `pp`, `cpl(F(x), F(y)) == cpl(x, y)` for every pair
/// of one family.
fn check_outputs(
    name: &str,
    ins: &[IpAddr],
    outs: &[IpAddr],
    pp: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(ins.len(), outs.len());
    let mut seen: HashMap<IpAddr, IpAddr> = HashMap::new();
    for (&x, &o) in ins.iter().zip(outs) {
        prop_assert_eq!(
            x.is_ipv4(),
            o.is_ipv4(),
            "{}: {} -> {} changes family",
            name,
            x,
            o
        );
        if let Some(prev) = seen.insert(o, x) {
            prop_assert_eq!(prev, x, "{}: {} and {} both map to {}", name, prev, x, o);
        }
    }
    if pp {
        for (i, &x) in ins.iter().enumerate() {
            for (j, &y) in ins.iter().enumerate().skip(i + 1) {
                let ((xb, n), (yb, m)) = (bits(x), bits(y));
                if n != m {
                    continue;
                }
                let (ox, oy) = (bits(outs[i]).0, bits(outs[j]).0);
                prop_assert_eq!(
                    cpl(xb, yb, n),
                    cpl(ox, oy, n),
                    "{}: cpl({}, {}) != cpl({}, {})",
                    name,
                    x,
                    y,
                    outs[i],
                    outs[j]
                );
            }
        }
    }
    Ok(())
}

fn high(k: u32, n: u32) -> u128 {
    let all = if n == 128 { !0u128 } else { (1u128 << n) - 1 };
    all & !all.checked_shr(k).unwrap_or(0)
}

/// Random plus adversarial address sets: random addresses; many addresses
/// sharing one long random prefix; all-zero, all-ones and the class/half
/// boundaries; pairs differing only in the last bit; IPv4-mapped IPv6
/// addresses and their neighbours. Duplicates removed, order random-ish.
fn addr_set() -> impl Strategy<Value = Vec<IpAddr>> {
    (
        any::<u32>(),
        any::<u128>(),
        20u32..32,
        100u32..128,
        vec(any::<u128>(), 4..16),
        any::<bool>(),
    )
        .prop_map(|(b4, b6, k4, k6, rnd, v4_first)| {
            let mut s: Vec<IpAddr> = Vec::new();
            let v4 = |x: u128| IpAddr::V4(Ipv4Addr::from(x as u32));
            let v6 = |x: u128| IpAddr::V6(Ipv6Addr::from(x));
            let mapped = 0xffffu128 << 32;
            for e in [0u128, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff] {
                s.push(v4(e));
            }
            for e in [
                0u128,
                1,
                !0,
                !0 - 1,
                1 << 127,
                (1 << 127) - 1,
                mapped,
                mapped | 0xffff_ffff,
                mapped - 1,
                mapped + (1 << 32),
            ] {
                s.push(v6(e));
            }
            for &r in &rnd {
                // Random.
                s.push(v4(r >> 96));
                s.push(v6(r));
                // Sharing a long prefix with the base, and its last-bit twin.
                let p4 = (u128::from(b4) & high(k4, 32)) | (r & !high(k4, 32) & 0xffff_ffff);
                s.push(v4(p4));
                s.push(v4(p4 ^ 1));
                let p6 = (b6 & high(k6, 128)) | (r & !high(k6, 128));
                s.push(v6(p6));
                s.push(v6(p6 ^ 1));
                // IPv4-mapped.
                s.push(v6(mapped | (r & 0xffff_ffff)));
                s.push(v6(mapped | (u128::from(b4) ^ (r & 0xff))));
            }
            s.push(v4(b4.into()));
            s.push(v4((b4 ^ 1).into()));
            s.push(v6(b6));
            s.push(v6(b6 ^ 1));
            let mut seen = std::collections::HashSet::new();
            s.retain(|a| seen.insert(*a));
            if v4_first {
                s.sort_by_key(|a| a.is_ipv6());
            }
            s
        })
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|x| IpAddr::V4(x.into())),
        any::<u128>().prop_map(|x| IpAddr::V6(x.into())),
        any::<u32>().prop_map(|x| IpAddr::V6(Ipv4Addr::from(x).to_ipv6_mapped())),
    ]
}

// -------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stateless_maps_are_injective_and_prefix_preserving(
        set in addr_set(),
        ki in 0usize..4,
    ) {
        for (name, t) in &cached()[ki] {
            let outs: Vec<IpAddr> = set.iter().map(|&a| t.map(a)).collect();
            check_outputs(name, &set, &outs, t.prefix_preserving())?;
        }
    }

    #[test]
    fn stateful_maps_are_injective_and_prefix_preserving(
        set in addr_set(),
        ki in 0usize..4,
    ) {
        for (name, mut m) in stateful(&keys()[ki]) {
            let outs: Vec<IpAddr> = set.iter().map(|&a| run_stateful(m.as_mut(), a)).collect();
            check_outputs(name, &set, &outs, m.prefix_preserving())?;
            // A second pass returns the recorded outputs.
            let again: Vec<IpAddr> = set.iter().map(|&a| run_stateful(m.as_mut(), a)).collect();
            prop_assert_eq!(&again, &outs, "{} changed on a second pass", name);
            prop_assert_eq!(m.len(), set.len());
        }
    }

    #[test]
    fn reversible_maps_round_trip(set in addr_set(), ki in 0usize..4) {
        for (name, t) in &cached()[ki] {
            let Tech::Rev(r) = t else { continue };
            for &a in &set {
                let back = match a {
                    IpAddr::V4(v) => IpAddr::V4(r.unmap_v4(r.map_v4(v))),
                    IpAddr::V6(v) => IpAddr::V6(r.unmap_v6(r.map_v6(v))),
                };
                prop_assert_eq!(back, a, "{} does not round-trip", name);
            }
        }
    }

    #[test]
    fn batch_equals_single(set in addr_set(), ki in 0usize..4) {
        for (name, t) in &cached()[ki] {
            let (m4, m6): (Vec<Ipv4Addr>, Vec<Ipv6Addr>) = (
                set.iter().filter_map(|a| match a { IpAddr::V4(v) => Some(*v), _ => None }).collect(),
                set.iter().filter_map(|a| match a { IpAddr::V6(v) => Some(*v), _ => None }).collect(),
            );
            let (mut b4, mut b6) = (m4.clone(), m6.clone());
            match t {
                Tech::Map(m) => { m.map_v4_batch(&mut b4); m.map_v6_batch(&mut b6); }
                Tech::Rev(m) => { m.map_v4_batch(&mut b4); m.map_v6_batch(&mut b6); }
            }
            for (a, b) in m4.iter().zip(&b4) {
                prop_assert_eq!(t.map(IpAddr::V4(*a)), IpAddr::V4(*b), "{} batch v4", name);
            }
            for (a, b) in m6.iter().zip(&b6) {
                prop_assert_eq!(t.map(IpAddr::V6(*a)), IpAddr::V6(*b), "{} batch v6", name);
            }
        }
    }

    #[test]
    fn truncation_is_idempotent(
        a in arb_ip(),
        p4 in 0u8..=32,
        p6 in 0u8..=128,
        reverse in any::<bool>(),
    ) {
        let mode = if reverse { TruncMode::Reverse } else { TruncMode::Keep };
        let t = Truncate::new(p4, p6, mode).unwrap();
        let once = match a {
            IpAddr::V4(v) => IpAddr::V4(t.map_v4(v)),
            IpAddr::V6(v) => IpAddr::V6(t.map_v6(v)),
        };
        let twice = match once {
            IpAddr::V4(v) => IpAddr::V4(t.map_v4(v)),
            IpAddr::V6(v) => IpAddr::V6(t.map_v6(v)),
        };
        prop_assert_eq!(once, twice);
        // Keep mode: the kept prefix is unchanged and the rest is zero.
        if !reverse {
            let ((x, n), (o, _)) = (bits(a), bits(once));
            let mapped = matches!(a, IpAddr::V6(v) if v.to_ipv4_mapped().is_some());
            let p = if mapped { 96 + u32::from(p4) } else if n == 32 { u32::from(p4) } else { u32::from(p6) };
            prop_assert_eq!(o, x & high(p, n));
        }
    }

    #[test]
    fn enumeration_is_injective(
        set in addr_set(),
        dnswasher in any::<bool>(),
    ) {
        let numbering = if dnswasher { Numbering::Dnswasher } else { Numbering::Sequential };
        let mut e = Enumerate::new(numbering);
        let outs: Vec<IpAddr> = set.iter().map(|&a| run_stateful(&mut e, a)).collect();
        check_outputs("enumerate", &set, &outs, false)?;
        let again: Vec<IpAddr> = set.iter().map(|&a| run_stateful(&mut e, a)).collect();
        prop_assert_eq!(again, outs);
        // A saved and reloaded state is accepted and identical.
        let state = e.export();
        prop_assert_eq!(Enumerate::import(state.clone()).unwrap().export(), state);
    }
}

// ------------------------------------------------------- fixed properties

/// 64 addresses of each family used for key comparisons.
fn sample() -> Vec<IpAddr> {
    (0..64u32)
        .flat_map(|i| {
            let x = i.wrapping_mul(0x9e37_79b9);
            [
                IpAddr::V4(Ipv4Addr::from(x)),
                IpAddr::V6(Ipv6Addr::from(u128::from(x) << 64 | u128::from(i))),
            ]
        })
        .collect()
}

#[test]
fn same_key_gives_the_same_map() {
    let k = keys()[0];
    let set = sample();
    for ((name, a), (_, b)) in stateless(&k).iter().zip(&cached()[0]) {
        for &x in &set {
            assert_eq!(a.map(x), b.map(x), "{name} {x}");
        }
    }
    for ((name, mut a), (_, mut b)) in stateful(&k).into_iter().zip(stateful(&k)) {
        for &x in &set {
            assert_eq!(
                run_stateful(a.as_mut(), x),
                run_stateful(b.as_mut(), x),
                "{name} {x}"
            );
        }
    }
}

#[test]
fn different_keys_give_different_maps() {
    let set = sample();
    let reg = cached();
    for other in 1..reg.len() {
        for ((name, a), (_, b)) in reg[0].iter().zip(&reg[other]) {
            for fam_v4 in [true, false] {
                let differs = set
                    .iter()
                    .filter(|x| x.is_ipv4() == fam_v4)
                    .any(|&x| a.map(x) != b.map(x));
                assert!(differs, "{name}: keys 0 and {other} agree (v4={fam_v4})");
            }
        }
        let ks = keys();
        for ((name, mut a), (_, mut b)) in stateful(&ks[0]).into_iter().zip(stateful(&ks[other])) {
            let oa: Vec<_> = set.iter().map(|&x| run_stateful(a.as_mut(), x)).collect();
            let ob: Vec<_> = set.iter().map(|&x| run_stateful(b.as_mut(), x)).collect();
            assert_ne!(oa, ob, "{name}: keys 0 and {other} agree");
        }
    }
}

#[test]
fn dnswasher_numbering_sequence() {
    let mut e = Enumerate::new(Numbering::Dnswasher);
    let expect_v4 = |e: &mut Enumerate, a: u32, want: [u8; 4]| {
        assert_eq!(e.map_v4(Ipv4Addr::from(a)), Ipv4Addr::from(want), "{a:#x}");
    };
    // Three IPv4 clients: 0.0.0.0, 1.0.0.0, 2.0.0.0.
    expect_v4(&mut e, 0xc000_0201, [0, 0, 0, 0]);
    expect_v4(&mut e, 0xc000_0202, [1, 0, 0, 0]);
    expect_v4(&mut e, 0xc000_0203, [2, 0, 0, 0]);
    // The next IPv6 client takes the shared counter: ::3.
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(e.map_v6(v6), "::3".parse::<Ipv6Addr>().unwrap());
    // IPv4 continues at 4, little-endian: ..., 255.0.0.0, 0.1.0.0, 1.1.0.0.
    for c in 4u32..=257 {
        let want = c.to_le_bytes();
        expect_v4(&mut e, 0x0a00_0000 + c, want);
    }
    assert_eq!(
        e.map_v4(Ipv4Addr::from(0x0a00_0000 + 255)),
        Ipv4Addr::new(255, 0, 0, 0)
    );
    assert_eq!(
        e.map_v4(Ipv4Addr::from(0x0a00_0000 + 256)),
        Ipv4Addr::new(0, 1, 0, 0)
    );
    assert_eq!(
        e.map_v6("2001:db8::2".parse().unwrap()),
        "::102".parse::<Ipv6Addr>().unwrap()
    );
    // Known addresses keep their numbers.
    assert_eq!(e.map_v6(v6), "::3".parse::<Ipv6Addr>().unwrap());
    expect_v4(&mut e, 0xc000_0202, [1, 0, 0, 0]);
}

#[test]
fn sequential_numbering_sequence() {
    let mut e = Enumerate::new(Numbering::Sequential);
    assert_eq!(
        e.map_v6("2001:db8::9".parse().unwrap()),
        "::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        e.map_v4(Ipv4Addr::new(192, 0, 2, 1)),
        Ipv4Addr::new(0, 0, 0, 1)
    );
    assert_eq!(
        e.map_v4(Ipv4Addr::new(192, 0, 2, 2)),
        Ipv4Addr::new(0, 0, 0, 2)
    );
    assert_eq!(
        e.map_v6("2001:db8::8".parse().unwrap()),
        "::2".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn helper_detects_violations() {
    let ins: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "192.0.2.1", "::1", "::2"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    // One-to-one but not prefix-preserving: rotate IPv4 left by one bit.
    let rot: Vec<IpAddr> = ins
        .iter()
        .map(|&a| match a {
            IpAddr::V4(v) => IpAddr::V4(u32::from(v).rotate_left(1).into()),
            v6 => v6,
        })
        .collect();
    assert!(check_outputs("rot", &ins, &rot, false).is_ok());
    assert!(check_outputs("rot", &ins, &rot, true).is_err());
    // Not one-to-one: truncation to /24.
    let t = Truncate::default();
    let tr: Vec<IpAddr> = ins
        .iter()
        .map(|&a| match a {
            IpAddr::V4(v) => IpAddr::V4(t.map_v4(v)),
            IpAddr::V6(v) => IpAddr::V6(t.map_v6(v)),
        })
        .collect();
    assert!(check_outputs("truncate", &ins, &tr, false).is_err());
    // Family change.
    let mut fam = ins.clone();
    fam[0] = "::ffff:10.0.0.1".parse().unwrap();
    assert!(check_outputs("family", &ins, &fam, false).is_err());
}

// ------------------------------------------- the AES-based ipcipher modes

/// ipcrypt-pfx treats `a.b.c.d` and `::ffff:a.b.c.d` alike (the draft
/// requires it), so across the whole 128-bit space it is prefix-preserving
/// within IPv4 and within IPv6 outside `::ffff:0:0/96`, but not between an
/// IPv4-mapped address and its IPv6 neighbours. The sets here leave out
/// IPv4-mapped addresses; the draft's own vectors cover them.
fn without_mapped(set: Vec<IpAddr>) -> Vec<IpAddr> {
    set.into_iter()
        .filter(|a| match a {
            IpAddr::V6(v) => v.to_ipv4_mapped().is_none(),
            IpAddr::V4(_) => true,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ipcrypt_pfx_is_injective_prefix_preserving_and_reversible(set in addr_set(), ki in 0usize..4) {
        use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
        let set = without_mapped(set);
        let p = IpcryptPfx::new(&key32(&keys()[ki])).unwrap();
        let t = Tech::Rev(Box::new(p));
        let outs: Vec<IpAddr> = set.iter().map(|&a| t.map(a)).collect();
        check_outputs("ipcrypt-pfx", &set, &outs, true)?;
        let Tech::Rev(r) = &t else { unreachable!() };
        for (&a, &o) in set.iter().zip(&outs) {
            let back = match o {
                IpAddr::V4(v) => IpAddr::V4(r.unmap_v4(v)),
                IpAddr::V6(v) => IpAddr::V6(r.unmap_v6(v)),
            };
            prop_assert_eq!(back, a);
        }
    }

    #[test]
    fn ipcipher_is_injective_and_reversible(set in addr_set(), ki in 0usize..4) {
        use ipwash_algorithms::ipcipher::IpCipher;
        let c = IpCipher::new(&key16(&keys()[ki]));
        let t = Tech::Rev(Box::new(c));
        let outs: Vec<IpAddr> = set.iter().map(|&a| t.map(a)).collect();
        check_outputs("ipcipher", &set, &outs, false)?;
        let Tech::Rev(r) = &t else { unreachable!() };
        for (&a, &o) in set.iter().zip(&outs) {
            let back = match o {
                IpAddr::V4(v) => IpAddr::V4(r.unmap_v4(v)),
                IpAddr::V6(v) => IpAddr::V6(r.unmap_v6(v)),
            };
            prop_assert_eq!(back, a);
        }
    }
}

// ------------------------------------------------------------- pass bits

/// Every technique that takes pass bits, with `p4` / `p6` of them: the
/// generic wrapper around cryptopan, tsa and ipcrypt-pfx, and cryptopANT's
/// own (its four key types).
fn with_pass(k: &[u8; 32], p4: u8, p6: u8) -> Vec<(String, Box<dyn Reversible>)> {
    use ipwash_algorithms::cryptopant::{CryptoPant, KeyFile};
    use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
    use ipwash_algorithms::pass::Pass;
    let mut v: Vec<(String, Box<dyn Reversible>)> = vec![
        (
            "cryptopan".into(),
            Box::new(Pass::new(CryptoPan::new(&key32(k)), p4, p6).unwrap()),
        ),
        (
            "tsa".into(),
            Box::new(Pass::new(Tsa::new(&key32(k), MIN_R).unwrap(), p4, p6).unwrap()),
        ),
        (
            "ipcrypt-pfx".into(),
            Box::new(Pass::new(IpcryptPfx::new(&key32(k)).unwrap(), p4, p6).unwrap()),
        ),
    ];
    for t in ["aes", "blowfish", "md5", "sha1"] {
        let p = format!(
            "{}/../testdata/vectors/cryptopant/keyfile.{t}",
            env!("CARGO_MANIFEST_DIR")
        );
        let kf = KeyFile::parse(&std::fs::read(p).unwrap()).unwrap();
        v.push((
            format!("cryptopant-{t}"),
            Box::new(CryptoPant::new(&kf, p4, p6).unwrap()),
        ));
    }
    v
}

fn top_kept(a: IpAddr, o: IpAddr, p4: u8, p6: u8) -> bool {
    let ((x, n), (y, _)) = (bits(a), bits(o));
    let k = u32::from(if n == 32 { p4 } else { p6 });
    x & high(k, n) == y & high(k, n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn pass_bits_keep_the_top_and_map_the_rest_prefix_preservingly(
        set in addr_set(),
        ki in 0usize..4,
        p4 in prop_oneof![Just(0u8), Just(32u8), 0u8..=32],
        p6 in prop_oneof![Just(0u8), Just(128u8), 0u8..=128],
    ) {
        let k = keys()[ki];
        for (name, m) in with_pass(&k, p4, p6) {
            let outs: Vec<IpAddr> = set
                .iter()
                .map(|&a| match a {
                    IpAddr::V4(v) => IpAddr::V4(m.map_v4(v)),
                    IpAddr::V6(v) => IpAddr::V6(m.map_v6(v)),
                })
                .collect();
            for (&a, &o) in set.iter().zip(&outs) {
                prop_assert!(top_kept(a, o, p4, p6), "{}: {} -> {} changes a passed bit", name, a, o);
                let back = match o {
                    IpAddr::V4(v) => IpAddr::V4(m.unmap_v4(v)),
                    IpAddr::V6(v) => IpAddr::V6(m.unmap_v6(v)),
                };
                prop_assert_eq!(back, a, "{} does not round-trip", name);
            }
            // Injective, and prefix-preserving below the passed bits too
            // (ipcrypt-pfx: within the IPv4-mapped block and outside it).
            if name == "ipcrypt-pfx" {
                let mapped = |a: &IpAddr| matches!(a, IpAddr::V6(v) if v.to_ipv4_mapped().is_some());
                for want in [false, true] {
                    let (i, o): (Vec<IpAddr>, Vec<IpAddr>) = set
                        .iter()
                        .zip(&outs)
                        .filter(|(a, _)| mapped(a) == want)
                        .map(|(a, o)| (*a, *o))
                        .unzip();
                    check_outputs(&name, &i, &o, true)?;
                }
                check_outputs(&name, &set, &outs, false)?;
            } else {
                check_outputs(&name, &set, &outs, true)?;
            }
            // The batch paths agree.
            let mut b4: Vec<Ipv4Addr> = set.iter().filter_map(|a| match a { IpAddr::V4(v) => Some(*v), _ => None }).collect();
            let want4: Vec<Ipv4Addr> = b4.iter().map(|&v| m.map_v4(v)).collect();
            m.map_v4_batch(&mut b4);
            prop_assert_eq!(b4, want4, "{} batch", name);
        }
        // prefix-map keeps the passed bits natively, in its table.
        let mut pm = PrefixMap::with_pass(&key32(&k), ki % 2 == 0, p4, p6);
        let outs: Vec<IpAddr> = set.iter().map(|&a| run_stateful(&mut pm, a)).collect();
        for (&a, &o) in set.iter().zip(&outs) {
            prop_assert!(top_kept(a, o, p4, p6), "prefix-map: {} -> {} changes a passed bit", a, o);
        }
        check_outputs("prefix-map", &set, &outs, true)?;
        // Its saved table loads back with the same pass bits.
        let st = pm.export();
        let again = PrefixMap::import(&key32(&k), &st).unwrap();
        prop_assert_eq!(again.export(), st);
    }
}

#[test]
fn pass_bits_of_32_and_128_change_nothing() {
    let k = keys()[0];
    for (name, m) in with_pass(&k, 32, 128) {
        for x in [0u32, 1, 0x0a00_0001, 0xdead_beef, u32::MAX] {
            let a = Ipv4Addr::from(x);
            assert_eq!(m.map_v4(a), a, "{name}");
        }
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(m.map_v6(a), a, "{name}");
    }
}
