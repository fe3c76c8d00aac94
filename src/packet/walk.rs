//! The packet walker behind [`super::locate`]: one function per layer, each
//! given the offset where its header starts, the end of the bytes that belong
//! to it (never past the captured bytes) and whether the layer is known to be
//! cut short (snaplen, ICMP quote, first fragment).

use super::{
    Checksum, Cover, DropReason, Family, Field, FragInfo, FragKey, Layer, Located, NameSite,
    Origin, Slot, MAX_COVER, MAX_DEPTH, MAX_REGIONS,
};
use crate::dns::{self, DnsError, EcsField};
use crate::wash::Side;

type R<T> = Result<T, DropReason>;

/// A checksum whose data covers the bytes `base..end`. Offsets are stored
/// as `u32` (records are far smaller) to keep [`Ctx`], which is copied per
/// layer, small; an end past `u32::MAX` means "to the end of the packet".
#[derive(Debug, Clone, Copy, Default)]
struct Region {
    ck: u16,
    base: u32,
    end: u32,
}

impl Region {
    fn new(ck: u16, base: usize, end: usize) -> Self {
        Region {
            ck,
            base: u32::try_from(base).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    fn base(&self) -> usize {
        self.base as usize
    }

    fn end(&self) -> usize {
        if self.end == u32::MAX {
            usize::MAX
        } else {
            self.end as usize
        }
    }
}

/// What the enclosing layers imply for the current one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    depth: u8,
    quoted: bool,
    regions: [Region; MAX_REGIONS],
    nreg: u8,
}

impl Ctx {
    fn top() -> Self {
        Ctx {
            depth: 0,
            quoted: false,
            regions: [Region::default(); MAX_REGIONS],
            nreg: 0,
        }
    }

    fn regions(&self) -> &[Region] {
        &self.regions[..self.nreg as usize]
    }

    /// The context inside checksum `ck`, which sums from `base` to `end`.
    fn with(&self, ck: Option<u16>, base: usize, end: usize) -> R<Ctx> {
        let Some(ck) = ck else { return Ok(*self) };
        let mut c = *self;
        let slot = c
            .regions
            .get_mut(c.nreg as usize)
            .ok_or(DropReason::TooDeep)?;
        *slot = Region::new(ck, base, end);
        c.nreg += 1;
        Ok(c)
    }

    /// The context of a tunnelled (or, with `quoted`, quoted) packet.
    fn deeper(&self, quoted: bool) -> R<Ctx> {
        if self.depth >= MAX_DEPTH {
            return Err(DropReason::TooDeep);
        }
        let mut c = *self;
        c.depth += 1;
        c.quoted |= quoted;
        Ok(c)
    }

