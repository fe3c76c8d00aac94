//! Capture files in and out: the streaming layer under `ipwash wash`.
//!
//! The washer rewrites addresses *in place*, so this layer hands out every
//! record of the input as raw bytes ("units") and the writer copies them back
//! verbatim. That is how the output keeps the input's byte order, timestamp
//! precision, link types, sections and every block nobody touched, without a
//! serialiser that could drift from the input.
//!
//! - [`open_input`] opens a path (`-` = stdin), recognises gzip, xz, zstd
//!   and bzip2 by their magic and decompresses on the fly (on a thread of
//!   its own, see `codec`), then sniffs the format of the
//!   decompressed bytes ([`FileKind`]).
//! - [`CaptureReader`] reads classic pcap (both byte orders, µs and ns
//!   magics, the "modified" Kuznetzov format) and pcapng (several sections of
//!   either byte order, per-interface link type and `if_tsresol`, EPB, SPB,
//!   obsolete PB). Each [`Unit`] borrows one reused buffer that grows to the
//!   largest record and then stays put, so the hot loop does not allocate.
//! - pcapng metadata that can leak is handled in the reader so every caller
//!   gets it right: Name Resolution Blocks are marked dropped, comment
//!   options are cut out of every block and the capturing host's own
//!   addresses (`if_IPv4addr`, `if_IPv6addr`, `if_MACaddr`, `if_EUIaddr`) out
//!   of every Interface Description Block, each unless the caller asks to
//!   keep it ([`ReaderOptions`]; all default to stripping).
//! - [`Output`] writes plain, gzip, xz, zstd or bzip2 (compressed on
//!   threads of their own, see `codec`) to stdout or to a temporary file
//!   next to the target that is renamed into place by [`Output::finish`], so
//!   a failed run never leaves a half-written file under the final name.

mod codec;
mod error;
mod input;
mod output;
mod pcapng;
mod reader;

pub use codec::{Compression, OutputCodec, ThreadedReader};
pub use error::CaptureError;
pub use input::{open_input, FileKind, Input};
pub use output::{
    commit_temp, discard_temp, is_special_file, is_terminal_stdout, remove_pending_temps,
    track_temp, write_replacing, write_replacing_private, Output,
};
pub use reader::{
    CaptureReader, PacketInfo, ReaderOptions, Unit, MAX_PCAPNG_BLOCK, MAX_PCAP_CAPLEN,
};

/// Size of the large reads done by the input and reader buffers.
pub(crate) const READ_CHUNK: usize = 256 * 1024;
