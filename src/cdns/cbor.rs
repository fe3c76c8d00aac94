//! Low-level CBOR helpers for the C-DNS washer.
//!
//! Three pieces:
//! - [`Walker::extent`]: a strict, allocation-reusing well-formedness check
//!   that finds where one data item ends. It tells "needs more input" apart
//!   from "malformed", which the streaming reader needs, and it rejects stray
//!   `break` bytes and bad indefinite-string chunks (minicbor's `skip` is lax
//!   about those, and without its `alloc` feature refuses indefinite items
//!   nested in definite ones).
//! - [`Seq`], [`key`], [`uint`]: walking maps and arrays with
//!   `minicbor::decode::Decoder` while remembering byte positions.
//! - [`Edits`]: splices (replace a byte range with new bytes) applied while
//!   copying a buffer out, so everything not edited is copied byte for byte.

use std::ops::Range;

use minicbor::data::Type;
use minicbor::decode::{Decoder, Error as DecError};

/// A problem at a byte position inside the buffer being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bad {
    /// Position relative to the start of the buffer.
    pub at: usize,
    /// What is wrong.
    pub msg: String,
}

impl Bad {
    pub(super) fn new(at: usize, msg: impl Into<String>) -> Self {
        Bad {
            at,
            msg: msg.into(),
        }
    }
}

impl From<DecError> for Bad {
    fn from(e: DecError) -> Self {
        Bad {
            at: e.position().unwrap_or(0),
            msg: e.to_string(),
        }
    }
}

pub(super) type PResult<T> = Result<T, Bad>;

/// Largest single CBOR string accepted (guards against absurd lengths in a
/// cut or corrupt file making the reader buffer the whole input).
pub(super) const MAX_STRING: u64 = 1 << 30;

/// Result of [`Walker::extent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Extent {
    /// The item is complete and this many bytes long.
    Done(usize),
    /// The buffer ends before the item does.
    Incomplete,
    /// The item is not well-formed CBOR.
    Bad(usize, &'static str),
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    /// A definite array or map: this many items still to come. The
    /// outermost level is `Items(1)`: the item being measured.
    Items(u64),
    /// An indefinite array or map (`None`) or string of this major type.
    Indef(Option<u8>),
}

/// Where an interrupted ([`Extent::Incomplete`]) walk stopped.
#[derive(Debug, Clone, Copy)]
struct Saved {
    /// Start of the item being measured.
    start: usize,
    /// Head of the first item not yet complete.
    at: usize,
    /// The innermost open level (its parents are on the stack).
    cur: Frame,
}

/// For each initial byte, the whole length of an integer (any argument
/// width) or of a byte string shorter than 24 bytes; 0 for anything else.
static SHORT: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x58 {
        let ai = b & 31;
        t[b] = match ai {
            0..=23 if b >= 0x40 => 1 + ai as u8,
            0..=23 => 1,
            24..=27 if b < 0x40 => 1 + (1 << (ai - 24)),
            _ => 0,
        };
        b += 1;
    }
    t
};

/// For each two bytes `b0 b1`: when `b0` is a one-byte integer (or empty
/// byte string) and `b1` starts an integer or short byte string as in
/// [`SHORT`], the length of the two items together (a map key and its
/// value, typically); else 0. Reading two items per step halves the chain
/// of dependent loads in the walk.
static PAIR: [u8; 65536] = {
    let mut t = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        let (b0, b1) = (i >> 8, i & 0xff);
        if SHORT[b0] == 1 && SHORT[b1] != 0 {
            t[i] = 1 + SHORT[b1];
        }
        i += 1;
    }
    t
};

/// The length of the two items (see [`PAIR`]) at `buf[p]` if they are
/// there and complete.
#[inline(always)]
fn pair_at(buf: &[u8], p: usize) -> Option<usize> {
    let x = buf.get(p..)?.first_chunk::<2>()?;
    let n = usize::from(PAIR[usize::from(u16::from_be_bytes(*x))]);
    (n != 0 && buf.len() - p >= n).then_some(n)
}

/// The length of the integer or short byte string at `buf[p]` if there is
/// one and it is complete.
#[inline(always)]
fn short_at(buf: &[u8], p: usize) -> Option<usize> {
    let n = usize::from(SHORT[usize::from(*buf.get(p)?)]);
    (n != 0 && buf.len() - p >= n).then_some(n)
}

/// Reusable state for [`Walker::extent`].
#[derive(Debug, Default)]
pub(super) struct Walker {
    /// Open levels outside the innermost one.
    stack: Vec<Frame>,
    saved: Option<Saved>,
}

