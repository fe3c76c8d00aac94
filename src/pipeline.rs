//! `ipwash wash`: the stream pipeline.
//!
//! ```text
//! input -> sniff (pcap | pcapng | C-DNS | dnstap, plain | gz | xz)
//!       -> units (records/blocks, copied verbatim unless patched)
//!       -> locate address slots -> map (scope, keep, technique) -> patch
//!       -> output in input order, same format and wrapping
//! ```
//!
//! Stateful techniques (enumeration, prefix map) run the sequential path,
//! packet by packet: their output depends on the order addresses are first
//! seen (on files, a reader thread parses the next batches meanwhile).
//! Stateless techniques on files run in batches: each worker on a rayon pool
//! (`--threads` of them) takes the reader in turn to copy out the next
//! batch, washes it, and writes it when its turn comes, so the output is in
//! input order and a batch stays on one core from reading to writing. A
//! worker's result depends only on the packet and the key, so the output is
//! byte-identical for every thread count. Plain UDP packets take a shortcut
//! past the general packet walker ([`packet::classify_plain`]).
//!
//! A packet that cannot be parsed far enough to find every address is
//! dropped and counted by reason (fail closed), unless `--unparsed pass`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};

use crate::capture::{
    self, CaptureReader, Compression, FileKind, Output, OutputCodec, ReaderOptions,
};
use crate::defrag::{Defrag, DefragLimits, Verdict};
use crate::error::CliError;
use crate::method::{self, Built, MethodArgs};
use crate::packet::{self, Family, FragInfo, Located, Origin, Plain};
use crate::stats::Stats;
use crate::wash::{KeepPrefix, Scope, Side, Technique, Washer};

/// What to do with packets that cannot be parsed far enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Unparsed {
    /// Drop and count them (fail closed).
    #[default]
    Drop,
    /// Write them unchanged. MAY LEAK the addresses they hold.
    Pass,
}

/// Scope names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScopeArg {
    /// Rewrite every address.
    #[default]
    All,
    /// Keep the DNS server side (port 53, 853 or 443; QR bit breaks ties).
    Clients,
}

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CompressArg {
    /// As the output file name says (.gz .xz .zst .bz2); none on stdout.
    #[default]
    Auto,
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
}

/// `ipwash wash`.
#[derive(Debug, clap::Args)]
pub struct WashArgs {
    /// Input files or directories (walked recursively, sorted; `-` = stdin).
    /// Several inputs or a directory need `-o DIR`.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub inputs: Vec<PathBuf>,
    /// Output file, or directory for several inputs or a directory (created
    /// if missing; the inputs' relative tree is mirrored) (`-` = stdout).
    #[arg(short, long, value_name = "OUTPUT", default_value = "-")]
    pub output: PathBuf,
    /// Replace each input file by its washed copy, once that copy is
    /// complete (instead of `-o`). An input that fails is left as it was.
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Which addresses to rewrite.
    #[arg(long, value_enum, default_value_t = ScopeArg::All)]
    pub scope: ScopeArg,
    /// Leave this network unchanged (repeatable), e.g. your own servers: 192.0.2.0/24.
    #[arg(long, value_name = "PREFIX")]
    pub keep: Vec<String>,
    /// Load the enumerate/prefix-map state from FILE before and save it after,
    /// so several runs share one mapping.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With `--state`: apply the table as it is (built by `ipwash state
    /// merge`), never add to it or save it; an address missing from it fails
    /// that file (exit 1, nothing under the output's name).
    #[arg(long, requires = "state")]
    pub state_readonly: bool,
    /// Packets that cannot be parsed far enough to rewrite every address:
    /// `drop` (default) or `pass` — pass WRITES THEM UNCHANGED AND MAY LEAK ADDRESSES.
    #[arg(long, value_enum, default_value_t = Unparsed::Drop)]
    pub unparsed: Unparsed,
    /// Also write the statistics as JSON to FILE (`-` = stdout): totals and
    /// one entry per input.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Write every dropped packet, UNCHANGED (original addresses: the file
    /// is created with mode 0600), to FILE as pcapng, its reason in the
    /// packet comment.
    #[arg(long, value_name = "FILE")]
    pub dropped: Option<PathBuf>,
    /// Worker threads for stateless techniques (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output compression (default: as the output name says; none on stdout).
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    pub compress: CompressArg,
    /// Compression level (gzip and bzip2 1-9, xz 0-9, zstd 1-19; default:
    /// the tool's own, gzip 6, xz 6, zstd 3, bzip2 9).
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
    /// pcapng: keep comment options (they can hold anything, addresses included).
    #[arg(long)]
    pub keep_comments: bool,
    /// C-DNS: keep the collection's free-text fields (filter, host-id, interfaces).
    #[arg(long)]
    pub keep_collection_info: bool,
    /// pcapng: keep all metadata (interface names, descriptions, filters,
    /// OS and hardware strings, packet hashes, decryption secrets, custom
    /// and unknown blocks and options); by default only harmless metadata
    /// is copied.
    #[arg(long)]
    pub keep_metadata: bool,
    /// MAC addresses (Ethernet, Linux cooked, ARP, ICMPv6 ND, DHCP):
    /// `wash` maps them with the technique, `keep` leaves them.
    #[arg(long, value_enum, default_value_t = crate::mac::MacMode::Wash)]
    pub mac: crate::mac::MacMode,
    /// Reverse names (`d.c.b.a.in-addr.arpa`, `ip6.arpa`) in DNS names:
    /// `wash` maps the address they hold, `keep` leaves them (they MAY
    /// hold the addresses washed elsewhere).
    #[arg(long, value_enum, default_value_t = crate::revname::ReverseNames::Wash)]
    pub reverse_names: crate::revname::ReverseNames,
    /// Entries per family of the per-thread exact-address cache (0 disables
    /// it, at most 4194304): 8 bytes each for IPv4, 32 for IPv6.
    #[arg(long, default_value_t = DEFAULT_CACHE_ENTRIES)]
    pub cache_size: usize,
    /// Do not print statistics on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Wash back: invert a wash made with the same method and key (or, for
    /// enumerate and prefix-map, from its --state table, read-only).
    #[arg(long)]
    pub reverse: bool,
}

