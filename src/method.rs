//! Choosing and building a technique from command-line options: the method
//! name, its key (read from a file, never from the command line) and its
//! parameters. Everything here is decided once, before any data is read.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipwash_algorithms::cryptopan::CryptoPan;
use ipwash_algorithms::cryptopant::{CryptoPant, KeyFile};
use ipwash_algorithms::enumerate::{Enumerate, Numbering};
use ipwash_algorithms::ipcipher::{key_from_passphrase, IpCipher};
use ipwash_algorithms::ipcrypt_det::IpcryptDeterministic;
use ipwash_algorithms::ipcrypt_nd::{IpcryptNd, IpcryptNdx, NDX_OUTPUT_BYTES, ND_OUTPUT_BYTES};
use ipwash_algorithms::ipcrypt_pfx::IpcryptPfx;
use ipwash_algorithms::pass::Pass;
use ipwash_algorithms::prefix_map::PrefixMap;
use ipwash_algorithms::truncate::{TruncMode, Truncate};
use ipwash_algorithms::tsa::Tsa;
use ipwash_algorithms::{Key, Reversible};
use zeroize::Zeroizing;

use crate::wash::{Mapped, StatefulTech, Technique, TechniqueInfo};

/// The techniques offered on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Keep the top bits (/24 and /48 by default), zero the rest. Anonymising.
    Truncate,
    /// Number addresses in order of first appearance (as dnswasher). Stateful.
    Enumerate,
    /// TCPdpriv -A50 prefix-preserving trie, keyed random bits. Stateful.
    PrefixMap,
    /// Crypto-PAn, byte-compatible with the 2002 reference. Prefix-preserving, reversible.
    Cryptopan,
    /// tsa-v1: table lookups, prefix-preserving; IPv6 goes through Crypto-PAn.
    Tsa,
    /// ipcipher: ipcrypt for IPv4 (weak, see docs), AES-128 for IPv6. Reversible.
    Ipcipher,
    /// draft-denis-ipcrypt prefix-preserving mode. Reversible.
    IpcryptPfx,
    /// cryptopANT (ISI, DNS-OARC): same output as its scramble_ips; key file in its format. Reversible.
    Cryptopant,
    /// draft-denis-ipcrypt deterministic mode: AES-128 on 16 bytes. IPv4 becomes 16 bytes.
    IpcryptDeterministic,
    /// draft-denis-ipcrypt-nd: KIASU-BC, random 8-byte tweak; 24-byte hex output. `map` only.
    IpcryptNd,
    /// draft-denis-ipcrypt-ndx: AES-XTS, random 16-byte tweak; 32-byte hex output. `map` only.
    IpcryptNdx,
}

impl Method {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Truncate => "truncate",
            Method::Enumerate => "enumerate",
            Method::PrefixMap => "prefix-map",
            Method::Cryptopan => "cryptopan",
            Method::Tsa => "tsa",
            Method::Ipcipher => "ipcipher",
            Method::IpcryptPfx => "ipcrypt-pfx",
            Method::Cryptopant => "cryptopant",
            Method::IpcryptDeterministic => "ipcrypt-deterministic",
            Method::IpcryptNd => "ipcrypt-nd",
            Method::IpcryptNdx => "ipcrypt-ndx",
        }
    }

    /// Length of the native key in bytes, or None for keyless techniques.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Method::Truncate | Method::Enumerate => None,
            Method::Ipcipher
            | Method::IpcryptDeterministic
            | Method::IpcryptNd
            | Method::Cryptopant => Some(16),
            Method::PrefixMap
            | Method::Cryptopan
            | Method::Tsa
            | Method::IpcryptPfx
            | Method::IpcryptNdx => Some(32),
        }
    }

    /// True when `map --reverse` can invert it.
    pub fn reversible(self) -> bool {
        matches!(
            self,
            Method::Cryptopan
                | Method::Tsa
                | Method::Ipcipher
                | Method::IpcryptPfx
                | Method::Cryptopant
                | Method::IpcryptDeterministic
                | Method::IpcryptNd
                | Method::IpcryptNdx
        )
    }

    /// True when the technique keeps a mapping table that grows with input.
    pub fn stateful(self) -> bool {
        matches!(self, Method::Enumerate | Method::PrefixMap)
    }

    /// Every address-producing method, for `bench` and the docs (the
    /// non-deterministic ipcrypt modes produce ciphertexts, not addresses).
    pub const ALL: [Method; 8] = [
        Method::Truncate,
        Method::Enumerate,
        Method::PrefixMap,
        Method::Cryptopan,
        Method::Tsa,
        Method::Ipcipher,
        Method::IpcryptPfx,
        Method::IpcryptDeterministic,
    ];
}

