//! Washing back (`ipwash wash --reverse`): the inverse of a wash, for an
//! incident where the key holder must see the real addresses.
//!
//! - Keyed reversible techniques (cryptopan, cryptopant, tsa, ipcipher,
//!   ipcrypt-pfx, with their pass bits) are inverted with the key: the
//!   washer is given the inverse map, so every place a wash rewrites an
//!   address (headers, ICMP quotes, tunnels, Teredo, ECS, C-DNS tables) is
//!   rewritten back, and the checksums, patched incrementally both ways,
//!   come back with them.
//! - enumerate and prefix-map are inverted from their `--state` table,
//!   read-only (the file is not written). An address that is not in the
//!   table cannot come back: it is left as it is and counted, and the run
//!   says so once.
//! - What the wash removed (pcapng comments and options outside the
//!   allow-list, removed blocks, C-DNS collection text, dropped packets) has
//!   no key and cannot come back; the run says so once.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipwash_algorithms::{AddrMap, Reversible};

use crate::error::CliError;
use crate::method::{self, Built, MethodArgs};
use crate::wash::{StatefulTech, Technique};

/// A reversible map turned around: mapping applies the inverse.
pub struct Inverse(pub Arc<dyn Reversible>);

impl AddrMap for Inverse {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        self.0.unmap_v4(a)
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        self.0.unmap_v6(a)
    }
    fn prefix_preserving(&self) -> bool {
        self.0.prefix_preserving()
    }
}

/// The inverse of a saved enumerate or prefix-map table.
pub struct TableInverse {
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u128>,
    prefix_preserving: bool,
    misses: AtomicU64,
}

impl TableInverse {
    /// The inverse of `(original, replacement)` pairs.
    pub fn new(pairs: &[(IpAddr, IpAddr)], prefix_preserving: bool) -> TableInverse {
        let mut v4 = HashMap::new();
        let mut v6 = HashMap::new();
        for (o, r) in pairs {
            match (o, r) {
                (IpAddr::V4(o), IpAddr::V4(r)) => {
                    v4.insert(u32::from(*r), u32::from(*o));
                }
                (IpAddr::V6(o), IpAddr::V6(r)) => {
                    v6.insert(u128::from(*r), u128::from(*o));
                }
                _ => {}
            }
        }
        TableInverse {
            v4,
            v6,
            prefix_preserving,
            misses: AtomicU64::new(0),
        }
    }

    /// Lookups of addresses not in the table (left as they are).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AddrMap for TableInverse {
    fn map_v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        match self.v4.get(&u32::from(a)) {
            Some(&o) => Ipv4Addr::from(o),
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                a
            }
        }
    }
    fn map_v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        match self.v6.get(&u128::from(a)) {
            Some(&o) => Ipv6Addr::from(o),
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                a
            }
        }
    }
    fn prefix_preserving(&self) -> bool {
        self.prefix_preserving
    }
}

/// The technique that washes back what `args` washed, and, for tables, the
/// table (to report its misses).
pub fn technique(
    args: &MethodArgs,
    state: Option<&Path>,
) -> Result<(Technique, Option<Arc<TableInverse>>), CliError> {
    let name = args.method.name();
    let built = method::build(args)?;
    let Built::Map {
        technique,
        reversible,
        ..
    } = built
    else {
        return Err(CliError::usage(format!(
            "--reverse: {name} does not wash captures"
        )));
    };
    if args.method.stateful() {
        let path = state.ok_or_else(|| {
            CliError::usage(format!(
                "--reverse with {name} needs --state FILE (the table saved by the wash)"
            ))
        })?;
        if !path.exists() {
            return Err(CliError::usage(format!(
                "--reverse: state file {} does not exist",
                path.display()
            )));
        }
        let mut t = technique;
        crate::state::load(path, &mut t, args)?;
        let Technique::Stateful(st) = &t else {
            return Err(CliError::usage("--reverse: no table"));
        };
        let (pairs, pp) = match st.as_ref() {
            StatefulTech::Enumerate(e) => (e.export().pairs, false),
            StatefulTech::PrefixMap(p) => (p.export().pairs, true),
        };
        let inv = Arc::new(TableInverse::new(&pairs, pp));
        return Ok((Technique::Stateless(inv.clone()), Some(inv)));
    }
    if state.is_some() {
        return Err(CliError::usage(format!("--state: {name} keeps no state")));
    }
    let r = reversible.ok_or_else(|| {
        CliError::usage(format!(
            "--reverse: {name} is not reversible (it keeps no key or table to invert)"
        ))
    })?;
    Ok((Technique::Stateless(Arc::new(Inverse(r))), None))
}

/// The note printed once by a reverse run.
pub const NOTE: &str =
    "ipwash: --reverse restores addresses (and their checksums) and MAC addresses \
(keyed methods) only; what the wash removed (pcapng comments and options, removed blocks, \
C-DNS collection text and anonymisation marks, dropped packets) cannot come back\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_inverse_counts_misses() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "0.0.0.1".parse().unwrap();
        let t = TableInverse::new(&[(a, b)], false);
        assert_eq!(
            t.map_v4("0.0.0.1".parse().unwrap()),
            "192.0.2.1".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(t.misses(), 0);
        let c: Ipv4Addr = "0.0.0.2".parse().unwrap();
        assert_eq!(t.map_v4(c), c);
        assert_eq!(t.misses(), 1);
    }
}
