//! dnstap → dnstap washing, frame by frame; and [`for_each_query`], which
//! reads the client queries out of a dnstap stream for the Bloom filter
//! sink.
//!
//! A dnstap file (or unidirectional stream) is Frame Streams ([`fstrm`])
//! with the content type `protobuf:dnstap.Dnstap`; each data frame holds one
//! protobuf `Dnstap` message. Frames are read one at a time, so memory is
//! bounded by the largest frame, and each is written as soon as it is
//! washed. The protobuf is walked field by field ([`proto`]) and every field
//! that is not rewritten is copied byte for byte: unknown fields, field
//! order, non-minimal encodings. Control frames are copied whole.
//!
//! What is rewritten, in every `Dnstap` message:
//! - `Message.query_address` (4) and `Message.response_address` (5): 4 bytes
//!   are IPv4 and 16 bytes IPv6; a `socket_family` (2) that disagrees with
//!   the length, or any other length, makes the message unparsable (below).
//!   Roles come from `Message.type` (1): the query side (the initiator: the
//!   client of `CLIENT_*`, the resolver itself in `RESOLVER_*`, the querier
//!   of `AUTH_*`, ...) is [`Side::Client`] and the response side is
//!   [`Side::Server`], so `--scope clients` keeps the server end, as for
//!   captures. A message without a known type has both as
//!   [`Side::Unknown`] (always rewritten).
//! - `Message.query_message` (10) and `Message.response_message` (14): the
//!   DNS message is washed with the same code as captures (the EDNS Client
//!   Subnet option, as a client prefix). Should a DNS message change
//!   length, only the length prefixes around it are re-encoded.
//! - Unless [`DnstapOptions::keep_collection_info`]: `identity` (1) and
//!   `version` (2) become empty, and `extra` (3) is removed.
//!
//! A message whose addresses or DNS messages cannot be washed is dropped
//! and counted (fail closed), or with [`DnstapOptions::pass_unparsed`]
//! written with what could be washed washed and the rest unchanged.
//!
//! Errors: a cut or damaged frame, or a frame whose protobuf cannot be
//! walked, ends the run with an error naming the frame (counted from 0,
//! the START control frame being frame 0) and its byte offset in the
//! (decompressed) input. Every complete frame before it has been written
//! and a STOP frame is appended, so the output is a valid stream. A stream
//! that ends between frames without its STOP frame is an error too (the
//! STOP frame is still written).
//!
//! Known limit: fields ipwash does not know are copied as they are; in
//! particular the `policy` sub-message some servers add to `Message` is
//! not looked into.

pub mod fstrm;
pub mod proto;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::encoding::WireType;

use self::fstrm::{Frame, FrameError, FrameReader};
use self::proto::{fields, put_bytes_field, Field, WireError};
use crate::dns::{find_ecs, EcsField};
use crate::stats::DistinctCounter;
use crate::wash::{Side, Washer};

/// `Dnstap` field numbers.
const D_IDENTITY: u32 = 1;
const D_VERSION: u32 = 2;
const D_EXTRA: u32 = 3;
const D_MESSAGE: u32 = 14;
/// `Message` field numbers.
const M_TYPE: u32 = 1;
const M_FAMILY: u32 = 2;
const M_QUERY_ADDRESS: u32 = 4;
const M_RESPONSE_ADDRESS: u32 = 5;
const M_QUERY_MESSAGE: u32 = 10;
const M_QUERY_TIME_SEC: u32 = 8;
const M_RESPONSE_TIME_SEC: u32 = 12;
const M_RESPONSE_MESSAGE: u32 = 14;

/// `Message.type` values.
pub mod message_type {
    /// A query received by an authoritative server.
    pub const AUTH_QUERY: u64 = 1;
    /// A response sent by an authoritative server.
    pub const AUTH_RESPONSE: u64 = 2;
    /// A query sent by a resolver.
    pub const RESOLVER_QUERY: u64 = 3;
    /// A response received by a resolver.
    pub const RESOLVER_RESPONSE: u64 = 4;
    /// A query received by a resolver from its client.
    pub const CLIENT_QUERY: u64 = 5;
    /// A response sent by a resolver to its client.
    pub const CLIENT_RESPONSE: u64 = 6;
    /// The highest type known (UPDATE_RESPONSE).
    pub const LAST: u64 = 14;
}