/// Everything decided before the first byte is read.
pub struct Plan {
    /// The washer (technique + scope + keep-list).
    pub washer: Washer,
    /// Unparsed-packet policy.
    pub unparsed: Unparsed,
    /// Worker threads.
    pub threads: usize,
    /// Reader options.
    pub reader: ReaderOptions,
    /// C-DNS options.
    pub cdns: crate::cdns::CdnsOptions,
    /// Output compression choice.
    pub compress: CompressArg,
    /// Exact-address cache entries per worker.
    pub cache_size: usize,
    /// Compression level (None: the codec's default).
    pub level: Option<u32>,
    /// Keep the existing output when washing fails at all (`--in-place`:
    /// the output is the input).
    pub keep_on_error: bool,
    /// Called with the technique just before an output is renamed into
    /// place (the state saved on a signal covers every file written).
    pub before_commit: Option<CommitHook>,
    /// Outputs completed under their final name.
    pub outputs_written: u64,
    /// `--state-readonly`: the frozen table and its file.
    pub frozen: Option<(Arc<crate::fanout::Frozen>, PathBuf)>,
    /// `--dropped`: where dropped packets go.
    pub dropped: Option<Arc<Mutex<crate::dropped::DroppedWriter>>>,
}

/// A hook called with the technique before an output is committed.
pub type CommitHook = Arc<dyn Fn(&Technique) + Send + Sync>;

