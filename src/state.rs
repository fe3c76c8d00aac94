//! Saving and loading the tables of the stateful techniques (enumeration and
//! the prefix map) as CSV, so several files and several runs share one
//! mapping.
//!
//! The file has the columns `kind,family,original,replacement`:
//! - `param` rows name the method, its options and (for keyed methods) a key
//!   identifier, a one-way value that tells keys apart without revealing them;
//! - `counter` rows hold the counters or random-stream positions;
//! - `pair` rows hold `original -> replacement`, in order of first appearance;
//! - `mac` rows (family `mac`) hold the MAC numbering of `enumerate` with
//!   `--mac wash`, in numbering order.
//!
//! Loading refuses a file made by another method, other options or another
//! key, since mixing them would break the one-to-one mapping. Saving writes
//! a temporary file (mode 0600: the table is as secret as a key) and renames
//! it over the old one.

use std::net::IpAddr;
use std::path::Path;

use ipwash_algorithms::enumerate::{EnumState, Enumerate, Numbering};
use ipwash_algorithms::prefix_map::{PrefixMap, PrefixState};

use crate::error::CliError;
use crate::mac::MacMap;
use crate::method::{read_key, Method, MethodArgs};
use crate::wash::{StatefulTech, Technique};

fn fam(a: &IpAddr) -> &'static str {
    if a.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

/// A key identifier: AES-128 under each key half of a fixed block, XORed,
/// first 8 bytes, in hex. One-way, and different for different keys.
pub fn key_id(key: &[u8; 32]) -> String {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let mut out = [0u8; 16];
    for half in key.chunks(16) {
        let Ok(c) = aes::Aes128::new_from_slice(half) else {
            continue;
        };
        let mut b = aes::Block::from(*b"ipwash-state-id1");
        c.encrypt_block(&mut b);
        for (o, x) in out.iter_mut().zip(b.iter()) {
            *o ^= x;
        }
    }
    out[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A MAC address and its number.
type MacPair = ([u8; 6], [u8; 6]);

struct Rows(Vec<[String; 4]>);

impl Rows {
    fn param(&mut self, name: &str, value: &str) {
        self.0
            .push(["param".into(), String::new(), name.into(), value.into()]);
    }
    fn counter(&mut self, family: &str, value: u128) {
        self.0.push([
            "counter".into(),
            family.into(),
            String::new(),
            value.to_string(),
        ]);
    }
    fn pair(&mut self, a: &IpAddr, b: &IpAddr) {
        self.0
            .push(["pair".into(), fam(a).into(), a.to_string(), b.to_string()]);
    }
}

fn err(path: &Path, msg: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("state file {}: {msg}", path.display()))
}

fn numbering_name(n: Numbering) -> &'static str {
    match n {
        Numbering::Sequential => "sequential",
        Numbering::Dnswasher => "dnswasher",
    }
}

/// Save the technique's table to `path`, atomically (temporary file and
/// rename), mode 0600 (an existing file's stricter mode is kept).
pub fn save(path: &Path, tech: &Technique, args: &MethodArgs) -> Result<(), CliError> {
    save_with(path, tech, &MacMap::Keep, args)
}

/// [`save`], with the MAC numbering of `mac` (when it is an enumeration).
pub fn save_with(
    path: &Path,
    tech: &Technique,
    mac: &MacMap,
    args: &MethodArgs,
) -> Result<(), CliError> {
    let bytes = to_bytes_with(path, tech, mac, args)?;
    crate::capture::write_replacing_private(path, &bytes)
        .map_err(|e| CliError::data(format!("cannot save state file {}: {e}", path.display())))
}

/// The bytes [`save`] writes (`path` only names the file in messages).
pub fn to_bytes(path: &Path, tech: &Technique, args: &MethodArgs) -> Result<Vec<u8>, CliError> {
    to_bytes_with(path, tech, &MacMap::Keep, args)
}

