//! Frame Streams, unidirectional (the file and pipe form): reading frames
//! one at a time with their byte offsets, and writing them back.
//!
//! A stream is a START control frame, data frames, and a STOP control
//! frame. A data frame is a 4-byte big-endian length (not zero) and that
//! many bytes. A control frame is the escape (a zero length), a 4-byte
//! control length, then the control type (4 bytes) and fields (type, length,
//! bytes; all integers 4-byte big-endian). Control frames are kept whole, as
//! read, so they are written back byte for byte.

use std::io::{self, Read, Write};

/// Control frame types.
pub const CONTROL_ACCEPT: u32 = 1;
/// START: the first frame of a stream.
pub const CONTROL_START: u32 = 2;
/// STOP: the last frame of a stream.
pub const CONTROL_STOP: u32 = 3;
/// Control field type: content type.
pub const FIELD_CONTENT_TYPE: u32 = 1;
/// The content type of dnstap streams.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Longest control frame accepted (the limit libfstrm uses).
pub const MAX_CONTROL: u32 = 512;
/// Longest data frame accepted. A dnstap message holds at most two DNS
/// messages of 64 KiB each, so this leaves room to spare while bounding
/// memory.
pub const MAX_DATA: u32 = 16 << 20;

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A control frame: its type and its whole encoding (escape included).
    Control {
        /// START, STOP, ...
        ctype: u32,
        /// The content type field, if any.
        content_type: Option<Vec<u8>>,
    },
    /// A data frame: the payload is [`FrameReader::payload`].
    Data,
}

/// What is wrong with the framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The input ends inside a frame that starts at `offset`.
    Truncated {
        /// Offset of the frame's first byte.
        offset: u64,
    },
    /// The frame at `offset` is malformed.
    Bad {
        /// Offset of the frame's first byte.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
}

/// Parse a control frame body (after the escape and the control length):
/// its type and content type field.
fn parse_control(b: &[u8]) -> Result<(u32, Option<Vec<u8>>), String> {
    let ctype = be32(b, 0).ok_or("control frame shorter than its type")?;
    let mut at = 4;
    let mut content_type = None;
    while at < b.len() {
        let (Some(ft), Some(fl)) = (be32(b, at), be32(b, at + 4)) else {
            return Err(format!(
                "control field header cut at byte {at} of the frame"
            ));
        };
        let start = at + 8;
        let end = start
            .checked_add(fl as usize)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("control field of {fl} bytes runs past the frame"))?;
        if ft == FIELD_CONTENT_TYPE {
            if content_type.is_some() && ctype != CONTROL_ACCEPT {
                return Err("more than one content type".into());
            }
            content_type = Some(b[start..end].to_vec());
        }
        at = end;
    }
    Ok((ctype, content_type))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// When `head8` (the first 8 bytes of an input) begins a Frame Streams
/// control frame, the number of bytes left in that frame.
pub fn start_frame_rest(head8: &[u8]) -> Option<usize> {
    let len = be32(head8, 4)?;
    (be32(head8, 0) == Some(0) && (4..=MAX_CONTROL).contains(&len)).then_some(len as usize)
}

/// True when `head` (the first bytes of an input) begins a Frame Streams
/// START control frame whose content type is dnstap's. Needs the first 42
/// bytes.
pub fn is_dnstap_head(head: &[u8]) -> bool {
    if be32(head, 0) != Some(0) {
        return false;
    }
    let Some(len) = be32(head, 4) else {
        return false;
    };
    if !(4..=MAX_CONTROL).contains(&len) || be32(head, 8) != Some(CONTROL_START) {
        return false;
    }
    // Walk the fields that are in `head` and inside the frame.
    let end = (8 + len as usize).min(head.len());
    let mut at = 12;
    while at + 8 <= end {
        let (Some(ft), Some(fl)) = (be32(head, at), be32(head, at + 4)) else {
            return false;
        };
        let v = at + 8;
        if ft == FIELD_CONTENT_TYPE {
            return head.get(v..v + fl as usize) == Some(DNSTAP_CONTENT_TYPE);
        }
        at = v + fl as usize;
    }
    false
}

/// Reads frames one at a time into a reused buffer. Reads only as much
/// as is available (one `read` per refill), so a live pipe is served frame
/// by frame.
pub struct FrameReader<R> {
    r: R,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    at: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// The current frame: `buf[frame]` (whole encoding).
    frame: std::ops::Range<usize>,
    /// The current data frame's payload in `buf`.
    payload: std::ops::Range<usize>,
}

impl<R: Read> FrameReader<R> {
    /// A reader over `r`.
    pub fn new(r: R) -> Self {
        FrameReader {
            r,
            buf: Vec::with_capacity(256 * 1024),
            at: 0,
            base: 0,
            eof: false,
            frame: 0..0,
            payload: 0..0,
        }
    }

