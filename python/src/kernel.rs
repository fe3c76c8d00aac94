//! The Arrow kernel: wash a column of addresses (strings, or 4/16-byte
//! binaries) into a column of the same type, nulls kept. Pure Rust (no
//! Python), so it is tested and benchmarked on its own.
//!
//! A string value is an address (`192.0.2.1`, `2001:db8::1`) or a prefix
//! (`192.0.2.0/24`, as ECS columns hold), with surrounding whitespace
//! ignored, exactly as `ipwash map` reads a line. A prefix is masked to its
//! length, mapped and masked again (the techniques that work on prefixes:
//! truncate and the prefix-preserving ones), and written back as
//! `addr/len`. A binary value of 4 bytes is IPv4, of 16 bytes IPv6.
//! Anything else is a bad value: an error naming its row (never its
//! content), or a null with `OnError::Null`. A bad value is never passed
//! through.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BinaryViewBuilder, FixedSizeBinaryBuilder, LargeBinaryBuilder,
    LargeStringBuilder, StringBuilder, StringViewBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use ipwash::fanout::Frozen;
use ipwash::method::{Built, NdCipher};
use ipwash::pipeline::AddrCache;
use ipwash::wash::{mask_ip, KeepPrefix, Side, Technique, Washer};
use ipwash_algorithms::ipcrypt_det::IpcryptDeterministic;
use rayon::prelude::*;

/// Rows per parallel task.
pub const CHUNK_ROWS: usize = 1 << 16;

/// Cache entries per family and task, for costly techniques.
const CACHE_ENTRIES: usize = 1 << 12;

/// What a bad value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The whole call fails, naming the first bad row.
    Raise,
    /// The value becomes null.
    Null,
}

/// A failed call: the row (0-based, in the whole array) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// Row index.
    pub row: usize,
    /// What was wrong (never the value itself: it may be an identifier).
    pub why: &'static str,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.row, self.why)
    }
}

/// The technique, ready for many threads.
pub enum Core {
    /// A stateless map (keyed or truncation), through the washer.
    Map(Washer),
    /// A frozen enumerate/prefix-map table (`ipwash state merge` or `wash --state`).
    Frozen(Arc<Frozen>, Vec<KeepPrefix>),
    /// ipcrypt-deterministic: every address becomes 16 bytes (IPv6).
    Deterministic(Arc<IpcryptDeterministic>, Vec<KeepPrefix>),
    /// ipcrypt-nd / ipcrypt-ndx: hex ciphertext, random tweak per value (strings only).
    NonDeterministic(Arc<NdCipher>, Vec<KeepPrefix>),
}

/// A column kernel.
pub struct Kernel {
    core: Core,
    on_error: OnError,
}

/// One task's working copy.
enum Job<'k> {
    Map(Washer, AddrCache),
    Frozen(&'k Frozen, &'k [KeepPrefix]),
    Det(&'k IpcryptDeterministic, &'k [KeepPrefix]),
    Nd(&'k NdCipher, &'k [KeepPrefix], Vec<u8>, usize),
}

const NOT_ADDR: &str = "not an IP address or prefix";
const BAD_LEN: &str = "binary value is not 4 or 16 bytes";
const NO_PREFIX: &str =
    "this technique cannot wash a prefix (only truncate and the prefix-preserving ones can)";
const MISSING: &str = "address not in the state table";
const NO_BINARY: &str = "ipcrypt-nd/-ndx write hex text; use a string column";

fn kept(keep: &[KeepPrefix], a: IpAddr) -> bool {
    keep.iter().any(|k| k.contains(a))
}

