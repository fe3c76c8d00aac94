//! Writing the result: plain or compressed (see `codec`), to stdout or to a file.
//!
//! A named file is written under a temporary name in the same directory and
//! renamed over the target only by [`Output::finish`], after the compressor
//! has written its trailer and the data is synced. An error or a dropped
//! `Output` removes the temporary file, so the target is either the old
//! file or the complete new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::codec::Encoder;
use super::{Compression, OutputCodec, READ_CHUNK};

/// True when stdout is a terminal (where binary output must be refused).
pub fn is_terminal_stdout() -> bool {
    io::stdout().is_terminal()
}

/// Writes of at least this many bytes bypass the output buffer.
const DIRECT_WRITE: usize = 64 * 1024;

enum Sink {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<File>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            // A large chunk (a batch of washed text lines, a compressor's
            // block) goes to the file straight after what is buffered,
            // without a copy through the buffer.
            Sink::File(w) if buf.len() >= DIRECT_WRITE => {
                w.flush()?;
                w.get_mut().write_all(buf)
            }
            Sink::File(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File(w) => w.flush(),
        }
    }
}

/// A temporary file that is deleted unless it was renamed into place.
struct Pending {
    tmp: PathBuf,
    dest: PathBuf,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.tmp);
            untrack(&self.tmp);
        }
    }
}

/// Temporary files not yet renamed into place, so a signal handler can
/// remove them ([`remove_pending_temps`]). A rename happens under this lock.
static LIVE_TEMPS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn untrack(p: &Path) {
    if let Ok(mut g) = LIVE_TEMPS.lock() {
        g.retain(|x| x != p);
    }
}

/// Count `p`, a temporary file made outside [`Output`], among the files a
/// signal removes, until [`commit_temp`] or [`discard_temp`].
pub fn track_temp(p: &Path) {
    if let Ok(mut g) = LIVE_TEMPS.lock() {
        g.push(p.to_path_buf());
    }
}

/// Rename a tracked temporary file into place, under the lock a signal
/// takes (so it is either removed or renamed, never left half-way).
pub fn commit_temp(tmp: &Path, dest: &Path) -> io::Result<()> {
    let mut g = LIVE_TEMPS.lock().map_err(|_| io::Error::other("lock"))?;
    let r = fs::rename(tmp, dest);
    g.retain(|x| x != tmp);
    r
}

/// Remove a tracked temporary file.
pub fn discard_temp(tmp: &Path) {
    let _ = fs::remove_file(tmp);
    untrack(tmp);
}

/// Remove every temporary output file of this process and keep the lock,
/// so that no output is renamed into place afterwards: for a signal
/// handler that ends the process next.
pub fn remove_pending_temps() -> Option<std::sync::MutexGuard<'static, Vec<PathBuf>>> {
    let g = LIVE_TEMPS.lock().ok()?;
    for p in g.iter() {
        let _ = fs::remove_file(p);
    }
    Some(g)
}