/// Read the `N`-byte big-endian argument following the head at `p`.
#[inline(always)]
fn arg_bytes<const N: usize>(buf: &[u8], p: usize) -> Option<[u8; N]> {
    buf.get(p + 1..)?.first_chunk::<N>().copied()
}

/// The head at `buf[p]` if it has a definite argument and is complete:
/// (major type, argument, position after the head). `None` for anything
/// else, which the callers hand to the general (minicbor or walk) path.
#[inline(always)]
fn head(buf: &[u8], p: usize) -> Option<(u8, u64, usize)> {
    let b = *buf.get(p)?;
    let major = b >> 5;
    match b & 31 {
        ai @ 0..=23 => Some((major, u64::from(ai), p + 1)),
        24 => Some((major, u64::from(*buf.get(p + 1)?), p + 2)),
        25 => Some((
            major,
            u64::from(u16::from_be_bytes(arg_bytes(buf, p)?)),
            p + 3,
        )),
        26 => Some((
            major,
            u64::from(u32::from_be_bytes(arg_bytes(buf, p)?)),
            p + 5,
        )),
        27 => Some((major, u64::from_be_bytes(arg_bytes(buf, p)?), p + 9)),
        _ => None,
    }
}

/// Where the definite-length string with head at `buf[p]` ends, if it fits
/// in `buf` (and, for text, is UTF-8).
#[inline(always)]
fn string_end(buf: &[u8], major: u8, arg: u64, body: usize) -> Option<usize> {
    if arg > MAX_STRING {
        return None;
    }
    let end = body.checked_add(arg as usize)?;
    let s = buf.get(body..end)?;
    if major == 3 && !s.is_ascii() && std::str::from_utf8(s).is_err() {
        return None;
    }
    Some(end)
}

impl Walker {
    /// Find the end of the data item starting at `buf[start]`.
    pub(super) fn extent(&mut self, buf: &[u8], start: usize) -> Extent {
        self.stack.clear();
        self.saved = None;
        self.walk(buf, start, start, Frame::Items(1))
    }

    /// Like [`Walker::extent`], but when the previous call was for the same
    /// `start` and found the buffer too short, carry on from where it
    /// stopped instead of walking the item again from its start. The bytes
    /// `buf[start..]` seen by that call must be unchanged.
    pub(super) fn extent_resume(&mut self, buf: &[u8], start: usize) -> Extent {
        match self.saved.take() {
            Some(s) if s.start == start && s.at <= buf.len() => self.walk(buf, start, s.at, s.cur),
            _ => self.extent(buf, start),
        }
    }

    /// The buffer lost its first `n` bytes: shift a saved walk with it.
    pub(super) fn shift(&mut self, n: usize) {
        self.saved = self.saved.and_then(|s| {
            Some(Saved {
                start: s.start.checked_sub(n)?,
                at: s.at.checked_sub(n)?,
                cur: s.cur,
            })
        });
    }

