//! Integration tests of the capture layer (`ipwash::capture`): identity
//! round trips over the real corpus (when `IPWASH_CORPUS` is set), captures
//! built here in every byte order and precision, truncation at every record
//! boundary and inside records, hostile bytes, and compressed output.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use ipwash::capture::{
    open_input, CaptureError, CaptureReader, Compression, FileKind, Output, PacketInfo,
    ReaderOptions,
};

// Spelled out field by field so that a new flag breaks the build here and
// gets a test.
const KEEP_ALL: ReaderOptions = ReaderOptions {
    keep_comments: true,
    keep_nrb: true,
    keep_interface_addresses: true,
    keep_metadata: true,
    userappl: None,
};
const DEFAULT: ReaderOptions = ReaderOptions {
    keep_comments: false,
    keep_nrb: false,
    keep_interface_addresses: false,
    keep_metadata: false,
    userappl: None,
};
/// The default for comments, name resolution and interface addresses, with
/// the other metadata kept (the allow-list has its own tests in
/// tests/metadata.rs).
const META: ReaderOptions = ReaderOptions {
    keep_metadata: true,
    ..DEFAULT
};

/// What one pass of "read every unit, write header + kept units" gives.
struct Pass {
    out: Vec<u8>,
    packets: Vec<PacketInfo>,
    /// Stream offset after each unit.
    ends: Vec<u64>,
    dropped: usize,
    err: Option<CaptureError>,
}

fn pass(input: &[u8], opts: ReaderOptions) -> Result<Pass, CaptureError> {
    let mut r = CaptureReader::new(input, opts)?;
    let mut p = Pass {
        out: r.header().to_vec(),
        packets: Vec::new(),
        ends: Vec::new(),
        dropped: 0,
        err: None,
    };
    loop {
        match r.next_unit() {
            Ok(Some(u)) => {
                if let Some(pi) = &u.packet {
                    assert!(pi.range.end <= u.data.len());
                    p.packets.push(pi.clone());
                }
                if u.dropped.is_some() {
                    p.dropped += 1;
                } else {
                    p.out.extend_from_slice(u.data);
                }
            }
            Ok(None) => break,
            Err(e) => {
                p.err = Some(e);
                break;
            }
        }
        p.ends.push(r.offset());
    }
    assert_eq!(r.packets_read() as usize, p.packets.len());
    assert!(
        matches!(r.next_unit(), Ok(None)),
        "reader must stay finished"
    );
    Ok(p)
}

// ---------------------------------------------------------------- builders

struct Pcap {
    big: bool,
    modified: bool,
    bytes: Vec<u8>,
}

impl Pcap {
    fn new(big: bool, nanos: bool, modified: bool, linktype: u32) -> Pcap {
        let magic: u32 = match (nanos, modified) {
            (_, true) => 0xa1b2_cd34,
            (true, false) => 0xa1b2_3c4d,
            (false, false) => 0xa1b2_c3d4,
        };
        let mut p = Pcap {
            big,
            modified,
            bytes: Vec::new(),
        };
        p.u32(magic);
        p.u16(2);
        p.u16(4);
        p.u32(0);
        p.u32(0);
        p.u32(65535);
        p.u32(linktype);
        p
    }
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend(b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend(b);
    }
    fn record(&mut self, sec: u32, frac: u32, data: &[u8], orig: u32) -> &mut Self {
        self.u32(sec);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig);
        if self.modified {
            self.u32(3); // ifindex
            self.u16(0x0800); // protocol
            self.bytes.extend([4, 0]); // pkt_type, pad
        }
        self.bytes.extend(data);
        self
    }
}

/// pcapng block writer for one section's byte order.
#[derive(Clone, Copy)]
struct Ng {
    big: bool,
}

