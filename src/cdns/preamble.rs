//! The C-DNS file preamble: version check, the per-`BlockParameters`
//! settings the blocks need (address-prefix lengths, ticks per second), and
//! the preamble rewrite (`server-addresses` washed, output marked as
//! anonymised, site-identifying collection text blanked).

use minicbor::data::Type;
use minicbor::decode::Decoder;

use super::cbor::{bstr, key, put_head, uint, Bad, Bstr, Edits, PResult, Seq, Uint, Walker};
use super::{CdnsOptions, CdnsStats};
use crate::wash::{Scope, Side, Washer};

// FilePreamble keys.
const MAJOR: i64 = 0;
const MINOR: i64 = 1;
const BLOCK_PARAMETERS: i64 = 3;
// BlockParameters keys.
const STORAGE: i64 = 0;
const COLLECTION: i64 = 1;
// StorageParameters keys.
const TICKS_PER_SECOND: i64 = 0;
const STORAGE_FLAGS: i64 = 5;
const CLIENT_PREFIX_V4: i64 = 6;
const ANON_METHOD: i64 = 11;
// CollectionParameters keys.
const INTERFACES: i64 = 4;
const SERVER_ADDRESSES: i64 = 5;
const FILTER: i64 = 7;
const HOST_ID: i64 = 9;

/// Settings of one `BlockParameters`, as found in the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Params {
    /// Client IPv4, client IPv6, server IPv4, server IPv6 prefix lengths
    /// (StorageParameters keys 6-9). `None` means full addresses.
    pub prefix: [Option<u8>; 4],
    /// `ticks-per-second` (StorageParameters key 0), when it is an unsigned
    /// integer. The washer does not need it and does not check it.
    pub ticks_per_second: Option<u64>,
}

impl Params {
    /// Stored prefix length for an address of `side` (Client or Server) and
    /// family, if the file stores prefixes for it.
    pub(super) fn bits(&self, side: Side, v6: bool) -> Option<u8> {
        let i = match side {
            Side::Client => 0,
            Side::Server => 2,
            Side::Unknown => return None,
        } + usize::from(v6);
        self.prefix[i]
    }
}

/// Why the preamble was refused.
#[derive(Debug)]
pub(super) enum PreError {
    Version { major: u64, minor: u64 },
    NeedsFull,
    Bad(Bad),
}

impl From<Bad> for PreError {
    fn from(b: Bad) -> Self {
        PreError::Bad(b)
    }
}

#[derive(Debug, Default)]
struct StorageInfo {
    seq: Option<Seq>,
    flags: Option<Uint>,
    /// Value range and, when it is text, the text.
    method: Option<(usize, usize, Option<String>)>,
    prefix: [Option<Uint>; 4],
    ticks: Option<u64>,
}

#[derive(Debug, Default)]
struct CollectionInfo {
    seq: Option<Seq>,
    interfaces: Option<(usize, usize)>,
    filter: Option<(usize, usize)>,
    host_id: Option<(usize, usize)>,
    servers: Vec<Bstr>,
}

