//! SIGINT and SIGTERM during `ipwash wash`: no half-written file is left
//! behind and the mapping of the files already written is kept.
//!
//! A thread waits for the signal (signal-hook's iterator, so nothing runs
//! in the signal handler itself). On a signal it takes the lock under which
//! outputs are renamed into place, removes every temporary output file,
//! writes the last state snapshot (taken just before each output was
//! renamed into place, so it covers every file written) and ends the
//! process with 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

/// What the signal thread saves.
#[derive(Debug, Default)]
pub struct Guard {
    state: Mutex<Option<(PathBuf, Vec<u8>)>>,
    path: Mutex<Option<PathBuf>>,
}

impl Guard {
    /// Remember the state bytes to save if a signal comes now.
    pub fn set_state(&self, bytes: Vec<u8>) {
        let path = self.path.lock().ok().and_then(|p| p.clone());
        if let (Some(p), Ok(mut g)) = (path, self.state.lock()) {
            *g = Some((p, bytes));
        }
    }
}

static GUARD: OnceLock<Option<Arc<Guard>>> = OnceLock::new();

/// Start watching for SIGINT and SIGTERM (once per process); `state` is the
/// `--state` file to save on a signal. None when the signals cannot be
/// watched (the run then goes on with the default handling).
pub fn install(state: Option<PathBuf>) -> Option<Arc<Guard>> {
    let g = GUARD
        .get_or_init(|| {
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
            let guard = Arc::new(Guard::default());
            let g = guard.clone();
            std::thread::Builder::new()
                .name("ipwash-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        on_signal(&g, sig);
                    }
                })
                .ok()?;
            Some(guard)
        })
        .clone()?;
    if let Ok(mut p) = g.path.lock() {
        *p = state;
    }
    Some(g)
}

fn on_signal(g: &Guard, sig: i32) -> ! {
    // Held until the process ends: no output is renamed into place after.
    let _held = crate::capture::remove_pending_temps();
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    let mut msg = format!("ipwash: interrupted by {name}; unfinished outputs removed");
    if let Some((path, bytes)) = g.state.lock().ok().and_then(|s| s.clone()) {
        match crate::capture::write_replacing_private(&path, &bytes) {
            Ok(()) => msg.push_str(&format!(
                "; state saved to {} for the files written",
                path.display()
            )),
            Err(e) => msg.push_str(&format!("; cannot save state file {}: {e}", path.display())),
        }
    }
    eprintln!("{msg}");
    std::process::exit(128 + sig);
}
