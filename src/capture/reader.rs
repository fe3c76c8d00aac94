//! The streaming reader: one record at a time out of one reused buffer.
//!
//! The buffer is filled by large reads straight from the source and grows
//! only when a single record is larger than it, so after the first few
//! records nothing is allocated. A [`Unit`] borrows its record's bytes
//! mutably: the washer patches addresses in place and the writer writes the
//! slice back as it is.
//!
//! The format and, for pcap, the byte order are decided once from the file
//! header; pcapng decides the byte order again at every Section Header Block,
//! as the format allows each section its own.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::ops::Range;

use super::pcapng::{self as ng, TsResol};
use super::{CaptureError, READ_CHUNK};

/// Largest pcap record body accepted: four times libpcap's largest snaplen.
/// A larger `caplen` means a corrupt file, not a packet.
pub const MAX_PCAP_CAPLEN: usize = 4 * 256 * 1024;
/// Largest pcapng block accepted (NRBs and secrets blocks can be large).
pub const MAX_PCAPNG_BLOCK: usize = 16 * 1024 * 1024;

/// What the reader may leave out of the stream.
///
/// Every flag defaults to `false`, i.e. to removing the metadata: a new kind
/// of leak is closed unless the caller opts in. The flags are independent.
///
/// Unless all are set (and `userappl` is None), every pcapng Section Header
/// Block gets its section length set to -1 ("not given"), because a
/// shorter section would make a declared length wrong. With all set,
/// blocks come out byte-identical; otherwise Custom Blocks marked "do not
/// copy" (0x40000BAD) are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderOptions {
    /// Keep `opt_comment` options in pcapng blocks (default: strip them).
    pub keep_comments: bool,
    /// Pass pcapng Name Resolution Blocks on (default: mark them dropped).
    pub keep_nrb: bool,
    /// Keep the capturing host's own addresses in pcapng Interface
    /// Description Blocks: options `if_IPv4addr`, `if_IPv6addr`,
    /// `if_MACaddr`, `if_EUIaddr` (default: strip them).
    pub keep_interface_addresses: bool,
    /// Keep every other pcapng block and option as it is (default: copy
    /// metadata by allow-list). By default only the options known to be
    /// harmless are copied: timestamp resolution and offset and FCS length
    /// (IDB), packet flags and drop count (EPB), the interface statistics
    /// (ISB); interface names, descriptions, filters, OS and hardware
    /// strings, packet hashes, Decryption Secrets Blocks, custom blocks
    /// and unknown blocks and options are removed and counted
    /// ([`CaptureReader::metadata_removed`]).
    pub keep_metadata: bool,
    /// Mark every Section Header Block as written by ipwash: its
    /// `shb_userappl` becomes "ipwash VERSION (--method NAME)" with this
    /// technique name (default: none, and the original is removed unless
    /// `keep_metadata`).
    pub userappl: Option<&'static str>,
}

impl ReaderOptions {
    /// Everything kept: pcapng comes out byte-identical.
    pub const KEEP_ALL: ReaderOptions = ReaderOptions {
        keep_comments: true,
        keep_nrb: true,
        keep_interface_addresses: true,
        keep_metadata: true,
        userappl: None,
    };

    fn keeps_all(self) -> bool {
        self == Self::KEEP_ALL
    }
}

/// Facts about a packet record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketInfo {
    /// Where the captured packet bytes are within [`Unit::data`].
    pub range: Range<usize>,
    /// LINKTYPE_ value (of the file, or of the packet's interface).
    pub linktype: u32,
    /// Timestamp, whole seconds (0 for pcapng simple packets, which have none).
    pub ts_sec: u64,
    /// Timestamp, nanoseconds within the second.
    pub ts_nsec: u32,
    /// Length of the packet on the wire (may exceed the captured length).
    pub orig_len: u32,
    /// 1-based number of this packet in the file (packets only, as tshark
    /// counts frames).
    pub number: u64,
}

/// One record of the input, header included, ready to be written back.
#[derive(Debug)]
pub struct Unit<'a> {
    /// The whole on-disk record: pcap record header + captured bytes, or a
    /// whole pcapng block. Writing it verbatim reproduces the input (after
    /// comment stripping, when enabled).
    pub data: &'a mut [u8],
    /// Present for packet records (pcap records; pcapng EPB, SPB, PB).
    pub packet: Option<PacketInfo>,
    /// Why the writer must leave this unit out, if it must.
    pub dropped: Option<&'static str>,
}

