//! The capture reader (classic pcap and pcapng) on arbitrary bytes.
//!
//! Oracles, beyond "no panic":
//! - with every metadata kept, the file header and the units put back
//!   together are exactly the bytes read (pcapng blocks come out
//!   byte-identical), and never more units than the input could hold;
//! - with the default (stripping) options, read through a source that hands
//!   out a few bytes at a time, the same units, counters and error as
//!   through one large buffer (refills are invisible);
//! - `read_into` (batches) gives the same units, packet ranges, link types
//!   and error as `next_unit` one by one;
//! - stripping never adds bytes, every packet range lies inside its unit.
#![no_main]

use std::io::{Cursor, Read};

use ipwash::capture::{CaptureReader, ReaderOptions};
use libfuzzer_sys::fuzz_target;

/// A source that returns at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

type UnitRec = (Vec<u8>, Option<(usize, usize, u32)>, Option<&'static str>);

#[derive(Debug, PartialEq)]
struct Run {
    header: Vec<u8>,
    units: Vec<UnitRec>,
    error: Option<String>,
    packets: u64,
    records: u64,
    offset: u64,
}

fn by_unit<R: Read>(src: R, opts: ReaderOptions) -> Result<Run, String> {
    let mut r = CaptureReader::new(src, opts).map_err(|e| e.to_string())?;
    let mut run = Run {
        header: r.header().to_vec(),
        units: Vec::new(),
        error: None,
        packets: 0,
        records: 0,
        offset: 0,
    };
    loop {
        match r.next_unit() {
            Ok(Some(u)) => {
                let p = u.packet.as_ref().map(|p| {
                    assert!(p.range.start <= p.range.end && p.range.end <= u.data.len());
                    (p.range.start, p.range.end, p.linktype)
                });
                run.units.push((u.data.to_vec(), p, u.dropped));
            }
            Ok(None) => break,
            Err(e) => {
                run.error = Some(e.to_string());
                break;
            }
        }
    }
    assert!(r
        .next_unit()
        .expect("a finished reader stays finished")
        .is_none());
    run.packets = r.packets_read();
    run.records = r.records_read();
    run.offset = r.offset();
    Ok(run)
}

fn by_batch(
    data: &[u8],
    opts: ReaderOptions,
    max_units: usize,
    max_bytes: usize,
) -> Result<Run, String> {
    let mut r = CaptureReader::new(Cursor::new(data), opts).map_err(|e| e.to_string())?;
    let mut run = Run {
        header: r.header().to_vec(),
        units: Vec::new(),
        error: None,
        packets: 0,
        records: 0,
        offset: 0,
    };
    loop {
        let mut out = Vec::new();
        let mut found = Vec::new();
        let res = r.read_into(&mut out, max_units, max_bytes, |s, e, p, d| {
            found.push((s, e, p, d))
        });
        for (s, e, p, d) in found {
            let unit = out[s..e].to_vec();
            let p = p.map(|(a, b, lt)| {
                assert!(a <= b && b <= unit.len());
                (a, b, lt)
            });
            run.units.push((unit, p, d));
        }
        match res {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                run.error = Some(e.to_string());
                break;
            }
        }
    }
    run.packets = r.packets_read();
    run.records = r.records_read();
    run.offset = r.offset();
    Ok(run)
}

fuzz_target!(|data: &[u8]| {
    // Everything kept: the output is the input, up to where reading stopped.
    let kept = by_unit(Cursor::new(data), ReaderOptions::KEEP_ALL);
    if let Ok(k) = &kept {
        let mut back = k.header.clone();
        for (u, _, _) in &k.units {
            back.extend_from_slice(u);
        }
        assert!(k.offset as usize <= data.len());
        assert_eq!(
            &back[..],
            &data[..k.offset as usize],
            "kept units differ from the input"
        );
        assert_eq!(k.records as usize, k.units.len());
        // Every record has a header of at least 12 bytes.
        assert!(k.units.len() <= data.len() / 12);
    }

    // Default options through a trickling source against one buffer.
    let step = 1 + data.len() % 7;
    let trickled = by_unit(Trickle { data, step }, ReaderOptions::default());
    let whole = by_unit(Cursor::new(data), ReaderOptions::default());
    assert_eq!(trickled, whole, "refill boundaries changed the units");
    assert_eq!(kept.is_ok(), whole.is_ok());
    if let (Ok(w), Ok(k)) = (&whole, &kept) {
        let out: usize = w.header.len() + w.units.iter().map(|u| u.0.len()).sum::<usize>();
        assert!(out <= data.len(), "stripping added bytes");
        assert!(w.units.len() <= k.units.len() || k.error.is_some());
    }

    // Batches against one by one.
    let max_units = 1 + data.first().map_or(0, |&b| usize::from(b % 5));
    let batched = by_batch(data, ReaderOptions::default(), max_units, 1 << 12);
    assert_eq!(batched, whole, "read_into differs from next_unit");
});