/// The text written to `anonymization-method` (StorageParameters key 11):
/// `ipwash:<method>`, plus `?ipv4=P&ipv6=P` for truncation and
/// `scope=clients` when server addresses were kept. The keep-list is not
/// written (it would name the operator's networks); keys never are.
pub fn method_text(washer: &Washer) -> String {
    let name = if washer.info.name.is_empty() {
        "unnamed"
    } else {
        washer.info.name.as_str()
    };
    let mut s = format!("ipwash:{name}");
    let mut sep = '?';
    if let Some((p4, p6)) = washer.info.truncate {
        s.push_str(&format!("?ipv4={p4}&ipv6={p6}"));
        sep = '&';
    }
    if washer.scope == Scope::Clients {
        s.push(sep);
        s.push_str("scope=clients");
    }
    s
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Check the version, then rewrite the preamble in `src` (server addresses
/// are washed in place) and append the result to `out`. Returns the prefix
/// settings of every `BlockParameters`, in order.
pub(super) fn rewrite(
    src: &mut [u8],
    out: &mut Vec<u8>,
    washer: &mut Washer,
    opts: &CdnsOptions,
    stats: &mut CdnsStats,
) -> Result<Vec<Params>, PreError> {
    let (storage, collection) = parse(src)?;
    let params = params_of(&storage);

    let needs_prefix = params.iter().any(|p| {
        p.prefix[0].is_some()
            || p.prefix[1].is_some()
            || (washer.in_scope(Side::Server) && (p.prefix[2].is_some() || p.prefix[3].is_some()))
    });
    if needs_prefix && !washer.works_on_prefixes() {
        return Err(PreError::NeedsFull);
    }

    let mut edits = Edits::default();
    let mut scratch = Vec::new();
    for s in &storage {
        if opts.mark_output {
            mark_storage(s, washer, &mut edits, &mut scratch);
        }
    }
    for c in &collection {
        for b in &c.servers {
            stats.addresses += 1;
            let v6 = match b.len {
                4 => false,
                16 => true,
                _ => {
                    src[b.range()].fill(0);
                    stats.blanked += 1;
                    continue;
                }
            };
            let full: u8 = if v6 { 128 } else { 32 };
            let bits = match washer.info.truncate {
                Some((p4, p6)) => full.min(if v6 { p6 } else { p4 }),
                None => full,
            };
            if washer.wash_prefix(&mut src[b.range()], v6, bits, Side::Server) {
                stats.rewritten += 1;
            }
        }
        if !opts.keep_collection_info {
            blank_collection(c, &mut edits);
        }
    }
    edits.apply(src, out)?;
    Ok(params)
}

/// Check the version and collect every `BlockParameters`.
fn parse(src: &[u8]) -> Result<(Vec<StorageInfo>, Vec<CollectionInfo>), PreError> {
    let mut w = Walker::default();
    // Version first: a pre-RFC file uses the same keys for other things.
    {
        let mut d = Decoder::new(src);
        let mut m = Seq::map(&mut d)?;
        let (mut major, mut minor) = (None, None);
        while m.next(&mut d)? {
            match key(&mut d, &mut w)? {
                Some(MAJOR) => major = Some(uint(&mut d, "major-format-version")?.value),
                Some(MINOR) => minor = Some(uint(&mut d, "minor-format-version")?.value),
                _ => w.skip(&mut d)?,
            }
        }
        let major = major.ok_or_else(|| Bad::new(0, "no major-format-version"))?;
        if major != 1 {
            return Err(PreError::Version {
                major,
                minor: minor.unwrap_or(0),
            });
        }
    }

    let mut storage: Vec<StorageInfo> = Vec::new();
    let mut collection: Vec<CollectionInfo> = Vec::new();
    {
        let mut d = Decoder::new(src);
        let mut m = Seq::map(&mut d)?;
        while m.next(&mut d)? {
            if key(&mut d, &mut w)? != Some(BLOCK_PARAMETERS) {
                w.skip(&mut d)?;
                continue;
            }
            let mut a = Seq::array(&mut d)?;
            while a.next(&mut d)? {
                let (s, c) = block_parameters(&mut d, &mut w)?;
                storage.push(s);
                collection.push(c);
            }
        }
    }

    Ok((storage, collection))
}

fn params_of(storage: &[StorageInfo]) -> Vec<Params> {
    storage
        .iter()
        .map(|s| {
            let mut p = Params {
                ticks_per_second: s.ticks,
                ..Params::default()
            };
            for (i, u) in s.prefix.iter().enumerate() {
                let full = if i % 2 == 0 { 32 } else { 128 };
                p.prefix[i] = u.map(|u| u.value.min(full) as u8);
            }
            p
        })
        .collect()
}

/// Check the version and return the settings of every `BlockParameters`,
/// in order, without changing anything (for readers).
pub(super) fn read(src: &[u8]) -> Result<Vec<Params>, PreError> {
    let (storage, _) = parse(src)?;
    Ok(params_of(&storage))
}

fn block_parameters(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<(StorageInfo, CollectionInfo)> {
    let mut s = StorageInfo::default();
    let mut c = CollectionInfo::default();
    let mut m = Seq::map(d)?;
    while m.next(d)? {
        match key(d, w)? {
            Some(STORAGE) => s = storage_parameters(d, w)?,
            Some(COLLECTION) => c = collection_parameters(d, w)?,
            _ => w.skip(d)?,
        }
    }
    Ok((s, c))
}

fn storage_parameters(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<StorageInfo> {
    let mut s = StorageInfo::default();
    let mut m = Seq::map(d)?;
    while m.next(d)? {
        match key(d, w)? {
            Some(TICKS_PER_SECOND) => match d.datatype()? {
                Type::U8 | Type::U16 | Type::U32 | Type::U64 => s.ticks = Some(d.u64()?),
                _ => w.skip(d)?,
            },
            Some(STORAGE_FLAGS) => s.flags = Some(uint(d, "storage-flags")?),
            Some(k @ 6..=9) => {
                s.prefix[(k - CLIENT_PREFIX_V4) as usize] = Some(uint(d, "address prefix length")?)
            }
            Some(ANON_METHOD) => {
                let pos = d.position();
                let text = match d.datatype()? {
                    Type::String => d.str().ok().map(str::to_owned),
                    _ => None,
                };
                d.set_position(pos);
                w.skip(d)?;
                s.method = Some((pos, d.position(), text));
            }
            _ => w.skip(d)?,
        }
    }
    s.seq = Some(m);
    Ok(s)
}

fn collection_parameters(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<CollectionInfo> {
    let mut c = CollectionInfo::default();
    let mut m = Seq::map(d)?;
    while m.next(d)? {
        let kpos = d.position();
        let k = key(d, w)?;
        let vpos = d.position();
        match k {
            Some(SERVER_ADDRESSES) => {
                let mut a = Seq::array(d)?;
                while a.next(d)? {
                    match bstr(d, w)? {
                        Some(b) => c.servers.push(b),
                        None => {
                            return Err(Bad::new(
                                vpos,
                                "server-addresses entry is not a byte string",
                            ))
                        }
                    }
                }
            }
            Some(INTERFACES) => {
                w.skip(d)?;
                c.interfaces = Some((kpos, d.position()));
            }
            Some(FILTER) => {
                w.skip(d)?;
                c.filter = Some((vpos, d.position()));
            }
            Some(HOST_ID) => {
                w.skip(d)?;
                c.host_id = Some((vpos, d.position()));
            }
            _ => w.skip(d)?,
        }
    }
    c.seq = Some(m);
    Ok(c)
}

fn mark_storage(s: &StorageInfo, washer: &Washer, edits: &mut Edits, scratch: &mut Vec<u8>) {
    let Some(seq) = s.seq else { return };
    scratch.clear();
    let mut inserted = 0u64;
    match s.flags {
        Some(u) if u.value & 1 == 0 => edits.replace(u.pos, u.end, |o| put_head(o, 0, u.value | 1)),
        Some(_) => {}
        None => {
            put_head(scratch, 0, STORAGE_FLAGS as u64);
            put_head(scratch, 0, 1);
            inserted += 1;
        }
    }
    if let Some((p4, p6)) = washer.info.truncate {
        for (i, cur) in s.prefix.iter().enumerate() {
            let side = if i < 2 { Side::Client } else { Side::Server };
            if !washer.in_scope(side) {
                continue;
            }
            let (full, p) = if i % 2 == 0 {
                (32u64, p4)
            } else {
                (128u64, p6)
            };
            let new = cur.map_or(full, |u| u.value.min(full)).min(u64::from(p));
            match cur {
                Some(u) if u.value != new => edits.replace(u.pos, u.end, |o| put_head(o, 0, new)),
                Some(_) => {}
                None => {
                    put_head(scratch, 0, (CLIENT_PREFIX_V4 + i as i64) as u64);
                    put_head(scratch, 0, new);
                    inserted += 1;
                }
            }
        }
    }
    let ours = method_text(washer);
    match &s.method {
        Some((_, _, Some(old))) if old == &ours => {}
        Some((pos, end, Some(old))) if !old.is_empty() => {
            let text = format!("{old}; {ours}");
            edits.replace(*pos, *end, |o| put_text(o, &text));
        }
        Some((pos, end, _)) => edits.replace(*pos, *end, |o| put_text(o, &ours)),
        None => {
            put_head(scratch, 0, ANON_METHOD as u64);
            put_text(scratch, &ours);
            inserted += 1;
        }
    }
    if inserted > 0 {
        if let Some(n) = seq.len {
            edits.replace(seq.hdr, seq.body, |o| put_head(o, 5, n + inserted));
        }
        edits.replace(seq.end, seq.end, |o| o.extend_from_slice(scratch));
    }
}

/// `filter` and `host-id` become empty text; `interfaces` is removed, since
/// its CDDL type (`[+ tstr]`) does not allow an empty array.
fn blank_collection(c: &CollectionInfo, edits: &mut Edits) {
    let Some(seq) = c.seq else { return };
    for (pos, end) in [c.filter, c.host_id].into_iter().flatten() {
        edits.replace(pos, end, |o| o.push(0x60));
    }
    if let Some((kpos, end)) = c.interfaces {
        edits.replace(kpos, end, |_| {});
        if let Some(n) = seq.len {
            edits.replace(seq.hdr, seq.body, |o| put_head(o, 5, n.saturating_sub(1)));
        }
    }
}
