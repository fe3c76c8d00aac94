//! The command line: argument definitions and the commands that do not need a
//! capture (`map`, `keygen`). Parsing happens in two stages: clap validates
//! the flags, then `method::build` turns them into working objects, so a usage
//! error is found before anything is read or written.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::method::{self, Built, Method, MethodArgs};
use crate::wash::{Side, Washer};

/// Pseudonymise and anonymise IP addresses in DNS captures.
#[derive(Debug, Parser)]
#[command(name = "ipwash", version = crate::manual::VERSION, about, long_about = None)]
#[command(after_help = crate::manual::TOP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wash captures and logs (pcap, pcapng, C-DNS, dnstap; plain, gz, xz, zst, bz2): rewrite every identifier in scope.
    #[command(after_help = crate::manual::WASH)]
    Wash(crate::pipeline::WashArgs),
    /// Map addresses read from stdin, one per line, to stdout (for text logs).
    #[command(after_help = crate::manual::MAP)]
    Map(MapArgs),
    /// Wash the addresses in text logs: plain, csv, tsv, JSON lines, Zeek.
    #[command(after_help = crate::manual::TEXT)]
    Text(crate::text::TextArgs),
    /// Write a fresh key for a technique, from the operating system's random generator.
    #[command(after_help = crate::manual::KEYGEN)]
    Keygen(KeygenArgs),
    /// Fan-out: record where file K of a manifest first shows each address (for `state merge`).
    #[command(after_help = crate::manual::SCAN)]
    Scan(crate::fanout::ScanArgs),
    /// Mapping tables of enumerate/prefix-map: merge the parts of `scan`.
    #[command(subcommand, after_help = crate::manual::STATE)]
    State(crate::fanout::StateCommand),
    /// Measure every technique on this machine.
    #[command(after_help = crate::manual::BENCH)]
    Bench(crate::bench::BenchArgs),
    /// Write a synthetic DNS capture (for benchmarks and scale tests).
    #[command(after_help = crate::manual::SYNTH)]
    Synth(crate::synth::SynthArgs),
    /// DNSBLOOM query summaries (RFC 8932 B.2.7): build, query, merge, info.
    #[command(subcommand, after_help = crate::manual::BLOOM)]
    Bloom(crate::bloomcli::BloomCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(after_help = crate::manual::COMPLETIONS)]
    Completions(crate::manual::CompletionsArgs),
    /// Print the man page (roff) of ipwash or of one subcommand to stdout.
    #[command(after_help = crate::manual::MAN)]
    Man(crate::manual::ManArgs),
    /// Search a washed capture for every address of the original (exit 1 when any survives).
    #[command(after_help = crate::manual::AUDIT)]
    Audit(crate::audit::AuditArgs),
}

/// `ipwash map`.
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub method: MethodArgs,
    /// Invert the mapping (reversible techniques; enumerate and prefix-map from their --state table, read-only).
    #[arg(long)]
    pub reverse: bool,
    /// Load the mapping state of enumerate/prefix-map from FILE first and save it back after.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// A line that is not an address: fail (default), skip, pass (WRITES IT
    /// UNCHANGED AND MAY LEAK) or mark (writes `ipwash-unreadable`).
    #[arg(long, value_enum, default_value_t = crate::text::OnError::Fail)]
    pub on_error: crate::text::OnError,
}

/// `ipwash keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Technique the key is for (decides its length).
    #[arg(long, value_enum)]
    pub method: KeyFor,
    /// Output file (created with mode 0600); `-` or absent writes to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// cryptopant only: the function the key file names for both families
    /// (scramble_ips --newkey --type; its own default is blowfish).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub crypto_type: Option<CryptopantType>,
}

/// The key types of a cryptopANT key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CryptopantType {
    /// AES-128 (ipwash's default).
    Aes,
    /// Blowfish (scramble_ips's default).
    Blowfish,
    /// MD5 of the pad and address (no cipher key used).
    Md5,
    /// SHA-1 of the pad and address (no cipher key used).
    Sha1,
}

/// What `keygen --method` makes a key for: a technique, or Bloom filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFor {
    /// An address technique.
    Method(Method),
    /// `ipwash bloom` (a 32-byte operator key).
    Bloom,
}

impl KeyFor {
    fn name(self) -> &'static str {
        match self {
            KeyFor::Method(m) => m.name(),
            KeyFor::Bloom => "bloom",
        }
    }

    fn key_len(self) -> Option<usize> {
        match self {
            KeyFor::Method(m) => m.key_len(),
            KeyFor::Bloom => Some(32),
        }
    }
}