/// The bytes [`save_with`] writes.
pub fn to_bytes_with(
    path: &Path,
    tech: &Technique,
    mac: &MacMap,
    args: &MethodArgs,
) -> Result<Vec<u8>, CliError> {
    let mut rows = Rows(Vec::new());
    rows.param("method", args.method.name());
    let Technique::Stateful(st) = tech else {
        return Err(err(path, "this technique keeps no state"));
    };
    match st.as_ref() {
        StatefulTech::Enumerate(e) => {
            let s = e.export();
            rows.param("numbering", numbering_name(s.numbering));
            rows.counter("ipv4", s.next_v4);
            rows.counter("ipv6", s.next_v6);
            for (a, b) in &s.pairs {
                rows.pair(a, b);
            }
        }
        StatefulTech::PrefixMap(p) => {
            let key = match &args.key_file {
                Some(k) => read_key::<32>(k)?,
                None => return Err(err(path, "prefix-map needs its key")),
            };
            rows.param("key_id", &key_id(key.bytes()));
            rows.param(
                "preserve_class",
                if args.preserve_class { "yes" } else { "no" },
            );
            let s = p.export();
            // Written only when set, so states of earlier versions still load.
            if s.pass4 != 0 {
                rows.param("pass4", &s.pass4.to_string());
            }
            if s.pass6 != 0 {
                rows.param("pass6", &s.pass6.to_string());
            }
            rows.counter("ipv4", s.word_pos_v4);
            rows.counter("ipv6", s.word_pos_v6);
            for (a, b) in &s.pairs {
                rows.pair(a, b);
            }
        }
    }
    for (a, b) in mac.enumerated().unwrap_or_default() {
        rows.0.push([
            "mac".into(),
            "mac".into(),
            crate::mac::to_text(a),
            crate::mac::to_text(b),
        ]);
    }
    let encode = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["kind", "family", "original", "replacement"])?;
        for r in &rows.0 {
            w.write_record(r)?;
        }
        Ok(w.into_inner()?)
    };
    encode().map_err(|e| CliError::data(format!("cannot save state file {}: {e}", path.display())))
}

/// Load the table from `path` into the technique. A missing file is an
/// empty state (the first run of a series).
pub fn load(path: &Path, tech: &mut Technique, args: &MethodArgs) -> Result<(), CliError> {
    load_with(path, tech, None, args)
}

/// [`load`], and the MAC numbering into `mac` when it is an enumeration
/// (other MAC maps keep no table and stay as they are).
pub fn load_with(
    path: &Path,
    tech: &mut Technique,
    mac: Option<&mut MacMap>,
    args: &MethodArgs,
) -> Result<(), CliError> {
    if !path.exists() {
        return Ok(());
    }
    let data = std::fs::read(path).map_err(|e| err(path, e))?;
    let macs = load_bytes_macs(path, &data, tech, args)?;
    if let Some(m) = mac {
        match m {
            MacMap::Enumerate(_) => {
                *m = MacMap::enumeration_from(&macs).map_err(|e| err(path, e))?;
            }
            // MACs left alone: the numbering is carried to the saved state.
            MacMap::Keep if !macs.is_empty() => {
                MacMap::enumeration_from(&macs).map_err(|e| err(path, e))?;
                *m = MacMap::Carry(macs);
            }
            _ => {}
        }
    }
    Ok(())
}

/// [`load`] from the bytes of a state file; `path` is only used in errors.
/// For the fuzz targets.
#[doc(hidden)]
pub fn load_bytes(
    path: &Path,
    data: &[u8],
    tech: &mut Technique,
    args: &MethodArgs,
) -> Result<(), CliError> {
    load_bytes_macs(path, data, tech, args).map(|_| ())
}