/// Options for [`wash_dnstap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DnstapOptions {
    /// Keep `identity`, `version` and `extra`.
    pub keep_collection_info: bool,
    /// Write messages that cannot be washed completely (MAY LEAK).
    pub pass_unparsed: bool,
}

/// Counts from one dnstap run.
#[derive(Clone, Default)]
pub struct DnstapStats {
    /// Data frames read.
    pub messages: u64,
    /// Data frames written.
    pub written: u64,
    /// Data frames with at least one address changed.
    pub rewritten: u64,
    /// Control frames copied.
    pub control: u64,
    /// Addresses the technique was applied to (ECS included).
    pub addresses: u64,
    /// ECS prefixes rewritten.
    pub ecs_rewritten: u64,
    /// Messages dropped, by reason.
    pub dropped: Vec<(&'static str, u64)>,
    /// Messages passed unwashed in part (`--unparsed pass`), by reason.
    pub passed: Vec<(&'static str, u64)>,
    /// Distinct input addresses.
    pub distinct: DistinctCounter,
}

fn bump(v: &mut Vec<(&'static str, u64)>, r: &'static str) {
    match v.iter_mut().find(|(k, _)| *k == r) {
        Some((_, n)) => *n += 1,
        None => v.push((r, 1)),
    }
}

/// Why a dnstap wash failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnstapError {
    /// The input is not a dnstap stream. Nothing was written.
    #[error("not a dnstap stream: {msg}")]
    NotDnstap {
        /// What was found instead.
        msg: String,
    },
    /// A frame is damaged; earlier frames were written.
    #[error("corrupt dnstap frame {frame} at byte {offset}: {msg}")]
    Corrupt {
        /// Frame number, from 0 (the START frame).
        frame: u64,
        /// Offset of the frame (or the bad field) in the input.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
    /// The input ends inside a frame; earlier frames were written.
    #[error("dnstap input ends inside frame {frame} (which starts at byte {offset})")]
    Truncated {
        /// Frame number, from 0.
        frame: u64,
        /// Offset of the cut frame.
        offset: u64,
    },
    /// The input ends after a complete frame without a STOP frame.
    #[error("dnstap input ends at byte {offset} after frame {frame} without a STOP frame")]
    NoStop {
        /// The number the next frame would have had.
        frame: u64,
        /// The input length.
        offset: u64,
    },
    /// The callback of [`for_each_query`] asked to stop.
    #[error("stopped at dnstap frame {frame}: {msg}")]
    Stopped {
        /// Frame number.
        frame: u64,
        /// The callback's message.
        msg: String,
    },
    /// Reading or writing failed.
    #[error("dnstap I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The result of washing one `Dnstap` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Washed; true when an address was changed.
    Washed(bool),
    /// Part of it could not be washed, for this reason.
    Unparsed(&'static str),
}

/// Washes `Dnstap` messages into a reused output buffer.
#[derive(Default)]
pub struct MessageWasher {
    out: Vec<u8>,
    msg: Vec<u8>,
    dns: Vec<u8>,
    ecs: Vec<EcsField>,
    found: crate::edns::Found,
    /// Addresses the technique was applied to.
    pub addresses: u64,
    /// ECS prefixes rewritten.
    pub ecs_rewritten: u64,
    /// Distinct input addresses.
    pub distinct: DistinctCounter,
}

/// The roles of (query_address, response_address) for a message type.
pub fn sides(mtype: Option<u64>) -> (Side, Side) {
    match mtype {
        Some(1..=message_type::LAST) => (Side::Client, Side::Server),
        _ => (Side::Unknown, Side::Unknown),
    }
}

impl MessageWasher {
    /// A washer with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The washed message of the last successful [`MessageWasher::wash`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Wash one `Dnstap` message. On `Err` the message could not be walked
    /// (the error's offset is within `payload`).
    pub fn wash(
        &mut self,
        payload: &[u8],
        washer: &mut Washer,
        opts: &DnstapOptions,
    ) -> Result<Verdict, WireError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let mut changed = false;
        let mut unparsed = None;
        for f in fields(payload) {
            let f = f?;
            match (f.num, f.wt) {
                (D_IDENTITY | D_VERSION, WireType::LengthDelimited)
                    if !opts.keep_collection_info =>
                {
                    put_bytes_field(&mut out, &f, &[]);
                }
                (D_EXTRA, _) if !opts.keep_collection_info => {}
                (D_MESSAGE, WireType::LengthDelimited) => {
                    let mut msg = std::mem::take(&mut self.msg);
                    let r = self.wash_inner(f.value, &mut msg, washer, opts);
                    let r = r.map_err(|e| WireError {
                        offset: f.offset + f.head.len() + e.offset,
                        msg: format!("in Message: {}", e.msg),
                    });
                    match r {
                        Ok(v) => {
                            put_bytes_field(&mut out, &f, &msg);
                            match v {
                                Verdict::Washed(c) => changed |= c,
                                Verdict::Unparsed(r) => unparsed = unparsed.or(Some(r)),
                            }
                        }
                        Err(e) => {
                            self.msg = msg;
                            self.out = out;
                            return Err(e);
                        }
                    }
                    self.msg = msg;
                }
                (D_IDENTITY | D_VERSION | D_MESSAGE, wt) if wt != WireType::LengthDelimited => {
                    self.out = out;
                    return Err(WireError {
                        offset: f.offset,
                        msg: format!("field {} has wire type {:?}", f.num, f.wt),
                    });
                }
                _ => out.extend_from_slice(&payload[f.offset..f.offset + f.raw_len()]),
            }
        }
        self.out = out;
        Ok(match unparsed {
            Some(r) => Verdict::Unparsed(r),
            None => Verdict::Washed(changed),
        })
    }

    /// Wash one `Message` from `src` into `out`.
    fn wash_inner(
        &mut self,
        src: &[u8],
        out: &mut Vec<u8>,
        washer: &mut Washer,
        _opts: &DnstapOptions,
    ) -> Result<Verdict, WireError> {
        out.clear();
        let mut mtype = None;
        let mut family = None;
        for f in fields(src) {
            let f = f?;
            match f.num {
                M_TYPE | M_FAMILY => {
                    let v = f.varint().ok_or_else(|| wrong_type(&f))?;
                    if f.num == M_TYPE {
                        mtype = Some(v);
                    } else {
                        family = Some(v);
                    }
                }
                M_QUERY_ADDRESS | M_RESPONSE_ADDRESS | M_QUERY_MESSAGE | M_RESPONSE_MESSAGE
                    if f.wt != WireType::LengthDelimited =>
                {
                    return Err(wrong_type(&f));
                }
                _ => {}
            }
        }
        let (qside, rside) = sides(mtype);
        let mut changed = false;
        let mut unparsed = None;
        for f in fields(src) {
            let f = f?;
            let raw = &src[f.offset..f.offset + f.raw_len()];
            match f.num {
                M_QUERY_ADDRESS | M_RESPONSE_ADDRESS => {
                    let side = if f.num == M_QUERY_ADDRESS {
                        qside
                    } else {
                        rside
                    };
                    out.extend_from_slice(f.head);
                    let at = out.len();
                    out.extend_from_slice(f.value);
                    match self.wash_address(&mut out[at..], family, side, washer) {
                        Ok(c) => changed |= c,
                        Err(r) => unparsed = unparsed.or(Some(r)),
                    }
                }
                M_QUERY_MESSAGE | M_RESPONSE_MESSAGE => {
                    let mut dns = std::mem::take(&mut self.dns);
                    dns.clear();
                    dns.extend_from_slice(f.value);
                    match self.wash_dns(&mut dns, washer) {
                        Ok(c) => changed |= c,
                        Err(r) => unparsed = unparsed.or(Some(r)),
                    }
                    put_bytes_field(out, &f, &dns);
                    self.dns = dns;
                }
                _ => out.extend_from_slice(raw),
            }
        }
        Ok(match unparsed {
            Some(r) => Verdict::Unparsed(r),
            None => Verdict::Washed(changed),
        })
    }

    /// Wash an address field in place. Empty fields hold nothing.
    fn wash_address(
        &mut self,
        b: &mut [u8],
        family: Option<u64>,
        side: Side,
        washer: &mut Washer,
    ) -> Result<bool, &'static str> {
        match (b.len(), family) {
            (0, _) => Ok(false),
            (4, None | Some(1)) => {
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                let old = u32::from_be_bytes(a);
                self.distinct.insert_v4(old);
                self.addresses += washer.in_scope(side) as u64;
                let new = washer.wash_v4(old, side);
                b.copy_from_slice(&new.to_be_bytes());
                Ok(new != old)
            }
            (16, None | Some(2)) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                let old = u128::from_be_bytes(a);
                self.distinct.insert_v6(old);
                self.addresses += washer.in_scope(side) as u64;
                let new = washer.wash_v6(old, side);
                b.copy_from_slice(&new.to_be_bytes());
                Ok(new != old)
            }
            (4 | 16, Some(_)) => Err("dnstap_address_family"),
            _ => Err("dnstap_address_length"),
        }
    }

    /// Wash a DNS message (the ECS option, as a client prefix; EDNS
    /// identifiers; answers with `--answers`; reverse names, which may
    /// change its length).
    fn wash_dns(&mut self, m: &mut Vec<u8>, washer: &mut Washer) -> Result<bool, &'static str> {
        if m.is_empty() {
            return Ok(false);
        }
        if find_ecs(m, &mut self.ecs).is_err() {
            return Err("dnstap_unparsed_dns");
        }
        let mut changed = false;
        for e in &self.ecs {
            let n = e.len.min(16);
            let Some(a) = m.get_mut(e.offset..e.offset + n) else {
                continue;
            };
            let mut before = [0u8; 16];
            before[..n].copy_from_slice(a);
            if washer.wash_prefix(a, e.family == 2, e.source_prefix, Side::Client) {
                self.ecs_rewritten += 1;
                self.addresses += 1;
            }
            changed |= a != &before[..n];
        }
        // EDNS identifiers and (with --answers) answer data.
        match crate::edns::wash_message(m, washer, &mut self.found) {
            Ok(c) => changed |= c,
            Err(_) => return Err("dnstap_unparsed_dns"),
        }
        if washer.reverse_names == crate::revname::ReverseNames::Wash {
            let mut names = crate::revname::NameStats::default();
            match crate::revwash::rewrite_message(m, washer, &mut names) {
                Ok(None) => {}
                Ok(Some(new)) => {
                    *m = new;
                    changed = true;
                }
                // A name that cannot be rewritten is not written as it is.
                Err(_) => return Err(crate::revwash::NONCANONICAL),
            }
        }
        Ok(changed)
    }
}

