//! Running `ipwash text`: inputs (files, `-`, gzip/xz through the capture
//! opener), outputs (temporary name, renamed when complete), batches of
//! whole lines, and the statistics.
//!
//! Stateless techniques wash batches of lines in parallel on `--threads`
//! threads, each reading, washing and writing in turn, and the batches are
//! written in input order; a worker's output depends only on the lines and
//! the key, so the output is byte-identical for every thread count. Stateful techniques (enumerate,
//! prefix-map) wash on one worker in input order. When the input is a pipe
//! (`tail -F log | ipwash text`), each read is washed and flushed at once,
//! so lines are not held back.

use std::io::{self, BufRead, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::capture::{self, CaptureError, Output};
use crate::error::CliError;
use crate::method::{self, Built};
use crate::pipeline::{CompressArg, DEFAULT_CACHE_ENTRIES};
use crate::wash::{KeepPrefix, Washer};

use super::formats::{BatchFault, Spec, TextStats, Worker};
use super::{Format, TextArgs};

/// A washed batch: its output, the line `--on-error fail` stopped at, and
/// its line count.
type Washed = (Vec<u8>, Option<BatchFault>, u64);

/// Bytes per batch of lines.
pub const BATCH: usize = 256 * 1024;
/// The longest line read (a longer one is an error: memory stays bounded).
pub const MAX_LINE: usize = 16 << 20;

/// Run `ipwash text`.
pub fn run_text(args: &TextArgs) -> Result<(), CliError> {
    // Stage 1: validate everything; nothing is written on a usage error.
    let multi = args.inputs.len() > 1;
    if args.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(CliError::usage("stdin (`-`) can be read only once"));
    }
    let out_is_stdout = args.output.as_os_str() == "-";
    if multi && (out_is_stdout || !args.output.is_dir()) {
        return Err(CliError::usage(
            "several inputs need `-o DIR` naming an existing directory",
        ));
    }
    if !multi && !out_is_stdout && args.output.is_dir() {
        return Err(CliError::usage(format!(
            "output {} is a directory; give a file name",
            args.output.display()
        )));
    }
    if args.state.is_some() && !args.method.method.stateful() {
        return Err(CliError::usage(format!(
            "--state: {} keeps no state",
            args.method.method.name()
        )));
    }
    if args.regex.is_some() && args.format != Format::Plain {
        return Err(CliError::usage("--regex works with --format plain only"));
    }
    if !args.field.is_empty() && args.format == Format::Plain {
        return Err(CliError::usage(
            "--field needs --format csv, tsv, json or zeek (or use --regex)",
        ));
    }
    if args.no_header && !matches!(args.format, Format::Csv | Format::Tsv) {
        return Err(CliError::usage("--no-header is for --format csv or tsv"));
    }
    let regex = match &args.regex {
        Some(r) => {
            let re = regex::bytes::Regex::new(r)
                .map_err(|e| CliError::usage(format!("--regex: {e}")))?;
            if re.captures_len() < 2 {
                return Err(CliError::usage(
                    "--regex needs a capture group: group 1 is what is washed",
                ));
            }
            Some(re)
        }
        None => None,
    };
    let keep = args
        .keep
        .iter()
        .map(|k| KeepPrefix::parse(k).map_err(|e| CliError::usage(format!("--keep: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let (technique, info) = match method::build(&args.method)? {
        Built::Map {
            technique, info, ..
        } => (technique, info),
        Built::Deterministic(_) | Built::NonDeterministic(_) => {
            return Err(CliError::usage(format!(
                "{} does not turn an address into an address of the same family; \
                 `ipwash text` writes addresses back in place (use ipcrypt-pfx, or \
                 `ipwash map` for one address per line)",
                args.method.method.name()
            )))
        }
    };
    let mut washer = Washer::new(technique);
    washer.info = info;
    washer.keep = keep;
    if let Some(p) = &args.state {
        // Text holds no MAC addresses: the state's numbering is carried over.
        crate::state::load_with(
            p,
            &mut washer.technique,
            Some(&mut washer.mac),
            &args.method,
        )?;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let mut spec = Spec::new(args.format, args.field.clone(), regex, args.on_error);
    if args.no_header {
        spec.no_header().map_err(CliError::usage)?;
    }
    let mut run = TextRun::new(washer, threads, spec, args.no_header, args.compress)?;

    // Stage 2: every input; a data error in one does not stop the others.
    let mut first_err: Option<CliError> = None;
    for input in &args.inputs {
        let output = if multi {
            let name = input
                .file_name()
                .ok_or_else(|| CliError::usage(format!("{}: no file name", input.display())))?;
            args.output.join(name)
        } else {
            args.output.clone()
        };
        if let Err(e) = run.one(input, &output) {
            if e.is_broken_pipe() || e.code == 2 {
                return Err(e);
            }
            eprintln!("ipwash: {e}");
            first_err.get_or_insert(CliError::data(""));
        }
    }
    let stats = run.stats();
    if let Some(p) = &args.state {
        let w = run.into_washer();
        crate::state::save_with(p, &w.technique, &w.mac, &args.method)?;
    }
    if !args.quiet || stats.passed > 0 {
        eprint!("{}", stats.summary());
    }
    if let Some(p) = &args.stats_json {
        crate::capture::write_replacing(p, stats.to_json().as_bytes())
            .map_err(|e| CliError::usage(format!("--stats-json {}: {e}", p.display())))?;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn display(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        p.display().to_string()
    }
}

/// A text washing run: the workers, the pool and the format, used for
/// every input in turn. Also the library entry point for benchmarks.
pub struct TextRun {
    workers: Vec<Mutex<Worker>>,
    spec: Spec,
    no_header: bool,
    compress: CompressArg,
}

impl TextRun {
    /// Workers for `washer`: `threads` clones of a stateless one, or the
    /// stateful one alone.
    pub fn new(
        washer: Washer,
        threads: usize,
        spec: Spec,
        no_header: bool,
        compress: CompressArg,
    ) -> Result<Self, CliError> {
        let mut workers = Vec::new();
        if threads > 1 {
            for _ in 1..threads {
                match washer.try_clone() {
                    Some(w) => workers.push(Mutex::new(Worker::new(w, DEFAULT_CACHE_ENTRIES))),
                    None => break,
                }
            }
        }
        workers.insert(0, Mutex::new(Worker::new(washer, DEFAULT_CACHE_ENTRIES)));
        Ok(TextRun {
            workers,
            spec,
            no_header,
            compress,
        })
    }

    /// The counters of every worker together.
    pub fn stats(&self) -> TextStats {
        let mut s = TextStats::default();
        for w in &self.workers {
            if let Ok(w) = w.lock() {
                s.merge(&w.stats);
            }
        }
        s
    }

    /// The first worker's washer (the only one of a stateful technique).
    pub fn into_washer(mut self) -> Washer {
        let w = self.workers.swap_remove(0);
        match w.into_inner() {
            Ok(w) => w.washer,
            Err(p) => p.into_inner().washer,
        }
    }

    /// Wash one input into one output.
    pub fn one(&mut self, input: &Path, output: &Path) -> Result<(), CliError> {
        let name = display(input);
        let reader: Box<dyn BufRead + Send> = match capture::open_input(input) {
            Ok(i) => i.into_reader(),
            Err(CaptureError::Empty) => Box::new(io::empty()),
            Err(e) => return Err(CliError::data(format!("{name}: {e}"))),
        };
        // As for `wash`: the output's file name decides its wrapping.
        let compression = crate::pipeline::output_compression(self.compress, output);
        let live = input.as_os_str() == "-" && !stdin_is_file();
        let mut out = Output::create(output, compression)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", display(output))))?;
        let res = self.wash_stream(reader, &mut out, live, &name);
        // After a data error the lines so far are a valid log: finish it.
        let fin = out
            .finish()
            .map_err(|e| CliError::io(format!("writing {}", display(output)), e));
        res?;
        fin
    }

    /// Wash a decompressed stream into `out`. `live`: flush after every
    /// read (a pipe). `name` is for messages.
    pub fn wash_stream<'a>(
        &mut self,
        reader: Box<dyn BufRead + Send + 'a>,
        out: &mut (dyn Write + Send),
        live: bool,
        name: &str,
    ) -> Result<(), CliError> {
        let mut lines = Lines::new(reader, live);
        let read_err = |e: io::Error| CliError::data(format!("{name}: {e}"));
        let write_err = |e: io::Error| CliError::io(format!("{name}: writing"), e);
        let mut spec = self.spec.clone();
        let mut line_base = 0u64;
        // Headers, on the first worker, in order.
        {
            let w = self.workers[0].get_mut().map_err(|_| poisoned())?;
            let mut buf = Vec::new();
            if spec.wants_header() && !self.no_header {
                if let Some(line) = lines.take_line().map_err(read_err)? {
                    line_base += 1;
                    let body = line.strip_suffix(b"\n").unwrap_or(&line);
                    spec.header(body)
                        .map_err(|m| CliError::data(format!("{name} line 1: {m}")))?;
                    // The header is scanned too: an address there is washed.
                    w.wash_text(&line, &mut buf);
                    w.stats.lines_read += 1;
                    w.stats.lines_written += 1;
                }
            }
            if spec.format == Format::Zeek {
                while let Some(line) = lines.take_line().map_err(read_err)? {
                    if line.first() != Some(&b'#') {
                        lines.unread(line);
                        break;
                    }
                    line_base += 1;
                    let body = line.strip_suffix(b"\n").unwrap_or(&line);
                    spec.zeek_header(body)
                        .map_err(|m| CliError::data(format!("{name} line {line_base}: {m}")))?;
                    buf.extend_from_slice(&line);
                    w.stats.lines_read += 1;
                    w.stats.lines_written += 1;
                }
            }
            out.write_all(&buf).map_err(write_err)?;
        }
        let report = |base: u64, f: BatchFault| {
            CliError::data(format!(
                "{name} line {}, byte {}: {}",
                base + f.line + 1,
                f.fault.offset,
                f.fault.msg
            ))
        };
        match self.workers.len() {
            n if n > 1 && !live => {
                // Each of `n` threads reads a batch, washes it and writes
                // every washed batch that is next in input order, in turn:
                // no thread only waits, and the reading and writing are
                // shared out. At most `window` batches wait to be written
                // (memory stays bounded).
                let window = n as u64 * 4;
                let spec = &spec;
                let input = Mutex::new(InputSide {
                    lines,
                    next: 0,
                    failed: None,
                });
                let output = Mutex::new(OutputSide {
                    out,
                    ready: Default::default(),
                    written: 0,
                    line_base,
                    failed: None,
                    spare: Vec::new(),
                });
                let moved = Condvar::new();
                let stop = AtomicBool::new(false);
                let shared = Shared {
                    input: &input,
                    output: &output,
                    moved: &moved,
                    stop: &stop,
                    window,
                    spec,
                };
                std::thread::scope(|sc| -> Result<(), CliError> {
                    let mut started = Vec::new();
                    for w in &self.workers {
                        let shared = &shared;
                        let h = std::thread::Builder::new()
                            .name("ipwash-text".into())
                            .spawn_scoped(sc, move || shared.work(w));
                        match h {
                            Ok(h) => started.push(h),
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                return Err(CliError::data(format!(
                                    "cannot start worker threads: {e}"
                                )));
                            }
                        }
                    }
                    for h in started {
                        if h.join().is_err() {
                            return Err(poisoned());
                        }
                    }
                    Ok(())
                })?;
                let o = output.into_inner().map_err(|_| poisoned())?;
                let i = input.into_inner().map_err(|_| poisoned())?;
                // A washed batch that stopped on a fault comes before any
                // batch a read error came after.
                match o.failed {
                    Some(Stopped::Write(e)) => return Err(write_err(e)),
                    Some(Stopped::Fault(base, f)) => return Err(report(base, f)),
                    None => {}
                }
                if let Some(e) = i.failed {
                    return Err(read_err(e));
                }
                if stop.into_inner() {
                    return Err(poisoned());
                }
                return o.out.flush().map_err(write_err);
            }
            _ => {
                let w = self.workers[0].get_mut().map_err(|_| poisoned())?;
                let mut o = Vec::with_capacity(BATCH + BATCH / 4);
                let size = if live { 64 * 1024 } else { BATCH };
                let mut spare = Batch::default();
                while let Some(b) = lines
                    .next_batch_into(size, std::mem::take(&mut spare))
                    .map_err(read_err)?
                {
                    o.clear();
                    let (f, n) = w.wash_batch(&spec, &b, &mut o);
                    out.write_all(&o).map_err(write_err)?;
                    if live {
                        out.flush().map_err(write_err)?;
                    }
                    if let Some(f) = f {
                        return Err(report(line_base, f));
                    }
                    line_base += n;
                    spare = b;
                }
            }
        }
        out.flush().map_err(write_err)
    }
}

fn poisoned() -> CliError {
    CliError::data("internal: a worker panicked")
}

/// True when stdin is a regular file (redirected from a file), so it can
/// be read in large batches rather than line-buffered.
fn stdin_is_file() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
            return false;
        };
        std::fs::File::from(fd)
            .metadata()
            .is_ok_and(|m| m.is_file())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The reading side of a parallel run: the next batch and its number.
struct InputSide<'a> {
    lines: Lines<'a>,
    next: u64,
    failed: Option<io::Error>,
}

/// Why the writing side stopped: a write failed, or a line of a batch was
/// unreadable under `--on-error fail` (with the batch's first line number).
enum Stopped {
    Write(io::Error),
    Fault(u64, BatchFault),
}

/// The writing side: washed batches waiting for their turn.
struct OutputSide<'o> {
    out: &'o mut (dyn Write + Send),
    ready: std::collections::BTreeMap<u64, Washed>,
    written: u64,
    line_base: u64,
    failed: Option<Stopped>,
    spare: Vec<Vec<u8>>,
}

