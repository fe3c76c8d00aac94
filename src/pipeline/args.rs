//! The `wash` command line.

use std::path::PathBuf;

use super::DEFAULT_CACHE_ENTRIES;
use crate::method::MethodArgs;

/// What to do with packets that cannot be parsed far enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Unparsed {
    /// Drop and count them (fail closed).
    #[default]
    Drop,
    /// Write them unchanged. MAY LEAK the addresses they hold.
    Pass,
}

/// Scope names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScopeArg {
    /// Rewrite every address.
    #[default]
    All,
    /// Keep the DNS server side (port 53, 853 or 443; QR bit breaks ties).
    Clients,
}

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CompressArg {
    /// As the output file name says (.gz .xz .zst .bz2); none on stdout.
    #[default]
    Auto,
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
}

/// `ipwash wash`.
#[derive(Debug, clap::Args)]
pub struct WashArgs {
    /// Input files or directories (walked recursively, sorted; `-` = stdin).
    /// Several inputs or a directory need `-o DIR`.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub inputs: Vec<PathBuf>,
    /// Output file, or directory for several inputs or a directory (created
    /// if missing; the inputs' relative tree is mirrored) (`-` = stdout).
    #[arg(short, long, value_name = "OUTPUT", default_value = "-")]
    pub output: PathBuf,
    /// Replace each input file by its washed copy, once that copy is
    /// complete (instead of `-o`). An input that fails is left as it was.
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Which addresses to rewrite.
    #[arg(long, value_enum, default_value_t = ScopeArg::All)]
    pub scope: ScopeArg,
    /// Leave this network unchanged (repeatable), e.g. your own servers: 192.0.2.0/24.
    #[arg(long, value_name = "PREFIX")]
    pub keep: Vec<String>,
    /// Load the enumerate/prefix-map state from FILE before and save it after,
    /// so several runs share one mapping.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With `--state`: apply the table as it is (built by `ipwash state
    /// merge`), never add to it or save it; an address missing from it fails
    /// that file (exit 1, nothing under the output's name).
    #[arg(long, requires = "state")]
    pub state_readonly: bool,
    /// Packets that cannot be parsed far enough to rewrite every address:
    /// `drop` (default) or `pass` — pass WRITES THEM UNCHANGED AND MAY LEAK ADDRESSES.
    #[arg(long, value_enum, default_value_t = Unparsed::Drop)]
    pub unparsed: Unparsed,
    /// Also write the statistics as JSON to FILE (`-` = stdout): totals and
    /// one entry per input.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Write every dropped packet, UNCHANGED (original addresses: the file
    /// is created with mode 0600), to FILE as pcapng, its reason in the
    /// packet comment.
    #[arg(long, value_name = "FILE")]
    pub dropped: Option<PathBuf>,
    /// Worker threads for stateless techniques (default: number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output compression (default: as the output name says; none on stdout).
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    pub compress: CompressArg,
    /// Compression level (gzip and bzip2 1-9, xz 0-9, zstd 1-19; default:
    /// the tool's own, gzip 6, xz 6, zstd 3, bzip2 9).
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
    /// pcapng: keep comment options (they can hold anything, addresses included).
    #[arg(long)]
    pub keep_comments: bool,
    /// C-DNS: keep the collection's free-text fields (filter, host-id, interfaces).
    #[arg(long)]
    pub keep_collection_info: bool,
    /// pcapng: keep all metadata (interface names, descriptions, filters,
    /// OS and hardware strings, packet hashes, decryption secrets, custom
    /// and unknown blocks and options); by default only harmless metadata
    /// is copied.
    #[arg(long)]
    pub keep_metadata: bool,
    /// MAC addresses (Ethernet, Linux cooked, ARP, ICMPv6 ND, DHCP):
    /// `wash` maps them with the technique, `keep` leaves them.
    #[arg(long, value_enum, default_value_t = crate::mac::MacMode::Wash)]
    pub mac: crate::mac::MacMode,
    /// Reverse names (`d.c.b.a.in-addr.arpa`, `ip6.arpa`) in DNS names:
    /// `wash` maps the address they hold, `keep` leaves them (they MAY
    /// hold the addresses washed elsewhere).
    #[arg(long, value_enum, default_value_t = crate::revname::ReverseNames::Wash)]
    pub reverse_names: crate::revname::ReverseNames,
    #[command(flatten)]
    pub privacy: crate::payload::PrivacyArgs,
    /// Entries per family of the per-thread exact-address cache (0 disables
    /// it, at most 4194304): 8 bytes each for IPv4, 32 for IPv6.
    #[arg(long, default_value_t = DEFAULT_CACHE_ENTRIES)]
    pub cache_size: usize,
    /// Memory for following DNS over TCP, in MiB: segments held until
    /// their messages complete plus stream state (at least 1). Over it, the
    /// oldest waiting message is given up (its segments dropped,
    /// `tcp_dns_hold_limit`) and idle flows are evicted.
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub tcp_memory: u64,
    /// Do not print statistics on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Wash back: invert a wash made with the same method and key (or, for
    /// enumerate and prefix-map, from its --state table, read-only).
    #[arg(long)]
    pub reverse: bool,
}
