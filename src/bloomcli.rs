//! `ipwash bloom`: the command-line side of the DNSBLOOM sink. Reading the
//! captures is shared with `wash`; the filters themselves are in `bloom`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::bloom::{self, BuildParams, Builder, Entities};
use crate::capture::{self, CaptureReader, FileKind, ReaderOptions};
use crate::error::CliError;
use crate::method::read_key;
use crate::packet::{self, Family, Located};

/// The bloom subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BloomCommand {
    /// Build one filter per period from the client queries in captures.
    #[command(after_help = crate::manual::BLOOM_BUILD)]
    Build(BuildArgs),
    /// Ask in which periods names were queried.
    #[command(after_help = crate::manual::BLOOM_QUERY)]
    Query(QueryArgs),
    /// OR filters with identical parameters and key into one.
    #[command(after_help = crate::manual::BLOOM_MERGE)]
    Merge(MergeArgs),
    /// Show a filter's parameters and fill.
    #[command(after_help = crate::manual::BLOOM_INFO)]
    Info(InfoArgs),
}

/// `ipwash bloom build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Captures (pcap, pcapng) or C-DNS files; plain, gzip or xz; `-` = stdin.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub inputs: Vec<PathBuf>,
    /// Directory for the filter files (one per period).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// The operator key (32 bytes hex); a filter cannot be tested without it.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Period length in seconds; periods are aligned to the epoch.
    #[arg(long, default_value_t = 3600)]
    pub period: u64,
    /// Target false-positive rate.
    #[arg(long, default_value_t = 1e-4)]
    pub fp_rate: f64,
    /// Items expected per period (sizes the filter).
    #[arg(long, default_value_t = 1_000_000)]
    pub expected_items: u64,
    /// Prefix-to-entity file: `PREFIX<TAB>ENTITY` lines.
    #[arg(long, value_name = "FILE")]
    pub entities: Option<PathBuf>,
    /// k-anonymity floor: entity-level answers need at least this many clients.
    #[arg(long, default_value_t = 10)]
    pub min_clients: u32,
}

/// `ipwash bloom query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The operator key the filters were built with.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Filter files.
    #[arg(value_name = "FILTER", required = true)]
    pub filters: Vec<PathBuf>,
    /// Names to look for.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// File with one name per line.
    #[arg(long, value_name = "FILE")]
    pub names_file: Option<PathBuf>,
    /// Ask about this entity (repeatable; default: all clients). An entity
    /// none of the filters knows is an error listing the known ones.
    #[arg(long, value_name = "ENTITY")]
    pub entity: Vec<String>,
    /// One JSON object per line per (name, period).
    #[arg(long)]
    pub json: bool,
}

/// `ipwash bloom merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output filter file.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Filters to merge: their periods must form one contiguous span, each
    /// filter given once.
    #[arg(value_name = "FILTER", required = true)]
    pub filters: Vec<PathBuf>,
    /// Merge periods with gaps between them (overlaps are always refused).
    #[arg(long)]
    pub allow_gaps: bool,
}

/// `ipwash bloom info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Filter files.
    #[arg(value_name = "FILTER", required = true)]
    pub filters: Vec<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Run a bloom subcommand.
pub fn run_bloom(cmd: &BloomCommand) -> Result<(), CliError> {
    match cmd {
        BloomCommand::Build(a) => build(a),
        BloomCommand::Query(a) => query(a),
        BloomCommand::Merge(a) => {
            check_span(a)?;
            bloom::merge(&a.filters, &a.output)
                .map_err(|e| CliError::data(format!("bloom merge: {e}")))
        }
        BloomCommand::Info(a) => info(a),
    }
}