impl Ng {
    fn u16(self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn opt(self, code: u16, val: &[u8]) -> Vec<u8> {
        let mut v = self.u16(code).to_vec();
        v.extend(self.u16(val.len() as u16));
        v.extend(val);
        pad(&mut v);
        v
    }
    fn opts(self, list: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (c, val) in list {
            v.extend(self.opt(*c, val));
        }
        if !list.is_empty() {
            v.extend(self.opt(0, b""));
        }
        v
    }
    fn block(self, btype: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        pad(&mut body);
        let total = (body.len() + 12) as u32;
        let mut v = self.u32(btype).to_vec();
        v.extend(self.u32(total));
        v.extend(body);
        v.extend(self.u32(total));
        v
    }
    fn shb(self, section_len: i64, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = self.u32(0x1A2B_3C4D).to_vec();
        b.extend(self.u16(1));
        b.extend(self.u16(0));
        b.extend(if self.big {
            section_len.to_be_bytes()
        } else {
            section_len.to_le_bytes()
        });
        b.extend(self.opts(opts));
        self.block(0x0A0D_0D0A, &b)
    }
    fn idb(self, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = self.u16(linktype).to_vec();
        b.extend([0, 0]);
        b.extend(self.u32(snaplen));
        b.extend(self.opts(opts));
        self.block(1, &b)
    }
    fn epb(self, ifid: u32, ts: u64, data: &[u8], orig: u32, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = self.u32(ifid).to_vec();
        b.extend(self.u32((ts >> 32) as u32));
        b.extend(self.u32(ts as u32));
        b.extend(self.u32(data.len() as u32));
        b.extend(self.u32(orig));
        b.extend(data);
        pad(&mut b);
        b.extend(self.opts(opts));
        self.block(6, &b)
    }
    fn pb(self, ifid: u16, ts: u64, data: &[u8], orig: u32) -> Vec<u8> {
        let mut b = self.u16(ifid).to_vec();
        b.extend(self.u16(0));
        b.extend(self.u32((ts >> 32) as u32));
        b.extend(self.u32(ts as u32));
        b.extend(self.u32(data.len() as u32));
        b.extend(self.u32(orig));
        b.extend(data);
        self.block(2, &b)
    }
    fn spb(self, data: &[u8], orig: u32) -> Vec<u8> {
        let mut b = self.u32(orig).to_vec();
        b.extend(data);
        self.block(3, &b)
    }
    fn nrb(self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = self.u16(1).to_vec(); // nrb_record_ipv4
        b.extend(self.u16(13));
        b.extend([192, 0, 2, 1]);
        b.extend(b"host.test");
        pad(&mut b);
        b.extend([0, 0, 0, 0]); // nrb_record_end
        b.extend(self.opts(opts));
        self.block(4, &b)
    }
    fn isb(self, ifid: u32, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = self.u32(ifid).to_vec();
        b.extend([0; 8]);
        b.extend(self.opts(opts));
        self.block(5, &b)
    }
}

fn pad(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

const LE: Ng = Ng { big: false };
const BE: Ng = Ng { big: true };

/// Two sections: LE with comments everywhere, ns and 2^-10 interfaces, an
/// NRB, an SPB; then BE with an obsolete PB, an ISB and an unknown block.
fn two_sections() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(LE.shb(-1, &[(1, b"section comment"), (4, b"app")]));
    f.extend(LE.idb(1, 0, &[(1, b"if comment"), (9, &[9])]));
    f.extend(LE.idb(101, 64, &[(9, &[0x8a]), (14, &100i64.to_le_bytes())]));
    f.extend(LE.epb(
        0,
        1_700_000_000_123_456_789,
        b"packet-one",
        60,
        &[(1, b"pkt comment"), (2, &[0, 0, 0, 1])],
    ));
    f.extend(LE.nrb(&[]));
    f.extend(LE.epb(1, (5 << 10) + 256, b"packet-two-xyz", 14, &[]));
    f.extend(LE.spb(&[0xAB; 100], 200));
    f.extend(BE.shb(-1, &[]));
    f.extend(BE.idb(113, 0, &[]));
    f.extend(BE.pb(0, 2_000_000, b"old", 3));
    f.extend(BE.isb(0, &[(1, b"stats comment")]));
    f.extend(BE.block(0x0000_0BAD, b"\x00\x00\x7e\xd9custom"));
    f
}

// ------------------------------------------------------------ built captures

#[test]
fn pcap_both_byte_orders_and_precisions() {
    for big in [false, true] {
        for nanos in [false, true] {
            for modified in [false, true] {
                if nanos && modified {
                    continue;
                }
                let mut p = Pcap::new(big, nanos, modified, 0x1000_0000 | 113);
                let frac = if nanos { 123_456_789 } else { 123_456 };
                p.record(1_700_000_000, frac, b"abcdef", 60);
                p.record(2, 0, b"", 0);
                // An out-of-range fraction carries into the seconds.
                let over = if nanos { 1_500_000_000 } else { 1_500_000 };
                p.record(3, over, &[7; 33], 33);
                let bytes = p.bytes;
                let got = pass(&bytes, DEFAULT).unwrap();
                assert!(got.err.is_none());
                assert_eq!(
                    got.out, bytes,
                    "big={big} nanos={nanos} modified={modified}"
                );
                let hlen = if modified { 24 } else { 16 };
                let pk = &got.packets;
                assert_eq!(pk.len(), 3);
                assert_eq!(pk[0].linktype, 113, "FCS bits are masked off");
                assert_eq!(pk[0].ts_sec, 1_700_000_000);
                assert_eq!(pk[0].ts_nsec, if nanos { 123_456_789 } else { 123_456_000 });
                assert_eq!(pk[0].range, hlen..hlen + 6);
                assert_eq!(pk[0].orig_len, 60);
                assert_eq!((pk[1].ts_sec, pk[1].ts_nsec, pk[1].range.len()), (2, 0, 0));
                assert_eq!((pk[2].ts_sec, pk[2].ts_nsec), (4, 500_000_000));
                assert_eq!(pk.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 3]);
            }
        }
    }
}