/// What the threads of a parallel run share.
struct Shared<'s, 'a, 'o> {
    input: &'s Mutex<InputSide<'a>>,
    output: &'s Mutex<OutputSide<'o>>,
    moved: &'s Condvar,
    stop: &'s AtomicBool,
    window: u64,
    spec: &'s Spec,
}

impl Shared<'_, '_, '_> {
    /// One thread of the run: read, wash, write in turn until the input
    /// ends or the run stops.
    fn work(&self, worker: &Mutex<Worker>) {
        let mut spare = Batch::default();
        let mut o: Vec<u8> = Vec::new();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let (seq, b) = {
                let Ok(mut i) = self.input.lock() else {
                    return self.halt();
                };
                if i.failed.is_some() {
                    return;
                }
                match i.lines.next_batch_into(BATCH, std::mem::take(&mut spare)) {
                    Ok(Some(b)) => {
                        i.next += 1;
                        (i.next - 1, b)
                    }
                    Ok(None) => return,
                    Err(e) => {
                        // Reported once every batch before it is written.
                        i.failed = Some(e);
                        return;
                    }
                }
            };
            o.clear();
            o.reserve(b.len() + b.len() / 4);
            // A panic stops the run (reported as an internal error) rather
            // than leaving the other threads waiting for this batch.
            let washed = catch_unwind(AssertUnwindSafe(|| {
                worker
                    .lock()
                    .ok()
                    .map(|mut w| w.wash_batch(self.spec, &b, &mut o))
            }));
            let Ok(Some((f, n))) = washed else {
                return self.halt();
            };
            spare = b;
            let Ok(mut out) = self.output.lock() else {
                return self.halt();
            };
            while seq >= out.written + self.window && !self.stop.load(Ordering::SeqCst) {
                out = match self.moved.wait(out) {
                    Ok(g) => g,
                    Err(_) => return self.halt(),
                };
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let next = out.spare.pop().unwrap_or_default();
            out.ready
                .insert(seq, (std::mem::replace(&mut o, next), f, n));
            let o_side = &mut *out;
            while let Some((mut buf, f, n)) = o_side.ready.remove(&o_side.written) {
                if let Err(e) = o_side.out.write_all(&buf) {
                    o_side.failed = Some(Stopped::Write(e));
                    drop(out);
                    return self.halt();
                }
                if let Some(f) = f {
                    o_side.failed = Some(Stopped::Fault(o_side.line_base, f));
                    drop(out);
                    return self.halt();
                }
                o_side.line_base += n;
                o_side.written += 1;
                buf.clear();
                o_side.spare.push(buf);
            }
            self.moved.notify_all();
        }
    }

    /// Stop every thread (after an error, or a poisoned lock).
    fn halt(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.moved.notify_all();
    }
}