    fn ip_origin(&self) -> Origin {
        if self.quoted {
            Origin::QuotedIp
        } else if self.depth > 0 {
            Origin::InnerIp
        } else {
            Origin::Ip
        }
    }
}

/// The addresses an upper-layer pseudo-header uses.
#[derive(Debug, Clone, Copy, Default)]
struct Pseudo {
    src: Option<usize>,
    dst: Option<usize>,
    v6: bool,
}

/// DNS roles of the pseudo-header source and destination.
#[derive(Debug, Clone, Copy)]
pub(super) struct Roles {
    pub(super) src: Side,
    pub(super) dst: Side,
    /// Roles came from DNS ports (as opposed to unknown or ICMP).
    pub(super) dns: bool,
}

const UNKNOWN: Roles = Roles {
    src: Side::Unknown,
    dst: Side::Unknown,
    dns: false,
};

fn is_dns_port(p: u16) -> bool {
    matches!(p, 53 | 853 | 443)
}

/// Roles from ports; `hdr` is the DNS header if the payload is plain DNS.
pub(super) fn roles(sport: u16, dport: u16, hdr: &[u8]) -> Roles {
    let (s, d) = (is_dns_port(sport), is_dns_port(dport));
    let (src, dst) = match (s, d) {
        (true, false) => (Side::Server, Side::Client),
        (false, true) => (Side::Client, Side::Server),
        (true, true) if sport == 53 || dport == 53 => match dns::is_response(hdr) {
            Some(true) => (Side::Server, Side::Client),
            Some(false) => (Side::Client, Side::Server),
            None => (Side::Unknown, Side::Unknown),
        },
        (true, true) => (Side::Unknown, Side::Unknown),
        (false, false) => return UNKNOWN,
    };
    Roles {
        src,
        dst,
        dns: true,
    }
}

pub(super) struct Walker<'a, 'o> {
    p: &'a [u8],
    out: &'o mut Located,
    /// The outermost IP header is a fragment: DNS outside ICMP quotes is
    /// left to the defragmenter.
    no_dns: bool,
    /// The outermost IP header (offset, family), for name sites.
    outer_ip: Option<(usize, Family)>,
    /// The capture's link type (0 when walking a DNS message alone).
    linktype: u32,
}

#[cfg(test)]
thread_local! {
    /// Tests: act as if [`Walker::tcp_seg`] could not describe a segment.
    pub(super) static NO_SEG: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Multicast DNS (5353) or LLMNR (5355) on either end.
pub(crate) fn is_mdns(sport: u16, dport: u16) -> bool {
    [5353, 5355].iter().any(|&p| p == sport || p == dport)
}

/// UDP ports whose payload could be or carry DNS.
fn udp_may_carry_dns(sport: u16, dport: u16) -> bool {
    [53, 3544, 4789].iter().any(|&p| p == sport || p == dport)
}

impl<'a, 'o> Walker<'a, 'o> {
    pub(super) fn new(p: &'a [u8], out: &'o mut Located) -> Self {
        Walker {
            p,
            out,
            no_dns: false,
            outer_ip: None,
            linktype: 0,
        }
    }

    /// Copy the IP addresses at `src` and `dst` (`n` bytes each).
    fn key_addrs(&self, src: usize, dst: usize, n: usize) -> Option<([u8; 16], [u8; 16])> {
        let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
        s[..n].copy_from_slice(self.p.get(src..src + n)?);
        d[..n].copy_from_slice(self.p.get(dst..dst + n)?);
        Some((s, d))
    }

    /// A fragment inside a tunnel: refused when it could carry DNS.
    /// `first`: offset zero, with the transport header at `l4`.
    fn inner_fragment(&self, proto: u8, first: bool, l4: usize, end: usize) -> R<()> {
        match proto {
            6 | 17 | 136 => {
                if !first {
                    return Err(DropReason::TunnelledFragment);
                }
                let (Some(sport), Some(dport)) = (self.u16_at(l4, end), self.u16_at(l4 + 2, end))
                else {
                    return Err(DropReason::TunnelledFragment);
                };
                if udp_may_carry_dns(sport, dport) {
                    return Err(DropReason::TunnelledFragment);
                }
                Ok(())
            }
            // Tunnels and IPv6 extension headers hide what follows.
            0 | 4 | 41 | 43 | 44 | 47 | 51 | 60 | 135 => Err(DropReason::TunnelledFragment),
            _ => Ok(()),
        }
    }

    fn u8_at(&self, at: usize, end: usize) -> Option<u8> {
        if at < end {
            self.p.get(at).copied()
        } else {
            None
        }
    }

    fn u16_at(&self, at: usize, end: usize) -> Option<u16> {
        if at + 2 <= end {
            self.p
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        } else {
            None
        }
    }

    /// Record the checksum field at `field` if it lies before `end`.
    fn add_ck(&mut self, field: usize, end: usize, udp: bool, ctx: &Ctx) -> R<Option<u16>> {
        if field + 2 > end.min(self.p.len()) {
            return Ok(None);
        }
        let idx = u16::try_from(self.out.checksums.len()).map_err(|_| DropReason::TooDeep)?;
        // Built in place: assembling it on the stack with small stores and
        // then copying it with wide loads stalls store forwarding.
        self.out.checksums.push(Checksum {
            field,
            udp,
            parents: [Cover::default(); MAX_REGIONS],
            nparents: 0,
        });
        let Some(c) = self.out.checksums.last_mut() else {
            return Ok(None);
        };
        for r in ctx.regions() {
            if field >= r.base() && field + 2 <= r.end() {
                if let Some(p) = c.parents.get_mut(c.nparents as usize) {
                    *p = Cover {
                        ck: r.ck,
                        odd: (field - r.base()) % 2 == 1,
                    };
                    c.nparents += 1;
                }
            }
        }
        Ok(Some(idx))
    }

    #[allow(clippy::too_many_arguments)]
    /// Record an address of `full` bytes at `at`, cut at `end`. Returns its
    /// slot index, or None when no byte of it is present.
    fn emit(
        &mut self,
        at: usize,
        family: Family,
        full: usize,
        prefix_bits: u8,
        origin: Origin,
        side: Side,
        end: usize,
        ctx: &Ctx,
    ) -> R<Option<usize>> {
        let end = end.min(self.p.len());
        if at >= end || full == 0 {
            return Ok(None);
        }
        let len = full.min(end - at);
        let truncated = len < full;
        let i = self.out.slots.len();
        // Built in place (see `add_ck`).
        self.out.slots.push(Slot {
            offset: at,
            family,
            len: len as u8,
            prefix_bits: if truncated {
                (len * 8) as u8
            } else {
                prefix_bits
            },
            side,
            origin,
            truncated,
            cover: [Cover::default(); MAX_COVER],
            ncover: 0,
        });
        let Some(s) = self.out.slots.last_mut() else {
            return Ok(None);
        };
        for r in ctx.regions() {
            if at >= r.end() || at + len <= r.base() {
                continue;
            }
            if at < r.base() || at + len > r.end() {
                // Only UDP-Lite has a region ending inside the packet. The
                // slot just pushed goes with the rest: `locate` clears
                // everything on an error.
                return Err(DropReason::Malformed(Layer::Udp));
            }
            if let Some(c) = s.cover.get_mut(s.ncover as usize) {
                *c = Cover {
                    ck: r.ck,
                    odd: (at - r.base()) % 2 == 1,
                };
                s.ncover += 1;
            }
        }
        Ok(Some(i))
    }

    fn addr(
        &mut self,
        at: usize,
        family: Family,
        origin: Origin,
        end: usize,
        ctx: &Ctx,
    ) -> R<Option<usize>> {
        let full = family.bytes();
        self.emit(
            at,
            family,
            full,
            (full * 8) as u8,
            origin,
            Side::Unknown,
            end,
            ctx,
        )
    }

    /// Add checksum `ck` to slot `slot` (parity even: pseudo-headers and IP
    /// header addresses).
    fn cover(&mut self, slot: Option<usize>, ck: Option<u16>, odd: bool) -> R<()> {
        let (Some(i), Some(ck)) = (slot, ck) else {
            return Ok(());
        };
        let Some(s) = self.out.slots.get_mut(i) else {
            return Ok(());
        };
        let c = s
            .cover
            .get_mut(s.ncover as usize)
            .ok_or(DropReason::TooDeep)?;
        *c = Cover { ck, odd };
        s.ncover += 1;
        Ok(())
    }

    fn set_side(&mut self, slot: Option<usize>, side: Side) {
        if let Some(s) = slot.and_then(|i| self.out.slots.get_mut(i)) {
            s.side = side;
        }
    }

    fn assign(&mut self, ps: Pseudo, r: Roles, ctx: &Ctx) {
        self.set_side(ps.src, r.src);
        self.set_side(ps.dst, r.dst);
        if r.dns && !ctx.quoted && self.out.client.is_none() {
            if r.src == Side::Client {
                self.out.client = ps.src;
            } else if r.dst == Side::Client {
                self.out.client = ps.dst;
            }
        }
    }

    // ---------------------------------------------------------------- link

    pub(super) fn link(&mut self, linktype: u32) -> R<()> {
        self.linktype = linktype;
        let p = self.p;
        let n = p.len();
        let ctx = Ctx::top();
        match linktype {
            1 => self.ether(0, n, &ctx, true),
            113 => {
                let (Some(hatype), Some(alen), Some(proto)) =
                    (self.u16_at(2, n), self.u16_at(4, n), self.u16_at(14, n))
                else {
                    return Err(DropReason::Malformed(Layer::Link));
                };
                self.sll_addr(hatype, alen as usize, 6, &ctx)?;
                self.sll_proto(hatype, proto, 16, &ctx)
            }
            276 => {
                let (Some(proto), Some(hatype), Some(alen)) =
                    (self.u16_at(0, n), self.u16_at(8, n), self.u8_at(11, n))
                else {
                    return Err(DropReason::Malformed(Layer::Link));
                };
                if n < 20 {
                    return Err(DropReason::Malformed(Layer::Link));
                }
                self.sll_addr(hatype, alen as usize, 12, &ctx)?;
                self.sll_proto(hatype, proto, 20, &ctx)
            }
            101 | 12 | 14 => match p.first().map(|b| b >> 4) {
                None => Ok(()),
                Some(4) => self.ipv4(0, n, false, &ctx).map(|_| ()),
                Some(6) => self.ipv6(0, n, false, &ctx).map(|_| ()),
                Some(_) => Err(DropReason::Malformed(Layer::Link)),
            },
            228 => self.ipv4(0, n, false, &ctx).map(|_| ()),
            229 => self.ipv6(0, n, false, &ctx).map(|_| ()),
            0 | 108 => {
                let Some(b) = p.get(0..4) else {
                    return Err(DropReason::Malformed(Layer::Link));
                };
                let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let fam = if linktype == 108 { [be, be] } else { [be, le] };
                if fam.contains(&2) {
                    self.ipv4(4, n, false, &ctx).map(|_| ())
                } else if fam.iter().any(|f| matches!(f, 24 | 28 | 30)) {
                    self.ipv6(4, n, false, &ctx).map(|_| ())
                } else {
                    Err(DropReason::NonIp)
                }
            }
            _ => Err(DropReason::UnsupportedLinktype),
        }
    }

    /// Linux cooked capture on an IP tunnel device: the "link-layer address"
    /// is the tunnel endpoint's IP address.
    fn sll_addr(&mut self, hatype: u16, alen: usize, at: usize, ctx: &Ctx) -> R<()> {
        // ARPHRD_TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE
        if matches!(hatype, 768 | 769 | 776 | 778 | 823) {
            let family = match alen {
                4 => Family::V4,
                16 => Family::V6,
                _ => return Ok(()),
            };
            let stored = alen.min(8);
            let idx = self.emit(
                at,
                family,
                stored,
                (stored * 8) as u8,
                Origin::LinkLayer,
                Side::Unknown,
                at + stored,
                ctx,
            )?;
            if stored < alen {
                if let Some(s) = idx.and_then(|i| self.out.slots.get_mut(i)) {
                    s.truncated = true;
                }
            }
        }
        Ok(())
    }

    fn sll_proto(&mut self, hatype: u16, proto: u16, at: usize, ctx: &Ctx) -> R<()> {
        if hatype == 824 {
            // netlink: the protocol field is a netlink family
            return Err(DropReason::NonIp);
        }
        let n = self.p.len();
        self.l3(proto, at, n, false, ctx, true)
    }

    /// Ethernet header with any number of VLAN tags at `at`.
    fn ether(&mut self, at: usize, end: usize, ctx: &Ctx, outer: bool) -> R<()> {
        let mut o = at + 12;
        let mut et = self
            .u16_at(o, end)
            .ok_or(DropReason::Malformed(Layer::Link))?;
        let mut tags = 0;
        while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            tags += 1;
            if tags > 16 {
                return Err(DropReason::Malformed(Layer::Link));
            }
            o += 4;
            et = self
                .u16_at(o, end)
                .ok_or(DropReason::Malformed(Layer::Link))?;
        }
        self.l3(et, o + 2, end, false, ctx, outer)
    }

    /// Dispatch on an ethertype. `outer`: unknown types are "not IP" rather
    /// than an unknown tunnel payload.
    fn l3(&mut self, et: u16, at: usize, end: usize, short: bool, ctx: &Ctx, outer: bool) -> R<()> {
        match et {
            0x0800 => self.ipv4(at, end, short, ctx).map(|_| ()),
            0x86dd => self.ipv6(at, end, short, ctx).map(|_| ()),
            0x0806 | 0x8035 => self.arp(at, end, ctx),
            0x8864 => {
                // PPPoE session: 6-byte header, then the PPP protocol.
                let proto = self
                    .u16_at(at + 6, end)
                    .ok_or(DropReason::Malformed(Layer::Link))?;
                match proto {
                    0x0021 => self.ipv4(at + 8, end, short, ctx).map(|_| ()),
                    0x0057 => self.ipv6(at + 8, end, short, ctx).map(|_| ()),
                    _ => Err(DropReason::NonIp),
                }
            }
            0x8847 | 0x8848 => {
                let mut o = at;
                for _ in 0..16 {
                    let b = self
                        .u8_at(o + 2, end)
                        .ok_or(DropReason::Malformed(Layer::Link))?;
                    o += 4;
                    if b & 1 == 1 {
                        return match self.u8_at(o, end).map(|b| b >> 4) {
                            None => Ok(()),
                            Some(4) => self.ipv4(o, end, short, ctx).map(|_| ()),
                            Some(6) => self.ipv6(o, end, short, ctx).map(|_| ()),
                            Some(_) => Err(DropReason::NonIp),
                        };
                    }
                }
                Err(DropReason::Malformed(Layer::Link))
            }
            _ if outer => Err(DropReason::NonIp),
            _ => Err(DropReason::UnknownTunnel),
        }
    }

    fn arp(&mut self, at: usize, end: usize, ctx: &Ctx) -> R<()> {
        let (Some(ptype), Some(hlen), Some(plen)) = (
            self.u16_at(at + 2, end),
            self.u8_at(at + 4, end),
            self.u8_at(at + 5, end),
        ) else {
            // Cut before the lengths: no address can be present.
            return Ok(());
        };
        let family = match (ptype, plen) {
            (0x0800, 4) => Family::V4,
            (0x86dd, 16) => Family::V6,
            (0x0800 | 0x86dd, _) => return Err(DropReason::Malformed(Layer::Arp)),
            _ => return Err(DropReason::NonIp),
        };
        let (h, pl) = (hlen as usize, plen as usize);
        let spa = at + 8 + h;
        let tpa = spa + pl + h;
        self.addr(spa, family, Origin::Arp, end, ctx)?;
        self.addr(tpa, family, Origin::Arp, end, ctx)?;
        Ok(())
    }

    // ---------------------------------------------------------------- IPv4

    fn ipv4(&mut self, at: usize, end: usize, short: bool, ctx: &Ctx) -> R<Pseudo> {
        let mut ps = Pseudo::default();
        let Some(b0) = self.u8_at(at, end) else {
            return Ok(ps);
        };
        if b0 >> 4 != 4 {
            return Err(DropReason::Malformed(Layer::Ipv4));
        }
        if ctx.depth == 0 && self.outer_ip.is_none() {
            self.outer_ip = Some((at, Family::V4));
        }
        let ihl = (b0 & 15) as usize * 4;
        if ihl < 20 {
            return Err(DropReason::Malformed(Layer::Ipv4));
        }
        let (mut end, mut short) = (end, short);
        match self.u16_at(at + 2, end) {
            // Zero: TCP segmentation offload on the capturing host.
            Some(0) => {}
            Some(tl) => {
                let tl = tl as usize;
                if tl < ihl {
                    return Err(DropReason::Malformed(Layer::Ipv4));
                }
                if at + tl > end {
                    short = true;
                } else {
                    end = at + tl;
                    short = false;
                }
            }
            None => short = true,
        }
        let hck = self.add_ck(at + 10, end.min(at + ihl), false, ctx)?;
        let origin = ctx.ip_origin();
        ps.src = self.addr(at + 12, Family::V4, origin, end, ctx)?;
        ps.dst = self.addr(at + 16, Family::V4, origin, end, ctx)?;
        self.cover(ps.src, hck, false)?;
        self.cover(ps.dst, hck, false)?;
        let hend = at + ihl;
        self.ipv4_options(at, at + 20, hend.min(end), hck, ctx)?;
        if hend > end {
            if !short {
                return Err(DropReason::Malformed(Layer::Ipv4));
            }
            return Ok(ps);
        }
        let (Some(frag), Some(proto)) = (self.u16_at(at + 6, end), self.u8_at(at + 9, end)) else {
            return Ok(ps);
        };
        let mf = frag & 0x2000 != 0;
        let foff = frag & 0x1fff;
        if !ctx.quoted && (mf || foff != 0) {
            self.out.is_fragment = true;
            if ctx.depth == 0 {
                self.no_dns = true;
                let id = self.u16_at(at + 4, end).unwrap_or(0);
                if let Some((src, dst)) = self.key_addrs(at + 12, at + 16, 4) {
                    let captured = end.min(self.p.len());
                    let claimed = match self.u16_at(at + 2, end) {
                        Some(0) | None => captured.saturating_sub(hend),
                        Some(tl) => (tl as usize).saturating_sub(ihl),
                    };
                    self.out.frag = Some(FragInfo {
                        key: FragKey {
                            family: Family::V4,
                            src,
                            dst,
                            id: id as u32,
                            protocol: proto,
                        },
                        offset: foff as u32 * 8,
                        more: mf,
                        data: hend..captured.max(hend),
                        len: claimed as u32,
                        udp_checksum: None,
                        ip: at,
                    });
                }
            } else {
                self.inner_fragment(proto, foff == 0, hend, end)?;
            }
        }
        if foff != 0 {
            return Ok(ps);
        }
        let r = self.transport(proto, hend, end, short || mf, ps, ctx)?;
        self.assign(ps, r, ctx);
        Ok(ps)
    }

    /// Record Route and Timestamp entries are addresses; source routes change
    /// the pseudo-header destination and are refused.
    fn ipv4_options(
        &mut self,
        ip: usize,
        mut o: usize,
        end: usize,
        hck: Option<u16>,
        ctx: &Ctx,
    ) -> R<()> {
        while o < end {
            let Some(kind) = self.u8_at(o, end) else {
                break;
            };
            match kind {
                0 => break,
                1 => {
                    o += 1;
                    continue;
                }
                _ => {}
            }
            let Some(len) = self.u8_at(o + 1, end) else {
                break;
            };
            let len = len as usize;
            if len < 2 {
                return Err(DropReason::Malformed(Layer::Ipv4));
            }
            let oend = (o + len).min(end);
            let ptr = self.u8_at(o + 2, end).unwrap_or(0) as usize;
            match kind {
                131 | 137 => return Err(DropReason::SourceRoute),
                7 => {
                    // Record Route: filled entries before the pointer.
                    let mut e = o + 3;
                    while e + 4 <= o + len && e + 5 <= o + ptr && e < oend {
                        let s = self.addr(e, Family::V4, Origin::IpOption, oend, ctx)?;
                        self.cover(s, hck, (e - ip) % 2 == 1)?;
                        e += 4;
                    }
                }
                68 => {
                    // Timestamp: flag 1 = address + time pairs (filled up to
                    // the pointer), flag 3 = prespecified addresses (all).
                    let flag = self.u8_at(o + 3, end).unwrap_or(0) & 15;
                    if flag == 1 || flag == 3 {
                        let mut e = o + 4;
                        while e + 8 <= o + len && e < oend && (flag == 3 || e + 9 <= o + ptr) {
                            let s = self.addr(e, Family::V4, Origin::IpOption, oend, ctx)?;
                            self.cover(s, hck, (e - ip) % 2 == 1)?;
                            e += 8;
                        }
                    }
                }
                _ => {}
            }
            o += len;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- IPv6

    fn ipv6(&mut self, at: usize, end: usize, short: bool, ctx: &Ctx) -> R<Pseudo> {
        let mut ps = Pseudo {
            v6: true,
            ..Pseudo::default()
        };
        let Some(b0) = self.u8_at(at, end) else {
            return Ok(ps);
        };
        if b0 >> 4 != 6 {
            return Err(DropReason::Malformed(Layer::Ipv6));
        }
        if ctx.depth == 0 && self.outer_ip.is_none() {
            self.outer_ip = Some((at, Family::V6));
        }
        let (mut end, mut short) = (end, short);
        match self.u16_at(at + 4, end) {
            // Zero: jumbogram (or offload); use what was captured.
            Some(0) => {}
            Some(pl) => {
                let claimed = at + 40 + pl as usize;
                if claimed > end {
                    short = true;
                } else {
                    end = claimed;
                    short = false;
                }
            }
            None => short = true,
        }
        let origin = ctx.ip_origin();
        let src = self.addr(at + 8, Family::V6, origin, end, ctx)?;
        let dst = self.addr(at + 24, Family::V6, origin, end, ctx)?;
        ps.src = src;
        ps.dst = dst;
        let Some(mut nh) = self.u8_at(at + 6, end) else {
            return Ok(ps);
        };
        let mut o = at + 40;
        let mut routing = false;
        let cut = |o: usize, short: bool, ps: Pseudo| -> R<Pseudo> {
            if o > end && !short {
                Err(DropReason::Malformed(Layer::Ipv6Ext))
            } else {
                Ok(ps)
            }
        };
        for _ in 0..32 {
            match nh {
                0 | 60 | 43 | 51 | 135 => {
                    let (Some(next), Some(hl)) = (self.u8_at(o, end), self.u8_at(o + 1, end))
                    else {
                        return cut(o + 2, short, ps);
                    };
                    let len = if nh == 51 {
                        (hl as usize + 2) * 4
                    } else {
                        (hl as usize + 1) * 8
                    };
                    let hend = o + len;
                    let lim = hend.min(end);
                    match nh {
                        60 => {
                            if let Some(h) = self.dest_opts(o + 2, lim, ctx)? {
                                ps.src = Some(h);
                            }
                        }
                        43 => {
                            if routing {
                                return Err(DropReason::RoutingHeader);
                            }
                            routing = true;
                            if let Some(f) = self.routing(o, hl, lim, short, ctx)? {
                                ps.dst = Some(f);
                            }
                        }
                        135 => {
                            if hend > end && !short {
                                return cut(hend, short, ps);
                            }
                            let r = self.mobility(o, lim, ps, ctx)?;
                            self.assign(ps, r, ctx);
                            self.unknown_if_replaced(ps, src, dst);
                            return Ok(ps);
                        }
                        _ => {}
                    }
                    if hend > end {
                        return cut(hend, short, ps);
                    }
                    nh = next;
                    o = hend;
                }
                44 => {
                    let (Some(next), Some(fw)) = (self.u8_at(o, end), self.u16_at(o + 2, end))
                    else {
                        return cut(o + 4, short, ps);
                    };
                    let foff = fw >> 3;
                    let more = fw & 1 == 1;
                    if !ctx.quoted {
                        self.out.is_fragment = true;
                        if ctx.depth == 0 {
                            if self.out.frag.is_some() {
                                // Two fragment headers.
                                return Err(DropReason::Malformed(Layer::Ipv6Ext));
                            }
                            self.no_dns = true;
                            let data = o + 8;
                            let captured = end.min(self.p.len());
                            let id = match (self.u16_at(o + 4, end), self.u16_at(o + 6, end)) {
                                (Some(h), Some(l)) => Some((h as u32) << 16 | l as u32),
                                _ => None,
                            };
                            if let (Some(id), Some((src, dst))) =
                                (id, self.key_addrs(at + 8, at + 24, 16))
                            {
                                let claimed = match self.u16_at(at + 4, end) {
                                    Some(0) | None => captured,
                                    Some(pl) => at + 40 + pl as usize,
                                };
                                self.out.frag = Some(FragInfo {
                                    key: FragKey {
                                        family: Family::V6,
                                        src,
                                        dst,
                                        id,
                                        protocol: next,
                                    },
                                    offset: foff as u32 * 8,
                                    more,
                                    data: data..captured.max(data),
                                    len: claimed.saturating_sub(data) as u32,
                                    udp_checksum: None,
                                    ip: at,
                                });
                            }
                        } else {
                            self.inner_fragment(next, foff == 0, o + 8, end)?;
                        }
                    }
                    if foff != 0 {
                        return Ok(ps);
                    }
                    short |= more;
                    if o + 8 > end {
                        return cut(o + 8, short, ps);
                    }
                    nh = next;
                    o += 8;
                }
                50 | 59 => return Ok(ps),
                _ => {
                    let r = self.transport(nh, o, end, short, ps, ctx)?;
                    self.assign(ps, r, ctx);
                    self.unknown_if_replaced(ps, src, dst);
                    return Ok(ps);
                }
            }
        }
        Err(DropReason::Malformed(Layer::Ipv6Ext))
    }

    /// When a home address or routing-header address stands in for the IPv6
    /// source or destination, the header address is not the DNS end.
    fn unknown_if_replaced(&mut self, ps: Pseudo, src: Option<usize>, dst: Option<usize>) {
        if ps.src != src {
            self.set_side(src, Side::Unknown);
        }
        if ps.dst != dst {
            self.set_side(dst, Side::Unknown);
        }
    }

    /// Destination options: returns the Home Address option's slot.
    fn dest_opts(&mut self, mut o: usize, end: usize, ctx: &Ctx) -> R<Option<usize>> {
        let mut home = None;
        while o < end {
            let Some(t) = self.u8_at(o, end) else { break };
            if t == 0 {
                o += 1;
                continue;
            }
            let Some(l) = self.u8_at(o + 1, end) else {
                break;
            };
            if t == 201 {
                if l != 16 {
                    return Err(DropReason::Malformed(Layer::Ipv6Ext));
                }
                home = self.addr(o + 2, Family::V6, Origin::HomeAddress, end, ctx)?;
            }
            o += 2 + l as usize;
        }
        Ok(home)
    }

    /// Routing header at `o`: emits its addresses; returns the slot of the
    /// final destination when segments are left.
    fn routing(
        &mut self,
        o: usize,
        hl: u8,
        end: usize,
        short: bool,
        ctx: &Ctx,
    ) -> R<Option<usize>> {
        let (Some(rtype), Some(left)) = (self.u8_at(o + 2, end), self.u8_at(o + 3, end)) else {
            return if short {
                Ok(None)
            } else {
                Err(DropReason::Malformed(Layer::Ipv6Ext))
            };
        };
        let hlen = (hl as usize + 1) * 8;
        let (count, fin) = match rtype {
            0 => {
                if hl % 2 == 1 {
                    return Err(DropReason::Malformed(Layer::Ipv6Ext));
                }
                let n = hl as usize / 2;
                (n, n.checked_sub(1))
            }
            2 => {
                if hl != 2 {
                    return Err(DropReason::Malformed(Layer::Ipv6Ext));
                }
                (1, Some(0))
            }
            4 => {
                let Some(last) = self.u8_at(o + 4, end) else {
                    return Ok(None);
                };
                let n = last as usize + 1;
                if 8 + 16 * n > hlen {
                    return Err(DropReason::Malformed(Layer::Ipv6Ext));
                }
                (n, Some(0))
            }
            _ => return Err(DropReason::RoutingHeader),
        };
        if left > 0 && fin.is_none() {
            return Err(DropReason::Malformed(Layer::Ipv6Ext));
        }
        let mut final_slot = None;
        for i in 0..count {
            let s = self.addr(o + 8 + 16 * i, Family::V6, Origin::Routing, end, ctx)?;
            if left > 0 && Some(i) == fin {
                final_slot = s;
            }
        }
        Ok(final_slot)
    }

    /// Mobility header (RFC 6275): its checksum covers the pseudo-header; the
    /// messages that carry addresses are walked, others refused.
    fn mobility(&mut self, o: usize, end: usize, ps: Pseudo, ctx: &Ctx) -> R<Roles> {
        let Some(mtype) = self.u8_at(o + 2, end) else {
            return Err(DropReason::Malformed(Layer::Ipv6Ext));
        };
        let ck = self.add_ck(o + 4, end, false, ctx)?;
        self.cover(ps.src, ck, false)?;
        self.cover(ps.dst, ck, false)?;
        let mctx = ctx.with(ck, o, usize::MAX)?;
        let opts = match mtype {
            0 => 8,      // Binding Refresh Request
            1 | 2 => 16, // HoTI, CoTI
            3 | 4 => 24, // HoT, CoT
            5 | 6 => 12, // Binding Update, Binding Ack
            7 => {
                // Binding Error: home address, no options we need.
                self.addr(o + 8, Family::V6, Origin::HomeAddress, end, &mctx)?;
                24
            }
            _ => return Err(DropReason::MobilityHeader),
        };
        let mut a = o + opts;
        while a < end {
            let Some(t) = self.u8_at(a, end) else { break };
            if t == 0 {
                a += 1;
                continue;
            }
            let Some(l) = self.u8_at(a + 1, end) else {
                break;
            };
            if t == 3 {
                // Alternate Care-of Address.
                if l != 16 {
                    return Err(DropReason::Malformed(Layer::Ipv6Ext));
                }
                self.addr(a + 2, Family::V6, Origin::HomeAddress, end, &mctx)?;
            }
            a += 2 + l as usize;
        }
        Ok(UNKNOWN)
    }

    // ----------------------------------------------------------- transport

    fn transport(
        &mut self,
        mut proto: u8,
        mut at: usize,
        end: usize,
        short: bool,
        ps: Pseudo,
        ctx: &Ctx,
    ) -> R<Roles> {
        for _ in 0..8 {
            return match proto {
                6 => self.tcp(at, end, short, ps, ctx),
                17 => self.udp(at, end, short, ps, ctx, false),
                136 => self.udp(at, end, short, ps, ctx, true),
                1 if !ps.v6 => self.icmp4(at, end, ps, ctx),
                58 if ps.v6 => self.icmp6(at, end, ps, ctx),
                4 => {
                    let c = ctx.deeper(false)?;
                    self.ipv4(at, end, short, &c)?;
                    Ok(UNKNOWN)
                }
                41 => {
                    let c = ctx.deeper(false)?;
                    self.ipv6(at, end, short, &c)?;
                    Ok(UNKNOWN)
                }
                47 => self.gre(at, end, short, ctx),
                51 => {
                    // IPv4 AH (IPv6 AH is walked with the extension headers)
                    let (Some(next), Some(hl)) = (self.u8_at(at, end), self.u8_at(at + 1, end))
                    else {
                        return Ok(UNKNOWN);
                    };
                    proto = next;
                    at += (hl as usize + 2) * 4;
                    if at > end {
                        return if short {
                            Ok(UNKNOWN)
                        } else {
                            Err(DropReason::Malformed(Layer::Ipv4))
                        };
                    }
                    continue;
                }
                // EtherIP, L2TPv3, MPLS-in-IP
                97 | 115 | 137 => Err(DropReason::UnknownTunnel),
                _ => Ok(UNKNOWN),
            };
        }
        Err(DropReason::TooDeep)
    }

    fn udp(
        &mut self,
        at: usize,
        end: usize,
        short: bool,
        ps: Pseudo,
        ctx: &Ctx,
        lite: bool,
    ) -> R<Roles> {
        let ck = self.add_ck(at + 6, end, !lite, ctx)?;
        self.cover(ps.src, ck, false)?;
        self.cover(ps.dst, ck, false)?;
        if ctx.depth == 0 && !ctx.quoted && at + 8 <= end.min(self.p.len()) {
            if let Some(f) = self.out.frag.as_mut() {
                f.udp_checksum = Some(at + 6);
            }
        }
        let (Some(sport), Some(dport)) = (self.u16_at(at, end), self.u16_at(at + 2, end)) else {
            return Ok(UNKNOWN);
        };
        let Some(ulen) = self.u16_at(at + 4, end) else {
            return Ok(roles(sport, dport, &[]));
        };
        let (mut pend, mut pshort) = (end, short);
        let mut cov_end = usize::MAX;
        let ulen = ulen as usize;
        if lite {
            if ulen != 0 {
                if ulen < 8 {
                    return Err(DropReason::Malformed(Layer::Udp));
                }
                cov_end = at + ulen;
            }
        } else if ulen != 0 {
            if ulen < 8 {
                return Err(DropReason::Malformed(Layer::Udp));
            }
            let claimed = at + ulen;
            if claimed > end {
                if !short {
                    return Err(DropReason::Malformed(Layer::Udp));
                }
            } else {
                pend = claimed;
                pshort = false;
            }
        }
        let pl = at + 8;
        if pl > pend {
            return Ok(roles(sport, dport, &[]));
        }
        let payload = self.p.get(pl..pend).unwrap_or(&[]);
        let r = roles(sport, dport, payload);
        let uctx = ctx.with(ck, at, cov_end)?;
        let dns = super::dns_ports(sport, dport, &self.out.dns_ports);
        if dns || is_mdns(sport, dport) {
            // Multicast DNS and LLMNR are not DNS exchanges (no sides), but
            // their ECS, EDNS options (the Owner option holds MAC
            // addresses), answers and reverse names are washed alike; they
            // are not listed in `Located::dns`.
            self.dns_udp(pl, pend, pshort, dns, &uctx)?;
        } else if sport == 3544 || dport == 3544 {
            self.teredo(pl, pend, pshort, &uctx)?;
        } else if !r.dns && (sport == 4789 || dport == 4789) {
            self.vxlan(pl, pend, &uctx)?;
        } else if !r.dns && [6081, 2152, 1701].iter().any(|&t| t == sport || t == dport) {
            return Err(DropReason::UnknownTunnel);
        }
        Ok(r)
    }

    fn tcp(&mut self, at: usize, end: usize, short: bool, ps: Pseudo, ctx: &Ctx) -> R<Roles> {
        let ck = self.add_ck(at + 16, end, false, ctx)?;
        self.cover(ps.src, ck, false)?;
        self.cover(ps.dst, ck, false)?;
        let (Some(sport), Some(dport)) = (self.u16_at(at, end), self.u16_at(at + 2, end)) else {
            return Ok(UNKNOWN);
        };
        let Some(off) = self.u8_at(at + 12, end) else {
            return Ok(roles(sport, dport, &[]));
        };
        let doff = (off >> 4) as usize * 4;
        if doff < 20 {
            return Err(DropReason::Malformed(Layer::Tcp));
        }
        let tctx = ctx.with(ck, at, usize::MAX)?;
        let hend = at + doff;
        self.tcp_options(at + 20, hend.min(end), &tctx)?;
        if hend > end {
            if !short {
                return Err(DropReason::Malformed(Layer::Tcp));
            }
            return Ok(roles(sport, dport, &[]));
        }
        let payload = self.p.get(hend..end).unwrap_or(&[]);
        let r = roles(sport, dport, payload.get(2..).unwrap_or(&[]));
        if super::dns_ports(sport, dport, &self.out.dns_ports) {
            if self.out.follow_tcp && ctx.depth == 0 && !ctx.quoted && !self.no_dns {
                self.tcp_seg(at, hend, end, short, ps, sport, dport);
                #[cfg(test)]
                if NO_SEG.with(std::cell::Cell::get) {
                    self.out.tcp = None;
                }
                if !short && self.out.tcp.is_some() {
                    // The stream reassembler walks the DNS messages.
                    return Ok(r);
                }
                // A segment not handed to the reassembler (or cut) has its
                // messages walked here.
            }
            self.dns_tcp(hend, end, short, &tctx)?;
        }
        Ok(r)
    }

    /// Describe an outermost DNS segment for the stream reassembler.
    #[allow(clippy::too_many_arguments)]
    fn tcp_seg(
        &mut self,
        at: usize,
        hend: usize,
        end: usize,
        short: bool,
        ps: Pseudo,
        sport: u16,
        dport: u16,
    ) {
        let n = if ps.v6 { 16 } else { 4 };
        let off = |s: Option<usize>| s.and_then(|i| self.out.slots.get(i)).map(|s| s.offset);
        let (Some(s), Some(d)) = (off(ps.src), off(ps.dst)) else {
            return;
        };
        let Some((src, dst)) = self.key_addrs(s, d, n) else {
            return;
        };
        let u32_at = |o: usize| {
            self.p
                .get(o..o + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (Some(seq), Some(ack), Some(flags)) =
            (u32_at(at + 4), u32_at(at + 8), self.u8_at(at + 13, end))
        else {
            return;
        };
        let captured = end.min(self.p.len());
        self.out.tcp = Some(super::TcpSeg {
            key: super::FlowKey {
                v6: ps.v6,
                src,
                dst,
                sport,
                dport,
            },
            seq,
            ack,
            flags,
            header: at,
            checksum: (at + 18 <= captured).then_some(at + 16),
            payload: hend.min(captured)..captured,
            cut: short,
            ip: self
                .outer_ip
                .filter(|&(ip, _)| super::plain_link(self.linktype, self.p, ip)),
        });
    }

    /// MPTCP ADD_ADDR carries an address of the sender.
    fn tcp_options(&mut self, mut o: usize, end: usize, ctx: &Ctx) -> R<()> {
        while o < end {
            let Some(kind) = self.u8_at(o, end) else {
                break;
            };
            match kind {
                0 => break,
                1 => {
                    o += 1;
                    continue;
                }
                _ => {}
            }
            let Some(len) = self.u8_at(o + 1, end) else {
                break;
            };
            if len < 2 {
                break;
            }
            if kind == 30 && self.u8_at(o + 2, end).map(|b| b >> 4) == Some(3) {
                let family = match len {
                    8 | 10 | 16 | 18 => Some(Family::V4),
                    20 | 22 | 28 | 30 => Some(Family::V6),
                    _ => None,
                };
                if let Some(f) = family {
                    self.addr(o + 4, f, Origin::MptcpAddr, end, ctx)?;
                }
            }
            o += len as usize;
        }
        Ok(())
    }

    // ----------------------------------------------------------------- DNS

    fn emit_ecs(&mut self, base: usize, e: EcsField, ctx: &Ctx) -> R<()> {
        let family = if e.family == 1 {
            Family::V4
        } else {
            Family::V6
        };
        let full = (e.source_prefix as usize).div_ceil(8);
        let at = base + e.offset;
        // `e.len` may be short of `full` in a cut message.
        self.emit(
            at,
            family,
            full,
            e.source_prefix,
            Origin::Ecs,
            Side::Client,
            at + e.len,
            ctx,
        )?;
        Ok(())
    }

    /// One DNS message at `m0..m1`; `complete` unless cut; `listed` in
    /// [`super::Located::dns`] when complete and not quoted.
    fn dns_msg(
        &mut self,
        m0: usize,
        m1: usize,
        complete: bool,
        tcp: bool,
        listed: bool,
        ctx: &Ctx,
    ) -> R<()> {
        let p = self.p;
        let m = p.get(m0..m1).unwrap_or(&[]);
        let mut ecs = std::mem::take(&mut self.out.ecs);
        let r = if complete {
            dns::find_ecs(m, &mut ecs).map_err(|_| DropReason::UnparsedDns)
        } else {
            ecs_partial(m, &mut ecs).map_err(|_| DropReason::UnparsedDns)
        };
        let r = r.and_then(|()| {
            for e in ecs.iter() {
                self.emit_ecs(m0, *e, ctx)?;
            }
            Ok(())
        });
        self.out.ecs = ecs;
        r?;
        self.dns_fields(m0, m1, complete, ctx)?;
        // A cut message is a name site even without a visible `arpa` label:
        // a name cut by the end may be a reverse name whose address labels
        // are all that was captured (`crate::revwash` drops it).
        if !complete || crate::dnsenc::may_hold_reverse(m) {
            let mut regions = [(0u16, 0u32, 0u32); MAX_REGIONS];
            for (d, r) in regions.iter_mut().zip(ctx.regions()) {
                *d = (r.ck, r.base, r.end);
            }
            self.out.names.push(NameSite {
                start: m0,
                end: m0 + m.len(),
                complete,
                quoted: ctx.quoted,
                tcp,
                depth: ctx.depth,
                ip: self.outer_ip,
                regions,
                nreg: ctx.nreg,
            });
        }
        if listed && complete && !ctx.quoted {
            self.out.dns.push(m0..m1);
        }
        Ok(())
    }

    /// The whole input is one DNS message (see [`super::locate_dns`]).
    pub(super) fn dns_message(&mut self, complete: bool) -> R<()> {
        let n = self.p.len();
        self.dns_msg(0, n, complete, true, true, &Ctx::top())
    }

    /// The EDNS client identifiers and client addresses of the message at
    /// `m0..m1`, and its A/AAAA RDATA when [`Located::answers`] is set
    /// ([`crate::edns::scan`]).
    fn dns_fields(&mut self, m0: usize, m1: usize, complete: bool, ctx: &Ctx) -> R<()> {
        let p = self.p;
        let m = p.get(m0..m1).unwrap_or(&[]);
        let mut found = std::mem::take(&mut self.out.found);
        let r = crate::edns::scan(m, complete, self.out.answers, &mut found)
            .map_err(|_| DropReason::UnparsedDns)
            .and_then(|()| {
                for a in found.addrs.iter() {
                    let (family, origin) = match a.kind {
                        crate::edns::AddrKind::Answer => (a.v6, Origin::Answer),
                        crate::edns::AddrKind::Edns => (a.v6, Origin::EdnsAddr),
                    };
                    let family = if family { Family::V6 } else { Family::V4 };
                    let full = family.bytes();
                    let at = m0 + a.offset;
                    self.emit(
                        at,
                        family,
                        full,
                        (full * 8) as u8,
                        origin,
                        a.side(),
                        m1,
                        ctx,
                    )?;
                }
                for f in found.ids.iter() {
                    self.emit_field(m0 + f.offset, f.len, f.kind, m1, ctx)?;
                }
                Ok(())
            });
        self.out.found = found;
        r
    }

    /// Record an identifier of `len` bytes at `at`, cut at `end`.
    fn emit_field(
        &mut self,
        at: usize,
        len: usize,
        kind: crate::edns::IdKind,
        end: usize,
        ctx: &Ctx,
    ) -> R<()> {
        let end = end.min(self.p.len());
        if at >= end || len == 0 {
            return Ok(());
        }
        let len = len.min(end - at);
        self.out.fields.push(Field {
            offset: at,
            len,
            kind,
            cover: [Cover::default(); MAX_COVER],
            ncover: 0,
        });
        let Some(f) = self.out.fields.last_mut() else {
            return Ok(());
        };
        for r in ctx.regions() {
            if at >= r.end() || at + len <= r.base() {
                continue;
            }
            if at < r.base() || at + len > r.end() {
                return Err(DropReason::Malformed(Layer::Udp));
            }
            if let Some(c) = f.cover.get_mut(f.ncover as usize) {
                *c = Cover {
                    ck: r.ck,
                    odd: (at - r.base()) % 2 == 1,
                };
                f.ncover += 1;
            }
        }
        Ok(())
    }

    fn dns_udp(&mut self, at: usize, end: usize, short: bool, listed: bool, ctx: &Ctx) -> R<()> {
        if self.no_dns && !ctx.quoted {
            return Ok(());
        }
        if at >= end && !short {
            return Ok(());
        }
        self.dns_msg(at, end, !short, false, listed, ctx)
    }

    fn dns_tcp(&mut self, mut at: usize, end: usize, short: bool, ctx: &Ctx) -> R<()> {
        if self.no_dns && !ctx.quoted {
            return Ok(());
        }
        while at < end {
            let Some(len) = self.u16_at(at, end) else {
                return if short {
                    Ok(())
                } else {
                    Err(DropReason::TcpDnsSplit)
                };
            };
            let (m0, m1) = (at + 2, at + 2 + len as usize);
            if m1 > end {
                if !short {
                    return Err(DropReason::TcpDnsSplit);
                }
                return self.dns_msg(m0, end, false, true, true, ctx);
            }
            self.dns_msg(m0, m1, true, true, true, ctx)?;
            at = m1;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- ICMP

    fn icmp4(&mut self, at: usize, end: usize, ps: Pseudo, ctx: &Ctx) -> R<Roles> {
        let Some(ty) = self.u8_at(at, end) else {
            return Ok(UNKNOWN);
        };
        let ck = self.add_ck(at + 2, end, false, ctx)?;
        let ictx = ctx.with(ck, at, usize::MAX)?;
        // RFC 4884: a non-zero length (32-bit words) ends the quote before
        // the extension structure.
        let qend = match self.u8_at(at + 5, end) {
            Some(l) if l != 0 && matches!(ty, 3 | 11 | 12) => end.min(at + 8 + 4 * l as usize),
            _ => end,
        };
        match ty {
            3 | 4 | 11 | 12 => self.quoted(at + 8, qend, ps, false, &ictx),
            5 => {
                self.addr(at + 4, Family::V4, Origin::NdTarget, end, &ictx)?;
                self.quoted(at + 8, end, ps, false, &ictx)
            }
            _ => Ok(UNKNOWN),
        }
    }

    fn icmp6(&mut self, at: usize, end: usize, ps: Pseudo, ctx: &Ctx) -> R<Roles> {
        let Some(ty) = self.u8_at(at, end) else {
            return Ok(UNKNOWN);
        };
        let ck = self.add_ck(at + 2, end, false, ctx)?;
        self.cover(ps.src, ck, false)?;
        self.cover(ps.dst, ck, false)?;
        let ictx = ctx.with(ck, at, usize::MAX)?;
        // RFC 4884: a non-zero length (64-bit words) ends the quote.
        let qend = match self.u8_at(at + 4, end) {
            Some(l) if l != 0 && matches!(ty, 1 | 3) => end.min(at + 8 + 8 * l as usize),
            _ => end,
        };
        match ty {
            1..=4 => self.quoted(at + 8, qend, ps, true, &ictx),
            135 | 136 => {
                self.addr(at + 8, Family::V6, Origin::NdTarget, end, &ictx)?;
                Ok(UNKNOWN)
            }
            137 => {
                self.addr(at + 8, Family::V6, Origin::NdTarget, end, &ictx)?;
                self.addr(at + 24, Family::V6, Origin::NdTarget, end, &ictx)?;
                let mut o = at + 40;
                while o < end {
                    let (Some(t), Some(l)) = (self.u8_at(o, end), self.u8_at(o + 1, end)) else {
                        break;
                    };
                    if l == 0 {
                        return Err(DropReason::Malformed(Layer::Icmpv6));
                    }
                    let oend = (o + l as usize * 8).min(end);
                    if t == 4 {
                        // Redirected Header: a quoted packet.
                        self.quoted(o + 8, oend, ps, true, &ictx)?;
                    }
                    o += l as usize * 8;
                }
                Ok(UNKNOWN)
            }
            _ => Ok(UNKNOWN),
        }
    }

    /// The packet quoted in an ICMP error at `at`; returns the roles of the
    /// outer addresses.
    fn quoted(&mut self, at: usize, end: usize, outer: Pseudo, v6: bool, ctx: &Ctx) -> R<Roles> {
        let q = ctx.deeper(true)?;
        if at >= end {
            return Ok(UNKNOWN);
        }
        let qp = if v6 {
            self.ipv6(at, end, true, &q)?
        } else {
            self.ipv4(at, end, true, &q)?
        };
        let mut r = UNKNOWN;
        if self.same(outer.src, qp.dst) {
            r.src = self.side_of(qp.dst);
        }
        if self.same(outer.dst, qp.src) {
            r.dst = self.side_of(qp.src);
        }
        Ok(r)
    }

    fn side_of(&self, s: Option<usize>) -> Side {
        s.and_then(|i| self.out.slots.get(i))
            .map_or(Side::Unknown, |s| s.side)
    }

    fn same(&self, a: Option<usize>, b: Option<usize>) -> bool {
        let get = |s: Option<usize>| {
            s.and_then(|i| self.out.slots.get(i))
                .filter(|s| !s.truncated)
                .and_then(|s| self.p.get(s.range()))
        };
        match (get(a), get(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    // ------------------------------------------------------------- tunnels

    fn gre(&mut self, at: usize, end: usize, short: bool, ctx: &Ctx) -> R<Roles> {
        let (Some(flags), Some(ptype)) = (self.u16_at(at, end), self.u16_at(at + 2, end)) else {
            return if short {
                Ok(UNKNOWN)
            } else {
                Err(DropReason::Malformed(Layer::Gre))
            };
        };
        if flags & 7 != 0 || flags & 0x4000 != 0 {
            return Err(DropReason::UnknownTunnel);
        }
        let c = flags & 0x8000 != 0;
        let hlen =
            4 + 4 * (c as usize + (flags & 0x2000 != 0) as usize + (flags & 0x1000 != 0) as usize);
        let ck = if c {
            self.add_ck(at + 4, end, false, ctx)?
        } else {
            None
        };
        let g = ctx.deeper(false)?.with(ck, at, usize::MAX)?;
        let inner = at + hlen;
        if inner > end {
            return if short {
                Ok(UNKNOWN)
            } else {
                Err(DropReason::Malformed(Layer::Gre))
            };
        }
        match ptype {
            0x6558 => {
                if inner == end && short {
                    return Ok(UNKNOWN);
                }
                self.ether(inner, end, &g, false)?
            }
            0x0800 | 0x86dd => self.l3(ptype, inner, end, short, &g, false)?,
            _ => return Err(DropReason::UnknownTunnel),
        }
        Ok(UNKNOWN)
    }

    /// Teredo (RFC 4380): optional authentication and origin indication
    /// headers, then an IPv6 packet.
    fn teredo(&mut self, mut at: usize, end: usize, short: bool, ctx: &Ctx) -> R<()> {
        let t = ctx.deeper(false)?;
        loop {
            let Some(w) = self.u16_at(at, end) else {
                return if short || at >= end {
                    Ok(())
                } else {
                    Err(DropReason::Malformed(Layer::Tunnel))
                };
            };
            match w {
                1 => {
                    let (Some(id), Some(au)) = (self.u8_at(at + 2, end), self.u8_at(at + 3, end))
                    else {
                        return Ok(());
                    };
                    at += 13 + id as usize + au as usize;
                }
                0 => {
                    // Origin indication: port and IPv4 address, inverted.
                    self.emit(
                        at + 4,
                        Family::V4,
                        4,
                        32,
                        Origin::TeredoOrigin,
                        Side::Unknown,
                        end,
                        &t,
                    )?;
                    at += 8;
                }
                _ => break,
            }
        }
        match self.u8_at(at, end).map(|b| b >> 4) {
            Some(6) => {
                self.ipv6(at, end, short, &t)?;
                Ok(())
            }
            None => Ok(()),
            Some(_) => Err(DropReason::UnknownTunnel),
        }
    }

    fn vxlan(&mut self, at: usize, end: usize, ctx: &Ctx) -> R<()> {
        if at + 8 >= end {
            return Ok(());
        }
        let v = ctx.deeper(false)?;
        self.ether(at + 8, end, &v, false)
    }
}

/// Like [`dns::find_ecs`] for a message cut short: walk as far as the bytes
/// go and report every ECS option that starts inside them, with `len` the
/// address bytes actually present. Errors only for malformed contents.
fn ecs_partial(m: &[u8], out: &mut Vec<EcsField>) -> Result<(), DnsError> {
    out.clear();
    let u16_at = |at: usize| m.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (Some(qd), Some(an), Some(ns), Some(ar)) = (u16_at(4), u16_at(6), u16_at(8), u16_at(10))
    else {
        return Ok(());
    };
    let skip = |at: usize| match dns::skip_name(m, at) {
        Ok(a) => Ok(Some(a)),
        Err(DnsError::Truncated(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let mut at = 12;
    for _ in 0..qd {
        let Some(a) = skip(at)? else { return Ok(()) };
        at = a + 4;
    }
    let (an, ns, ar) = (an as usize, ns as usize, ar as usize);
    for i in 0..an + ns + ar {
        let Some(a) = skip(at)? else { return Ok(()) };
        let (Some(rtype), Some(rdlen)) = (u16_at(a), u16_at(a + 8)) else {
            return Ok(());
        };
        let rdata = a + 10;
        let end = rdata + rdlen as usize;
        if rtype == 41 && i >= an + ns {
            let mut o = rdata;
            while o < end {
                let (Some(code), Some(olen)) = (u16_at(o), u16_at(o + 2)) else {
                    return Ok(());
                };
                let data = o + 4;
                let oend = data + olen as usize;
                if oend > end {
                    return Err(DnsError::Truncated(o));
                }
                if code == 8 {
                    let (Some(family), Some(&prefix)) = (u16_at(data), m.get(data + 2)) else {
                        return Ok(());
                    };
                    let max = match family {
                        1 => 32,
                        2 => 128,
                        _ => return Err(DnsError::BadEcs(o)),
                    };
                    let full = (prefix as usize).div_ceil(8);
                    if olen < 4 || prefix > max || olen as usize - 4 != full {
                        return Err(DnsError::BadEcs(o));
                    }
                    let addr = data + 4;
                    let present = m.len().min(addr + full).saturating_sub(addr);
                    if present > 0 {
                        out.push(EcsField {
                            offset: addr,
                            family,
                            source_prefix: prefix,
                            len: present,
                        });
                    }
                }
                o = oend;
            }
        }
        at = end;
        if at >= m.len() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) fn ecs_partial_for_test(m: &[u8], out: &mut Vec<EcsField>) -> Result<(), DnsError> {
    ecs_partial(m, out)
}