fn slot_addr(pkt: &[u8], loc: &Located, i: usize) -> Option<IpAddr> {
    let s = loc.slots.get(i)?;
    let b = pkt.get(s.offset..s.offset + s.len as usize)?;
    match s.family {
        Family::V4 => Some(IpAddr::V4(Ipv4Addr::new(
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ))),
        Family::V6 => {
            let o: [u8; 16] = b.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
    }
}

fn build(a: &BuildArgs) -> Result<(), CliError> {
    if !(a.fp_rate > 0.0 && a.fp_rate < 1.0) {
        return Err(CliError::usage("--fp-rate must be between 0 and 1"));
    }
    if a.period == 0 || a.expected_items == 0 {
        return Err(CliError::usage(
            "--period and --expected-items must be positive",
        ));
    }
    if a.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(CliError::usage("stdin (`-`) can be read only once"));
    }
    let key = read_key::<32>(&a.key_file)?;
    let entities = match &a.entities {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| CliError::usage(format!("--entities {}: {e}", p.display())))?;
            Entities::parse(&text)
                .map_err(|e| CliError::usage(format!("--entities {}: {e}", p.display())))?
        }
        None => Entities::default(),
    };
    std::fs::create_dir_all(&a.output)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", a.output.display())))?;
    let params = BuildParams {
        period: a.period,
        fp_rate: a.fp_rate,
        expected_items: a.expected_items,
        min_clients: a.min_clients,
    };
    let mut builder = Builder::new(&key, params, entities)
        .map_err(|e| CliError::usage(format!("bloom build: {e}")))?;
    check_existing(&builder, &a.output)?;
    let mut first_err = None;
    for input in &a.inputs {
        if let Err(e) = feed(input, &mut builder, &a.output) {
            eprintln!("ipwash: {e}");
            first_err.get_or_insert(CliError::data(""));
        }
    }
    let report = builder
        .finish(&a.output)
        .map_err(|e| CliError::data(format!("bloom build: {e}")))?;
    for w in &report.warnings {
        eprintln!("ipwash: warning: {w}");
    }
    let queries: u64 = report.files.iter().map(|f| f.queries).sum();
    eprintln!(
        "ipwash: {} filter file(s) written to {}, {queries} queries; ignored: {} responses, {} not class IN, {} unparsable",
        report.files.len(),
        a.output.display(),
        report.ignored_responses,
        report.ignored_class,
        report.ignored_unparsable
    );
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Filters an earlier run left in `dir` are merged into, never replaced:
/// refuse (exit 2, before reading anything) when one was made with another
/// key or other parameters.
fn check_existing(builder: &Builder, dir: &Path) -> Result<(), CliError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", dir.display())))?;
    let mut names: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "bloom")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    names.sort();
    for p in names {
        let why = builder.mismatch(&p).map_err(|e| {
            CliError::usage(format!(
                "bloom build: {e}; the folder must hold only filters of this series"
            ))
        })?;
        if let Some(what) = why {
            return Err(CliError::usage(format!(
                "bloom build: {} was made with another {what}; refusing to write filters \
                 into {} (new filters are merged into existing ones of the same period, \
                 which needs the same key and parameters); use another folder",
                p.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// `bloom merge`: the filters' periods must form one contiguous span
/// (unless `--allow-gaps`), without overlaps, each filter once.
fn check_span(a: &MergeArgs) -> Result<(), CliError> {
    let mut spans: Vec<(u64, u64, &Path)> = Vec::new();
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for f in &a.filters {
        let canon = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canon) {
            return Err(CliError::usage(format!(
                "bloom merge: {} is given twice (also as {}); each filter counts once",
                f.display(),
                first.display()
            )));
        }
        seen.push((canon, f));
        let i = bloom::info(f).map_err(|e| CliError::data(format!("bloom merge: {e}")))?;
        spans.push((i.period_start_unix, i.period_length, f));
    }
    spans.sort_by_key(|s| s.0);
    for w in spans.windows(2) {
        let [(s0, l0, p0), (s1, _, p1)] = w else {
            continue;
        };
        let end0 = s0.saturating_add(*l0);
        if *s1 < end0 {
            return Err(CliError::usage(format!(
                "bloom merge: the periods of {} and {} overlap; refusing to count them twice",
                p0.display(),
                p1.display()
            )));
        }
        if *s1 > end0 && !a.allow_gaps {
            return Err(CliError::usage(format!(
                "bloom merge: {}s missing between {} and {} (the merged filter would claim \
                 the whole span); give every period, or --allow-gaps",
                s1 - end0,
                p0.display(),
                p1.display()
            )));
        }
    }
    Ok(())
}

fn feed(input: &Path, builder: &mut Builder, out_dir: &Path) -> Result<(), CliError> {
    let name = if input.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        input.display().to_string()
    };
    let inp = capture::open_input(input).map_err(|e| crate::pipeline::input_error(&name, e))?;
    match inp.kind {
        FileKind::Pcap | FileKind::Pcapng => {}
        FileKind::Cdns => {
            return crate::cdns::for_each_query(inp.into_reader(), |ts, client, qname, _qtype| {
                builder.add_query(ts, client, qname);
                builder
                    .flush_before(out_dir, ts)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .map(|_| ())
            .map_err(|e| CliError::data(format!("{name}: {e}")));
        }
        FileKind::Dnstap => {
            return crate::dnstap::for_each_query(inp.into_reader(), |ts, client, msg| {
                builder.add_message(ts, client, msg);
                builder
                    .flush_before(out_dir, ts)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .map(|_| ())
            .map_err(|e| CliError::data(format!("{name}: {e}")));
        }
        FileKind::Unknown => {
            return Err(CliError::data(format!(
                "{name}: unknown format (not pcap, pcapng, C-DNS or dnstap)"
            )))
        }
    }
    let mut rd = CaptureReader::new(inp.into_reader(), ReaderOptions::default())
        .map_err(|e| CliError::data(format!("{name}: {e}")))?;
    let mut loc = Located::new();
    loop {
        let unit = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => return Ok(()),
            Err(e) => return Err(CliError::data(format!("{name}: {e}"))),
        };
        let Some(p) = &unit.packet else { continue };
        let Some(pkt) = unit.data.get(p.range.clone()) else {
            continue;
        };
        if packet::locate(p.linktype, pkt, &mut loc).is_err() {
            continue;
        }
        let Some(client) = loc.client.and_then(|i| slot_addr(pkt, &loc, i)) else {
            continue;
        };
        for r in &loc.dns {
            if let Some(msg) = pkt.get(r.clone()) {
                builder.add_message(p.ts_sec, client, msg);
            }
        }
        builder
            .flush_before(out_dir, p.ts_sec)
            .map_err(|e| CliError::data(format!("bloom build: {e}")))?;
    }
}

fn query(a: &QueryArgs) -> Result<(), CliError> {
    let key = read_key::<32>(&a.key_file)?;
    let mut names = a.names.clone();
    if let Some(p) = &a.names_file {
        let text = std::fs::read_to_string(p)
            .map_err(|e| CliError::usage(format!("--names-file {}: {e}", p.display())))?;
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if names.is_empty() {
        return Err(CliError::usage("give --name NAME or --names-file FILE"));
    }
    if a.names.iter().any(|n| n.trim().is_empty()) {
        return Err(CliError::usage(
            "--name: an empty name matches nothing; give a domain name",
        ));
    }
    if a.entity.iter().any(|e| e.trim().is_empty()) {
        return Err(CliError::usage("--entity: empty entity name"));
    }
    let answers = bloom::query_entities(&key, &a.filters, &names, &a.entity).map_err(|e| {
        let msg = format!("bloom query: {e}");
        if matches!(e, bloom::BloomError::UnknownEntity { .. }) {
            CliError::usage(msg)
        } else {
            CliError::data(msg)
        }
    })?;
    let mut warned: Vec<&Path> = Vec::new();
    for ans in answers.iter().filter(|a| a.saturated) {
        if !warned.contains(&ans.filter.as_path()) {
            warned.push(&ans.filter);
            eprintln!(
                "ipwash: warning: {} is saturated (estimated false-positive rate over {}x its \
                 target): its `present` answers are unreliable",
                ans.filter.display(),
                bloom::SATURATION_FACTOR
            );
        }
    }
    let mut out = String::new();
    for ans in &answers {
        if a.json {
            out.push_str(&serde_json::to_string(ans).map_err(|e| CliError::data(e.to_string()))?);
        } else {
            let v = serde_json::to_value(ans).map_err(|e| CliError::data(e.to_string()))?;
            out.push_str(&format!(
                "{}\t{}\t{}\t{}",
                ans.name,
                v["period_start"].as_str().unwrap_or("?"),
                ans.entity.as_deref().unwrap_or("-"),
                v["result"].as_str().unwrap_or("?")
            ));
        }
        out.push('\n');
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

fn info(a: &InfoArgs) -> Result<(), CliError> {
    let mut out = String::new();
    for f in &a.filters {
        let i = bloom::info(f).map_err(|e| CliError::data(format!("{}: {e}", f.display())))?;
        if a.json {
            out.push_str(&serde_json::to_string(&i).map_err(|e| CliError::data(e.to_string()))?);
        } else {
            out.push_str(&format!("{}:", f.display()));
            let v = serde_json::to_value(&i).map_err(|e| CliError::data(e.to_string()))?;
            if let Some(o) = v.as_object() {
                for (k, val) in o {
                    out.push_str(&format!("\n  {k}: {val}"));
                }
            }
        }
        out.push('\n');
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