/// Run `ipwash wash`.
pub fn run_wash(args: &WashArgs) -> Result<(), CliError> {
    // Stage 1: validate everything; nothing is written on a usage error.
    let jobs = crate::batch::plan_jobs(args)?;
    let keep = args
        .keep
        .iter()
        .map(|k| KeepPrefix::parse(k).map_err(|e| CliError::usage(format!("--keep: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = None;
    let (technique, info) = match method::build(&args.method)? {
        Built::Map { .. } if args.reverse => {
            let (t, tab) = crate::reverse::technique(&args.method, args.state.as_deref())?;
            table = tab;
            (t, crate::wash::TechniqueInfo::default())
        }
        Built::Map {
            technique, info, ..
        } => (technique, info),
        Built::Deterministic(_) => {
            return Err(CliError::usage(
                "ipcrypt-deterministic turns IPv4 addresses into 16 bytes, which cannot fit \
                 an IPv4 header; use ipcrypt-pfx (format- and prefix-preserving) to wash captures, \
                 or `ipwash map` for text logs",
            ))
        }
        Built::NonDeterministic(_) => {
            return Err(CliError::usage(format!(
                "{} turns each address into a hex ciphertext, which cannot fit an IP header; \
                 use it with `ipwash map` for text logs",
                args.method.method.name()
            )))
        }
    };
    let mut washer = Washer::new(technique);
    washer.info = info;
    washer.scope = match args.scope {
        ScopeArg::All => Scope::All,
        ScopeArg::Clients => Scope::Clients,
    };
    washer.keep = keep;
    washer.reverse_names = args.reverse_names;
    // Washing back inverts the keyed MAC permutation; truncated or
    // enumerated MACs stay as they are.
    washer.mac = if args.reverse {
        crate::mac::MacMap::build_reverse(&args.method, args.mac)?
    } else {
        crate::mac::MacMap::build(&args.method, args.mac)?
    };
    let frozen = match &args.state {
        Some(p) if args.state_readonly && !args.reverse => {
            if matches!(washer.mac, crate::mac::MacMap::Enumerate(_)) {
                // The merged table holds addresses only: numbering MACs
                // here would depend on this machine's share of the files.
                return Err(CliError::usage(
                    "--state-readonly: the merged table of enumerate holds no MAC numbering; \
                     give --mac keep, or wash the files in one sequential run",
                ));
            }
            Some((crate::fanout::freeze(&mut washer, args)?, p.clone()))
        }
        Some(p) if !args.reverse => {
            crate::state::load(p, &mut washer.technique, &args.method)?;
            None
        }
        _ => None,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let mut plan = Plan {
        washer,
        unparsed: args.unparsed,
        threads,
        reader: ReaderOptions {
            keep_comments: args.keep_comments,
            keep_metadata: args.keep_metadata,
            userappl: Some(args.method.method.name()),
            ..ReaderOptions::default()
        },
        cdns: crate::cdns::CdnsOptions {
            keep_collection_info: args.keep_collection_info,
            // Washing back does not mark the output as anonymised.
            mark_output: !args.reverse,
        },
        compress: args.compress,
        cache_size: args.cache_size,
        level: args.level,
        keep_on_error: args.in_place,
        before_commit: None,
        outputs_written: 0,
        dropped: None,
        frozen,
    };
    if let Some(p) = &args.dropped {
        if p.as_os_str() == "-" || *p == args.output || args.inputs.contains(p) {
            return Err(CliError::usage(
                "--dropped needs a file of its own (not stdout, the output or an input)",
            ));
        }
        let w = crate::dropped::DroppedWriter::create(p).map_err(|e| {
            CliError::usage(format!("--dropped: cannot create {}: {e}", p.display()))
        })?;
        plan.dropped = Some(Arc::new(Mutex::new(w)));
    }

    let stdin_count = args.inputs.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_count > 0 && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // As gzip does: say so rather than wait silently.
        eprintln!(
            "ipwash: reading a capture from stdin (the terminal); give a file name or pipe a capture in"
        );
    }

    // Stage 2: run every input; a data error in one input does not stop the others.
    let res = crate::batch::run_jobs(args, &jobs, &mut plan);
    if args.reverse {
        eprint!("{}", crate::reverse::NOTE);
        if let Some(t) = &table {
            if t.misses() > 0 {
                eprintln!(
                    "ipwash: {} address lookups found no entry in the state table ({} entries) and were left as they are",
                    t.misses(),
                    t.len()
                );
            }
        }
    }
    if let (Some(w), Some(p)) = (plan.dropped.take(), &args.dropped) {
        let w = Arc::try_unwrap(w)
            .map_err(|_| CliError::data("internal: dropped-packet file still shared"))?
            .into_inner()
            .map_err(|_| CliError::data("dropped-packet file lock poisoned"))?;
        let n = w.packets;
        w.finish()
            .map_err(|e| CliError::io(format!("writing {}", p.display()), e))?;
        if !args.quiet {
            eprintln!(
                "ipwash: {n} dropped packet(s) written unchanged to {}",
                p.display()
            );
        }
    }
    res
}

/// An input that could not be opened or read, as a message naming it
/// once (an open error already names the path).
pub fn input_error(name: &str, e: capture::CaptureError) -> CliError {
    match e {
        capture::CaptureError::Open { .. } => CliError::data(e.to_string()),
        _ => CliError::data(format!("{name}: {e}")),
    }
}

fn display(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        p.display().to_string()
    }
}

impl Plan {
    /// A plan for benchmarks: the named method with a fixed, published
    /// (not secret) key, scope `all`, drop unparsed packets.
    pub fn for_bench(method: &str, threads: usize) -> Plan {
        use clap::ValueEnum;
        let m = method::Method::from_str(method, false).unwrap_or(method::Method::Cryptopan);
        let technique = match m {
            method::Method::Truncate => {
                Technique::Stateless(Arc::new(ipwash_algorithms::truncate::Truncate::default()))
            }
            method::Method::Tsa => Technique::Stateless(Arc::new(
                ipwash_algorithms::tsa::Tsa::new(&bench_key(), 4096)
                    .unwrap_or_else(|_| unreachable!("4096 is a valid pool size")),
            )),
            method::Method::IpcryptPfx => Technique::Stateless(Arc::new(
                ipwash_algorithms::ipcrypt_pfx::IpcryptPfx::new(&bench_key())
                    .unwrap_or_else(|_| unreachable!("the halves differ")),
            )),
            _ => Technique::Stateless(Arc::new(ipwash_algorithms::cryptopan::CryptoPan::new(
                &bench_key(),
            ))),
        };
        let mut washer = Washer::new(technique);
        washer.info.name = m.name().to_string();
        Plan {
            washer,
            unparsed: Unparsed::Drop,
            threads: threads.max(1),
            reader: ReaderOptions::default(),
            cdns: Default::default(),
            compress: CompressArg::None,
            cache_size: DEFAULT_CACHE_ENTRIES,
            level: None,
            keep_on_error: false,
            before_commit: None,
            outputs_written: 0,
            dropped: None,
            frozen: None,
        }
    }
}

fn bench_key() -> ipwash_algorithms::Key<32> {
    ipwash_algorithms::Key::new(*b"ipwash bench key, not a secret!!")
}

/// Wash a pcap or pcapng stream from `r` to `w` (no compression, no C-DNS):
/// the library entry point used by benchmarks and embedders.
pub fn wash_stream<R: Read + Send, W: Write + Send>(
    r: R,
    w: W,
    plan: &mut Plan,
) -> Result<Stats, CliError> {
    let out = Arc::new(Mutex::new(w));
    let mut stats = Stats::default();
    wash_capture(r, &out, plan, &mut stats, "<stream>", false)?;
    out.lock()
        .map_err(|_| CliError::data("output lock poisoned"))?
        .flush()
        .map_err(|e| CliError::io("output", e))?;
    Ok(stats)
}

/// Wash one input into one output.
pub fn wash_one(
    input: &Path,
    output: &Path,
    plan: &mut Plan,
    stats: &mut Stats,
) -> Result<(), CliError> {
    let name = display(input);
    let inp = capture::open_input(input).map_err(|e| input_error(&name, e))?;
    stats.inputs += 1;
    if matches!(inp.kind, FileKind::Pcap | FileKind::Pcapng) {
        stats.packet_inputs += 1;
    }
    let compression = output_compression(plan.compress, output);
    let codec = OutputCodec {
        compression,
        level: plan.level.unwrap_or(compression.default_level()),
        threads: plan.threads,
    };
    let kind = inp.kind;
    if kind == FileKind::Unknown {
        // Refused before the output is created: an existing file stays.
        return Err(CliError::data(format!(
            "{name}: unknown format (not pcap, pcapng or C-DNS)"
        )));
    }
    let live = input.as_os_str() == "-";
    let before = stats.written + stats.blocks + stats.cdns_blocks;
    let out = Output::create_with(output, codec)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", display(output))))?;
    let out = Arc::new(Mutex::new(out));
    let reader: Box<dyn Read + Send> = if live {
        // A live pipe: flush the output whenever the input would block, so
        // packets are not held back.
        let o = out.clone();
        Box::new(FlushOnBlock::new(
            inp.into_reader(),
            Box::new(move || {
                if let Ok(mut g) = o.lock() {
                    let _ = g.flush();
                }
            }),
        ))
    } else {
        Box::new(inp.into_reader())
    };
    let res = match kind {
        FileKind::Cdns => wash_cdns(reader, &out, plan, stats, &name),
        FileKind::Dnstap => crate::dnstap::wash_file(reader, &out, plan, stats, &name),
        FileKind::Pcap | FileKind::Pcapng => wash_capture(reader, &out, plan, stats, &name, live),
        FileKind::Unknown => {
            // The reader holds the output (its flush hook): let it go.
            drop(reader);
            Err(CliError::data(format!(
                "{name}: unknown format (not pcap, pcapng, C-DNS or dnstap)"
            )))
        }
    };
    let out = match Arc::try_unwrap(out) {
        Ok(m) => m
            .into_inner()
            .map_err(|_| CliError::data("output lock poisoned"))?,
        Err(_) => return Err(CliError::data("internal: output still shared")),
    };
    // After a data error the output so far is a valid file: finish it,
    // unless nothing was written (an existing file is then kept as it was)
    // or the output replaces the input (`--in-place`).
    // C-DNS counts its blocks only on success: a cut C-DNS file keeps the
    // blocks before the fault, as before.
    let wrote = kind == FileKind::Cdns || stats.written + stats.blocks + stats.cdns_blocks > before;
    if res.is_err() && (!wrote || plan.keep_on_error) {
        drop(out);
        return res;
    }
    if let Some(f) = &plan.before_commit {
        f(&plan.washer.technique);
    }
    let fin = out
        .finish()
        .map_err(|e| CliError::io(format!("writing {}", display(output)), e));
    if fin.is_ok() {
        plan.outputs_written += 1;
    }
    res?;
    fin
}

/// The wrapping of an output: `--compress`, else the output's name (none
/// on stdout).
pub fn output_compression(c: CompressArg, output: &Path) -> Compression {
    match c {
        CompressArg::Auto if output.as_os_str() == "-" => Compression::None,
        CompressArg::Auto => Compression::from_name(output),
        CompressArg::None => Compression::None,
        CompressArg::Gzip => Compression::Gzip,
        CompressArg::Xz => Compression::Xz,
        CompressArg::Zstd => Compression::Zstd,
        CompressArg::Bzip2 => Compression::Bzip2,
    }
}

fn wash_cdns<W: Write + Send>(
    reader: Box<dyn Read + Send>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let mut w = SharedWriter(out.clone());
    match crate::cdns::wash_cdns(reader, &mut w, &mut plan.washer, &plan.cdns) {
        Ok(s) => {
            stats.cdns_blocks += s.blocks;
            stats.cdns_addresses += s.rewritten;
            stats.names.add(&s.names);
            Ok(())
        }
        Err(e) => {
            let msg = format!("{name}: {e}");
            if e.is_usage() {
                Err(CliError::usage(msg))
            } else {
                Err(CliError::data(msg))
            }
        }
    }
}

/// A writer over the shared output.
pub(crate) struct SharedWriter<W>(pub(crate) Arc<Mutex<W>>);

impl<W: Write> Write for SharedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?
            .write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?
            .write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("output lock poisoned"))?
            .flush()
    }
}

