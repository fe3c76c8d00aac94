//! The one error type of the capture layer. Every variant raised while
//! reading says where: the byte offset in the *decompressed* stream and the
//! 1-based number of the record (pcap record, pcapng block) being read, so a
//! user can find the spot with a hex dump and the CLI can say how much of
//! the output is valid.

use std::io;
use std::path::PathBuf;

/// What went wrong while opening or reading a capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The input holds no bytes at all (after decompression).
    #[error("empty input")]
    Empty,
    /// The input could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The input is neither pcap nor pcapng.
    #[error("not a pcap or pcapng capture (first bytes {})", hex(magic))]
    UnknownFormat {
        /// The first bytes of the input (up to 4).
        magic: [u8; 4],
    },
    /// The input ends inside the pcap file header or the first pcapng block
    /// header.
    #[error("truncated file header: input ends after {have} of {need} bytes")]
    TruncatedFileHeader {
        /// Bytes present.
        have: usize,
        /// Bytes a header needs.
        need: usize,
    },
    /// The input ends inside a record (block) header.
    #[error("record {record} at byte {offset}: truncated record header ({have} of {need} bytes)")]
    TruncatedRecordHeader {
        /// Offset of the record's first byte.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// Bytes present.
        have: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The input ends inside a record's body.
    #[error("record {record} at byte {offset}: truncated record ({have} of {need} bytes)")]
    TruncatedRecord {
        /// Offset of the record's first byte.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// Bytes present.
        have: usize,
        /// Bytes the record claims.
        need: usize,
    },
    /// A pcapng block length is impossible (below 12, not a multiple of 4,
    /// too large, or the trailing copy differs).
    #[error("record {record} at byte {offset}: bad block length {len}: {reason}")]
    BadBlockLength {
        /// Offset of the block's first byte.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// The length read.
        len: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The record's contents are inconsistent.
    #[error("record {record} at byte {offset}: corrupt: {reason}")]
    Corrupt {
        /// Offset of the record's first byte.
        offset: u64,
        /// 1-based record number.
        record: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading (or decompressing) failed.
    #[error("read error at byte {offset} (record {record}): {source}")]
    Io {
        /// Bytes of decompressed input consumed before the failure.
        offset: u64,
        /// 1-based number of the record being read (0: before the first).
        record: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// Byte offset in the decompressed stream where the failing record
    /// starts: everything before it was read as complete records. `None` for
    /// errors that are not tied to a position.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Empty | CaptureError::UnknownFormat { .. } => Some(0),
            CaptureError::TruncatedFileHeader { .. } => Some(0),
            CaptureError::Open { .. } => None,
            CaptureError::TruncatedRecordHeader { offset, .. }
            | CaptureError::TruncatedRecord { offset, .. }
            | CaptureError::BadBlockLength { offset, .. }
            | CaptureError::Corrupt { offset, .. }
            | CaptureError::Io { offset, .. } => Some(*offset),
        }
    }

    /// 1-based number of the record being read, if the error is tied to one.
    pub fn record(&self) -> Option<u64> {
        match self {
            CaptureError::TruncatedRecordHeader { record, .. }
            | CaptureError::TruncatedRecord { record, .. }
            | CaptureError::BadBlockLength { record, .. }
            | CaptureError::Corrupt { record, .. } => Some(*record),
            CaptureError::Io { record, .. } if *record > 0 => Some(*record),
            _ => None,
        }
    }

    /// True when the input simply stops early (truncated header or record),
    /// as opposed to holding bytes that make no sense.
    pub fn is_truncation(&self) -> bool {
        matches!(
            self,
            CaptureError::TruncatedFileHeader { .. }
                | CaptureError::TruncatedRecordHeader { .. }
                | CaptureError::TruncatedRecord { .. }
        )
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}