#[test]
fn pcap_units_expose_packet_bytes() {
    let mut p = Pcap::new(true, false, false, 1);
    p.record(1, 2, b"hello world", 11);
    let mut r = CaptureReader::new(Cursor::new(p.bytes.clone()), DEFAULT).unwrap();
    assert_eq!(r.header(), &p.bytes[..24]);
    let u = r.next_unit().unwrap().unwrap();
    let pi = u.packet.clone().unwrap();
    assert_eq!(&u.data[pi.range.clone()], b"hello world");
    u.data[pi.range.start] = b'J';
    assert_eq!(&u.data[..16], &p.bytes[24..40]);
    assert!(r.next_unit().unwrap().is_none());
    assert_eq!(r.offset(), p.bytes.len() as u64);
}

#[test]
fn pcapng_sections_interfaces_and_timestamps() {
    let f = two_sections();
    let keep = pass(&f, KEEP_ALL).unwrap();
    assert!(keep.err.is_none());
    assert_eq!(keep.out, f, "keep_comments + keep_nrb is byte-identical");
    assert_eq!(keep.dropped, 0);
    let pk = &keep.packets;
    assert_eq!(pk.len(), 4);
    assert_eq!(
        (pk[0].linktype, pk[0].ts_sec, pk[0].ts_nsec),
        (1, 1_700_000_000, 123_456_789)
    );
    assert_eq!(pk[0].orig_len, 60);
    // 2^-10 resolution plus if_tsoffset of 100 s.
    assert_eq!(
        (pk[1].linktype, pk[1].ts_sec, pk[1].ts_nsec),
        (101, 105, 250_000_000)
    );
    // SPB: interface 0 of the section, caplen = min(space, orig_len, snaplen).
    assert_eq!(
        (pk[2].linktype, pk[2].range.len(), pk[2].orig_len),
        (1, 100, 200)
    );
    assert_eq!((pk[2].ts_sec, pk[2].ts_nsec), (0, 0));
    // Obsolete PB in the big-endian section, default µs resolution.
    assert_eq!((pk[3].linktype, pk[3].ts_sec, pk[3].ts_nsec), (113, 2, 0));
    assert_eq!(
        pk.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[test]
fn pcapng_default_strips_comments_and_drops_nrb() {
    let f = two_sections();
    let got = pass(&f, META).unwrap();
    assert!(got.err.is_none());
    assert_eq!(got.dropped, 1);
    assert_eq!(got.packets.len(), 4);
    // The same capture built without comments and without the NRB.
    let mut want = Vec::new();
    want.extend(LE.shb(-1, &[(4, b"app")]));
    want.extend(LE.idb(1, 0, &[(9, &[9])]));
    want.extend(LE.idb(101, 64, &[(9, &[0x8a]), (14, &100i64.to_le_bytes())]));
    want.extend(LE.epb(
        0,
        1_700_000_000_123_456_789,
        b"packet-one",
        60,
        &[(2, &[0, 0, 0, 1])],
    ));
    want.extend(LE.epb(1, (5 << 10) + 256, b"packet-two-xyz", 14, &[]));
    want.extend(LE.spb(&[0xAB; 100], 200));
    want.extend(BE.shb(-1, &[]));
    want.extend(BE.idb(113, 0, &[]));
    want.extend(BE.pb(0, 2_000_000, b"old", 3));
    want.extend(BE.isb(0, &[]));
    want.extend(BE.block(0x0000_0BAD, b"\x00\x00\x7e\xd9custom"));
    assert_eq!(got.out, want);
    // And the rewritten file reads back the same with every block intact.
    let again = pass(&got.out, KEEP_ALL).unwrap();
    assert!(again.err.is_none());
    // Ranges are relative to each unit, so they match too.
    assert_eq!(again.packets, got.packets);
    assert_eq!(
        count_with_pcap_parser(&got.out),
        3,
        "pcap-parser skips the obsolete PB"
    );
}

#[test]
fn pcapng_nrb_kept_but_comment_stripped() {
    let mut f = LE.shb(-1, &[]);
    f.extend(LE.idb(1, 0, &[]));
    f.extend(LE.nrb(&[(1, b"nrb comment")]));
    let got = pass(
        &f,
        ReaderOptions {
            keep_nrb: true,
            ..DEFAULT
        },
    )
    .unwrap();
    let mut want = LE.shb(-1, &[]);
    want.extend(LE.idb(1, 0, &[]));
    want.extend(LE.nrb(&[]));
    assert_eq!(got.out, want);
}

#[test]
fn pcapng_non_copyable_custom_block_is_dropped() {
    // 0x40000BAD must not be copied into a rewritten file; 0x00000BAD may be.
    let mut f = LE.shb(-1, &[]);
    f.extend(LE.idb(1, 0, &[]));
    f.extend(LE.block(0x4000_0BAD, b"\x00\x00\x7e\xd9private"));
    f.extend(LE.block(0x0000_0BAD, b"\x00\x00\x7e\xd9copy"));
    let most = ReaderOptions {
        keep_comments: true,
        keep_nrb: true,
        ..META
    };
    for opts in [META, most] {
        let got = pass(&f, opts).unwrap();
        assert_eq!(got.dropped, 1);
        let mut want = LE.shb(-1, &[]);
        want.extend(LE.idb(1, 0, &[]));
        want.extend(LE.block(0x0000_0BAD, b"\x00\x00\x7e\xd9copy"));
        assert_eq!(got.out, want);
    }
    // Everything kept is the byte-identical mode.
    assert_eq!(pass(&f, KEEP_ALL).unwrap().out, f);
}

#[test]
fn default_options_strip_everything() {
    assert_eq!(ReaderOptions::default(), DEFAULT);
    assert_eq!(ReaderOptions::KEEP_ALL, KEEP_ALL);
}

/// IDB option codes: the four that carry the capturing host's addresses.
const IF_ADDRESS_CODES: [u16; 4] = [4, 5, 6, 7];

/// Interface options of a real-looking capture host: name, all four
/// address kinds (two IPv4), a comment, resolution, OS and hardware.
fn host_idb_options() -> Vec<(u16, Vec<u8>)> {
    let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
    v6.extend([0; 11]);
    v6.extend([1, 64]);
    vec![
        (2, b"eth0".to_vec()),
        (4, vec![192, 0, 2, 7, 255, 255, 255, 0]),
        (1, b"capture box".to_vec()),
        (5, v6),
        (4, vec![198, 51, 100, 9, 255, 255, 255, 0]),
        (6, vec![0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]),
        (7, vec![0x02, 0x00, 0x5e, 0xff, 0xfe, 0x10, 0x00, 0x01]),
        (9, vec![9]),
        (12, b"Linux".to_vec()),
        (15, b"nic".to_vec()),
    ]
}

/// A capture whose interfaces carry host addresses, in both byte orders.
/// Option codes 4..=7 in the SHB (`shb_userappl`) and EPB
/// (`epb_dropcount`) are not addresses and must survive. `keep` decides
/// which IDB option codes are present, so the same builder gives the input
/// (all) and each expected output. Interface 1 ("lo") has only a MAC.
fn addressed_capture(keep_idb: impl Fn(u16) -> bool) -> Vec<u8> {
    let idb_opts: Vec<(u16, Vec<u8>)> = host_idb_options()
        .into_iter()
        .filter(|(c, _)| keep_idb(*c))
        .collect();
    let idb_opts: Vec<(u16, &[u8])> = idb_opts.iter().map(|(c, v)| (*c, &v[..])).collect();
    let mut f = Vec::new();
    for ng in [LE, BE] {
        f.extend(ng.shb(-1, &[(4, b"app")]));
        f.extend(ng.idb(1, 0, &idb_opts));
        let lo_mac: &[u8] = &[2, 0, 0, 0, 0, 2];
        let lo_opts: Vec<(u16, &[u8])> = [(2, &b"lo"[..]), (6, lo_mac)]
            .into_iter()
            .filter(|(c, _)| keep_idb(*c))
            .collect();
        f.extend(ng.idb(101, 0, &lo_opts));
        let dropcount = if ng.big {
            7u64.to_be_bytes()
        } else {
            7u64.to_le_bytes()
        };
        f.extend(ng.epb(
            0,
            1_700_000_000_000_000_000,
            &[0xEE; 60],
            60,
            &[(4, &dropcount)],
        ));
        f.extend(ng.epb(1, 1_700_000_000_000_001, &[0x45; 20], 20, &[]));
    }
    f
}

#[test]
fn pcapng_interface_addresses_are_stripped_unless_kept() {
    let f = addressed_capture(|_| true);
    for keep_comments in [false, true] {
        for keep_interface_addresses in [false, true] {
            let opts = ReaderOptions {
                keep_comments,
                keep_interface_addresses,
                ..META
            };
            let got = pass(&f, opts).unwrap();
            assert!(got.err.is_none(), "{opts:?}: {:?}", got.err);
            let keep_code = |c: u16| {
                (keep_comments || c != 1)
                    && (keep_interface_addresses || !IF_ADDRESS_CODES.contains(&c))
            };
            let want = addressed_capture(keep_code);
            assert_eq!(got.out, want, "{opts:?}");
            // Timestamps and link types still come from the rewritten IDBs.
            let again = pass(&got.out, KEEP_ALL).unwrap();
            assert_eq!(again.packets, got.packets, "{opts:?}");
            assert_eq!(got.packets[0].ts_nsec, 0);
            assert_eq!(got.packets[1].ts_nsec, 1000);
        }
    }
    assert_eq!(
        pass(&f, KEEP_ALL).unwrap().out,
        f,
        "keep-all is byte-identical"
    );
    let def = pass(&f, META).unwrap().out;
    assert_eq!(count_with_pcap_parser(&def), 4);
    assert_eq!(pass(&def, META).unwrap().out, def, "idempotent");
    // Section lengths are cleared as soon as anything may be cut.
    let only_addr = ReaderOptions {
        keep_interface_addresses: false,
        ..KEEP_ALL
    };
    let mut g = LE.shb(0, &[]);
    let idb = LE.idb(1, 0, &[(4, &[192, 0, 2, 7, 255, 255, 255, 0])]);
    g.splice(16..24, (idb.len() as i64).to_le_bytes());
    g.extend(&idb);
    let mut want = LE.shb(-1, &[]);
    want.extend(LE.idb(1, 0, &[]));
    assert_eq!(pass(&g, only_addr).unwrap().out, want);
    assert_eq!(pass(&g, KEEP_ALL).unwrap().out, g);
}

/// `tshark`, when installed. Missing: skip, unless `IPWASH_REQUIRE_TOOLS`
/// is set, in which case the test fails.
fn tshark() -> Option<std::process::Command> {
    let found = std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(std::process::Command::new("tshark"));
    }
    assert!(
        std::env::var_os("IPWASH_REQUIRE_TOOLS").is_none(),
        "tshark not found but IPWASH_REQUIRE_TOOLS is set"
    );
    eprintln!("tshark not found: skipping");
    None
}

/// tshark's (frame number, interface name) lines for a capture file.
fn tshark_frames(path: &Path) -> Option<String> {
    let out = tshark()?
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "frame.interface_name",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn pcapng_stripped_interfaces_read_in_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let f = addressed_capture(|_| true);
    let input = dir.path().join("in.pcapng");
    std::fs::write(&input, &f).unwrap();
    let Some(before) = tshark_frames(&input) else {
        return;
    };
    let output = dir.path().join("out.pcapng");
    std::fs::write(&output, pass(&f, META).unwrap().out).unwrap();
    let after = tshark_frames(&output).unwrap();
    assert_eq!(after, before, "same frames on the same named interfaces");
    assert_eq!(after, "1\teth0\n2\tlo\n3\teth0\n4\tlo\n");
}

#[test]
fn pcapng_declared_section_length_is_cleared_when_editing() {
    let body = LE.idb(1, 0, &[(1, b"c")]);
    let mut f = LE.shb(body.len() as i64, &[]);
    f.extend(&body);
    assert_eq!(pass(&f, KEEP_ALL).unwrap().out, f);
    let got = pass(&f, DEFAULT).unwrap().out;
    let mut want = LE.shb(-1, &[]);
    want.extend(LE.idb(1, 0, &[]));
    assert_eq!(got, want);
}

#[test]
fn pcapng_bad_blocks_are_errors_with_offsets() {
    let good = {
        let mut f = LE.shb(-1, &[]);
        f.extend(LE.idb(1, 0, &[]));
        f
    };
    let at = good.len() as u64;
    let check = |tail: Vec<u8>, what: &str| {
        let mut f = good.clone();
        f.extend(tail);
        let got = pass(&f, DEFAULT).unwrap();
        let e = got.err.unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(e.offset(), Some(at), "{what}: {e}");
        assert_eq!(e.record(), Some(3), "{what}: {e}");
        assert_eq!(got.out, good, "{what}");
        e
    };
    let mut short = LE.block(6, b"");
    short[4] = 8;
    short[8] = 8;
    assert!(matches!(
        check(short, "len 8"),
        CaptureError::BadBlockLength { len: 8, .. }
    ));
    let mut odd = LE.block(99, b"abcd");
    odd[4] = 17;
    assert!(matches!(
        check(odd, "len 17"),
        CaptureError::BadBlockLength { len: 17, .. }
    ));
    let mut mismatch = LE.block(99, b"abcd");
    let n = mismatch.len();
    mismatch[n - 4] = 20;
    assert!(matches!(
        check(mismatch, "trailer"),
        CaptureError::BadBlockLength { .. }
    ));
    let huge = [6u32.to_le_bytes(), 0xFFFF_FFF0u32.to_le_bytes()].concat();
    assert!(matches!(
        check(huge, "huge"),
        CaptureError::BadBlockLength { .. }
    ));
    let orphan = LE.epb(5, 0, b"x", 1, &[]);
    assert!(matches!(
        check(orphan, "no interface"),
        CaptureError::Corrupt { .. }
    ));
    let mut over = LE.epb(0, 0, b"abcd", 4, &[]);
    over[20] = 200; // caplen beyond the block
    assert!(matches!(
        check(over, "caplen"),
        CaptureError::Corrupt { .. }
    ));
    let e = check(
        BE.shb(-1, &[])
            .into_iter()
            .map(|b| if b == 0x1A { 0x1B } else { b })
            .collect(),
        "bom",
    );
    assert!(matches!(e, CaptureError::Corrupt { .. }));
}

#[test]
fn pcap_huge_caplen_is_corrupt() {
    let mut p = Pcap::new(false, false, false, 1);
    p.record(1, 1, b"ok", 2);
    let good = p.bytes.len();
    p.u32(0);
    p.u32(0);
    p.u32(64 << 20);
    p.u32(64 << 20);
    let got = pass(&p.bytes, DEFAULT).unwrap();
    let e = got.err.unwrap();
    assert!(matches!(e, CaptureError::Corrupt { record: 2, .. }), "{e}");
    assert_eq!(e.offset(), Some(good as u64));
    assert_eq!(got.out.len(), good);
}

#[test]
fn empty_header_only_and_junk() {
    assert!(matches!(
        CaptureReader::new(&b""[..], DEFAULT),
        Err(CaptureError::Empty)
    ));
    let p = Pcap::new(false, false, false, 1);
    for cut in 1..24 {
        let e = CaptureReader::new(&p.bytes[..cut], DEFAULT).unwrap_err();
        assert!(e.is_truncation(), "cut {cut}: {e}");
    }
    // A header alone is a valid empty capture.
    let got = pass(&p.bytes, DEFAULT).unwrap();
    assert!(got.err.is_none() && got.packets.is_empty());
    assert_eq!(got.out, p.bytes);
    let e = CaptureReader::new(&b"GET / HTTP/1.1\r\n"[..], DEFAULT).unwrap_err();
    assert!(matches!(e, CaptureError::UnknownFormat { .. }));
    let shb = LE.shb(-1, &[]);
    for cut in 1..shb.len() {
        match CaptureReader::new(&shb[..cut], DEFAULT) {
            Err(e) => assert!(e.is_truncation(), "cut {cut}: {e}"),
            Ok(mut r) => {
                let e = r.next_unit().unwrap_err();
                assert!(e.is_truncation() && e.offset() == Some(0), "cut {cut}: {e}");
            }
        }
    }
}

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let prefixes: [&[u8]; 5] = [
        b"",
        &[0xd4, 0xc3, 0xb2, 0xa1],
        &[0x34, 0xcd, 0xb2, 0xa1],
        &[
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ],
        &[0xa1, 0xb2, 0x3c, 0x4d],
    ];
    for i in 0..3000 {
        let mut v = prefixes[i % prefixes.len()].to_vec();
        let n = rng.below(300);
        v.extend((0..n).map(|_| rng.next() as u8));
        for opts in [DEFAULT, KEEP_ALL] {
            let _ = pass(&v, opts);
        }
    }
    // Mutations of a valid capture: every unit that comes out stays sane.
    let base = two_sections();
    for _ in 0..3000 {
        let mut v = base.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(v.len());
            v[i] = rng.next() as u8;
        }
        let _ = pass(&v, DEFAULT);
    }
}