/// A reader that calls a hook before a read that may block: used on live
/// pipes so that everything washed so far reaches the output first.
pub struct FlushOnBlock {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    hook: Box<dyn FnMut() + Send>,
    done: bool,
}

impl FlushOnBlock {
    /// Start a thread pumping `inner` into chunks.
    pub fn new(mut inner: Box<dyn std::io::BufRead + Send>, hook: Box<dyn FnMut() + Send>) -> Self {
        let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(16);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; 1 << 16];
            match inner.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
        FlushOnBlock {
            rx,
            cur: Vec::new(),
            pos: 0,
            hook,
            done: false,
        }
    }
}

impl Read for FlushOnBlock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.rx.try_recv() {
                Ok(c) => Some(c),
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    (self.hook)();
                    self.rx.recv().ok()
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
            };
            match next {
                Some(Ok(c)) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Outcome of washing one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a packet (a pcapng block other than a packet): copied.
    Block,
    /// A block the reader marked for removal (e.g. a Name Resolution Block).
    BlockDropped(&'static str),
    /// Written; `true` when at least one address was rewritten.
    Written(bool),
    /// Could not be parsed; written unchanged because of `--unparsed pass`.
    Passed(&'static str),
    /// Dropped for this reason.
    Dropped(&'static str),
}

/// Default entries per family of [`AddrCache`]: 512 KiB for IPv4 and 2 MiB
/// for IPv6 per worker thread.
pub const DEFAULT_CACHE_ENTRIES: usize = 1 << 16;

/// A direct-mapped exact-address cache, one per worker and family. Skewed
/// real traffic repeats addresses, and a hit skips the cipher entirely.
/// Entries are compact (8 bytes for IPv4, 32 for IPv6) so a useful cache
/// stays in the L2 cache. The all-zero address is never cached: a zero key
/// marks an empty slot.
pub struct AddrCache {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    shift4: u32,
    shift6: u32,
}

impl AddrCache {
    /// A cache with at least `n` entries per family (rounded up to a power
    /// of two); 0 disables it.
    pub fn new(n: usize) -> Self {
        Self::with_sizes(n, n)
    }

    /// At least `n4` IPv4 and `n6` IPv6 entries; 0 disables a family.
    pub fn with_sizes(n4: usize, n6: usize) -> Self {
        let size = |n: usize| {
            if n == 0 {
                0
            } else {
                n.next_power_of_two().max(2)
            }
        };
        let (n4, n6) = (size(n4), size(n6));
        AddrCache {
            v4: vec![(0, 0); n4],
            v6: vec![(0, 0); n6],
            shift4: 32 - n4.trailing_zeros().min(32),
            shift6: 64 - n6.trailing_zeros().min(64),
        }
    }

    /// Look up, or compute and remember, an IPv4 address.
    #[inline]
    pub fn v4(&mut self, a: u32, f: impl FnOnce(u32) -> u32) -> u32 {
        if self.v4.is_empty() || a == 0 {
            return f(a);
        }
        let i = (a.wrapping_mul(0x9E37_79B1) >> self.shift4) as usize;
        let slot = &mut self.v4[i];
        if slot.0 == a {
            return slot.1;
        }
        let v = f(a);
        *slot = (a, v);
        v
    }

    /// Look up, or compute and remember, an IPv6 address.
    #[inline]
    pub fn v6(&mut self, a: u128, f: impl FnOnce(u128) -> u128) -> u128 {
        if self.v6.is_empty() || a == 0 {
            return f(a);
        }
        let h =
            ((a as u64) ^ ((a >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (h >> self.shift6) as usize;
        let slot = &mut self.v6[i];
        if slot.0 == a {
            return slot.1;
        }
        let v = f(a);
        *slot = (a, v);
        v
    }

    /// Either family.
    #[inline]
    pub fn get_or(&mut self, a: IpAddr, f: impl FnOnce(IpAddr) -> IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(self.v4(u32::from(v), |x| {
                match f(IpAddr::V4(Ipv4Addr::from(x))) {
                    IpAddr::V4(m) => u32::from(m),
                    IpAddr::V6(_) => x,
                }
            }))),
            IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(self.v6(u128::from(v), |x| {
                match f(IpAddr::V6(Ipv6Addr::from(x))) {
                    IpAddr::V6(m) => u128::from(m),
                    IpAddr::V4(_) => x,
                }
            }))),
        }
    }
}

/// Per-worker state: reused between packets and batches.
pub struct Worker {
    /// Located slots, reused.
    pub loc: Located,
    /// Exact-address cache (stateless techniques only).
    pub cache: AddrCache,
    /// Counters.
    pub stats: Stats,
    /// Take plain UDP packets through the shortcut (on by default; tests
    /// turn it off to compare with the general path).
    pub shortcut: bool,
    /// Set by [`wash_packet`] when the washed packet has another length
    /// (a reverse name changed length): the packet to write instead of the
    /// buffer's bytes.
    pub resized: Option<Vec<u8>>,
}

impl Worker {
    /// A worker for `washer`: a cache of `cache_size` entries per family
    /// where it pays (stateless techniques that are not cheaper than a
    /// lookup).
    pub fn for_washer(washer: &Washer, cache_size: usize) -> Self {
        let (n4, n6) = match &washer.technique {
            Technique::Stateless(m) => (
                if m.cheap(false) { 0 } else { cache_size },
                if m.cheap(true) { 0 } else { cache_size },
            ),
            Technique::Stateful(_) => (0, 0),
        };
        let mut w = Worker::new(0);
        w.cache = AddrCache::with_sizes(n4, n6);
        w
    }

    /// A fresh worker.
    pub fn new(cache_size: usize) -> Self {
        Worker {
            loc: Located::new(),
            cache: AddrCache::new(cache_size),
            stats: Stats::default(),
            shortcut: true,
            resized: None,
        }
    }
}

/// Map one IPv4 address seen on `side`, through the worker's cache when
/// the technique is stateless, and count it.
#[inline]
fn map_v4(a: u32, side: Side, washer: &mut Washer, w: &mut Worker, stateless: bool) -> u32 {
    w.stats.distinct.insert_v4(a);
    if stateless && washer.in_scope(side) {
        w.cache.v4(a, |a| washer.wash_v4(a, side))
    } else {
        washer.wash_v4(a, side)
    }
}

/// [`map_v4`] for IPv6.
#[inline]
fn map_v6(a: u128, side: Side, washer: &mut Washer, w: &mut Worker, stateless: bool) -> u128 {
    w.stats.distinct.insert_v6(a);
    if stateless && washer.in_scope(side) {
        w.cache.v6(a, |a| washer.wash_v6(a, side))
    } else {
        washer.wash_v6(a, side)
    }
}

/// Map the full address of `N` (4 or 16) bytes at `at` in `pkt`, seen on
/// `side`; `flip`: it is stored with every bit inverted (Teredo). The bytes
/// as stored and their replacement, when they differ.
#[inline]
fn map_at<const N: usize>(
    pkt: &[u8],
    at: usize,
    flip: bool,
    side: Side,
    washer: &mut Washer,
    w: &mut Worker,
    stateless: bool,
) -> Option<([u8; N], [u8; N])> {
    let old = <[u8; N]>::try_from(pkt.get(at..at + N)?).ok()?;
    let mut x = old;
    if flip {
        x.iter_mut().for_each(|v| *v = !*v);
    }
    let mut new = x;
    if let Ok(v4) = <[u8; 4]>::try_from(&x[..]) {
        let a = u32::from_be_bytes(v4);
        let m = map_v4(a, side, washer, w, stateless);
        if m == a {
            return None;
        }
        new.copy_from_slice(&m.to_be_bytes());
    } else {
        let a = u128::from_be_bytes(<[u8; 16]>::try_from(&x[..]).ok()?);
        let m = map_v6(a, side, washer, w, stateless);
        if m == a {
            return None;
        }
        new.copy_from_slice(&m.to_be_bytes());
    }
    if flip {
        new.iter_mut().for_each(|v| *v = !*v);
    }
    Some((old, new))
}

/// Wash a plain UDP packet (see [`packet::classify_plain`]): the same
/// result as the general path, without its bookkeeping.
fn wash_plain(pkt: &mut [u8], pl: &Plain, washer: &mut Washer, w: &mut Worker) -> Outcome {
    let stateless = matches!(washer.technique, Technique::Stateless(_));
    let mut changed = false;
    for (&at, &side) in pl.addr.iter().zip(&pl.side) {
        changed |= match pl.family {
            Family::V4 => map_at::<4>(pkt, at, false, side, washer, w, stateless)
                .map(|(old, new)| packet::patch_plain(pkt, pl, at, &old, &new)),
            Family::V6 => map_at::<16>(pkt, at, false, side, washer, w, stateless)
                .map(|(old, new)| packet::patch_plain(pkt, pl, at, &old, &new)),
        }
        .is_some();
    }
    Outcome::Written(changed)
}

/// Wash one packet in place. `washer` decides scope/keep and maps; MAC
/// addresses are washed after the IP addresses ([`crate::mac`]). A packet
/// passed unparsed (`--unparsed pass`) is written unchanged, MACs included.
pub fn wash_packet(
    pkt: &mut [u8],
    linktype: u32,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) -> Outcome {
    w.resized = None;
    match wash_packet_ip(pkt, linktype, washer, w, unparsed) {
        Outcome::Written(c) => {
            let p = match w.resized.as_mut() {
                Some(v) => &mut v[..],
                None => pkt,
            };
            Outcome::Written(crate::mac::wash_link(p, linktype, &mut washer.mac) | c)
        }
        o => o,
    }
}

fn wash_packet_ip(
    pkt: &mut [u8],
    linktype: u32,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) -> Outcome {
    if w.shortcut {
        if let Some(pl) = packet::classify_plain(linktype, pkt, &mut w.loc) {
            return wash_plain(pkt, &pl, washer, w);
        }
    }
    if let Err(reason) = packet::locate_general(linktype, pkt, &mut w.loc) {
        let r = reason.as_str();
        return match unparsed {
            Unparsed::Pass => Outcome::Passed(r),
            Unparsed::Drop => Outcome::Dropped(r),
        };
    }
    let mut changed = false;
    let stateless = matches!(washer.technique, Technique::Stateless(_));
    for i in 0..w.loc.slots.len() {
        let s = &w.loc.slots[i];
        let (family, side, n, prefix_bits) = (s.family, s.side, s.len as usize, s.prefix_bits);
        let inverted = s.origin == Origin::TeredoOrigin;
        let full = family.bytes();
        if n == full && prefix_bits as usize == full * 8 {
            // Teredo stores the client's IPv4 address with every bit inverted.
            let at = s.offset;
            changed |= match family {
                Family::V4 => map_at::<4>(pkt, at, inverted, side, washer, w, stateless)
                    .map(|(_, new)| packet::patch(pkt, &w.loc, i, &new)),
                Family::V6 => map_at::<16>(pkt, at, inverted, side, washer, w, stateless)
                    .map(|(_, new)| packet::patch(pkt, &w.loc, i, &new)),
            }
            .is_some();
            continue;
        }
        let Some(bytes) = pkt.get(s.offset..s.offset + n) else {
            continue;
        };
        // An ECS prefix, or an address cut short by the snapshot length.
        let mut cur = [0u8; 16];
        cur[..n].copy_from_slice(bytes);
        if inverted {
            cur[..n].iter_mut().for_each(|b| *b = !*b);
        }
        let mut new = cur;
        let bits = prefix_bits.min((n * 8) as u8);
        washer.wash_prefix(&mut new[..n], family == Family::V6, bits, side);
        // Bytes past `n` are equal in both (zero), so whole arrays compare.
        if new != cur {
            if inverted {
                new[..n].iter_mut().for_each(|b| *b = !*b);
            }
            packet::patch(pkt, &w.loc, i, &new[..n]);
            changed = true;
        }
    }
    if !w.loc.names.is_empty() && washer.reverse_names == crate::revname::ReverseNames::Wash {
        let names = &mut w.stats.names;
        match crate::revwash::wash_names(pkt, linktype, &w.loc, washer, names) {
            crate::revwash::Names::Unchanged => {}
            crate::revwash::Names::Changed => changed = true,
            crate::revwash::Names::Resized(v) => {
                w.resized = Some(v);
                changed = true;
            }
            crate::revwash::Names::Drop(r) => {
                return match unparsed {
                    Unparsed::Pass => Outcome::Passed(r),
                    Unparsed::Drop => Outcome::Dropped(r),
                }
            }
        }
    }
    Outcome::Written(changed)
}

fn wash_capture<R: Read + Send, W: Write + Send>(
    reader: R,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
    live: bool,
) -> Result<(), CliError> {
    let mut rd = CaptureReader::new(reader, plan.reader)
        .map_err(|e| CliError::data(format!("{name}: {e}")))?;
    if let Some(lt) = rd.pcap_linktype() {
        if !packet::linktype_supported(lt) {
            return Err(CliError::data(format!(
                "{name}: pcap link type {lt} is not supported \
                 (supported: 0, 1, 12, 14, 101, 108, 113, 228, 229, 276)"
            )));
        }
    }
    {
        let mut o = out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        o.write_all(rd.header())
            .map_err(|e| CliError::io("output", e))?;
    }
    let res = match &plan.washer.technique {
        // A live pipe takes the sequential path, which flushes the output
        // whenever the input would block; batches would hold packets back.
        Technique::Stateless(_) if !live => wash_batched(&mut rd, out, plan, stats, name),
        Technique::Stateful(_) if !live => wash_prefetched(&mut rd, out, plan, stats, name),
        _ => wash_sequential(&mut rd, out, plan, stats, name),
    };
    stats.add_options_removed(rd.metadata_removed());
    res
}

/// One unit on its way out: its bytes, the packet's range in them, the
/// fragment it is (if any) and what washing it gave.
struct Piece<'d> {
    data: &'d [u8],
    pkt: Option<Range<usize>>,
    frag: Option<&'d FragInfo>,
    outcome: Outcome,
}

/// The output side: writes units in input order, routing IP fragments
/// through the defragmenter so an ECS option in a later fragment is washed
/// too (and groups that cannot be checked are dropped).
struct Emitter<'a, W> {
    out: &'a Arc<Mutex<W>>,
    defrag: Defrag,
    dropped: Option<DropSink>,
}

/// `--dropped`: the input's framing, to find each dropped packet, and the
/// shared file.
struct DropSink {
    fmt: crate::dropped::UnitFormat,
    w: Arc<Mutex<crate::dropped::DroppedWriter>>,
}

impl DropSink {
    fn for_plan(plan: &Plan, header: &[u8]) -> Option<DropSink> {
        plan.dropped.as_ref().map(|w| DropSink {
            fmt: crate::dropped::UnitFormat::from_header(header),
            w: w.clone(),
        })
    }

    /// Note a unit: blocks update the framing, dropped packets are written.
    fn unit(&mut self, data: &[u8], o: Outcome) -> std::io::Result<()> {
        match o {
            Outcome::Block => {
                self.fmt.see_block(data);
                Ok(())
            }
            Outcome::Dropped(r) => self.packet(data, r),
            _ => Ok(()),
        }
    }

    fn packet(&mut self, data: &[u8], reason: &str) -> std::io::Result<()> {
        let Some(p) = self.fmt.packet(data) else {
            return Ok(());
        };
        self.w
            .lock()
            .map_err(|_| std::io::Error::other("dropped-packet file lock poisoned"))?
            .packet(data, &p, reason)
    }
}

fn save_dropped(d: &mut Option<DropSink>, data: &[u8], o: Outcome) -> Result<(), CliError> {
    match d {
        Some(d) => d
            .unit(data, o)
            .map_err(|e| CliError::io("--dropped file", e)),
        None => Ok(()),
    }
}

impl<'a, W: Write> Emitter<'a, W> {
    fn new(out: &'a Arc<Mutex<W>>, dropped: Option<DropSink>) -> Self {
        Emitter {
            out,
            defrag: Defrag::new(DefragLimits::default()),
            dropped,
        }
    }

    /// Count and write one unit.
    fn unit(
        &mut self,
        piece: Piece<'_>,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        record(stats, piece.outcome);
        save_dropped(&mut self.dropped, piece.data, piece.outcome)?;
        if !writes(piece.outcome) {
            return Ok(());
        }
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        self.defrag_or_write(&mut *o, piece, washer, stats)
    }

    /// Write a whole washed batch in input order under one lock. Units that
    /// follow each other in the batch's buffer go out in one write.
    fn batch(
        &mut self,
        batch: &Batch,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        self.recs(&batch.buf, &batch.recs, washer, stats)
    }

    /// Write washed units `recs` (whose bytes are in `buf`) in order.
    fn recs(
        &mut self,
        buf: &[u8],
        recs: &[Rec],
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        let o = &mut *o;
        let write = |o: &mut W, run: &Range<usize>| -> Result<(), CliError> {
            match buf.get(run.clone()) {
                Some(b) if !b.is_empty() => o.write_all(b).map_err(|e| CliError::io("output", e)),
                _ => Ok(()),
            }
        };
        let mut run = 0..0;
        for r in recs {
            record(stats, r.outcome);
            if self.dropped.is_some() {
                save_dropped(&mut self.dropped, &buf[r.start..r.end], r.outcome)?;
            }
            if !writes(r.outcome) {
                continue;
            }
            if let Some(g) = &r.grown {
                write(o, &run)?;
                run = r.end..r.end;
                let piece = Piece {
                    data: g,
                    pkt: None,
                    frag: None,
                    outcome: r.outcome,
                };
                self.defrag_or_write(o, piece, washer, stats)?;
                continue;
            }
            let fragment = matches!(r.outcome, Outcome::Written(_)) && r.frag.is_some();
            if !fragment && !self.defrag.holding() {
                if run.end != r.start {
                    write(o, &run)?;
                    run = r.start..r.start;
                }
                run.end = r.end;
                continue;
            }
            write(o, &run)?;
            run = r.end..r.end;
            let piece = Piece {
                data: &buf[r.start..r.end],
                pkt: r.pkt.map(|(a, b, _)| a..b),
                frag: r.frag.as_deref(),
                outcome: r.outcome,
            };
            self.defrag_or_write(o, piece, washer, stats)?;
        }
        write(o, &run)
    }

    /// Write a unit that is to be written, through the defragmenter when it
    /// is a fragment or fragments are held.
    fn defrag_or_write(
        &mut self,
        o: &mut W,
        piece: Piece<'_>,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        let Piece {
            data,
            pkt,
            frag,
            outcome,
        } = piece;
        let fragment = match (outcome, frag, pkt) {
            (Outcome::Written(_), Some(f), Some(r)) => Some((f, r)),
            _ => None,
        };
        if fragment.is_none() && !self.defrag.holding() {
            return o.write_all(data).map_err(|e| CliError::io("output", e));
        }
        let dropped = &mut self.dropped;
        let mut emit = |bytes: Vec<u8>, v: Verdict| -> std::io::Result<()> {
            match v {
                Verdict::Write => o.write_all(&bytes),
                Verdict::Drop(r) => {
                    stats.written -= 1;
                    stats.dropped(r);
                    match dropped.as_mut() {
                        Some(d) => d.packet(&bytes, r),
                        None => Ok(()),
                    }
                }
            }
        };
        let res = match fragment {
            Some((f, r)) => self
                .defrag
                .push_fragment(data.to_vec(), r, f, washer, &mut emit),
            None => self.defrag.push_other(data.to_vec(), &mut emit),
        };
        res.map_err(|e| CliError::io("output", e))
    }

    /// End of one input: resolve every held fragment group.
    fn finish(&mut self, stats: &mut Stats) -> Result<(), CliError> {
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        let dropped = &mut self.dropped;
        let mut emit = |bytes: Vec<u8>, v: Verdict| -> std::io::Result<()> {
            match v {
                Verdict::Write => o.write_all(&bytes),
                Verdict::Drop(r) => {
                    stats.written -= 1;
                    stats.dropped(r);
                    match dropped.as_mut() {
                        Some(d) => d.packet(&bytes, r),
                        None => Ok(()),
                    }
                }
            }
        };
        let r = self
            .defrag
            .finish(&mut emit)
            .map_err(|e| CliError::io("output", e));
        stats.names.add(&self.defrag.names);
        self.defrag.names = Default::default();
        r
    }
}