/// A buffer of bytes read: `buf[..len]` holds them. The rest of `buf` is
/// kept (already initialised) when the buffer is reused, so a reused
/// buffer is read into without being cleared first.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for Batch {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads ask for at least this much, so the buffered reader under them
/// hands large reads straight to the file (no copy through its buffer).
const READ_MIN: usize = crate::capture::READ_CHUNK;

/// Cuts a stream into batches of whole lines.
struct Lines<'a> {
    r: Box<dyn BufRead + Send + 'a>,
    pending: Batch,
    eof: bool,
    live: bool,
}

impl<'a> Lines<'a> {
    fn new(r: Box<dyn BufRead + Send + 'a>, live: bool) -> Self {
        Lines {
            r,
            pending: Batch::default(),
            eof: false,
            live,
        }
    }

    /// Read more into `pending`: once (live) or until `want` bytes or the
    /// end of the input.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        let p = &mut self.pending;
        while !self.eof && p.len < want {
            let room = (want - p.len).max(READ_MIN);
            if p.buf.len() < p.len + room {
                p.buf.resize(p.len + room, 0);
            }
            let got = loop {
                match self.r.read(&mut p.buf[p.len..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            p.len += got;
            self.eof = got == 0;
            // Live: one read, whatever it brings, so lines are not held
            // back.
            if self.live {
                break;
            }
        }
        Ok(())
    }

    fn too_long() -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a line longer than {} MiB", MAX_LINE >> 20),
        )
    }