/// Numbering of `enumerate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NumberingArg {
    /// One counter per family from 1: 0.0.0.1, ::1, ...
    #[default]
    Sequential,
    /// Exactly as PowerDNS dnswasher 4.7.3: one shared counter from 0, IPv4 in host byte order.
    Dnswasher,
}

/// The options shared by `wash`, `map` and `bloom` that pick a technique.
#[derive(Debug, Clone, clap::Args)]
pub struct MethodArgs {
    /// Technique to apply.
    #[arg(long, value_enum)]
    pub method: Method,
    /// File holding the technique's key as hex (16 bytes for ipcipher,
    /// ipcrypt-deterministic and ipcrypt-nd, 32 for the others). Make one
    /// with `ipwash keygen`.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// ipcipher only: derive the key from the passphrase in FILE
    /// (PBKDF2-SHA1, salt "ipcipheripcipher", 50,000 iterations; the file's
    /// final newline is not part of the passphrase).
    #[arg(long, value_name = "FILE", conflicts_with = "key_file")]
    pub passphrase_file: Option<PathBuf>,
    /// truncate: IPv4 bits kept [default: 24].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub ipv4_prefix: Option<u8>,
    /// truncate: IPv6 bits kept [default: 48].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub ipv6_prefix: Option<u8>,
    /// truncate: reverse truncation (zero the top bits, keep the low prefix bits).
    #[arg(long)]
    pub reverse_truncation: bool,
    /// truncate: black-marker anonymisation (every bit zeroed; same as prefixes of 0).
    #[arg(long)]
    pub black_marker: bool,
    /// enumerate: numbering scheme [default: sequential].
    #[arg(long, value_enum)]
    pub numbering: Option<NumberingArg>,
    /// prefix-map: keep the classful leading bits of IPv4 addresses (TCPdpriv -C).
    #[arg(long)]
    pub preserve_class: bool,
    /// tsa: subtrees per level (256..=65536); more costs memory, fewer shares more subtrees
    /// [default: 4096].
    #[arg(long)]
    pub tsa_pool: Option<u32>,
    /// cryptopan, cryptopant, tsa, ipcrypt-pfx, prefix-map: pass the top N
    /// bits of IPv4 addresses unchanged (cryptopant: as scramble_ips --pass4,
    /// which also always keeps the classful leading bits).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub pass4: u8,
    /// cryptopan, cryptopant, tsa, ipcrypt-pfx, prefix-map: pass the top N
    /// bits of IPv6 addresses unchanged (cryptopant: as scramble_ips --pass6).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub pass6: u8,
    /// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d): `ipv4` washes them as the
    /// IPv4 address they hold, kept in the mapped form (as truncate and
    /// ipcrypt-pfx always do); `native` puts all 128 bits through the IPv6 rule.
    #[arg(long, value_enum, default_value_t = Mapped::Ipv4)]
    pub mapped: Mapped,
}