fn record(stats: &mut Stats, o: Outcome) {
    match o {
        Outcome::Block => stats.blocks += 1,
        Outcome::BlockDropped(r) => stats.blocks_dropped(r),
        Outcome::Written(changed) => {
            stats.read += 1;
            stats.written += 1;
            if changed {
                stats.rewritten += 1;
            }
        }
        Outcome::Passed(r) => {
            stats.read += 1;
            stats.written += 1;
            stats.passed(r);
        }
        Outcome::Dropped(r) => {
            stats.read += 1;
            stats.dropped(r);
        }
    }
}

fn writes(o: Outcome) -> bool {
    matches!(o, Outcome::Block | Outcome::Written(_) | Outcome::Passed(_))
}

fn wash_sequential<R: Read, W: Write>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let mut w = Worker::for_washer(&plan.washer, plan.cache_size);
    let mut em = Emitter::new(out, DropSink::for_plan(plan, rd.header()));
    let res = loop {
        let unit = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => break Ok(()),
            Err(e) => break Err(CliError::data(format!("{name}: {e}"))),
        };
        w.loc.frag = None;
        let outcome = match (&unit.packet, unit.dropped) {
            (_, Some(r)) => Outcome::BlockDropped(r),
            (None, None) => Outcome::Block,
            (Some(p), None) => {
                let range = p.range.clone();
                let lt = p.linktype;
                match unit.data.get_mut(range) {
                    Some(pkt) => wash_packet(pkt, lt, &mut plan.washer, &mut w, plan.unparsed),
                    None => Outcome::Dropped("malformed_record"),
                }
            }
        };
        let pkt = unit.packet.as_ref().map(|p| p.range.clone());
        let (grown, outcome) = regrow(unit.data, pkt.clone(), &mut w, outcome);
        let piece = Piece {
            data: grown.as_deref().unwrap_or(unit.data),
            pkt,
            frag: w.loc.frag.as_ref(),
            outcome,
        };
        em.unit(piece, &mut plan.washer, stats)?;
    };
    // Whatever happened, release the held fragments so the output so far
    // stays complete and valid.
    em.finish(stats)?;
    stats.merge(&w.stats);
    res
}

