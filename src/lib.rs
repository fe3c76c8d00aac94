//! # ipwash
//!
//! Pseudonymise and anonymise the IP addresses in DNS captures: classic pcap,
//! pcapng, C-DNS (RFC 8618) and dnstap, plain or compressed, as a stream. The address
//! techniques themselves live in the `ipwash-algorithms` crate; this crate
//! holds the formats, the packet rewriting, DNS awareness, the pipeline and
//! the command line.

pub mod audit;
pub mod batch;
pub mod bench;
pub mod bloom;
pub mod bloomcli;
pub mod capture;
pub mod cdns;
pub mod cli;
pub mod defrag;
pub mod dns;
pub mod dnsenc;
pub mod dnstap;
pub mod dropped;
pub mod edns;
pub mod error;
pub mod fanout;
pub mod mac;
pub mod manual;
pub mod method;
pub mod packet;
pub mod payload;
pub mod pipeline;
pub mod progress;
pub mod reverse;
pub mod revname;
pub mod revwash;
pub mod signals;
pub mod state;
pub mod stats;
pub mod synth;
pub mod tcpdns;
pub mod text;
pub mod wash;