/// Cut `f` at every unit boundary and at random points inside units.
fn check_truncations(f: &[u8], opts: ReaderOptions, rng: &mut Rng, inside: usize) {
    let full = pass(f, opts).unwrap();
    assert!(full.err.is_none());
    let start = CaptureReader::new(f, opts).unwrap().offset();
    let mut bounds = vec![start];
    bounds.extend(&full.ends);
    for (i, &b) in bounds.iter().enumerate() {
        if b == 0 {
            continue; // empty input: its own error, tested elsewhere
        }
        let got = pass(&f[..b as usize], opts).unwrap();
        assert!(got.err.is_none(), "cut at boundary {b}: {:?}", got.err);
        assert_eq!(got.ends.len(), i, "cut at boundary {b}");
    }
    for _ in 0..inside {
        let unit = rng.below(bounds.len() - 1);
        let (a, b) = (bounds[unit], bounds[unit + 1]);
        let cut = a + 1 + rng.below((b - a - 1) as usize) as u64;
        let got = match pass(&f[..cut as usize], opts) {
            Ok(got) => got,
            // A pcapng cut inside the first SHB fails at open.
            Err(e) if a == 0 && e.is_truncation() => continue,
            Err(e) => panic!("cut at {cut}: {e}"),
        };
        let e = got.err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
        assert!(e.is_truncation(), "cut at {cut}: {e}");
        assert_eq!(e.offset(), Some(a), "cut at {cut}: {e}");
        assert_eq!(e.record(), Some(unit as u64 + 1), "cut at {cut}: {e}");
        assert_eq!(got.ends.len(), unit, "cut at {cut}");
        // Everything written is a prefix of the full output.
        assert!(full.out.starts_with(&got.out));
    }
}

