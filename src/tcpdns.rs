//! DNS over TCP: stream reassembly on the output side of the pipeline.
//!
//! # Why
//! A DNS message over TCP (RFC 7766) is a two-byte length and the message,
//! and TCP may cut that anywhere: dnscap sends the length in a segment of
//! its own, large responses span several segments, and an EDNS Client
//! Subnet address may straddle two segments. A segment alone cannot be
//! washed safely, so [`crate::packet::locate`] (with
//! [`Located::follow_tcp`](crate::packet::Located::follow_tcp) set) reports
//! no DNS slot for an outermost DNS segment and describes it in
//! [`TcpSeg`] instead; this module follows each connection as a TCP
//! receiver would, walks every complete message with
//! [`crate::packet::locate_dns`] (so every item the walker washes inside
//! DNS is found), washes it and writes the new bytes back into whichever
//! segments hold them, each segment's checksum updated incrementally
//! (valid stays valid, wrong stays exactly as wrong).
//!
//! A message whose reverse names are written at another length changes the
//! length of the last segment holding it (see *Lengths* below).
//!
//! # How it is used
//! Single thread, after the per-packet washing, in output order, before
//! [`crate::defrag`]: every unit goes to [`TcpDns::push`] while
//! [`TcpDns::holding`] (or when it carries a [`TcpSeg`]); at the end of the
//! input, [`TcpDns::finish`]. Every unit comes back exactly once, in input
//! order, through the `emit` callback with a [`Verdict`].
//!
//! # Rules (fail closed)
//! - Streams are keyed by addresses and ports as captured; each direction
//!   has its own state. Sequence numbers are compared modulo 2^32.
//! - *In order.* A segment's bytes before the next expected sequence number
//!   are a retransmission or overlap: they must equal the bytes first seen
//!   (else the segment is dropped, `tcp_dns_conflict`) and are rewritten as
//!   those were; bytes no longer retained (acknowledged by the peer, or
//!   more than 64 KiB back) cannot be checked and drop the segment
//!   (`tcp_dns_stale`). A segment after a hole is held (out of order) until
//!   the hole is filled. The hole is given up when the peer acknowledges
//!   past it (the capture lost the bytes), at a hold limit, at FIN/RST or at
//!   the end of the input: what was captured of the message it cut is
//!   walked as far as it goes (as a message cut by the snapshot length;
//!   dropped, `tcp_dns_gap`, when even that fails; any later copy of the
//!   missing bytes is dropped) and the framing is searched again from the
//!   held segment.
//! - *Framing.* With a SYN seen, the first data byte starts a message.
//!   Without one (the capture started mid-stream), or after a hole, the
//!   next segment is taken to start a message; that first message must
//!   walk as DNS exactly to its end (header counts, names and records; at
//!   least one record or question) and complete within
//!   `MAX_TENTATIVE_UNITS` (4) segments; otherwise the first segment
//!   holding it is dropped (`tcp_dns_unsynced`) and the search starts again
//!   at the next one, with the bytes held so far.
//! - A complete message that cannot be walked drops the segments holding it
//!   (`unparsed_dns`). A message left incomplete by FIN, RST, the end of the
//!   input or an idle eviction is walked as far as it goes (as a message cut
//!   by the snapshot length is) and released; if even that fails, dropped.
//! - A segment cut by the capture's snapshot length was walked per packet
//!   (its DNS, as far as captured). It is kept when it starts a message,
//!   dropped (`tcp_dns_cut`) when it continues one; the direction then
//!   searches its framing again.
//! - *Hold-back.* A segment waits until every message it holds bytes of is
//!   complete, and every later unit waits behind it (output order is input
//!   order). When more than [`TcpLimits::max_held_units`] units, or units
//!   spanning more than [`TcpLimits::max_span`] input units, or more than
//!   [`TcpLimits::memory`] bytes are held, the oldest waiting message is
//!   given up: its segments are dropped (`tcp_dns_hold_limit`), as are its
//!   later bytes; the framing continues after it.
//! - *Memory.* Stream state (the current message, retained bytes for
//!   retransmissions) counts against [`TcpLimits::memory`] with the held
//!   units. Flows idle for [`TcpLimits::max_idle`] units, the least
//!   recently seen one when more than [`TcpLimits::max_flows`] are open,
//!   and the largest one when memory is short, are evicted
//!   ([`TcpDns::evicted`] counts them); their waiting segments are
//!   resolved as at the end of the input.
//!
//! - *Lengths.* A complete message that changes length (a reverse name
//!   whose washed form is longer or shorter) gets its new length prefix;
//!   every segment piece keeps its length except the one holding the
//!   message's last byte, which must end its segment's payload and IP
//!   datagram under a link layer without a length field of its own (the
//!   IP length, IPv4 header checksum, TCP checksum and capture record
//!   follow; a wrong checksum stays exactly as wrong). Every later
//!   sequence number of that direction, and the other direction's
//!   acknowledgements and SACK blocks, move by the change
//!   ([`SeqShift`]), so a receiver sees the same stream it saw. A
//!   retransmission of exactly that last segment is rewritten as the
//!   first copy was; other retransmissions of the message's bytes are
//!   dropped (`tcp_dns_stale`). When the change cannot be placed (the
//!   message ends mid-segment, a shrink larger than the last piece, a
//!   length over 65,535, a tunnel or PPPoE), or for a message left
//!   incomplete, the message's segments are dropped
//!   (`reverse_name_length`).
//!
//! Not followed (walked per segment as before, dropped as `tcp_dns_split`
//! when split): DNS over TCP inside tunnels and ICMP quotes. TCP inside IP
//! fragments is dropped by [`crate::defrag`]. Followed: port 53 and every
//! `--dns-port`; port 853 carries TLS and is not DNS in clear.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use crate::defrag::Verdict;
use crate::dns;
use crate::packet::{self, FlowKey, Located, Origin, TcpSeg};
use crate::wash::Washer;

mod shift;
pub use shift::{SeqShift, ShiftError};

/// How much the reassembler may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Bytes of held units plus stream state (`--tcp-memory`).
    pub memory: usize,
    /// Units held at once.
    pub max_held_units: usize,
    /// Input units after the oldest held one before its message is given
    /// up.
    pub max_span: u64,
    /// Open flows.
    pub max_flows: usize,
    /// Input units without a segment of a flow before it is evicted.
    pub max_idle: u64,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            memory: 64 << 20,
            max_held_units: 65536,
            max_span: 100_000,
            max_flows: 65536,
            max_idle: 1_000_000,
        }
    }
}

