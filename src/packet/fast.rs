//! The common case without the general walker: one unfragmented IPv4
//! (without options) or IPv6 (without extension headers) header carrying
//! UDP, directly after an Ethernet header (VLAN tags allowed), a Linux
//! cooked header or nothing (raw IP), whose UDP payload is not a tunnel and,
//! when it is DNS, holds no ECS option.
//!
//! [`plain`] either fills a [`Located`] exactly as the walker would for the
//! same bytes, or returns `false` and leaves the packet to the walker. It
//! never decides that a packet is malformed: anything unusual (a length that
//! does not add up, a DNS message that cannot be walked, an ECS option, a
//! tunnel port) goes to the walker, which has the only say on refusing a
//! packet. Tests compare the two on generated and real packets.

use super::walk::roles;
use super::{Checksum, Cover, Family, Located, Origin, Slot, MAX_COVER, MAX_REGIONS};
use crate::wash::Side;

/// UDP ports whose payload the walker treats as a tunnel (Teredo, VXLAN,
/// GENEVE, GTP-U, L2TP).
const TUNNEL_PORTS: [u16; 5] = [3544, 4789, 6081, 2152, 1701];

fn be16(p: &[u8], at: usize) -> Option<u16> {
    let b = p.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Offset of the IP header and its version, after the link layer.
fn ip_start(linktype: u32, p: &[u8]) -> Option<(usize, u8)> {
    let (at, et) = match linktype {
        1 => {
            let mut o = 12;
            let mut et = be16(p, o)?;
            let mut tags = 0;
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                tags += 1;
                if tags > 2 {
                    return None;
                }
                o += 4;
                et = be16(p, o)?;
            }
            (o + 2, et)
        }
        113 => {
            // Tunnel devices carry an address in the header; netlink is not
            // IP. Those are the walker's.
            let hatype = be16(p, 2)?;
            if matches!(hatype, 768 | 769 | 776 | 778 | 823 | 824) {
                return None;
            }
            (16, be16(p, 14)?)
        }
        276 => {
            let hatype = be16(p, 8)?;
            if p.len() < 20 || matches!(hatype, 768 | 769 | 776 | 778 | 823 | 824) {
                return None;
            }
            (20, be16(p, 0)?)
        }
        101 | 12 | 14 => (0, 0),
        228 => (0, 0x0800),
        229 => (0, 0x86dd),
        _ => return None,
    };
    // Only the raw link types leave the version to the IP header itself; a
    // cooked header's protocol 0 is not IP to the walker.
    if et == 0 && !matches!(linktype, 101 | 12 | 14) {
        return None;
    }
    let version = p.get(at)? >> 4;
    let want = match et {
        0x0800 => 4,
        0x86dd => 6,
        0 if matches!(version, 4 | 6) => version,
        _ => return None,
    };
    (version == want).then_some((at, version))
}

fn slot(offset: usize, family: Family, cover: &[u16]) -> Slot {
    let full = family.bytes();
    let mut s = Slot {
        offset,
        family,
        len: full as u8,
        prefix_bits: (full * 8) as u8,
        side: Side::Unknown,
        origin: Origin::Ip,
        truncated: false,
        cover: [Cover::default(); MAX_COVER],
        ncover: cover.len() as u8,
    };
    for (c, &ck) in s.cover.iter_mut().zip(cover) {
        *c = Cover { ck, odd: false };
    }
    s
}

fn checksum(field: usize, udp: bool) -> Checksum {
    Checksum {
        field,
        udp,
        parents: [Cover::default(); MAX_REGIONS],
        nparents: 0,
    }
}

/// Where the addresses and checksums of a plain packet are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain {
    /// Address family of the IP header.
    pub family: Family,
    /// Offsets of the source and destination addresses.
    pub addr: [usize; 2],
    /// DNS roles of the source and destination.
    pub side: [Side; 2],
    /// The IPv4 header checksum field (none for IPv6).
    pub ip_ck: Option<usize>,
    /// The UDP checksum field.
    pub udp_ck: usize,
    /// The UDP payload, when it is a DNS message (port 53, not empty).
    dns: Option<(usize, usize)>,
    /// Which address is the DNS client's, if either.
    client: Option<usize>,
}

