//! Batches of inputs for `ipwash wash`: which file goes where, the refusals
//! that keep a batch from losing a file, and the run over the files.
//!
//! Planning ([`plan_jobs`]) happens before anything is read or written:
//! directories are walked recursively in sorted order (hidden entries
//! skipped) and their relative tree is mirrored under `-o DIR`; two inputs
//! that would be written to one path, an output that is one of the inputs
//! (unless `--in-place`), `--state` or `--stats-json` paths that cannot be
//! written, and out-of-range options are refused with exit 2.
//!
//! The run ([`run_jobs`]) washes each file in turn with one washer (so one
//! mapping spans the batch), keeps per-file statistics for `--stats-json`,
//! saves `--state` whenever an output was written (also after a data
//! error, and on SIGINT/SIGTERM via [`crate::signals`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::capture::{self, Compression};
use crate::error::CliError;
use crate::pipeline::{output_compression, wash_one, Plan, WashArgs};
use crate::stats::Stats;

/// Largest `--cache-size`: 4 Mi entries per family, 32 MiB (IPv4) and
/// 128 MiB (IPv6) per worker thread.
pub const MAX_CACHE_ENTRIES: usize = 1 << 22;

/// One input and where its washed copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The input (`-` = stdin).
    pub input: PathBuf,
    /// The output (`-` = stdout).
    pub output: PathBuf,
}