fn wrong_type(f: &Field<'_>) -> WireError {
    WireError {
        offset: f.offset,
        msg: format!("field {} has wire type {:?}", f.num, f.wt),
    }
}

/// Wash a dnstap stream from `r` to `w`, frame for frame. Counts go to
/// `stats` whether or not the run succeeds.
pub fn wash_dnstap<R: Read, W: Write>(
    r: R,
    w: &mut W,
    washer: &mut Washer,
    opts: &DnstapOptions,
    stats: &mut DnstapStats,
) -> Result<(), DnstapError> {
    let mut rd = FrameReader::new(r);
    let mut mw = MessageWasher::new();
    let res = run(&mut rd, w, washer, opts, stats, &mut mw);
    stats.addresses += mw.addresses;
    stats.ecs_rewritten += mw.ecs_rewritten;
    stats.distinct.merge(&mw.distinct);
    res
}

fn run<R: Read, W: Write>(
    rd: &mut FrameReader<R>,
    w: &mut W,
    washer: &mut Washer,
    opts: &DnstapOptions,
    stats: &mut DnstapStats,
    mw: &mut MessageWasher,
) -> Result<(), DnstapError> {
    let mut frame = 0u64;
    // Inside a stream: between START and STOP.
    let mut open = false;
    loop {
        let offset = rd.offset();
        let f = match rd.next_frame()? {
            Ok(f) => f,
            Err(e) => {
                if frame == 0 {
                    return Err(DnstapError::NotDnstap {
                        msg: "no Frame Streams START frame".into(),
                    });
                }
                if open {
                    close(w)?;
                }
                return Err(match e {
                    FrameError::Truncated { offset } => DnstapError::Truncated { frame, offset },
                    FrameError::Bad { offset, msg } => DnstapError::Corrupt { frame, offset, msg },
                });
            }
        };
        match f {
            None if open => {
                close(w)?;
                return Err(DnstapError::NoStop { frame, offset });
            }
            None if frame == 0 => {
                return Err(DnstapError::NotDnstap {
                    msg: "empty input".into(),
                })
            }
            None => return Ok(()),
            Some(Frame::Control {
                ctype,
                content_type,
            }) => {
                let bad = |msg: String| DnstapError::Corrupt { frame, offset, msg };
                match ctype {
                    fstrm::CONTROL_START if !open => {
                        if content_type
                            .as_deref()
                            .is_some_and(|c| c != fstrm::DNSTAP_CONTENT_TYPE)
                        {
                            let c = String::from_utf8_lossy(
                                content_type.as_deref().unwrap_or_default(),
                            )
                            .into_owned();
                            if frame == 0 {
                                return Err(DnstapError::NotDnstap {
                                    msg: format!("content type '{c}'"),
                                });
                            }
                            return Err(bad(format!("stream of content type '{c}'")));
                        }
                        open = true;
                    }
                    fstrm::CONTROL_STOP if open => open = false,
                    _ if frame == 0 => {
                        return Err(DnstapError::NotDnstap {
                            msg: format!("first frame is control frame type {ctype}, not START"),
                        })
                    }
                    _ => {
                        if open {
                            close(w)?;
                        }
                        return Err(bad(format!("unexpected control frame type {ctype}")));
                    }
                }
                w.write_all(rd.raw())?;
                stats.control += 1;
            }
            Some(Frame::Data) => {
                if !open {
                    if frame == 0 {
                        return Err(DnstapError::NotDnstap {
                            msg: "no Frame Streams START frame".into(),
                        });
                    }
                    return Err(DnstapError::Corrupt {
                        frame,
                        offset,
                        msg: "data frame outside a stream (after STOP)".into(),
                    });
                }
                stats.messages += 1;
                match mw.wash(rd.payload(), washer, opts) {
                    Ok(v) => {
                        let write = match v {
                            Verdict::Washed(c) => {
                                stats.rewritten += c as u64;
                                true
                            }
                            Verdict::Unparsed(r) if opts.pass_unparsed => {
                                bump(&mut stats.passed, r);
                                true
                            }
                            Verdict::Unparsed(r) => {
                                bump(&mut stats.dropped, r);
                                false
                            }
                        };
                        if write {
                            fstrm::write_data(w, mw.output())?;
                            stats.written += 1;
                        }
                    }
                    Err(e) => {
                        close(w)?;
                        return Err(DnstapError::Corrupt {
                            frame,
                            offset: offset + 4 + e.offset as u64,
                            msg: format!("bad protobuf: {}", e.msg),
                        });
                    }
                }
            }
        }
        frame += 1;
    }
}

