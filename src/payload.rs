//! Payload policy: `--only-dns` and `--zero-payload`.
//!
//! ipwash rewrites addresses in the headers and in DNS; the payloads of
//! other protocols (HTTP, DHCP, NTP, SMB, ...) can hold addresses and
//! names as text or binary that no walker finds. These two options deal
//! with them after a packet is washed:
//!
//! - `--only-dns` keeps only DNS: UDP and TCP with port 53 or 853 (or a
//!   `--dns-port`) on either end, ICMP and ICMPv6 errors whose quoted packet
//!   is such a packet, and IP fragments of such datagrams. Everything else
//!   (other protocols, ARP and other non-IP frames, ICMP echo, tunnels) is
//!   dropped and counted as `not_dns`. A fragment after the first carries no
//!   ports: it goes to the reassembler, which keeps it with a DNS datagram
//!   and drops it otherwise (with its datagram's first fragment dropped, the
//!   group is incomplete: `fragment_incomplete`).
//! - `--zero-payload` keeps every packet but zeroes what is not DNS: the
//!   UDP or TCP payload (headers kept), the ICMP or ICMPv6 message after
//!   its 8-byte header, the whole IP payload of any other protocol, and for
//!   frames that are not IP (ARP, LLDP, ...) everything after the link
//!   header. The UDP, TCP, ICMP and ICMPv6 checksums are updated
//!   incrementally (RFC 1624), so they stay as valid, or exactly as wrong,
//!   as they were; other protocols' own checksums (SCTP, GRE) are zeroed
//!   with the payload. A fragment after the first of a datagram that is not
//!   DNS is zeroed by the reassembler, which updates the checksum in the
//!   first fragment when it is held.
//!
//! The decision is made from the packet as captured (link type, IPv4/IPv6
//! with extension headers, the transport ports), never from the DNS
//! content: a packet on a DNS port is DNS.

/// What happens to payloads that are not DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Everything is kept (only the addresses are washed).
    #[default]
    Keep,
    /// Only DNS packets are kept.
    OnlyDns,
    /// Every packet is kept, the payload of non-DNS packets zeroed.
    ZeroPayload,
}

/// The payload policy of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// What to do.
    pub mode: Mode,
    /// Ports taken for DNS besides 53 and 853 (`--dns-port`).
    pub ports: Vec<u16>,
}

/// The drop reason of `--only-dns`.
pub const NOT_DNS: &str = "not_dns";

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Left as it is.
    Kept,
    /// Bytes were zeroed.
    Zeroed,
    /// To be dropped, for this reason.
    Drop(&'static str),
}

impl Policy {
    /// True when the policy does anything.
    pub fn active(&self) -> bool {
        self.mode != Mode::Keep
    }