impl clap::ValueEnum for KeyFor {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            KeyFor::Method(Method::Truncate),
            KeyFor::Method(Method::Enumerate),
            KeyFor::Method(Method::PrefixMap),
            KeyFor::Method(Method::Cryptopan),
            KeyFor::Method(Method::Cryptopant),
            KeyFor::Method(Method::Tsa),
            KeyFor::Method(Method::Ipcipher),
            KeyFor::Method(Method::IpcryptPfx),
            KeyFor::Method(Method::IpcryptDeterministic),
            KeyFor::Method(Method::IpcryptNd),
            KeyFor::Method(Method::IpcryptNdx),
            KeyFor::Bloom,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            KeyFor::Method(m) => m.to_possible_value(),
            KeyFor::Bloom => Some(
                clap::builder::PossibleValue::new("bloom")
                    .help("The operator key of `ipwash bloom` filters (32 bytes)."),
            ),
        }
    }
}

/// Run `ipwash map`.
pub fn run_map(args: &MapArgs) -> Result<(), CliError> {
    // enumerate and prefix-map go back through their saved table.
    let from_table = args.reverse && args.method.method.stateful() && args.state.is_some();
    if args.reverse && !args.method.method.reversible() && !from_table {
        return Err(CliError::usage(format!(
            "--reverse: {} is not reversible",
            args.method.method.name()
        )));
    }
    if args.state.is_some() && !args.method.method.stateful() {
        return Err(CliError::usage(format!(
            "--state: {} keeps no state",
            args.method.method.name()
        )));
    }
    let mut unread = Unreadable {
        policy: args.on_error,
        counts: [0; 3],
    };
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if from_table {
        let (mut t, _) = crate::reverse::technique(&args.method, args.state.as_deref())?;
        for_each_line(stdin, |n, line| {
            let a = match unread.addr(n, line, &mut out)? {
                Some(a) => a,
                None => return Ok(()),
            };
            writeln!(out, "{}", t.map(a)).map_err(CliError::from)
        })?;
        out.flush().map_err(CliError::from)?;
        unread.report();
        return Ok(());
    }
    let built = method::build(&args.method)?;
    match built {
        Built::Deterministic(d) => {
            for_each_line(stdin, |n, line| {
                let a = match unread.addr(n, line, &mut out)? {
                    Some(a) => a,
                    None => return Ok(()),
                };
                let r: IpAddr = if args.reverse {
                    match a {
                        IpAddr::V6(v) => d.decrypt(v),
                        IpAddr::V4(_) => {
                            return Err(CliError::data(format!(
                            "stdin line {n}: ipcrypt-deterministic ciphertexts are IPv6 addresses"
                        )))
                        }
                    }
                } else {
                    IpAddr::V6(d.encrypt(a))
                };
                writeln!(out, "{r}").map_err(CliError::from)
            })?;
        }
        Built::NonDeterministic(c) => {
            let name = args.method.method.name();
            if args.reverse {
                for_each_line(stdin, |n, line| {
                    let a = c.decrypt_hex(line).ok_or_else(|| {
                        CliError::data(format!(
                            "stdin line {n}: not an {name} ciphertext ({} hex digits)",
                            2 * c.output_len()
                        ))
                    })?;
                    writeln!(out, "{a}").map_err(CliError::from)
                })?;
            } else {
                // A fresh random tweak per address, drawn in bulk.
                let tl = c.tweak_len();
                let mut tweaks = vec![0u8; tl * 4096];
                let mut used = tweaks.len();
                let mut text = String::new();
                for_each_line(stdin, |n, line| {
                    let a = match unread.addr(n, line, &mut out)? {
                        Some(a) => a,
                        None => return Ok(()),
                    };
                    if used == tweaks.len() {
                        getrandom::fill(&mut tweaks).map_err(|e| {
                            CliError::data(format!("cannot read the OS random generator: {e}"))
                        })?;
                        used = 0;
                    }
                    text.clear();
                    c.encrypt_hex(a, &tweaks[used..used + tl], &mut text);
                    used += tl;
                    writeln!(out, "{text}").map_err(CliError::from)
                })?;
            }
        }
        Built::Map {
            technique,
            info,
            reversible,
        } => {
            if args.reverse {
                let r = reversible.ok_or_else(|| CliError::usage("not reversible"))?;
                for_each_line(stdin, |n, line| {
                    let a = match unread.addr(n, line, &mut out)? {
                        Some(a) => a,
                        None => return Ok(()),
                    };
                    let m = crate::wash::unmap(&*r, a, info.mapped);
                    writeln!(out, "{m}").map_err(CliError::from)
                })?;
            } else {
                let mut washer = Washer::new(technique);
                washer.info = info;
                if let Some(p) = &args.state {
                    crate::state::load_with(
                        p,
                        &mut washer.technique,
                        Some(&mut washer.mac),
                        &args.method,
                    )?;
                }
                let res = for_each_line(stdin, |n, line| {
                    let a = match unread.addr(n, line, &mut out)? {
                        Some(a) => a,
                        None => return Ok(()),
                    };
                    writeln!(out, "{}", washer.wash(a, Side::Unknown)).map_err(CliError::from)
                });
                if let Some(p) = &args.state {
                    crate::state::save_with(p, &washer.technique, &washer.mac, &args.method)?;
                }
                res?;
            }
        }
    }
    out.flush().map_err(CliError::from)?;
    unread.report();
    Ok(())
}

