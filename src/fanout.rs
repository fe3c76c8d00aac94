//! Fan-out with one mapping: the stateful techniques (`enumerate`,
//! `prefix-map`) on many machines.
//!
//! Their output depends on the order in which addresses are first seen
//! across the whole day, so files cannot simply be washed apart. Three
//! steps remove that limit:
//!
//! 1. `ipwash scan --manifest FILE --index K` reads file K of the manifest
//!    exactly as a wash would (the same reader, the same per-packet locate,
//!    the same defragmenter, the same scope and keep-list) and writes a
//!    *part*: every address the technique would be asked to map, once, with
//!    where it is first seen (file, packet, order within the packet).
//!    Packets a wash would drop contribute nothing.
//! 2. `ipwash state merge` reads the parts (any order, without the
//!    captures), orders them by file, and replays the distinct addresses in
//!    that order through the technique: the table is exactly the one a
//!    sequential `wash --state` over the manifest in order would have built
//!    (enumeration numbers by first appearance; the TCPdpriv trie grown in
//!    the same order, so it draws the same random bits).
//! 3. `ipwash wash --state STATE --state-readonly` applies the table on any
//!    number of machines, files in any order, on every core: the table is
//!    frozen into a lookup, and an address missing from it is an error
//!    (exit 1, nothing under the output's final name, the table unchanged).
//!
//! ## Part files
//!
//! CSV with the columns `kind,name,file,packet,order,value`:
//! - `param` rows (`name`, `value`): `format` (`ipwash-scan-1`), `method`,
//!   `manifest_lines`, `manifest_id` (FNV-1a 64 of the manifest's bytes),
//!   `index`, `input` (the manifest line), `scope`, `keep`, `complete`
//!   (`no` when the input ended in a data error: the addresses before the
//!   fault are recorded, as a wash would have mapped them);
//! - identifier rows: `kind` is the identifier kind (`ip`; other kinds,
//!   such as MAC addresses, get their own), `name` its family (`ipv4`,
//!   `ipv6`), then the 0-based file index, packet index (the packet being
//!   handled when the address was first mapped; 0 for C-DNS, whose
//!   addresses are numbered by `order` alone) and order within the packet,
//!   and the address itself.
//!
//! Parts and states hold original addresses: they are written 0600, and
//! are as secret as a key.

use std::collections::HashMap;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ipwash_algorithms::AddrMap;

use crate::capture::{self, CaptureReader, FileKind, ReaderOptions};
use crate::error::CliError;
use crate::method::{self, Built, MethodArgs};
use crate::pipeline::{self, Outcome, Plan, ScopeArg, Unparsed, WashArgs, Worker};
use crate::stats::Stats;
use crate::wash::{KeepPrefix, Scope, StatefulTech, Technique, Washer};

/// The format name in a part's `format` row.
pub const PART_FORMAT: &str = "ipwash-scan-1";

/// `ipwash scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The manifest: one input path per line, in the order a sequential
    /// wash would take them.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// 0-based line of the manifest that INPUT is.
    #[arg(long, value_name = "K")]
    pub index: usize,
    /// The capture to scan; by default the path on line K of the manifest.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// The part file to write (mode 0600; it holds original addresses).
    #[arg(short, long, value_name = "PART")]
    pub output: PathBuf,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Which addresses are rewritten (as for `wash`).
    #[arg(long, value_enum, default_value_t = ScopeArg::All)]
    pub scope: ScopeArg,
    /// Networks left unchanged (as for `wash`; repeatable).
    #[arg(long, value_name = "PREFIX")]
    pub keep: Vec<String>,
    /// As for `wash` (no effect on which addresses are mapped).
    #[arg(long, value_enum, default_value_t = Unparsed::Drop)]
    pub unparsed: Unparsed,
    /// As for `wash`: with `enumerate` and `wash` (the default) the MAC
    /// addresses a wash would number are recorded too (`mac` rows).
    #[arg(long, value_enum, default_value_t = crate::mac::MacMode::Wash)]
    pub mac: crate::mac::MacMode,
    /// `--answers`, `--only-dns`, `--zero-payload`, `--dns-port` as for `wash`.
    #[command(flatten)]
    pub privacy: crate::payload::PrivacyArgs,
    /// As for `wash`: reverse names hold addresses the table must number.
    #[arg(long, value_enum, default_value_t = crate::revname::ReverseNames::Wash)]
    pub reverse_names: crate::revname::ReverseNames,
    /// As for `wash` (DNS over TCP is followed as a wash follows it, so the
    /// same messages are walked; give the wash's value).
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub tcp_memory: u64,
    /// Do not print the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `ipwash state`.
