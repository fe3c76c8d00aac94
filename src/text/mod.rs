//! `ipwash text`: wash the addresses in text logs (DNS query logs, CSV/TSV,
//! JSON lines, Zeek TSV logs) with the same washer as `wash` and `map`, so a
//! capture and a log washed with one key agree, address for address.
//!
//! - [`scanner`]: finds the addresses in a line (the plain format).
//! - [`formats`]: plain, csv/tsv, json lines, zeek, `--regex`: which parts
//!   of a line are washed, and what counts as an unreadable line.
//! - [`runner`]: inputs and outputs, batches of lines washed on worker
//!   threads and written in input order, line-buffered pipes, statistics.
//!
//! # The scanner's rules
//!
//! The scanner looks at each *run* of the bytes an address is made of
//! (`0-9 a-f A-F . :`). It never changes a byte outside an address.
//!
//! 1. A run glued to a letter, digit or `_` on its left is part of a word
//!    and is left alone (`v1.2.3.4`, `std::vector`). So is a run starting
//!    with a dot, and a run glued to a word on its right (`1.2.3.4rc1`).
//! 2. Trailing dots (a sentence, a name: `10.0.0.1.nip.io`) and one leading
//!    or trailing single colon (`client:1.2.3.4`, `1.2.3.4: msg`) are
//!    separators, not part of the address.
//! 3. Four dotted decimal parts, each 0-255, are an IPv4 address, even when
//!    the text is a version number (privacy first); leading zeros are read
//!    as decimal. Five or more parts (`1.2.3.4.5`), three parts (`9.18.28`),
//!    times (`12:34:56.789`), serials and MAC addresses are not addresses.
//! 4. A run that is a valid IPv6 address as a whole is one address, in
//!    either case, compressed or full. **The ambiguous case**, an IPv6
//!    address followed by `:port` without brackets (`2001:db8::1:53`), is
//!    taken whole: every byte that may belong to the address is replaced, so
//!    no part of an address can leak, at the cost of the port. Only when the
//!    whole run is not an address and dropping a last `:digits` (1-5 digits)
//!    leaves one (`192.0.2.1:53`, a full nine-group run) is that a port,
//!    left unchanged. `[v6]:port`, `v6%zone` and `a.b.c.d#port` need no
//!    rule: brackets, `%` and `#` end a run.
//! 5. IPv4-mapped addresses written with a dotted tail (`::ffff:1.2.3.4`)
//!    are washed as the IPv4 address they carry, and only the dotted part is
//!    replaced, so they agree with the plain IPv4 form. Every other IPv6
//!    form (NAT64 `64:ff9b::1.2.3.4`, mapped written in hex) is washed as an
//!    IPv6 address and written in RFC 5952 form.
//! 6. `address/nn` with the host bits zero and nn shorter than the address
//!    is a prefix, washed as one (`mask(wash(net))`); with host bits set it
//!    is an interface address: the address is washed, `/nn` kept.
//! 7. A run that fits none of these but has a colon-separated piece that is
//!    a dotted quad has that piece washed as IPv4 (`dead:1.2.3.4`).
//! 8. Reverse names: up to four decimal labels before `in-addr.arpa` and up
//!    to 32 one-nibble labels before `ip6.arpa` (any case) are an address,
//!    or with fewer labels a prefix, and are written back in reverse order.
//! 9. Runs of colons only (`::`) are not addresses.
//!
//! IPv6 replacements are written in RFC 5952 form, in upper case when the
//! original had only upper-case hex digits.

pub mod formats;
pub mod runner;
pub mod scanner;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::method::MethodArgs;
use crate::pipeline::CompressArg;

pub use runner::run_text;

/// The written-in-place marker of `--on-error mark`.
pub const MARKER: &str = "ipwash-unreadable";

/// What happens to a line whose selected field cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Stop with exit 1, naming the line (everything before it is written).
    #[default]
    Fail,
    /// Drop the line (counted).
    Skip,
    /// Write the line unchanged (counted, reported loudly). MAY LEAK ADDRESSES.
    Pass,
    /// Replace the unreadable value (or the whole line) with `ipwash-unreadable`.
    Mark,
}

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Any text: every address in a line.
    #[default]
    Plain,
    /// Comma-separated values (RFC 4180 quoting); the first line is a header.
    Csv,
    /// Tab-separated values; the first line is a header.
    Tsv,
    /// JSON lines: one JSON value per line.
    Json,
    /// Zeek TSV logs (`#fields` header).
    Zeek,
}

/// `ipwash text`.
#[derive(Debug, clap::Args)]
pub struct TextArgs {
    /// Input files (`-` = stdin; gzip and xz are undone). Several inputs need `-o DIR`.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub inputs: Vec<PathBuf>,
    /// Output file, or directory for several inputs (`-` = stdout).
    #[arg(short, long, value_name = "OUTPUT", default_value = "-")]
    pub output: PathBuf,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    pub format: Format,
    /// Field to wash (repeatable): csv/tsv a header name or 1-based index,
    /// json a dotted path, zeek a `#fields` name. Default: every field.
    #[arg(long, value_name = "NAME")]
    pub field: Vec<String>,
    /// Wash only what capture group 1 of RE matches (plain format only).
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// csv/tsv: the first line is data, not a header.
    #[arg(long)]
    pub no_header: bool,
    /// A line whose selected field cannot be read: fail (default), skip,
    /// pass (WRITES IT UNCHANGED AND MAY LEAK ADDRESSES) or mark.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    pub on_error: OnError,
    /// Leave this network unchanged (repeatable), e.g. 192.0.2.0/24.
    #[arg(long, value_name = "PREFIX")]
    pub keep: Vec<String>,
    /// Load the enumerate/prefix-map state from FILE before and save it
    /// after (the same file `wash --state` uses).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Also write the statistics as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Worker threads for stateless techniques (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output compression.
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    pub compress: CompressArg,
    /// Do not print statistics on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}
