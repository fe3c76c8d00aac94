//! C-DNS (RFC 8618) → C-DNS washing, one block at a time; and
//! [`for_each_query`], which reads the client queries out of a C-DNS file
//! for the Bloom filter sink with the same framing (see its module,
//! `queries.rs`).
//!
//! A C-DNS file is `["C-DNS", FilePreamble, [* Block]]`. The washer reads
//! the preamble, then one whole block at a time (its extent found by a
//! strict CBOR walk over a buffer filled from the reader as needed), rewrites
//! it and writes it, so memory is bounded by the largest block. Every CBOR
//! item that is not rewritten is copied byte for byte: unknown and negative
//! map keys, definite and indefinite encodings, integer widths.
//!
//! What is rewritten:
//! - `ip-address` table entries (BlockTables key 0). The role of an entry
//!   comes from the fields that reference it: Q/R `client-address-index`,
//!   address-event `ae-address-index` and malformed-message
//!   `client-address-index` are clients; Q/R-signature and
//!   malformed-message-data `server-address-index` are servers. An entry no
//!   field references is washed as [`Side::Unknown`]. The family comes from
//!   the referencing record's transport flags (bit 0 = IPv6), else from the
//!   stored length; when neither tells (prefix storage, no flags) the entry
//!   is zeroed (fail closed, counted in [`CdnsStats::blanked`]).
//! - When one entry is used in ways that need different treatment (client
//!   and server under `--scope clients`, or two families, or two prefix
//!   lengths), the server use keeps the entry and a copy is appended to the
//!   table for each other use, with its references re-pointed.
//! - `server-addresses` in every `CollectionParameters` (as server side).
//! - EDNS Client Subnet inside OPT RDATA in `name-rdata` (entries named by a
//!   Q/R signature's `opt-rdata-index` or by an RR whose class/type has type
//!   41), and inside `mm-payload` (a raw DNS message). OPT RDATA that cannot
//!   be walked is zeroed; a malformed payload that cannot be walked keeps its
//!   12-byte header and has the rest zeroed: either might hold an ECS option
//!   that could not be found. A `name-rdata` entry used both as OPT RDATA and
//!   as something else (byte-identical by chance) is washed for every use.
//! - Output marking (unless [`CdnsOptions::mark_output`] is off, for tests):
//!   in every `StorageParameters`, `storage-flags` bit 0 (anonymised data)
//!   is set and `anonymization-method` (key 11) is set to
//!   [`method_text`] (appended after `"; "` to an existing text). Under
//!   truncation the in-scope prefix keys 6–9 are set and entries store only
//!   `ceil(p/8)` bytes (addresses on `--keep` are cut too: the format has one
//!   prefix length per role). Storage hints are unchanged, as no field is
//!   removed.
//! - Unless [`CdnsOptions::keep_collection_info`]: `filter` and `host-id`
//!   become empty text and `interfaces` is removed (its CDDL type does not
//!   allow an empty array). `generator-id` stays.
//!
//! - Reverse names in `name-rdata` (unless `--reverse-names keep`): an entry
//!   that is a whole uncompressed name (QNAMEs, owner names, and the RDATA
//!   of PTR, CNAME, NS, DNAME) and the names inside the RDATA of the RRs
//!   whose type holds names (SOA, MX, SRV, ...; see [`crate::dnsenc`]) are
//!   washed as in packets ([`crate::revname`]); an entry whose length
//!   changes is re-encoded as a byte string of the new length. An entry
//!   with a non-canonical reverse name is zeroed (counted in
//!   [`CdnsStats::blanked`]), and so is an entry holding an `arpa` label
//!   that is neither a whole name nor RDATA of one known type (an RR
//!   without a class/type index, with a dangling one or a class/type
//!   without a type, RRs of two types, or no RR): it may be RDATA with a
//!   reverse name inside. RDATA of a known type without names is copied.
//! - A and AAAA RDATA (`--answers`): the entries used as RDATA of an RR of
//!   type A or AAAA, of 4 or 16 bytes, go through the address map. An entry
//!   of 4 or 16 bytes used as RDATA of an RR whose type cannot be told (as
//!   above) is zeroed (counted in [`CdnsStats::blanked`]).
//! - Reverse names in `mm-payload` (unless `--reverse-names keep`): the
//!   payload is rewritten as a DNS message in a packet
//!   ([`crate::revwash::rewrite_message`]); when the length changes the
//!   byte string is re-encoded with the new length (nothing points into
//!   it). A payload that cannot be rewritten (a non-canonical reverse name,
//!   names that cannot be decoded) keeps its 12-byte header and has the
//!   rest zeroed, as one that cannot be walked for ECS.
//!
//! Known limits: without `--answers`, A/AAAA RDATA is not washed (it is
//! not an endpoint address).
//!
//! Input is checked strictly: every block must be well-formed CBOR with
//! UTF-8 text (so the output is too), and the fields the washer reads must
//! have their CDDL types. An index that points past the end of the
//! `ip-address` table names no address and is left as it is.
//!
//! Errors: a cut or corrupt block ends the run with an error naming the
//! block (numbered from 0) and the byte offset in the (decompressed) input;
//! every complete block before it has been written and the output is closed
//! as a valid C-DNS file. For that to work in a stream, the block array is
//! always written with indefinite length: an input with a definite-length
//! block array (no sample has one) differs in that one head byte.

