//! Emission: counting each unit, writing units in input order, IP
//! defragmentation on the way out, and the `--dropped` file.

use std::io::Write;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::batch::{Batch, Rec};
use super::{Outcome, Plan};
use crate::defrag::{Defrag, DefragLimits, Verdict};
use crate::error::CliError;
use crate::packet::FragInfo;
use crate::stats::Stats;
use crate::wash::Washer;

/// One unit on its way out: its bytes, the packet's range in them, the
/// fragment it is (if any) and what washing it gave.
pub(crate) struct Piece<'d> {
    pub(crate) data: &'d [u8],
    pub(crate) pkt: Option<Range<usize>>,
    pub(crate) frag: Option<&'d FragInfo>,
    pub(crate) tcp: Option<&'d crate::packet::TcpSeg>,
    pub(crate) outcome: Outcome,
}

/// The output side: writes units in input order, routing IP fragments
/// through the defragmenter so an ECS option in a later fragment is washed
/// too (and groups that cannot be checked are dropped).
pub(crate) struct Emitter<'a, W> {
    out: &'a Arc<Mutex<W>>,
    defrag: Defrag,
    tcp: crate::tcpdns::TcpDns,
    dropped: Option<DropSink>,
}

/// `--dropped`: the input's framing, to find each dropped packet, and the
/// shared file.
pub(crate) struct DropSink {
    fmt: crate::dropped::UnitFormat,
    w: Arc<Mutex<crate::dropped::DroppedWriter>>,
}

impl DropSink {
    pub(super) fn for_plan(plan: &Plan, header: &[u8]) -> Option<DropSink> {
        plan.dropped.as_ref().map(|w| DropSink {
            fmt: crate::dropped::UnitFormat::from_header(header),
            w: w.clone(),
        })
    }

    /// Note a unit: blocks update the framing, dropped packets are written.
    pub(super) fn unit(&mut self, data: &[u8], o: Outcome) -> std::io::Result<()> {
        match o {
            Outcome::Block => {
                self.fmt.see_block(data);
                Ok(())
            }
            Outcome::Dropped(r) => self.packet(data, r),
            _ => Ok(()),
        }
    }

    fn packet(&mut self, data: &[u8], reason: &str) -> std::io::Result<()> {
        let Some(p) = self.fmt.packet(data) else {
            return Ok(());
        };
        self.w
            .lock()
            .map_err(|_| std::io::Error::other("dropped-packet file lock poisoned"))?
            .packet(data, &p, reason)
    }
}

fn save_dropped(d: &mut Option<DropSink>, data: &[u8], o: Outcome) -> Result<(), CliError> {
    match d {
        Some(d) => d
            .unit(data, o)
            .map_err(|e| CliError::io("--dropped file", e)),
        None => Ok(()),
    }
}

impl<'a, W: Write> Emitter<'a, W> {
    pub(super) fn new(out: &'a Arc<Mutex<W>>, dropped: Option<DropSink>, plan: &Plan) -> Self {
        Self::with_tcp(out, dropped, plan.tcp)
    }

    /// An emitter whose TCP reassembler holds at most `tcp`.
    pub(crate) fn with_tcp(
        out: &'a Arc<Mutex<W>>,
        dropped: Option<DropSink>,
        tcp: crate::tcpdns::TcpLimits,
    ) -> Self {
        Emitter {
            out,
            defrag: Defrag::new(DefragLimits::default()),
            tcp: crate::tcpdns::TcpDns::new(tcp),
            dropped,
        }
    }

    /// Count and write one unit.
    pub(crate) fn unit(
        &mut self,
        piece: Piece<'_>,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        record(stats, piece.outcome);
        save_dropped(&mut self.dropped, piece.data, piece.outcome)?;
        if !writes(piece.outcome) {
            return Ok(());
        }
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        self.defrag_or_write(&mut *o, piece, washer, stats)
    }

    /// Write a whole washed batch in input order under one lock. Units that
    /// follow each other in the batch's buffer go out in one write.
    pub(super) fn batch(
        &mut self,
        batch: &Batch,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        self.recs(&batch.buf, &batch.recs, washer, stats)
    }

    /// Write washed units `recs` (whose bytes are in `buf`) in order.
    pub(super) fn recs(
        &mut self,
        buf: &[u8],
        recs: &[Rec],
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        let o = &mut *o;
        let write = |o: &mut W, run: &Range<usize>| -> Result<(), CliError> {
            match buf.get(run.clone()) {
                Some(b) if !b.is_empty() => o.write_all(b).map_err(|e| CliError::io("output", e)),
                _ => Ok(()),
            }
        };
        let mut run = 0..0;
        for r in recs {
            record(stats, r.outcome);
            if self.dropped.is_some() {
                save_dropped(&mut self.dropped, &buf[r.start..r.end], r.outcome)?;
            }
            if !writes(r.outcome) {
                continue;
            }
            if let Some(g) = &r.grown {
                write(o, &run)?;
                run = r.end..r.end;
                let piece = Piece {
                    data: g,
                    pkt: None,
                    frag: None,
                    tcp: None,
                    outcome: r.outcome,
                };
                self.defrag_or_write(o, piece, washer, stats)?;
                continue;
            }
            let fragment = matches!(r.outcome, Outcome::Written(_)) && r.frag.is_some();
            if !fragment && r.tcp.is_none() && !self.defrag.holding() && !self.tcp.holding() {
                if run.end != r.start {
                    write(o, &run)?;
                    run = r.start..r.start;
                }
                run.end = r.end;
                continue;
            }
            write(o, &run)?;
            run = r.end..r.end;
            let piece = Piece {
                data: &buf[r.start..r.end],
                pkt: r.pkt.map(|(a, b, _)| a..b),
                frag: r.frag.as_deref(),
                tcp: r.tcp.as_deref(),
                outcome: r.outcome,
            };
            self.defrag_or_write(o, piece, washer, stats)?;
        }
        write(o, &run)
    }