impl MethodArgs {
    /// The first flag given that belongs to another method than the chosen
    /// one (e.g. `--ipv4-prefix` with `cryptopan`), as `(flag, its method)`.
    pub fn foreign_flag(&self) -> Option<(&'static str, &'static str)> {
        let given: [(&'static str, bool, Method); 7] = [
            (
                "--ipv4-prefix",
                self.ipv4_prefix.is_some(),
                Method::Truncate,
            ),
            (
                "--ipv6-prefix",
                self.ipv6_prefix.is_some(),
                Method::Truncate,
            ),
            (
                "--reverse-truncation",
                self.reverse_truncation,
                Method::Truncate,
            ),
            ("--black-marker", self.black_marker, Method::Truncate),
            ("--numbering", self.numbering.is_some(), Method::Enumerate),
            ("--preserve-class", self.preserve_class, Method::PrefixMap),
            ("--tsa-pool", self.tsa_pool.is_some(), Method::Tsa),
        ];
        // --pass4/--pass6 belong to several methods: `build` checks them.
        given
            .into_iter()
            .find(|(_, set, m)| *set && *m != self.method)
            .map(|(flag, _, m)| (flag, m.name()))
    }
}

impl Method {
    /// True when `--pass4` / `--pass6` apply.
    pub fn takes_pass_bits(self) -> bool {
        matches!(
            self,
            Method::Cryptopan
                | Method::Cryptopant
                | Method::Tsa
                | Method::IpcryptPfx
                | Method::PrefixMap
        )
    }
}

/// Read a key file in cryptopANT's own format (`C4:C6:KEY:PAD:MAC:IV`).
/// The message never contains key bytes.
pub fn read_cryptopant_key(path: &Path) -> Result<KeyFile, UsageError> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| usage(format!("cannot read key file {}: {e}", path.display())))?,
    );
    KeyFile::parse(&bytes).map_err(|e| usage(format!("key file {}: {e}", path.display())))
}

/// A stateless reversible map, with the top bits passed when asked.
fn stateless_pass<M: Reversible + 'static>(
    m: M,
    args: &MethodArgs,
    info: TechniqueInfo,
) -> Result<Built, UsageError> {
    if args.pass4 == 0 && args.pass6 == 0 {
        return Ok(stateless(m, info));
    }
    let p = Pass::new(m, args.pass4, args.pass6).ok_or_else(|| {
        usage(format!(
            "--pass4/--pass6: {} is not prefix-preserving",
            args.method.name()
        ))
    })?;
    Ok(stateless(p, info))
}

/// A configuration error: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Read a hex key file for a `N`-byte key. The message never contains key bytes.
pub fn read_key<const N: usize>(path: &Path) -> Result<Key<N>, UsageError> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| usage(format!("cannot read key file {}: {e}", path.display())))?,
    );
    // A key file is hex text; anything else (e.g. raw key bytes) is named
    // as such, without showing any of it.
    let text = match std::str::from_utf8(&bytes) {
        Ok(t)
            if t.bytes()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            t
        }
        _ => {
            let raw = if bytes.len() == N {
                format!(", which looks like a raw {N}-byte key: store it as hex (`xxd -p -c {N}`)")
            } else {
                String::new()
            };
            return Err(usage(format!(
                "key file {} is not hex text ({} bytes of binary data{raw}); a key file holds {} hex digits, as `ipwash keygen` writes",
                path.display(),
                bytes.len(),
                2 * N
            )));
        }
    };
    Key::<N>::from_hex(text).map_err(|e| usage(format!("key file {}: {e}", path.display())))
}

/// Read a passphrase file; one trailing newline (LF or CRLF) is removed.
pub fn read_passphrase(path: &Path) -> Result<Zeroizing<Vec<u8>>, UsageError> {
    let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read passphrase file {}: {e}",
            path.display()
        ))
    })?);
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(bytes)
}

/// A built technique, ready to use.
pub enum Built {
    /// An address map usable on packets.
    Map {
        /// The technique for the washer.
        technique: Technique,
        /// Name and parameters.
        info: TechniqueInfo,
        /// The same map as a reversible one, when it is.
        reversible: Option<Arc<dyn Reversible>>,
    },
    /// ipcrypt-deterministic: IPv4 comes out as 16 bytes, so it only serves
    /// text (`map`), never packets.
    Deterministic(Box<IpcryptDeterministic>),
    /// ipcrypt-nd / ipcrypt-ndx: a random tweak per address, hex ciphertext
    /// out; text (`map`) only.
    NonDeterministic(NdCipher),
}