#[test]
fn truncation_built_captures() {
    let mut rng = Rng(42);
    let mut p = Pcap::new(true, true, false, 1);
    for i in 0..20u32 {
        p.record(i, i, &vec![i as u8; i as usize * 7], 1000);
    }
    check_truncations(&p.bytes, DEFAULT, &mut rng, 300);
    let mut m = Pcap::new(false, false, true, 1);
    m.record(1, 2, b"modified", 8).record(3, 4, b"again", 5);
    check_truncations(&m.bytes, DEFAULT, &mut rng, 100);
    check_truncations(&two_sections(), DEFAULT, &mut rng, 300);
    check_truncations(&two_sections(), KEEP_ALL, &mut rng, 300);
}

#[test]
fn compressed_output_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = two_sections();
    for (c, name) in [
        (Compression::None, "a.pcapng"),
        (Compression::Gzip, "a.pcapng.gz"),
        (Compression::Xz, "a.pcapng.xz"),
    ] {
        let path = dir.path().join(name);
        let mut o = Output::create(&path, c).unwrap();
        o.write_all(&data[..10]).unwrap();
        o.write_all(&data[10..]).unwrap();
        assert!(!path.exists(), "target appears only on finish");
        o.finish().unwrap();
        let inp = open_input(&path).unwrap();
        assert_eq!((inp.compression, inp.kind), (c, FileKind::Pcapng));
        let mut back = Vec::new();
        inp.into_reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "{name}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    // A corrupt compressed stream is an I/O error, not a panic.
    let mut gz = std::fs::read(dir.path().join("a.pcapng.gz")).unwrap();
    let n = gz.len();
    gz.truncate(n / 2);
    let path = dir.path().join("cut.gz");
    std::fs::write(&path, &gz).unwrap();
    let inp = open_input(&path).unwrap();
    let got = pass_reader(inp.into_reader());
    assert!(matches!(got, Err(CaptureError::Io { .. })), "{got:?}");
}