const GAP: &str = "tcp_dns_gap";
const UNSYNCED: &str = "tcp_dns_unsynced";
const CONFLICT: &str = "tcp_dns_conflict";
const STALE: &str = "tcp_dns_stale";
const HOLD: &str = "tcp_dns_hold_limit";
const CUT: &str = "tcp_dns_cut";
const UNPARSED: &str = "unparsed_dns";

/// Segments a message found by searching may span before it is given up.
const MAX_TENTATIVE_UNITS: usize = 4;

/// Bytes of a direction kept after their message completed, to check and
/// rewrite retransmissions.
const RETAIN: usize = 64 << 10;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// `a` comes before `b` in sequence space.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A unit on its way out.
#[derive(Debug)]
pub struct Released {
    /// The record's bytes, rewritten.
    pub unit: Vec<u8>,
    /// The packet within it.
    pub pkt: Option<Range<usize>>,
    /// The IP fragment it is, for the defragmenter.
    pub frag: Option<packet::FragInfo>,
    /// Write or drop.
    pub verdict: Verdict,
}

/// One held unit.
struct Held {
    unit: Vec<u8>,
    /// Packet bytes within `unit`.
    pkt: Option<Range<usize>>,
    frag: Option<packet::FragInfo>,
    /// Checksum field and the start of its data, absolute in `unit`.
    ck: Option<usize>,
    ck_base: usize,
    /// The direction it waits on.
    dir: Option<(FlowKey, usize)>,
    /// The segment, offsets relative to `pkt`.
    seg: Option<TcpSeg>,
    /// Its sequence numbers were shifted (or need not be).
    shifted: bool,
    /// Reasons it still waits: pieces of an incomplete message, being out
    /// of order.
    waits: u32,
    drop: Option<&'static str>,
    done: bool,
}

impl Held {
    fn verdict(&self) -> Option<Verdict> {
        if !self.done || self.waits > 0 {
            return None;
        }
        Some(match self.drop {
            Some(r) => Verdict::Drop(r),
            None => Verdict::Write,
        })
    }
}

/// Bytes of the current message held by a unit.
#[derive(Debug, Clone, Copy)]
struct Pc {
    unit: u64,
    /// Absolute offset in the unit.
    at: usize,
    /// Offset in the message buffer (length prefix included).
    moff: usize,
    len: usize,
}

/// An out-of-order segment.
#[derive(Debug, Clone, Copy)]
struct Ooo {
    unit: u64,
    seq: u32,
    at: usize,
    len: usize,
    flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sync {
    /// Nothing seen yet.
    #[default]
    None,
    /// Framing known; `next` is the next expected sequence number.
    Synced,
    /// Sequence known (`next`), framing not: the next segment that starts
    /// at `next` or later is taken to start a message.
    Hunting,
}

#[derive(Default)]
struct Dir {
    sync: Sync,
    next: u32,
    isn: Option<u32>,
    /// The current message as received, length prefix included.
    msg: Vec<u8>,
    pieces: Vec<Pc>,
    /// Units with bytes in the current message (each waits once).
    waiting: Vec<u64>,
    /// The current message is the first after (re)synchronising.
    tentative: bool,
    /// The current message's segments are dropped for this reason.
    poisoned: Option<&'static str>,
    ooo: Vec<Ooo>,
    /// Retained bytes of completed messages: as received and as written,
    /// starting at sequence number `rseq`.
    rseq: u32,
    orig: VecDeque<u8>,
    washed: VecDeque<u8>,
    /// The last message written at another length: from sequence number
    /// `.0` to its end, its bytes as received (`.1`) and as written (`.2`),
    /// for a retransmission of exactly that segment.
    resized: Option<(u32, Vec<u8>, Vec<u8>)>,
}

impl Dir {
    fn mem(&self) -> usize {
        self.msg.capacity()
            + self.pieces.capacity() * std::mem::size_of::<Pc>()
            + self.ooo.capacity() * std::mem::size_of::<Ooo>()
            + self.orig.capacity()
            + self.washed.capacity()
            + self
                .resized
                .as_ref()
                .map_or(0, |r| r.1.capacity() + r.2.capacity())
            + 256
    }

    /// Forget the retained bytes: retained from `next` on.
    fn next_retained(&mut self) {
        self.orig.clear();
        self.washed.clear();
        self.rseq = self.next;
    }

    /// Sequence number of the current message's first byte.
    fn msg_seq(&self) -> u32 {
        self.next.wrapping_sub(self.msg.len() as u32)
    }

    /// Length prefix plus message, once the prefix is known.
    fn msg_total(&self) -> Option<usize> {
        (self.msg.len() >= 2).then(|| 2 + u16::from_be_bytes([self.msg[0], self.msg[1]]) as usize)
    }
}

struct Flow {
    dirs: [Dir; 2],
    /// Sequence offsets from messages that changed length.
    shift: Option<SeqShift>,
    last: u64,
    mem: usize,
}

/// The DNS-over-TCP reassembler. See the module documentation.
pub struct TcpDns {
    limits: TcpLimits,
    queue: VecDeque<Held>,
    /// Input sequence number of `queue[0]`.
    base: u64,
    /// Input sequence number of the next unit.
    next: u64,
    held_bytes: usize,
    flows: HashMap<FlowKey, Flow>,
    flow_bytes: usize,
    evicted: u64,
    rewritten: u64,
    resized: u64,
    loc: Located,
    scratch: Vec<u8>,
    ready: Vec<Released>,
}

/// The canonical key of a connection and the index of `k`'s direction.
fn canonical(k: &FlowKey) -> (FlowKey, usize) {
    let r = k.reverse();
    if *k <= r {
        (*k, 0)
    } else {
        (r, 1)
    }
}

impl TcpDns {
    /// Every reason a [`Verdict::Drop`] can carry.
    pub const REASONS: &'static [&'static str] =
        &[GAP, UNSYNCED, CONFLICT, STALE, HOLD, CUT, UNPARSED];

