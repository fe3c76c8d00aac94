//! A progress bar for `ipwash wash` on a terminal (indicatif): files done,
//! bytes, packets per second, time left and drops so far. None when stderr
//! is not a terminal or with `-q`.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::batch::Job;
use crate::stats::Stats;

/// Bytes read from input files so far, by every [`Counted`] reader: the
/// bar follows it while a file is being washed.
static READ_BYTES: AtomicU64 = AtomicU64::new(0);

/// An input file whose bytes (as stored, before any decompression) count
/// towards the progress bar.
pub struct Counted<R>(pub R);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        READ_BYTES.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Where the bar stands: the bytes of the files done, and the current
/// file's size and the counter's value when it started.
#[derive(Default)]
struct Live {
    done_bytes: AtomicU64,
    file_size: AtomicU64,
    file_start: AtomicU64,
    stop: AtomicBool,
}

impl Live {
    fn position(&self) -> u64 {
        let read = READ_BYTES
            .load(Ordering::Relaxed)
            .saturating_sub(self.file_start.load(Ordering::Relaxed));
        self.done_bytes.load(Ordering::Relaxed) + read.min(self.file_size.load(Ordering::Relaxed))
    }
}

/// The bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    live: Arc<Live>,
    files: usize,
    done: std::cell::Cell<usize>,
    packets: std::cell::Cell<u64>,
    dropped: std::cell::Cell<u64>,
    started: Instant,
}

fn size(p: &Path) -> u64 {
    if p.as_os_str() == "-" {
        return 0;
    }
    std::fs::metadata(p).map_or(0, |m| m.len())
}

impl Progress {
    /// A bar over the input bytes of `jobs`, shown only on a terminal.
    pub fn new(jobs: &[Job], quiet: bool) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let total: u64 = jobs.iter().map(|j| size(&j.input)).sum();
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ({eta} left) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        });
        let live = Arc::new(Live::default());
        if let Some(b) = &bar {
            // Moves the bar while a file is read, so one large file shows
            // its progress too.
            let (b, live) = (b.clone(), live.clone());
            std::thread::spawn(move || {
                while !live.stop.load(Ordering::Relaxed) {
                    b.set_position(live.position());
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            });
        }
        if let Some(j) = jobs.first() {
            live.file_size.store(size(&j.input), Ordering::Relaxed);
        }
        live.file_start
            .store(READ_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
        let p = Progress {
            bar,
            live,
            files: jobs.len(),
            done: 0.into(),
            packets: 0.into(),
            dropped: 0.into(),
            started: Instant::now(),
        };
        p.message();
        p
    }

    fn message(&self) {
        if let Some(b) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "files {}/{}, {:.0} packets/s, dropped {}",
                self.done.get(),
                self.files,
                self.packets.get() as f64 / secs,
                self.dropped.get()
            ));
        }
    }

    /// One file finished with these counters; `next` is the one to come.
    pub fn file_done(&self, job: &Job, st: &Stats, next: Option<&Job>) {
        self.done.set(self.done.get() + 1);
        self.packets.set(self.packets.get() + st.read);
        self.dropped.set(self.dropped.get() + st.dropped_total());
        let l = &self.live;
        l.done_bytes.fetch_add(size(&job.input), Ordering::Relaxed);
        l.file_size
            .store(next.map_or(0, |j| size(&j.input)), Ordering::Relaxed);
        l.file_start
            .store(READ_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_position(l.position());
        }
        self.message();
    }

    /// Print around the bar.
    pub fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.live.stop.store(true, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.live.stop.store(true, Ordering::Relaxed);
    }
}
