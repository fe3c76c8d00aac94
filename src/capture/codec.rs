//! Compression codecs in and out, each on its own threads beside the washing.
//!
//! - In: gzip (any number of members), xz (any number of streams), zstd
//!   (any number of frames) and bzip2 (any number of streams), found by
//!   magic. The decoder runs on a thread of its own that hands decompressed
//!   chunks over a bounded channel, so decompression overlaps the washing.
//! - Out: gzip and bzip2 as independent members of a fixed size compressed
//!   by a pool of threads and written in order (the pigz way: every gzip
//!   and bzip2 reader reads concatenated members); xz with liblzma's
//!   multi-threaded encoder (independent blocks of the preset's size); zstd
//!   with its multi-threaded mode. Member and block sizes do not depend on
//!   the thread count, so the output is the same for every `--threads`.
//! - The default levels are the tools' own (gzip 6, xz 6, zstd 3, bzip2 9),
//!   so sizes match what users get from the tools.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::READ_CHUNK;

/// The compression wrapped around an input (and to wrap around the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// xz, possibly several streams.
    Xz,
    /// Zstandard (RFC 8878), possibly several frames.
    Zstd,
    /// bzip2, possibly several streams.
    Bzip2,
}

pub(crate) const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
pub(crate) const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
pub(crate) const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
pub(crate) const BZIP2_MAGIC: &[u8] = b"BZh";

/// Bytes read to recognise a compression.
pub(crate) const MAGIC_LEN: usize = 6;

impl Compression {
    /// The compression whose magic starts `head`.
    pub fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(XZ_MAGIC) {
            Compression::Xz
        } else if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.len() >= 4
            && head.starts_with(BZIP2_MAGIC)
            && (b'1'..=b'9').contains(&head[3])
        {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    /// The compression an output file name asks for: `.gz`, `.xz`, `.zst`
    /// or `.bz2` (any case); any other name is uncompressed.
    pub fn from_name(path: &Path) -> Compression {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("gz") => Compression::Gzip,
            Some("xz") => Compression::Xz,
            Some("zst") => Compression::Zstd,
            Some("bz2") => Compression::Bzip2,
            _ => Compression::None,
        }
    }

    /// The tool's own default level.
    pub fn default_level(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Gzip | Compression::Xz => 6,
            Compression::Zstd => 3,
            Compression::Bzip2 => 9,
        }
    }

    /// The levels accepted by `--level`.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip | Compression::Bzip2 => 1..=9,
            Compression::Xz => 0..=9,
            Compression::Zstd => 1..=19,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// How to compress an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCodec {
    /// The wrapping.
    pub compression: Compression,
    /// The level (checked against [`Compression::levels`] by the caller).
    pub level: u32,
    /// Compressor threads.
    pub threads: usize,
}

impl OutputCodec {
    /// `compression` at its default level on one compressor thread.
    pub fn new(compression: Compression) -> Self {
        OutputCodec {
            compression,
            level: compression.default_level(),
            threads: 1,
        }
    }
}

/// The decoder for `compression` over `raw` (whose first byte is the
/// magic), running on its own thread.
pub(crate) fn decoder(
    compression: Compression,
    raw: Box<dyn BufRead + Send>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let inner: Box<dyn Read + Send> = match compression {
        Compression::None => return Ok(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
    };
    Ok(Box::new(BufReader::with_capacity(
        READ_CHUNK,
        ThreadedReader::new(inner),
    )))
}

/// A reader whose source is read on a thread of its own, in chunks handed
/// over a bounded channel (so memory stays bounded).
pub struct ThreadedReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ThreadedReader {
    /// Start the thread reading `inner`.
    pub fn new(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut got = 0;
            // Fill whole chunks: decoders hand out small pieces.
            let res = loop {
                match inner.read(&mut buf[got..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        got += n;
                        if got == buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let end = got < buf.len();
            buf.truncate(got);
            if got > 0 && tx.send(Ok(buf)).is_err() {
                return;
            }
            match res {
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
                Ok(()) if end => return,
                Ok(()) => {}
            }
        });
        ThreadedReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A compressing writer over `W`.
pub(crate) enum Encoder<W: Write + Send + 'static> {
    Plain(W),
    Members(MemberEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// An encoder for `codec` writing to `w`.
    pub(crate) fn new(w: W, codec: OutputCodec) -> io::Result<Self> {
        let threads = codec.threads.clamp(1, 256);
        Ok(match codec.compression {
            Compression::None => Encoder::Plain(w),
            Compression::Gzip => Encoder::Members(MemberEncoder::new(
                w,
                Member::Gzip(codec.level),
                GZIP_MEMBER,
                threads,
            )),
            Compression::Bzip2 => Encoder::Members(MemberEncoder::new(
                w,
                Member::Bzip2(codec.level),
                // One bzip2 block of the level's size per stream.
                codec.level.clamp(1, 9) as usize * 100_000 - 1_000,
                threads,
            )),
            Compression::Xz => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads as u32)
                    .preset(codec.level)
                    .check(liblzma::stream::Check::Crc64)
                    .timeout_ms(300)
                    .encoder()
                    .map_err(io::Error::other)?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(w, stream))
            }
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, codec.level as i32)?;
                e.include_checksum(true)?;
                // Workers >= 1 always: zstd's output then does not depend on
                // their number (0 would be its different one-thread mode).
                e.multithread(threads as u32)?;
                Encoder::Zstd(e)
            }
        })
    }

    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Members(w) => w,
            Encoder::Xz(w) => w,
            Encoder::Zstd(w) => w,
        }
    }

    /// Write the trailer and hand back the sink.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Members(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

