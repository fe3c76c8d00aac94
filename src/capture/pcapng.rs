//! pcapng block helpers: byte-order reads, option walking, option filtering
//! (metadata by allow-list, comments, interface addresses) and timestamp
//! conversion. All of them take a whole block (header to
//! trailing length) and never index past it: on bad bytes they return a
//! neutral value and the caller decides.

/// Section Header Block type (a palindrome, so readable in either order).
pub(crate) const SHB: u32 = 0x0A0D_0D0A;
pub(crate) const IDB: u32 = 1;
/// Obsolete Packet Block.
pub(crate) const PB: u32 = 2;
pub(crate) const SPB: u32 = 3;
pub(crate) const NRB: u32 = 4;
pub(crate) const ISB: u32 = 5;
pub(crate) const EPB: u32 = 6;
/// Decryption Secrets Block.
pub(crate) const DSB: u32 = 0x0A;
/// Custom Block that must not be copied when a file is rewritten.
pub(crate) const CB_NOCOPY: u32 = 0x4000_0BAD;
/// Custom Block that may be copied.
pub(crate) const CB_COPY: u32 = 0x0000_0BAD;

const OPT_ENDOFOPT: u16 = 0;
pub(crate) const OPT_COMMENT: u16 = 1;
/// The Interface Description Block options that carry the capturing host's
/// own addresses: `if_IPv4addr`, `if_IPv6addr`, `if_MACaddr`, `if_EUIaddr`.
/// These codes mean other things in other block types.
pub(crate) const IF_ADDRESS_OPTIONS: [u16; 4] = [4, 5, 6, 7];
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

pub(crate) fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    match b.get(at..at.saturating_add(2)) {
        Some(&[x, y]) if big => u16::from_be_bytes([x, y]),
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    match b.get(at..at.saturating_add(4)) {
        Some(&[w, x, y, z]) if big => u32::from_be_bytes([w, x, y, z]),
        Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]),
        _ => 0,
    }
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32, big: bool) {
    let bytes = if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    };
    if let Some(d) = b.get_mut(at..at.saturating_add(4)) {
        d.copy_from_slice(&bytes);
    }
}