/// End the output stream after an error, so it stays valid.
fn close<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&fstrm::control_frame(fstrm::CONTROL_STOP, None))?;
    w.flush()
}

/// Call `f(time_sec, client, dns_query)` for every query a server received
/// from a client (`CLIENT_QUERY` and `AUTH_QUERY` messages with a query
/// address and a query message). Returns the number of calls.
pub fn for_each_query<R: Read>(
    r: R,
    mut f: impl FnMut(u64, IpAddr, &[u8]) -> Result<(), String>,
) -> Result<u64, DnstapError> {
    let mut rd = FrameReader::new(r);
    let mut frame = 0u64;
    let mut n = 0u64;
    let mut open = false;
    loop {
        let offset = rd.offset();
        match rd.next_frame()? {
            Err(FrameError::Truncated { offset }) => {
                return Err(DnstapError::Truncated { frame, offset })
            }
            Err(FrameError::Bad { offset, msg }) => {
                return Err(DnstapError::Corrupt { frame, offset, msg })
            }
            Ok(None) if open => return Err(DnstapError::NoStop { frame, offset }),
            Ok(None) => return Ok(n),
            Ok(Some(Frame::Control {
                ctype,
                content_type,
            })) => match ctype {
                fstrm::CONTROL_START
                    if content_type
                        .as_deref()
                        .is_none_or(|c| c == fstrm::DNSTAP_CONTENT_TYPE) =>
                {
                    open = true
                }
                fstrm::CONTROL_STOP => open = false,
                _ => {
                    return Err(DnstapError::Corrupt {
                        frame,
                        offset,
                        msg: format!("unexpected control frame type {ctype}"),
                    })
                }
            },
            Ok(Some(Frame::Data)) => {
                let corrupt = |e: WireError| DnstapError::Corrupt {
                    frame,
                    offset: offset + 4,
                    msg: format!("bad protobuf: {}", e.msg),
                };
                if let Some((ts, client, q)) = client_query(rd.payload()).map_err(corrupt)? {
                    f(ts, client, q).map_err(|msg| DnstapError::Stopped { frame, msg })?;
                    n += 1;
                }
            }
        }
        frame += 1;
    }
}

