//! DNS message awareness: the header fields the washer needs and the EDNS
//! Client Subnet option (RFC 7871), which carries a client prefix.
//!
//! Only the parts needed to find ECS are parsed: names are skipped, not
//! decoded. Parsing is strict about bounds; anything that does not fit is an
//! error, so a caller can fail closed.

/// Why a DNS message could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The message ends before the structure it announces.
    #[error("DNS message truncated at byte {0}")]
    Truncated(usize),
    /// A name uses a reserved label type or loops.
    #[error("bad DNS name at byte {0}")]
    BadName(usize),
    /// An ECS option whose lengths do not agree.
    #[error("bad EDNS Client Subnet option at byte {0}")]
    BadEcs(usize),
}

/// An EDNS Client Subnet address inside a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsField {
    /// Offset of the ADDRESS bytes within the message.
    pub offset: usize,
    /// 1 = IPv4, 2 = IPv6 (other families are reported as errors).
    pub family: u16,
    /// SOURCE PREFIX-LENGTH.
    pub source_prefix: u8,
    /// Number of ADDRESS bytes present, `ceil(source_prefix / 8)`.
    pub len: usize,
}

/// The QR bit of a DNS header, if the message is long enough.
pub fn is_response(msg: &[u8]) -> Option<bool> {
    msg.get(2).map(|b| b & 0x80 != 0)
}

fn u16_at(m: &[u8], at: usize) -> Result<u16, DnsError> {
    match m.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError::Truncated(at)),
    }
}

/// Skip an uncompressed-or-compressed name starting at `at`; return the
/// offset just after it in the message.
pub fn skip_name(m: &[u8], mut at: usize) -> Result<usize, DnsError> {
    let mut labels = 0;
    loop {
        let len = *m.get(at).ok_or(DnsError::Truncated(at))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(at + 1);
                }
                at += 1 + len as usize;
                labels += 1;
                if labels > 128 {
                    return Err(DnsError::BadName(at));
                }
            }
            0xc0 => {
                if at + 2 > m.len() {
                    return Err(DnsError::Truncated(at));
                }
                return Ok(at + 2);
            }
            _ => return Err(DnsError::BadName(at)),
        }
    }
}

/// Find every ECS option in a complete DNS message (no TCP length prefix).
///
/// The message is walked section by section; the OPT pseudo-record is looked
/// for in the additional section. `out` is cleared first. A message that
/// cannot be walked completely is an error: the caller cannot know whether it
/// holds an ECS option.
pub fn find_ecs(m: &[u8], out: &mut Vec<EcsField>) -> Result<(), DnsError> {
    out.clear();
    if m.len() < 12 {
        return Err(DnsError::Truncated(m.len()));
    }
    let qd = u16_at(m, 4)? as usize;
    let an = u16_at(m, 6)? as usize;
    let ns = u16_at(m, 8)? as usize;
    let ar = u16_at(m, 10)? as usize;
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(m, at)? + 4;
        if at > m.len() {
            return Err(DnsError::Truncated(m.len()));
        }
    }
    for i in 0..an + ns + ar {
        at = skip_name(m, at)?;
        let rtype = u16_at(m, at)?;
        let rdlen = u16_at(m, at + 8)? as usize;
        let rdata = at + 10;
        let end = rdata + rdlen;
        if end > m.len() {
            return Err(DnsError::Truncated(m.len()));
        }
        if rtype == 41 && i >= an + ns {
            opt_ecs(m, rdata, end, out)?;
        }
        at = end;
    }
    Ok(())
}

/// Find ECS options in OPT RDATA occupying `m[start..end]`. Offsets in `out`
/// are relative to `m`.
pub fn opt_ecs(
    m: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<EcsField>,
) -> Result<(), DnsError> {
    let mut o = start;
    while o < end {
        if o + 4 > end {
            return Err(DnsError::Truncated(o));
        }
        let code = u16_at(m, o)?;
        let olen = u16_at(m, o + 2)? as usize;
        let data = o + 4;
        if data + olen > end {
            return Err(DnsError::Truncated(o));
        }
        if code == 8 {
            if olen < 4 {
                return Err(DnsError::BadEcs(o));
            }
            let family = u16_at(m, data)?;
            let source_prefix = m[data + 2];
            let len = olen - 4;
            let max_bits = match family {
                1 => 32,
                2 => 128,
                _ => return Err(DnsError::BadEcs(o)),
            };
            if source_prefix as usize > max_bits || len != (source_prefix as usize).div_ceil(8) {
                return Err(DnsError::BadEcs(o));
            }
            out.push(EcsField {
                offset: data + 4,
                family,
                source_prefix,
                len,
            });
        }
        o = data + olen;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_with_ecs(addr: &[u8], family: u16, prefix: u8) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
        let olen = 4 + addr.len();
        m.extend_from_slice(&((4 + olen) as u16).to_be_bytes());
        m.extend_from_slice(&[0, 8]);
        m.extend_from_slice(&(olen as u16).to_be_bytes());
        m.extend_from_slice(&family.to_be_bytes());
        m.extend_from_slice(&[prefix, 0]);
        m.extend_from_slice(addr);
        m
    }

    #[test]
    fn finds_ecs() {
        let m = query_with_ecs(&[192, 0, 2], 1, 24);
        let mut v = Vec::new();
        find_ecs(&m, &mut v).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(&m[v[0].offset..v[0].offset + v[0].len], &[192, 0, 2]);
        assert_eq!(v[0].source_prefix, 24);
    }

    #[test]
    fn rejects_inconsistent_ecs_and_truncation() {
        let m = query_with_ecs(&[192, 0], 1, 24);
        let mut v = Vec::new();
        assert!(find_ecs(&m, &mut v).is_err());
        let good = query_with_ecs(&[192, 0, 2], 1, 24);
        for cut in 0..good.len() {
            assert!(find_ecs(&good[..cut], &mut v).is_err(), "cut {cut}");
        }
    }
}
