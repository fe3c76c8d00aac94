//! The plain scanner: finds every IPv4 and IPv6 address in a line of text,
//! in the forms logs write them, and reports each as a span of the line.
//!
//! The line is never parsed as a whole. The scanner looks for runs of the
//! bytes an address can be made of (`0-9 a-f A-F . :`) around each `.` and
//! `:` and decides what each run is, by the rules in the module
//! documentation of [`crate::text`]. Every byte outside a reported span is
//! left to the caller to copy unchanged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// What a span holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole address. `upper`: the IPv6 text had upper-case hex digits
    /// and no lower-case ones (the replacement is written the same way).
    Addr {
        /// The address.
        addr: IpAddr,
        /// Upper-case IPv6 text.
        upper: bool,
    },
    /// A network `a.b.c.0/nn`: the span covers the address part, the
    /// `/nn` after it is left as it is.
    Prefix {
        /// Network address (host bits zero).
        net: IpAddr,
        /// Prefix length (less than the full length).
        len: u8,
        /// Upper-case IPv6 text.
        upper: bool,
    },
    /// The labels of a reverse name under `in-addr.arpa` (`n` octets,
    /// most significant last) or `ip6.arpa` (`n` nibbles); the span covers
    /// the labels without the dot before the suffix. Fewer labels than a
    /// whole address are a prefix of `8n` or `4n` bits.
    Reverse {
        /// The address or network the labels spell (missing parts zero).
        net: IpAddr,
        /// Octets (IPv4) or nibbles (IPv6) written.
        n: u8,
        /// Upper-case hex nibbles.
        upper: bool,
    },
}

/// One address found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte range in the line.
    pub span: Range<usize>,
    /// What it is.
    pub kind: Kind,
}

const RUN: u8 = 1;
const WORD: u8 = 2;
const LABEL: u8 = 4;