/// `n` rounded up to a multiple of 4.
pub(crate) fn pad4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Timestamp resolution of an interface (`if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsResol {
    /// Units of 10^-n s.
    Pow10(u8),
    /// Units of 2^-n s.
    Pow2(u8),
}

impl TsResol {
    pub(crate) fn from_option(v: u8) -> TsResol {
        if v & 0x80 != 0 {
            TsResol::Pow2(v & 0x7f)
        } else {
            TsResol::Pow10(v)
        }
    }

    /// Split a raw timestamp into whole seconds and nanoseconds.
    pub(crate) fn split(self, ts: u64) -> (u64, u32) {
        let ts = u128::from(ts);
        let (sec, nsec) = match self {
            TsResol::Pow10(e) => match 10u128.checked_pow(u32::from(e)) {
                // One unit per second or coarser steps than that do not exist
                // for e = 0 only; larger units are impossible to express.
                Some(units) => (ts / units, (ts % units) * 1_000_000_000 / units),
                None => (0, 0),
            },
            TsResol::Pow2(e) => {
                let e = u32::from(e);
                let frac = ts & ((1u128 << e) - 1);
                (ts >> e, (frac * 1_000_000_000) >> e)
            }
        };
        (
            u64::try_from(sec).unwrap_or(u64::MAX),
            u32::try_from(nsec).unwrap_or(999_999_999),
        )
    }
}

/// What an Interface Description Block's options say about timestamps.
pub(crate) fn idb_time_options(block: &[u8], big: bool) -> (TsResol, i64) {
    let mut resol = TsResol::Pow10(6);
    let mut offset = 0i64;
    let end = block.len().saturating_sub(4);
    let mut p = 16;
    while p + 4 <= end {
        let code = u16_at(block, p, big);
        let len = usize::from(u16_at(block, p + 2, big));
        if code == OPT_ENDOFOPT || p + 4 + len > end {
            break;
        }
        match (code, block.get(p + 4..p + 4 + len)) {
            (IF_TSRESOL, Some(&[v, ..])) => resol = TsResol::from_option(v),
            (IF_TSOFFSET, Some(v)) if len == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                offset = if big {
                    i64::from_be_bytes(a)
                } else {
                    i64::from_le_bytes(a)
                };
            }
            _ => {}
        }
        p += 4 + pad4(len);
    }
    (resol, offset)
}

/// Where the options of a Name Resolution Block start (after the
/// `nrb_record_end` record), or `None` if the records are malformed.
pub(crate) fn nrb_options_start(block: &[u8], big: bool) -> Option<usize> {
    let end = block.len().checked_sub(4)?;
    let mut p = 8;
    loop {
        if p + 4 > end {
            return None;
        }
        let rtype = u16_at(block, p, big);
        let len = usize::from(u16_at(block, p + 2, big));
        let next = p + 4 + pad4(len);
        if next > end {
            return None;
        }
        if rtype == 0 {
            return Some(next);
        }
        p = next;
    }
}

/// Remove every option whose code is in `codes` from the options that start
/// at `opt_start` (see [`filter_options`]). With `codes` empty the block is
/// not even walked.
pub(crate) fn strip_options(block: &mut [u8], opt_start: usize, big: bool, codes: &[u16]) -> usize {
    if codes.is_empty() {
        return block.len();
    }
    filter_options(block, opt_start, big, |c| !codes.contains(&c), |_| {})
}

/// Keep only the options that start at `opt_start` whose code `keep`
/// accepts, compacting the block in place and fixing both length fields;
/// `removed` is called with the code of every option taken out. Returns the
/// new total length (the old one when nothing changed, so a block without
/// such options stays byte-identical).
///
/// An options area that does not parse cannot be searched for the options
/// to remove, so it is cut off from the first bad option on (reported as
/// code `0xffff`): losing metadata is better than passing on a comment or
/// an address.
pub(crate) fn filter_options(
    block: &mut [u8],
    opt_start: usize,
    big: bool,
    keep: impl Fn(u16) -> bool,
    mut removed: impl FnMut(u16),
) -> usize {
    let total = block.len();
    let Some(end) = total.checked_sub(4) else {
        return total;
    };
    if opt_start >= end {
        return total;
    }
    let (mut r, mut w) = (opt_start, opt_start);
    let mut changed = false;
    let mut kept_any = false;
    let mut had_end = false;
    while r < end {
        if r + 4 > end {
            changed = true;
            removed(0xffff);
            break;
        }
        let code = u16_at(block, r, big);
        let len = usize::from(u16_at(block, r + 2, big));
        if code == OPT_ENDOFOPT {
            had_end = true;
            break;
        }
        if r + 4 + len > end {
            changed = true;
            removed(0xffff);
            break;
        }
        // The last option may lack its padding; never step past the end.
        let next = (r + 4 + pad4(len)).min(end);
        if !keep(code) {
            changed = true;
            removed(code);
        } else {
            if w != r {
                block.copy_within(r..next, w);
            }
            w += next - r;
            kept_any = true;
        }
        r = next;
    }
    if !changed {
        return total;
    }
    if kept_any && had_end {
        if let Some(d) = block.get_mut(w..w + 4) {
            d.fill(0);
            w += 4;
        }
    }
    // Options were 4-aligned except a missing last padding: realign.
    while w % 4 != 0 {
        if let Some(d) = block.get_mut(w) {
            *d = 0;
        }
        w += 1;
    }
    let new_total = w + 4;
    let n = u32::try_from(new_total).unwrap_or(0);
    put_u32(block, 4, n, big);
    put_u32(block, w, n, big);
    new_total
}

/// Option codes of the Section Header Block.
pub(crate) const SHB_HARDWARE: u16 = 2;
pub(crate) const SHB_OS: u16 = 3;
pub(crate) const SHB_USERAPPL: u16 = 4;

/// The metadata options known to be harmless, copied by default: timestamp
/// resolution and offset and FCS length (IDB), packet flags and drop count
/// (EPB, obsolete PB), and the interface statistics (ISB: start and end
/// times, received, dropped, accepted and delivered counters). Everything
/// else (names, descriptions, filters, hardware and OS strings, hashes,
/// custom and unknown options) is metadata to drop. Comments and interface
/// addresses have their own switches and are not listed.
pub(crate) fn harmless_option(btype: u32, code: u16) -> bool {
    match btype {
        IDB => matches!(code, IF_TSRESOL | IF_FCSLEN | IF_TSOFFSET),
        EPB | PB => matches!(code, EPB_FLAGS | EPB_DROPCOUNT),
        ISB => (2..=8).contains(&code),
        _ => false,
    }
}

const IF_FCSLEN: u16 = 13;
const EPB_FLAGS: u16 = 2;
const EPB_DROPCOUNT: u16 = 4;

/// A stable name for an option removed from a block, for statistics.
pub(crate) fn option_name(btype: u32, code: u16) -> &'static str {
    match (btype, code) {
        (_, OPT_COMMENT) => "opt_comment",
        (_, 0xffff) => "malformed_options",
        (_, 2988 | 2989 | 19372 | 19373) => "custom_option",
        (SHB, SHB_HARDWARE) => "shb_hardware",
        (SHB, SHB_OS) => "shb_os",
        (SHB, SHB_USERAPPL) => "shb_userappl",
        (IDB, 2) => "if_name",
        (IDB, 3) => "if_description",
        (IDB, 4) => "if_IPv4addr",
        (IDB, 5) => "if_IPv6addr",
        (IDB, 6) => "if_MACaddr",
        (IDB, 7) => "if_EUIaddr",
        (IDB, 8) => "if_speed",
        (IDB, 10) => "if_tzone",
        (IDB, 11) => "if_filter",
        (IDB, 12) => "if_os",
        (IDB, 15) => "if_hardware",
        (IDB, 16) => "if_txspeed",
        (IDB, 17) => "if_rxspeed",
        (IDB, 18) => "if_iana_tzname",
        (EPB | PB, 3) => "epb_hash",
        (EPB, 5) => "epb_packetid",
        (EPB, 6) => "epb_queue",
        (EPB, 7) => "epb_verdict",
        (EPB, 8) => "epb_processid_threadid",
        (NRB, _) => "nrb_option",
        _ => "unknown_option",
    }
}

/// The `shb_userappl` option (code 4) naming ipwash and the technique, in
/// the section's byte order, padded.
pub(crate) fn userappl_option(method: &str, big: bool) -> Vec<u8> {
    let text = format!("ipwash {} (--method {method})", env!("CARGO_PKG_VERSION"));
    let len = u16::try_from(text.len()).unwrap_or(0);
    let mut v = Vec::with_capacity(4 + pad4(text.len()));
    let (c, l) = if big {
        (SHB_USERAPPL.to_be_bytes(), len.to_be_bytes())
    } else {
        (SHB_USERAPPL.to_le_bytes(), len.to_le_bytes())
    };
    v.extend(c);
    v.extend(l);
    v.extend(text.as_bytes().get(..usize::from(len)).unwrap_or_default());
    v.resize(4 + pad4(usize::from(len)), 0);
    v
}

/// Append `opt` (one whole option) to the options of `block` (a whole
/// block whose options start at `opt_start`), before its end-of-options
/// marker, fixing both length fields. The block must have been through
/// [`filter_options`] (so its options parse).
pub(crate) fn append_option(block: &mut Vec<u8>, opt_start: usize, big: bool, opt: &[u8]) {
    let Some(end) = block.len().checked_sub(4) else {
        return;
    };
    // Find the end of the last option (before any end-of-options marker).
    let mut p = opt_start.min(end);
    while p + 4 <= end {
        let code = u16_at(block, p, big);
        let len = usize::from(u16_at(block, p + 2, big));
        if code == OPT_ENDOFOPT || p + 4 + len > end {
            break;
        }
        p = (p + 4 + pad4(len)).min(end);
    }
    block.truncate(p);
    block.extend_from_slice(opt);
    block.extend_from_slice(&[0, 0, 0, 0]);
    let total = block.len() + 4;
    let n = u32::try_from(total).unwrap_or(0);
    block.extend_from_slice(&[0, 0, 0, 0]);
    put_u32(block, 4, n, big);
    put_u32(block, total - 4, n, big);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u16, val: &[u8]) -> Vec<u8> {
        let mut v = code.to_le_bytes().to_vec();
        v.extend((val.len() as u16).to_le_bytes());
        v.extend(val);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// An ISB-shaped block (options at 20) with the given options bytes.
    fn block(opts: &[u8]) -> Vec<u8> {
        let total = (24 + opts.len()) as u32;
        let mut b = ISB.to_le_bytes().to_vec();
        b.extend(total.to_le_bytes());
        b.extend([0u8; 12]);
        b.extend(opts);
        b.extend(total.to_le_bytes());
        b
    }

    #[test]
    fn strips_comments_and_keeps_the_rest() {
        let mut opts = opt(1, b"secret comment");
        opts.extend(opt(2, b"12345678"));
        opts.extend(opt(1, b"x"));
        opts.extend(opt(0, b""));
        let mut b = block(&opts);
        let n = strip_options(&mut b, 20, false, &[OPT_COMMENT]);
        let mut want_opts = opt(2, b"12345678");
        want_opts.extend(opt(0, b""));
        assert_eq!(&b[..n], &block(&want_opts)[..]);
    }

    #[test]
    fn only_comments_leaves_no_options() {
        let mut opts = opt(1, b"abc");
        opts.extend(opt(0, b""));
        let mut b = block(&opts);
        let n = strip_options(&mut b, 20, false, &[OPT_COMMENT]);
        assert_eq!(&b[..n], &block(&[])[..]);
    }

    #[test]
    fn no_comment_means_unchanged() {
        let mut opts = opt(2, b"abcde");
        opts.extend(opt(0, b""));
        let mut b = block(&opts);
        let orig = b.clone();
        assert_eq!(strip_options(&mut b, 20, false, &[OPT_COMMENT]), orig.len());
        assert_eq!(b, orig);
    }

    #[test]
    fn strips_every_listed_code_and_nothing_else() {
        let mut opts = opt(4, &[192, 0, 2, 1, 255, 255, 255, 0]);
        opts.extend(opt(2, b"eth0"));
        opts.extend(opt(1, b"kept comment"));
        opts.extend(opt(6, &[2, 0, 0, 0, 0, 1]));
        opts.extend(opt(0, b""));
        let mut b = block(&opts);
        let orig = b.clone();
        assert_eq!(strip_options(&mut b, 20, false, &[]), orig.len());
        assert_eq!(b, orig, "empty code list leaves the block alone");
        let n = strip_options(&mut b, 20, false, &IF_ADDRESS_OPTIONS);
        let mut want_opts = opt(2, b"eth0");
        want_opts.extend(opt(1, b"kept comment"));
        want_opts.extend(opt(0, b""));
        assert_eq!(&b[..n], &block(&want_opts)[..]);
    }

    #[test]
    fn malformed_options_are_cut() {
        let mut opts = opt(2, b"abcd");
        opts.extend([1, 0, 200, 0]); // comment claiming 200 bytes
        opts.extend(b"leak");
        let mut b = block(&opts);
        let n = strip_options(&mut b, 20, false, &[OPT_COMMENT]);
        assert_eq!(&b[..n], &block(&opt(2, b"abcd"))[..]);
    }

    #[test]
    fn timestamps_in_both_bases() {
        assert_eq!(
            TsResol::Pow10(6).split(1_700_000_000_123_456),
            (1_700_000_000, 123_456_000)
        );
        assert_eq!(TsResol::Pow10(9).split(5_000_000_007), (5, 7));
        assert_eq!(TsResol::Pow10(0).split(42), (42, 0));
        assert_eq!(TsResol::Pow10(12).split(3_000_000_000_001), (3, 0));
        assert_eq!(TsResol::Pow2(10).split(3 * 1024 + 512), (3, 500_000_000));
        assert_eq!(TsResol::Pow2(0).split(7), (7, 0));
        assert_eq!(TsResol::Pow2(127).split(u64::MAX), (0, 0));
        assert_eq!(TsResol::Pow10(127).split(u64::MAX), (0, 0));
        assert_eq!(TsResol::from_option(0x8a), TsResol::Pow2(10));
        assert_eq!(TsResol::from_option(9), TsResol::Pow10(9));
    }
}