mod block;
mod cbor;
mod preamble;
mod queries;

use std::io::{self, Read, Write};

use self::block::BlockWasher;
use self::cbor::{Extent, Walker};
pub use self::preamble::method_text;
use self::preamble::PreError;
pub use self::queries::{for_each_query, normalise_qname};
use crate::wash::Washer;

#[cfg(doc)]
use crate::wash::Side;

/// Options for [`wash_cdns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdnsOptions {
    /// Keep `filter`, `host-id` and `interfaces` in CollectionParameters.
    pub keep_collection_info: bool,
    /// Mark the output as anonymised (storage flags, method, truncation
    /// prefix keys). Always on in real use; off only in tests, so that an
    /// identity wash reproduces the input byte for byte.
    pub mark_output: bool,
}

impl Default for CdnsOptions {
    fn default() -> Self {
        CdnsOptions {
            keep_collection_info: false,
            mark_output: true,
        }
    }
}

impl CdnsOptions {
    /// Options for real use: output marked, collection info as given.
    pub fn new(keep_collection_info: bool) -> Self {
        CdnsOptions {
            keep_collection_info,
            mark_output: true,
        }
    }
}

/// Counts from one C-DNS run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdnsStats {
    /// Blocks written.
    pub blocks: u64,
    /// Address table entries and `server-addresses` seen.
    pub addresses: u64,
    /// Addresses the technique was applied to.
    pub rewritten: u64,
    /// Table entries appended because one entry needed two treatments.
    pub split_entries: u64,
    /// ECS addresses rewritten.
    pub ecs_rewritten: u64,
    /// A/AAAA RDATA entries rewritten (`--answers`).
    pub answers_rewritten: u64,
    /// Addresses, OPT RDATA or malformed payloads zeroed (fail closed).
    pub blanked: u64,
    /// Q/R items seen.
    pub records: u64,
    /// Reverse names in `name-rdata` found and washed.
    pub names: crate::revname::NameStats,
}

impl CdnsStats {
    fn add(&mut self, o: &CdnsStats) {
        self.blocks += o.blocks;
        self.addresses += o.addresses;
        self.rewritten += o.rewritten;
        self.split_entries += o.split_entries;
        self.ecs_rewritten += o.ecs_rewritten;
        self.answers_rewritten += o.answers_rewritten;
        self.blanked += o.blanked;
        self.records += o.records;
        self.names.add(&o.names);
    }
}

