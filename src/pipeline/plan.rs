//! The plan: everything decided before the first byte is read, and the
//! `wash` command that decides it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{CompressArg, ScopeArg, Unparsed, WashArgs, DEFAULT_CACHE_ENTRIES};
use crate::capture::ReaderOptions;
use crate::error::CliError;
use crate::method::{self, Built};
use crate::wash::{KeepPrefix, Scope, Technique, Washer};

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
    /// The batch path's threads and workers, kept from one file to the
    /// next (a batch of small files would otherwise start them per file).
    pub batch: super::batched::BatchWorkers,
    /// Bounds of DNS-over-TCP reassembly.
    pub tcp: crate::tcpdns::TcpLimits,
}

/// A hook called with the washer before an output is committed.
pub type CommitHook = Arc<dyn Fn(&Washer) + Send + Sync>;

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
    args.privacy
        .apply(&mut washer, &args.method, args.reverse)?;
    let frozen = match &args.state {
        Some(p) if args.state_readonly && !args.reverse => {
            Some((crate::fanout::freeze(&mut washer, args)?, p.clone()))
        }
        Some(p) if !args.reverse => {
            crate::state::load_with(
                p,
                &mut washer.technique,
                Some(&mut washer.mac),
                &args.method,
            )?;
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
        batch: Default::default(),
        tcp: crate::tcpdns::TcpLimits {
            memory: (args.tcp_memory as usize) << 20,
            ..Default::default()
        },
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
            batch: Default::default(),
            tcp: Default::default(),
        }
    }
}

fn bench_key() -> ipwash_algorithms::Key<32> {
    ipwash_algorithms::Key::new(*b"ipwash bench key, not a secret!!")
}
