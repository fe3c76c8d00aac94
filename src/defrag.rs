//! IP reassembly for the output side of the pipeline: "hold and release".
//!
//! # Why
//! An EDNS Client Subnet option in a fragmented UDP DNS datagram may lie in
//! a later IP fragment, or straddle two. Per-packet rewriting
//! ([`crate::packet::locate`]) cannot see it, so the original client subnet
//! would leak. [`crate::packet::locate`] therefore reports no ECS slot for
//! any packet whose outermost IP header is a fragment (it describes the
//! fragment in [`Located::frag`](crate::packet::Located::frag) instead), and
//! this module reassembles each datagram, washes the ECS addresses found in
//! the reassembled DNS message and writes the new bytes back into whichever
//! fragments hold them. Fragments are written as fragments: nothing is
//! re-fragmented, lengths never change.
//!
//! # How it is used
//! Single thread, after the per-packet washing, in output order:
//! - a washed unit whose packet had [`FragInfo`] goes to
//!   [`Defrag::push_fragment`] (with the `FragInfo` from locating the
//!   *original* packet: the key uses the addresses before rewriting);
//! - every other unit goes to [`Defrag::push_other`] while
//!   [`Defrag::holding`] is true (or may be written directly otherwise);
//! - at the end of the input, [`Defrag::finish`].
//!
//! Every unit comes back exactly once through the `emit` callback, in input
//! order, with a [`Verdict`]: a unit after a held fragment waits until
//! everything before it is released.
//!
//! # Rules (fail closed)
//! Fragments are grouped by [`FragKey`]. A group is *complete* when the
//! fragments cover `[0, total)` without gaps, `total` being the end of the
//! fragment without "more fragments". Byte-identical duplicates (same
//! offset, length and captured bytes, as a capture on two interfaces gives)
//! are accepted and rewritten alike; any other overlap, or a disagreement
//! about the end, drops the whole group at once (`fragment_overlap`).
//!
//! A complete group is classified from the reassembled datagram (walking
//! IPv6 extension headers and AH after the fragment header):
//! - UDP or UDP-Lite with port 53 on either side: the DNS message is walked
//!   with [`crate::dns::find_ecs`]; if it cannot be walked the group is
//!   dropped (`unparsed_dns`); otherwise each ECS address is washed with
//!   [`Washer::wash_prefix`] as a client address, written back, and the UDP
//!   checksum (in whichever fragment holds it) updated incrementally
//!   (RFC 1624, byte parity relative to the UDP header). A zero UDP
//!   checksum stays zero (for IPv6 too, as in [`crate::packet`]); a UDP-Lite
//!   checksum only accounts for bytes inside its coverage.
//! - TCP with port 53: dropped (`tcp_dns_fragment`); TCP reassembly across
//!   IP fragments is not done.
//! - A tunnel that may carry DNS (IP-in-IP, IPv6-in-IP, GRE, Teredo on UDP
//!   3544, VXLAN on UDP 4789): dropped (`fragment_tunnel`): the inner
//!   packet's later bytes (DNS, ICMP quotes) are only in later fragments.
//! - A datagram whose headers cannot be followed: dropped
//!   (`fragment_malformed`).
//! - Anything else: released unchanged.
//!
//! If a fragment of a complete group was cut by the capture's snapshot
//! length, the datagram cannot be walked; the group is judged from its
//! first fragment alone: released when that shows a non-DNS datagram,
//! dropped otherwise (`fragment_cut`, or the tunnel/TCP reasons above).
//!
//! A group that is never completed (end of input, or a limit of
//! [`DefragLimits`] reached while it is the oldest held group) is released
//! when its first fragment was seen and shows a non-DNS datagram (the same
//! classification, from the first fragment's bytes), and dropped otherwise
//! (`fragment_incomplete`; tunnel and TCP DNS keep their own reasons): a
//! missing first fragment means we cannot know what the others hold.
//!
//! Units that failed [`crate::packet::locate`] carry no `FragInfo`; the
//! pipeline decides about them before they get here.
//!
//! Known limits: fragments inside tunnels are refused by
//! [`crate::packet::locate`] (`tunnelled_fragment`), not reassembled. The
//! DNS role of addresses in non-first fragments is not known per packet
//! (they are `Unknown`, so always rewritten); with `--scope clients` a
//! server address is therefore rewritten in later fragments but kept in the
//! first.

use std::collections::{HashMap, VecDeque};
use std::io;

use crate::dns::{self, EcsField};
use crate::packet::{Family, FragInfo, FragKey};
use crate::wash::{Side, Washer};

/// How much the reassembler may hold before it gives up on the oldest group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Units (fragments and the units queued behind them) held at once.
    pub max_held_units: usize,
    /// Bytes of held units.
    pub max_held_bytes: usize,
    /// Units pushed after a group's first fragment before the group is
    /// resolved as incomplete.
    pub max_span: u64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_held_units: 65536,
            max_held_bytes: 64 << 20,
            max_span: 10_000,
        }
    }
}