fn pass_reader(r: impl Read) -> Result<u64, CaptureError> {
    let mut r = CaptureReader::new(r, DEFAULT)?;
    while r.next_unit()?.is_some() {}
    Ok(r.packets_read())
}

#[test]
fn open_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_input(&dir.path().join("missing.pcap")).unwrap_err();
    assert!(matches!(e, CaptureError::Open { .. }));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(open_input(&empty).unwrap_err().to_string(), "empty input");
    let cdns = dir.path().join("x.cdns");
    std::fs::write(&cdns, b"\x83\x65C-DNS\x82").unwrap();
    assert_eq!(open_input(&cdns).unwrap().kind, FileKind::Cdns);
}

// ------------------------------------------------------------------ corpus

fn count_with_pcap_parser(data: &[u8]) -> usize {
    use pcap_parser::pcapng::Block;
    use pcap_parser::{PcapBlockOwned, PcapError};
    let mut r = pcap_parser::create_reader(1 << 24, Cursor::new(data.to_vec())).unwrap();
    let mut n = 0;
    loop {
        match r.next() {
            Ok((off, b)) => {
                match b {
                    PcapBlockOwned::Legacy(_) => n += 1,
                    PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_)) => n += 1,
                    PcapBlockOwned::NG(Block::NameResolution(_)) => panic!("NRB left in"),
                    PcapBlockOwned::NG(b) => {
                        assert!(!has_comment(&b), "comment or interface address left in")
                    }
                    _ => {}
                }
                r.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => r.refill().unwrap(),
            Err(e) => panic!("pcap-parser: {e:?}"),
        }
    }
    n
}

