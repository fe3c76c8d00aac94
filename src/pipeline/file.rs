//! One input to one output: opening and sniffing the input, creating the
//! output, choosing the execution strategy, and committing the output.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::batched::wash_batched;
use super::prefetched::wash_prefetched;
use super::sequential::wash_sequential;
use super::{CompressArg, FlushOnBlock, Plan, SharedWriter};
use crate::capture::{self, CaptureReader, Compression, FileKind, Output, OutputCodec};
use crate::error::CliError;
use crate::packet;
use crate::stats::Stats;
use crate::wash::Technique;

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
    // C-DNS counts the blocks written before a fault: a cut C-DNS file
    // keeps them; one that failed before its first block leaves an
    // existing file as it was.
    let wrote = stats.written + stats.blocks + stats.cdns_blocks > before;
    if res.is_err() && (!wrote || plan.keep_on_error) {
        drop(out);
        return res;
    }
    if let Some(f) = &plan.before_commit {
        f(&plan.washer);
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
    let mut s = crate::cdns::CdnsStats::default();
    let res = crate::cdns::wash_cdns_counted(reader, &mut w, &mut plan.washer, &plan.cdns, &mut s);
    // Blocks written before a fault count: they decide whether the cut
    // output replaces an existing file.
    stats.cdns_blocks += s.blocks;
    stats.cdns_addresses += s.rewritten;
    stats.names.add(&s.names);
    match res {
        Ok(()) => Ok(()),
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