    /// An empty reassembler.
    pub fn new(limits: TcpLimits) -> Self {
        TcpDns {
            limits,
            queue: VecDeque::new(),
            base: 0,
            next: 0,
            held_bytes: 0,
            flows: HashMap::new(),
            flow_bytes: 0,
            evicted: 0,
            rewritten: 0,
            resized: 0,
            loc: Located::new(),
            scratch: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// True while units are held: every unit must then go through
    /// [`TcpDns::push`] to keep the output order.
    pub fn holding(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Flows evicted (idle, or for room) so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Messages whose bytes were changed so far.
    pub fn rewritten(&self) -> u64 {
        self.rewritten
    }

    /// Messages that changed length (their stream's later sequence numbers
    /// were shifted) so far.
    pub fn resized(&self) -> u64 {
        self.resized
    }

    /// A unit to be written: `unit` is the whole record, `pkt` the packet
    /// within it, `frag` and `seg` what locating the packet reported
    /// (`seg.*` offsets relative to `pkt`). Released units go to `emit`
    /// with the fragment information they came with.
    pub fn push(
        &mut self,
        unit: Vec<u8>,
        pkt: Option<Range<usize>>,
        frag: Option<&packet::FragInfo>,
        seg: Option<&TcpSeg>,
        washer: &mut Washer,
    ) {
        let id = self.next;
        self.next += 1;
        let (Some(seg), Some(prange)) = (seg, pkt.clone()) else {
            if self.queue.is_empty() {
                self.base += 1;
                self.ready.push(Released {
                    unit,
                    pkt,
                    frag: frag.cloned(),
                    verdict: Verdict::Write,
                });
                return;
            }
            self.held_bytes += unit.len();
            self.queue.push_back(Held {
                unit,
                pkt,
                frag: frag.cloned(),
                ck: None,
                ck_base: 0,
                dir: None,
                seg: None,
                shifted: true,
                waits: 0,
                drop: None,
                done: true,
            });
            return self.enforce_and_release(washer);
        };
        let pkt = prange;
        let (ckey, d) = canonical(&seg.key);
        self.held_bytes += unit.len();
        self.queue.push_back(Held {
            ck: seg.checksum.map(|c| pkt.start + c),
            ck_base: pkt.start + seg.header,
            dir: Some((ckey, d)),
            seg: Some(seg.clone()),
            shifted: false,
            unit,
            pkt: Some(pkt.clone()),
            frag: frag.cloned(),
            waits: 0,
            drop: None,
            done: false,
        });
        let (ps, pe) = (
            pkt.start + seg.payload.start,
            (pkt.start + seg.payload.end).min(pkt.end),
        );
        if !self.flows.contains_key(&ckey) {
            if self.flows.len() >= self.limits.max_flows {
                self.evict_oldest(washer);
            }
            self.flows.insert(
                ckey,
                Flow {
                    dirs: [Dir::default(), Dir::default()],
                    shift: None,
                    last: id,
                    mem: 0,
                },
            );
        }
        self.segment(ckey, d, id, seg, ps, pe.max(ps), washer);
        if let Some(h) = self.held_mut(id) {
            h.done = true;
        }
        if seg.flags & RST != 0 {
            self.end_flow(ckey, washer);
        }
        self.account(ckey);
        if id % 1024 == 0 {
            self.evict_idle(id, washer);
        }
        self.enforce_and_release(washer)
    }

    /// Units released so far, in input order, with their verdicts.
    pub fn take_ready(&mut self) -> Vec<Released> {
        std::mem::take(&mut self.ready)
    }

    /// End of input: resolve every stream and release everything, in order.
    pub fn finish(&mut self, washer: &mut Washer) {
        let keys: Vec<FlowKey> = {
            let mut k: Vec<_> = self.flows.keys().copied().collect();
            k.sort();
            k
        };
        for k in keys {
            self.end_flow(k, washer);
        }
        self.flow_bytes = 0;
        self.release();
        // Nothing should wait any more; a unit that still does was never
        // walked, so it is dropped, never written as it came.
        for h in self.queue.iter_mut() {
            if h.waits > 0 {
                h.drop.get_or_insert(GAP);
            }
            h.waits = 0;
            h.done = true;
        }
        self.release();
    }

    // ------------------------------------------------------------ segments

    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        ckey: FlowKey,
        d: usize,
        id: u64,
        seg: &TcpSeg,
        ps: usize,
        pe: usize,
        washer: &mut Washer,
    ) {
        let Some(flow) = self.flows.get_mut(&ckey) else {
            return;
        };
        flow.last = id;
        // The peer's acknowledgement: trims retained bytes, and shows bytes
        // the capture lost.
        if seg.flags & ACK != 0 {
            let peer = &mut flow.dirs[1 - d];
            if peer.sync != Sync::None {
                trim_acked(peer, seg.ack);
            }
            let lost =
                before(peer.next, seg.ack) && (peer.sync == Sync::Synced || !peer.ooo.is_empty());
            if lost {
                self.give_up_gap(ckey, 1 - d, washer);
            }
        }
        let Some(flow) = self.flows.get_mut(&ckey) else {
            return;
        };
        let dir = &mut flow.dirs[d];
        let mut seq = seg.seq;
        if seg.flags & SYN != 0 {
            let data = seq.wrapping_add(1);
            if dir.isn != Some(seq) {
                if dir.sync != Sync::None {
                    // A new connection on the same ports: the old one's
                    // segments keep their shift, the new one starts afresh.
                    self.end_dir(ckey, d, washer);
                    self.settle_shift(ckey, id);
                }
                let Some(flow) = self.flows.get_mut(&ckey) else {
                    return;
                };
                let dir = &mut flow.dirs[d];
                *dir = Dir::default();
                dir.isn = Some(seq);
                dir.sync = Sync::Synced;
                dir.next = data;
                dir.rseq = data;
            }
            seq = data;
        }
        let len = pe - ps;
        if seg.cut {
            self.cut_segment(ckey, d, id, seq, washer);
            return;
        }
        if len == 0 {
            if seg.flags & FIN != 0 {
                self.fin(ckey, d, seq, washer);
            }
            return;
        }
        let Some(flow) = self.flows.get_mut(&ckey) else {
            return;
        };
        let dir = &mut flow.dirs[d];
        if dir.sync == Sync::None {
            dir.sync = Sync::Hunting;
            dir.next = seq;
            dir.rseq = seq;
        }
        if dir.sync == Sync::Synced && before(dir.next, seq) {
            // A hole before this segment: hold it until it is filled.
            dir.ooo.push(Ooo {
                unit: id,
                seq,
                at: ps,
                len,
                flags: seg.flags,
            });
            let base = dir.next;
            dir.ooo.sort_by_key(|o| o.seq.wrapping_sub(base));
            if let Some(h) = self.held_mut(id) {
                h.waits += 1;
            }
            return;
        }
        self.bytes(ckey, d, id, seq, ps, len, washer);
        if seg.flags & FIN != 0 {
            self.fin(ckey, d, seq.wrapping_add(len as u32), washer);
        }
        self.drain_ooo(ckey, d, washer);
    }

    /// Out-of-order segments that have become in order.
    fn drain_ooo(&mut self, ckey: FlowKey, d: usize, washer: &mut Washer) {
        loop {
            let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
                return;
            };
            let Some(first) = dir.ooo.first().copied() else {
                return;
            };
            if dir.sync == Sync::Synced && before(dir.next, first.seq) {
                return;
            }
            dir.ooo.remove(0);
            if dir.sync == Sync::Hunting && before(dir.next, first.seq) {
                dir.next = first.seq;
            }
            self.bytes(ckey, d, first.unit, first.seq, first.at, first.len, washer);
            if first.flags & FIN != 0 {
                self.fin(ckey, d, first.seq.wrapping_add(first.len as u32), washer);
            }
            self.unwait(first.unit);
        }
    }

    /// Give up the hole before the oldest out-of-order segment (or before
    /// what the peer acknowledged): the current message is dropped and the
    /// framing is searched again.
    fn give_up_gap(&mut self, ckey: FlowKey, d: usize, washer: &mut Washer) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        if !dir.msg.is_empty() {
            if dir.tentative {
                dir.poisoned.get_or_insert(UNSYNCED);
                self.resolve_msg_dropped(ckey, d);
            } else if dir.poisoned.is_some() {
                self.resolve_msg_dropped(ckey, d);
            } else {
                // The rest of the message is not in the capture (a later
                // copy of it would be dropped): walk what is there, as a
                // message cut by the snapshot length.
                self.complete(ckey, d, false, washer);
            }
        }
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        dir.msg.clear();
        dir.pieces.clear();
        dir.poisoned = None;
        dir.tentative = false;
        dir.sync = Sync::Hunting;
        if let Some(f) = dir.ooo.first() {
            dir.next = f.seq;
        }
        self.drain_ooo(ckey, d, washer);
    }