    /// Input offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.at as u64
    }

    /// One more read; false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.at > 0 {
            // Only a partial frame is left: move it to the front.
            self.buf.drain(..self.at);
            self.base += self.at as u64;
            self.at = 0;
        }
        let old = self.buf.len();
        let want = (self.buf.capacity() - old).max(64 * 1024);
        self.buf.resize(old + want, 0);
        loop {
            match self.r.read(&mut self.buf[old..]) {
                Ok(n) => {
                    self.buf.truncate(old + n);
                    if n == 0 {
                        self.eof = true;
                    }
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    /// Make `n` bytes from the read position available; false when the
    /// input ends first.
    fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.at < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next frame, or None at a clean end of input (between frames).
    pub fn next_frame(&mut self) -> io::Result<Result<Option<Frame>, FrameError>> {
        let offset = self.offset();
        if !self.need(1)? {
            return Ok(Ok(None));
        }
        if !self.need(4)? {
            return Ok(Err(FrameError::Truncated { offset }));
        }
        let len = be32(&self.buf, self.at).unwrap_or(0);
        if len != 0 {
            if len > MAX_DATA {
                return Ok(Err(FrameError::Bad {
                    offset,
                    msg: format!("data frame length {len} exceeds the limit of {MAX_DATA}"),
                }));
            }
            let total = 4 + len as usize;
            if !self.need(total)? {
                return Ok(Err(FrameError::Truncated { offset }));
            }
            self.frame = self.at..self.at + total;
            self.payload = self.at + 4..self.at + total;
            self.at += total;
            return Ok(Ok(Some(Frame::Data)));
        }
        if !self.need(8)? {
            return Ok(Err(FrameError::Truncated { offset }));
        }
        let clen = be32(&self.buf, self.at + 4).unwrap_or(0);
        if !(4..=MAX_CONTROL).contains(&clen) {
            return Ok(Err(FrameError::Bad {
                offset,
                msg: format!("control frame length {clen} (must be 4 to {MAX_CONTROL})"),
            }));
        }
        let total = 8 + clen as usize;
        if !self.need(total)? {
            return Ok(Err(FrameError::Truncated { offset }));
        }
        let body = &self.buf[self.at + 8..self.at + total];
        let (ctype, content_type) = match parse_control(body) {
            Ok(c) => c,
            Err(msg) => return Ok(Err(FrameError::Bad { offset, msg })),
        };
        self.frame = self.at..self.at + total;
        self.payload = self.at + 8..self.at + total;
        self.at += total;
        Ok(Ok(Some(Frame::Control {
            ctype,
            content_type,
        })))
    }

    /// The whole encoding of the current frame.
    pub fn raw(&self) -> &[u8] {
        &self.buf[self.frame.clone()]
    }

    /// The current data frame's payload.
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.payload.clone()]
    }
}

/// Write one data frame.
pub fn write_data<W: Write + ?Sized>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too long"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)
}

/// The encoding of a control frame of type `ctype` with an optional
/// content type.
pub fn control_frame(ctype: u32, content_type: Option<&[u8]>) -> Vec<u8> {
    let mut body = ctype.to_be_bytes().to_vec();
    if let Some(ct) = content_type {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        body.extend_from_slice(ct);
    }
    let mut f = vec![0, 0, 0, 0];
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(&body);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(frames: &[&[u8]]) -> Vec<u8> {
        let mut v = control_frame(CONTROL_START, Some(DNSTAP_CONTENT_TYPE));
        for f in frames {
            write_data(&mut v, f).unwrap();
        }
        v.extend(control_frame(CONTROL_STOP, None));
        v
    }

    #[test]
    fn head_is_recognised() {
        let s = stream(&[b"abc"]);
        assert!(is_dnstap_head(&s[..64.min(s.len())]));
        assert!(!is_dnstap_head(&s[..41]));
        let other = control_frame(CONTROL_START, Some(b"protobuf:other.Thing"));
        assert!(!is_dnstap_head(&other));
        assert!(!is_dnstap_head(&control_frame(CONTROL_START, None)));
        assert!(!is_dnstap_head(b"\0\0\0\0"));
    }

    #[test]
    fn reads_frames_with_offsets() {
        let s = stream(&[b"abc", &[7u8; 70000]]);
        let mut r = FrameReader::new(&s[..]);
        let f = r.next_frame().unwrap().unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Control {
                ctype: CONTROL_START,
                content_type: Some(DNSTAP_CONTENT_TYPE.to_vec())
            }
        );
        assert_eq!(r.raw(), &s[..42]);
        assert_eq!(r.next_frame().unwrap().unwrap(), Some(Frame::Data));
        assert_eq!(r.payload(), b"abc");
        assert_eq!(r.offset(), 49);
        assert_eq!(r.next_frame().unwrap().unwrap(), Some(Frame::Data));
        assert_eq!(r.payload().len(), 70000);
        assert!(matches!(
            r.next_frame().unwrap().unwrap(),
            Some(Frame::Control {
                ctype: CONTROL_STOP,
                ..
            })
        ));
        assert_eq!(r.next_frame().unwrap().unwrap(), None);
    }

    #[test]
    fn every_cut_is_an_error_at_the_frame_start() {
        let s = stream(&[b"abc", b"defgh"]);
        // Frame starts: 0, 42, 49, 58; the stream ends at 70.
        for cut in 1..s.len() {
            let mut r = FrameReader::new(&s[..cut]);
            let mut last = None;
            loop {
                match r.next_frame().unwrap() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                }
            }
            let clean = [42, 49, 58].contains(&cut);
            match last {
                None => assert!(clean, "cut {cut}"),
                Some(FrameError::Truncated { offset }) => {
                    assert!(!clean);
                    let start = [0u64, 42, 49, 58].iter().rev().find(|&&o| o < cut as u64);
                    assert_eq!(Some(&offset), start, "cut {cut}");
                }
                Some(e) => panic!("cut {cut}: {e:?}"),
            }
        }
    }

    #[test]
    fn bad_control_frames() {
        let mut s = vec![0, 0, 0, 0, 0, 0, 4, 0];
        s.extend([0u8; 16]);
        let mut r = FrameReader::new(&s[..]);
        assert!(matches!(
            r.next_frame().unwrap(),
            Err(FrameError::Bad { offset: 0, .. })
        ));
        // A field running past the end of its frame.
        let mut c = control_frame(CONTROL_START, Some(DNSTAP_CONTENT_TYPE));
        c[19] = 200;
        let mut r = FrameReader::new(&c[..]);
        assert!(matches!(
            r.next_frame().unwrap(),
            Err(FrameError::Bad { .. })
        ));
    }
}
