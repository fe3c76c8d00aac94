//! Opening an input: decompression and format sniffing by magic number.
//!
//! Both decisions are made once, from the first bytes, and the bytes looked
//! at are put back in front of the stream (a `Cursor` chained before the
//! rest), so the reader sees the input from its first byte and stdin works
//! as well as a file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use super::codec::{self, Compression, MAGIC_LEN};
use super::{CaptureError, READ_CHUNK};

/// The format found after decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Classic pcap (any byte order, µs or ns, or the modified format).
    Pcap,
    /// pcapng.
    Pcapng,
    /// C-DNS (RFC 8618): a CBOR array whose first item is the text "C-DNS".
    Cdns,
    /// dnstap: Frame Streams whose START frame names `protobuf:dnstap.Dnstap`.
    Dnstap,
    /// Anything else.
    Unknown,
}

/// Classify the first bytes of a decompressed stream.
pub(crate) fn sniff(b: &[u8]) -> FileKind {
    const PCAP: [[u8; 4]; 6] = [
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xcd, 0x34],
        [0x34, 0xcd, 0xb2, 0xa1],
    ];
    match b {
        [a, b2, c, d, ..] if PCAP.contains(&[*a, *b2, *c, *d]) => FileKind::Pcap,
        [0x0a, 0x0d, 0x0d, 0x0a, ..] => FileKind::Pcapng,
        [0x83 | 0x9f, 0x65, b'C', b'-', b'D', b'N', b'S', ..] => FileKind::Cdns,
        [0, 0, 0, 0, ..] if crate::dnstap::fstrm::is_dnstap_head(b) => FileKind::Dnstap,
        _ => FileKind::Unknown,
    }
}

/// An opened input: what it is, and the decompressed bytes.
pub struct Input {
    /// The compression found (and undone) on the input.
    pub compression: Compression,
    /// The format of the decompressed bytes.
    pub kind: FileKind,
    reader: Box<dyn BufRead + Send>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("compression", &self.compression)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// The decompressed bytes, from the very first one.
    pub fn into_reader(self) -> Box<dyn BufRead + Send> {
        self.reader
    }
}

/// Open `path` (`-` = stdin), undo gzip/xz/zstd/bzip2 found by magic, and sniff the
/// format of what is inside.
///
/// Errors: the path cannot be opened ([`CaptureError::Open`]), reading or
/// decompressing the first bytes fails ([`CaptureError::Io`]), or there is
/// nothing inside ([`CaptureError::Empty`]). An unrecognised format is not
/// an error here: `kind` is [`FileKind::Unknown`].
pub fn open_input(path: &Path) -> Result<Input, CaptureError> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        let f = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Box::new(crate::progress::Counted(f))
    };
    from_reader(raw)
}

/// [`open_input`] on any byte source.
pub(crate) fn from_reader(raw: Box<dyn Read + Send>) -> Result<Input, CaptureError> {
    let io_err = |source| CaptureError::Io {
        offset: 0,
        record: 0,
        source,
    };
    let mut raw = BufReader::with_capacity(READ_CHUNK, raw);
    let head = read_prefix(&mut raw, MAGIC_LEN).map_err(io_err)?;
    let compression = Compression::from_magic(&head);
    let raw: Box<dyn BufRead + Send> = Box::new(Cursor::new(head).chain(raw));
    let inner = codec::decoder(compression, raw).map_err(io_err)?;
    let mut inner = inner;
    let mut head = read_prefix(&mut inner, 8).map_err(io_err)?;
    if let Some(rest) = crate::dnstap::fstrm::start_frame_rest(&head) {
        // A Frame Streams control frame: read exactly the rest of it, so a
        // live stream is not waited on for more.
        head.extend(read_prefix(&mut inner, rest).map_err(io_err)?);
    }
    if head.is_empty() {
        return Err(CaptureError::Empty);
    }
    let kind = sniff(&head);
    Ok(Input {
        compression,
        kind,
        reader: Box::new(Cursor::new(head).chain(inner)),
    })
}

/// Read up to `n` bytes, fewer only at end of input.
fn read_prefix<R: Read + ?Sized>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let Some(space) = v.get_mut(got..) else { break };
        match r.read(space) {
            Ok(0) => break,
            Ok(k) => got += k.min(n - got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    v.truncate(got);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_every_magic() {
        for m in [
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xcd, 0x34],
            [0x34, 0xcd, 0xb2, 0xa1],
        ] {
            assert_eq!(sniff(&m), FileKind::Pcap);
        }
        assert_eq!(sniff(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]), FileKind::Pcapng);
        assert_eq!(sniff(b"\x83\x65C-DNS\x00"), FileKind::Cdns);
        assert_eq!(sniff(b"\x9f\x65C-DNS"), FileKind::Cdns);
        assert_eq!(sniff(b"\x84\x65C-DNS"), FileKind::Unknown);
        assert_eq!(sniff(b"\xa1\xb2"), FileKind::Unknown);
        assert_eq!(sniff(b""), FileKind::Unknown);
        let tap = crate::dnstap::fstrm::control_frame(
            crate::dnstap::fstrm::CONTROL_START,
            Some(crate::dnstap::fstrm::DNSTAP_CONTENT_TYPE),
        );
        assert_eq!(sniff(&tap), FileKind::Dnstap);
        assert_eq!(sniff(&tap[..30]), FileKind::Unknown);
    }

    #[test]
    fn empty_is_an_error() {
        let e = from_reader(Box::new(Cursor::new(Vec::new()))).unwrap_err();
        assert!(matches!(e, CaptureError::Empty));
        assert_eq!(e.to_string(), "empty input");
    }

    #[test]
    fn short_input_is_kept_whole() {
        let inp = from_reader(Box::new(Cursor::new(vec![1u8, 2, 3]))).unwrap();
        assert_eq!(inp.compression, Compression::None);
        assert_eq!(inp.kind, FileKind::Unknown);
        let mut v = Vec::new();
        inp.into_reader().read_to_end(&mut v).unwrap();
        assert_eq!(v, [1, 2, 3]);
    }

    /// A reader that hands out one byte per call, like a slow pipe.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.get(self.1), buf.first_mut()) {
                (Some(b), Some(d)) => {
                    *d = *b;
                    self.1 += 1;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn sniffs_through_short_reads() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut enc, b"\x0a\x0d\x0d\x0a rest of it").unwrap();
        let gz = enc.finish().unwrap();
        let inp = from_reader(Box::new(Trickle(gz, 0))).unwrap();
        assert_eq!(inp.compression, Compression::Gzip);
        assert_eq!(inp.kind, FileKind::Pcapng);
        let mut v = Vec::new();
        inp.into_reader().read_to_end(&mut v).unwrap();
        assert_eq!(v, b"\x0a\x0d\x0d\x0a rest of it");
    }
}
