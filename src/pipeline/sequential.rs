//! The sequential strategy: unit by unit, straight from the reader (live
//! pipes, where batches would hold packets back).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::emit::{DropSink, Emitter, Piece};
use super::{wash_packet, Outcome, Plan, Worker};
use crate::capture::CaptureReader;
use crate::error::CliError;
use crate::stats::Stats;

pub(super) fn wash_sequential<R: Read, W: Write>(
    rd: &mut CaptureReader<R>,
    out: &Arc<Mutex<W>>,
    plan: &mut Plan,
    stats: &mut Stats,
    name: &str,
) -> Result<(), CliError> {
    let mut w = Worker::for_washer(&plan.washer, plan.cache_size);
    let mut em = Emitter::new(out, DropSink::for_plan(plan, rd.header()), plan);
    let res = loop {
        let unit = match rd.next_unit() {
            Ok(Some(u)) => u,
            Ok(None) => break Ok(()),
            Err(e) => break Err(CliError::data(format!("{name}: {e}"))),
        };
        w.loc.frag = None;
        w.loc.tcp = None;
        let outcome = match (&unit.packet, unit.dropped) {
            (_, Some(r)) => Outcome::BlockDropped(r),
            (None, None) => Outcome::Block,
            (Some(p), None) => {
                let range = p.range.clone();
                let lt = p.linktype;
                match unit.data.get_mut(range) {
                    Some(pkt) => wash_packet(pkt, lt, &mut plan.washer, &mut w, plan.unparsed),
                    None => Outcome::Dropped("malformed_record"),
                }
            }
        };
        let pkt = unit.packet.as_ref().map(|p| p.range.clone());
        let (grown, outcome) = super::washer::regrow(unit.data, pkt.clone(), &mut w, outcome);
        let piece = Piece {
            data: grown.as_deref().unwrap_or(unit.data),
            pkt,
            frag: w.loc.frag.as_ref(),
            tcp: w.loc.tcp.as_ref(),
            outcome,
        };
        em.unit(piece, &mut plan.washer, stats)?;
    };
    // Whatever happened, release the held fragments so the output so far
    // stays complete and valid.
    em.finish(&mut plan.washer, stats)?;
    stats.merge(&w.stats);
    res
}
