//! The prefetched strategy, for stateful techniques on files: a reader
//! thread copies out the next batches while this thread washes and writes
//! unit by unit.

use std::io::{Read, Write};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use super::batch::{fill_batch, wash_recs, Batch};
use super::emit::{DropSink, Emitter};
use super::{Plan, Worker};
use crate::capture::CaptureReader;
use crate::error::CliError;
use crate::stats::Stats;

/// The path for stateful techniques on files: a reader thread parses and
/// copies out the next batches while this thread washes and writes, unit
/// by unit in input order (as the per-unit path, so that addresses washed
/// at reassembly keep their place in the order of first appearance).
pub(super) fn wash_prefetched<R: Read + Send, W: Write>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let sink = DropSink::for_plan(plan, rd.header());
    let (tx, rx) = sync_channel::<(Batch, Result<bool, String>)>(2);
    let (back_tx, back_rx) = sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || loop {
            let mut b = back_rx.try_recv().unwrap_or_default();
            let r = fill_batch(rd, &mut b);
            let more = matches!(r, Ok(true));
            if tx.send((b, r)).is_err() || !more {
                return;
            }
        });
        let mut w = Worker::for_washer(&plan.washer, plan.cache_size);
        let mut em = Emitter::new(out, sink, plan);
        let mut res = Ok(());
        'batches: for (mut batch, r) in rx.iter() {
            for i in 0..batch.recs.len() {
                let Batch { buf, recs } = &mut batch;
                let one = &mut recs[i..=i];
                wash_recs(one, buf, &mut plan.washer, &mut w, plan.unparsed);
                if let Err(e) = em.recs(buf, one, &mut plan.washer, stats) {
                    res = Err(e);
                    break 'batches;
                }
            }
            if let Err(e) = r {
                res = Err(CliError::data(format!("{name}: {e}")));
                break;
            }
            batch.buf.clear();
            batch.recs.clear();
            let _ = back_tx.try_send(batch);
        }
        // Dropping the receiver ends the reader thread.
        drop(rx);
        let fin = em.finish(&mut plan.washer, stats);
        stats.merge(&w.stats);
        res.and(fin)
    })
}