/// Byte classes, looked up once per byte in the scanner's inner loops.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_hexdigit() || b == b'.' || b == b':' {
            c |= RUN;
        }
        if b.is_ascii_alphanumeric() || b == b'_' {
            c |= WORD | LABEL;
        }
        if b == b'-' || b == b'/' {
            c |= LABEL;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// A byte that can be part of an address run: hex digits, `.` and `:`.
#[inline]
fn is_run(b: u8) -> bool {
    CLASS[b as usize] & RUN != 0
}

/// A byte that can be part of a DNS label in a log (RFC 2317 names use `/`).
#[inline]
fn is_label(b: u8) -> bool {
    CLASS[b as usize] & LABEL != 0
}

/// A letter, digit or `_`.
#[inline]
fn is_word(b: u8) -> bool {
    CLASS[b as usize] & WORD != 0
}

/// Parse a dotted quad: four decimal parts of 1-3 digits, each at most 255.
/// Leading zeros are accepted (some logs pad octets): they are read as
/// decimal, never octal.
pub fn parse_v4(t: &[u8]) -> Option<Ipv4Addr> {
    if t.len() < 7 || t.len() > 15 {
        return None;
    }
    let digit = |i: usize| {
        t.get(i)
            .and_then(|&c| c.is_ascii_digit().then(|| u32::from(c - b'0')))
    };
    let mut o = [0u8; 4];
    let mut i = 0;
    for (k, slot) in o.iter_mut().enumerate() {
        if k > 0 {
            if t.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut v = digit(i)?;
        i += 1;
        if let Some(d) = digit(i) {
            v = v * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + d;
                i += 1;
            }
        }
        if v > 255 {
            return None;
        }
        *slot = v as u8;
    }
    (i == t.len()).then(|| Ipv4Addr::from(o))
}

/// Parse an IPv6 address in any of RFC 4291's text forms (compressed, full,
/// dotted IPv4 tail), either case. No zone, no brackets.
///
/// The grammar is exactly that of `std`'s `Ipv6Addr::from_str` (tested
/// against it): groups of one to four hex digits, one `::` standing for at
/// least one zero group, and a dotted IPv4 tail (no leading zeros in its
/// octets) only as the last 32 bits. It is written out here because the
/// scanner calls it on every colon run of a log (times among them) and
/// the general parser costs several times more.
pub fn parse_v6(t: &[u8]) -> Option<Ipv6Addr> {
    if !Shape::of(t).may_be_v6(t.len()) {
        return None;
    }
    parse_v6_shaped(t)
}

/// What one pass over a run tells about it.
#[derive(Clone, Copy)]
struct Shape {
    colons: usize,
    double: bool,
    dotted: bool,
    /// The longest stretch between colons.
    piece: usize,
}

impl Shape {
    fn of(t: &[u8]) -> Self {
        let mut sh = Shape {
            colons: 0,
            double: false,
            dotted: false,
            piece: 0,
        };
        let mut prev = 0u8;
        let mut run = 0;
        for &c in t {
            if c == b':' {
                sh.colons += 1;
                sh.double |= prev == b':';
                sh.piece = sh.piece.max(run);
                run = 0;
            } else {
                sh.dotted |= c == b'.';
                run += 1;
            }
            prev = c;
        }
        sh.piece = sh.piece.max(run);
        sh
    }

    /// A cheap test before parsing (times like `12:34:56.789` are common):
    /// without `::` an address has seven colons, or six before a dotted
    /// tail; with one, at most eight.
    fn may_be_v6(self, len: usize) -> bool {
        (2..=45).contains(&len)
            && if self.double {
                self.colons <= 8
            } else {
                self.colons == 7 && !self.dotted || self.colons == 6 && self.dotted
            }
    }
}

/// [`parse_v6`] after its shape test.
fn parse_v6_shaped(t: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let (n_head, head_v4, mut i) = v6_groups(t, 0, &mut head);
    if n_head == 8 {
        return (i == t.len()).then(|| Ipv6Addr::from(head));
    }
    if head_v4 || t.get(i..i + 2) != Some(b"::") {
        return None;
    }
    i += 2;
    let mut tail = [0u16; 7];
    let limit = 8 - (n_head + 1);
    let (n_tail, _, end) = v6_groups(t, i, &mut tail[..limit]);
    if end != t.len() {
        return None;
    }
    let mut g = head;
    g[8 - n_tail..].copy_from_slice(&tail[..n_tail]);
    Some(Ipv6Addr::from(g))
}

/// Read up to `groups.len()` colon-separated groups from `t[i..]`; a dotted
/// IPv4 address may take the place of the last two. Returns the groups
/// read, whether an IPv4 tail ended them, and where reading stopped.
fn v6_groups(t: &[u8], mut i: usize, groups: &mut [u16]) -> (usize, bool, usize) {
    let limit = groups.len();
    for k in 0..limit {
        // After the first group, a single `:` must come before the next.
        let at = if k > 0 {
            if t.get(i) != Some(&b':') {
                return (k, false, i);
            }
            i + 1
        } else {
            i
        };
        if k + 1 < limit {
            if let Some((v4, end)) = v4_strict(t, at) {
                let o = v4.octets();
                groups[k] = u16::from_be_bytes([o[0], o[1]]);
                groups[k + 1] = u16::from_be_bytes([o[2], o[3]]);
                return (k + 2, true, end);
            }
        }
        let mut v: u16 = 0;
        let mut j = at;
        while j < t.len() && j - at < 5 {
            let Some(d) = hex_val(t[j]) else { break };
            v = (v << 4) | u16::from(d);
            j += 1;
        }
        let digits = j - at;
        if digits == 0 || digits > 4 {
            return (k, false, i);
        }
        groups[k] = v;
        i = j;
    }
    (limit, false, i)
}

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// A dotted quad at `t[i..]` as IPv6 text embeds it: four octets of one to
/// three digits, at most 255, no leading zeros. Returns it and its end.
fn v4_strict(t: &[u8], mut i: usize) -> Option<(Ipv4Addr, usize)> {
    let mut o = [0u8; 4];
    for (k, slot) in o.iter_mut().enumerate() {
        if k > 0 {
            if t.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while i < t.len() && t[i].is_ascii_digit() && i - start < 4 {
            v = v * 10 + u32::from(t[i] - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 3 || v > 255 || (digits > 1 && t[start] == b'0') {
            return None;
        }
        *slot = v as u8;
    }
    Some((Ipv4Addr::from(o), i))
}

fn upper_hex(t: &[u8]) -> bool {
    t.iter().any(|b| (b'A'..=b'F').contains(b)) && !t.iter().any(|b| (b'a'..=b'f').contains(b))
}

/// A reusable scanner.
#[derive(Debug, Default)]
pub struct Scanner {
    found: Vec<Found>,
}

impl Scanner {
    /// A scanner with an empty result list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Find the addresses in `line`, in order; the spans do not overlap.
    pub fn scan(&mut self, line: &[u8]) -> &[Found] {
        self.found.clear();
        scan_into(line, &mut self.found);
        &self.found
    }
}

/// Find the addresses in `line` and append them to `out`, in order.
///
/// Runs are found 64 bytes at a time: each block gives a bit mask of its
/// run bytes and one of its separators (`.` `:`), built 16 bytes at a time
/// with SSE2 on x86-64 and eight bytes per machine word elsewhere, and
/// every maximal run holding a separator is read off the masks with bit
/// counts. The result is exactly that of
/// [`scan_into_scalar`], which walks the bytes one at a time (the tests and
/// a fuzz target hold the two to the same answers).
pub fn scan_into(line: &[u8], out: &mut Vec<Found>) {
    let n = line.len();
    let mut base = 0usize;
    // The end of the last run read: no run starts before it.
    let mut done = 0usize;
    while base < n {
        let (run, sep) = block_masks(&line[base..]);
        let mut seps = sep;
        while seps != 0 {
            let p = seps.trailing_zeros() as usize;
            // The run's start: after the last non-run byte before `p`, or
            // further back when the run began in an earlier block.
            let below = !run & ((1u64 << p) - 1);
            let s = if below != 0 {
                base + 64 - below.leading_zeros() as usize
            } else {
                let mut s = base;
                while s > done && is_run(line[s - 1]) {
                    s -= 1;
                }
                s
            };
            // Its end: the first non-run byte from `p` on, perhaps in a
            // later block.
            let above = !run >> p;
            let e = if above != 0 {
                base + p + above.trailing_zeros() as usize
            } else {
                let mut e = base + 64;
                while e < n && is_run(line[e]) {
                    e += 1;
                }
                e
            };
            if !surely_nothing(line, s, e) {
                classify(line, s, e, out);
            }
            done = e;
            if e >= base + 64 {
                break;
            }
            seps &= u64::MAX << (e - base);
        }
        base = (base + 64).max(done);
    }
}

/// The scanner one byte at a time: the reference [`scan_into`] is held to.
#[doc(hidden)]
pub fn scan_into_scalar(line: &[u8], out: &mut Vec<Found>) {
    let mut i = 0;
    while let Some(p) = memchr::memchr2(b'.', b':', &line[i..]) {
        let p = i + p;
        let mut s = p;
        while s > i && is_run(line[s - 1]) {
            s -= 1;
        }
        let mut e = p + 1;
        while e < line.len() && is_run(line[e]) {
            e += 1;
        }
        classify(line, s, e, out);
        i = e;
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Every byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    ONES * b as u64
}

/// The high bit of each byte of `m` gathered into eight bits, byte 0 first.
#[inline]
fn gather(m: u64) -> u64 {
    ((m & HIGH) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Run and separator bits of eight bytes (little-endian word). Every sum
/// stays below 0x100 per byte, so no carry crosses bytes; bytes of 0x80
/// and above are never run bytes.
#[inline]
fn word_masks(w: u64) -> (u64, u64) {
    let ascii = !w & HIGH;
    let x = w & !HIGH;
    // 0x30..=0x3a: the digits and `:`.
    let digit = (x + splat(0x80 - 0x30)) & !(x + splat(0x80 - 0x3b));
    // a-f and A-F.
    let y = x | splat(0x20);
    let letter = (y + splat(0x80 - 0x61)) & !(y + splat(0x80 - 0x67));
    // A byte equal to c: its xor with c is zero, and adding 0x7f to a
    // seven-bit zero leaves the high bit clear.
    let dot = !((x ^ splat(b'.')) + splat(0x7f));
    let colon = !((x ^ splat(b':')) + splat(0x7f));
    let run = (digit | letter | dot) & ascii;
    let sep = (dot | colon) & ascii;
    (gather(run), gather(sep))
}

/// Run and separator masks of the first 64 bytes of `t` (bit k: byte k);
/// past the end of `t` the bits are clear.
#[inline]
fn block_masks(t: &[u8]) -> (u64, u64) {
    let mut pad = [0u8; 64];
    let blk: &[u8; 64] = match t.first_chunk::<64>() {
        Some(b) => b,
        None => {
            pad[..t.len()].copy_from_slice(t);
            &pad
        }
    };
    masks64(blk)
}

/// The masks of 64 bytes, 16 at a time with SSE2 (part of every x86-64).
#[cfg(target_arch = "x86_64")]
#[inline]
fn masks64(blk: &[u8; 64]) -> (u64, u64) {
    use safe_arch::{
        add_i8_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i,
        load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let (mut run, mut sep) = (0u64, 0u64);
    for (k, v) in blk.chunks_exact(16).enumerate() {
        let v = load_unaligned_m128i(v.try_into().unwrap_or(&[0; 16]));
        // Signed compares after a shift: 0x30..=0x3a (digits and `:`) and
        // a-f / A-F become the lowest values an i8 holds; bytes of 0x80
        // and above never do.
        let digit = cmp_lt_mask_i8_m128i(
            add_i8_m128i(v, set_splat_i8_m128i(0x50)),
            set_splat_i8_m128i(-128 + 11),
        );
        let y = bitor_m128i(v, set_splat_i8_m128i(0x20));
        let letter = cmp_lt_mask_i8_m128i(
            add_i8_m128i(y, set_splat_i8_m128i(0x1f)),
            set_splat_i8_m128i(-128 + 6),
        );
        let dot = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'.' as i8));
        let colon = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b':' as i8));
        let r = move_mask_i8_m128i(bitor_m128i(bitor_m128i(digit, letter), dot)) as u32;
        let s = move_mask_i8_m128i(bitor_m128i(dot, colon)) as u32;
        run |= u64::from(r & 0xffff) << (16 * k);
        sep |= u64::from(s & 0xffff) << (16 * k);
    }
    (run, sep)
}

/// The masks of 64 bytes, eight at a time in a machine word.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn masks64(blk: &[u8; 64]) -> (u64, u64) {
    masks64_words(blk)
}

/// The portable form of [`masks64`].
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masks64_words(blk: &[u8; 64]) -> (u64, u64) {
    let (mut run, mut sep) = (0u64, 0u64);
    for (k, w) in blk.chunks_exact(8).enumerate() {
        let (r, s) = word_masks(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        run |= r << (8 * k);
        sep |= s << (8 * k);
    }
    (run, sep)
}

/// Runs [`classify`] is sure to find nothing in, told apart before the
/// call (most runs of a log are these): a lone `.` or `:`, and a run glued
/// to a word on its left that does not start with a colon and cannot be
/// the labels of a reverse name (those end with a dot before `i`).
#[inline]
fn surely_nothing(line: &[u8], s: usize, e: usize) -> bool {
    e - s == 1
        || s > 0
            && is_word(line[s - 1])
            && line[s] != b':'
            && !(line[e - 1] == b'.' && matches!(line.get(e), Some(b'i' | b'I')))
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// Decide what the run `line[s..e]` holds.
fn classify(line: &[u8], s: usize, e: usize, out: &mut Vec<Found>) {
    let rest = &line[e..];
    // Reverse names: the run ends with a dot and the suffix follows.
    if line[e - 1] == b'.' && matches!(rest.first(), Some(b'i' | b'I')) {
        if starts_with_ci(rest, b"in-addr.arpa") && suffix_ends(&rest[12..]) {
            reverse_v4(line, s, e - 1, out);
            return;
        }
        if starts_with_ci(rest, b"ip6.arpa") && suffix_ends(&rest[8..]) {
            reverse_v6(line, s, e - 1, out);
            return;
        }
    }
    let mut a = s;
    let mut b = e;
    // A leading single colon is a separator (`client:1.2.3.4`); a leading
    // dot makes the run part of a dotted word.
    if line[a] == b'.' {
        return;
    }
    if line[a] == b':' && !(b - a >= 2 && line[a + 1] == b':') {
        a += 1;
    }
    // A run glued to a word on its left (`v1.2.3.4`, `std::`) is part of
    // that word.
    if a > 0 && is_word(line[a - 1]) {
        return;
    }
    // Trailing dots (end of a sentence, a name) and a single trailing colon
    // are separators.
    while b > a && line[b - 1] == b'.' {
        b -= 1;
    }
    if b > a && line[b - 1] == b':' && !(b - a >= 2 && line[b - 2] == b':') {
        b -= 1;
    }
    if b <= a {
        return;
    }
    // Glued to a word on its right (`1.2.3.4rc1`): not an address, unless
    // separators were trimmed in between.
    if b == e && e < line.len() && is_word(line[e]) {
        return;
    }
    let t = &line[a..b];
    // A dotted quad first: the commonest address, and a run with a colon
    // fails it within a few bytes.
    if let Some(v4) = parse_v4(t) {
        push_addr(line, a, b, b == e, IpAddr::V4(v4), false, out);
        return;
    }
    let shape = Shape::of(t);
    if shape.colons == 0 || shape.colons == t.len() {
        return;
    }
    // Two to five single colons (times like `12:34:56.789`): not an IPv6
    // address, and no `address:port` either (an IPv4 head has no colon, an
    // IPv6 one six or a `::`); only a piece of seven bytes or more could
    // still be a dotted quad.
    if !shape.double && (2..=5).contains(&shape.colons) && shape.piece < 7 {
        return;
    }
    if shape.may_be_v6(t.len()) {
        if let Some(v6) = parse_v6_shaped(t) {
            push_v6(line, a, b, b == e, v6, out);
            return;
        }
    }
    // `address:port`: a trailing `:digits` after something that is an
    // address on its own.
    if let Some(c) = t.iter().rposition(|&c| c == b':') {
        let port = &t[c + 1..];
        if !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit) && c > 0 {
            let head = &t[..c];
            if let Some(v4) = parse_v4(head) {
                push_addr(line, a, a + c, false, IpAddr::V4(v4), false, out);
                return;
            }
            if head[head.len() - 1] != b':' {
                if let Some(v6) = parse_v6(head) {
                    push_v6(line, a, a + c, false, v6, out);
                    return;
                }
            }
        }
    }
    // Fallback, on the side of privacy: any colon-separated piece of the run
    // that is a dotted quad is an IPv4 address (`dead:1.2.3.4`).
    let mut p = a;
    for piece in t.split(|&c| c == b':') {
        if piece.len() >= 7 {
            if let Some(v4) = parse_v4(piece) {
                out.push(Found {
                    span: p..p + piece.len(),
                    kind: Kind::Addr {
                        addr: IpAddr::V4(v4),
                        upper: false,
                    },
                });
            }
        }
        p += piece.len() + 1;
    }
}

/// True when a reverse-name suffix ends here (not followed by more of a label).
fn suffix_ends(rest: &[u8]) -> bool {
    rest.first().is_none_or(|&c| !(is_word(c) || c == b'-'))
}

fn push_v6(line: &[u8], a: usize, b: usize, may_prefix: bool, v6: Ipv6Addr, out: &mut Vec<Found>) {
    let t = &line[a..b];
    // IPv4-mapped with a dotted tail: the IPv4 part is an IPv4 address.
    if let (Some(v4), Some(dot)) = (v6.to_ipv4_mapped(), t.iter().position(|&c| c == b'.')) {
        let start = t[..dot]
            .iter()
            .rposition(|&c| c == b':')
            .map_or(0, |c| c + 1);
        push_addr(line, a + start, b, may_prefix, IpAddr::V4(v4), false, out);
        return;
    }
    push_addr(line, a, b, may_prefix, IpAddr::V6(v6), upper_hex(t), out);
}

/// Push an address, or a prefix when `/nn` follows with host bits zero.
fn push_addr(
    line: &[u8],
    a: usize,
    b: usize,
    may_prefix: bool,
    addr: IpAddr,
    upper: bool,
    out: &mut Vec<Found>,
) {
    if may_prefix {
        if let Some(len) = prefix_len(&line[b..], if addr.is_ipv4() { 32 } else { 128 }) {
            let net = crate::wash::mask_ip(addr, len);
            let full = if addr.is_ipv4() { 32 } else { 128 };
            if net == addr && len < full {
                out.push(Found {
                    span: a..b,
                    kind: Kind::Prefix { net, len, upper },
                });
                return;
            }
        }
    }
    out.push(Found {
        span: a..b,
        kind: Kind::Addr { addr, upper },
    });
}

/// `/nn` at the start of `rest`, nn at most `max`, not followed by a word byte.
fn prefix_len(rest: &[u8], max: u8) -> Option<u8> {
    if rest.first() != Some(&b'/') {
        return None;
    }
    let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    if rest.get(1 + digits).is_some_and(|&c| is_word(c)) {
        return None;
    }
    let v: u32 = std::str::from_utf8(&rest[1..1 + digits])
        .ok()?
        .parse()
        .ok()?;
    (v <= u32::from(max)).then_some(v as u8)
}

/// `line[s..end]` are the labels before `.in-addr.arpa`: take up to four
/// decimal labels from the right.
fn reverse_v4(line: &[u8], s: usize, end: usize, out: &mut Vec<Found>) {
    let mut octets = [0u8; 4];
    let mut n = 0usize;
    let mut start = end;
    let mut j = end;
    while n < 4 && j > s {
        let lab_end = j;
        let mut k = j;
        while k > s && line[k - 1].is_ascii_digit() {
            k -= 1;
        }
        let lab = &line[k..lab_end];
        if lab.is_empty() || lab.len() > 3 {
            break;
        }
        // The label must stand alone: a dot, or the start of the name.
        let alone = k == 0 || line[k - 1] == b'.' || !is_label(line[k - 1]);
        if !alone {
            break;
        }
        let v: u32 = lab.iter().fold(0, |v, &c| v * 10 + u32::from(c - b'0'));
        if v > 255 {
            break;
        }
        octets[n] = v as u8;
        n += 1;
        start = k;
        if k > s && line[k - 1] == b'.' {
            j = k - 1;
        } else {
            break;
        }
    }
    if n == 0 {
        return;
    }
    out.push(Found {
        span: start..end,
        kind: Kind::Reverse {
            net: IpAddr::V4(Ipv4Addr::from(octets)),
            n: n as u8,
            upper: false,
        },
    });
}

/// `line[s..end]` are the labels before `.ip6.arpa`: take up to 32
/// one-nibble labels from the right.
fn reverse_v6(line: &[u8], s: usize, end: usize, out: &mut Vec<Found>) {
    let mut v: u128 = 0;
    let mut n = 0u32;
    let mut start = end;
    let mut j = end;
    let mut upper = false;
    let mut lower = false;
    while n < 32 && j > s {
        let c = line[j - 1];
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        let k = j - 1;
        let alone = k == 0 || line[k - 1] == b'.' || !is_label(line[k - 1]);
        if !alone {
            break;
        }
        upper |= c.is_ascii_uppercase();
        lower |= c.is_ascii_lowercase();
        v |= u128::from(d) << (124 - 4 * n);
        n += 1;
        start = k;
        if k > s && line[k - 1] == b'.' {
            j = k - 1;
        } else {
            break;
        }
    }
    if n == 0 {
        return;
    }
    out.push(Found {
        span: start..end,
        kind: Kind::Reverse {
            net: IpAddr::V6(Ipv6Addr::from(v)),
            n: n as u8,
            upper: upper && !lower,
        },
    });
}

/// The decimal text of every octet followed by a dot: its length (dot
/// included), then the bytes.
static OCTET_TEXT: [[u8; 5]; 256] = {
    let mut t = [[0u8; 5]; 256];
    let mut i = 0;
    while i < 256 {
        let x = i as u8;
        let e = &mut t[i];
        if x >= 100 {
            *e = [4, b'0' + x / 100, b'0' + (x / 10) % 10, b'0' + x % 10, b'.'];
        } else if x >= 10 {
            *e = [3, b'0' + x / 10, b'0' + x % 10, b'.', 0];
        } else {
            *e = [2, b'0' + x, b'.', 0, 0];
        }
        i += 1;
    }
    t
};

/// Write `a` the way the scanner reads it back: dotted quad, or RFC 5952
/// IPv6 (upper case on request).
pub fn write_addr(out: &mut Vec<u8>, a: IpAddr, upper: bool) {
    match a {
        IpAddr::V4(v) => {
            // Built on the stack from a table of the 256 octet texts (each
            // written with a dot after it, the last dot dropped) and
            // appended once.
            let mut buf = [0u8; 20];
            let mut n = 0;
            for x in v.octets() {
                let d = &OCTET_TEXT[usize::from(x)];
                buf[n..n + 4].copy_from_slice(&d[1..]);
                n += usize::from(d[0]);
            }
            out.extend_from_slice(&buf[..n - 1]);
        }
        IpAddr::V6(v) => write_v6(out, v, upper),
    }
}

/// RFC 5952 text, as `std`'s `Display` writes it (tested against it): an
/// IPv4-mapped address as `::ffff:a.b.c.d`, otherwise lower-case groups
/// without leading zeros and the first longest run of two or more zero
/// groups as `::`. Upper-case hex on request.
fn write_v6(out: &mut Vec<u8>, v: Ipv6Addr, upper: bool) {
    if let Some(v4) = v.to_ipv4_mapped() {
        out.extend_from_slice(if upper { b"::FFFF:" } else { b"::ffff:" });
        write_addr(out, IpAddr::V4(v4), false);
        return;
    }
    let g = v.segments();
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        if x == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let digits = hex_digits(upper);
    let mut buf = [0u8; 39];
    let n = if best_len > 1 {
        let n = put_groups(&mut buf, 0, &g[..best], digits);
        buf[n..n + 2].copy_from_slice(b"::");
        put_groups(&mut buf, n + 2, &g[best + best_len..], digits)
    } else {
        put_groups(&mut buf, 0, &g, digits)
    };
    out.extend_from_slice(&buf[..n]);
}

/// Write `groups` at `buf[n..]` without leading zeros, a colon between
/// two; returns the end.
fn put_groups(buf: &mut [u8; 39], mut n: usize, groups: &[u16], digits: &[u8; 16]) -> usize {
    for (i, &x) in groups.iter().enumerate() {
        if i > 0 {
            buf[n] = b':';
            n += 1;
        }
        let mut shift = 12;
        while shift > 0 && (x >> shift) == 0 {
            shift -= 4;
        }
        loop {
            buf[n] = digits[usize::from((x >> shift) & 15)];
            n += 1;
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
    }
    n
}

/// The decimal text of an octet.
fn octet_text(x: u8) -> &'static [u8] {
    let d = &OCTET_TEXT[usize::from(x)];
    &d[1..usize::from(d[0])]
}

/// The hex digits, in the case asked for.
fn hex_digits(upper: bool) -> &'static [u8; 16] {
    if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    }
}

/// Write the labels of a reverse name for the first `n` octets / nibbles of
/// `a`, least significant first, without the suffix.
pub fn write_reverse(out: &mut Vec<u8>, a: IpAddr, n: u8, upper: bool) {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            for i in (0..usize::from(n.min(4))).rev() {
                out.extend_from_slice(octet_text(o[i]));
                if i > 0 {
                    out.push(b'.');
                }
            }
        }
        IpAddr::V6(v) => {
            let x = u128::from(v);
            let digits = hex_digits(upper);
            for i in (0..u32::from(n.min(32))).rev() {
                out.push(digits[((x >> (124 - 4 * i)) & 15) as usize]);
                if i > 0 {
                    out.push(b'.');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spans(line: &str) -> Vec<(String, Kind)> {
        let mut s = Scanner::new();
        s.scan(line.as_bytes())
            .iter()
            .map(|f| (line[f.span.clone()].to_string(), f.kind))
            .collect()
    }

    fn texts(line: &str) -> Vec<String> {
        spans(line).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn forms() {
        assert_eq!(
            texts("from 192.0.2.1 to 198.51.100.2."),
            ["192.0.2.1", "198.51.100.2"]
        );
        assert_eq!(texts("client 192.0.2.1#53210 (x)"), ["192.0.2.1"]);
        assert_eq!(texts("peer=192.0.2.1:853,"), ["192.0.2.1"]);
        assert_eq!(texts("[2001:db8::1]:53"), ["2001:db8::1"]);
        assert_eq!(texts("fe80::1%eth0 up"), ["fe80::1"]);
        assert_eq!(texts("X 2001:DB8::A:B Y"), ["2001:DB8::A:B"]);
        assert_eq!(
            texts("2001:0db8:0000:0000:0000:0000:0000:0001"),
            ["2001:0db8:0000:0000:0000:0000:0000:0001"]
        );
        // Full form with a port: nine groups, unambiguous.
        assert_eq!(texts("2001:db8:0:0:0:0:0:1:5353"), ["2001:db8:0:0:0:0:0:1"]);
        // Ambiguous: compressed IPv6 then `:port`; the whole run is taken.
        assert_eq!(texts("2001:db8::1:53"), ["2001:db8::1:53"]);
        // Mapped: the IPv4 part alone.
        assert_eq!(texts("::ffff:192.0.2.7 x"), ["192.0.2.7"]);
        assert_eq!(texts("::FFFF:192.0.2.7"), ["192.0.2.7"]);
        // NAT64 and other embedded forms: the whole IPv6 address.
        assert_eq!(texts("64:ff9b::192.0.2.7"), ["64:ff9b::192.0.2.7"]);
        assert_eq!(texts("client:192.0.2.1"), ["192.0.2.1"]);
        assert_eq!(texts("dead:192.0.2.1:zz"), ["192.0.2.1"]);
        assert_eq!(texts("(::1)"), ["::1"]);
        assert_eq!(texts("fe80::/10"), ["fe80::"]);
    }

    #[test]
    fn prefixes() {
        let s = spans("net 10.1.0.0/16 and 10.1.2.3/16 and 2001:db8::/32");
        assert_eq!(s.len(), 3);
        assert!(matches!(s[0].1, Kind::Prefix { len: 16, .. }));
        assert!(matches!(s[1].1, Kind::Addr { .. }));
        assert!(matches!(s[2].1, Kind::Prefix { len: 32, .. }));
        // Too long, or glued to a word: an address, the suffix left alone.
        assert!(matches!(spans("10.0.0.0/33")[0].1, Kind::Addr { .. }));
        assert!(matches!(spans("10.0.0.0/8x")[0].1, Kind::Addr { .. }));
    }

    #[test]
    fn not_addresses() {
        for t in [
            "BIND 9.18.28-1~deb12u2-Debian",
            "version 1.2.3.4.5 and 1.2.3.4.5.6",
            "at 12:34:56 and 12:34:56.789 on 2026-12-01",
            "serial 2026120101 ttl 3600",
            "v1.2.3.4 1.2.3.4rc1 a1.2.3.4",
            "mac 00:11:22:33:44:55 ok",
            "std::vector foo::bar :: and :::",
            "1.2.3.256 300.1.1.1 1.2.3 1.2..3.4",
            "pi 3.14159 e 2.71828",
            "ts=1300000000.123456",
            "deadbeef cafe:babe",
            "@0x7f8b2c00a000",
        ] {
            assert_eq!(spans(t), [], "{t}");
        }
    }

    #[test]
    fn reverse_names() {
        let s = spans("query: 4.3.2.1.in-addr.arpa IN PTR");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, "4.3.2.1");
        assert_eq!(
            s[0].1,
            Kind::Reverse {
                net: "1.2.3.4".parse().unwrap(),
                n: 4,
                upper: false
            }
        );
        let s = spans("2.0.192.IN-ADDR.ARPA.");
        assert_eq!(s[0].0, "2.0.192");
        let name = "b.a.9.8.7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        let s = spans(name);
        assert_eq!(s[0].0, &name[..63]);
        assert_eq!(
            s[0].1,
            Kind::Reverse {
                net: "2001:db8::123:4567:89ab".parse().unwrap(),
                n: 32,
                upper: false
            }
        );
        let s = spans("8.B.D.0.1.0.0.2.ip6.arpa");
        assert_eq!(s[0].0, "8.B.D.0.1.0.0.2");
        assert!(matches!(
            s[0].1,
            Kind::Reverse {
                n: 8,
                upper: true,
                ..
            }
        ));
        // RFC 2317 names: the labels that are octets.
        let s = spans("1.0/25.2.0.192.in-addr.arpa");
        assert_eq!(s[0].0, "2.0.192");
        assert_eq!(spans("in-addr.arpa"), []);
        // Not the suffix: a dotted quad before a name is still an address.
        assert_eq!(texts("4.3.2.1.in-addr.arpanet"), ["4.3.2.1"]);
        let mut o = Vec::new();
        write_reverse(&mut o, "1.2.3.4".parse().unwrap(), 3, false);
        assert_eq!(o, b"3.2.1");
    }

    /// Text from an alphabet dense in address bytes, with whole addresses
    /// and the awkward neighbours (`in-addr.arpa`, `/nn`, words, non-ASCII)
    /// mixed in, so runs often cross 64-byte blocks.
    fn address_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => proptest::sample::select(
                b"0123456789abcdefABCDEF.:.:".to_vec()
            )
            .prop_map(|c| vec![c]),
            1 => proptest::sample::select(
                b" \n#[]%/-_xyzXZ()@=,\xc2\x85\xff".to_vec()
            )
            .prop_map(|c| vec![c]),
            1 => proptest::sample::select(vec![
                "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1", "1.2.3.4.in-addr.arpa",
                "b.a.9.8.ip6.arpa", "10.0.0.0/8", "fe80::1%eth0", "[::1]:53",
                "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "12:34:56.789",
                "FFFF::", "a:b::c:d:53", "::", ":::", "0.0.0.0", "255.255.255.255",
                "1.2.3", "1.2.3.4.5", "::1", "ffff:", ":53", "#53", "%eth0", "/24", "256",
                "01", "in-addr.arpa", "ip6.arpa", "IN-ADDR.ARPA",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ];
        proptest::collection::vec(piece, 0..120).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The block scanner and the byte-at-a-time scanner agree.
        #[test]
        fn block_scanner_is_the_scalar_scanner(text in address_soup()) {
            let mut a = Vec::new();
            let mut b = Vec::new();
            scan_into(&text, &mut a);
            scan_into_scalar(&text, &mut b);
            prop_assert_eq!(a, b);
        }

        /// The IPv6 parser accepts exactly what `std` accepts, with the
        /// same value, on strings of address bytes.
        #[test]
        fn parse_v6_is_std(t in proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdefABCDEF::::....".to_vec()), 0..46)) {
            let ours = parse_v6(&t);
            let std = std::str::from_utf8(&t).ok().and_then(|s| s.parse::<Ipv6Addr>().ok());
            // The shape check may refuse only what std refuses too.
            prop_assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(&t));
        }

        /// The IPv4 parser reads exactly four dot-separated decimal parts
        /// of one to three digits, each at most 255 (leading zeros read as
        /// decimal).
        #[test]
        fn parse_v4_is_the_dotted_quad_rule(t in proptest::collection::vec(
            proptest::sample::select(b"0123456789........:a".to_vec()), 0..18)) {
            let parts: Vec<&[u8]> = t.split(|&c| c == b'.').collect();
            let want = (parts.len() == 4
                && parts.iter().all(|p| (1..=3).contains(&p.len())
                    && p.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(p).unwrap().parse::<u32>().unwrap() <= 255))
                .then(|| {
                    let o: Vec<u8> = parts.iter()
                        .map(|p| std::str::from_utf8(p).unwrap().parse::<u8>().unwrap())
                        .collect();
                    Ipv4Addr::new(o[0], o[1], o[2], o[3])
                });
            prop_assert_eq!(parse_v4(&t), want, "{:?}", String::from_utf8_lossy(&t));
        }

        /// The IPv4 writer writes what `std` writes, and the parser reads
        /// it back.
        #[test]
        fn write_v4_is_std(x in any::<u32>()) {
            let v = Ipv4Addr::from(x);
            let mut o = Vec::new();
            write_addr(&mut o, IpAddr::V4(v), false);
            prop_assert_eq!(std::str::from_utf8(&o).unwrap(), v.to_string());
            prop_assert_eq!(parse_v4(&o), Some(v));
        }

        /// The IPv6 writer writes what `std` writes, for addresses with
        /// runs of zero groups anywhere (mapped ones included).
        #[test]
        fn write_v6_is_std(groups in proptest::collection::vec(
            prop_oneof![3 => Just(0u16), 1 => Just(0xffff), 2 => any::<u16>(), 1 => 0u16..16], 8),
            upper in any::<bool>()) {
            let mut g = [0u16; 8];
            g.copy_from_slice(&groups);
            let v = Ipv6Addr::from(g);
            let mut o = Vec::new();
            write_addr(&mut o, IpAddr::V6(v), upper);
            let mut want = v.to_string();
            if upper {
                want.make_ascii_uppercase();
            }
            prop_assert_eq!(String::from_utf8(o).unwrap(), want);
        }
    }

    /// The SSE2 masks and the word-at-a-time masks are the byte classes
    /// of the scalar scanner, for every byte value in every position.
    #[test]
    fn block_masks_are_the_byte_classes() {
        let mut blk = [0u8; 64];
        for round in 0..=255u32 {
            for (k, b) in blk.iter_mut().enumerate() {
                *b = (round as usize * 7 + k * 13) as u8;
            }
            blk[round as usize % 64] = round as u8;
            let mut run = 0u64;
            let mut sep = 0u64;
            for (k, &b) in blk.iter().enumerate() {
                run |= u64::from(is_run(b)) << k;
                sep |= u64::from(b == b'.' || b == b':') << k;
            }
            assert_eq!(masks64(&blk), (run, sep), "round {round}");
            assert_eq!(masks64_words(&blk), (run, sep), "round {round}");
        }
    }

    /// Well-formed IPv6 texts std reads, from structured pieces (random
    /// bytes rarely make one).
    #[test]
    fn parse_v6_reads_the_forms_std_reads() {
        for t in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "::1.2.3.4",
            "::ffff:192.0.2.1",
            "1::1.2.3.4",
            "FFFF:ffff::0001",
            "0000:0000:0000:0000:0000:0000:0000:0000",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "::01.2.3.4",
            "::1.2.3.256",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1.2.3.4::",
            "1:2:1.2.3.4::",
            ":1::",
            "1::2:",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "::1.2.3",
            "1::1.2.3.4.5",
        ] {
            let want = t.parse::<Ipv6Addr>().ok();
            assert_eq!(parse_v6(t.as_bytes()), want, "{t}");
        }
    }

    #[test]
    fn writes_back() {
        let mut o = Vec::new();
        write_addr(&mut o, "10.0.200.7".parse().unwrap(), false);
        o.push(b' ');
        write_addr(&mut o, "2001:db8::a".parse().unwrap(), true);
        assert_eq!(o, b"10.0.200.7 2001:DB8::A");
    }
}