/// The unit to write when the washed packet changed length
/// ([`Worker::resized`]); a unit whose framing cannot be rebuilt is dropped.
fn regrow(
    data: &[u8],
    pkt: Option<Range<usize>>,
    w: &mut Worker,
    o: Outcome,
) -> (Option<Vec<u8>>, Outcome) {
    match (w.resized.take(), pkt) {
        (Some(new), Some(r)) if matches!(o, Outcome::Written(_)) => {
            match crate::revwash::resize_unit(data, r, &new) {
                Some(u) => (Some(u), o),
                None => (None, Outcome::Dropped(crate::revwash::LENGTH)),
            }
        }
        _ => (None, o),
    }
}

/// One unit inside a batch.
#[derive(Clone)]
struct Rec {
    start: usize,
    end: usize,
    /// Packet bytes relative to `start`, and link type.
    pkt: Option<(usize, usize, u32)>,
    dropped: Option<&'static str>,
    outcome: Outcome,
    /// Set when the packet is an IP fragment.
    frag: Option<Box<FragInfo>>,
    /// The whole unit, rebuilt, when the washed packet changed length.
    grown: Option<Vec<u8>>,
}

/// A batch of units copied out of the reader's buffer.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    recs: Vec<Rec>,
}

const BATCH_UNITS: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;

