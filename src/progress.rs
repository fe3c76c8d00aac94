//! A progress bar for `ipwash wash` on a terminal (indicatif): files done,
//! bytes, packets per second, time left and drops so far. None when stderr
//! is not a terminal or with `-q`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::batch::Job;
use crate::stats::Stats;

/// The bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
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
        let p = Progress {
            bar,
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

    /// One file finished with these counters.
    pub fn file_done(&self, job: &Job, st: &Stats) {
        self.done.set(self.done.get() + 1);
        self.packets.set(self.packets.get() + st.read);
        self.dropped.set(self.dropped.get() + st.dropped_total());
        if let Some(b) = &self.bar {
            b.inc(size(&job.input));
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
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
