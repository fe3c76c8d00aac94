//! The batched strategy, for stateless techniques on files: workers on a
//! rayon pool read, wash and write whole batches in turn.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};

use super::batch::{fill_batch, wash_recs, Batch};
use super::emit::{DropSink, Emitter};
use super::{Plan, Unparsed, Worker};
use crate::capture::CaptureReader;
use crate::error::CliError;
use crate::stats::Stats;
use crate::wash::Washer;

/// The reading side of the parallel path: whoever holds it reads the next
/// batch, which gets the next sequence number.
struct ReadSide<'r, R> {
    rd: &'r mut CaptureReader<R>,
    next: u64,
    done: bool,
    err: Option<String>,
}

/// The writing side: batches are written strictly in sequence order.
struct WriteSide<'a, W> {
    em: Emitter<'a, W>,
    next: u64,
    stats: Stats,
    err: Option<CliError>,
}

/// Worker threads and per-thread washers with their caches, made on the
/// first file the batch path washes and reused for every later one.
/// Reusing a cache changes no output (stateless techniques only).
#[derive(Default)]
pub struct BatchWorkers {
    pool: Option<rayon::ThreadPool>,
    workers: Vec<(Washer, Worker)>,
}

/// The path for stateless techniques on files: each of `threads` workers
/// (on a rayon pool) takes the reader in turn to copy out the next batch,
/// washes it, waits for its turn and writes it. A batch stays on one core
/// from reading to writing, and the output is in input order whatever the
/// number of threads (batches are cut the same way every time). With one
/// thread, that one worker does everything in turn.
pub(super) fn wash_batched<R: Read + Send, W: Write + Send>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let threads = plan.threads.max(1);
    if plan.batch.pool.is_none() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CliError::data(format!("cannot start worker threads: {e}")))?;
        plan.batch.pool = Some(pool);
        plan.batch.workers = (0..threads)
            .filter_map(|_| {
                let w = plan.washer.try_clone()?;
                let k = Worker::for_washer(&w, plan.cache_size);
                Some((w, k))
            })
            .collect();
    }
    let mut batch = std::mem::take(&mut plan.batch);
    let res = wash_batched_on(rd, out, plan, stats, name, &mut batch);
    plan.batch = batch;
    res
}

/// [`wash_batched`] on the kept threads and workers.
fn wash_batched_on<R: Read + Send, W: Write + Send>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
    batch: &mut BatchWorkers,
) -> Result<(), CliError> {
    let BatchWorkers { pool, workers } = batch;
    let Some(pool) = pool.as_ref() else {
        return Err(CliError::data("internal: no worker threads"));
    };
    if workers.is_empty() {
        return Err(CliError::data(
            "internal: a stateful technique on the batch path",
        ));
    }
    let sink = DropSink::for_plan(plan, rd.header());
    let read = Mutex::new(ReadSide {
        rd,
        next: 0,
        done: false,
        err: None,
    });
    let write = Mutex::new(WriteSide {
        em: Emitter::new(out, sink, plan),
        next: 0,
        stats: Stats::default(),
        err: None,
    });
    let turn = Condvar::new();
    let unparsed = plan.unparsed;
    pool.scope(|s| {
        for (washer, w) in workers.iter_mut() {
            let (read, write, turn) = (&read, &write, &turn);
            s.spawn(move |_| batch_worker(read, write, turn, washer, w, unparsed));
        }
    });
    let read_err = read.into_inner().map(|r| r.err).unwrap_or(None);
    let mut ws = write
        .into_inner()
        .map_err(|_| CliError::data("output lock poisoned"))?;
    // Whatever happened, release the held fragments so the output so far
    // stays complete and valid.
    let fin = match workers.first_mut() {
        Some((washer, _)) => ws.em.finish(washer, &mut ws.stats),
        None => Ok(()),
    };
    stats.merge(&ws.stats);
    for (_, w) in workers.iter_mut() {
        stats.merge(&std::mem::take(&mut w.stats));
    }
    if let Some(e) = ws.err {
        return Err(e);
    }
    if let Some(e) = read_err {
        return Err(CliError::data(format!("{name}: {e}")));
    }
    fin
}

/// One worker of [`wash_batched`]: read, wash, write in turn, until the
/// input ends or fails or a write fails.
fn batch_worker<R: Read, W: Write>(
    read: &Mutex<ReadSide<'_, R>>,
    write: &Mutex<WriteSide<'_, W>>,
    turn: &Condvar,
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) {
    let mut batch = Batch::default();
    loop {
        let seq = {
            let Ok(mut r) = read.lock() else { return };
            if r.done {
                return;
            }
            let seq = r.next;
            r.next += 1;
            match fill_batch(r.rd, &mut batch) {
                Ok(true) => {}
                Ok(false) => r.done = true,
                Err(e) => {
                    r.done = true;
                    r.err = Some(e);
                }
            }
            seq
        };
        wash_recs(&mut batch.recs, &mut batch.buf, washer, w, unparsed);
        let Ok(mut g) = write.lock() else { return };
        while g.next != seq {
            g = match turn.wait(g) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
        let failed = if g.err.is_none() {
            let WriteSide { em, stats, err, .. } = &mut *g;
            if let Err(e) = em.batch(&batch, washer, stats) {
                *err = Some(e);
            }
            err.is_some()
        } else {
            true
        };
        g.next += 1;
        drop(g);
        turn.notify_all();
        if failed {
            // Nothing more can be written: stop reading.
            if let Ok(mut r) = read.lock() {
                r.done = true;
            }
            return;
        }
        batch.buf.clear();
        batch.recs.clear();
    }
}
