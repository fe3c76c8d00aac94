//! `ipwash wash`: the stream pipeline.
//!
//! ```text
//! input -> sniff (pcap | pcapng | C-DNS | dnstap, plain | gz | xz)
//!       -> units (records/blocks, copied verbatim unless patched)
//!       -> locate address slots -> map (scope, keep, technique) -> patch
//!       -> output in input order, same format and wrapping
//! ```
//!
//! Stateful techniques (enumeration, prefix map) run the sequential path,
//! packet by packet: their output depends on the order addresses are first
//! seen (on files, a reader thread parses the next batches meanwhile).
//! Stateless techniques on files run in batches: each worker on a rayon pool
//! (`--threads` of them) takes the reader in turn to copy out the next
//! batch, washes it, and writes it when its turn comes, so the output is in
//! input order and a batch stays on one core from reading to writing. A
//! worker's result depends only on the packet and the key, so the output is
//! byte-identical for every thread count. Plain UDP packets take a shortcut
//! past the general packet walker ([`packet::classify_plain`]).
//!
//! A packet that cannot be parsed far enough to find every address is
//! dropped and counted by reason (fail closed), unless `--unparsed pass`.
//!
//! One concern per file:
//!
//! ```text
//! args        the `wash` command line (WashArgs, Unparsed, ScopeArg, CompressArg)
//! plan        run_wash: validate, build the technique, decide the Plan
//! file        one input to one output: open, sniff, pick a strategy, commit
//!   sequential   unit by unit (live pipes)
//!   batched      stateless techniques: batches on a worker pool, written in turn
//!   prefetched   stateful techniques: a reader thread copies out batches ahead
//! batch       a batch of units copied out of the reader, and washing it
//! washer      one packet: locate -> map -> patch (Worker, Outcome)
//! cache       the per-worker exact-address cache (AddrCache)
//! emit        counting, writing in order, IP defragmentation, --dropped
//! io          adapters: SharedWriter, FlushOnBlock (live pipes)
//! ```
//!
//! [`packet::classify_plain`]: crate::packet::classify_plain

mod args;
mod batch;
mod batched;
mod cache;
mod emit;
mod file;
mod io;
mod plan;
mod prefetched;
mod sequential;
mod washer;

pub use args::{CompressArg, ScopeArg, Unparsed, WashArgs};
pub use cache::{AddrCache, DEFAULT_CACHE_ENTRIES};
pub(crate) use emit::{Emitter, Piece};
pub use file::{input_error, output_compression, wash_one, wash_stream};
pub use io::FlushOnBlock;
pub(crate) use io::SharedWriter;
pub use plan::{run_wash, CommitHook, Plan};
pub use washer::{wash_packet, Outcome, Worker};
