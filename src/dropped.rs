//! `wash --dropped FILE`: every packet that fail-closed washing dropped,
//! written unchanged to a pcapng file with its reason in the packet's
//! comment, so an operator can see what was removed.
//!
//! The file holds the original addresses: it is created with mode 0600,
//! under a temporary name renamed into place when the run ends. One
//! Interface Description Block is written per link type and timestamp
//! resolution met; timestamps are copied as stored in the input (the
//! input's `if_tsoffset`, if any, is not carried over).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A dropped packet as found in its input unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPacket {
    /// LINKTYPE_ value.
    pub linktype: u32,
    /// `if_tsresol` of its interface (6: microseconds, 9: nanoseconds, ...).
    pub tsresol: u8,
    /// Timestamp in units of `tsresol`, as stored.
    pub ts: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes within the unit.
    pub range: Range<usize>,
}

/// How to find the packet in the units of one input: the classic pcap
/// header, or the pcapng section and interfaces seen so far.
#[derive(Debug, Clone)]
pub enum UnitFormat {
    /// Classic pcap.
    Pcap {
        /// Big-endian fields.
        big: bool,
        /// Nanosecond timestamps.
        nano: bool,
        /// Record header length (16, or 24 for the modified format).
        hlen: usize,
        /// The file's link type.
        linktype: u32,
    },
    /// pcapng.
    Pcapng {
        /// Big-endian section.
        big: bool,
        /// Interfaces of the current section: link type and `if_tsresol`.
        ifaces: Vec<(u32, u8)>,
    },
}

fn u16_at(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let a: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    })
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

impl UnitFormat {
    /// From the bytes the reader writes before the first unit: the pcap
    /// file header, or nothing (pcapng, whose section header is a unit).
    pub fn from_header(header: &[u8]) -> UnitFormat {
        let magic = header.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
        let (big, nano, hlen) = match magic {
            Some([0xa1, 0xb2, 0xc3, 0xd4]) => (true, false, 16),
            Some([0xd4, 0xc3, 0xb2, 0xa1]) => (false, false, 16),
            Some([0xa1, 0xb2, 0x3c, 0x4d]) => (true, true, 16),
            Some([0x4d, 0x3c, 0xb2, 0xa1]) => (false, true, 16),
            Some([0xa1, 0xb2, 0xcd, 0x34]) => (true, false, 24),
            Some([0x34, 0xcd, 0xb2, 0xa1]) => (false, false, 24),
            _ => {
                return UnitFormat::Pcapng {
                    big: false,
                    ifaces: Vec::new(),
                }
            }
        };
        UnitFormat::Pcap {
            big,
            nano,
            hlen,
            linktype: u32_at(header, 20, big).unwrap_or(1) & 0x0fff_ffff,
        }
    }