/// What to do with a released unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it (possibly with rewritten ECS bytes).
    Write,
    /// Drop it, for this reason (one of [`Defrag::REASONS`]).
    Drop(&'static str),
}

/// Most fragments one group may have (a 64 KiB datagram in 8-byte pieces,
/// plus some duplicates); more resolve the group as incomplete.
const MAX_PIECES: usize = 8448;

const OVERLAP: &str = "fragment_overlap";
const INCOMPLETE: &str = "fragment_incomplete";
const CUT: &str = "fragment_cut";
const TUNNEL: &str = "fragment_tunnel";
const MALFORMED: &str = "fragment_malformed";
const TCP_DNS: &str = "tcp_dns_fragment";
const UNPARSED: &str = "unparsed_dns";

/// One held unit.
struct Held {
    unit: Vec<u8>,
    /// The group of a pending fragment.
    key: Option<FragKey>,
    verdict: Option<Verdict>,
}

/// One fragment of a group.
#[derive(Debug, Clone, Copy)]
struct Piece {
    seq: u64,
    /// Offset in the unit of the first fragment payload byte.
    at: usize,
    /// Fragment offset in the datagram.
    offset: u32,
    /// Claimed payload length.
    len: u32,
    /// Captured payload bytes (`<= len`).
    cap: u32,
    /// Offsets in the unit of the packet and of its IP header.
    pkt: (usize, usize),
    ip: usize,
}

impl Piece {
    fn end(&self) -> u64 {
        self.offset as u64 + self.len as u64
    }
    fn cut(&self) -> bool {
        self.cap < self.len
    }
}

#[derive(Default)]
struct Group {
    /// Sorted by (offset, len); any two are disjoint or identical duplicates.
    pieces: Vec<Piece>,
    /// End of the fragment without "more fragments".
    total: Option<u64>,
    /// Greatest end of any piece.
    max_end: u64,
    /// Sum of the lengths of distinct pieces.
    covered: u64,
}

/// What a datagram holds, as far as ECS is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Nothing that can hold DNS.
    Other,
    /// UDP (or UDP-Lite) with port 53; UDP header at this datagram offset.
    UdpDns { udp: usize, lite: bool },
    /// TCP with port 53.
    TcpDns,
    /// A tunnel that may carry DNS.
    Tunnel,
    /// The headers end before the transport ports, or are malformed.
    Unknown,
}

/// The transport protocol of a datagram (or its first bytes) and the
/// offset of its header, after IPv6 extension headers and AH.
fn transport(mut proto: u8, v6: bool, d: &[u8]) -> Option<(u8, usize)> {
    let mut at = 0usize;
    for _ in 0..16 {
        match proto {
            0 | 43 | 60 if v6 => {
                proto = *d.get(at)?;
                at += (usize::from(*d.get(at + 1)?) + 1) * 8;
            }
            51 => {
                proto = *d.get(at)?;
                at += (usize::from(*d.get(at + 1)?) + 2) * 4;
            }
            44 if v6 => return None,
            _ => return Some((proto, at)),
        }
    }
    None
}

/// Classify a datagram (or its first bytes) by its transport header.
fn classify(mut proto: u8, v6: bool, d: &[u8], dns_ports: &[u16]) -> Class {
    let u16_at = |at: usize| d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut at = 0usize;
    for _ in 0..16 {
        match proto {
            0 | 43 | 60 if v6 => {
                let (Some(&next), Some(&hl)) = (d.get(at), d.get(at + 1)) else {
                    return Class::Unknown;
                };
                proto = next;
                at += (hl as usize + 1) * 8;
            }
            51 => {
                let (Some(&next), Some(&hl)) = (d.get(at), d.get(at + 1)) else {
                    return Class::Unknown;
                };
                proto = next;
                at += (hl as usize + 2) * 4;
            }
            // A second fragment header.
            44 if v6 => return Class::Unknown,
            17 | 136 => {
                let (Some(s), Some(t)) = (u16_at(at), u16_at(at + 2)) else {
                    return Class::Unknown;
                };
                return if crate::packet::dns_ports(s, t, dns_ports) || crate::packet::is_mdns(s, t)
                {
                    Class::UdpDns {
                        udp: at,
                        lite: proto == 136,
                    }
                } else if [3544, 4789].iter().any(|&p| p == s || p == t) {
                    Class::Tunnel
                } else {
                    Class::Other
                };
            }
            6 => {
                let (Some(s), Some(t)) = (u16_at(at), u16_at(at + 2)) else {
                    return Class::Unknown;
                };
                return if crate::packet::dns_ports(s, t, dns_ports) {
                    Class::TcpDns
                } else {
                    Class::Other
                };
            }
            4 | 41 | 47 => return Class::Tunnel,
            _ => return Class::Other,
        }
    }
    Class::Unknown
}