impl<'k> Job<'k> {
    fn full(&mut self, a: IpAddr) -> Result<IpAddr, &'static str> {
        match self {
            Job::Map(w, cache) => Ok(match a {
                IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(
                    cache.v4(u32::from(v), |x| w.wash_v4(x, Side::Unknown)),
                )),
                IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(
                    cache.v6(u128::from(v), |x| w.wash_v6(x, Side::Unknown)),
                )),
            }),
            Job::Frozen(f, keep) => {
                if kept(keep, a) {
                    return Ok(a);
                }
                f.lookup(a).ok_or(MISSING)
            }
            Job::Det(d, keep) => {
                if kept(keep, a) {
                    return Ok(a);
                }
                Ok(IpAddr::V6(d.encrypt(a)))
            }
            Job::Nd(..) => Err(NO_BINARY),
        }
    }

    fn prefix(&mut self, a: IpAddr, len: u8) -> Result<IpAddr, &'static str> {
        let a = mask_ip(a, len);
        match self {
            Job::Map(w, _) => {
                if !w.works_on_prefixes() {
                    return Err(NO_PREFIX);
                }
                let mut b = [0u8; 16];
                let v6 = a.is_ipv6();
                let n = match a {
                    IpAddr::V4(v) => {
                        b[..4].copy_from_slice(&v.octets());
                        4
                    }
                    IpAddr::V6(v) => {
                        b.copy_from_slice(&v.octets());
                        16
                    }
                };
                w.wash_prefix(&mut b[..n], v6, len, Side::Unknown);
                Ok(if v6 {
                    IpAddr::V6(Ipv6Addr::from(b))
                } else {
                    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                })
            }
            Job::Frozen(f, keep) => {
                if !f.preserves_prefixes() {
                    return Err(NO_PREFIX);
                }
                if kept(keep, a) {
                    return Ok(a);
                }
                Ok(mask_ip(f.lookup(a).ok_or(MISSING)?, len))
            }
            Job::Det(..) | Job::Nd(..) => Err(NO_PREFIX),
        }
    }

    /// Wash one text value into `out`.
    fn text(&mut self, s: &str, out: &mut String) -> Result<(), &'static str> {
        let t = s.trim();
        if let Job::Nd(c, keep, tweaks, used) = self {
            let a: IpAddr = t.parse().map_err(|_| NOT_ADDR)?;
            if kept(keep, a) {
                let _ = write!(out, "{a}");
                return Ok(());
            }
            let tl = c.tweak_len();
            if *used + tl > tweaks.len() {
                getrandom::fill(tweaks).map_err(|_| "the OS random generator failed")?;
                *used = 0;
            }
            c.encrypt_hex(a, &tweaks[*used..*used + tl], out);
            *used += tl;
            return Ok(());
        }
        match t.split_once('/') {
            Some((a, l)) => {
                let a: IpAddr = a.parse().map_err(|_| NOT_ADDR)?;
                let max = if a.is_ipv4() { 32 } else { 128 };
                let len = l
                    .parse::<u8>()
                    .ok()
                    .filter(|&n| n <= max && !l.starts_with('+'))
                    .ok_or(NOT_ADDR)?;
                let m = self.prefix(a, len)?;
                let _ = write!(out, "{m}/{len}");
            }
            None => {
                let a: IpAddr = t.parse().map_err(|_| NOT_ADDR)?;
                let m = self.full(a)?;
                let _ = write!(out, "{m}");
            }
        }
        Ok(())
    }

    /// Wash one binary value into `out`.
    fn bytes(&mut self, b: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        let a = match b.len() {
            4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            16 => {
                let mut x = [0u8; 16];
                x.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(x))
            }
            _ => return Err(BAD_LEN),
        };
        match self.full(a)? {
            IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
            IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
        }
        Ok(())
    }
}

/// An output column being built.
trait Sink {
    fn null(&mut self);
    fn str(&mut self, s: &str);
    fn bin(&mut self, b: &[u8]) -> Result<(), &'static str>;
    fn finish(self) -> ArrayRef;
}

macro_rules! str_sink {
    ($t:ty) => {
        impl Sink for $t {
            fn null(&mut self) {
                self.append_null();
            }
            fn str(&mut self, s: &str) {
                self.append_value(s);
            }
            fn bin(&mut self, _: &[u8]) -> Result<(), &'static str> {
                Err("internal: bytes into a string column")
            }
            fn finish(mut self) -> ArrayRef {
                Arc::new(<$t>::finish(&mut self))
            }
        }
    };
}
str_sink!(StringBuilder);
str_sink!(LargeStringBuilder);
str_sink!(StringViewBuilder);

