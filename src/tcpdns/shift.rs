//! Sequence-number offsets of a TCP connection whose DNS messages change
//! length (a rewritten name that is longer or shorter than the original).
//!
//! When a message of one direction grows or shrinks by `delta` bytes, every
//! later byte of that direction moves: its sequence numbers, and the
//! acknowledgement numbers and SACK blocks the other direction sends about
//! them, must move with it, or a receiver (and tshark's TCP analysis) sees
//! holes and overlaps that were not there. [`SeqShift`] records the
//! changes of both directions and rewrites a segment's header to match,
//! updating its checksum incrementally (RFC 1624: a wrong checksum stays
//! exactly as wrong).
//!
//! Offsets are kept relative to each direction's first sequence number,
//! so sequence numbers may wrap; one direction may carry up to 4 GiB.
//!
//! A change at original stream offset `at` moves every byte at `at` or
//! later; an acknowledgement of `at` (everything before it received) moves
//! with it. [`SeqShift::inverse`] gives the shift that undoes one: applying
//! both gives back the original header bytes.

use crate::packet::{self, TcpSeg};

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShiftError {
    /// A change before an earlier one (changes come in stream order).
    #[error("length change out of stream order")]
    OutOfOrder,
    /// A shrink removing bytes before its own position.
    #[error("length change removes more bytes than precede it")]
    TooShort,
}

/// The changes of one direction: `(offset, cumulative delta from there)`,
/// sorted by offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Steps(Vec<(u32, i64)>);

impl Steps {
    fn total_at(&self, off: u32) -> i64 {
        let i = self.0.partition_point(|s| s.0 <= off);
        if i == 0 {
            0
        } else {
            self.0[i - 1].1
        }
    }
}

/// Sequence offsets of both directions of one connection. Direction 0 and
/// 1 are the caller's (for example [`crate::tcpdns`]'s canonical order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqShift {
    isn: [u32; 2],
    steps: [Steps; 2],
    /// `isn[d]` was given; otherwise the first change of direction `d` sets
    /// it.
    fixed: [bool; 2],
}

impl SeqShift {
    /// No change yet; `isn[d]` is the first sequence number of direction
    /// `d` (any number before every byte that will be seen).
    pub fn new(isn: [u32; 2]) -> Self {
        SeqShift {
            isn,
            steps: [Steps::default(), Steps::default()],
            fixed: [true; 2],
        }
    }

    /// No change yet, and no first sequence number known (a capture that
    /// starts mid-stream): each direction's origin is set by its first
    /// change to half the sequence space before it, so bytes up to 2 GiB
    /// before that change (retransmissions) map unchanged and the stream
    /// may carry 2 GiB after it.
    pub fn anchored() -> Self {
        SeqShift {
            isn: [0; 2],
            steps: [Steps::default(), Steps::default()],
            fixed: [false; 2],
        }
    }

    /// True when no change was recorded.
    pub fn is_identity(&self) -> bool {
        self.steps.iter().all(|s| s.0.iter().all(|x| x.1 == 0))
    }

    /// Direction `d`'s bytes from original sequence number `at` on move by
    /// `delta` (positive: the message before them grew).
    pub fn change(&mut self, d: usize, at: u32, delta: i32) -> Result<(), ShiftError> {
        if !self.fixed[d] && self.steps[d].0.is_empty() {
            self.isn[d] = at.wrapping_sub(1 << 31);
            self.fixed[d] = true;
        }
        let off = at.wrapping_sub(self.isn[d]);
        let st = &mut self.steps[d].0;
        let prev = st.last().copied().unwrap_or((0, 0));
        if off < prev.0 {
            return Err(ShiftError::OutOfOrder);
        }
        let total = prev.1 + i64::from(delta);
        // Rewritten positions keep their order.
        if i64::from(off) + total < i64::from(prev.0) + prev.1 {
            return Err(ShiftError::TooShort);
        }
        match st.last_mut() {
            Some(l) if l.0 == off => l.1 = total,
            _ => st.push((off, total)),
        }
        Ok(())
    }

    /// The new sequence number of direction `d`'s original `seq`.
    pub fn map(&self, d: usize, seq: u32) -> u32 {
        let off = seq.wrapping_sub(self.isn[d]);
        let t = self.steps[d].total_at(off);
        seq.wrapping_add(t as u32)
    }

    /// The shift that takes rewritten numbers back to the original ones.
    pub fn inverse(&self) -> SeqShift {
        let mut inv = SeqShift::new(self.isn);
        inv.fixed = self.fixed;
        for d in 0..2 {
            for &(off, total) in &self.steps[d].0 {
                // Bytes from `off` on now start at `off + total`.
                let new_off = (i64::from(off) + total) as u32;
                inv.steps[d].0.push((new_off, -total));
            }
        }
        inv
    }

    /// Rewrite the sequence number, the acknowledgement number (when ACK is
    /// set) and the SACK blocks of segment `seg` of direction `d` in `pkt`,
    /// updating its checksum incrementally. `seg` offsets are relative to
    /// `pkt`.
    pub fn apply(&self, pkt: &mut [u8], seg: &TcpSeg, d: usize) {
        if self.is_identity() {
            return;
        }
        let h = seg.header;
        let ck = seg.checksum;
        let put = |pkt: &mut [u8], at: usize, v: u32| {
            packet::patch_covered(pkt, at, &v.to_be_bytes(), ck, h);
        };
        put(pkt, h + 4, self.map(d, seg.seq));
        if seg.flags & 0x10 != 0 {
            put(pkt, h + 8, self.map(1 - d, seg.ack));
        }
        // SACK blocks (kind 5) report the other direction's bytes.
        let Some(&off) = pkt.get(h + 12) else { return };
        let end = (h + (off >> 4) as usize * 4).min(pkt.len());
        let mut o = h + 20;
        while o < end {
            match pkt[o] {
                0 => break,
                1 => {
                    o += 1;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = pkt.get(o + 1) else { break };
            let len = len as usize;
            if len < 2 || o + len > end {
                break;
            }
            if pkt[o] == 5 {
                let mut e = o + 2;
                while e + 4 <= o + len {
                    let v = u32::from_be_bytes([pkt[e], pkt[e + 1], pkt[e + 2], pkt[e + 3]]);
                    put(pkt, e, self.map(1 - d, v));
                    e += 4;
                }
            }
            o += len;
        }
    }
}