    fn walk(&mut self, buf: &[u8], start: usize, mut p: usize, mut cur: Frame) -> Extent {
        macro_rules! incomplete {
            ($at:expr) => {{
                self.saved = Some(Saved {
                    start,
                    at: $at,
                    cur,
                });
                return Extent::Incomplete;
            }};
        }
        loop {
            // Runs of integers and short byte strings (most of a block) in
            // a map or array, up to the last item of a definite one.
            match &mut cur {
                Frame::Indef(None) => loop {
                    if let Some(n) = pair_at(buf, p) {
                        p += n;
                    } else if let Some(n) = short_at(buf, p) {
                        p += n;
                    } else {
                        break;
                    }
                },
                Frame::Items(left) => {
                    while *left > 2 {
                        let Some(n) = pair_at(buf, p) else { break };
                        p += n;
                        *left -= 2;
                    }
                    while *left > 1 {
                        let Some(n) = short_at(buf, p) else { break };
                        p += n;
                        *left -= 1;
                    }
                }
                Frame::Indef(Some(_)) => {}
            }
            let at = p;
            let Some(&b) = buf.get(p) else {
                incomplete!(at);
            };
            let major = b >> 5;
            let ai = b & 31;
            let short = usize::from(SHORT[usize::from(b)]);
            if short != 0 && !matches!(cur, Frame::Indef(Some(_))) {
                // An integer or a short byte string: no checks beyond its
                // length.
                if buf.len() - p < short {
                    incomplete!(at);
                }
                p += short;
            } else if let Frame::Indef(m) = cur {
                if b == 0xff {
                    p += 1;
                    match self.stack.pop() {
                        Some(f) => cur = f,
                        None => return Extent::Bad(at, "internal error: unbalanced walk"),
                    }
                } else if m.is_some_and(|m| major != m || ai == 31) {
                    return Extent::Bad(at, "bad chunk in indefinite-length string");
                }
            } else if b == 0xff {
                return Extent::Bad(at, "unexpected break");
            }
            if p == at {
                // Not a break or short item: one head (and string body) at
                // `at`.
                let arg = match ai {
                    0..=23 => {
                        p += 1;
                        u64::from(ai)
                    }
                    24 => {
                        let Some(x) = arg_bytes::<1>(buf, at) else {
                            incomplete!(at);
                        };
                        p += 2;
                        u64::from(x[0])
                    }
                    25 => {
                        let Some(x) = arg_bytes::<2>(buf, at) else {
                            incomplete!(at);
                        };
                        p += 3;
                        u64::from(u16::from_be_bytes(x))
                    }
                    26 => {
                        let Some(x) = arg_bytes::<4>(buf, at) else {
                            incomplete!(at);
                        };
                        p += 5;
                        u64::from(u32::from_be_bytes(x))
                    }
                    27 => {
                        let Some(x) = arg_bytes::<8>(buf, at) else {
                            incomplete!(at);
                        };
                        p += 9;
                        u64::from_be_bytes(x)
                    }
                    31 => {
                        p += 1;
                        match major {
                            0 | 1 => return Extent::Bad(at, "indefinite-length integer"),
                            2 | 3 => {
                                self.stack.push(cur);
                                cur = Frame::Indef(Some(major));
                            }
                            4 | 5 => {
                                self.stack.push(cur);
                                cur = Frame::Indef(None);
                            }
                            6 => return Extent::Bad(at, "indefinite-length tag"),
                            // 0xff, handled above.
                            _ => return Extent::Bad(at, "unexpected break"),
                        }
                        continue;
                    }
                    _ => return Extent::Bad(at, "reserved additional information"),
                };
                match major {
                    0 | 1 => {}
                    2 | 3 => {
                        if arg > MAX_STRING {
                            return Extent::Bad(at, "string longer than 1 GiB");
                        }
                        let end = p.saturating_add(arg as usize);
                        let Some(body) = buf.get(p..end) else {
                            incomplete!(at);
                        };
                        // Text must be UTF-8 (each chunk on its own), or
                        // the output would not be valid CBOR either.
                        if major == 3 && !body.is_ascii() && std::str::from_utf8(body).is_err() {
                            return Extent::Bad(at, "text string is not UTF-8");
                        }
                        p = end;
                    }
                    4 | 5 => {
                        let n = if major == 5 {
                            match arg.checked_mul(2) {
                                Some(n) => n,
                                None => return Extent::Bad(p, "map too long"),
                            }
                        } else {
                            arg
                        };
                        if n > 0 {
                            self.stack.push(cur);
                            cur = Frame::Items(n);
                            continue;
                        }
                    }
                    // The tagged item follows; the tag itself is not an item.
                    6 => continue,
                    _ => {
                        if ai == 24 && arg < 32 {
                            return Extent::Bad(at, "badly encoded simple value");
                        }
                    }
                }
            }
            // One item finished at the current level.
            while let Frame::Items(n) = &mut cur {
                *n -= 1;
                if *n != 0 {
                    break;
                }
                match self.stack.pop() {
                    Some(f) => cur = f,
                    None => return Extent::Done(p - start),
                }
            }
        }
    }

    /// Skip the (already known well-formed) item at the decoder's position.
    #[inline(always)]
    pub(super) fn skip(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let pos = d.position();
        let buf = d.input();
        if let Some(&b) = buf.get(pos) {
            let n = usize::from(SHORT[usize::from(b)]);
            if n != 0 && buf.len() - pos >= n {
                d.set_position(pos + n);
                return Ok(());
            }
        }
        self.skip_long(d)
    }

    #[inline(never)]
    fn skip_long(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let pos = d.position();
        // Integers and definite strings: no walk needed.
        if let Some((major, arg, body)) = head(d.input(), pos) {
            let end = match major {
                0 | 1 => Some(body),
                2 | 3 => string_end(d.input(), major, arg, body),
                _ => None,
            };
            if let Some(end) = end {
                d.set_position(end);
                return Ok(());
            }
        }
        self.skip_walk(d)
    }

    #[cold]
    #[inline(never)]
    fn skip_walk(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let pos = d.position();
        match self.extent(d.input(), pos) {
            Extent::Done(n) => {
                d.set_position(pos + n);
                Ok(())
            }
            Extent::Incomplete => Err(Bad::new(pos, "item runs past the end of its block")),
            Extent::Bad(at, msg) => Err(Bad::new(at, msg)),
        }
    }
}

