//! Synthetic DNS captures for benchmarks and scale tests: Ethernet, UDP DNS
//! queries and their responses between clients drawn from a Zipf
//! distribution (or, with `random_clients`, a new random client for every
//! query) and a few servers, 90 % IPv4 and 10 % IPv6, with valid checksums.
//! Deterministic for a given seed.

use std::io::Write;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    /// Packets in all (queries and responses alternate).
    pub packets: u64,
    /// Distinct clients.
    pub clients: u32,
    /// Generator seed.
    pub seed: u64,
    /// Every query from a new, uniformly random client address (`clients`
    /// is then ignored).
    pub random_clients: bool,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut it = data.chunks_exact(2);
    for c in &mut it {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = it.remainder() {
        acc += (*b as u32) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

const NAMES: [&str; 8] = [
    "www.example.com",
    "mail.example.org",
    "cdn.example.net",
    "api.example.com",
    "time.example.org",
    "static.example.net",
    "login.example.com",
    "update.example.org",
];

/// A query waiting for its response: the client's IPv4 and IPv6 address,
/// whether it uses IPv6, the DNS id, the client port and the name.
type Query = ([u8; 4], [u8; 16], bool, u16, u16, usize);

/// Write a classic pcap (little-endian, microseconds, Ethernet) to `w`.
pub fn write_capture<W: Write>(spec: SynthSpec, mut w: W) -> std::io::Result<()> {
    let mut rng = Rng(spec.seed);
    let n = spec.clients.max(1) as usize;
    // Zipf(s=1) over clients via the inverse CDF.
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for i in 1..=n {
        acc += 1.0 / i as f64;
        cdf.push(acc);
    }
    let total = acc;
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut frame = Vec::with_capacity(256);
    let mut dnsmsg = Vec::with_capacity(128);
    let mut pending: Option<Query> = None;
    let t0 = 1_767_225_600u64;
    for i in 0..spec.packets {
        let (cli4, cli6, v6, id, port, name, response) = match pending.take() {
            Some((a4, a6, v6, id, port, name)) => (a4, a6, v6, id, port, name, true),
            None => {
                let (a4, a6, v6) = if spec.random_clients {
                    let r = rng.next();
                    let mut a6 = [0u8; 16];
                    a6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                    a6[4..12].copy_from_slice(&rng.next().to_be_bytes());
                    a6[12..].copy_from_slice(&(r as u32).to_be_bytes());
                    // Never 0.0.0.0: 1 to 223 in the first byte.
                    let mut a4 = (r as u32).to_be_bytes();
                    a4[0] = 1 + a4[0] % 223;
                    (a4, a6, (r >> 32) % 10 == 9)
                } else {
                    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                    let c = cdf.partition_point(|&x| x < u).min(n - 1) as u32;
                    let a4 = [
                        10 + (c >> 16) as u8 % 100,
                        (c >> 8) as u8,
                        c as u8,
                        1 + (c >> 24) as u8,
                    ];
                    let mut a6 = [0u8; 16];
                    a6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                    a6[4..8].copy_from_slice(&c.to_be_bytes());
                    a6[15] = 1;
                    (a4, a6, c % 10 == 9)
                };
                let id = rng.next() as u16;
                let port = 1024 + (rng.next() % 60000) as u16;
                let name = (rng.next() % NAMES.len() as u64) as usize;
                pending = Some((a4, a6, v6, id, port, name));
                (a4, a6, v6, id, port, name, false)
            }
        };
        // The DNS message.
        dnsmsg.clear();
        dnsmsg.extend_from_slice(&id.to_be_bytes());
        dnsmsg.extend_from_slice(if response {
            &[0x81, 0x80]
        } else {
            &[0x01, 0x00]
        });
        dnsmsg.extend_from_slice(&[0, 1, 0, response as u8, 0, 0, 0, 0]);
        for label in NAMES[name].split('.') {
            dnsmsg.push(label.len() as u8);
            dnsmsg.extend_from_slice(label.as_bytes());
        }
        dnsmsg.extend_from_slice(&[0, 0, 1, 0, 1]);
        if response {
            dnsmsg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 203, 0, 113]);
            dnsmsg.push(name as u8);
        }
        let srv4 = [198, 51, 100, 53];
        let mut srv6 = [0u8; 16];
        srv6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        srv6[14] = 0x53;
        srv6[15] = 0x53;
        let (sport, dport) = if response { (53, port) } else { (port, 53) };
        let ulen = 8 + dnsmsg.len();
        frame.clear();
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        let (src, dst): (&[u8], &[u8]) = match (v6, response) {
            (false, false) => (&cli4, &srv4),
            (false, true) => (&srv4, &cli4),
            (true, false) => (&cli6, &srv6),
            (true, true) => (&srv6, &cli6),
        };
        if v6 {
            frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            frame.extend_from_slice(&(ulen as u16).to_be_bytes());
            frame.extend_from_slice(&[17, 64]);
        } else {
            frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            frame.extend_from_slice(&((20 + ulen) as u16).to_be_bytes());
            frame.extend_from_slice(&(i as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 64, 17, 0, 0]);
        }
        frame.extend_from_slice(src);
        frame.extend_from_slice(dst);
        if !v6 {
            let ck = fold(sum16(&frame[14..34], 0));
            frame[24..26].copy_from_slice(&ck.to_be_bytes());
        }
        let udp_at = frame.len();
        frame.extend_from_slice(&sport.to_be_bytes());
        frame.extend_from_slice(&dport.to_be_bytes());
        frame.extend_from_slice(&(ulen as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&dnsmsg);
        let mut acc = sum16(src, 0);
        acc = sum16(dst, acc);
        acc += 17 + ulen as u32;
        acc = sum16(&frame[udp_at..], acc);
        let mut ck = fold(acc);
        if ck == 0 {
            ck = 0xffff;
        }
        frame[udp_at + 6..udp_at + 8].copy_from_slice(&ck.to_be_bytes());
        let ts = t0 + i / 1000;
        let us = (i % 1000) * 1000;
        w.write_all(&(ts as u32).to_le_bytes())?;
        w.write_all(&(us as u32).to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&frame)?;
    }
    Ok(())
}

/// `ipwash synth`: write a synthetic DNS capture.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output file (`-` = stdout).
    #[arg(short, long, default_value = "-")]
    pub output: std::path::PathBuf,
    /// Packets to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub packets: u64,
    /// Distinct clients (Zipf-distributed).
    #[arg(long, default_value_t = 50_000)]
    pub clients: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A new, uniformly random client address for every query (instead
    /// of `--clients` Zipf-distributed ones).
    #[arg(long)]
    pub random_clients: bool,
}

/// Run `ipwash synth`.
pub fn run_synth(a: &SynthArgs) -> Result<(), crate::error::CliError> {
    let spec = SynthSpec {
        packets: a.packets,
        clients: a.clients,
        seed: a.seed,
        random_clients: a.random_clients,
    };
    if a.output.as_os_str() == "-" {
        if crate::capture::is_terminal_stdout() {
            return Err(crate::error::CliError::usage(
                "refusing to write a binary capture to a terminal",
            ));
        }
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        write_capture(spec, out)?;
    } else {
        let f = std::fs::File::create(&a.output).map_err(|e| {
            crate::error::CliError::usage(format!("cannot create {}: {e}", a.output.display()))
        })?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        write_capture(spec, &mut out)?;
        out.flush()?;
    }
    Ok(())
}
