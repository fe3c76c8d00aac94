//! I/O adapters: a writer over the shared output, and a reader that
//! flushes the output before it would block (live pipes).

use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

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