/// Append a CBOR head (major type and argument) in its shortest form.
pub(super) fn put_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// An array or map being walked with a [`Decoder`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Seq {
    /// Position of the head.
    pub hdr: usize,
    /// Position just after the head.
    pub body: usize,
    /// Number of items (pairs, for a map), `None` when indefinite.
    pub len: Option<u64>,
    left: u64,
    /// After the walk: position where a new item would be inserted (the
    /// break byte of an indefinite sequence, else just after the last item).
    pub end: usize,
}

impl Seq {
    /// Start walking the array at the decoder's position.
    pub(super) fn array(d: &mut Decoder<'_>) -> PResult<Seq> {
        let hdr = d.position();
        if let Some(s) = Seq::fast(d, 4) {
            return Ok(s);
        }
        let len = d.array()?;
        Ok(Seq::start(hdr, d.position(), len))
    }

    /// Start walking the map at the decoder's position.
    #[inline(always)]
    pub(super) fn map(d: &mut Decoder<'_>) -> PResult<Seq> {
        if let Some(s) = Seq::fast(d, 5) {
            return Ok(s);
        }
        Seq::map_slow(d)
    }

    #[cold]
    #[inline(never)]
    fn map_slow(d: &mut Decoder<'_>) -> PResult<Seq> {
        let hdr = d.position();
        let len = d.map()?;
        Ok(Seq::start(hdr, d.position(), len))
    }

    /// An array (major 4) or map (5) head read without minicbor; `None`
    /// leaves the decoder where it was.
    #[inline(always)]
    fn fast(d: &mut Decoder<'_>, want: u8) -> Option<Seq> {
        let hdr = d.position();
        let b = *d.input().get(hdr)?;
        if b == (want << 5) | 31 {
            d.set_position(hdr + 1);
            return Some(Seq::start(hdr, hdr + 1, None));
        }
        match head(d.input(), hdr)? {
            (m, n, body) if m == want => {
                d.set_position(body);
                Some(Seq::start(hdr, body, Some(n)))
            }
            _ => None,
        }
    }

    fn start(hdr: usize, body: usize, len: Option<u64>) -> Seq {
        Seq {
            hdr,
            body,
            len,
            left: len.unwrap_or(0),
            end: body,
        }
    }