    /// Write a unit that is to be written, through the TCP reassembler
    /// when it is a DNS segment or segments are held, then through the
    /// defragmenter.
    fn defrag_or_write(
        &mut self,
        o: &mut W,
        piece: Piece<'_>,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        if piece.tcp.is_some() || self.tcp.holding() {
            let frag = piece
                .frag
                .filter(|_| matches!(piece.outcome, Outcome::Written(_)));
            self.tcp
                .push(piece.data.to_vec(), piece.pkt, frag, piece.tcp, washer);
            return self.drain_tcp(o, washer, stats);
        }
        self.defrag_write(o, piece, washer, stats)
    }

    /// Pass the units the TCP reassembler released on.
    fn drain_tcp(
        &mut self,
        o: &mut W,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        for r in self.tcp.take_ready() {
            match r.verdict {
                Verdict::Write => {
                    let piece = Piece {
                        data: &r.unit,
                        pkt: r.pkt,
                        frag: r.frag.as_ref(),
                        tcp: None,
                        outcome: Outcome::Written(false),
                    };
                    self.defrag_write(o, piece, washer, stats)?;
                }
                Verdict::Drop(reason) => {
                    unwrite(stats, &mut self.dropped, &r.unit, reason)
                        .map_err(|e| CliError::io("--dropped file", e))?;
                }
            }
        }
        Ok(())
    }

    /// Write a unit, through the defragmenter when it is a fragment or
    /// fragments are held.
    fn defrag_write(
        &mut self,
        o: &mut W,
        piece: Piece<'_>,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        let Piece {
            data,
            pkt,
            frag,
            outcome,
            ..
        } = piece;
        let fragment = match (outcome, frag, pkt) {
            (Outcome::Written(_), Some(f), Some(r)) => Some((f, r)),
            _ => None,
        };
        if fragment.is_none() && !self.defrag.holding() {
            return o.write_all(data).map_err(|e| CliError::io("output", e));
        }
        let dropped = &mut self.dropped;
        let mut emit = |bytes: Vec<u8>, v: Verdict| settle(&mut *o, stats, dropped, &bytes, v);
        let res = match fragment {
            Some((f, r)) => self
                .defrag
                .push_fragment(data.to_vec(), r, f, washer, &mut emit),
            None => self.defrag.push_other(data.to_vec(), &mut emit),
        };
        res.map_err(|e| CliError::io("output", e))
    }

    /// End of one input: resolve every held fragment group.
    pub(crate) fn finish(
        &mut self,
        washer: &mut Washer,
        stats: &mut Stats,
    ) -> Result<(), CliError> {
        let mut o = self
            .out
            .lock()
            .map_err(|_| CliError::data("output lock poisoned"))?;
        self.tcp.finish(washer);
        self.drain_tcp(&mut *o, washer, stats)?;
        stats.tcp_flows_evicted += self.tcp.evicted();
        let dropped = &mut self.dropped;
        let mut emit = |bytes: Vec<u8>, v: Verdict| settle(&mut *o, stats, dropped, &bytes, v);
        let r = self
            .defrag
            .finish(&mut emit)
            .map_err(|e| CliError::io("output", e));
        stats.names.add(&self.defrag.names);
        self.defrag.names = Default::default();
        r
    }
}

/// A unit the defragmenter or the TCP reassembler resolved: written, or
/// dropped after all (counted as written when it came in).
fn settle<W: Write>(
    o: &mut W,
    stats: &mut Stats,
    dropped: &mut Option<DropSink>,
    bytes: &[u8],
    v: Verdict,
) -> std::io::Result<()> {
    match v {
        Verdict::Write => o.write_all(bytes),
        Verdict::Drop(r) => unwrite(stats, dropped, bytes, r),
    }
}

/// A unit counted as written is dropped: count it so, and keep it in the
/// `--dropped` file.
fn unwrite(
    stats: &mut Stats,
    dropped: &mut Option<DropSink>,
    bytes: &[u8],
    reason: &'static str,
) -> std::io::Result<()> {
    stats.written -= 1;
    stats.dropped(reason);
    match dropped.as_mut() {
        Some(d) => d.packet(bytes, reason),
        None => Ok(()),
    }
}

fn record(stats: &mut Stats, o: Outcome) {
    match o {
        Outcome::Block => stats.blocks += 1,
        Outcome::BlockDropped(r) => stats.blocks_dropped(r),
        Outcome::Written(changed) => {
            stats.read += 1;
            stats.written += 1;
            if changed {
                stats.rewritten += 1;
            }
        }
        Outcome::Passed(r) => {
            stats.read += 1;
            stats.written += 1;
            stats.passed(r);
        }
        Outcome::Dropped(r) => {
            stats.read += 1;
            stats.dropped(r);
        }
    }
}

fn writes(o: Outcome) -> bool {
    matches!(o, Outcome::Block | Outcome::Written(_) | Outcome::Passed(_))
}