/// The time, client address and DNS query of a client query message.
type ClientQuery<'a> = (u64, IpAddr, &'a [u8]);

/// The [`ClientQuery`] of a `Dnstap` message, if it is one.
fn client_query(payload: &[u8]) -> Result<Option<ClientQuery<'_>>, WireError> {
    let mut msg = None;
    for fl in fields(payload) {
        let fl = fl?;
        if fl.num == D_MESSAGE && fl.wt == WireType::LengthDelimited {
            msg = Some(fl.value);
        }
    }
    let Some(m) = msg else { return Ok(None) };
    let (mut mtype, mut addr, mut query, mut qt, mut rt) = (None, None, None, None, None);
    for fl in fields(m) {
        let fl = fl?;
        match fl.num {
            M_TYPE => mtype = fl.varint(),
            M_QUERY_ADDRESS => addr = Some(fl.value),
            M_QUERY_MESSAGE => query = Some(fl.value),
            M_QUERY_TIME_SEC => qt = fl.varint(),
            M_RESPONSE_TIME_SEC => rt = fl.varint(),
            _ => {}
        }
    }
    if !matches!(
        mtype,
        Some(message_type::CLIENT_QUERY | message_type::AUTH_QUERY)
    ) {
        return Ok(None);
    }
    let client = match addr.map(<[u8]>::len) {
        Some(4) => addr
            .and_then(|a| <[u8; 4]>::try_from(a).ok())
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        Some(16) => addr
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    };
    Ok(match (client, query) {
        (Some(c), Some(q)) if !q.is_empty() => Some((qt.or(rt).unwrap_or(0), c, q)),
        _ => None,
    })
}