#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Merge the parts of `ipwash scan` into the state a sequential run over the manifest would build.
    #[command(after_help = crate::manual::STATE_MERGE)]
    Merge(MergeArgs),
}

/// `ipwash state merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Part files, one per manifest line, in any order.
    #[arg(value_name = "PART", required = true)]
    pub parts: Vec<PathBuf>,
    /// The state file to write (mode 0600), for `wash --state FILE --state-readonly`.
    #[arg(short, long, value_name = "STATE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub method: MethodArgs,
}

/// Write `bytes` to `path` as a private file (mode 0600): under a temporary
/// name in the same directory, synced, then renamed over the target.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    let (mut f, tmp) = loop {
        let mut t = std::ffi::OsString::from(".");
        t.push(name);
        t.push(format!(
            ".ipwash-{}-{}.tmp",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(t);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        match o.open(&tmp) {
            Ok(f) => break (f, tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// FNV-1a, 64 bits: tells manifests apart (not a secret, not a checksum
/// against tampering).
fn fnv64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A manifest: its lines and identity.
struct Manifest {
    lines: Vec<String>,
    id: String,
}

fn read_manifest(path: &Path) -> Result<Manifest, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("cannot read manifest {}: {e}", path.display())))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::usage(format!("manifest {}: not UTF-8 text", path.display())))?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = Vec::new();
    if !body.is_empty() {
        for (i, l) in body.split('\n').enumerate() {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if l.is_empty() {
                return Err(CliError::usage(format!(
                    "manifest {}: line {} is empty",
                    path.display(),
                    i + 1
                )));
            }
            lines.push(l.to_string());
        }
    }
    Ok(Manifest {
        lines,
        id: fnv64(&bytes),
    })
}

fn scope_name(s: ScopeArg) -> &'static str {
    match s {
        ScopeArg::All => "all",
        ScopeArg::Clients => "clients",
    }
}