/// The reading side of the parallel path: whoever holds it reads the next
/// batch, which gets the next sequence number.
struct ReadSide<'r, R> {
    rd: &'r mut CaptureReader<R>,
    next: u64,
    done: bool,
    err: Option<String>,
}

/// The writing side: batches are written strictly in sequence order.
struct WriteSide<'a, W> {
    em: Emitter<'a, W>,
    next: u64,
    stats: Stats,
    err: Option<CliError>,
}

/// The path for stateless techniques on files: each of `threads` workers
/// (on a rayon pool) takes the reader in turn to copy out the next batch,
/// washes it, waits for its turn and writes it. A batch stays on one core
/// from reading to writing, and the output is in input order whatever the
/// number of threads (batches are cut the same way every time). With one
/// thread, that one worker does everything in turn.
fn wash_batched<R: Read + Send, W: Write + Send>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let threads = plan.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CliError::data(format!("cannot start worker threads: {e}")))?;
    let mut workers: Vec<(Washer, Worker)> = (0..threads)
        .filter_map(|_| {
            let w = plan.washer.try_clone()?;
            let k = Worker::for_washer(&w, plan.cache_size);
            Some((w, k))
        })
        .collect();
    if workers.is_empty() {
        return Err(CliError::data(
            "internal: a stateful technique on the batch path",
        ));
    }
    let sink = DropSink::for_plan(plan, rd.header());
    let read = Mutex::new(ReadSide {
        rd,
        next: 0,
        done: false,
        err: None,
    });
    let write = Mutex::new(WriteSide {
        em: Emitter::new(out, sink),
        next: 0,
        stats: Stats::default(),
        err: None,
    });
    let turn = Condvar::new();
    let unparsed = plan.unparsed;
    pool.scope(|s| {
        for (washer, w) in workers.iter_mut() {
            let (read, write, turn) = (&read, &write, &turn);
            s.spawn(move |_| batch_worker(read, write, turn, washer, w, unparsed));
        }
    });
    let read_err = read.into_inner().map(|r| r.err).unwrap_or(None);
    let mut ws = write
        .into_inner()
        .map_err(|_| CliError::data("output lock poisoned"))?;
    // Whatever happened, release the held fragments so the output so far
    // stays complete and valid.
    let fin = ws.em.finish(&mut ws.stats);
    stats.merge(&ws.stats);
    for (_, w) in &workers {
        stats.merge(&w.stats);
    }
    if let Some(e) = ws.err {
        return Err(e);
    }
    if let Some(e) = read_err {
        return Err(CliError::data(format!("{name}: {e}")));
    }
    fin
}