/// `map --on-error`: what happens to a line that is not an address.
struct Unreadable {
    policy: crate::text::OnError,
    /// Skipped, passed, marked.
    counts: [u64; 3],
}

impl Unreadable {
    /// Say on stderr what the policy did, if anything.
    fn report(&self) {
        let [skipped, passed, marked] = self.counts;
        if skipped + passed + marked > 0 {
            eprintln!(
                "ipwash: lines not an address: skipped {skipped}, PASSED UNWASHED {passed}, marked {marked}"
            );
        }
    }

    /// The line's address, or None when the line was handled by the policy.
    fn addr(
        &mut self,
        n: u64,
        line: &str,
        out: &mut impl Write,
    ) -> Result<Option<IpAddr>, CliError> {
        use crate::text::OnError;
        if let Some(a) = method::parse_addr(line) {
            return Ok(Some(a));
        }
        match self.policy {
            OnError::Fail => return Err(bad_line(n, line)),
            OnError::Skip => self.counts[0] += 1,
            OnError::Pass => {
                self.counts[1] += 1;
                writeln!(out, "{line}")?;
            }
            OnError::Mark => {
                self.counts[2] += 1;
                writeln!(out, "{}", crate::text::MARKER)?;
            }
        }
        Ok(None)
    }
}

fn bad_line(n: u64, line: &str) -> CliError {
    let shown: String = line.chars().take(60).collect();
    CliError::data(format!("stdin line {n}: not an IP address: {shown:?}"))
}

/// The line loop of `ipwash map`: `f(line number, line without its end)`
/// for every line of `input`. Public for the fuzz targets.
#[doc(hidden)]
pub fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(u64, &str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut buf = String::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let read = input
            .read_line(&mut buf)
            .map_err(|e| CliError::data(format!("stdin line {}: {e}", n + 1)))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        f(n, buf.trim_end_matches(['\n', '\r']))?;
    }
}

/// Run `ipwash keygen`.
pub fn run_keygen(args: &KeygenArgs) -> Result<(), CliError> {
    if args.crypto_type.is_some() && args.method != KeyFor::Method(Method::Cryptopant) {
        return Err(CliError::usage("--type is for --method cryptopant only"));
    }
    if args.method == KeyFor::Method(Method::Cryptopant) {
        use ipwash_algorithms::cryptopant::{Crypto, KeyFile, NEW_RANDOM_LEN};
        let crypto = match args.crypto_type.unwrap_or(CryptopantType::Aes) {
            CryptopantType::Aes => Crypto::Aes,
            CryptopantType::Blowfish => Crypto::Blowfish,
            CryptopantType::Md5 => Crypto::Md5,
            CryptopantType::Sha1 => Crypto::Sha1,
        };
        let mut random = zeroize::Zeroizing::new([0u8; NEW_RANDOM_LEN]);
        getrandom::fill(&mut random[..]).map_err(|e| {
            CliError::data(format!("operating system random generator failed: {e}"))
        })?;
        let text = KeyFile::generate(crypto, &random).to_text();
        return write_key_text(args, text.as_bytes());
    }
    let len = args
        .method
        .key_len()
        .ok_or_else(|| CliError::usage(format!("--method {} takes no key", args.method.name())))?;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut key[..len])
        .map_err(|e| CliError::data(format!("operating system random generator failed: {e}")))?;
    let mut text = zeroize::Zeroizing::new(String::with_capacity(2 * len + 1));
    for b in &key[..len] {
        text.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        text.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    text.push('\n');
    write_key_text(args, text.as_bytes())
}

/// Write key text to `--output` (a new file, mode 0600) or stdout.
fn write_key_text(args: &KeygenArgs, text: &[u8]) -> Result<(), CliError> {
    match &args.output {
        Some(p) if p.as_os_str() != "-" => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(p).map_err(|e| {
                CliError::usage(format!("cannot create key file {}: {e}", p.display()))
            })?;
            f.write_all(text)?;
            f.sync_all()?;
        }
        _ => {
            let mut o = std::io::stdout().lock();
            o.write_all(text)?;
            o.flush()?;
        }
    }
    Ok(())
}