    /// A segment cut by the snapshot length.
    fn cut_segment(&mut self, ckey: FlowKey, d: usize, id: u64, seq: u32, washer: &mut Washer) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        let at_start = dir.sync == Sync::Synced && dir.msg.is_empty() && dir.next == seq;
        if !at_start {
            if let Some(h) = self.held_mut(id) {
                h.drop.get_or_insert(CUT);
            }
        }
        self.give_up_gap(ckey, d, washer);
        if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            dir.sync = Sync::None;
        }
    }

    /// New or repeated bytes `[seq, seq + len)` of a segment (unit `id`,
    /// payload at `at`).
    #[allow(clippy::too_many_arguments)]
    fn bytes(
        &mut self,
        ckey: FlowKey,
        d: usize,
        id: u64,
        seq: u32,
        at: usize,
        len: usize,
        washer: &mut Washer,
    ) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        let old = if before(seq, dir.next) {
            (dir.next.wrapping_sub(seq) as usize).min(len)
        } else {
            0
        };
        if dir.sync == Sync::Hunting && before(dir.next, seq) {
            dir.next = seq;
        }
        if old > 0 {
            self.repeated(ckey, d, id, seq, at, old);
        }
        if old == len {
            return;
        }
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        if dir.sync == Sync::Hunting {
            if old > 0 {
                // Framing cannot start inside a segment.
                dir.next = seq.wrapping_add(len as u32);
                dir.rseq = dir.next;
                dir.orig.clear();
                dir.washed.clear();
                if let Some(h) = self.held_mut(id) {
                    h.drop.get_or_insert(UNSYNCED);
                }
                return;
            }
            let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
                return;
            };
            dir.sync = Sync::Synced;
            dir.tentative = true;
            dir.msg.clear();
            dir.rseq = dir.next;
            dir.orig.clear();
            dir.washed.clear();
        }
        self.consume(ckey, d, id, at + old, len - old, washer);
    }

    /// Bytes before the next expected one: compare with what was first seen
    /// and rewrite them alike.
    fn repeated(&mut self, ckey: FlowKey, d: usize, id: u64, seq: u32, at: usize, n: usize) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        let qi = usize::try_from(id.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let Some(h) = self.queue.get_mut(qi) else {
            return;
        };
        if dir.sync == Sync::Hunting {
            // Nothing is known about bytes before the search point.
            if h.drop.is_none() {
                h.drop = Some(UNSYNCED);
            }
            return;
        }
        // A retransmission of the last segment of a message written at
        // another length, byte for byte: rewritten as that segment was.
        if let Some((start, orig, new)) = dir.resized.as_ref() {
            let ends = h
                .seg
                .as_ref()
                .zip(h.pkt.as_ref())
                .is_some_and(|(s, p)| p.start + s.payload.end == at + n);
            if seq == *start && n == orig.len() && ends && h.unit.get(at..at + n) == Some(orig) {
                let new = new.clone();
                let done = match (h.seg.as_ref(), h.pkt.clone()) {
                    (Some(seg), Some(pkt)) => resized_unit(&h.unit, pkt, seg, at, &new),
                    _ => None,
                };
                match done {
                    Some((nu, pkt, end)) => {
                        self.held_bytes = (self.held_bytes + nu.len()).saturating_sub(h.unit.len());
                        set_unit(h, nu, pkt, end);
                    }
                    None => {
                        h.drop.get_or_insert(crate::revwash::LENGTH);
                    }
                }
                return;
            }
        }
        let mseq = dir.msg_seq();
        let mut k = 0;
        while k < n {
            let s = seq.wrapping_add(k as u32);
            if !before(s, mseq) {
                // Inside the current message: one more holder of its bytes.
                let moff = s.wrapping_sub(mseq) as usize;
                let cnt = (n - k).min(dir.msg.len() - moff);
                let same = h.unit.get(at + k..at + k + cnt) == dir.msg.get(moff..moff + cnt);
                if !same {
                    h.drop.get_or_insert(CONFLICT);
                    return;
                }
                dir.pieces.push(Pc {
                    unit: id,
                    at: at + k,
                    moff,
                    len: cnt,
                });
                if dir.waiting.last() != Some(&id) {
                    dir.waiting.push(id);
                    h.waits += 1;
                }
                k += cnt;
                continue;
            }
            if before(s, dir.rseq) {
                h.drop.get_or_insert(STALE);
                return;
            }
            let roff = s.wrapping_sub(dir.rseq) as usize;
            let cnt = (n - k).min(mseq.wrapping_sub(s) as usize);
            if roff + cnt > dir.orig.len() {
                h.drop.get_or_insert(STALE);
                return;
            }
            let Some(cur) = h.unit.get(at + k..at + k + cnt) else {
                // Fail closed: bytes that cannot be checked are not written.
                h.drop.get_or_insert(UNPARSED);
                return;
            };
            if !cur
                .iter()
                .zip(dir.orig.range(roff..roff + cnt))
                .all(|(a, b)| a == b)
            {
                h.drop.get_or_insert(CONFLICT);
                return;
            }
            let new: Vec<u8> = dir.washed.range(roff..roff + cnt).copied().collect();
            packet::patch_covered(&mut h.unit, at + k, &new, h.ck, h.ck_base);
            k += cnt;
        }
    }

    /// New in-order bytes into the framing.
    fn consume(
        &mut self,
        ckey: FlowKey,
        d: usize,
        id: u64,
        mut at: usize,
        mut n: usize,
        washer: &mut Washer,
    ) {
        while n > 0 {
            let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
                return;
            };
            if dir.sync == Sync::Hunting {
                // A search failed inside this segment: framing cannot start
                // in its middle.
                dir.next = dir.next.wrapping_add(n as u32);
                dir.rseq = dir.next;
                dir.orig.clear();
                dir.washed.clear();
                if let Some(h) = self.held_mut(id) {
                    h.drop.get_or_insert(UNSYNCED);
                }
                return;
            }
            let want = match dir.msg_total() {
                Some(t) => t - dir.msg.len(),
                None => 2 - dir.msg.len(),
            };
            let take = want.min(n);
            let qi = usize::try_from(id.saturating_sub(self.base)).unwrap_or(usize::MAX);
            let Some(h) = self.queue.get_mut(qi) else {
                return;
            };
            let Some(src) = h.unit.get(at..at + take) else {
                h.drop.get_or_insert(UNPARSED);
                return;
            };
            dir.pieces.push(Pc {
                unit: id,
                at,
                moff: dir.msg.len(),
                len: take,
            });
            dir.msg.extend_from_slice(src);
            if dir.waiting.last() != Some(&id) {
                dir.waiting.push(id);
                h.waits += 1;
            }
            dir.next = dir.next.wrapping_add(take as u32);
            at += take;
            n -= take;
            if dir.msg_total() == Some(dir.msg.len()) {
                self.complete(ckey, d, true, washer);
            } else if dir.tentative && dir.waiting.len() > MAX_TENTATIVE_UNITS {
                self.fail_tentative(ckey, d, washer);
            }
        }
    }

    /// The current message is complete (or, with `!complete`, will never
    /// be): walk, wash, write back, release its segments.
    fn complete(&mut self, ckey: FlowKey, d: usize, complete: bool, washer: &mut Washer) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        let body = dir.msg.get(2..).unwrap_or(&[]);
        // With --answers, A/AAAA data are slots too.
        self.loc.answers = washer.answers;
        let ok = packet::locate_dns(body, complete, &mut self.loc).is_ok()
            && (!dir.tentative || walks_to_end(body));
        if !ok {
            if dir.tentative {
                self.fail_tentative(ckey, d, washer);
                return;
            }
            dir.poisoned
                .get_or_insert(if complete { UNPARSED } else { GAP });
            // Nothing of it is retained: a retransmission is dropped too.
            dir.next_retained();
            self.resolve_msg_dropped(ckey, d);
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&dir.msg);
        let mut changed = wash_slots(&mut self.scratch[2..], &self.loc, washer);
        // Reverse names. A complete message may change length: the last
        // segment holding it grows or shrinks and the stream's later
        // sequence numbers move (see `resize_current`); otherwise, or when
        // that cannot be done, the message is dropped.
        let mut resized = false;
        // A complete message without an `arpa` label (no name site) has
        // no reverse name to rewrite.
        let names = !complete || !self.loc.names.is_empty();
        if names && washer.reverse_names == crate::revname::ReverseNames::Wash {
            let mut names = crate::revname::NameStats::default();
            match crate::revwash::rewrite_message(&self.scratch[2..], washer, &mut names) {
                Ok(None) => {}
                Ok(Some(new)) if new.len() + 2 == self.scratch.len() => {
                    self.scratch[2..].copy_from_slice(&new);
                    changed = true;
                }
                Ok(Some(new)) if complete && self.resize_current(ckey, d, &new) => {
                    resized = true;
                    changed = true;
                }
                Ok(Some(_)) | Err(_) => {
                    let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
                        return;
                    };
                    dir.poisoned.get_or_insert(crate::revwash::LENGTH);
                    dir.next_retained();
                    self.resolve_msg_dropped(ckey, d);
                    return;
                }
            }
        }
        if changed {
            self.rewritten += 1;
        }
        let scratch = std::mem::take(&mut self.scratch);
        if changed && !resized {
            let Some(dir) = self.flows.get(&ckey).map(|f| &f.dirs[d]) else {
                return;
            };
            for p in &dir.pieces {
                let Some(qi) = p
                    .unit
                    .checked_sub(self.base)
                    .and_then(|i| usize::try_from(i).ok())
                else {
                    continue;
                };
                if let (Some(h), Some(new)) =
                    (self.queue.get_mut(qi), scratch.get(p.moff..p.moff + p.len))
                {
                    packet::patch_covered(&mut h.unit, p.at, new, h.ck, h.ck_base);
                }
            }
        }
        self.retain_current(ckey, d, Some(&scratch));
        self.scratch = scratch;
        let poisoned = self.flows.get(&ckey).and_then(|f| f.dirs[d].poisoned);
        if poisoned.is_some() {
            self.resolve_msg_dropped(ckey, d);
        } else {
            self.resolve_msg_ok(ckey, d);
        }
    }

    /// A message found by searching is not DNS: drop the first segment
    /// that holds it and search again from the next one, feeding the bytes
    /// held so far through the framing once more.
    fn fail_tentative(&mut self, ckey: FlowKey, d: usize, washer: &mut Washer) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        let mseq = dir.msg_seq();
        let mut pieces = std::mem::take(&mut dir.pieces);
        let waiting = std::mem::take(&mut dir.waiting);
        dir.msg.clear();
        dir.tentative = false;
        dir.poisoned = None;
        dir.sync = Sync::Hunting;
        dir.next_retained();
        let first = pieces.first().map(|p| p.unit);
        if let Some(u) = first {
            if let Some(h) = self.held_mut(u) {
                h.drop.get_or_insert(UNSYNCED);
            }
        }
        for u in &waiting {
            self.unwait(*u);
        }
        // New bytes of the later segments, in stream order, once each.
        pieces.retain(|p| Some(p.unit) != first);
        pieces.sort_by_key(|p| p.moff);
        let mut fed = pieces.first().map_or(0, |p| p.moff);
        if let (Some(dir), Some(p)) = (
            self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]),
            pieces.first(),
        ) {
            dir.next = mseq.wrapping_add(p.moff as u32);
            dir.next_retained();
        }
        for p in pieces {
            if p.moff + p.len <= fed {
                // A repeated copy of bytes fed again: its rewrite is not
                // known any more.
                if let Some(h) = self.held_mut(p.unit) {
                    h.drop.get_or_insert(UNSYNCED);
                }
                continue;
            }
            let skip = fed.saturating_sub(p.moff);
            let seq = mseq.wrapping_add((p.moff + skip) as u32);
            self.bytes(ckey, d, p.unit, seq, p.at + skip, p.len - skip, washer);
            fed = p.moff + p.len;
        }
    }

    /// Move the current message into the retained bytes (`washed`: its
    /// bytes as written; None: as received).
    fn retain_current(&mut self, ckey: FlowKey, d: usize, washed: Option<&[u8]>) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        if washed.is_some_and(|w| w.len() != dir.msg.len()) {
            // Written at another length: bytes of it seen again cannot be
            // rewritten alike, so none is retained (a retransmission is
            // dropped, `tcp_dns_stale`).
            dir.next_retained();
            return;
        }
        let expect = dir.msg_seq();
        if dir.rseq.wrapping_add(dir.orig.len() as u32) != expect {
            dir.orig.clear();
            dir.washed.clear();
            dir.rseq = expect;
        }
        dir.orig.extend(dir.msg.iter().copied());
        match washed {
            Some(w) => dir.washed.extend(w.iter().copied()),
            None => dir.washed.extend(dir.msg.iter().copied()),
        }
        let over = dir.orig.len().saturating_sub(RETAIN);
        if over > 0 {
            dir.orig.drain(..over);
            dir.washed.drain(..over);
            dir.rseq = dir.rseq.wrapping_add(over as u32);
        }
    }

    fn resolve_msg_ok(&mut self, ckey: FlowKey, d: usize) {
        let waiting = match self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            Some(dir) => {
                dir.msg.clear();
                dir.pieces.clear();
                dir.tentative = false;
                dir.poisoned = None;
                std::mem::take(&mut dir.waiting)
            }
            None => return,
        };
        for u in &waiting {
            self.unwait(*u);
        }
        if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            dir.waiting = waiting;
            dir.waiting.clear();
        }
    }

    /// Drop every segment holding bytes of the current message, for its
    /// poison reason. Bytes of it still to come are dropped too (the
    /// message stays poisoned until it completes) unless it is forgotten.
    fn resolve_msg_dropped(&mut self, ckey: FlowKey, d: usize) {
        let (waiting, reason, whole) = match self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            Some(dir) => {
                let reason = dir.poisoned.unwrap_or(GAP);
                let whole = dir.msg_total() == Some(dir.msg.len())
                    || dir.sync != Sync::Synced
                    || reason == UNSYNCED
                    || reason == GAP;
                (std::mem::take(&mut dir.waiting), reason, whole)
            }
            None => return,
        };
        for u in &waiting {
            if let Some(h) = self.held_mut(*u) {
                h.drop.get_or_insert(reason);
            }
            self.unwait(*u);
        }
        if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            dir.pieces.clear();
            if whole {
                dir.msg.clear();
                dir.tentative = false;
                dir.poisoned = None;
            }
        }
    }

    /// FIN at `end`: no more bytes after it.
    fn fin(&mut self, ckey: FlowKey, d: usize, end: u32, washer: &mut Washer) {
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        if dir.sync == Sync::Synced && dir.next == end {
            self.end_dir(ckey, d, washer);
            if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
                // A retransmitted FIN is not a new byte.
                dir.next = end.wrapping_add(1);
                dir.sync = Sync::Synced;
            }
        }
    }

    /// No more bytes will come in this direction: resolve the out-of-order
    /// segments and the current message (walked as far as it goes).
    fn end_dir(&mut self, ckey: FlowKey, d: usize, washer: &mut Washer) {
        // Every hole is given up in turn: following the bytes after one may
        // stop at the next, and held segments must not outlive their flow.
        let ooo = |s: &Self| s.flows.get(&ckey).map_or(0, |f| f.dirs[d].ooo.len());
        let mut left = ooo(self);
        while left > 0 {
            self.give_up_gap(ckey, d, washer);
            let now = ooo(self);
            if now >= left {
                break;
            }
            left = now;
        }
        let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) else {
            return;
        };
        if dir.msg.is_empty() && dir.waiting.is_empty() {
            return;
        }
        if dir.poisoned.is_some() || dir.msg.len() < 2 {
            dir.poisoned.get_or_insert(GAP);
            if dir.msg.len() < 2 && dir.poisoned == Some(GAP) && !dir.tentative {
                // Only a length prefix (or part of one): nothing to hide.
                dir.poisoned = None;
                self.resolve_msg_ok(ckey, d);
                return;
            }
            self.resolve_msg_dropped(ckey, d);
            if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
                dir.msg.clear();
                dir.poisoned = None;
            }
            return;
        }
        // Walk the incomplete message as far as it goes (as a message cut
        // by the snapshot length); a tentative one cannot be checked.
        if dir.tentative {
            self.fail_tentative(ckey, d, washer);
            // What the search found next ends here too.
            self.end_dir(ckey, d, washer);
            return;
        }
        self.complete(ckey, d, false, washer);
        if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
            dir.msg.clear();
        }
    }

    /// Resolve both directions and forget the flow.
    fn end_flow(&mut self, ckey: FlowKey, washer: &mut Washer) {
        self.end_dir(ckey, 0, washer);
        self.end_dir(ckey, 1, washer);
        self.settle_shift(ckey, self.next);
        if let Some(f) = self.flows.remove(&ckey) {
            self.flow_bytes = self.flow_bytes.saturating_sub(f.mem);
        }
    }

    fn account(&mut self, ckey: FlowKey) {
        if let Some(f) = self.flows.get_mut(&ckey) {
            let m = f.dirs[0].mem() + f.dirs[1].mem();
            self.flow_bytes = self.flow_bytes.saturating_sub(f.mem) + m;
            f.mem = m;
        }
    }

    fn evict_idle(&mut self, now: u64, washer: &mut Washer) {
        let idle: Vec<FlowKey> = {
            let mut v: Vec<_> = self
                .flows
                .iter()
                .filter(|(_, f)| now.saturating_sub(f.last) > self.limits.max_idle)
                .map(|(k, _)| *k)
                .collect();
            v.sort();
            v
        };
        for k in idle {
            self.end_flow(k, washer);
            self.evicted += 1;
        }
    }

    /// Evict the flow whose stream state takes the most memory.
    fn evict_largest(&mut self, washer: &mut Washer) -> bool {
        let Some(k) = self
            .flows
            .iter()
            .max_by_key(|(k, f)| (f.mem, std::cmp::Reverse(**k)))
            .map(|(k, _)| *k)
        else {
            return false;
        };
        self.end_flow(k, washer);
        self.evicted += 1;
        true
    }

    /// Evict the least recently seen flow.
    fn evict_oldest(&mut self, washer: &mut Washer) -> bool {
        let Some(k) = self
            .flows
            .iter()
            .min_by_key(|(k, f)| (f.last, **k))
            .map(|(k, _)| *k)
        else {
            return false;
        };
        self.end_flow(k, washer);
        self.evicted += 1;
        true
    }

    // ------------------------------------------------------ length changes

    /// The current (complete) message of direction `d` becomes `new` (no
    /// length prefix), of another length. Every segment piece keeps its
    /// length except those holding the message's last byte (the first copy
    /// and any retransmission of it), which grow or shrink; those must end
    /// where their segment's payload and IP datagram end, under a link
    /// layer without a length field of its own. The IP and TCP lengths and
    /// checksums and the capture record follow, the length prefix is
    /// rewritten, and the direction's later sequence numbers (and the
    /// other direction's acknowledgements and SACK blocks) are shifted by
    /// the change. False, with nothing changed, when that cannot be done.
    fn resize_current(&mut self, ckey: FlowKey, d: usize, new: &[u8]) -> bool {
        let Ok(prefix) = u16::try_from(new.len()) else {
            return false;
        };
        let Some(flow) = self.flows.get(&ckey) else {
            return false;
        };
        let dir = &flow.dirs[d];
        let (old_total, new_total) = (dir.msg.len(), new.len() + 2);
        if dir.msg_total() != Some(old_total) {
            return false;
        }
        let mut msg = Vec::with_capacity(new_total);
        msg.extend_from_slice(&prefix.to_be_bytes());
        msg.extend_from_slice(new);
        let delta = new_total as i64 - old_total as i64;
        let mut shift = flow.shift.clone().unwrap_or_else(SeqShift::anchored);
        if shift.change(d, dir.next, delta as i32).is_err() {
            return false;
        }
        // Plan every change before making any: pieces that keep their
        // length are patched (into copies of the units that also grow),
        // then the growing pieces are resized.
        let qi_of = |u: u64| {
            u.checked_sub(self.base)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&i| i < self.queue.len())
        };
        let mut same: Vec<(usize, usize, Range<usize>)> = Vec::new();
        let mut last: Vec<(usize, usize, usize)> = Vec::new();
        for p in &dir.pieces {
            let Some(qi) = qi_of(p.unit) else {
                return false;
            };
            if p.moff + p.len < old_total {
                if p.moff + p.len > new_total {
                    return false;
                }
                same.push((qi, p.at, p.moff..p.moff + p.len));
            } else if p.moff >= new_total {
                return false;
            } else {
                last.push((qi, p.at, p.moff));
            }
        }
        if last.is_empty() {
            return false;
        }
        let mut grown: Vec<(usize, Vec<u8>, Range<usize>, usize)> = Vec::new();
        for &(qi, at, moff) in &last {
            let h = &self.queue[qi];
            let (Some(seg), Some(pkt)) = (h.seg.as_ref(), h.pkt.clone()) else {
                return false;
            };
            // It must end its segment.
            if pkt.start + seg.payload.end != at + (old_total - moff) {
                return false;
            }
            let mut u = h.unit.clone();
            for (_, a, r) in same.iter().filter(|s| s.0 == qi) {
                packet::patch_covered(&mut u, *a, &msg[r.clone()], h.ck, h.ck_base);
            }
            let Some((nu, pkt, end)) = resized_unit(&u, pkt, seg, at, &msg[moff..]) else {
                return false;
            };
            grown.push((qi, nu, pkt, end));
        }
        for (qi, at, r) in same {
            if grown.iter().any(|g| g.0 == qi) {
                continue;
            }
            let h = &mut self.queue[qi];
            packet::patch_covered(&mut h.unit, at, &msg[r], h.ck, h.ck_base);
        }
        let first = last[0];
        for (qi, nu, pkt, end) in grown {
            let h = &mut self.queue[qi];
            self.held_bytes = (self.held_bytes + nu.len()).saturating_sub(h.unit.len());
            set_unit(h, nu, pkt, end);
        }
        if let Some(f) = self.flows.get_mut(&ckey) {
            let dir = &mut f.dirs[d];
            let start = dir.msg_seq().wrapping_add(first.2 as u32);
            dir.resized = Some((start, dir.msg[first.2..].to_vec(), msg[first.2..].to_vec()));
            f.shift = Some(shift);
        }
        self.scratch = msg;
        self.resized += 1;
        true
    }

    /// Shift the held segments of flow `ckey` that came before unit
    /// `below` and forget the flow's shift (the flow ends, or a new
    /// connection starts on its ports).
    fn settle_shift(&mut self, ckey: FlowKey, below: u64) {
        let Some(shift) = self.flows.get_mut(&ckey).and_then(|f| f.shift.take()) else {
            return;
        };
        let n = usize::try_from(below.saturating_sub(self.base)).unwrap_or(usize::MAX);
        for h in self.queue.iter_mut().take(n) {
            if h.dir.is_some_and(|(k, _)| k == ckey) {
                shift_unit(h, Some(&shift));
            }
        }
    }

    // ------------------------------------------------------------- holding

    fn held_mut(&mut self, id: u64) -> Option<&mut Held> {
        let i = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.queue.get_mut(i)
    }

    fn unwait(&mut self, id: u64) {
        if let Some(h) = self.held_mut(id) {
            h.waits = h.waits.saturating_sub(1);
        }
    }

    /// Give up what the front unit waits for.
    fn resolve_front(&mut self, washer: &mut Washer) {
        let Some((ckey, d, id)) = self
            .queue
            .front()
            .and_then(|h| h.dir.map(|(k, d)| (k, d, self.base)))
        else {
            if let Some(h) = self.queue.front_mut() {
                h.waits = 0;
                h.done = true;
            }
            return;
        };
        let in_ooo = self
            .flows
            .get(&ckey)
            .is_some_and(|f| f.dirs[d].ooo.iter().any(|o| o.unit == id));
        if in_ooo {
            self.give_up_gap(ckey, d, washer);
        }
        let in_msg = self
            .flows
            .get(&ckey)
            .is_some_and(|f| f.dirs[d].waiting.contains(&id));
        if in_msg {
            if let Some(dir) = self.flows.get_mut(&ckey).map(|f| &mut f.dirs[d]) {
                dir.poisoned.get_or_insert(HOLD);
            }
            self.resolve_msg_dropped(ckey, d);
        }
        if let Some(h) = self.queue.front_mut() {
            if h.verdict().is_none() {
                // Defensive: never loop on a unit nothing releases.
                h.waits = 0;
                h.done = true;
                h.drop.get_or_insert(HOLD);
            }
        }
    }

    fn enforce_and_release(&mut self, washer: &mut Washer) {
        self.release();
        loop {
            if self.queue.is_empty() {
                if self.flow_bytes > self.limits.memory && self.evict_largest(washer) {
                    continue;
                }
                return;
            }
            let over = self.next - self.base > self.limits.max_span
                || self.queue.len() > self.limits.max_held_units
                || self.held_bytes + self.flow_bytes > self.limits.memory;
            if !over {
                return;
            }
            if self.held_bytes <= self.limits.memory / 2
                && self.flow_bytes > self.limits.memory / 2
                && self.flows.len() > 1
            {
                self.evict_largest(washer);
            } else {
                self.resolve_front(washer);
            }
            self.release();
        }
    }

    fn release(&mut self) {
        while let Some(v) = self.queue.front().and_then(|h| h.verdict()) {
            let Some(mut h) = self.queue.pop_front() else {
                break;
            };
            if v == Verdict::Write {
                let shift = h
                    .dir
                    .and_then(|(k, _)| self.flows.get(&k))
                    .and_then(|f| f.shift.as_ref());
                shift_unit(&mut h, shift);
            }
            self.base += 1;
            self.held_bytes = self.held_bytes.saturating_sub(h.unit.len());
            self.ready.push(Released {
                unit: h.unit,
                pkt: h.pkt,
                frag: h.frag,
                verdict: v,
            });
        }
    }
}