    /// Note a non-packet unit as written (pcapng: a section header starts
    /// a new interface list, an interface description adds one).
    pub fn see_block(&mut self, data: &[u8]) {
        let UnitFormat::Pcapng { big, ifaces } = self else {
            return;
        };
        match data.get(..4) {
            Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
                *big = data.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d]);
                ifaces.clear();
            }
            _ if u32_at(data, 0, *big) == Some(1) => {
                let linktype = u32::from(u16_at(data, 8, *big).unwrap_or(1));
                let total = u32_at(data, 4, *big).unwrap_or(0) as usize;
                let end = total.saturating_sub(4).min(data.len());
                let mut tsresol = 6u8;
                let mut at = 16;
                while at + 4 <= end {
                    let code = u16_at(data, at, *big).unwrap_or(0);
                    let len = usize::from(u16_at(data, at + 2, *big).unwrap_or(0));
                    if code == 0 {
                        break;
                    }
                    if code == 9 && len == 1 {
                        tsresol = data.get(at + 4).copied().unwrap_or(6);
                    }
                    at += 4 + len.div_ceil(4) * 4;
                }
                ifaces.push((linktype, tsresol));
            }
            _ => {}
        }
    }

    /// The packet in a packet unit, or None when it cannot be found.
    pub fn packet(&self, data: &[u8]) -> Option<DroppedPacket> {
        match self {
            UnitFormat::Pcap {
                big,
                nano,
                hlen,
                linktype,
            } => {
                let sec = u64::from(u32_at(data, 0, *big)?);
                let frac = u64::from(u32_at(data, 4, *big)?);
                let caplen = u32_at(data, 8, *big)? as usize;
                let orig_len = u32_at(data, 12, *big)?;
                let (ts, tsresol) = if *nano {
                    (sec * 1_000_000_000 + frac, 9)
                } else {
                    (sec * 1_000_000 + frac, 6)
                };
                let end = (*hlen + caplen).min(data.len());
                Some(DroppedPacket {
                    linktype: *linktype,
                    tsresol,
                    ts,
                    orig_len,
                    range: *hlen..end,
                })
            }
            UnitFormat::Pcapng { big, ifaces } => match u32_at(data, 0, *big)? {
                // Enhanced Packet Block.
                6 => {
                    let iface = ifaces.get(u32_at(data, 8, *big)? as usize)?;
                    let ts = (u64::from(u32_at(data, 12, *big)?) << 32)
                        | u64::from(u32_at(data, 16, *big)?);
                    let caplen = u32_at(data, 20, *big)? as usize;
                    let orig_len = u32_at(data, 24, *big)?;
                    Some(DroppedPacket {
                        linktype: iface.0,
                        tsresol: iface.1,
                        ts,
                        orig_len,
                        range: 28..(28 + caplen).min(data.len()),
                    })
                }
                // Simple Packet Block: interface 0, no timestamp.
                3 => {
                    let iface = ifaces.first()?;
                    let orig_len = u32_at(data, 8, *big)?;
                    let total = u32_at(data, 4, *big)? as usize;
                    let cap = (orig_len as usize).min(total.saturating_sub(16));
                    Some(DroppedPacket {
                        linktype: iface.0,
                        tsresol: iface.1,
                        ts: 0,
                        orig_len,
                        range: 12..(12 + cap).min(data.len()),
                    })
                }
                _ => None,
            },
        }
    }
}

/// The `--dropped` pcapng file.
pub struct DroppedWriter {
    w: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    ifaces: Vec<(u32, u8)>,
    /// Packets written.
    pub packets: u64,
}

fn push_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    b.resize(b.len().next_multiple_of(4), 0);
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

impl DroppedWriter {
    /// Create the file (mode 0600, under a temporary name) and write its
    /// section header.
    pub fn create(path: &Path) -> io::Result<DroppedWriter> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".ipwash-dropped-{}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts.open(&tmp)?;
        let mut w = DroppedWriter {
            w: Some(BufWriter::new(f)),
            tmp,
            dest: path.to_path_buf(),
            ifaces: Vec::new(),
            packets: 0,
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        push_option(
            &mut shb,
            4,
            concat!("ipwash ", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        push_option(&mut shb, 0, &[]);
        w.write(&block(0x0a0d_0d0a, &shb))?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        match self.w.as_mut() {
            Some(w) => w.write_all(b),
            None => Err(io::Error::other("dropped-packet file already finished")),
        }
    }

    /// Write one dropped packet: `data` is its unit, `p` where the packet is.
    pub fn packet(&mut self, data: &[u8], p: &DroppedPacket, reason: &str) -> io::Result<()> {
        let id = match self
            .ifaces
            .iter()
            .position(|&i| i == (p.linktype, p.tsresol))
        {
            Some(i) => i,
            None => {
                let mut idb = Vec::new();
                idb.extend_from_slice(&(p.linktype as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&0u32.to_le_bytes());
                push_option(&mut idb, 9, &[p.tsresol]);
                push_option(&mut idb, 0, &[]);
                self.write(&block(1, &idb))?;
                self.ifaces.push((p.linktype, p.tsresol));
                self.ifaces.len() - 1
            }
        };
        let pkt = data.get(p.range.clone()).unwrap_or_default();
        let mut epb = Vec::with_capacity(pkt.len() + 96);
        epb.extend_from_slice(&(id as u32).to_le_bytes());
        epb.extend_from_slice(&((p.ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(p.ts as u32).to_le_bytes());
        epb.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.orig_len.max(pkt.len() as u32).to_le_bytes());
        epb.extend_from_slice(pkt);
        epb.resize(epb.len().next_multiple_of(4), 0);
        push_option(&mut epb, 1, format!("ipwash dropped: {reason}").as_bytes());
        push_option(&mut epb, 0, &[]);
        self.write(&block(6, &epb))?;
        self.packets += 1;
        Ok(())
    }

    /// Flush, sync and rename into place.
    pub fn finish(mut self) -> io::Result<()> {
        let w = self
            .w
            .take()
            .ok_or_else(|| io::Error::other("finished twice"))?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for DroppedWriter {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