/// Why a C-DNS wash failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CdnsError {
    /// The input is not a C-DNS file. Nothing was written.
    #[error("not a C-DNS file: {msg}")]
    NotCdns {
        /// What was found instead.
        msg: String,
    },
    /// A C-DNS file of another format version. Nothing was written.
    #[error("unsupported C-DNS format version {major}.{minor} (only 1.x, RFC 8618, is supported)")]
    UnsupportedVersion {
        /// major-format-version.
        major: u64,
        /// minor-format-version.
        minor: u64,
    },
    /// The file header or preamble is damaged. Nothing was written.
    #[error("corrupt C-DNS file preamble at byte {offset}: {msg}")]
    BadPreamble {
        /// Offset in the input.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
    /// A block is damaged; earlier blocks were written.
    #[error("corrupt C-DNS block {block} at byte {offset}: {msg}")]
    Corrupt {
        /// Block number, from 0 (= number of blocks written).
        block: u64,
        /// Offset in the input.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
    /// The input ends inside a block; earlier blocks were written.
    #[error("C-DNS input ends inside block {block} at byte {offset}")]
    Truncated {
        /// Block number, from 0 (= number of blocks written).
        block: u64,
        /// Offset in the input where it ends.
        offset: u64,
    },
    /// The file stores address prefixes and the technique needs full
    /// addresses. A usage error: nothing was written.
    #[error(
        "this C-DNS file stores address prefixes only; method '{method}' needs full addresses \
         (use a prefix-preserving method or truncate)"
    )]
    NeedsFullAddress {
        /// The method name.
        method: String,
    },
    /// The callback of [`for_each_query`] asked to stop with this message.
    #[error("stopped in C-DNS block {block} at byte {offset}: {msg}")]
    Stopped {
        /// Block number, from 0.
        block: u64,
        /// Input offset of the start of the block.
        offset: u64,
        /// The callback's message.
        msg: String,
    },
    /// Reading or writing failed.
    #[error("C-DNS I/O error: {0}")]
    Io(#[from] io::Error),
}

impl CdnsError {
    /// True for errors that are the user's choice, not the data (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, CdnsError::NeedsFullAddress { .. })
    }
}

/// A reader that keeps one CBOR item at a time in a growable buffer.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    at: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    walker: Walker,
}

enum ItemError {
    Incomplete(u64),
    Bad(u64, String),
    Io(io::Error),
}