/// Classify a packet: `Some` for a plain UDP packet. `found` is scratch;
/// `answers`: A/AAAA answer data is to be washed too.
pub(super) fn classify(
    linktype: u32,
    p: &[u8],
    found: &mut crate::edns::Found,
    answers: bool,
    dns_ports: &[u16],
) -> Option<Plain> {
    let (ip, version) = ip_start(linktype, p)?;
    // The IP header, its end (by its own length) and the UDP header.
    let (family, src, dst, end, udp) = if version == 4 {
        let h = p.get(ip..ip + 20)?;
        let tl = u16::from_be_bytes([h[2], h[3]]) as usize;
        let frag = u16::from_be_bytes([h[6], h[7]]);
        // No options, a length that fits the capture, not a fragment, UDP.
        if h[0] != 0x45 || tl < 28 || ip + tl > p.len() || frag & 0x3fff != 0 || h[9] != 17 {
            return None;
        }
        (Family::V4, ip + 12, ip + 16, ip + tl, ip + 20)
    } else {
        let h = p.get(ip..ip + 40)?;
        let pl = u16::from_be_bytes([h[4], h[5]]) as usize;
        if pl < 8 || ip + 40 + pl > p.len() || h[6] != 17 {
            return None;
        }
        (Family::V6, ip + 8, ip + 24, ip + 40 + pl, ip + 40)
    };
    let (sport, dport, ulen) = (be16(p, udp)?, be16(p, udp + 2)?, be16(p, udp + 4)?);
    let ulen = ulen as usize;
    if ulen < 8 || udp + ulen > end {
        return None;
    }
    if TUNNEL_PORTS.iter().any(|&t| t == sport || t == dport) {
        return None;
    }
    let payload = p.get(udp + 8..udp + ulen)?;
    let mut dns = None;
    let is_dns = super::dns_ports(sport, dport, dns_ports);
    if (is_dns || super::walk::is_mdns(sport, dport)) && !payload.is_empty() {
        // DNS, Multicast DNS or LLMNR with an ECS option, an EDNS
        // identifier, (with `answers`) an answer address or a possible
        // reverse name, or that cannot be walked: the walker's (it records
        // where).
        if crate::edns::scan(payload, true, answers, found).is_err()
            || !found.is_empty()
            || crate::dnsenc::may_hold_reverse(payload)
        {
            found.clear();
            return None;
        }
        if is_dns {
            dns = Some((udp + 8, udp + ulen));
        }
    }
    let r = roles(sport, dport, payload);
    let client = match (r.dns, r.src, r.dst) {
        (true, Side::Client, _) => Some(0),
        (true, _, Side::Client) => Some(1),
        _ => None,
    };
    Some(Plain {
        family,
        addr: [src, dst],
        side: [r.src, r.dst],
        ip_ck: (family == Family::V4).then_some(ip + 10),
        udp_ck: udp + 6,
        dns,
        client,
    })
}

/// Locate a plain UDP packet into `out` (cleared by the caller), exactly as
/// the walker would. Returns false, with `out` still empty, for anything
/// else.
pub(super) fn plain(linktype: u32, p: &[u8], out: &mut Located) -> bool {
    let Some(pl) = classify(linktype, p, &mut out.found, out.answers, &out.dns_ports) else {
        return false;
    };
    // The walker's order: the IPv4 header checksum, the addresses, then the
    // UDP checksum.
    let covers: &[u16] = match pl.ip_ck {
        Some(f) => {
            out.checksums.push(checksum(f, false));
            out.checksums.push(checksum(pl.udp_ck, true));
            &[0, 1]
        }
        None => {
            out.checksums.push(checksum(pl.udp_ck, true));
            &[0]
        }
    };
    for (&at, &side) in pl.addr.iter().zip(&pl.side) {
        let mut s = slot(at, pl.family, covers);
        s.side = side;
        out.slots.push(s);
    }
    if let Some((a, b)) = pl.dns {
        out.dns.push(a..b);
    }
    out.client = pl.client;
    true
}