    /// A DNS port: 53, 853 or a `--dns-port`.
    pub fn is_dns_port(&self, p: u16) -> bool {
        p == 53 || p == 853 || self.ports.contains(&p)
    }
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The network layer after the link header: (offset, ethertype; 0 = look at
/// the IP version).
fn link(linktype: u32, p: &[u8]) -> Option<(usize, u16)> {
    match linktype {
        1 => {
            let mut o = 12;
            let mut et = be16(p, o)?;
            let mut tags = 0;
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                tags += 1;
                if tags > 4 {
                    return None;
                }
                o += 4;
                et = be16(p, o)?;
            }
            Some((o + 2, et))
        }
        113 => Some((16, be16(p, 14)?)),
        276 => Some((20, be16(p, 0)?)),
        // BSD null / OpenBSD loop: a 4-byte address family.
        0 | 108 => Some((4, 0)),
        101 | 12 | 14 => Some((0, 0)),
        228 => Some((0, 0x0800)),
        229 => Some((0, 0x86dd)),
        _ => None,
    }
}

/// What the IP layer holds.
enum Ip {
    /// Transport protocol `proto` at `l4`, IP payload ending at `end`.
    Transport { proto: u8, l4: usize, end: usize },
    /// A fragment after the first: left to the reassembler.
    LaterFragment,
}

/// Follow an IPv4 or IPv6 header at `at` to its transport protocol.
fn ip(p: &[u8], at: usize) -> Option<Ip> {
    let v = p.get(at)? >> 4;
    if v == 4 {
        let ihl = usize::from(p.get(at)? & 15) * 4;
        let tl = usize::from(be16(p, at + 2)?);
        let frag = be16(p, at + 6)?;
        if ihl < 20 {
            return None;
        }
        if frag & 0x1fff != 0 {
            return Some(Ip::LaterFragment);
        }
        let end = (at + tl.max(ihl)).min(p.len());
        return Some(Ip::Transport {
            proto: *p.get(at + 9)?,
            l4: at + ihl,
            end,
        });
    }
    if v != 6 {
        return None;
    }
    let plen = usize::from(be16(p, at + 4)?);
    let end = (at + 40 + plen).min(p.len());
    let mut proto = *p.get(at + 6)?;
    let mut o = at + 40;
    for _ in 0..16 {
        match proto {
            0 | 43 | 60 => {
                proto = *p.get(o)?;
                o += (usize::from(*p.get(o + 1)?) + 1) * 8;
            }
            51 => {
                proto = *p.get(o)?;
                o += (usize::from(*p.get(o + 1)?) + 2) * 4;
            }
            44 => {
                if be16(p, o + 2)? & 0xfff8 != 0 {
                    return Some(Ip::LaterFragment);
                }
                proto = *p.get(o)?;
                o += 8;
            }
            _ => return Some(Ip::Transport { proto, l4: o, end }),
        }
    }
    None
}

/// Is the quoted packet of an ICMP error (IP header at `at`) DNS?
fn quoted_is_dns(p: &[u8], at: usize, pol: &Policy) -> bool {
    match ip(p, at) {
        Some(Ip::Transport {
            proto: 6 | 17, l4, ..
        }) => {
            let (s, d) = (be16(p, l4), be16(p, l4 + 2));
            s.is_some_and(|s| pol.is_dns_port(s)) || d.is_some_and(|d| pol.is_dns_port(d))
        }
        _ => false,
    }
}

/// A checksum to update: (start of the data it sums, its field, UDP rules).
pub type Ck = Option<(usize, usize, bool)>;

/// What a packet is to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// DNS: kept as it is.
    Dns,
    /// A fragment after the first: the reassembler decides.
    Later,
    /// Not DNS; what to zero: `from..to` and the checksum to update.
    NotDns(usize, usize, Ck),
}

/// Judge one packet of link type `linktype` (read only).
fn judge(p: &[u8], linktype: u32, pol: &Policy) -> Judged {
    let Some((l3, et)) = link(linktype, p) else {
        return Judged::NotDns(0, p.len(), None);
    };
    let is_ip = match et {
        0x0800 | 0x86dd => true,
        0 => matches!(p.get(l3).map(|b| b >> 4), Some(4 | 6)),
        _ => false,
    };
    if !is_ip {
        return Judged::NotDns(l3, p.len(), None);
    }
    let Some(found) = ip(p, l3) else {
        // Headers that cannot be followed: not known to be DNS.
        return Judged::NotDns(l3, p.len(), None);
    };
    let Ip::Transport { proto, l4, end } = found else {
        return Judged::Later;
    };
    match proto {
        6 | 17 => {
            let (Some(s), Some(d)) = (be16(p, l4), be16(p, l4 + 2)) else {
                return Judged::NotDns(l4, end, None);
            };
            if pol.is_dns_port(s) || pol.is_dns_port(d) {
                Judged::Dns
            } else if proto == 17 {
                Judged::NotDns(l4 + 8, end, Some((l4, l4 + 6, true)))
            } else {
                let doff = p.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4);
                Judged::NotDns(l4 + doff.max(20), end, Some((l4, l4 + 16, false)))
            }
        }
        1 | 58 => {
            let t = p.get(l4).copied();
            let error = if proto == 1 {
                matches!(t, Some(3 | 4 | 5 | 11 | 12))
            } else {
                matches!(t, Some(1..=4))
            };
            if error && quoted_is_dns(p, l4 + 8, pol) {
                Judged::Dns
            } else {
                Judged::NotDns(l4 + 8, end, Some((l4, l4 + 2, false)))
            }
        }
        _ => Judged::NotDns(l4, end, None),
    }
}

