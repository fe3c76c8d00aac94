//! A batch of units copied out of the reader, and washing one, shared by
//! the batched and prefetched strategies.

use std::io::Read;

use super::{wash_packet, Outcome, Unparsed, Worker};
use crate::capture::CaptureReader;
use crate::packet::FragInfo;
use crate::wash::Washer;

/// One unit inside a batch.
#[derive(Clone)]
pub(super) struct Rec {
    pub(super) start: usize,
    pub(super) end: usize,
    /// Packet bytes relative to `start`, and link type.
    pub(super) pkt: Option<(usize, usize, u32)>,
    pub(super) dropped: Option<&'static str>,
    pub(super) outcome: Outcome,
    /// Set when the packet is an IP fragment.
    pub(super) frag: Option<Box<FragInfo>>,
    /// Set when the packet is a DNS-over-TCP segment.
    pub(super) tcp: Option<Box<crate::packet::TcpSeg>>,
    /// The whole unit, rebuilt, when the washed packet changed length.
    pub(super) grown: Option<Vec<u8>>,
}

/// A batch of units copied out of the reader's buffer.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) buf: Vec<u8>,
    pub(super) recs: Vec<Rec>,
}

const BATCH_UNITS: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;

/// Copy units from the reader into `batch` until it is full. Ok(true) when
/// the input has more, Ok(false) at its end.
pub(super) fn fill_batch<R: Read>(
    rd: &mut CaptureReader<R>,
    batch: &mut Batch,
) -> Result<bool, String> {
    let Batch { buf, recs } = batch;
    let units = BATCH_UNITS.saturating_sub(recs.len());
    let bytes = BATCH_BYTES.saturating_sub(buf.len());
    rd.read_into(buf, units, bytes, |start, end, pkt, dropped| {
        recs.push(Rec {
            start,
            end,
            pkt,
            dropped,
            outcome: Outcome::Block,
            frag: None,
            tcp: None,
            grown: None,
        })
    })
    .map_err(|e| e.to_string())
}

/// Wash the units `recs`, whose bytes are in `buf`.
pub(super) fn wash_recs(
    recs: &mut [Rec],
    buf: &mut [u8],
    washer: &mut Washer,
    w: &mut Worker,
    unparsed: Unparsed,
) {
    for r in recs.iter_mut() {
        r.outcome = match (r.pkt, r.dropped) {
            (_, Some(reason)) => Outcome::BlockDropped(reason),
            (None, None) => Outcome::Block,
            (Some((ps, pe, lt)), None) => {
                // `wash_packet` always starts from a cleared `w.loc`.
                let o = match buf.get_mut(r.start + ps..r.start + pe) {
                    Some(pkt) => wash_packet(pkt, lt, washer, w, unparsed),
                    None => Outcome::Dropped("malformed_record"),
                };
                r.frag = w.loc.frag.take().map(Box::new);
                r.tcp = w.loc.tcp.take().map(Box::new);
                let (g, o) = super::washer::regrow(&buf[r.start..r.end], Some(ps..pe), w, o);
                r.grown = g;
                o
            }
        };
    }
}