/// Hold-and-release reassembler; see the module documentation.
pub struct Defrag {
    limits: DefragLimits,
    queue: VecDeque<Held>,
    /// Sequence number of `queue[0]`.
    base: u64,
    /// Sequence number of the next unit.
    next: u64,
    bytes: usize,
    groups: HashMap<FragKey, Group>,
    spare: Vec<Vec<Piece>>,
    scratch: Vec<u8>,
    ecs: Vec<EcsField>,
    found: crate::edns::Found,
    /// `--dns-port`: ports classified as DNS besides 53.
    dns_ports: Vec<u16>,
    /// The payload policy of the washer last given ([`crate::payload`]).
    mode: crate::payload::Mode,
    rewritten: u64,
    /// Reverse names found and washed in reassembled datagrams.
    pub names: crate::revname::NameStats,
}

impl Defrag {
    /// Every reason a [`Verdict::Drop`] can carry.
    pub const REASONS: &'static [&'static str] = &[
        OVERLAP,
        INCOMPLETE,
        CUT,
        TUNNEL,
        MALFORMED,
        TCP_DNS,
        UNPARSED,
        crate::payload::NOT_DNS,
        crate::revwash::LENGTH,
        crate::revwash::CUT,
        crate::revwash::NONCANONICAL,
    ];

    /// The verdict on a group holding no DNS, under the payload policy:
    /// written, dropped (`--only-dns`) or written zeroed (`--zero-payload`).
    fn other(&mut self, key: FragKey) -> Verdict {
        match self.mode {
            crate::payload::Mode::Keep => Verdict::Write,
            crate::payload::Mode::OnlyDns => Verdict::Drop(crate::payload::NOT_DNS),
            crate::payload::Mode::ZeroPayload => {
                self.zero_group(key);
                Verdict::Write
            }
        }
    }

    /// `--zero-payload` for a datagram that is not DNS: zero its transport
    /// payload in every held fragment and update the transport checksum in
    /// the first fragment, when it is held, by the bytes zeroed.
    fn zero_group(&mut self, key: FragKey) {
        let Some(g) = self.groups.get(&key) else {
            return;
        };
        let pieces = g.pieces.clone();
        let v6 = key.family == Family::V6;
        // (payload start, checksum field, UDP rules, transport start), as
        // datagram offsets.
        let first = pieces.first().filter(|p| p.offset == 0).copied();
        let (start, ck, base) = match first.map(|p| self.piece_bytes(&p)) {
            Some(b) => match transport(key.protocol, v6, b) {
                Some((proto, at)) => match proto {
                    17 => (at + 8, Some((at + 6, true)), at),
                    6 => {
                        let doff = b.get(at + 12).map_or(20, |x| usize::from(x >> 4) * 4);
                        (at + doff.max(20), Some((at + 16, false)), at)
                    }
                    1 | 58 => (at + 8, Some((at + 2, false)), at),
                    _ => (at, None, at),
                },
                None => (0, None, 0),
            },
            None => (0, None, 0),
        };
        let mut sum = 0u32;
        for p in &pieces {
            let i = usize::try_from(p.seq.saturating_sub(self.base)).unwrap_or(usize::MAX);
            let Some(h) = self.queue.get_mut(i) else {
                continue;
            };
            let o = p.offset as usize;
            let from = start.max(o);
            let to = o + p.cap as usize;
            if from >= to {
                continue;
            }
            let Some(b) = h.unit.get_mut(p.at + (from - o)..p.at + (to - o)) else {
                continue;
            };
            sum += u32::from(crate::payload::word_sum(b, (from - base) % 2 == 1));
            b.fill(0);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        if let (Some((field, udp)), Some(p)) = (ck, first) {
            let i = usize::try_from(p.seq.saturating_sub(self.base)).unwrap_or(usize::MAX);
            if field + 2 <= p.cap as usize {
                if let Some(h) = self.queue.get_mut(i) {
                    crate::payload::remove_sum(&mut h.unit, p.at + field, udp, sum as u16);
                }
            }
        }
    }

    /// An empty reassembler.
    pub fn new(limits: DefragLimits) -> Self {
        Defrag {
            limits,
            queue: VecDeque::new(),
            base: 0,
            next: 0,
            bytes: 0,
            groups: HashMap::new(),
            spare: Vec::new(),
            scratch: Vec::new(),
            ecs: Vec::new(),
            found: crate::edns::Found::default(),
            dns_ports: Vec::new(),
            mode: crate::payload::Mode::Keep,
            rewritten: 0,
            names: crate::revname::NameStats::default(),
        }
    }

    /// True while units are held: every unit must then go through
    /// [`Defrag::push_fragment`] or [`Defrag::push_other`] to keep the
    /// output order.
    pub fn holding(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Datagrams whose ECS bytes were changed so far.
    pub fn rewritten(&self) -> u64 {
        self.rewritten
    }

    /// A washed unit that is an IP fragment. `unit` is the whole record as
    /// it will be written, `pkt` the packet bytes within it, `frag` what
    /// [`crate::packet::locate`] reported for the *original* packet
    /// (`frag.data` is relative to `pkt`). Released units (this one or
    /// earlier ones) are passed to `emit` in input order.
    pub fn push_fragment(
        &mut self,
        unit: Vec<u8>,
        pkt: std::ops::Range<usize>,
        frag: &FragInfo,
        washer: &mut Washer,
        emit: &mut dyn FnMut(Vec<u8>, Verdict) -> io::Result<()>,
    ) -> io::Result<()> {
        self.mode = washer.payload.mode;
        self.dns_ports.clone_from(&washer.payload.ports);
        let seq = self.next;
        let at = pkt.start.saturating_add(frag.data.start);
        let pkt_end = pkt.end.min(unit.len());
        let avail = pkt_end.saturating_sub(at);
        let cap = frag.data.len().min(avail).min(frag.len as usize) as u32;
        let piece = Piece {
            seq,
            at,
            offset: frag.offset,
            len: frag.len,
            cap,
            pkt: (pkt.start, pkt_end),
            ip: pkt.start.saturating_add(frag.ip),
        };
        self.next += 1;
        self.bytes += unit.len();
        self.queue.push_back(Held {
            unit,
            key: Some(frag.key),
            verdict: None,
        });
        match self.insert(frag.key, piece, !frag.more) {
            Insert::Overlap => self.resolve(frag.key, Some(Verdict::Drop(OVERLAP)), washer),
            Insert::Complete => self.resolve(frag.key, None, washer),
            Insert::TooMany => self.resolve_incomplete(frag.key),
            Insert::Pending => {}
        }
        self.enforce_and_release(emit)
    }

    /// Any unit that is not an IP fragment. Written at once unless units
    /// are held, in which case it waits its turn.
    pub fn push_other(
        &mut self,
        unit: Vec<u8>,
        emit: &mut dyn FnMut(Vec<u8>, Verdict) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.queue.is_empty() {
            self.base += 1;
            self.next += 1;
            return emit(unit, Verdict::Write);
        }
        self.next += 1;
        self.bytes += unit.len();
        self.queue.push_back(Held {
            unit,
            key: None,
            verdict: Some(Verdict::Write),
        });
        self.enforce_and_release(emit)
    }

    /// End of input: resolve every group still open (as incomplete) and
    /// release everything, in order.
    pub fn finish(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>, Verdict) -> io::Result<()>,
    ) -> io::Result<()> {
        self.release(emit)?;
        while !self.queue.is_empty() {
            self.resolve_front();
            self.release(emit)?;
        }
        self.groups.clear();
        Ok(())
    }

    /// Resolve the group of the front unit as incomplete. (The front is
    /// always a pending fragment: ready units are released at once.)
    fn resolve_front(&mut self) {
        if let Some(k) = self.queue.front().and_then(|h| h.key) {
            self.resolve_incomplete(k);
        }
        if let Some(h) = self.queue.front_mut() {
            // Defensive: never loop on a unit no group claims.
            if h.verdict.is_none() {
                h.verdict = Some(if h.key.is_some() {
                    Verdict::Drop(INCOMPLETE)
                } else {
                    Verdict::Write
                });
            }
        }
    }

    /// Resolve the oldest group while a limit is exceeded, then release.
    fn enforce_and_release(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>, Verdict) -> io::Result<()>,
    ) -> io::Result<()> {
        self.release(emit)?;
        loop {
            if self.queue.is_empty() {
                return Ok(());
            }
            let over = self.next - self.base > self.limits.max_span
                || self.queue.len() > self.limits.max_held_units
                || self.bytes > self.limits.max_held_bytes;
            if !over {
                return Ok(());
            }
            self.resolve_front();
            self.release(emit)?;
        }
    }

    /// Emit every ready unit at the front of the queue.
    fn release(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>, Verdict) -> io::Result<()>,
    ) -> io::Result<()> {
        while let Some(v) = self.queue.front().and_then(|h| h.verdict) {
            let Some(h) = self.queue.pop_front() else {
                break;
            };
            self.base += 1;
            self.bytes = self.bytes.saturating_sub(h.unit.len());
            emit(h.unit, v)?;
        }
        Ok(())
    }

    fn held(&self, seq: u64) -> Option<&Held> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.queue.get(i)
    }

    fn held_mut(&mut self, seq: u64) -> Option<&mut Held> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.queue.get_mut(i)
    }

    /// Captured payload bytes of a piece.
    fn piece_bytes(&self, p: &Piece) -> &[u8] {
        self.held(p.seq)
            .and_then(|h| h.unit.get(p.at..p.at + p.cap as usize))
            .unwrap_or(&[])
    }

    fn insert(&mut self, key: FragKey, p: Piece, last: bool) -> Insert {
        let mut g = match self.groups.remove(&key) {
            Some(g) => g,
            None => Group {
                pieces: self.spare.pop().unwrap_or_default(),
                ..Group::default()
            },
        };
        let r = self.insert_into(&mut g, p, last);
        if matches!(r, Insert::Overlap | Insert::TooMany) {
            // Kept only so that the group's verdict reaches it.
            g.pieces.push(p);
        }
        self.groups.insert(key, g);
        r
    }

    fn insert_into(&self, g: &mut Group, p: Piece, last: bool) -> Insert {
        let end = p.end();
        if last {
            if g.total.is_some_and(|t| t != end) || g.max_end > end {
                return Insert::Overlap;
            }
            g.total = Some(end);
        } else if g.total.is_some_and(|t| end > t) {
            return Insert::Overlap;
        }
        let i = g
            .pieces
            .partition_point(|q| (q.offset, q.len) <= (p.offset, p.len));
        let mut duplicate = false;
        if let Some(prev) = i.checked_sub(1).and_then(|j| g.pieces.get(j)) {
            if prev.offset == p.offset && prev.len == p.len {
                if prev.cap != p.cap || self.piece_bytes(prev) != self.piece_bytes(&p) {
                    return Insert::Overlap;
                }
                duplicate = true;
            } else if prev.end() > p.offset as u64 {
                return Insert::Overlap;
            }
        }
        if let Some(next) = g.pieces.get(i) {
            if end > next.offset as u64 {
                return Insert::Overlap;
            }
        }
        if g.pieces.len() >= MAX_PIECES {
            return Insert::TooMany;
        }
        g.pieces.insert(i, p);
        g.max_end = g.max_end.max(end);
        if !duplicate {
            g.covered += p.len as u64;
        }
        match g.total {
            Some(t) if g.covered == t => Insert::Complete,
            _ => Insert::Pending,
        }
    }

    /// Set the verdict of every piece of `key`'s group and forget the group.
    fn set_verdict(&mut self, key: FragKey, v: Verdict) {
        let Some(mut g) = self.groups.remove(&key) else {
            return;
        };
        for p in &g.pieces {
            if let Some(h) = self.held_mut(p.seq) {
                h.verdict = Some(v);
                h.key = None;
            }
        }
        g.pieces.clear();
        if self.spare.len() < 64 {
            self.spare.push(g.pieces);
        }
    }

    /// The first fragment's classification, if it was seen.
    fn first_class(&self, key: FragKey) -> Option<(Class, bool)> {
        let g = self.groups.get(&key)?;
        let p = g.pieces.first().filter(|p| p.offset == 0)?;
        Some((
            classify(
                key.protocol,
                key.family == Family::V6,
                self.piece_bytes(p),
                &self.dns_ports,
            ),
            p.cut(),
        ))
    }

    /// Resolve a group that will not be completed.
    fn resolve_incomplete(&mut self, key: FragKey) {
        let v = match self.first_class(key) {
            Some((Class::Other, _)) => self.other(key),
            Some((Class::Tunnel, _)) => Verdict::Drop(TUNNEL),
            Some((Class::TcpDns, _)) => Verdict::Drop(TCP_DNS),
            _ => Verdict::Drop(INCOMPLETE),
        };
        self.set_verdict(key, v);
    }

    /// Resolve a group with the given verdict, or (None) a complete group
    /// by its contents.
    fn resolve(&mut self, key: FragKey, v: Option<Verdict>, washer: &mut Washer) {
        let v = match v {
            Some(v) => v,
            None => self.judge_complete(key, washer),
        };
        self.set_verdict(key, v);
    }

    fn judge_complete(&mut self, key: FragKey, washer: &mut Washer) -> Verdict {
        let Some(g) = self.groups.get(&key) else {
            return Verdict::Drop(INCOMPLETE);
        };
        if g.pieces.iter().any(Piece::cut) {
            return match self.first_class(key) {
                Some((Class::Other, _)) => self.other(key),
                Some((Class::Tunnel, _)) => Verdict::Drop(TUNNEL),
                Some((Class::TcpDns, _)) => Verdict::Drop(TCP_DNS),
                _ => Verdict::Drop(CUT),
            };
        }
        // Reassemble.
        let total = g.total.unwrap_or(0) as usize;
        let mut d = std::mem::take(&mut self.scratch);
        d.clear();
        d.resize(total, 0);
        for p in &g.pieces {
            let src = self.piece_bytes(p);
            if let Some(dst) = d.get_mut(p.offset as usize..p.offset as usize + src.len()) {
                dst.copy_from_slice(src);
            }
        }
        let v = match classify(key.protocol, key.family == Family::V6, &d, &self.dns_ports) {
            Class::Other => self.other(key),
            Class::Tunnel => Verdict::Drop(TUNNEL),
            Class::TcpDns => Verdict::Drop(TCP_DNS),
            Class::Unknown => Verdict::Drop(MALFORMED),
            Class::UdpDns { udp, lite } => self.wash_udp_dns(key, &mut d, udp, lite, washer),
        };
        self.scratch = d;
        v
    }

    /// Wash the ECS addresses of the DNS message in the reassembled UDP
    /// datagram `d` (UDP header at `u`) and write them back.
    fn wash_udp_dns(
        &mut self,
        key: FragKey,
        d: &mut [u8],
        u: usize,
        lite: bool,
        washer: &mut Washer,
    ) -> Verdict {
        let total = d.len();
        let Some(ulen) = d
            .get(u + 4..u + 6)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return Verdict::Drop(MALFORMED);
        };
        if u + 8 > total {
            return Verdict::Drop(MALFORMED);
        }
        let bad = ulen != 0 && (ulen < 8 || u + ulen > total);
        if bad {
            return Verdict::Drop(MALFORMED);
        }
        // (message end, checksum coverage end)
        let (mend, cov) = match (lite, ulen) {
            (_, 0) => (total, total),
            (false, l) => (u + l, u + l),
            (true, l) => (total, u + l),
        };
        let mut ecs = std::mem::take(&mut self.ecs);
        let found = d
            .get(u + 8..mend)
            .map(|m| dns::find_ecs(m, &mut ecs).is_ok())
            .unwrap_or(false);
        if !found {
            self.ecs = ecs;
            return Verdict::Drop(UNPARSED);
        }
        let mut delta = 0u32;
        let mut changed = false;
        for e in ecs.iter() {
            let at = u + 8 + e.offset;
            let n = e.len.min(16);
            let Some(cur) = d.get_mut(at..at + n) else {
                continue;
            };
            let mut new = [0u8; 16];
            new[..n].copy_from_slice(cur);
            washer.wash_prefix(&mut new[..n], e.family == 2, e.source_prefix, Side::Client);
            for (i, (&o, &nb)) in cur.iter().zip(&new[..n]).enumerate() {
                if o == nb {
                    continue;
                }
                let k = at + i;
                if k < cov {
                    let shift = if (k - u) % 2 == 0 { 8 } else { 0 };
                    delta += (0xffff - ((o as u32) << shift)) + ((nb as u32) << shift);
                }
                changed = true;
            }
            cur.copy_from_slice(&new[..n]);
            self.write_back(key, at, &new[..n]);
        }
        self.ecs = ecs;
        // EDNS identifiers and (with --answers) answer data.
        let mut found = std::mem::take(&mut self.found);
        if let Some(m) = d.get_mut(u + 8..mend) {
            let before = m.to_vec();
            let r = crate::edns::wash_message(m, washer, &mut found);
            #[cfg(test)]
            let r = if EDNS_FAILS.with(std::cell::Cell::get) {
                Err(dns::DnsError::Truncated(0))
            } else {
                r
            };
            // A message that cannot be walked for its EDNS fields may hold
            // identifiers that were not found: the datagram is dropped.
            let Ok(changed_here) = r else {
                self.found = found;
                return Verdict::Drop(UNPARSED);
            };
            if changed_here {
                for (i, (&o, &nb)) in before.iter().zip(m.iter()).enumerate() {
                    if o == nb {
                        continue;
                    }
                    let k = u + 8 + i;
                    if k < cov {
                        let shift = if (k - u) % 2 == 0 { 8 } else { 0 };
                        delta += (0xffff - ((o as u32) << shift)) + ((nb as u32) << shift);
                    }
                    changed = true;
                    self.write_back(key, k, &[nb]);
                }
            }
        }
        self.found = found;
        if washer.reverse_names == crate::revname::ReverseNames::Wash {
            // Reverse names: the same length only (fragments are never
            // re-fragmented), or the datagram is dropped.
            let mut writes = Vec::new();
            let names = &mut self.names;
            match crate::revwash::wash_datagram(d, u, mend, cov, washer, names, |k, b| {
                writes.push((k, b))
            }) {
                Ok(crate::revwash::Datagram::Same(dl)) => {
                    if !writes.is_empty() {
                        changed = true;
                        delta = u32::from(fold(delta)) + u32::from(fold(dl));
                    }
                    for (k, b) in writes {
                        self.write_back(key, k, &[b]);
                    }
                }
                Ok(crate::revwash::Datagram::Resized(new)) => {
                    if lite {
                        return Verdict::Drop(crate::revwash::LENGTH);
                    }
                    return self.resize_group(key, d, u, mend, &new, delta);
                }
                Err(r) => return Verdict::Drop(r),
            }
        }
        if changed {
            self.rewritten += 1;
            let ck = u + 6;
            if let Some(f) = d.get(ck..ck + 2) {
                let hc = u16::from_be_bytes([f[0], f[1]]);
                if lite || hc != 0 {
                    let mut nc = !fold(!hc as u32 + fold(delta) as u32);
                    if !lite && nc == 0 {
                        nc = 0xffff;
                    }
                    if nc != hc {
                        self.write_back(key, ck, &nc.to_be_bytes());
                    }
                }
            }
        }
        Verdict::Write
    }

    /// The DNS message `d[u + 8..mend]` of a reassembled UDP datagram is
    /// to become `new`, of another length (a reverse name changed length).
    /// The fragments keep their offsets and lengths except the last one
    /// (and its duplicates), which grows or shrinks with its IP length field
    /// (IPv4 header checksum updated incrementally) and its capture record.
    /// The UDP length follows and the UDP checksum is adjusted by the change
    /// of what it sums (`ecs`: the change already made to ECS bytes), so it
    /// stays as right or wrong as it was. Anything that does not fit (the
    /// message does not end the datagram, the last fragment would vanish, a
    /// length past 65,535, a record that cannot be rebuilt) drops the
    /// datagram (`reverse_name_length`).
    fn resize_group(
        &mut self,
        key: FragKey,
        d: &[u8],
        u: usize,
        mend: usize,
        new: &[u8],
        ecs: u32,
    ) -> Verdict {
        let drop = Verdict::Drop(crate::revwash::LENGTH);
        let m0 = u + 8;
        let be = |b: &[u8], at: usize| b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
        let Some(ulen) = be(d, u + 4) else {
            return drop;
        };
        if mend != d.len() || ulen == 0 || u + ulen as usize != mend {
            return drop;
        }
        let grow = |v: usize| {
            (v + new.len())
                .checked_sub(mend - m0)
                .filter(|&x| x <= 0xffff)
        };
        let Some(nulen) = grow(ulen as usize) else {
            return drop;
        };
        let mut nd = d[..m0].to_vec();
        nd.extend_from_slice(new);
        nd[u + 4..u + 6].copy_from_slice(&(nulen as u16).to_be_bytes());
        if let Some(hc) = be(d, u + 6).filter(|&c| c != 0) {
            let sum = |b: &[u8]| {
                let mut s = 0u64;
                for c in b.chunks(2) {
                    s += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
                }
                while s > 0xffff {
                    s = (s & 0xffff) + (s >> 16);
                }
                s as u32
            };
            let dl = (0xffff - u32::from(ulen)) + nulen as u32;
            let dsum = u32::from(fold(ecs)) + 2 * dl + (0xffff - sum(&d[m0..mend])) + sum(new);
            let mut nc = !fold(!hc as u32 + fold(dsum) as u32);
            if nc == 0 {
                nc = 0xffff;
            }
            nd[u + 6..u + 8].copy_from_slice(&nc.to_be_bytes());
        }
        let Some(g) = self.groups.get(&key) else {
            return drop;
        };
        let total = d.len() as u64;
        let Some(last_off) = g
            .pieces
            .iter()
            .find(|p| p.end() == total)
            .map(|p| p.offset as usize)
        else {
            return drop;
        };
        if nd.len() <= last_off {
            return drop;
        }
        let lasts: Vec<Piece> = g
            .pieces
            .iter()
            .filter(|p| p.end() == total)
            .copied()
            .collect();
        let v6 = key.family == Family::V6;
        let change = nd.len() as i64 - d.len() as i64;
        let mut units = Vec::new();
        for p in &lasts {
            let Some(h) = self.held(p.seq) else {
                return drop;
            };
            let unit = &h.unit;
            let (ps, pe) = p.pkt;
            let data_end = p.at + p.cap as usize;
            if p.offset as usize != last_off || pe > unit.len() || data_end > pe || p.ip < ps {
                return drop;
            }
            let mut pk = unit[ps..p.at].to_vec();
            pk.extend_from_slice(&nd[last_off..]);
            pk.extend_from_slice(&unit[data_end..pe]);
            let ip = p.ip - ps;
            let lf = if v6 { ip + 4 } else { ip + 2 };
            let Some(old) = be(&pk, lf) else {
                return drop;
            };
            let Some(nl) = u16::try_from(i64::from(old) + change)
                .ok()
                .filter(|_| old != 0)
            else {
                return drop;
            };
            pk[lf..lf + 2].copy_from_slice(&nl.to_be_bytes());
            if !v6 {
                let Some(hc) = be(&pk, ip + 10) else {
                    return drop;
                };
                let dl = (0xffff - u32::from(old)) + u32::from(nl);
                let nc = !fold(!hc as u32 + fold(dl) as u32);
                pk[ip + 10..ip + 12].copy_from_slice(&nc.to_be_bytes());
            }
            let Some(nu) = crate::revwash::resize_unit(unit, ps..pe, &pk) else {
                return drop;
            };
            units.push((p.seq, nu));
        }
        // The other fragments keep their place and length.
        self.write_back(key, 0, &nd[..last_off]);
        for (seq, nu) in units {
            let old = self.held(seq).map_or(0, |h| h.unit.len());
            self.bytes = (self.bytes + nu.len()).saturating_sub(old);
            if let Some(h) = self.held_mut(seq) {
                h.unit = nu;
            }
        }
        self.rewritten += 1;
        Verdict::Write
    }

    /// Write `bytes` at datagram offset `at` into every fragment (and
    /// duplicate) of `key`'s group that holds them.
    fn write_back(&mut self, key: FragKey, at: usize, bytes: &[u8]) {
        let Some(g) = self.groups.get(&key) else {
            return;
        };
        for p in &g.pieces {
            let (o, c) = (p.offset as usize, p.cap as usize);
            for (i, &b) in bytes.iter().enumerate() {
                let k = at + i;
                if k < o || k >= o + c {
                    continue;
                }
                let i = usize::try_from(p.seq.saturating_sub(self.base)).unwrap_or(usize::MAX);
                if let Some(x) = self
                    .queue
                    .get_mut(i)
                    .and_then(|h| h.unit.get_mut(p.at + (k - o)))
                {
                    *x = b;
                }
            }
        }
    }
}