    /// True when another item (or key/value pair) follows; at the end the
    /// break byte, if any, is consumed and `end` is set.
    #[inline(always)]
    pub(super) fn next(&mut self, d: &mut Decoder<'_>) -> PResult<bool> {
        match self.len {
            Some(_) => {
                if self.left == 0 {
                    self.end = d.position();
                    Ok(false)
                } else {
                    self.left -= 1;
                    Ok(true)
                }
            }
            None => {
                let pos = d.position();
                match d.input().get(pos) {
                    Some(0xff) => {
                        self.end = pos;
                        d.set_position(pos + 1);
                        Ok(false)
                    }
                    Some(_) => Ok(true),
                    None => self.next_slow(d),
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn next_slow(&mut self, d: &mut Decoder<'_>) -> PResult<bool> {
        if d.datatype()? == Type::Break {
            self.end = d.position();
            d.set_position(self.end + 1);
            Ok(false)
        } else {
            Ok(true)
        }
    }
}

/// Read a map key: `Some` for an integer key that fits an `i64`, `None`
/// (after skipping it) for anything else.
#[inline(always)]
pub(super) fn key(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<Option<i64>> {
    let pos = d.position();
    match head(d.input(), pos) {
        Some((0, n, end)) => {
            d.set_position(end);
            Ok(i64::try_from(n).ok())
        }
        Some((1, n, end)) => {
            d.set_position(end);
            // -1 - n, when it fits an i64.
            Ok(i64::try_from(n).ok().map(|n| -1 - n))
        }
        _ => key_slow(d, w),
    }
}

#[inline(never)]
fn key_slow(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<Option<i64>> {
    match d.datatype()? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(i64::try_from(d.u64()?).ok()),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            Ok(i64::try_from(d.int()?).ok())
        }
        _ => {
            w.skip(d)?;
            Ok(None)
        }
    }
}

/// Read a map of which only unsigned-integer values under small integer
/// keys matter: `f(key, value)` is called, in order, for every key listed
/// in `fields` (key, name for errors); every other entry is skipped. Flat
/// maps go through [`flat_map`] in one pass; anything else is walked the
/// general way, where a listed key with a value that is not an unsigned
/// integer is an error naming the field.
#[inline(always)]
pub(super) fn uint_map(
    d: &mut Decoder<'_>,
    w: &mut Walker,
    fields: &[(u8, &'static str)],
    mut f: impl FnMut(u8, Uint),
) -> PResult<()> {
    const MAX: usize = 8;
    let want = fields.iter().fold(0u32, |m, &(k, _)| m | 1 << k);
    // The fast path only collects, so a map it gives up on is read once.
    let mut got = [(0u8, Uint::default()); MAX];
    let mut n = 0;
    let fast = flat_map(d.input(), d.position(), w, want, |k, u| {
        let Some(slot) = got.get_mut(n) else {
            return false;
        };
        *slot = (k, u);
        n += 1;
        true
    });
    if let Some(end) = fast {
        d.set_position(end);
        for &(k, u) in &got[..n] {
            f(k, u);
        }
        return Ok(());
    }
    let mut m = Seq::map(d)?;
    while m.next(d)? {
        let listed = key(d, w)?.and_then(|k| fields.iter().find(|&&(fk, _)| i64::from(fk) == k));
        match listed {
            Some(&(k, what)) => f(k, uint(d, what)?),
            None => w.skip(d)?,
        }
    }
    Ok(())
}

/// Fast path for the many small maps of a block (one per Q/R item): a map
/// whose keys are all unsigned integers below 24 in one byte, starting at
/// `buf[p]`. Calls `f(key, value)` for every key in `want` (bit `k` for
/// key `k`), in order; the values of other keys are skipped (walked if need
/// be). Returns the position after the map, or `None` (the caller then
/// walks the map the general way from `p`, so `f` must have no lasting
/// effect) for any other map, when a key in `want` has a value that is not
/// an unsigned integer, when `f` returns false, or when the map is not
/// complete in `buf`.
#[inline(always)]
fn flat_map(
    buf: &[u8],
    p: usize,
    w: &mut Walker,
    want: u32,
    mut f: impl FnMut(u8, Uint) -> bool,
) -> Option<usize> {
    let b = *buf.get(p)?;
    let (mut left, indef) = match b {
        0xa0..=0xb7 => (u32::from(b & 31), false),
        0xbf => (u32::MAX, true),
        _ => return None,
    };
    let mut q = p + 1;
    loop {
        if !indef {
            if left == 0 {
                return Some(q);
            }
            left -= 1;
        }
        let k = *buf.get(q)?;
        if k == 0xff && indef {
            return Some(q + 1);
        }
        if k >= 24 {
            return None;
        }
        if want & (1 << k) == 0 {
            // Key and value not wanted: skipped, in one step when short.
            if let Some(n) = pair_at(buf, q) {
                q += n;
                continue;
            }
            q += 1;
            if let Some(n) = short_at(buf, q) {
                q += n;
            } else {
                match w.extent(buf, q) {
                    Extent::Done(n) => q += n,
                    _ => return None,
                }
            }
        } else {
            q += 1;
            let (major, value, end) = head(buf, q)?;
            if major != 0 || !f(k, Uint { value, pos: q, end }) {
                return None;
            }
            q = end;
        }
    }
}

/// An unsigned integer and the byte range of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Uint {
    pub value: u64,
    pub pos: usize,
    pub end: usize,
}

/// Read an unsigned integer, remembering where it is.
#[inline(always)]
pub(super) fn uint(d: &mut Decoder<'_>, what: &str) -> PResult<Uint> {
    let pos = d.position();
    if let Some((0, value, end)) = head(d.input(), pos) {
        d.set_position(end);
        return Ok(Uint { value, pos, end });
    }
    uint_slow(d, what)
}

#[cold]
#[inline(never)]
fn uint_slow(d: &mut Decoder<'_>, what: &str) -> PResult<Uint> {
    let pos = d.position();
    match d.datatype()? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(Uint {
            value: d.u64()?,
            pos,
            end: d.position(),
        }),
        _ => Err(Bad::new(pos, format!("{what} is not an unsigned integer"))),
    }
}

/// A definite-length byte string: head position and content range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bstr {
    pub hdr: usize,
    pub start: usize,
    pub len: usize,
}

impl Bstr {
    pub(super) fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// Read a definite-length byte string if one is at the decoder's position;
/// otherwise skip the item and return `None`.
pub(super) fn bstr(d: &mut Decoder<'_>, w: &mut Walker) -> PResult<Option<Bstr>> {
    let hdr = d.position();
    if let Some((2, n, start)) = head(d.input(), hdr) {
        if let Some(end) = string_end(d.input(), 2, n, start) {
            d.set_position(end);
            return Ok(Some(Bstr {
                hdr,
                start,
                len: end - start,
            }));
        }
    }
    if d.datatype()? == Type::Bytes {
        let hdr = d.position();
        let b = d.bytes()?;
        let end = d.position();
        Ok(Some(Bstr {
            hdr,
            start: end - b.len(),
            len: b.len(),
        }))
    } else {
        w.skip(d)?;
        Ok(None)
    }
}

#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    rep: Range<usize>,
}

/// Splices to apply while copying a buffer: each replaces `start..end` of
/// the source with new bytes (an insertion when `start == end`).
#[derive(Debug, Default)]
pub(super) struct Edits {
    list: Vec<Edit>,
    arena: Vec<u8>,
}

impl Edits {
    pub(super) fn clear(&mut self) {
        self.list.clear();
        self.arena.clear();
    }

    /// Replace `start..end` with whatever `f` appends to the given buffer.
    pub(super) fn replace(&mut self, start: usize, end: usize, f: impl FnOnce(&mut Vec<u8>)) {
        let a = self.arena.len();
        f(&mut self.arena);
        let b = self.arena.len();
        self.list.push(Edit {
            start,
            end,
            rep: a..b,
        });
    }

    /// Append `src` with every edit applied to `out`. Edits are applied in
    /// position order (insertions at one position in the order they were
    /// added, after a replacement ending there). Overlapping edits are a
    /// bug in the caller and reported as an error rather than a panic.
    pub(super) fn apply(&mut self, src: &[u8], out: &mut Vec<u8>) -> PResult<()> {
        self.list.sort_by_key(|e| (e.start, e.end));
        let mut at = 0usize;
        for e in &self.list {
            if e.start < at || e.end < e.start || e.end > src.len() {
                return Err(Bad::new(e.start, "internal error: overlapping edits"));
            }
            out.extend_from_slice(&src[at..e.start]);
            out.extend_from_slice(&self.arena[e.rep.clone()]);
            at = e.end;
        }
        out.extend_from_slice(&src[at..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(b: &[u8]) -> Extent {
        Walker::default().extent(b, 0)
    }

    #[test]
    fn extent_basic() {
        assert_eq!(ext(&[0x01]), Extent::Done(1));
        assert_eq!(ext(&[0x83, 1, 2, 3, 9]), Extent::Done(4));
        assert_eq!(ext(&[0x9f, 1, 0x9f, 0xff, 0xff]), Extent::Done(5));
        assert_eq!(ext(&[0xbf, 1, 0x5f, 0x41, 0, 0xff, 0xff]), Extent::Done(7));
        assert_eq!(ext(&[0xa1, 0x20, 0xc1, 0x1a, 0, 0, 0, 1]), Extent::Done(8));
        assert_eq!(ext(&[0x82, 0x80, 0xa0]), Extent::Done(3));
    }

    #[test]
    fn extent_incomplete_at_every_cut() {
        let item = [
            0x9f, 0xa2, 0x01, 0x44, 1, 2, 3, 4, 0x20, 0x7f, 0x61, b'a', 0xff, 0x19, 1, 0, 0xff,
        ];
        assert_eq!(ext(&item), Extent::Done(item.len()));
        for cut in 0..item.len() {
            assert_eq!(ext(&item[..cut]), Extent::Incomplete, "cut {cut}");
        }
    }

    #[test]
    fn extent_resumes_after_more_input() {
        let items: [&[u8]; 4] = [
            &[
                0x9f, 0xa2, 0x01, 0x44, 1, 2, 3, 4, 0x20, 0x7f, 0x61, b'a', 0xff, 0x19, 1, 0, 0xff,
            ],
            &[
                0xbf, 1, 0x5f, 0x41, 0, 0xff, 0xc1, 0x83, 0x18, 30, 0x80, 0xa0, 0xff,
            ],
            // Malformed: the resumed walk finds the same fault.
            &[0x82, 0x01, 0x5f, 0x61, 0x41, 0xff],
            &[0x9f, 0x82, 0x00, 0x62, 0xc3, 0x28, 0xff],
        ];
        for item in items {
            let want = ext(item);
            for cut in 0..item.len() {
                // A prefix of junk before the item, then dropped.
                let mut buf = vec![0xffu8; 3];
                buf.extend_from_slice(&item[..cut]);
                let mut w = Walker::default();
                let first = w.extent(&buf, 3);
                if matches!(want, Extent::Bad(..)) && matches!(first, Extent::Bad(..)) {
                    // The fault is inside the prefix already.
                    continue;
                }
                assert_eq!(first, Extent::Incomplete, "cut {cut}");
                buf.drain(..2);
                w.shift(2);
                buf.extend_from_slice(&item[cut..]);
                let got = w.extent_resume(&buf, 1);
                let got = match got {
                    Extent::Bad(at, m) => Extent::Bad(at - 1, m),
                    g => g,
                };
                assert_eq!(got, want, "cut {cut}");
            }
        }
    }

    /// The straightforward walk this module used before the fast paths:
    /// the two must agree on every input.
    fn reference(buf: &[u8], start: usize) -> Extent {
        let mut stack: Vec<Frame> = Vec::new();
        let mut p = start;
        loop {
            let Some(&b) = buf.get(p) else {
                return Extent::Incomplete;
            };
            if b == 0xff {
                match stack.last() {
                    Some(Frame::Indef(_)) => {
                        stack.pop();
                        p += 1;
                    }
                    _ => return Extent::Bad(p, "unexpected break"),
                }
            } else {
                let major = b >> 5;
                let ai = b & 31;
                if let Some(Frame::Indef(Some(m))) = stack.last() {
                    if major != *m || ai == 31 {
                        return Extent::Bad(p, "bad chunk in indefinite-length string");
                    }
                }
                let (arg, hlen) = match ai {
                    0..=23 => (u64::from(ai), 1usize),
                    24..=27 => {
                        let n = 1usize << (ai - 24);
                        let Some(bytes) = buf.get(p + 1..p + 1 + n) else {
                            return Extent::Incomplete;
                        };
                        let v = bytes.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
                        (v, 1 + n)
                    }
                    31 => (0, 1),
                    _ => return Extent::Bad(p, "reserved additional information"),
                };
                let indef = ai == 31;
                match major {
                    0 | 1 => {
                        if indef {
                            return Extent::Bad(p, "indefinite-length integer");
                        }
                        p += hlen;
                    }
                    2 | 3 => {
                        if indef {
                            p += 1;
                            stack.push(Frame::Indef(Some(major)));
                            continue;
                        }
                        if arg > MAX_STRING {
                            return Extent::Bad(p, "string longer than 1 GiB");
                        }
                        let end = p + hlen + arg as usize;
                        let Some(body) = buf.get(p + hlen..end) else {
                            return Extent::Incomplete;
                        };
                        // Text must be UTF-8 (each chunk on its own), or
                        // the output would not be valid CBOR either.
                        if major == 3 && std::str::from_utf8(body).is_err() {
                            return Extent::Bad(p, "text string is not UTF-8");
                        }
                        p = end;
                    }
                    4 | 5 => {
                        p += hlen;
                        if indef {
                            stack.push(Frame::Indef(None));
                            continue;
                        }
                        let n = if major == 5 {
                            match arg.checked_mul(2) {
                                Some(n) => n,
                                None => return Extent::Bad(p, "map too long"),
                            }
                        } else {
                            arg
                        };
                        if n > 0 {
                            stack.push(Frame::Items(n));
                            continue;
                        }
                    }
                    6 => {
                        if indef {
                            return Extent::Bad(p, "indefinite-length tag");
                        }
                        // The tagged item follows; the tag itself is not an item.
                        p += hlen;
                        continue;
                    }
                    _ => {
                        if indef {
                            return Extent::Bad(p, "unexpected break");
                        }
                        if ai == 24 && arg < 32 {
                            return Extent::Bad(p, "badly encoded simple value");
                        }
                        p += hlen;
                    }
                }
            }
            // One item finished at the current level.
            loop {
                match stack.last_mut() {
                    None => return Extent::Done(p - start),
                    Some(Frame::Items(n)) => {
                        *n -= 1;
                        if *n == 0 {
                            stack.pop();
                            continue;
                        }
                        break;
                    }
                    Some(Frame::Indef(_)) => break,
                }
            }
        }
    }

    #[test]
    fn extent_matches_reference_walk() {
        let mut seed = 0x5eed_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Bytes a C-DNS block is made of, and some that are rarely valid.
        const PICK: &[u8] = &[
            0x00, 0x05, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x37, 0x38, 0x3b, 0x3f,
            0x40, 0x42, 0x44, 0x57, 0x58, 0x5f, 0x60, 0x61, 0x63, 0x7f, 0x80, 0x82, 0x98, 0x9f,
            0xa0, 0xa1, 0xa2, 0xb8, 0xbf, 0xc1, 0xd8, 0xdf, 0xf4, 0xf8, 0xf9, 0xfb, 0xfc, 0xff,
            0xc3, 0x28, b'a',
        ];
        let mut w = Walker::default();
        for _ in 0..200_000 {
            let len = 1 + (rnd() % 24) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rnd();
                    if r % 4 == 0 {
                        r as u8 >> 3
                    } else {
                        PICK[(r >> 8) as usize % PICK.len()]
                    }
                })
                .collect();
            // Often inside an indefinite map or a definite array.
            match rnd() % 3 {
                0 => buf.insert(0, 0xbf),
                1 => buf.insert(0, 0x80 | (rnd() % 6) as u8),
                _ => {}
            }
            let want = reference(&buf, 0);
            assert_eq!(w.extent(&buf, 0), want, "{buf:02x?}");
            if let Extent::Incomplete = want {
                continue;
            }
            // The same answer when the walk is resumed at any cut.
            for cut in 0..buf.len() {
                let mut w2 = Walker::default();
                if w2.extent(&buf[..cut], 0) == Extent::Incomplete {
                    assert_eq!(w2.extent_resume(&buf, 0), want, "{buf:02x?} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn extent_rejects_malformed() {
        assert!(matches!(ext(&[0xff]), Extent::Bad(0, _)));
        assert!(matches!(ext(&[0x81, 0xff]), Extent::Bad(1, _)));
        assert!(matches!(ext(&[0x1c]), Extent::Bad(..)));
        assert!(matches!(ext(&[0x5f, 0x61, 0x41, 0xff]), Extent::Bad(1, _)));
        assert!(matches!(ext(&[0x3f]), Extent::Bad(..)));
        assert!(matches!(ext(&[0xf8, 0x10]), Extent::Bad(..)));
        assert!(matches!(ext(&[0x62, 0xc3, 0x28]), Extent::Bad(0, _)));
        assert!(matches!(ext(&[0x7f, 0x61, 0xc3, 0xff]), Extent::Bad(1, _)));
        assert!(matches!(
            ext(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Extent::Bad(..)
        ));
    }

    #[test]
    fn flat_map_fast_path_and_refusals() {
        let run = |b: &[u8], want: u32| {
            let mut got = Vec::new();
            let end = flat_map(b, 0, &mut Walker::default(), want, |k, u| {
                got.push((k, u.value, u.pos, u.end));
                true
            });
            end.map(|e| (e, got))
        };
        // Indefinite: key 1 = 0x1234, key 2 = bytes, key 3 = nested map
        // (walked), key 4 = -1.
        let b = [
            0xbf, 0x01, 0x19, 0x12, 0x34, 0x02, 0x42, 9, 9, 0x03, 0xa1, 0x00, 0x9f, 0xff, 0x04,
            0x20, 0xff, 0x00,
        ];
        assert_eq!(run(&b, 0b10), Some((17, vec![(1, 0x1234, 2, 5)])));
        // Definite, with the value of a wanted key not an unsigned integer.
        let b = [0xa2, 0x00, 0x05, 0x01, 0x20];
        assert_eq!(run(&b, 0b01), Some((5, vec![(0, 5, 2, 3)])));
        assert_eq!(run(&b, 0b10), None);
        // Keys that are not small unsigned integers, not a map, cut short,
        // malformed nested value.
        assert_eq!(run(&[0xa1, 0x18, 0x18, 0x00], 0), None);
        assert_eq!(run(&[0xa1, 0x20, 0x00], 0), None);
        assert_eq!(run(&[0x81, 0x00], 0), None);
        assert_eq!(run(&[0xbf, 0x01, 0x02], 0), None);
        assert_eq!(run(&[0xa1, 0x01], 0), None);
        assert_eq!(run(&[0xa1, 0x01, 0x81, 0xff], 0), None);
        // Refused by the callback.
        let b = [0xa1, 0x00, 0x00];
        let refuse = |want| flat_map(&b, 0, &mut Walker::default(), want, |_, _| false);
        assert_eq!(refuse(1), None);
        assert_eq!(refuse(0), Some(3));
    }

    #[test]
    fn heads_are_shortest() {
        for (n, want) in [
            (0u64, vec![0x40]),
            (23, vec![0x57]),
            (24, vec![0x58, 24]),
            (256, vec![0x59, 1, 0]),
            (65536, vec![0x5a, 0, 1, 0, 0]),
            (1 << 32, vec![0x5b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut v = Vec::new();
            put_head(&mut v, 2, n);
            assert_eq!(v, want);
        }
    }

    #[test]
    fn edits_apply_in_order() {
        let src = b"abcdef";
        let mut e = Edits::default();
        e.replace(6, 6, |o| o.extend_from_slice(b"!"));
        e.replace(1, 3, |o| o.extend_from_slice(b"XYZ"));
        e.replace(3, 3, |o| o.extend_from_slice(b"-"));
        let mut out = Vec::new();
        e.apply(src, &mut out).unwrap();
        assert_eq!(out, b"aXYZ-def!");
        e.replace(2, 4, |_| {});
        assert!(e.apply(src, &mut Vec::new()).is_err());
    }
}