/// `ipwash wash` on a dnstap input: the options come from the plan
/// (`--keep-collection-info`, `--unparsed`) and the counts go to the run's
/// statistics (messages count as packets, control frames as blocks).
pub(crate) fn wash_file<W: Write + Send>(
    reader: Box<dyn Read + Send>,
    out: &std::sync::Arc<std::sync::Mutex<W>>,
    plan: &mut crate::pipeline::Plan,
    stats: &mut crate::stats::Stats,
    name: &str,
) -> Result<(), crate::error::CliError> {
    let mut w = crate::pipeline::SharedWriter(out.clone());
    let opts = DnstapOptions {
        keep_collection_info: plan.cdns.keep_collection_info,
        pass_unparsed: plan.unparsed == crate::pipeline::Unparsed::Pass,
    };
    let mut s = DnstapStats::default();
    let res = wash_dnstap(reader, &mut w, &mut plan.washer, &opts, &mut s);
    stats.read += s.messages;
    stats.written += s.written;
    stats.rewritten += s.rewritten;
    stats.blocks += s.control;
    for (k, v) in s.dropped {
        *stats.dropped.entry(k).or_default() += v;
    }
    for (k, v) in s.passed {
        *stats.passed.entry(k).or_default() += v;
    }
    stats.distinct.merge(&s.distinct);
    res.map_err(|e| crate::error::CliError::data(format!("{name}: {e}")))
}