fn keep_list(keep: &[String]) -> Result<(Vec<KeepPrefix>, String), CliError> {
    let k = keep
        .iter()
        .map(|k| KeepPrefix::parse(k).map_err(|e| CliError::usage(format!("--keep: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let text = k
        .iter()
        .map(|p| format!("{}/{}", p.net, p.len))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((k, text))
}

/// Records every address the technique is asked to map, once, with the
/// packet being handled at the time; maps nothing (the identity, which is
/// as one-to-one as the real technique, so fragments group alike).
struct Recorder {
    inner: Mutex<RecInner>,
    prefix_preserving: bool,
}

#[derive(Default)]
struct RecInner {
    seen: HashSet<IpAddr>,
    rows: Vec<(u64, IpAddr)>,
    packet: u64,
    macs_seen: HashSet<[u8; 6]>,
    macs: Vec<(u64, [u8; 6])>,
}

impl crate::mac::MacSink for Recorder {
    fn note(&self, m: [u8; 6]) {
        if let Ok(mut g) = self.inner.lock() {
            if g.macs_seen.insert(m) {
                let p = g.packet;
                g.macs.push((p, m));
            }
        }
    }
}

impl Recorder {
    fn note(&self, a: IpAddr) {
        if let Ok(mut g) = self.inner.lock() {
            if g.seen.insert(a) {
                let p = g.packet;
                g.rows.push((p, a));
            }
        }
    }
    fn set_packet(&self, p: u64) {
        if let Ok(mut g) = self.inner.lock() {
            g.packet = p;
        }
    }
}

impl AddrMap for Recorder {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        self.note(IpAddr::V4(a));
        a
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        self.note(IpAddr::V6(a));
        a
    }
    fn prefix_preserving(&self) -> bool {
        self.prefix_preserving
    }
}

/// Run `ipwash scan`.
pub fn run_scan(args: &ScanArgs) -> Result<(), CliError> {
    let m = args.method.method;
    if !m.stateful() {
        return Err(CliError::usage(format!(
            "scan: {} keeps no state; wash each file on its own (any order, any machine)",
            m.name()
        )));
    }
    let manifest = read_manifest(&args.manifest)?;
    let line = manifest.lines.get(args.index).ok_or_else(|| {
        CliError::usage(format!(
            "--index {}: manifest {} has {} lines",
            args.index,
            args.manifest.display(),
            manifest.lines.len()
        ))
    })?;
    let input = args.input.clone().unwrap_or_else(|| PathBuf::from(line));
    if input.as_path() != Path::new(line) {
        let same = match (std::fs::canonicalize(&input), std::fs::canonicalize(line)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(CliError::usage(format!(
                "{} is not line {} of the manifest ({line})",
                input.display(),
                args.index
            )));
        }
    }
    let (keep, keep_text) = keep_list(&args.keep)?;
    let rec = Arc::new(Recorder {
        inner: Mutex::new(RecInner::default()),
        // As the real technique: decides whether C-DNS prefix storage can be washed.
        prefix_preserving: m == method::Method::PrefixMap,
    });
    let mut washer = Washer::new(Technique::Stateless(rec.clone()));
    washer.info.name = m.name().to_string();
    washer.scope = match args.scope {
        ScopeArg::All => Scope::All,
        ScopeArg::Clients => Scope::Clients,
    };
    washer.keep = keep;
    washer.reverse_names = args.reverse_names;
    // Only the enumeration numbers MACs by appearance; the keyed maps of the
    // other techniques need no table.
    let record_macs = m == method::Method::Enumerate && args.mac == crate::mac::MacMode::Wash;
    if record_macs {
        washer.mac = crate::mac::MacMap::Record(rec.clone());
    }
    // Identifiers hold no address a table needs: only the options that
    // decide which addresses are mapped.
    let mut privacy = args.privacy.clone();
    privacy.edns = crate::edns::EdnsMode::Keep;
    privacy.apply(&mut washer, &args.method, false)?;

    let name = input.display().to_string();
    let tcp_limits = crate::tcpdns::TcpLimits {
        memory: (args.tcp_memory as usize) << 20,
        ..Default::default()
    };
    let res = scan_input(&input, &name, &mut washer, &rec, args.unparsed, tcp_limits);
    if let Err(e) = &res {
        if e.code == 2 {
            return res;
        }
    }
    let (rows, macs) = rec
        .inner
        .lock()
        .map(|mut g| (std::mem::take(&mut g.rows), std::mem::take(&mut g.macs)))
        .map_err(|_| CliError::data("internal: recorder lock poisoned"))?;

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut put = |r: [&str; 6]| w.write_record(r);
    let params: [(&str, String); 12] = [
        ("format", PART_FORMAT.into()),
        ("method", m.name().into()),
        ("manifest_lines", manifest.lines.len().to_string()),
        ("manifest_id", manifest.id.clone()),
        ("index", args.index.to_string()),
        ("input", line.clone()),
        ("scope", scope_name(args.scope).into()),
        ("keep", keep_text),
        ("complete", if res.is_ok() { "yes" } else { "no" }.into()),
        ("mac", if record_macs { "wash" } else { "keep" }.into()),
        (
            "reverse_names",
            match args.reverse_names {
                crate::revname::ReverseNames::Wash => "wash",
                crate::revname::ReverseNames::Keep => "keep",
            }
            .into(),
        ),
        ("tcp_memory", args.tcp_memory.to_string()),
    ];
    let csv_err = |e: csv::Error| CliError::data(format!("writing part: {e}"));
    put(["kind", "name", "file", "packet", "order", "value"]).map_err(csv_err)?;
    for (k, v) in &params {
        put(["param", k, "", "", "", v]).map_err(csv_err)?;
    }
    let file = args.index.to_string();
    let mut last = None;
    let mut order = 0u64;
    for (p, a) in &rows {
        if last == Some(*p) {
            order += 1;
        } else {
            last = Some(*p);
            order = 0;
        }
        let fam = if a.is_ipv4() { "ipv4" } else { "ipv6" };
        put([
            "ip",
            fam,
            &file,
            &p.to_string(),
            &order.to_string(),
            &a.to_string(),
        ])
        .map_err(csv_err)?;
    }
    let mut last = None;
    let mut order = 0u64;
    for (p, mac) in &macs {
        if last == Some(*p) {
            order += 1;
        } else {
            last = Some(*p);
            order = 0;
        }
        put([
            "mac",
            "mac",
            &file,
            &p.to_string(),
            &order.to_string(),
            &crate::mac::to_text(*mac),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CliError::data(format!("writing part: {e}")))?;
    write_private(&args.output, &bytes)
        .map_err(|e| CliError::data(format!("cannot write part {}: {e}", args.output.display())))?;
    if !args.quiet {
        eprintln!(
            "ipwash scan: {}: {} distinct addresses, {} MAC addresses -> {}",
            name,
            rows.len(),
            macs.len(),
            args.output.display()
        );
    }
    res
}

/// Read one input as a wash would, through `washer` (whose technique is
/// the recorder), writing nothing.
fn scan_input(
    input: &Path,
    name: &str,
    washer: &mut Washer,
    rec: &Recorder,
    unparsed: Unparsed,
    tcp_limits: crate::tcpdns::TcpLimits,
) -> Result<(), CliError> {
    let inp = capture::open_input(input).map_err(|e| CliError::data(format!("{name}: {e}")))?;
    let kind = inp.kind;
    let reader = inp.into_reader();
    match kind {
        FileKind::Cdns => {
            let opts = crate::cdns::CdnsOptions::default();
            crate::cdns::wash_cdns(reader, std::io::sink(), washer, &opts)
                .map(|_| ())
                .map_err(|e| {
                    let msg = format!("{name}: {e}");
                    if e.is_usage() {
                        CliError::usage(msg)
                    } else {
                        CliError::data(msg)
                    }
                })
        }
        FileKind::Dnstap => {
            let opts = crate::dnstap::DnstapOptions {
                keep_collection_info: false,
                pass_unparsed: unparsed == Unparsed::Pass,
            };
            let mut st = crate::dnstap::DnstapStats::default();
            crate::dnstap::wash_dnstap(reader, &mut std::io::sink(), washer, &opts, &mut st)
                .map_err(|e| CliError::data(format!("{name}: {e}")))
        }
        FileKind::Pcap | FileKind::Pcapng => {
            scan_capture(reader, name, washer, rec, unparsed, tcp_limits)
        }
        FileKind::Unknown => Err(CliError::data(format!(
            "{name}: unknown format (not pcap, pcapng, C-DNS or dnstap)"
        ))),
    }
}

/// The unit-by-unit loop of the sequential wash, with the output dropped:
/// the same `wash_packet` on every packet, and the same defragmenter fed
/// the same units, so addresses washed at reassembly (an ECS option in a
/// later fragment) are met exactly where a wash meets them.
fn scan_capture<R: Read>(
    reader: R,
    name: &str,
    washer: &mut Washer,
    rec: &Recorder,
    unparsed: Unparsed,
    tcp_limits: crate::tcpdns::TcpLimits,
) -> Result<(), CliError> {
    let mut rd = CaptureReader::new(reader, ReaderOptions::default())
        .map_err(|e| CliError::data(format!("{name}: {e}")))?;
    // The wash's worker (DNS over TCP is left to the reassembler, answers
    // are slots with --answers) and the wash's emitter, writing nowhere.
    let mut w = Worker::for_washer(washer, 0);
    let sink = Arc::new(Mutex::new(std::io::sink()));
    let mut em = pipeline::Emitter::with_tcp(&sink, None, tcp_limits);
    let mut stats = Stats::default();
    let mut packet = 0u64;
    let res = loop {
        let unit = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => break Ok(()),
            Err(e) => break Err(CliError::data(format!("{name}: {e}"))),
        };
        rec.set_packet(packet);
        w.loc.frag = None;
        w.loc.tcp = None;
        let outcome = match (&unit.packet, unit.dropped) {
            (_, Some(r)) => Outcome::BlockDropped(r),
            (None, None) => Outcome::Block,
            (Some(p), None) => {
                let range = p.range.clone();
                let lt = p.linktype;
                match unit.data.get_mut(range) {
                    Some(pkt) => pipeline::wash_packet(pkt, lt, washer, &mut w, unparsed),
                    None => Outcome::Dropped("malformed_record"),
                }
            }
        };
        let pkt = unit.packet.as_ref().map(|p| p.range.clone());
        if pkt.is_some() {
            packet += 1;
        }
        let piece = pipeline::Piece {
            data: unit.data,
            pkt,
            frag: w.loc.frag.as_ref(),
            tcp: w.loc.tcp.as_ref(),
            outcome,
        };
        if let Err(e) = em.unit(piece, washer, &mut stats) {
            break Err(e);
        }
    };
    rec.set_packet(packet);
    em.finish(washer, &mut stats)?;
    res
}

/// One part, read and checked.
struct Part {
    path: PathBuf,
    params: HashMap<String, String>,
    index: usize,
    addrs: Vec<IpAddr>,
    macs: Vec<[u8; 6]>,
}

fn read_part(path: &Path) -> Result<Part, CliError> {
    let err = |m: String| CliError::data(format!("part {}: {m}", path.display()));
    let mut rd = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let mut params = HashMap::new();
    let mut addrs = Vec::new();
    let mut macs = Vec::new();
    let mut last: Option<(u64, u64)> = None;
    let mut last_mac: Option<(u64, u64)> = None;
    let mut file_col: Option<String> = None;
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let f = |n: usize| rec.get(n).unwrap_or("");
        match f(0) {
            "param" => {
                params.insert(f(1).to_string(), f(5).to_string());
            }
            "ip" => {
                let a: IpAddr = f(5)
                    .parse()
                    .map_err(|_| err(format!("line {line}: bad address")))?;
                let fam = if a.is_ipv4() { "ipv4" } else { "ipv6" };
                if f(1) != fam {
                    return Err(err(format!("line {line}: family {:?} is wrong", f(1))));
                }
                let num = |n: usize| {
                    f(n).parse::<u64>()
                        .map_err(|_| err(format!("line {line}: bad number {:?}", f(n))))
                };
                let at = (num(3)?, num(4)?);
                if last.is_some_and(|l| at <= l) {
                    return Err(err(format!("line {line}: rows out of order")));
                }
                last = Some(at);
                match &file_col {
                    Some(c) if c != f(2) => {
                        return Err(err(format!("line {line}: file column differs")))
                    }
                    Some(_) => {}
                    None => file_col = Some(f(2).to_string()),
                }
                addrs.push(a);
            }
            "mac" => {
                let m = crate::mac::from_text(f(5))
                    .ok_or_else(|| err(format!("line {line}: bad MAC address")))?;
                let num = |n: usize| {
                    f(n).parse::<u64>()
                        .map_err(|_| err(format!("line {line}: bad number {:?}", f(n))))
                };
                let at = (num(3)?, num(4)?);
                if f(1) != "mac" || last_mac.is_some_and(|l| at <= l) {
                    return Err(err(format!(
                        "line {line}: MAC rows out of order or misnamed"
                    )));
                }
                last_mac = Some(at);
                if f(2) != file_col.as_deref().unwrap_or(f(2)) {
                    return Err(err(format!("line {line}: file column differs")));
                }
                file_col.get_or_insert_with(|| f(2).to_string());
                macs.push(m);
            }
            other => {
                return Err(err(format!(
                    "line {line}: identifier kind {other:?} is not known to this version"
                )))
            }
        }
    }
    if params.get("format").map(String::as_str) != Some(PART_FORMAT) {
        return Err(err(format!("not an {PART_FORMAT} part file")));
    }
    let index: usize = params
        .get("index")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err("missing index".into()))?;
    if file_col.is_some_and(|c| c != index.to_string()) {
        return Err(err("file column differs from its index".into()));
    }
    Ok(Part {
        path: path.to_path_buf(),
        params,
        index,
        addrs,
        macs,
    })
}

/// Run `ipwash state ...`.
pub fn run_state(cmd: &StateCommand) -> Result<(), CliError> {
    match cmd {
        StateCommand::Merge(a) => run_merge(a),
    }
}

fn run_merge(args: &MergeArgs) -> Result<(), CliError> {
    let m = args.method.method;
    if !m.stateful() {
        return Err(CliError::usage(format!(
            "state merge: {} keeps no state",
            m.name()
        )));
    }
    let mut technique = match method::build(&args.method)? {
        Built::Map { technique, .. } => technique,
        _ => return Err(CliError::usage("state merge: not a stateful method")),
    };
    let mut parts = args
        .parts
        .iter()
        .map(|p| read_part(p))
        .collect::<Result<Vec<_>, _>>()?;
    parts.sort_by_key(|p| p.index);
    let first = &parts[0];
    for p in &parts {
        for k in [
            "method",
            "manifest_lines",
            "manifest_id",
            "scope",
            "keep",
            "mac",
            "reverse_names",
            "tcp_memory",
        ] {
            if p.params.get(k) != first.params.get(k) {
                return Err(CliError::usage(format!(
                    "parts {} and {} differ in {k} ({:?} vs {:?}); scan every file of one manifest with the same flags",
                    first.path.display(),
                    p.path.display(),
                    first.params.get(k).map(String::as_str).unwrap_or(""),
                    p.params.get(k).map(String::as_str).unwrap_or("")
                )));
            }
        }
    }
    if first.params.get("method").map(String::as_str) != Some(m.name()) {
        return Err(CliError::usage(format!(
            "the parts were scanned for --method {}, not {}",
            first
                .params
                .get("method")
                .map(String::as_str)
                .unwrap_or("?"),
            m.name()
        )));
    }
    let lines: usize = first
        .params
        .get("manifest_lines")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| CliError::data("part: missing manifest_lines"))?;
    let mut missing = Vec::new();
    let mut it = parts.iter().peekable();
    for k in 0..lines {
        let mut n = 0;
        while it.peek().is_some_and(|p| p.index == k) {
            it.next();
            n += 1;
        }
        match n {
            0 => missing.push(k),
            1 => {}
            _ => {
                return Err(CliError::usage(format!(
                    "more than one part for manifest line {k}"
                )))
            }
        }
    }
    if let Some(p) = it.next() {
        return Err(CliError::usage(format!(
            "part {}: index {} is past the manifest's {lines} lines",
            p.path.display(),
            p.index
        )));
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(|k| k.to_string()).collect();
        return Err(CliError::usage(format!(
            "no part for manifest line(s) {}{}",
            shown.join(", "),
            if missing.len() > 20 { ", ..." } else { "" }
        )));
    }
    // The MAC numbering, when the parts recorded one.
    let mut mac = if first.params.get("mac").map(String::as_str) == Some("wash") {
        crate::mac::MacMap::Enumerate(HashMap::new())
    } else {
        crate::mac::MacMap::Keep
    };
    for p in &parts {
        if p.params.get("complete").map(String::as_str) != Some("yes") {
            eprintln!(
                "ipwash: note: part {} stops at a data error in its input (as its wash will)",
                p.path.display()
            );
        }
        // First appearance across the manifest: files in order, each in
        // its own order; an address already seen keeps its place.
        for &a in &p.addrs {
            technique.map(a);
        }
        for &m in &p.macs {
            mac.map(m);
        }
    }
    crate::state::save_with(&args.output, &technique, &mac, &args.method)
}

/// A frozen table: lookups only, shareable between threads. An address not
/// in it comes out as the unspecified address (never as itself) and is
/// counted; the caller then fails the file.
pub struct Frozen {
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u128>,
    prefix_preserving: bool,
    misses: AtomicU64,
    /// The MAC numbering (enumerate with `--mac wash`).
    macs: Option<Arc<crate::mac::FrozenMacs>>,
}

impl Frozen {
    /// The replacement of `a`, or None when the table does not hold it
    /// (not counted as a miss).
    pub fn lookup(&self, a: IpAddr) -> Option<IpAddr> {
        match a {
            IpAddr::V4(v) => self
                .v4
                .get(&u32::from(v))
                .map(|&o| IpAddr::V4(Ipv4Addr::from(o))),
            IpAddr::V6(v) => self
                .v6
                .get(&u128::from(v))
                .map(|&o| IpAddr::V6(Ipv6Addr::from(o))),
        }
    }

    /// True when the table's technique preserves prefixes (prefix-map).
    pub fn preserves_prefixes(&self) -> bool {
        self.prefix_preserving
    }

    /// Addresses (and MAC addresses) looked up and not found so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed) + self.macs.as_ref().map_or(0, |m| m.misses())
    }
}