fn is_std(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Plan a batch: expand directories and decide every output path, refusing
/// (exit 2) whatever could lose a file. Nothing is created or written.
pub fn plan_jobs(args: &WashArgs) -> Result<Vec<Job>, CliError> {
    if args.cache_size > MAX_CACHE_ENTRIES {
        return Err(CliError::usage(format!(
            "--cache-size {} is above the maximum of {MAX_CACHE_ENTRIES} entries",
            args.cache_size
        )));
    }
    if args.state.is_some() && !args.method.method.stateful() {
        return Err(CliError::usage(format!(
            "--state: {} keeps no state",
            args.method.method.name()
        )));
    }
    if args.inputs.iter().filter(|p| is_std(p)).count() > 1 {
        return Err(CliError::usage("stdin (`-`) can be read only once"));
    }
    if args.in_place && args.inputs.iter().any(|p| is_std(p)) {
        return Err(CliError::usage("--in-place needs input files, not stdin"));
    }

    // Expand directories (sorted, recursive); `rel` is the path mirrored
    // under `-o DIR`.
    let mut items: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut any_dir = false;
    for inp in &args.inputs {
        if !is_std(inp) && inp.is_dir() {
            any_dir = true;
            let before = items.len();
            walk(inp, Path::new(""), &mut items)?;
            if items.len() == before {
                return Err(CliError::usage(format!(
                    "directory {} holds no files",
                    inp.display()
                )));
            }
        } else {
            let rel = inp.file_name().map(PathBuf::from).unwrap_or_default();
            items.push((inp.clone(), rel));
        }
    }
    let multi = items.len() > 1 || any_dir;
    let out = &args.output;
    let mut jobs = Vec::with_capacity(items.len());
    if args.in_place {
        for (input, _) in items {
            jobs.push(Job {
                output: input.clone(),
                input,
            });
        }
    } else if multi {
        if is_std(out) {
            return Err(CliError::usage(
                "several inputs or a directory need `-o DIR` (created if missing)",
            ));
        }
        if out.exists() && !out.is_dir() {
            return Err(CliError::usage(format!(
                "-o {}: several inputs or a directory need a directory, and this is a file",
                out.display()
            )));
        }
        for (input, rel) in items {
            if rel.as_os_str().is_empty() {
                return Err(CliError::usage(format!(
                    "{}: no file name to write under {}",
                    input.display(),
                    out.display()
                )));
            }
            jobs.push(Job {
                output: out.join(rel),
                input,
            });
        }
    } else {
        if !is_std(out) && out.is_dir() {
            return Err(CliError::usage(format!(
                "output {} is a directory; give a file name",
                out.display()
            )));
        }
        for (input, _) in items {
            jobs.push(Job {
                input,
                output: out.clone(),
            });
        }
    }
    if jobs.iter().any(|j| is_std(&j.output)) && capture::is_terminal_stdout() {
        return Err(CliError::usage(
            "refusing to write a binary capture to a terminal; use -o FILE or a pipe",
        ));
    }
    check_collisions(args, &jobs)?;
    if let Some(p) = args
        .state
        .as_ref()
        .filter(|_| !args.reverse && !args.state_readonly)
    {
        check_writable(p, "--state")?;
    }
    if let Some(p) = &args.stats_json {
        if is_std(p) {
            if jobs.iter().any(|j| is_std(&j.output)) {
                return Err(CliError::usage(
                    "--stats-json -: stdout already carries the washed capture",
                ));
            }
        } else {
            check_writable(p, "--stats-json")?;
        }
    }
    if let Some(level) = args.level {
        let mut any = false;
        for j in &jobs {
            let c = output_compression(args.compress, &j.output);
            if c == Compression::None {
                continue;
            }
            any = true;
            if !c.levels().contains(&level) {
                return Err(CliError::usage(format!(
                    "--level {level}: {} takes levels {}-{}",
                    c.name(),
                    c.levels().start(),
                    c.levels().end()
                )));
            }
        }
        if !any {
            return Err(CliError::usage(
                "--level: no output is compressed (name it .gz, .xz, .zst or .bz2, or use --compress)",
            ));
        }
    }
    Ok(jobs)
}

/// Files under `dir`, sorted by name at every level, hidden entries (names
/// starting with `.`, such as temporary files) skipped. Symbolic links to
/// files are followed, to directories not (no loops).
fn walk(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<(), CliError> {
    let rd = fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut names: Vec<OsString> = Vec::new();
    for e in rd {
        let e = e.map_err(|e| {
            CliError::usage(format!("cannot read directory {}: {e}", dir.display()))
        })?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let link = fs::symlink_metadata(&path).map(|m| m.file_type().is_symlink());
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() && !matches!(link, Ok(true)) => walk(&path, &rel, out)?,
            Ok(m) if m.is_file() => out.push((path, rel)),
            _ => {}
        }
    }
    Ok(())
}

/// `p` made absolute and cleaned of `.` and `..` without touching the file
/// system (outputs need not exist yet).
fn lexical(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The identity of an existing file: the canonical path (links resolved),
/// and on Unix the device and inode (hard links).
fn identity(p: &Path) -> Option<(PathBuf, u64, u64)> {
    let m = fs::metadata(p).ok()?;
    let canon = fs::canonicalize(p).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((canon, m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        Some((canon, 0, 0))
    }
}

fn check_collisions(args: &WashArgs, jobs: &[Job]) -> Result<(), CliError> {
    // Every path this run writes, with what it is.
    let mut written: HashMap<PathBuf, String> = HashMap::new();
    let mut claim = |p: &Path, what: String| -> Result<(), CliError> {
        if is_std(p) || capture::is_special_file(p) {
            return Ok(());
        }
        let key = fs::canonicalize(p).unwrap_or_else(|_| lexical(p));
        if let Some(prev) = written.insert(key, what.clone()) {
            return Err(CliError::usage(format!(
                "{} and {what} would both be written to {}; nothing was written",
                prev,
                p.display()
            )));
        }
        Ok(())
    };
    for j in jobs {
        claim(
            &j.output,
            format!("the washed copy of {}", j.input.display()),
        )?;
    }
    if let Some(p) = &args.state {
        claim(p, "--state".to_string())?;
    }
    if let Some(p) = &args.stats_json {
        claim(p, "--stats-json".to_string())?;
    }
    // No output may be an input (unless it is its own, with --in-place).
    let mut inputs: HashMap<PathBuf, &Path> = HashMap::new();
    let mut inodes: HashMap<(u64, u64), &Path> = HashMap::new();
    for j in jobs.iter().filter(|j| !is_std(&j.input)) {
        if let Some((canon, dev, ino)) = identity(&j.input) {
            inputs.insert(canon, &j.input);
            if dev != 0 || ino != 0 {
                inodes.insert((dev, ino), &j.input);
            }
        }
        inputs.insert(lexical(&j.input), &j.input);
    }
    let others = [args.state.as_deref(), args.stats_json.as_deref()];
    let outputs = jobs
        .iter()
        .map(|j| (j.output.as_path(), Some(j.input.as_path())))
        .chain(others.into_iter().flatten().map(|p| (p, None)));
    for (out, own) in outputs {
        if is_std(out) || capture::is_special_file(out) {
            continue;
        }
        let id = identity(out);
        let hit = match &id {
            Some((canon, dev, ino)) => inputs
                .get(canon)
                .or_else(|| inodes.get(&(*dev, *ino)))
                .copied(),
            None => inputs.get(&lexical(out)).copied(),
        };
        let Some(inp) = hit else { continue };
        let own_input = own.is_some_and(|o| {
            identity(o).map(|x| x.0) == id.as_ref().map(|x| x.0.clone())
                || lexical(o) == lexical(out)
        });
        if args.in_place && own_input {
            continue;
        }
        return Err(CliError::usage(format!(
            "output {} is the input {}; refusing to replace an input \
             (use --in-place to replace each input by its washed copy)",
            out.display(),
            inp.display()
        )));
    }
    Ok(())
}

/// Refuse a path that cannot be written, without writing it: a directory,
/// an existing file not open for writing, or a directory where a new file
/// cannot be created (tried with a hidden probe file, removed at once).
fn check_writable(p: &Path, flag: &str) -> Result<(), CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::usage(format!("{flag} {}: cannot be written: {e}", p.display()))
    };
    if p.is_dir() {
        return Err(fail(&"is a directory"));
    }
    if p.exists() {
        fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(|e| fail(&e))?;
        // Replaced by a rename: the directory must take a new file too.
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut name = OsString::from(".");
    name.push(p.file_name().unwrap_or_default());
    name.push(format!(".ipwash-probe-{}", std::process::id()));
    let probe = dir.join(name);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| fail(&e))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// One input's line in `--stats-json`.
struct FileReport {
    input: PathBuf,
    output: PathBuf,
    stats: Stats,
    error: Option<String>,
    seconds: f64,
}

fn shown(p: &Path) -> String {
    if is_std(p) {
        "-".to_string()
    } else {
        p.display().to_string()
    }
}

/// Run the planned jobs with `plan` (which holds the washer).
pub fn run_jobs(args: &WashArgs, jobs: &[Job], plan: &mut Plan) -> Result<(), CliError> {
    // Outputs under -o DIR: the directory (and the mirrored tree) is made
    // now, after every check passed.
    // Washing back reads the state table and never writes it.
    let state_out = args
        .state
        .clone()
        .filter(|_| !args.reverse && !args.state_readonly);
    let sig = crate::signals::install(state_out.clone());
    if let (Some(state), Some(g)) = (&state_out, &sig) {
        let g = g.clone();
        let state = state.clone();
        let method = args.method.clone();
        plan.before_commit = Some(Arc::new(move |w| {
            if let Ok(b) = crate::state::to_bytes_with(&state, &w.technique, &w.mac, &method) {
                g.set_state(b);
            }
        }));
    }
    let progress = crate::progress::Progress::new(jobs, args.quiet);
    let mut total = Stats::default();
    let mut files: Vec<FileReport> = Vec::with_capacity(jobs.len());
    let mut first_err: Option<CliError> = None;
    let mut fatal: Option<CliError> = None;
    for (n, job) in jobs.iter().enumerate() {
        let started = Instant::now();
        let mut st = Stats::default();
        let res = make_parent(&job.output).and_then(|()| match plan.frozen.clone() {
            Some((f, state)) => {
                crate::fanout::wash_one_readonly(&job.input, &job.output, plan, &mut st, &f, &state)
            }
            None => wash_one(&job.input, &job.output, plan, &mut st),
        });
        progress.file_done(job, &st, jobs.get(n + 1));
        let error = res.as_ref().err().map(|e| e.msg.clone());
        total.merge(&st);
        files.push(FileReport {
            input: job.input.clone(),
            output: job.output.clone(),
            stats: st,
            error,
            seconds: started.elapsed().as_secs_f64(),
        });
        if let Err(e) = res {
            if e.is_broken_pipe() || e.code == 2 {
                fatal = Some(e);
                break;
            }
            // Report now and go on with the other inputs; exit 1 at the end.
            progress.suspend(|| eprintln!("ipwash: {e}"));
            first_err.get_or_insert(CliError::data(""));
        }
    }
    progress.finish();
    // The state goes out whenever an output was written with it, also
    // after a data error.
    if let Some(p) = &state_out {
        if plan.outputs_written > 0 {
            crate::state::save_with(p, &plan.washer.technique, &plan.washer.mac, &args.method)?;
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    // No summary when no input could even be opened: the error said it all.
    if !args.quiet && total.inputs > 0 {
        eprint!("{}", total.summary());
    }
    if let Some(p) = &args.stats_json {
        let text = stats_json(&total, &files);
        let res = if is_std(p) {
            std::io::stdout().lock().write_all(text.as_bytes())
        } else {
            capture::write_replacing(p, text.as_bytes())
        };
        res.map_err(|e| CliError::data(format!("--stats-json {}: {e}", p.display())))?;
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn make_parent(output: &Path) -> Result<(), CliError> {
    if is_std(output) {
        return Ok(());
    }
    match output.parent() {
        Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => fs::create_dir_all(d)
            .map_err(|e| CliError::usage(format!("cannot create directory {}: {e}", d.display()))),
        _ => Ok(()),
    }
}

fn stats_json(total: &Stats, files: &[FileReport]) -> String {
    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let mut v = f.stats.json_value();
            if let Some(o) = v.as_object_mut() {
                o.insert("input".into(), shown(&f.input).into());
                o.insert("output".into(), shown(&f.output).into());
                o.insert(
                    "error".into(),
                    f.error.clone().map_or(serde_json::Value::Null, Into::into),
                );
                o.insert("seconds".into(), f.seconds.into());
            }
            v
        })
        .collect();
    let mut v = total.json_value();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "files_with_errors".into(),
            files.iter().filter(|f| f.error.is_some()).count().into(),
        );
        o.insert("files".into(), entries.into());
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