/// The non-deterministic ipcrypt modes of draft-denis-ipcrypt.
pub enum NdCipher {
    /// KIASU-BC with an 8-byte tweak.
    Nd(Box<IpcryptNd>),
    /// AES-XTS with a 16-byte tweak.
    Ndx(Box<IpcryptNdx>),
}

impl NdCipher {
    /// Tweak bytes drawn per address.
    pub fn tweak_len(&self) -> usize {
        match self {
            NdCipher::Nd(_) => 8,
            NdCipher::Ndx(_) => 16,
        }
    }

    /// Ciphertext bytes (tweak included) per address.
    pub fn output_len(&self) -> usize {
        match self {
            NdCipher::Nd(_) => ND_OUTPUT_BYTES,
            NdCipher::Ndx(_) => NDX_OUTPUT_BYTES,
        }
    }

    /// Encrypt `a` under `tweak` (`tweak_len` bytes, random per address)
    /// and write the lower-case hex ciphertext to `out`.
    pub fn encrypt_hex(&self, a: IpAddr, tweak: &[u8], out: &mut String) {
        let mut t16 = [0u8; 16];
        let n = self.tweak_len().min(tweak.len());
        t16[..n].copy_from_slice(&tweak[..n]);
        let mut t8 = [0u8; 8];
        t8.copy_from_slice(&t16[..8]);
        match self {
            NdCipher::Nd(c) => push_hex(out, &c.encrypt_with_tweak(a, t8)),
            NdCipher::Ndx(c) => push_hex(out, &c.encrypt_with_tweak(a, t16)),
        }
    }