#[derive(Debug, Clone, Copy)]
struct PcapFormat {
    big: bool,
    nanos: bool,
    /// Kuznetzov's modified format: 24-byte record headers.
    modified: bool,
    linktype: u32,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    resol: TsResol,
    offset_sec: i64,
}

#[derive(Debug)]
enum Format {
    Pcap(PcapFormat),
    Pcapng {
        big: bool,
        interfaces: Vec<Interface>,
    },
}

/// Where the next unit lies in the buffer, before it is handed out.
struct Found {
    start: usize,
    len: usize,
    packet: Option<PacketInfo>,
    dropped: Option<&'static str>,
    /// The unit's bytes were rebuilt in [`CaptureReader::side`] (a block
    /// that grew) instead of lying in the buffer.
    side: bool,
}

/// Streaming reader for classic pcap and pcapng.
pub struct CaptureReader<R> {
    src: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    records: u64,
    packets: u64,
    opts: ReaderOptions,
    header: Vec<u8>,
    format: Format,
    done: bool,
    /// A rebuilt block that no longer fits in its place in `buf`.
    side: Vec<u8>,
    /// Metadata removed so far, by kind (options and blocks).
    removed: BTreeMap<&'static str, u64>,
}

impl<R> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("records", &self.records)
            .field("packets", &self.packets)
            .finish_non_exhaustive()
    }
}

const PCAP_HEADER_LEN: usize = 24;