impl AddrMap for Frozen {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        match self.v4.get(&u32::from(a)) {
            Some(&o) => Ipv4Addr::from(o),
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ipv4Addr::UNSPECIFIED
            }
        }
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        match self.v6.get(&u128::from(a)) {
            Some(&o) => Ipv6Addr::from(o),
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ipv6Addr::UNSPECIFIED
            }
        }
    }
    fn prefix_preserving(&self) -> bool {
        self.prefix_preserving
    }
}

/// `wash --state-readonly`: load the state into the washer's technique
/// (checking method, options and key as `--state` does), then replace it
/// by a frozen lookup of the same table.
pub fn freeze(washer: &mut Washer, args: &WashArgs) -> Result<Arc<Frozen>, CliError> {
    let Some(path) = &args.state else {
        return Err(CliError::usage("--state-readonly needs --state FILE"));
    };
    let f = load_frozen(path, &args.method)?;
    washer.technique = Technique::Stateless(f.clone());
    // Enumerated MACs come from the table's numbering too.
    if let (crate::mac::MacMap::Enumerate(_), Some(m)) = (&washer.mac, &f.macs) {
        washer.mac = crate::mac::MacMap::Frozen(m.clone());
    }
    Ok(f)
}

/// Load the state file at `path` (checking method, options and key against
/// `args` as `--state` does) as a frozen table.
pub fn load_frozen(path: &Path, args: &MethodArgs) -> Result<Arc<Frozen>, CliError> {
    let mut technique = match method::build(args)? {
        Built::Map { technique, .. } => technique,
        _ => {
            return Err(CliError::usage(
                "a state file serves enumerate and prefix-map only",
            ))
        }
    };
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "--state-readonly: state file {} does not exist (build it with `ipwash state merge`)",
            path.display()
        )));
    }
    let mut mac = crate::mac::MacMap::Enumerate(HashMap::new());
    crate::state::load_with(path, &mut technique, Some(&mut mac), args)?;
    let macs = match args.method {
        method::Method::Enumerate => mac.frozen().1,
        _ => None,
    };
    let Technique::Stateful(st) = &technique else {
        return Err(CliError::usage(
            "--state-readonly: this technique keeps no state",
        ));
    };
    let (pairs, pp) = match st.as_ref() {
        StatefulTech::Enumerate(e) => (e.export().pairs, false),
        StatefulTech::PrefixMap(p) => (p.export().pairs, true),
    };
    let mut v4 = HashMap::new();
    let mut v6 = HashMap::new();
    for (a, b) in pairs {
        match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                v4.insert(u32::from(a), u32::from(b));
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                v6.insert(u128::from(a), u128::from(b));
            }
            _ => return Err(CliError::data("state: pair of mixed families")),
        }
    }
    Ok(Arc::new(Frozen {
        v4,
        v6,
        prefix_preserving: pp,
        misses: AtomicU64::new(0),
        macs,
    }))
}