/// A comment in any block, or a host address in an interface description.
fn has_comment(b: &pcap_parser::pcapng::Block) -> bool {
    use pcap_parser::pcapng::Block;
    let (opts, leaky): (_, &[u16]) = match b {
        Block::SectionHeader(b) => (&b.options, &[1]),
        Block::InterfaceDescription(b) => (&b.options, &[1, 4, 5, 6, 7]),
        Block::EnhancedPacket(b) => (&b.options, &[1]),
        Block::InterfaceStatistics(b) => (&b.options, &[1]),
        _ => return false,
    };
    opts.iter().any(|o| leaky.contains(&o.code.0))
}

fn corpus_files() -> Option<Vec<PathBuf>> {
    let Some(root) = std::env::var_os("IPWASH_CORPUS") else {
        eprintln!("IPWASH_CORPUS not set: skipping corpus tests");
        return None;
    };
    let mut files = Vec::new();
    walk(&Path::new(&root).join("pcap"), &mut files);
    files.retain(|p| {
        let n = p.to_string_lossy();
        n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".xz")
    });
    files.sort();
    assert!(!files.is_empty(), "no captures under $IPWASH_CORPUS/pcap");
    Some(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn load(path: &Path) -> (Compression, FileKind, Vec<u8>) {
    let inp = open_input(path).unwrap();
    let (c, k) = (inp.compression, inp.kind);
    let mut v = Vec::new();
    inp.into_reader().read_to_end(&mut v).unwrap();
    (c, k, v)
}

#[test]
fn corpus_identity_round_trip() {
    let Some(files) = corpus_files() else { return };
    for path in &files {
        let name = path.display();
        let (c, kind, data) = load(path);
        assert_eq!(
            c == Compression::Xz,
            path.to_string_lossy().ends_with(".xz"),
            "{name}"
        );
        assert!(matches!(kind, FileKind::Pcap | FileKind::Pcapng), "{name}");
        let data = complete_part(&name, data);
        let keep = pass(&data, KEEP_ALL).unwrap();
        assert!(keep.err.is_none(), "{name}: {:?}", keep.err);
        assert!(
            keep.out == data,
            "{name}: keep-all pass is not byte-identical"
        );
        let def = pass(&data, DEFAULT).unwrap();
        assert!(def.err.is_none(), "{name}: {:?}", def.err);
        assert_eq!(def.packets, keep.packets, "{name}");
        let expected = count_expected(&data);
        assert_eq!(
            keep.packets.len(),
            expected,
            "{name}: packet count vs pcap-parser"
        );
        if kind == FileKind::Pcap {
            assert!(def.out == data, "{name}: pcap must pass unchanged");
        } else if def.out != data {
            eprintln!(
                "{name}: default pass changed {} -> {} bytes ({} dropped)",
                data.len(),
                def.out.len(),
                def.dropped
            );
            assert_eq!(count_with_pcap_parser(&def.out), expected, "{name}");
            // Idempotent: a second default pass changes nothing.
            assert!(pass(&def.out, DEFAULT).unwrap().out == def.out, "{name}");
        }
    }
}

/// The input up to its last complete record. A few corpus files really are
/// cut short: that must show as a truncation error at the first incomplete
/// record, after which everything before it is written unchanged.
fn complete_part(name: &impl std::fmt::Display, data: Vec<u8>) -> Vec<u8> {
    let p = pass(&data, KEEP_ALL).unwrap();
    match p.err {
        None => data,
        Some(e) => {
            assert!(e.is_truncation(), "{name}: {e}");
            let at = e.offset().unwrap() as usize;
            eprintln!("{name}: truncated input ({e})");
            assert!(p.out == data[..at], "{name}: output before the cut");
            data[..at].to_vec()
        }
    }
}

/// pcap-parser's packet count, plus obsolete PBs which it does not parse.
fn count_expected(data: &[u8]) -> usize {
    use pcap_parser::pcapng::Block;
    use pcap_parser::{PcapBlockOwned, PcapError};
    let mut r = pcap_parser::create_reader(1 << 24, Cursor::new(data.to_vec())).unwrap();
    let mut n = 0;
    loop {
        match r.next() {
            Ok((off, b)) => {
                match b {
                    PcapBlockOwned::Legacy(_)
                    | PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_)) => {
                        n += 1
                    }
                    PcapBlockOwned::NG(Block::Unknown(u)) if u.block_type == 2 => n += 1,
                    _ => {}
                }
                r.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => r.refill().unwrap(),
            Err(e) => panic!("pcap-parser: {e:?}"),
        }
    }
    n
}

#[test]
fn corpus_truncations() {
    let Some(files) = corpus_files() else { return };
    let mut rng = Rng(7);
    for path in &files {
        let (_, _, data) = load(path);
        let data = complete_part(&path.display(), data);
        if data.len() > 200_000 {
            continue; // every boundary of the small files is enough
        }
        check_truncations(&data, DEFAULT, &mut rng, 50);
    }
}