/// The unit `unit` (of held segment `seg`, packet at `pkt`) with the
/// payload from absolute offset `at` to its end replaced by `new`: the new
/// unit, packet range and payload end (relative to the packet).
fn resized_unit(
    unit: &[u8],
    pkt: Range<usize>,
    seg: &TcpSeg,
    at: usize,
    new: &[u8],
) -> Option<(Vec<u8>, Range<usize>, usize)> {
    let bytes = unit.get(pkt.clone())?;
    let np = packet::resize_tcp(bytes, seg, at.checked_sub(pkt.start)?, new).ok()?;
    let end = (seg.payload.end + np.len()).checked_sub(bytes.len())?;
    let nu = crate::revwash::resize_unit(unit, pkt.clone(), &np)?;
    Some((nu, pkt.start..pkt.start + np.len(), end))
}

fn set_unit(h: &mut Held, unit: Vec<u8>, pkt: Range<usize>, end: usize) {
    if let Some(seg) = h.seg.as_mut() {
        seg.payload.end = end;
    }
    h.unit = unit;
    h.pkt = Some(pkt);
}

/// Rewrite a held segment's sequence and acknowledgement numbers and SACK
/// blocks by its flow's shift, once.
fn shift_unit(h: &mut Held, shift: Option<&SeqShift>) {
    if h.shifted {
        return;
    }
    h.shifted = true;
    let (Some(shift), Some(seg), Some(pkt), Some((_, d))) =
        (shift, h.seg.as_ref(), h.pkt.clone(), h.dir)
    else {
        return;
    };
    if let Some(p) = h.unit.get_mut(pkt) {
        shift.apply(p, seg, d);
    }
}