/// One worker of [`wash_batched`]: read, wash, write in turn, until the
/// input ends or fails or a write fails.
fn batch_worker<R: Read, W: Write>(
    read: &Mutex<ReadSide<'_, R>>,
    write: &Mutex<WriteSide<'_, W>>,
    turn: &Condvar,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) {
    let mut batch = Batch::default();
    loop {
        let seq = {
            let Ok(mut r) = read.lock() else { return };
            if r.done {
                return;
            }
            let seq = r.next;
            r.next += 1;
            match fill_batch(r.rd, &mut batch) {
                Ok(true) => {}
                Ok(false) => r.done = true,
                Err(e) => {
                    r.done = true;
                    r.err = Some(e);
                }
            }
            seq
        };
        wash_recs(&mut batch.recs, &mut batch.buf, washer, w, unparsed);
        let Ok(mut g) = write.lock() else { return };
        while g.next != seq {
            g = match turn.wait(g) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
        let failed = if g.err.is_none() {
            let WriteSide { em, stats, err, .. } = &mut *g;
            if let Err(e) = em.batch(&batch, washer, stats) {
                *err = Some(e);
            }
            err.is_some()
        } else {
            true
        };
        g.next += 1;
        drop(g);
        turn.notify_all();
        if failed {
            // Nothing more can be written: stop reading.
            if let Ok(mut r) = read.lock() {
                r.done = true;
            }
            return;
        }
        batch.buf.clear();
        batch.recs.clear();
    }
}

/// Copy units from the reader into `batch` until it is full. Ok(true) when
/// the input has more, Ok(false) at its end.
fn fill_batch<R: Read>(rd: &mut CaptureReader<R>, batch: &mut Batch) -> Result<bool, String> {
    let Batch { buf, recs } = batch;
    let units = BATCH_UNITS.saturating_sub(recs.len());
    let bytes = BATCH_BYTES.saturating_sub(buf.len());
    rd.read_into(buf, units, bytes, |start, end, pkt, dropped| {
        recs.push(Rec {
            start,
            end,
            pkt,
            dropped,
            outcome: Outcome::Block,
            frag: None,
            grown: None,
        })
    })
    .map_err(|e| e.to_string())
}

/// The path for stateful techniques on files: a reader thread parses and
/// copies out the next batches while this thread washes and writes, unit
/// by unit in input order (as the per-unit path, so that addresses washed
/// at reassembly keep their place in the order of first appearance).
fn wash_prefetched<R: Read + Send, W: Write>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let sink = DropSink::for_plan(plan, rd.header());
    let (tx, rx) = sync_channel::<(Batch, Result<bool, String>)>(2);
    let (back_tx, back_rx) = sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || loop {
            let mut b = back_rx.try_recv().unwrap_or_default();
            let r = fill_batch(rd, &mut b);
            let more = matches!(r, Ok(true));
            if tx.send((b, r)).is_err() || !more {
                return;
            }
        });
        let mut w = Worker::for_washer(&plan.washer, plan.cache_size);
        let mut em = Emitter::new(out, sink);
        let mut res = Ok(());
        'batches: for (mut batch, r) in rx.iter() {
            for i in 0..batch.recs.len() {
                let Batch { buf, recs } = &mut batch;
                let one = &mut recs[i..=i];
                wash_recs(one, buf, &mut plan.washer, &mut w, plan.unparsed);
                if let Err(e) = em.recs(buf, one, &mut plan.washer, stats) {
                    res = Err(e);
                    break 'batches;
                }
            }
            if let Err(e) = r {
                res = Err(CliError::data(format!("{name}: {e}")));
                break;
            }
            batch.buf.clear();
            batch.recs.clear();
            let _ = back_tx.try_send(batch);
        }
        // Dropping the receiver ends the reader thread.
        drop(rx);
        let fin = em.finish(stats);
        stats.merge(&w.stats);
        res.and(fin)
    })
}

/// Wash the units `recs`, whose bytes are in `buf`.
fn wash_recs(
    recs: &mut [Rec],
    buf: &mut [u8],
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) {
    for r in recs.iter_mut() {
        r.outcome = match (r.pkt, r.dropped) {
            (_, Some(reason)) => Outcome::BlockDropped(reason),
            (None, None) => Outcome::Block,
            (Some((ps, pe, lt)), None) => {
                // `wash_packet` always starts from a cleared `w.loc`.
                let o = match buf.get_mut(r.start + ps..r.start + pe) {
                    Some(pkt) => wash_packet(pkt, lt, washer, w, unparsed),
                    None => Outcome::Dropped("malformed_record"),
                };
                r.frag = w.loc.frag.take().map(Box::new);
                let (g, o) = regrow(&buf[r.start..r.end], Some(ps..pe), w, o);
                r.grown = g;
                o
            }
        };
    }
}