macro_rules! bin_sink {
    ($t:ty) => {
        impl Sink for $t {
            fn null(&mut self) {
                self.append_null();
            }
            fn str(&mut self, _: &str) {
                self.append_null();
            }
            fn bin(&mut self, b: &[u8]) -> Result<(), &'static str> {
                self.append_value(b);
                Ok(())
            }
            fn finish(mut self) -> ArrayRef {
                Arc::new(<$t>::finish(&mut self))
            }
        }
    };
}
bin_sink!(BinaryBuilder);
bin_sink!(LargeBinaryBuilder);
bin_sink!(BinaryViewBuilder);

impl Sink for FixedSizeBinaryBuilder {
    fn null(&mut self) {
        self.append_null();
    }
    fn str(&mut self, _: &str) {
        self.append_null();
    }
    fn bin(&mut self, b: &[u8]) -> Result<(), &'static str> {
        self.append_value(b)
            .map_err(|_| "the washed value does not fit the fixed-size column (ipcrypt-deterministic makes IPv4 16 bytes)")
    }
    fn finish(mut self) -> ArrayRef {
        Arc::new(FixedSizeBinaryBuilder::finish(&mut self))
    }
}

fn wash_strs<'a, S: Sink>(
    job: &mut Job<'_>,
    vals: impl Iterator<Item = Option<&'a str>>,
    mut sink: S,
    first_row: usize,
    on_error: OnError,
) -> Result<ArrayRef, BadValue> {
    let mut buf = String::new();
    for (i, v) in vals.enumerate() {
        match v {
            None => sink.null(),
            Some(s) => {
                buf.clear();
                match job.text(s, &mut buf) {
                    Ok(()) => sink.str(&buf),
                    Err(why) if on_error == OnError::Null => {
                        let _ = why;
                        sink.null()
                    }
                    Err(why) => {
                        return Err(BadValue {
                            row: first_row + i,
                            why,
                        })
                    }
                }
            }
        }
    }
    Ok(sink.finish())
}

fn wash_bins<'a, S: Sink>(
    job: &mut Job<'_>,
    vals: impl Iterator<Item = Option<&'a [u8]>>,
    mut sink: S,
    first_row: usize,
    on_error: OnError,
) -> Result<ArrayRef, BadValue> {
    let mut buf = Vec::with_capacity(16);
    for (i, v) in vals.enumerate() {
        let r = match v {
            None => {
                sink.null();
                continue;
            }
            Some(b) => {
                buf.clear();
                job.bytes(b, &mut buf).and_then(|()| sink.bin(&buf))
            }
        };
        if let Err(why) = r {
            if on_error == OnError::Null {
                sink.null();
            } else {
                return Err(BadValue {
                    row: first_row + i,
                    why,
                });
            }
        }
    }
    Ok(sink.finish())
}

/// Why a column cannot be washed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// The column's type is not a string or binary type.
    Type(String),
    /// A bad value (with `OnError::Raise`).
    Bad(BadValue),
    /// Arrow failed to join the pieces.
    Arrow(String),
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelError::Type(t) => write!(
                f,
                "cannot wash a column of type {t}: strings (utf8, large_utf8, utf8_view) or binaries of 4/16 bytes only"
            ),
            KernelError::Bad(b) => write!(f, "{b}"),
            KernelError::Arrow(e) => write!(f, "{e}"),
        }
    }
}

impl Kernel {
    /// A kernel over a built technique and keep-list. `state` is the frozen
    /// table for enumerate/prefix-map (which need one).
    pub fn new(
        built: Built,
        info_keep: Vec<KeepPrefix>,
        state: Option<Arc<Frozen>>,
        on_error: OnError,
    ) -> Result<Self, String> {
        let core = match (built, state) {
            (_, Some(f)) => Core::Frozen(f, info_keep),
            (
                Built::Map {
                    technique: Technique::Stateless(m),
                    info,
                    ..
                },
                None,
            ) => {
                let mut w = Washer::new(Technique::Stateless(m));
                w.info = info;
                w.keep = info_keep;
                Core::Map(w)
            }
            (Built::Map { .. }, None) => {
                return Err(
                    "enumerate and prefix-map need state_file= (a table from `ipwash state merge` \
                     or `ipwash wash --state`): a table growing in each worker would map \
                     differently in each"
                        .into(),
                )
            }
            (Built::Deterministic(d), None) => Core::Deterministic(Arc::from(d), info_keep),
            (Built::NonDeterministic(c), None) => Core::NonDeterministic(Arc::new(c), info_keep),
        };
        Ok(Kernel { core, on_error })
    }