/// Apply the policy to one packet of link type `linktype`: `--only-dns`
/// drops what is not DNS (the pipeline asks before washing, so a dropped
/// packet is left as it was), `--zero-payload` zeroes it (after washing).
pub fn apply(p: &mut [u8], linktype: u32, pol: &Policy) -> Verdict {
    if !pol.active() {
        return Verdict::Kept;
    }
    match judge(p, linktype, pol) {
        Judged::Dns | Judged::Later => Verdict::Kept,
        Judged::NotDns(..) if pol.mode == Mode::OnlyDns => Verdict::Drop(NOT_DNS),
        Judged::NotDns(from, to, ck) => zero_range(p, from, to, ck),
    }
}

/// Zero `p[from..to]` (clamped) and update checksum `ck`: (start of the
/// checksummed data, checksum field, UDP rules).
pub fn zero_range(p: &mut [u8], from: usize, to: usize, ck: Ck) -> Verdict {
    let to = to.min(p.len());
    if from >= to {
        return Verdict::Kept;
    }
    let region = &mut p[from..to];
    if region.iter().all(|&b| b == 0) {
        return Verdict::Kept;
    }
    let base = ck.map_or(from, |c| c.0);
    let sum = word_sum(region, (from - base.min(from)) % 2 == 1);
    region.fill(0);
    if let Some((_, field, udp)) = ck {
        remove_sum(p, field, udp, sum);
    }
    Verdict::Zeroed
}