    /// Decrypt a hex ciphertext; None when it is not hex of the right length.
    pub fn decrypt_hex(&self, text: &str) -> Option<IpAddr> {
        let text = text.trim();
        if text.len() != 2 * self.output_len() {
            return None;
        }
        let mut bytes = [0u8; NDX_OUTPUT_BYTES];
        for (i, b) in bytes.iter_mut().take(self.output_len()).enumerate() {
            *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(match self {
            NdCipher::Nd(c) => {
                let mut ct = [0u8; ND_OUTPUT_BYTES];
                ct.copy_from_slice(&bytes[..ND_OUTPUT_BYTES]);
                c.decrypt(&ct)
            }
            NdCipher::Ndx(c) => c.decrypt(&bytes),
        })
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

fn need_key<const N: usize>(args: &MethodArgs) -> Result<Key<N>, UsageError> {
    if args.passphrase_file.is_some() {
        return Err(usage(format!(
            "--passphrase-file is for ipcipher only; {} takes --key-file",
            args.method.name()
        )));
    }
    match &args.key_file {
        Some(p) => read_key::<N>(p),
        None => Err(usage(format!(
            "--method {} needs --key-file (make one with `ipwash keygen --method {}`)",
            args.method.name(),
            args.method.name()
        ))),
    }
}

fn stateless<M: Reversible + 'static>(m: M, info: TechniqueInfo) -> Built {
    let arc = Arc::new(m);
    Built::Map {
        technique: Technique::Stateless(arc.clone()),
        info,
        reversible: Some(arc),
    }
}

/// Build the technique the options describe.
pub fn build(args: &MethodArgs) -> Result<Built, UsageError> {
    let info = TechniqueInfo {
        name: args.method.name().to_string(),
        truncate: None,
        mapped: args.mapped,
    };
    if let Some((flag, owner)) = args.foreign_flag() {
        return Err(usage(format!(
            "{flag} is an option of --method {owner}, not of {}",
            args.method.name()
        )));
    }
    if args.method.key_len().is_none()
        && (args.key_file.is_some() || args.passphrase_file.is_some())
    {
        return Err(usage(format!(
            "--method {} takes no key",
            args.method.name()
        )));
    }
    if (args.pass4 != 0 || args.pass6 != 0) && !args.method.takes_pass_bits() {
        return Err(usage(format!(
            "--pass4/--pass6 apply to cryptopan, cryptopant, tsa, ipcrypt-pfx and prefix-map, not {}",
            args.method.name()
        )));
    }
    Ok(match args.method {
        Method::Truncate => {
            let (p4, p6) = if args.black_marker {
                (0, 0)
            } else {
                (
                    args.ipv4_prefix.unwrap_or(24),
                    args.ipv6_prefix.unwrap_or(48),
                )
            };
            let mode = if args.reverse_truncation {
                TruncMode::Reverse
            } else {
                TruncMode::Keep
            };
            let t = Truncate::new(p4, p6, mode).map_err(|e| usage(e.to_string()))?;
            Built::Map {
                technique: Technique::Stateless(Arc::new(t)),
                info: TechniqueInfo {
                    // Prefix storage (C-DNS) keeps the top bits; reverse
                    // truncation keeps the low bits, so it is not a prefix.
                    truncate: (!args.reverse_truncation).then_some((p4, p6)),
                    ..info
                },
                reversible: None,
            }
        }
        Method::Enumerate => {
            let n = match args.numbering.unwrap_or_default() {
                NumberingArg::Sequential => Numbering::Sequential,
                NumberingArg::Dnswasher => Numbering::Dnswasher,
            };
            Built::Map {
                technique: Technique::Stateful(Box::new(StatefulTech::Enumerate(Enumerate::new(
                    n,
                )))),
                info,
                reversible: None,
            }
        }
        Method::PrefixMap => {
            let key = need_key::<32>(args)?;
            Built::Map {
                technique: Technique::Stateful(Box::new(StatefulTech::PrefixMap(
                    PrefixMap::with_pass(&key, args.preserve_class, args.pass4, args.pass6),
                ))),
                info,
                reversible: None,
            }
        }
        Method::Cryptopan => stateless_pass(CryptoPan::new(&need_key::<32>(args)?), args, info)?,
        Method::Cryptopant => {
            if args.passphrase_file.is_some() {
                return Err(usage(
                    "--passphrase-file is for ipcipher only; cryptopant takes --key-file",
                ));
            }
            let path = args.key_file.as_ref().ok_or_else(|| {
                usage("--method cryptopant needs --key-file (a cryptopANT key file; make one with `ipwash keygen --method cryptopant`)")
            })?;
            let kf = read_cryptopant_key(path)?;
            // The pass bits are cryptopANT's own, not the generic wrapper.
            let c =
                CryptoPant::new(&kf, args.pass4, args.pass6).map_err(|e| usage(e.to_string()))?;
            stateless(c, info)
        }
        Method::Tsa => {
            let t = Tsa::new(&need_key::<32>(args)?, args.tsa_pool.unwrap_or(4096))
                .map_err(|e| usage(e.to_string()))?;
            stateless_pass(t, args, info)?
        }
        Method::Ipcipher => {
            let key =
                match (&args.key_file, &args.passphrase_file) {
                    (Some(p), None) => read_key::<16>(p)?,
                    (None, Some(p)) => key_from_passphrase(&read_passphrase(p)?),
                    _ => return Err(usage(
                        "--method ipcipher needs --key-file (16-byte hex key) or --passphrase-file",
                    )),
                };
            stateless(IpCipher::new(&key), info)
        }
        Method::IpcryptPfx => {
            let p = IpcryptPfx::new(&need_key::<32>(args)?).map_err(|e| usage(e.to_string()))?;
            stateless_pass(p, args, info)?
        }
        Method::IpcryptDeterministic => {
            Built::Deterministic(Box::new(IpcryptDeterministic::new(&need_key::<16>(args)?)))
        }
        Method::IpcryptNd => Built::NonDeterministic(NdCipher::Nd(Box::new(IpcryptNd::new(
            &need_key::<16>(args)?,
        )))),
        Method::IpcryptNdx => Built::NonDeterministic(NdCipher::Ndx(Box::new(IpcryptNdx::new(
            &need_key::<32>(args)?,
        )))),
    })
}

/// Parse one line of `map` input: an IPv4 or IPv6 address, surrounding
/// whitespace ignored.
pub fn parse_addr(line: &str) -> Option<IpAddr> {
    line.trim().parse().ok()
}