    fn job(&self) -> Job<'_> {
        match &self.core {
            Core::Map(w) => {
                let cache = match &w.technique {
                    Technique::Stateless(m) => AddrCache::with_sizes(
                        if m.cheap(false) { 0 } else { CACHE_ENTRIES },
                        if m.cheap(true) { 0 } else { CACHE_ENTRIES },
                    ),
                    Technique::Stateful(_) => AddrCache::new(0),
                };
                let w = w
                    .try_clone()
                    .unwrap_or_else(|| unreachable!("Core::Map holds a stateless washer"));
                Job::Map(w, cache)
            }
            Core::Frozen(f, k) => Job::Frozen(f, k),
            Core::Deterministic(d, k) => Job::Det(d, k),
            Core::NonDeterministic(c, k) => Job::Nd(c, k, vec![0u8; 16 * 1024], usize::MAX / 2),
        }
    }

    /// Wash one piece (rows `first_row..` of the whole array).
    fn piece(&self, a: &dyn Array, first_row: usize) -> Result<ArrayRef, KernelError> {
        let mut job = self.job();
        let n = a.len();
        let oe = self.on_error;
        let r = match a.data_type() {
            DataType::Utf8 => wash_strs(
                &mut job,
                a.as_string::<i32>().iter(),
                StringBuilder::with_capacity(n, n * 16),
                first_row,
                oe,
            ),
            DataType::LargeUtf8 => wash_strs(
                &mut job,
                a.as_string::<i64>().iter(),
                LargeStringBuilder::with_capacity(n, n * 16),
                first_row,
                oe,
            ),
            DataType::Utf8View => wash_strs(
                &mut job,
                a.as_string_view().iter(),
                StringViewBuilder::with_capacity(n),
                first_row,
                oe,
            ),
            DataType::Binary => wash_bins(
                &mut job,
                a.as_binary::<i32>().iter(),
                BinaryBuilder::with_capacity(n, n * 16),
                first_row,
                oe,
            ),
            DataType::LargeBinary => wash_bins(
                &mut job,
                a.as_binary::<i64>().iter(),
                LargeBinaryBuilder::with_capacity(n, n * 16),
                first_row,
                oe,
            ),
            DataType::BinaryView => wash_bins(
                &mut job,
                a.as_binary_view().iter(),
                BinaryViewBuilder::with_capacity(n),
                first_row,
                oe,
            ),
            DataType::FixedSizeBinary(w @ (4 | 16)) => wash_bins(
                &mut job,
                a.as_fixed_size_binary().iter(),
                FixedSizeBinaryBuilder::with_capacity(n, *w),
                first_row,
                oe,
            ),
            DataType::Null => return Ok(a.slice(0, a.len())),
            t => return Err(KernelError::Type(t.to_string())),
        };
        r.map_err(KernelError::Bad)
    }

    /// Wash a whole array: pieces of [`CHUNK_ROWS`] rows in parallel (on
    /// the current rayon pool), joined in order. The result does not depend
    /// on the number of threads.
    pub fn wash(&self, a: &dyn Array) -> Result<ArrayRef, KernelError> {
        let n = a.len();
        if n <= CHUNK_ROWS {
            return self.piece(a, 0);
        }
        let data = a.to_data();
        let whole = arrow_array::make_array(data);
        let pieces: Vec<Result<ArrayRef, KernelError>> = (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|i| {
                let off = i * CHUNK_ROWS;
                let len = CHUNK_ROWS.min(n - off);
                self.piece(whole.slice(off, len).as_ref(), off)
            })
            .collect();
        let pieces = pieces.into_iter().collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
        arrow_select::concat::concat(&refs).map_err(|e| KernelError::Arrow(e.to_string()))
    }
}