impl<R: Read> Input<R> {
    fn new(r: R) -> Self {
        Input {
            r,
            buf: Vec::new(),
            at: 0,
            base: 0,
            eof: false,
            walker: Walker::default(),
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Read more input; false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.walker.shift(self.at);
            self.base += self.at as u64;
            self.at = 0;
        }
        let old = self.buf.len();
        let want = old.max(64 * 1024);
        self.buf.resize(old + want, 0);
        let mut got = 0;
        while got < want {
            match self.r.read(&mut self.buf[old + got..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old + got);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(old + got);
        Ok(got > 0)
    }

    /// The next unconsumed byte, if any.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        while self.at >= self.buf.len() {
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(self.buf.get(self.at).copied())
    }

    /// Make the next `n` bytes available; false if the input ends first.
    fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.at < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Length of the complete data item at the read position.
    fn item(&mut self) -> Result<usize, ItemError> {
        // After more input arrives, the walk carries on where it stopped.
        let mut ext = self.walker.extent(&self.buf, self.at);
        loop {
            match ext {
                Extent::Done(n) => return Ok(n),
                Extent::Bad(p, msg) => {
                    return Err(ItemError::Bad(self.base + p as u64, msg.into()))
                }
                Extent::Incomplete => match self.fill() {
                    Ok(true) => ext = self.walker.extent_resume(&self.buf, self.at),
                    Ok(false) => {
                        return Err(ItemError::Incomplete(self.base + self.buf.len() as u64))
                    }
                    Err(e) => return Err(ItemError::Io(e)),
                },
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.buf.len());
    }
}

/// Read the file array head and the `"C-DNS"` type identifier. Returns
/// the seven bytes read and whether the file array is indefinite.
fn read_type_id<R: Read>(inp: &mut Input<R>) -> Result<([u8; 7], bool), CdnsError> {
    let not = |msg: &str| CdnsError::NotCdns { msg: msg.into() };
    let outer_indef = match inp.peek()? {
        Some(0x83) => false,
        Some(0x9f) => true,
        Some(_) => return Err(not("does not start with a CBOR array of three items")),
        None => return Err(not("empty input")),
    };
    if !inp.need(7)? || inp.buf.get(inp.at + 1..inp.at + 7) != Some(b"\x65C-DNS".as_slice()) {
        return Err(not("no \"C-DNS\" file type identifier"));
    }
    let mut head = [0u8; 7];
    head.copy_from_slice(&inp.buf[inp.at..inp.at + 7]);
    inp.consume(7);
    Ok((head, outer_indef))
}

/// Length of the (complete, well-formed) file preamble at the read
/// position.
fn preamble_len<R: Read>(inp: &mut Input<R>) -> Result<usize, CdnsError> {
    match inp.item() {
        Ok(n) => Ok(n),
        Err(ItemError::Io(e)) => Err(e.into()),
        Err(ItemError::Incomplete(o)) => Err(CdnsError::BadPreamble {
            offset: o,
            msg: "input ends inside the file preamble".into(),
        }),
        Err(ItemError::Bad(o, msg)) => Err(CdnsError::BadPreamble { offset: o, msg }),
    }
}

/// Map a preamble parse error to the public error.
fn preamble_error(e: PreError, pre_at: u64, method: &str) -> CdnsError {
    match e {
        PreError::Version { major, minor } => CdnsError::UnsupportedVersion { major, minor },
        PreError::NeedsFull => CdnsError::NeedsFullAddress {
            method: method.to_string(),
        },
        PreError::Bad(b) => CdnsError::BadPreamble {
            offset: pre_at + b.at as u64,
            msg: b.msg,
        },
    }
}

/// Read the head of the block array: the number of blocks, `None` when
/// indefinite.
fn block_array_head<R: Read>(inp: &mut Input<R>) -> Result<Option<u64>, CdnsError> {
    let arr_at = inp.offset();
    match inp.peek()? {
        Some(0x9f) => {
            inp.consume(1);
            Ok(None)
        }
        Some(b) if b >> 5 == 4 && (b & 31) <= 27 => {
            let ai = b & 31;
            let hlen = if ai < 24 {
                1
            } else {
                1 + (1usize << (ai - 24))
            };
            if !inp.need(hlen)? {
                return Err(CdnsError::BadPreamble {
                    offset: arr_at,
                    msg: "input ends in the block array head".into(),
                });
            }
            let mut d = minicbor::Decoder::new(&inp.buf[inp.at..inp.at + hlen]);
            let count = d.array().ok().flatten().unwrap_or(0);
            inp.consume(hlen);
            Ok(Some(count))
        }
        Some(_) => Err(CdnsError::BadPreamble {
            offset: arr_at,
            msg: "file-blocks is not an array".into(),
        }),
        None => Err(CdnsError::BadPreamble {
            offset: arr_at,
            msg: "input ends before the block array".into(),
        }),
    }
}

/// Find the next block: its length in bytes at the read position (not
/// consumed), or `None` at the end of the block array (its break byte, if
/// any, consumed). `left` counts the blocks still to come in a definite
/// array.
fn next_block<R: Read>(
    inp: &mut Input<R>,
    left: &mut Option<u64>,
    block: u64,
) -> Result<Option<usize>, CdnsError> {
    let at = inp.offset();
    match left {
        Some(0) => return Ok(None),
        Some(n) => *n -= 1,
        None => {}
    }
    match inp.peek()? {
        None => return Err(CdnsError::Truncated { block, offset: at }),
        Some(0xff) if left.is_none() => {
            inp.consume(1);
            return Ok(None);
        }
        Some(_) => {}
    }
    match inp.item() {
        Ok(n) => Ok(Some(n)),
        Err(ItemError::Io(e)) => Err(e.into()),
        Err(ItemError::Incomplete(offset)) => Err(CdnsError::Truncated { block, offset }),
        Err(ItemError::Bad(offset, msg)) => Err(CdnsError::Corrupt { block, offset, msg }),
    }
}

/// Check that the file ends right after the block array (and the break of
/// an indefinite file array).
fn check_end<R: Read>(inp: &mut Input<R>, outer_indef: bool, block: u64) -> Result<(), CdnsError> {
    let end_at = inp.offset();
    let trailing = if outer_indef {
        match inp.peek()? {
            Some(0xff) => {
                inp.consume(1);
                inp.peek()?.is_some()
            }
            Some(_) => true,
            None => {
                return Err(CdnsError::Truncated {
                    block,
                    offset: end_at,
                })
            }
        }
    } else {
        inp.peek()?.is_some()
    };
    if trailing {
        return Err(CdnsError::Corrupt {
            block,
            offset: inp.offset(),
            msg: "data after the end of the C-DNS file".into(),
        });
    }
    Ok(())
}

/// Wash a C-DNS stream from `input` to `output`.
///
/// See the module documentation for what is rewritten. On a data error
/// after the preamble, everything up to the last complete block has been
/// written as a valid C-DNS file before the error is returned.
pub fn wash_cdns<R: Read, W: Write>(
    input: R,
    output: W,
    washer: &mut Washer,
    opts: &CdnsOptions,
) -> Result<CdnsStats, CdnsError> {
    let mut stats = CdnsStats::default();
    wash_cdns_counted(input, output, washer, opts, &mut stats)?;
    Ok(stats)
}

/// [`wash_cdns`], counting into `stats` as it goes: after an error they
/// say how many blocks were written before the fault.
pub fn wash_cdns_counted<R: Read, W: Write>(
    input: R,
    mut output: W,
    washer: &mut Washer,
    opts: &CdnsOptions,
    stats: &mut CdnsStats,
) -> Result<(), CdnsError> {
    let mut inp = Input::new(input);

    let (head, outer_indef) = read_type_id(&mut inp)?;
    let mut out = Vec::new();
    out.extend_from_slice(&head);

    // Preamble.
    let pre_at = inp.offset();
    let len = preamble_len(&mut inp)?;
    let (s, e) = (inp.at, inp.at + len);
    let params = preamble::rewrite(&mut inp.buf[s..e], &mut out, washer, opts, stats)
        .map_err(|e| preamble_error(e, pre_at, &washer.info.name))?;
    inp.consume(len);

    let mut left = block_array_head(&mut inp)?;
    out.push(0x9f);
    output.write_all(&out)?;

    let mut bw = BlockWasher::default();
    let res = blocks(
        &mut inp,
        &mut output,
        &mut left,
        &params,
        washer,
        opts,
        stats,
        &mut bw,
    );
    // Close the block array (and the file array) whatever happened.
    let mut tail = vec![0xff];
    if outer_indef {
        tail.push(0xff);
    }
    let closed = output.write_all(&tail).and_then(|()| output.flush());
    res?;
    closed?;

    // What follows the block array must be the end of the file.
    check_end(&mut inp, outer_indef, stats.blocks)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn blocks<R: Read, W: Write>(
    inp: &mut Input<R>,
    output: &mut W,
    left: &mut Option<u64>,
    params: &[preamble::Params],
    washer: &mut Washer,
    opts: &CdnsOptions,
    stats: &mut CdnsStats,
    bw: &mut BlockWasher,
) -> Result<(), CdnsError> {
    let mut out = Vec::new();
    loop {
        let block = stats.blocks;
        let at = inp.offset();
        let Some(len) = next_block(inp, left, block)? else {
            return Ok(());
        };
        let (s, e) = (inp.at, inp.at + len);
        out.clear();
        let mut bs = CdnsStats::default();
        bw.wash(&mut inp.buf[s..e], &mut out, params, washer, opts, &mut bs)
            .map_err(|b| CdnsError::Corrupt {
                block,
                offset: at + b.at as u64,
                msg: b.msg,
            })?;
        output.write_all(&out)?;
        inp.consume(len);
        stats.add(&bs);
        stats.blocks += 1;
    }
}