    /// The next batch of whole lines, about `size` bytes; at the end the
    /// last line may lack its newline. None at the end of input. `spare`
    /// (any contents) becomes the buffer that takes over what follows the
    /// batch, so buffers can be reused.
    fn next_batch_into(&mut self, size: usize, mut spare: Batch) -> io::Result<Option<Batch>> {
        let mut want = size;
        loop {
            self.fill(want)?;
            let p = &mut self.pending;
            if let Some(nl) = memchr::memrchr(b'\n', &p[..]) {
                let rest = p.len - (nl + 1);
                if spare.buf.len() < rest {
                    spare.buf.resize(rest, 0);
                }
                spare.buf[..rest].copy_from_slice(&p.buf[nl + 1..p.len]);
                spare.len = rest;
                p.len = nl + 1;
                return Ok(Some(std::mem::replace(p, spare)));
            }
            if self.eof {
                if p.len == 0 {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(p)));
            }
            if p.len > MAX_LINE {
                return Err(Self::too_long());
            }
            want = want.max(p.len * 2);
        }
    }

    /// The next line with its newline (if any). None at the end of input.
    fn take_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut want = 4096;
        loop {
            let p = &mut self.pending;
            if let Some(nl) = memchr::memchr(b'\n', &p[..]) {
                let line = p.buf[..nl + 1].to_vec();
                p.buf.copy_within(nl + 1..p.len, 0);
                p.len -= nl + 1;
                return Ok(Some(line));
            }
            if self.eof {
                if p.len == 0 {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(p)[..].to_vec()));
            }
            if p.len > MAX_LINE {
                return Err(Self::too_long());
            }
            self.fill(want)?;
            want = want.max(self.pending.len * 2);
        }
    }

    /// Put a line taken with `take_line` back in front.
    fn unread(&mut self, mut line: Vec<u8>) {
        line.extend_from_slice(&self.pending);
        self.pending = Batch {
            len: line.len(),
            buf: line,
        };
    }
}

/// Wash `input` (all of it in memory) with `run`: for tests and benches.
pub fn wash_bytes(run: &mut TextRun, input: &[u8]) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 4);
    let r: Box<dyn BufRead + Send + '_> = Box::new(input);
    run.wash_stream(r, &mut out, false, "<input>")?;
    Ok(out)
}
