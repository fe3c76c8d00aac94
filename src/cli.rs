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
#[command(name = "ipwash", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wash captures (pcap, pcapng, C-DNS; plain, gzip or xz): rewrite every address in scope.
    Wash(crate::pipeline::WashArgs),
    /// Map addresses read from stdin, one per line, to stdout (for text logs).
    Map(MapArgs),
    /// Write a fresh key for a technique, from the operating system's random generator.
    Keygen(KeygenArgs),
    /// Measure every technique on this machine.
    Bench(crate::bench::BenchArgs),
    /// Write a synthetic DNS capture (for benchmarks and scale tests).
    Synth(crate::synth::SynthArgs),
    /// DNSBLOOM query summaries (RFC 8932 B.2.7): build, query, merge, info.
    #[command(subcommand)]
    Bloom(crate::bloomcli::BloomCommand),
    /// Search a washed capture for every address of the original (exit 1 when any survives).
    Audit(crate::audit::AuditArgs),
}

/// `ipwash map`.
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub method: MethodArgs,
    /// Invert the mapping (reversible techniques only).
    #[arg(long)]
    pub reverse: bool,
    /// Load the mapping state of enumerate/prefix-map from FILE first and save it back after.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// `ipwash keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Technique the key is for (decides its length).
    #[arg(long, value_enum)]
    pub method: Method,
    /// Output file (created with mode 0600); `-` or absent writes to stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Run `ipwash map`.
pub fn run_map(args: &MapArgs) -> Result<(), CliError> {
    if args.reverse && !args.method.method.reversible() {
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
    let built = method::build(&args.method)?;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match built {
        Built::Deterministic(d) => {
            for_each_line(stdin, |n, line| {
                let a = method::parse_addr(line).ok_or_else(|| bad_line(n, line))?;
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
                    let a = method::parse_addr(line).ok_or_else(|| bad_line(n, line))?;
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
                    let a = method::parse_addr(line).ok_or_else(|| bad_line(n, line))?;
                    let m = match a {
                        IpAddr::V4(v) => IpAddr::V4(r.unmap_v4(v)),
                        IpAddr::V6(v) => IpAddr::V6(r.unmap_v6(v)),
                    };
                    writeln!(out, "{m}").map_err(CliError::from)
                })?;
            } else {
                let mut washer = Washer::new(technique);
                washer.info = info;
                if let Some(p) = &args.state {
                    crate::state::load(p, &mut washer.technique, &args.method)?;
                }
                let res = for_each_line(stdin, |n, line| {
                    let a = method::parse_addr(line).ok_or_else(|| bad_line(n, line))?;
                    writeln!(out, "{}", washer.wash(a, Side::Unknown)).map_err(CliError::from)
                });
                if let Some(p) = &args.state {
                    crate::state::save(p, &washer.technique, &args.method)?;
                }
                res?;
            }
        }
    }
    out.flush().map_err(CliError::from)
}

fn bad_line(n: u64, line: &str) -> CliError {
    let shown: String = line.chars().take(60).collect();
    CliError::data(format!("stdin line {n}: not an IP address: {shown:?}"))
}

fn for_each_line(
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
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        _ => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
        }
    }
    Ok(())
}