/// Drop retained bytes the peer acknowledged: they are not retransmitted.
fn trim_acked(dir: &mut Dir, ack: u32) {
    if !before(dir.rseq, ack) {
        return;
    }
    let n = (ack.wrapping_sub(dir.rseq) as usize).min(dir.orig.len());
    // Keep a little for keep-alive probes and spurious retransmissions.
    let n = n.saturating_sub(64);
    if n > 0 {
        dir.orig.drain(..n);
        dir.washed.drain(..n);
        dir.rseq = dir.rseq.wrapping_add(n as u32);
    }
}

/// Wash the DNS slots and EDNS identifiers `loc` found in message `m`, in
/// place. True when a byte changed.
fn wash_slots(m: &mut [u8], loc: &Located, washer: &mut Washer) -> bool {
    let mut changed = false;
    for s in &loc.slots {
        let n = s.len as usize;
        let Some(bytes) = m.get_mut(s.offset..s.offset + n) else {
            continue;
        };
        let v6 = s.family == packet::Family::V6;
        let full = s.family.bytes();
        let mut new = [0u8; 16];
        new[..n].copy_from_slice(bytes);
        if n == full && s.prefix_bits as usize == full * 8 && s.origin != Origin::TeredoOrigin {
            if v6 {
                let a = u128::from_be_bytes(new);
                new = washer.wash_v6(a, s.side).to_be_bytes();
            } else {
                let a = u32::from_be_bytes([new[0], new[1], new[2], new[3]]);
                new[..4].copy_from_slice(&washer.wash_v4(a, s.side).to_be_bytes());
            }
        } else {
            let bits = s.prefix_bits.min((n * 8) as u8);
            washer.wash_prefix(&mut new[..n], v6, bits, s.side);
        }
        if new[..n] != *bytes {
            bytes.copy_from_slice(&new[..n]);
            changed = true;
        }
    }
    // EDNS client identifiers (cookies, MAC and device options), as the
    // per-packet path washes them.
    if washer.ids.active() {
        for f in &loc.fields {
            if let Some(b) = m.get_mut(f.range()) {
                let old = b.to_vec();
                crate::edns::wash_id(f.kind, b, washer);
                changed |= *b != old[..];
            }
        }
    }
    changed
}

/// The message walks as DNS exactly to its end, with at least one
/// question or record: the test for a message found by searching.
fn walks_to_end(m: &[u8]) -> bool {
    let u16_at = |at: usize| m.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (Some(qd), Some(an), Some(ns), Some(ar)) = (u16_at(4), u16_at(6), u16_at(8), u16_at(10))
    else {
        return false;
    };
    if qd as usize + an as usize + ns as usize + ar as usize == 0 {
        return false;
    }
    let mut at = 12;
    for _ in 0..qd {
        let Ok(a) = dns::skip_name(m, at) else {
            return false;
        };
        at = a + 4;
    }
    for _ in 0..an as usize + ns as usize + ar as usize {
        let Ok(a) = dns::skip_name(m, at) else {
            return false;
        };
        let Some(rdlen) = u16_at(a + 8) else {
            return false;
        };
        at = a + 10 + rdlen as usize;
    }
    at == m.len()
}

#[cfg(test)]
mod tests;