enum Insert {
    Pending,
    Complete,
    Overlap,
    TooMany,
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
thread_local! {
    /// Tests: act as if the EDNS walk of a reassembled message failed.
    static EDNS_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw IPv4 fragments (link type 228) of the UDP datagram `dg`, cut at
    /// payload offset `cut` (a multiple of 8).
    fn fragments(dg: &[u8], cut: usize) -> Vec<Vec<u8>> {
        [(0, cut, true), (cut, dg.len(), false)]
            .iter()
            .map(|&(a, b, more)| {
                let tl = (20 + b - a) as u16;
                let fw = (a / 8) as u16 | if more { 0x2000 } else { 0 };
                let mut p = vec![0x45, 0];
                p.extend(tl.to_be_bytes());
                p.extend([0, 7]);
                p.extend(fw.to_be_bytes());
                p.extend([64, 17, 0, 0, 192, 0, 2, 7, 198, 51, 100, 53]);
                p.extend(&dg[a..b]);
                p
            })
            .collect()
    }

    /// A reassembled DNS datagram whose EDNS fields cannot be walked is
    /// dropped as a whole (`unparsed_dns`), never written as it came.
    #[test]
    fn edns_walk_failure_drops_the_datagram() {
        let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        m.resize(m.len() + 24, 0);
        let mut dg = vec![0x9c, 0x40, 0, 53];
        dg.extend(((8 + m.len()) as u16).to_be_bytes());
        dg.extend([0, 0]);
        dg.extend(&m);
        let frags = fragments(&dg, 16);
        for fail in [false, true] {
            let mut w = Washer::new(crate::wash::Technique::Stateless(std::sync::Arc::new(
                crate::wash::Identity,
            )));
            let mut d = Defrag::new(DefragLimits::default());
            let mut out = Vec::new();
            let mut loc = crate::packet::Located::new();
            EDNS_FAILS.with(|c| c.set(fail));
            for f in &frags {
                crate::packet::locate(228, f, &mut loc).unwrap();
                let fi = loc.frag.clone().unwrap();
                d.push_fragment(f.clone(), 0..f.len(), &fi, &mut w, &mut |u, v| {
                    out.push((u, v));
                    Ok(())
                })
                .unwrap();
            }
            d.finish(&mut |u, v| {
                out.push((u, v));
                Ok(())
            })
            .unwrap();
            EDNS_FAILS.with(|c| c.set(false));
            let want = if fail {
                Verdict::Drop(UNPARSED)
            } else {
                Verdict::Write
            };
            assert_eq!(out.len(), 2);
            assert!(out.iter().all(|(_, v)| *v == want), "{out:?}");
        }
    }

    #[test]
    fn classify_walks_extension_headers() {
        // Destination options (8 bytes) then UDP to port 53.
        let mut d = vec![17, 0, 1, 4, 0, 0, 0, 0];
        d.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        assert_eq!(
            classify(60, true, &d, &[]),
            Class::UdpDns {
                udp: 8,
                lite: false
            }
        );
        assert_eq!(classify(60, true, &d[..9], &[]), Class::Unknown);
        assert_eq!(classify(60, false, &d, &[]), Class::Other);
        assert_eq!(classify(6, false, &[0, 53, 1, 1], &[]), Class::TcpDns);
        assert_eq!(classify(6, false, &[0, 80, 1, 1], &[]), Class::Other);
        assert_eq!(classify(47, false, &[], &[]), Class::Tunnel);
        assert_eq!(
            classify(17, false, &[0x0d, 0xd8, 0x12, 0xb5], &[]),
            Class::Tunnel
        );
        assert_eq!(classify(1, false, &[], &[]), Class::Other);
        assert_eq!(classify(44, true, &[], &[]), Class::Unknown);
    }

    #[test]
    fn push_other_without_holding_is_immediate() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut out = Vec::new();
        d.push_other(vec![1, 2, 3], &mut |u, v| {
            out.push((u, v));
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![(vec![1, 2, 3], Verdict::Write)]);
        assert!(!d.holding());
    }
}