/// [`load_bytes`], returning the MAC numbering's rows.
fn load_bytes_macs(
    path: &Path,
    data: &[u8],
    tech: &mut Technique,
    args: &MethodArgs,
) -> Result<Vec<MacPair>, CliError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(err(
            path,
            "is empty, not an ipwash state file (remove it to start a new mapping)",
        ));
    }
    let foreign = || {
        err(
            path,
            "is not an ipwash state file (it starts with no `kind,family,original,replacement` \
             header); give a new file name to start a new mapping",
        )
    };
    let mut rd = csv::Reader::from_reader(data);
    match rd.headers() {
        Ok(h) if h.iter().eq(["kind", "family", "original", "replacement"]) => {}
        _ => return Err(foreign()),
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut counters: Vec<(String, u128)> = Vec::new();
    let mut pairs: Vec<(IpAddr, IpAddr)> = Vec::new();
    let mut macs: Vec<MacPair> = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(path, e))?;
        let f = |n: usize| rec.get(n).unwrap_or("");
        match f(0) {
            "param" => params.push((f(2).to_string(), f(3).to_string())),
            "counter" => {
                let v = f(3)
                    .parse::<u128>()
                    .map_err(|_| err(path, format!("line {line}: bad counter")))?;
                counters.push((f(1).to_string(), v));
            }
            "pair" => {
                let a: IpAddr = f(2)
                    .parse()
                    .map_err(|_| err(path, format!("line {line}: bad address {:?}", f(2))))?;
                let b: IpAddr = f(3)
                    .parse()
                    .map_err(|_| err(path, format!("line {line}: bad address {:?}", f(3))))?;
                // Under `--mapped ipv4` an IPv4-mapped address is washed
                // through the IPv4 table: such a pair would never be used.
                if let IpAddr::V6(v) = a {
                    if v.to_ipv4_mapped().is_some() && args.mapped == crate::wash::Mapped::Ipv4 {
                        return Err(err(
                            path,
                            format!(
                                "line {line}: IPv4-mapped address {a}: with --mapped ipv4 \
                                 it belongs in the IPv4 table (was the state made with \
                                 --mapped native?)"
                            ),
                        ));
                    }
                }
                pairs.push((a, b));
            }
            "mac" => {
                let m = |n: usize| {
                    crate::mac::from_text(f(n)).ok_or_else(|| {
                        err(path, format!("line {line}: bad MAC address {:?}", f(n)))
                    })
                };
                macs.push((m(2)?, m(3)?));
            }
            other => {
                return Err(err(
                    path,
                    format!("line {line}: unknown row kind {other:?}"),
                ))
            }
        }
    }
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let counter = |n: &str| counters.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    if param("method").is_none() {
        return Err(err(path, "is not an ipwash state file (no `method` row)"));
    }
    if param("method") != Some(args.method.name()) {
        return Err(err(
            path,
            format!(
                "made by method {:?}, not {}",
                param("method").unwrap_or("?"),
                args.method.name()
            ),
        ));
    }
    let Technique::Stateful(st) = tech else {
        return Err(err(path, "this technique keeps no state"));
    };
    match (st.as_mut(), args.method) {
        (StatefulTech::Enumerate(e), Method::Enumerate) => {
            let numbering = match param("numbering") {
                Some("sequential") => Numbering::Sequential,
                Some("dnswasher") => Numbering::Dnswasher,
                _ => return Err(err(path, "missing or unknown numbering")),
            };
            if numbering != e.numbering() {
                return Err(err(
                    path,
                    format!("made with --numbering {}", numbering_name(numbering)),
                ));
            }
            let st = EnumState {
                numbering,
                next_v4: counter("ipv4").ok_or_else(|| err(path, "missing ipv4 counter"))?,
                next_v6: counter("ipv6").ok_or_else(|| err(path, "missing ipv6 counter"))?,
                pairs,
            };
            *e = Enumerate::import(st).map_err(|x| err(path, x))?;
        }
        (StatefulTech::PrefixMap(p), Method::PrefixMap) => {
            let key = match &args.key_file {
                Some(k) => read_key::<32>(k)?,
                None => return Err(err(path, "prefix-map needs its key")),
            };
            if param("key_id") != Some(key_id(key.bytes()).as_str()) {
                return Err(err(path, "made with a different key"));
            }
            let pc = if args.preserve_class { "yes" } else { "no" };
            if param("preserve_class") != Some(pc) {
                return Err(err(path, "made with a different --preserve-class"));
            }
            for (name, want) in [("pass4", args.pass4), ("pass6", args.pass6)] {
                if param(name).unwrap_or("0") != want.to_string() {
                    return Err(err(path, format!("made with a different --{name}")));
                }
            }
            let st = PrefixState {
                preserve_class: args.preserve_class,
                pass4: args.pass4,
                pass6: args.pass6,
                word_pos_v4: counter("ipv4").ok_or_else(|| err(path, "missing ipv4 counter"))?,
                word_pos_v6: counter("ipv6").ok_or_else(|| err(path, "missing ipv6 counter"))?,
                pairs,
            };
            *p = PrefixMap::import_checked(&key, args.preserve_class, &st)
                .map_err(|x| err(path, x))?;
        }
        _ => return Err(err(path, "this technique keeps no state")),
    }
    if !macs.is_empty() && args.method != Method::Enumerate {
        return Err(err(
            path,
            "holds a MAC numbering, which only enumerate keeps",
        ));
    }
    Ok(macs)
}