/// Wash one input with a frozen table. A named output is written under a
/// temporary name and moved to its final name only when every address was
/// in the table; otherwise it is removed and the file fails (exit 1). On
/// stdout or a device, what was written stays written (missing addresses
/// came out as `0.0.0.0` / `::`, never as themselves).
pub fn wash_one_readonly(
    input: &Path,
    output: &Path,
    plan: &mut Plan,
    stats: &mut Stats,
    frozen: &Frozen,
    state: &Path,
) -> Result<(), CliError> {
    let before = frozen.misses();
    let missed = |frozen: &Frozen| -> Option<CliError> {
        let n = frozen.misses() - before;
        (n > 0).then(|| {
            CliError::data(format!(
                "{}: {n} address or MAC lookup(s) not in the state table {} (merge it from scans of \
                 every file, with the flags of this wash); output not written",
                input.display(),
                state.display()
            ))
        })
    };
    if output.as_os_str() == "-" || capture::is_special_file(output) {
        let r = pipeline::wash_one(input, output, plan, stats);
        return match missed(frozen) {
            Some(e) => Err(e),
            None => r,
        };
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The final name ends the temporary one, so its suffix (`.gz`, `.xz`,
    // ...) still decides the output's wrapping.
    let mut tmp_name = std::ffi::OsString::from(format!(
        ".ipwash-ro-{}-{}.",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    tmp_name.push(output.file_name().unwrap_or_default());
    let tmp = dir.join(tmp_name);
    // A signal removes it like any other unfinished output.
    capture::track_temp(&tmp);
    let r = pipeline::wash_one(input, &tmp, plan, stats);
    if let Some(e) = missed(frozen) {
        capture::discard_temp(&tmp);
        return Err(e);
    }
    if tmp.exists() {
        capture::commit_temp(&tmp, output).map_err(|e| {
            capture::discard_temp(&tmp);
            CliError::data(format!("cannot rename into {}: {e}", output.display()))
        })?;
    } else {
        capture::discard_temp(&tmp);
    }
    r
}