impl<R: Read> CaptureReader<R> {
    /// Read the pcap file header, or check the first pcapng Section Header
    /// Block (which stays in the stream as the first unit).
    pub fn new(src: R, opts: ReaderOptions) -> Result<Self, CaptureError> {
        let mut r = CaptureReader {
            src,
            // Twice the input's buffer: a refill then asks for at least a
            // whole chunk, which a buffered source passes straight through
            // instead of copying it twice.
            buf: vec![0; 2 * READ_CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            records: 0,
            packets: 0,
            opts,
            header: Vec::new(),
            format: Format::Pcapng {
                big: false,
                interfaces: Vec::new(),
            },
            done: false,
            side: Vec::new(),
            removed: BTreeMap::new(),
        };
        let have = r.fill(PCAP_HEADER_LEN).map_err(|source| CaptureError::Io {
            offset: 0,
            record: 0,
            source,
        })?;
        let head = r.buf.get(..have).unwrap_or_default();
        let magic = match head {
            [] => return Err(CaptureError::Empty),
            [a, b, c, d, ..] => [*a, *b, *c, *d],
            _ => return Err(CaptureError::TruncatedFileHeader { have, need: 4 }),
        };
        let (big, nanos, modified) = match magic {
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false, false),
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true, false),
            [0xa1, 0xb2, 0xcd, 0x34] => (true, false, true),
            [0x34, 0xcd, 0xb2, 0xa1] => (false, false, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                if have < 12 {
                    return Err(CaptureError::TruncatedFileHeader { have, need: 12 });
                }
                if shb_byte_order(head).is_none() {
                    return Err(CaptureError::Corrupt {
                        offset: 0,
                        record: 1,
                        reason: "bad byte-order magic in section header block",
                    });
                }
                return Ok(r);
            }
            _ => return Err(CaptureError::UnknownFormat { magic }),
        };
        if have < PCAP_HEADER_LEN {
            return Err(CaptureError::TruncatedFileHeader {
                have,
                need: PCAP_HEADER_LEN,
            });
        }
        // The upper bits carry FCS information (as in libpcap's LT_LINKTYPE).
        let linktype = ng::u32_at(head, 20, big) & 0x03FF_FFFF;
        r.header = head.get(..PCAP_HEADER_LEN).unwrap_or_default().to_vec();
        r.format = Format::Pcap(PcapFormat {
            big,
            nanos,
            modified,
            linktype,
        });
        r.pos = PCAP_HEADER_LEN;
        r.offset = PCAP_HEADER_LEN as u64;
        Ok(r)
    }

    /// Bytes to write before the first unit: the pcap file header, or
    /// nothing for pcapng (whose Section Header Block is a unit).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The link type of a classic pcap file (None for pcapng, whose link
    /// types are per interface).
    pub fn pcap_linktype(&self) -> Option<u32> {
        match &self.format {
            Format::Pcap(f) => Some(f.linktype),
            Format::Pcapng { .. } => None,
        }
    }

    /// True for pcapng input.
    pub fn is_pcapng(&self) -> bool {
        matches!(self.format, Format::Pcapng { .. })
    }

    /// pcapng options removed so far, by name (`if_filter`, `epb_hash`,
    /// `opt_comment`, ...). Removed blocks are reported per unit
    /// ([`Unit::dropped`]: `decryption_secrets`, `custom`, `unknown_block`,
    /// `nrb`, ...).
    pub fn metadata_removed(&self) -> &BTreeMap<&'static str, u64> {
        &self.removed
    }

    /// Packets handed out so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// Units (records, blocks) handed out so far, dropped ones included.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Offset in the decompressed stream just after the last unit handed
    /// out (the pcap file header counts as read).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next unit, `Ok(None)` at a clean end of input. After an error the
    /// reader is finished and returns `Ok(None)`.
    pub fn next_unit(&mut self) -> Result<Option<Unit<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let found = match self.advance() {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        let data = if found.side {
            &mut self.side[..]
        } else {
            self.buf
                .get_mut(found.start..found.start + found.len)
                .unwrap_or_default()
        };
        Ok(Some(Unit {
            data,
            packet: found.packet,
            dropped: found.dropped,
        }))
    }

    /// Append whole units to `out` until `max_units` units or `max_bytes`
    /// bytes have been added, calling `unit(start, end, packet, dropped)`
    /// for each with its place in `out`, the packet's range inside the unit
    /// and its link type. Ok(true) when the input may have more, Ok(false)
    /// at its end; after an error the units before the fault are in `out`.
    ///
    /// The same units as [`CaptureReader::next_unit`] one by one, but the
    /// classic pcap records already in the buffer are found by their
    /// headers alone and copied in one piece.
    pub fn read_into(
        &mut self,
        out: &mut Vec<u8>,
        max_units: usize,
        max_bytes: usize,
        mut unit: impl FnMut(usize, usize, Option<(usize, usize, u32)>, Option<&'static str>),
    ) -> Result<bool, CaptureError> {
        let (mut units, first) = (0usize, out.len());
        loop {
            if units >= max_units || out.len() - first >= max_bytes {
                return Ok(true);
            }
            if let Format::Pcap(f) = self.format {
                let hlen = if f.modified { 24 } else { 16 };
                let avail = self.buf.get(self.pos..self.end).unwrap_or_default();
                let base = out.len();
                let room = max_bytes - (base - first);
                let (mut o, mut k) = (0, 0u64);
                while units < max_units && o < room {
                    let Some(h) = avail.get(o..o + hlen) else {
                        break;
                    };
                    let caplen = ng::u32_at(h, 8, f.big) as usize;
                    // Oversized or incomplete: the record-by-record path
                    // reports or refills.
                    if caplen > MAX_PCAP_CAPLEN || o + hlen + caplen > avail.len() {
                        break;
                    }
                    let len = hlen + caplen;
                    unit(
                        base + o,
                        base + o + len,
                        Some((hlen, len, f.linktype)),
                        None,
                    );
                    o += len;
                    k += 1;
                    units += 1;
                }
                if o > 0 {
                    out.extend_from_slice(avail.get(..o).unwrap_or_default());
                    self.pos += o;
                    self.offset += o as u64;
                    self.records += k;
                    self.packets += k;
                    continue;
                }
            }
            let Some(u) = self.next_unit()? else {
                return Ok(false);
            };
            let start = out.len();
            out.extend_from_slice(u.data);
            let pkt = u
                .packet
                .as_ref()
                .map(|p| (p.range.start, p.range.end, p.linktype));
            unit(start, out.len(), pkt, u.dropped);
            units += 1;
        }
    }

    /// Make `need` unread bytes available if the input has them; returns how
    /// many unread bytes there are.
    fn fill(&mut self, need: usize) -> io::Result<usize> {
        if self.end - self.pos >= need {
            return Ok(self.end - self.pos);
        }
        if self.buf.len() - self.pos < need {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        while self.end - self.pos < need && !self.eof {
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            let room = space.len();
            match self.src.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(room),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    fn fill_at(&mut self, need: usize, record: u64) -> Result<usize, CaptureError> {
        let offset = self.offset;
        self.fill(need).map_err(|source| CaptureError::Io {
            offset,
            record,
            source,
        })
    }

    /// Hand out `len` bytes at `pos` (after in-place edits shrank the record
    /// from `consumed`).
    fn take(&mut self, consumed: usize, len: usize) -> (usize, usize) {
        let start = self.pos;
        self.pos += consumed;
        self.offset += consumed as u64;
        self.records += 1;
        (start, len)
    }

    fn advance(&mut self) -> Result<Option<Found>, CaptureError> {
        match self.format {
            Format::Pcap(f) => self.advance_pcap(f),
            Format::Pcapng { .. } => self.advance_pcapng(),
        }
    }

    fn advance_pcap(&mut self, f: PcapFormat) -> Result<Option<Found>, CaptureError> {
        let record = self.records + 1;
        let offset = self.offset;
        let hlen = if f.modified { 24 } else { 16 };
        let have = self.fill_at(hlen, record)?;
        if have == 0 {
            return Ok(None);
        }
        if have < hlen {
            return Err(CaptureError::TruncatedRecordHeader {
                offset,
                record,
                have,
                need: hlen,
            });
        }
        // The record header's fields and the record's extent come from
        // pcap-parser's frame parsers; the big-endian modified format, which
        // it does not parse, from ours.
        let frame = |b: &[u8]| -> Result<(u32, u32, usize, u32), usize> {
            use pcap_parser::pcap::parse_pcap_frame_modified;
            use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be};
            let r = match (f.modified, f.big) {
                (false, false) => parse_pcap_frame(b),
                (false, true) => parse_pcap_frame_be(b),
                (true, false) => parse_pcap_frame_modified(b),
                (true, true) => {
                    let caplen = ng::u32_at(b, 8, true) as usize;
                    if b.len() < hlen + caplen {
                        return Err(hlen + caplen);
                    }
                    let h = |at| ng::u32_at(b, at, true);
                    return Ok((h(0), h(4), caplen, h(12)));
                }
            };
            match r {
                Ok((_, blk)) => Ok((blk.ts_sec, blk.ts_usec, blk.caplen as usize, blk.origlen)),
                // Needs more bytes: the whole record's length.
                Err(nom::Err::Incomplete(nom::Needed::Size(n))) => Err(b.len() + n.get()),
                Err(_) => Err(usize::MAX),
            }
        };
        let mut parsed = frame(self.buf.get(self.pos..self.end).unwrap_or_default());
        if let Err(need) = parsed {
            // caplen, as the header says, for the bound and the message.
            let caplen = need.saturating_sub(hlen);
            if caplen > MAX_PCAP_CAPLEN {
                return Err(CaptureError::Corrupt {
                    offset,
                    record,
                    reason: "record length (caplen) larger than 1 MiB",
                });
            }
            let have = self.fill_at(need, record)?;
            if have < need {
                return Err(CaptureError::TruncatedRecord {
                    offset,
                    record,
                    have,
                    need,
                });
            }
            parsed = frame(self.buf.get(self.pos..self.end).unwrap_or_default());
        }
        let Ok((sec, frac, caplen, orig_len)) = parsed else {
            return Err(CaptureError::Corrupt {
                offset,
                record,
                reason: "record header cannot be parsed",
            });
        };
        if caplen > MAX_PCAP_CAPLEN {
            return Err(CaptureError::Corrupt {
                offset,
                record,
                reason: "record length (caplen) larger than 1 MiB",
            });
        }
        let need = hlen + caplen;
        let per_sec = if f.nanos { 1_000_000_000 } else { 1_000_000 };
        let scale = if f.nanos { 1 } else { 1000 };
        // A fraction of a second or more is unusual but valid: carry it.
        let (ts_sec, ts_nsec) = if frac < per_sec {
            (u64::from(sec), frac * scale)
        } else {
            (
                u64::from(sec) + u64::from(frac / per_sec),
                (frac % per_sec) * scale,
            )
        };
        self.packets += 1;
        let packet = PacketInfo {
            range: hlen..need,
            linktype: f.linktype,
            ts_sec,
            ts_nsec,
            orig_len,
            number: self.packets,
        };
        let (start, len) = self.take(need, need);
        Ok(Some(Found {
            start,
            len,
            packet: Some(packet),
            dropped: None,
            side: false,
        }))
    }

    fn advance_pcapng(&mut self) -> Result<Option<Found>, CaptureError> {
        let record = self.records + 1;
        let offset = self.offset;
        let have = self.fill_at(12, record)?;
        if have == 0 {
            return Ok(None);
        }
        let corrupt = |reason| CaptureError::Corrupt {
            offset,
            record,
            reason,
        };
        let bad_len = |len: usize, reason| CaptureError::BadBlockLength {
            offset,
            record,
            len: len as u64,
            reason,
        };
        let head = self.buf.get(self.pos..self.end).unwrap_or_default();
        let is_shb = head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
        let need_head = if is_shb { 12 } else { 8 };
        if have < need_head {
            return Err(CaptureError::TruncatedRecordHeader {
                offset,
                record,
                have,
                need: need_head,
            });
        }
        let big = if is_shb {
            shb_byte_order(head)
                .ok_or_else(|| corrupt("bad byte-order magic in section header block"))?
        } else {
            match self.format {
                Format::Pcapng { big, .. } => big,
                Format::Pcap(_) => false,
            }
        };
        let btype = ng::u32_at(head, 0, big);
        let total = ng::u32_at(head, 4, big) as usize;
        if total < 12 {
            return Err(bad_len(total, "shorter than 12 bytes"));
        }
        if total % 4 != 0 {
            return Err(bad_len(total, "not a multiple of 4"));
        }
        if total > MAX_PCAPNG_BLOCK {
            return Err(bad_len(total, "larger than 16 MiB"));
        }
        let have = self.fill_at(total, record)?;
        if have < total {
            return Err(CaptureError::TruncatedRecord {
                offset,
                record,
                have,
                need: total,
            });
        }
        let opts = self.opts;
        let pos = self.pos;
        let block = self.buf.get_mut(pos..pos + total).unwrap_or_default();
        if ng::u32_at(block, total - 4, big) as usize != total {
            return Err(bad_len(total, "trailing length differs"));
        }
        let Format::Pcapng {
            big: section_big,
            interfaces,
        } = &mut self.format
        else {
            return Err(corrupt("pcapng block in a pcap file"));
        };
        let mut packet = None;
        let mut dropped = None;
        let mut len = total;
        let mut side = false;
        let removed = &mut self.removed;
        let keeps_all = opts.keeps_all();
        // The allow-list: harmless options always, comments and interface
        // addresses by their own switches, the rest with `keep_metadata`.
        let keep = |btype: u32, code: u16| {
            if code == ng::OPT_COMMENT {
                return opts.keep_comments;
            }
            if btype == ng::IDB && ng::IF_ADDRESS_OPTIONS.contains(&code) {
                return opts.keep_interface_addresses;
            }
            if btype == ng::SHB && code == ng::SHB_USERAPPL && opts.userappl.is_some() {
                return false;
            }
            opts.keep_metadata || ng::harmless_option(btype, code)
        };
        let mut filter = |block: &mut [u8], at: usize| {
            if keeps_all {
                return block.len();
            }
            ng::filter_options(
                block,
                at,
                big,
                |c| keep(btype, c),
                |c| *removed.entry(ng::option_name(btype, c)).or_default() += 1,
            )
        };
        match btype {
            ng::SHB => {
                if total < 28 {
                    return Err(bad_len(total, "section header block shorter than 28 bytes"));
                }
                if ng::u16_at(block, 8 + 4, big) != 1 {
                    return Err(corrupt("unsupported pcapng major version"));
                }
                // Dropping or shrinking blocks would make a declared section
                // length wrong; -1 ("not given") is always valid.
                if !keeps_all {
                    if let Some(sl) = block.get_mut(16..24) {
                        sl.fill(0xff);
                    }
                }
                *section_big = big;
                interfaces.clear();
                len = filter(block, 24);
                if let Some(m) = opts.userappl {
                    // The block grows: rebuild it beside the buffer.
                    self.side.clear();
                    self.side
                        .extend_from_slice(block.get(..len).unwrap_or_default());
                    ng::append_option(&mut self.side, 24, big, &ng::userappl_option(m, big));
                    len = self.side.len();
                    side = true;
                }
            }
            ng::IDB => {
                if total < 20 {
                    return Err(bad_len(
                        total,
                        "interface description block shorter than 20 bytes",
                    ));
                }
                let (resol, offset_sec) = ng::idb_time_options(block, big);
                interfaces.push(Interface {
                    linktype: u32::from(ng::u16_at(block, 8, big)),
                    snaplen: ng::u32_at(block, 12, big),
                    resol,
                    offset_sec,
                });
                len = filter(block, 16);
            }
            ng::EPB | ng::PB => {
                if total < 32 {
                    return Err(bad_len(total, "packet block shorter than 32 bytes"));
                }
                let ifid = if btype == ng::EPB {
                    ng::u32_at(block, 8, big) as usize
                } else {
                    usize::from(ng::u16_at(block, 8, big))
                };
                let iface = interfaces
                    .get(ifid)
                    .ok_or_else(|| corrupt("packet on an undefined interface"))?;
                let ts = (u64::from(ng::u32_at(block, 12, big)) << 32)
                    | u64::from(ng::u32_at(block, 16, big));
                let caplen = ng::u32_at(block, 20, big) as usize;
                let orig_len = ng::u32_at(block, 24, big);
                if caplen > total - 32 {
                    return Err(corrupt("captured length larger than the block"));
                }
                let (ts_sec, ts_nsec) = packet_time(iface, ts);
                self.packets += 1;
                packet = Some(PacketInfo {
                    range: 28..28 + caplen,
                    linktype: iface.linktype,
                    ts_sec,
                    ts_nsec,
                    orig_len,
                    number: self.packets,
                });
                len = filter(block, 28 + ng::pad4(caplen));
            }
            ng::SPB => {
                if total < 16 {
                    return Err(bad_len(total, "simple packet block shorter than 16 bytes"));
                }
                let iface = interfaces
                    .first()
                    .ok_or_else(|| corrupt("simple packet block without an interface"))?;
                let orig_len = ng::u32_at(block, 8, big);
                let mut caplen = (total - 16).min(orig_len as usize);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                self.packets += 1;
                packet = Some(PacketInfo {
                    range: 12..12 + caplen,
                    linktype: iface.linktype,
                    ts_sec: 0,
                    ts_nsec: 0,
                    orig_len,
                    number: self.packets,
                });
            }
            ng::NRB => {
                if !opts.keep_nrb {
                    dropped = Some("nrb");
                } else if let Some(at) = ng::nrb_options_start(block, big) {
                    if !keeps_all {
                        let comments: &[u16] = if opts.keep_comments {
                            &[]
                        } else {
                            &[ng::OPT_COMMENT]
                        };
                        len = ng::strip_options(block, at, big, comments);
                    }
                }
            }
            // The pcapng spec forbids copying this one into a rewritten
            // file; only the everything-kept (byte-identical) mode keeps it.
            ng::CB_NOCOPY if !keeps_all => dropped = Some("custom_nocopy"),
            ng::CB_COPY if !opts.keep_metadata => dropped = Some("custom"),
            // Session keys: whoever holds them can decrypt DoT and DoH
            // sessions whose DNS is not washed.
            ng::DSB if !opts.keep_metadata => dropped = Some("decryption_secrets"),
            ng::ISB if total >= 24 => len = filter(block, 20),
            ng::DSB if total >= 20 && !keeps_all && !opts.keep_comments => {
                let at = 16 + ng::pad4(ng::u32_at(block, 12, big) as usize);
                len = ng::strip_options(block, at, big, &[ng::OPT_COMMENT]);
            }
            ng::ISB | ng::DSB | ng::CB_NOCOPY | ng::CB_COPY => {}
            // Block types whose contents are not known may hold anything.
            _ if !opts.keep_metadata => dropped = Some("unknown_block"),
            _ => {}
        }
        let (start, len) = self.take(total, len);
        Ok(Some(Found {
            start,
            len,
            packet,
            dropped,
            side,
        }))
    }
}

/// The byte order of a section from its header's byte-order magic.
fn shb_byte_order(head: &[u8]) -> Option<bool> {
    match head.get(8..12)? {
        [0x1a, 0x2b, 0x3c, 0x4d] => Some(true),
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(false),
        _ => None,
    }
}

fn packet_time(iface: &Interface, ts: u64) -> (u64, u32) {
    let (sec, nsec) = iface.resol.split(ts);
    let sec = if iface.offset_sec >= 0 {
        sec.saturating_add(iface.offset_sec.unsigned_abs())
    } else {
        sec.saturating_sub(iface.offset_sec.unsigned_abs())
    };
    (sec, nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that returns at most `step` bytes per read, like a pipe.
    struct Slow<'a>(&'a [u8], usize);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn pcap(records: &[usize]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend([0; 8]);
        v.extend(65535u32.to_le_bytes());
        v.extend(1u32.to_le_bytes());
        for (i, &n) in records.iter().enumerate() {
            v.extend((i as u32).to_le_bytes());
            v.extend(0u32.to_le_bytes());
            v.extend((n as u32).to_le_bytes());
            v.extend((n as u32).to_le_bytes());
            v.extend(vec![i as u8; n]);
        }
        v
    }

    #[test]
    fn buffer_is_reused_across_records() {
        let sizes: Vec<usize> = (0..3000).map(|i| (i * 37) % 1500).collect();
        let f = pcap(&sizes);
        for step in [1, 7, 4096, usize::MAX] {
            let mut r = CaptureReader::new(Slow(&f, step), ReaderOptions::default()).unwrap();
            let mut n = 0;
            while let Some(u) = r.next_unit().unwrap() {
                let p = u.packet.unwrap();
                assert_eq!(p.range.len(), sizes[n]);
                assert!(u.data[p.range].iter().all(|&b| b == n as u8));
                n += 1;
            }
            assert_eq!(n, sizes.len());
            assert_eq!(r.buf.len(), 2 * READ_CHUNK, "no growth for small records");
            assert_eq!(r.offset(), f.len() as u64);
        }
    }

    #[test]
    fn records_larger_than_the_buffer() {
        let sizes = [10, MAX_PCAP_CAPLEN, 3, READ_CHUNK + 1, 0];
        let f = pcap(&sizes);
        let mut r = CaptureReader::new(Slow(&f, 100_000), ReaderOptions::default()).unwrap();
        for (i, &n) in sizes.iter().enumerate() {
            let u = r.next_unit().unwrap().unwrap();
            assert_eq!(u.data.len(), 16 + n);
            assert_eq!(u.packet.unwrap().number, i as u64 + 1);
        }
        assert!(r.next_unit().unwrap().is_none());
        assert!(r.buf.len() <= 2 * (MAX_PCAP_CAPLEN + 16));
    }

    /// Units one by one with `next_unit`: bytes, unit ends, packet ranges,
    /// the error text if any, and the counters at the end.
    fn one_by_one(f: &[u8], step: usize) -> (Vec<u8>, Vec<usize>, Option<String>, u64, u64) {
        let mut r = CaptureReader::new(Slow(f, step), ReaderOptions::default()).unwrap();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let err = loop {
            match r.next_unit() {
                Ok(Some(u)) => {
                    out.extend_from_slice(u.data);
                    ends.push(out.len());
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        (out, ends, err, r.records_read(), r.offset())
    }

    #[test]
    fn read_into_gives_the_same_units() {
        let sizes: Vec<usize> = (0..3000).map(|i| (i * 37) % 1500).collect();
        let whole = pcap(&sizes);
        let mut oversized = pcap(&sizes[..50]);
        oversized.extend(pcap(&[MAX_PCAP_CAPLEN + 1]).get(24..40).unwrap());
        let cut = &whole[..whole.len() - 700];
        for f in [&whole[..], cut, &oversized[..]] {
            for step in [7, 4096, usize::MAX] {
                let want = one_by_one(f, step);
                // The cut and the oversized files end in an error.
                assert_eq!(want.2.is_some(), f.len() != whole.len());
                for (max_units, max_bytes) in [(1, usize::MAX), (100, 5000), (4096, 1 << 20)] {
                    let mut r =
                        CaptureReader::new(Slow(f, step), ReaderOptions::default()).unwrap();
                    let (mut out, mut ends) = (Vec::new(), Vec::new());
                    let err = loop {
                        let before = ends.len();
                        let res = r.read_into(&mut out, max_units, max_bytes, |s, e, p, d| {
                            assert_eq!(s, ends.last().copied().unwrap_or(0));
                            let (a, b, lt) = p.unwrap();
                            assert_eq!((a, lt, d), (16, 1, None));
                            assert!(b >= a);
                            ends.push(e);
                        });
                        assert!(ends.len() - before <= max_units);
                        match res {
                            Ok(true) => {}
                            Ok(false) => break None,
                            Err(e) => break Some(e.to_string()),
                        }
                    };
                    assert_eq!(out, want.0, "step {step}, {max_units} units");
                    assert_eq!(ends, want.1);
                    assert_eq!(err, want.2);
                    assert_eq!((r.records_read(), r.offset()), (want.3, want.4));
                }
            }
        }
    }
}