/// One's complement sum of `b` as 16-bit words, folded; the first byte is
/// the high byte of a word unless `odd`.
pub fn word_sum(b: &[u8], odd: bool) -> u16 {
    let mut s: u64 = 0;
    for (i, &x) in b.iter().enumerate() {
        s += if (i % 2 == 0) != odd {
            u64::from(x) << 8
        } else {
            u64::from(x)
        };
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum at `field` after data summing to `sum` became zero
/// (RFC 1624 eqn. 3 with m' = 0). `udp`: a zero checksum means none and
/// stays zero; a result of zero is written as 0xffff.
pub fn remove_sum(p: &mut [u8], field: usize, udp: bool, sum: u16) {
    let Some(f) = p.get_mut(field..field + 2) else {
        return;
    };
    let hc = u16::from_be_bytes([f[0], f[1]]);
    if (udp && hc == 0) || sum == 0 || sum == 0xffff {
        return;
    }
    let mut s = u32::from(!hc) + u32::from(!sum);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let mut nc = !(s as u16);
    if udp && nc == 0 {
        nc = 0xffff;
    }
    f.copy_from_slice(&nc.to_be_bytes());
}

/// The command-line options of DNS privacy beyond addresses, shared by
/// `wash` and `scan` (so a scan meets exactly the addresses a wash maps).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PrivacyArgs {
    /// EDNS client identifiers (DNS Cookies, MAC and device options of
    /// dnsmasq, Nominum and Umbrella, unknown options): `wash` rewrites
    /// them, `keep` copies them.
    #[arg(long, value_enum, default_value_t = crate::edns::EdnsMode::Wash)]
    pub edns: crate::edns::EdnsMode,
    /// Also wash the A and AAAA answer data, in every section, with the
    /// same map as the headers.
    #[arg(long)]
    pub answers: bool,
    /// Keep only DNS (UDP and TCP on ports 53 and 853 and --dns-port, ICMP
    /// errors quoting them, their fragments); drop the rest (`not_dns`).
    #[arg(long, conflicts_with = "zero_payload")]
    pub only_dns: bool,
    /// Keep every packet, but zero the payload of everything that is not
    /// DNS (checksums updated).
    #[arg(long)]
    pub zero_payload: bool,
    /// Another port carrying DNS in clear (repeatable): walked and washed
    /// as DNS over UDP and TCP, and DNS for --only-dns and --zero-payload.
    #[arg(long, value_name = "PORT")]
    pub dns_port: Vec<u16>,
}

impl PrivacyArgs {
    /// Set up `washer` (its MAC map already built) for these options;
    /// `reverse`: the identifier map is inverted.
    pub fn apply(
        &self,
        washer: &mut crate::wash::Washer,
        method: &crate::method::MethodArgs,
        reverse: bool,
    ) -> Result<(), crate::method::UsageError> {
        washer.ids = if reverse {
            crate::edns::IdMap::build_reverse(method, self.edns)?
        } else {
            crate::edns::IdMap::build(method, self.edns)?
        };
        washer.answers = self.answers;
        washer.payload = Policy {
            mode: if self.only_dns {
                Mode::OnlyDns
            } else if self.zero_payload {
                Mode::ZeroPayload
            } else {
                Mode::Keep
            },
            ports: self.dns_port.clone(),
        };
        Ok(())
    }
}

/// The pipeline's hook before washing: `--only-dns` drops a packet that is
/// not DNS as it is (so `--dropped` gets the original bytes).
pub fn before_wash(
    p: &[u8],
    linktype: u32,
    washer: &crate::wash::Washer,
) -> Option<crate::pipeline::Outcome> {
    if washer.payload.mode != Mode::OnlyDns {
        return None;
    }
    match judge(p, linktype, &washer.payload) {
        Judged::NotDns(..) => Some(crate::pipeline::Outcome::Dropped(NOT_DNS)),
        _ => None,
    }
}

/// The pipeline's hook after washing with outcome `o`: `--zero-payload`
/// zeroes what is not DNS; a frame the walker refused as not IP is kept
/// with everything after its link header zeroed (and its MAC addresses
/// washed).
pub fn after_wash(
    p: &mut [u8],
    linktype: u32,
    washer: &mut crate::wash::Washer,
    o: crate::pipeline::Outcome,
) -> crate::pipeline::Outcome {
    use crate::pipeline::Outcome;
    if washer.payload.mode != Mode::ZeroPayload {
        return o;
    }
    match o {
        Outcome::Written(c) => match apply(p, linktype, &washer.payload) {
            Verdict::Zeroed => Outcome::Written(true),
            Verdict::Kept | Verdict::Drop(_) => Outcome::Written(c),
        },
        Outcome::Dropped("non_ip") => {
            let from = link(linktype, p).map_or(0, |(l3, _)| l3);
            let z = zero_range(p, from, p.len(), None);
            let m = crate::mac::wash_link(p, linktype, &mut washer.mac);
            Outcome::Written(m || z == Verdict::Zeroed)
        }
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_sum(b: &[u8]) -> u16 {
        !word_sum(b, false)
    }

    #[test]
    fn zeroing_keeps_a_valid_checksum_valid() {
        for n in [9usize, 10, 33, 64] {
            let mut d: Vec<u8> = (0..n as u8)
                .map(|i| i.wrapping_mul(71).wrapping_add(3))
                .collect();
            d[2] = 0;
            d[3] = 0;
            let c = full_sum(&d);
            d[2..4].copy_from_slice(&c.to_be_bytes());
            assert_eq!(word_sum(&d, false), 0xffff);
            for from in [4usize, 5, 8] {
                let mut e = d.clone();
                zero_range(&mut e, from, n, Some((0, 2, false)));
                assert!(e[from..].iter().all(|&b| b == 0));
                assert_eq!(word_sum(&e, false), 0xffff, "n {n} from {from}");
            }
        }
    }

    #[test]
    fn ports_decide() {
        let pol = Policy {
            mode: Mode::OnlyDns,
            ports: vec![5353],
        };
        assert!(pol.is_dns_port(53) && pol.is_dns_port(853) && pol.is_dns_port(5353));
        assert!(!pol.is_dns_port(443));
    }
}