/// Uncompressed bytes per gzip member: large enough that the ratio is
/// within a fraction of a percent of one member, small enough to share out.
const GZIP_MEMBER: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
enum Member {
    Gzip(u32),
    Bzip2(u32),
}

impl Member {
    fn compress(self, data: &[u8]) -> io::Result<Vec<u8>> {
        let out = Vec::with_capacity(data.len() / 3 + 64);
        match self {
            Member::Gzip(level) => {
                let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
                e.write_all(data)?;
                e.finish()
            }
            Member::Bzip2(level) => {
                let mut e = bzip2::write::BzEncoder::new(out, bzip2::Compression::new(level));
                e.write_all(data)?;
                e.finish()
            }
        }
    }
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// Independent members compressed by a pool of threads and written in
/// input order by a writer thread.
pub(crate) struct MemberEncoder<W: Write + Send + 'static> {
    buf: Vec<u8>,
    size: usize,
    seq: u64,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> MemberEncoder<W> {
    fn new(w: W, kind: Member, size: usize, threads: usize) -> Self {
        let (jobs, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = sync_channel::<Done>(2 * threads);
        let workers = (0..threads)
            .map(|_| {
                let rx = job_rx.clone();
                let tx = done_tx.clone();
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(g) => g.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, data)) = job else { return };
                    if tx.send((seq, kind.compress(&data))).is_err() {
                        return;
                    }
                })
            })
            .collect();
        drop(done_tx);
        let writer = std::thread::spawn(move || -> io::Result<W> {
            let mut w = w;
            let mut next = 0u64;
            let mut held: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            for (seq, res) in done_rx {
                held.insert(seq, res?);
                while let Some(b) = held.remove(&next) {
                    w.write_all(&b)?;
                    next += 1;
                }
            }
            Ok(w)
        });
        MemberEncoder {
            buf: Vec::with_capacity(size),
            size,
            seq: 0,
            jobs: Some(jobs),
            workers,
            writer: Some(writer),
        }
    }

    /// Hand the buffered bytes to the pool.
    fn send(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.size));
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send((self.seq, data)).is_ok());
        self.seq += 1;
        if sent {
            Ok(())
        } else {
            // The writer stopped: report its error.
            Err(self
                .stop()
                .err()
                .unwrap_or_else(|| io::Error::other("compressor stopped")))
        }
    }

    fn stop(&mut self) -> io::Result<W> {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("compressor thread panicked")),
            None => Err(io::Error::other("compressor already finished")),
        }
    }

    fn finish(mut self) -> io::Result<W> {
        // At least one member, so even an empty output is a valid file.
        if !self.buf.is_empty() || self.seq == 0 {
            self.send()?;
        }
        self.stop()
    }
}

impl<W: Write + Send + 'static> Write for MemberEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.size {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for MemberEncoder<W> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Compression, threads: usize, data: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new(
            Vec::new(),
            OutputCodec {
                compression: c,
                level: c.default_level(),
                threads,
            },
        )
        .unwrap();
        e.writer().write_all(data).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(Compression::from_magic(&z), c);
        let mut d = decoder(c, Box::new(io::Cursor::new(z))).unwrap();
        let mut back = Vec::new();
        d.read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn every_codec_round_trips_at_every_thread_count() {
        let data: Vec<u8> = (0..3_500_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8)
            .collect();
        for c in [
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
            Compression::Bzip2,
        ] {
            for t in [1, 3] {
                assert!(round_trip(c, t, &data) == data, "{c:?} {t}");
            }
            assert!(round_trip(c, 2, b"").is_empty(), "{c:?} empty");
        }
    }

    #[test]
    fn names_and_magics() {
        assert_eq!(
            Compression::from_name(Path::new("a.pcap.GZ")),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_name(Path::new("a.pcap.zst")),
            Compression::Zstd
        );
        assert_eq!(
            Compression::from_name(Path::new("a.pcap.bz2")),
            Compression::Bzip2
        );
        assert_eq!(Compression::from_name(Path::new("a.xz")), Compression::Xz);
        assert_eq!(
            Compression::from_name(Path::new("a.pcap")),
            Compression::None
        );
        assert_eq!(Compression::from_magic(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::from_magic(b"BZhx"), Compression::None);
        assert_eq!(Compression::from_magic(ZSTD_MAGIC), Compression::Zstd);
    }
}