/// Where washed data goes. Call [`Output::finish`] to complete it; dropping
/// an unfinished named output deletes its temporary file.
pub struct Output {
    enc: Option<Encoder<Sink>>,
    pending: Option<Pending>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("path", &self.pending.as_ref().map(|p| &p.dest))
            .finish_non_exhaustive()
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Output {
    /// Create an output at `path` (`-` = stdout) with `compression` at its
    /// default level, compressed on one thread.
    pub fn create(path: &Path, compression: Compression) -> io::Result<Output> {
        Output::create_with(path, OutputCodec::new(compression))
    }

    /// Create an output at `path` (`-` = stdout) compressed as `codec` says.
    pub fn create_with(path: &Path, codec: OutputCodec) -> io::Result<Output> {
        let (sink, pending) = if path.as_os_str() == "-" {
            (
                Sink::Stdout(BufWriter::with_capacity(READ_CHUNK, io::stdout())),
                None,
            )
        } else if is_special_file(path) {
            // A device, FIFO or socket (`-o /dev/null`, a named pipe) is
            // written in place: renaming a temporary file over it would
            // replace the node itself.
            let f = OpenOptions::new().write(true).open(path)?;
            (Sink::File(BufWriter::with_capacity(READ_CHUNK, f)), None)
        } else {
            // Created and listed under one lock, so a signal handler that
            // removes the listed files never misses a new one.
            let mut live = LIVE_TEMPS.lock().map_err(|_| io::Error::other("lock"))?;
            let (file, tmp) = create_temp(path)?;
            live.push(tmp.clone());
            drop(live);
            (
                Sink::File(BufWriter::with_capacity(READ_CHUNK, file)),
                Some(Pending {
                    tmp,
                    dest: path.to_path_buf(),
                    armed: true,
                }),
            )
        };
        let enc = Encoder::new(sink, codec)?;
        Ok(Output {
            enc: Some(enc),
            pending,
        })
    }

    /// Finish the compressed stream, flush, and (for a named file) sync and
    /// rename the temporary file over the target.
    pub fn finish(mut self) -> io::Result<()> {
        let enc = self.enc.take().ok_or_else(finished)?;
        let sink = enc.finish()?;
        match sink {
            Sink::Stdout(mut w) => w.flush()?,
            Sink::File(w) => {
                // No fsync: the rename only guarantees that the final name
                // never holds a half-written file; durability is the
                // caller's (a forced flush per file would double the time
                // of washing an archive).
                let f = w.into_inner().map_err(|e| e.into_error())?;
                drop(f);
                if let Some(p) = self.pending.as_mut() {
                    // Under the lock, so a signal handler sees either the
                    // temporary file or the renamed one, never a half step.
                    let mut g = LIVE_TEMPS.lock().map_err(|_| io::Error::other("lock"))?;
                    fs::rename(&p.tmp, &p.dest)?;
                    g.retain(|x| x != &p.tmp);
                    p.armed = false;
                }
            }
        }
        Ok(())
    }
}

fn finished() -> io::Error {
    io::Error::other("output already finished")
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.as_mut().ok_or_else(finished)?.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.enc
            .as_mut()
            .ok_or_else(finished)?
            .writer()
            .write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.as_mut().ok_or_else(finished)?.writer().flush()
    }
}

/// Replace the file at `path` with `bytes` the way every named output is
/// written: under a temporary name in the same directory, synced, then
/// renamed over the target, so the final name never holds a half-written
/// file. A device or FIFO (see [`is_special_file`]) is written in place.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing_mode(path, bytes, None)
}

/// [`write_replacing`] for files holding mappings or keys: a new file gets
/// mode 0600, an existing file keeps its mode if stricter (its mode AND
/// 0600).
pub fn write_replacing_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o600);
        write_replacing_mode(path, bytes, Some(mode))
    }
    #[cfg(not(unix))]
    write_replacing_mode(path, bytes, None)
}

fn write_replacing_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    if is_special_file(path) {
        return OpenOptions::new().write(true).open(path)?.write_all(bytes);
    }
    let (mut f, tmp) = create_temp(path)?;
    #[cfg(unix)]
    let set = mode.map_or(Ok(()), |m| {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(m))
    });
    #[cfg(not(unix))]
    let set = {
        let _ = mode;
        Ok(())
    };
    let res = set
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// True when `path` exists and is neither a regular file nor a directory
/// (a device such as `/dev/null`, a FIFO, a socket), following symbolic
/// links. Such outputs must be written in place, never replaced by a rename.
pub fn is_special_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// A new file next to `dest` (same directory, so the rename cannot cross
/// file systems), with a name no other run uses.
fn create_temp(dest: &Path) -> io::Result<(File, PathBuf)> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".ipwash-{}-{n}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_output_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.pcap");
        let mut o = Output::create(&dest, Compression::Gzip).unwrap();
        o.write_all(b"partial").unwrap();
        drop(o);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn finish_renames_over_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.pcap");
        fs::write(&dest, b"old").unwrap();
        let mut o = Output::create(&dest, Compression::None).unwrap();
        o.write_all(b"new contents").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        o.finish().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("nope").join("out.pcap");
        assert!(Output::create(&dest, Compression::None).is_err());
    }
}
