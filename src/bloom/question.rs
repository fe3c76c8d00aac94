//! The first question of a DNS message, decoded to text.
//!
//! The Bloom filter sink needs the query name as normalised text, its type
//! and class, and the QR bit. This parser reads only the header and the first
//! question: nothing after it is looked at, so a message whose later sections
//! are cut short by snaplen still yields its question.
//!
//! The name is written in the canonical text form shared with
//! [`normalise`](super::items::normalise): ASCII letters lower-cased, no
//! trailing dot, the root name as the empty string, and every byte that is not
//! a printable ASCII character written as `\DDD` (three decimal digits);
//! a literal `.` or `\` inside a label becomes `\.` or `\\`. Compression
//! pointers are followed (questions rarely use them, but nothing forbids
//! them), with loop protection: at most 127 pointers, and the decoded name
//! may not exceed the 255-octet wire limit.

use std::fmt::Write as _;

/// Why a question could not be read. Offsets are from the start of the
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuestionError {
    /// The message ends before the structure it announces.
    #[error("DNS message truncated at byte {0}")]
    Truncated(usize),
    /// QDCOUNT is zero.
    #[error("DNS message has no question")]
    NoQuestion,
    /// A reserved label type, a pointer loop or a name over 255 octets.
    #[error("bad DNS name at byte {0}")]
    BadName(usize),
}

/// The header bit and question fields the filter builder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// QR bit: true for a response.
    pub is_response: bool,
    /// QTYPE of the first question.
    pub qtype: u16,
    /// QCLASS of the first question (1 = IN).
    pub qclass: u16,
}

/// The QTYPE of a PTR question.
pub const QTYPE_PTR: u16 = 12;
/// The QCLASS IN.
pub const QCLASS_IN: u16 = 1;

const HEADER_LEN: usize = 12;
const MAX_NAME_WIRE: usize = 255;
const MAX_POINTERS: usize = 127;

fn u16_at(m: &[u8], at: usize) -> Result<u16, QuestionError> {
    match m.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(QuestionError::Truncated(at)),
    }
}

/// Append one label byte to `out` in canonical text form.
#[inline]
pub(crate) fn push_label_byte(out: &mut String, b: u8) {
    match b {
        b'.' | b'\\' => {
            out.push('\\');
            out.push(char::from(b));
        }
        b'A'..=b'Z' => out.push(char::from(b.to_ascii_lowercase())),
        0x21..=0x7e => out.push(char::from(b)),
        _ => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\{b:03}");
        }
    }
}

/// Parse the header and first question of `msg` (no TCP length prefix).
///
/// `name` is cleared and receives the question name in canonical text form.
pub fn parse_question(msg: &[u8], name: &mut String) -> Result<Question, QuestionError> {
    name.clear();
    if msg.len() < HEADER_LEN {
        return Err(QuestionError::Truncated(msg.len()));
    }
    let flags = u16_at(msg, 2)?;
    let qdcount = u16_at(msg, 4)?;
    if qdcount == 0 {
        return Err(QuestionError::NoQuestion);
    }
    let end = read_name(msg, HEADER_LEN, name)?;
    let qtype = u16_at(msg, end)?;
    let qclass = u16_at(msg, end + 2)?;
    Ok(Question {
        is_response: flags & 0x8000 != 0,
        qtype,
        qclass,
    })
}

/// Decode the name at `at` into `out`; return the offset just after the name
/// as it appears at `at` (after the first pointer, if any).
fn read_name(m: &[u8], mut at: usize, out: &mut String) -> Result<usize, QuestionError> {
    let mut after: Option<usize> = None;
    let mut pointers = 0usize;
    // Wire length of the decoded name, counting the final root byte.
    let mut wire_len = 1usize;
    loop {
        let len = *m.get(at).ok_or(QuestionError::Truncated(at))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(after.unwrap_or(at + 1));
                }
                let len = usize::from(len);
                wire_len += 1 + len;
                if wire_len > MAX_NAME_WIRE {
                    return Err(QuestionError::BadName(at));
                }
                let label = m
                    .get(at + 1..at + 1 + len)
                    .ok_or(QuestionError::Truncated(at + 1))?;
                if !out.is_empty() {
                    out.push('.');
                }
                for &b in label {
                    push_label_byte(out, b);
                }
                at += 1 + len;
            }
            0xc0 => {
                let lo = *m.get(at + 1).ok_or(QuestionError::Truncated(at + 1))?;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(QuestionError::BadName(at));
                }
                if after.is_none() {
                    after = Some(at + 2);
                }
                at = usize::from(len & 0x3f) << 8 | usize::from(lo);
            }
            _ => return Err(QuestionError::BadName(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(flags: u16, qname: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(qname);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&qclass.to_be_bytes());
        m
    }

    #[test]
    fn decodes_and_lowercases() {
        let m = msg(0x0100, b"\x03WwW\x07Example\x03COM\x00", 1, 1);
        let mut n = String::new();
        let q = parse_question(&m, &mut n).unwrap();
        assert_eq!(n, "www.example.com");
        assert_eq!(
            q,
            Question {
                is_response: false,
                qtype: 1,
                qclass: 1
            }
        );
        let m = msg(0x8180, b"\x00", 2, 3);
        let q = parse_question(&m, &mut n).unwrap();
        assert_eq!(n, "");
        assert!(q.is_response);
        assert_eq!((q.qtype, q.qclass), (2, 3));
    }

    #[test]
    fn escapes_odd_bytes() {
        let m = msg(0, b"\x04a.\\\xff\x01 \x00", 1, 1);
        let mut n = String::new();
        parse_question(&m, &mut n).unwrap();
        assert_eq!(n, "a\\.\\\\\\255.\\032");
    }

    #[test]
    fn follows_pointers_and_stops_loops() {
        // Name at 12 is a pointer to a name placed after the question.
        let mut m = msg(0, b"\x01a\xc0\x14", 1, 1);
        // qname occupies 12..16, qtype/qclass 16..20; target at 20.
        m.extend_from_slice(b"\x03com\x00");
        let mut n = String::new();
        let q = parse_question(&m, &mut n).unwrap();
        assert_eq!(n, "a.com");
        assert_eq!(q.qtype, 1);

        let m = msg(0, b"\xc0\x0c", 1, 1);
        assert_eq!(parse_question(&m, &mut n), Err(QuestionError::BadName(12)));
    }

    #[test]
    fn rejects_short_and_bad() {
        let mut n = String::new();
        assert_eq!(
            parse_question(&[0; 5], &mut n),
            Err(QuestionError::Truncated(5))
        );
        let mut m = msg(0, b"\x00", 1, 1);
        m[5] = 0;
        assert_eq!(parse_question(&m, &mut n), Err(QuestionError::NoQuestion));
        let m = msg(0, b"\x40\x00", 1, 1);
        assert_eq!(parse_question(&m, &mut n), Err(QuestionError::BadName(12)));
        let full = msg(0, b"\x03abc\x00", 1, 1);
        for cut in 0..full.len() {
            assert!(parse_question(&full[..cut], &mut n).is_err(), "cut {cut}");
        }
        // Names over 255 octets.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63u8);
            long.extend_from_slice(&[b'x'; 63]);
        }
        long.push(0);
        let m = msg(0, &long, 1, 1);
        assert!(matches!(
            parse_question(&m, &mut n),
            Err(QuestionError::BadName(_))
        ));
    }
}
