//! Packet locating and patching.
//!
//! [`locate`] walks one captured packet (link layer, VLAN/MPLS/PPPoE, IPv4 or
//! IPv6 with extension headers, tunnels, UDP/TCP/ICMP and the DNS payload)
//! and records the offset of every address field that has to be rewritten
//! ([`Slot`]) together with every checksum whose value depends on those bytes.
//! [`patch`] then writes a new value into one slot and updates each covering
//! checksum incrementally (RFC 1624), so a valid checksum stays valid and a
//! wrong one stays wrong by exactly the same amount. Nothing is ever
//! recomputed from scratch: a packet cut by snaplen has no payload to
//! recompute from, and a deliberately broken checksum must not be "fixed".
//!
//! # Why it is built this way
//! - **Fail closed.** A packet whose structure cannot be followed far enough
//!   to be sure every address was found is refused with a [`DropReason`]
//!   (stable names for statistics via [`DropReason::as_str`]). Running out of
//!   captured bytes is *not* a failure: whatever is present is rewritten.
//! - **Checksums as a tree.** Some checksums cover other checksums (the outer
//!   ICMP checksum covers the quoted UDP checksum, a GRE or Teredo UDP
//!   checksum covers the whole inner packet). Each checksum remembers the
//!   checksums whose region holds its field ("parents"); a change of a field
//!   is propagated up that tree, so every changed byte is accounted for once
//!   in every checksum that covers it.
//! - **Byte parity.** A slot may start at an odd offset relative to the start
//!   of the region a checksum sums over (ECS addresses, Teredo payloads,
//!   TCP options); each coverage records that parity.
//! - **No allocation** once a [`Located`] has been used: everything lives in
//!   reused `Vec`s and fixed-size arrays.
//!
//! # Choices worth knowing
//! - *Partial addresses.* An address only partly inside the captured bytes
//!   still leaks; it is reported as a slot with [`Slot::truncated`] set,
//!   `len` = bytes present and `prefix_bits = 8 * len`. The caller rewrites it
//!   as a prefix (zero-extend, map, cut back), which for prefix-preserving
//!   techniques equals the first bytes of the full mapped address.
//! - *Truncated DNS.* A UDP/TCP DNS message cut by snaplen, by the end of an
//!   ICMP quote or by IP fragmentation (first fragment) is walked as far as it
//!   goes; an ECS option found in the captured part is rewritten (possibly
//!   partially). Such a packet is kept. A *complete* message that cannot be
//!   walked is dropped ([`DropReason::UnparsedDns`]).
//! - *UDP checksum zero* means "no checksum" and stays zero, for IPv4 and
//!   also for IPv6 (where RFC 6935 allows it for tunnels); an update whose
//!   result is zero is written as `0xffff`.
//! - *Sides.* UDP/TCP with port 53, 853 or 443 on exactly one end: that end is
//!   the server. Both ends on DNS ports: the QR bit of a plain DNS header
//!   decides (only when one end is port 53, since 853/443 carry TLS). An ICMP
//!   error's outer source takes the side of the quoted destination when the
//!   two addresses are equal (and the outer destination that of the quoted
//!   source); otherwise it is `Unknown`. Tunnel endpoints, routing-header
//!   addresses not used as final destination, ND targets, ARP and link
//!   addresses are `Unknown` (always rewritten).
//! - *Fragments.* Every fragment's addresses are found; transport headers
//!   only in the first fragment (its ports still decide the sides). When the
//!   outermost IP header is a fragment, [`Located::frag`] describes it and
//!   no DNS message outside an ICMP quote is walked, so no ECS slot is
//!   reported: an ECS option may lie in a later fragment or straddle two,
//!   and [`crate::defrag`] rewrites it after reassembly (a slot here would
//!   wash the first fragment's part twice). A *tunnelled* fragment (an inner
//!   IP header with MF or an offset) is not reassembled: when it could carry
//!   DNS (UDP, UDP-Lite or TCP with port 53, a later fragment of one of
//!   those, a further tunnel, or IPv6 extension headers hiding the protocol)
//!   the packet is dropped ([`DropReason::TunnelledFragment`]).
//! - *DNS over TCP.* Each segment's payload is walked as whole
//!   length-prefixed messages; one that is not is dropped
//!   ([`DropReason::TcpDnsSplit`]). With [`Located::follow_tcp`] set (the
//!   pipeline sets it), an outermost segment of port 53 is described in
//!   [`Located::tcp`] instead and its DNS is left to [`crate::tcpdns`],
//!   which follows the stream; a segment cut by the snapshot length is
//!   still walked here, as far as it goes.
//! - Not handled (known leaks, not dropped): IPv4 ICMP multi-part extensions
//!   (RFC 5837 interface addresses), IPv6 Router Advertisement options (prefix,
//!   RDNSS), MLD source lists. Reverse names are not slots: DNS messages
//!   that may hold one are listed in [`Located::names`] for
//!   [`crate::revwash`].

mod fast;
mod walk;

pub use fast::Plain;
pub(crate) use walk::is_mdns;

use std::ops::Range;

use crate::dns::EcsField;
use crate::wash::Side;

/// Address family of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (4-byte address).
    V4,
    /// IPv6 (16-byte address).
    V6,
}

impl Family {
    /// Bytes in a full address of this family.
    pub fn bytes(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
}

/// Where an address slot was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Source or destination of the outermost IP header.
    Ip,
    /// Source or destination of a tunnelled IP header.
    InnerIp,
    /// Source or destination of an IP header quoted in an ICMP error.
    QuotedIp,
    /// ARP/RARP sender or target protocol address.
    Arp,
    /// EDNS Client Subnet address (a prefix of `len` bytes).
    Ecs,
    /// An address of an IPv6 routing header (types 0, 2 and 4).
    Routing,
    /// The MIPv6 Home Address destination option.
    HomeAddress,
    /// ICMPv6 ND target / redirect destination, ICMPv4 redirect gateway.
    NdTarget,
    /// IPv4 Record Route or Timestamp option entry.
    IpOption,
    /// MPTCP ADD_ADDR option address.
    MptcpAddr,
    /// Teredo origin indication: the client's IPv4 address, every bit
    /// inverted (RFC 4380). Invert, map, invert back.
    TeredoOrigin,
    /// Link-layer address of a Linux cooked capture on an IP tunnel device
    /// (the tunnel endpoint's IP address, at most 8 bytes stored).
    LinkLayer,
    /// A or AAAA RDATA of a DNS record (reported only with
    /// [`Located::answers`]).
    Answer,
    /// A client address inside an EDNS option (Cisco Umbrella).
    EdnsAddr,
}

/// Maximum nesting of tunnels and ICMP quotes.
pub const MAX_DEPTH: u8 = 4;
/// Maximum number of checksum regions enclosing one byte.
const MAX_REGIONS: usize = 8;
/// Maximum number of checksums covering one slot.
const MAX_COVER: usize = MAX_REGIONS + 3;

/// One checksum covering some bytes, with the parity of those bytes relative
/// to the start of the checksummed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Cover {
    ck: u16,
    odd: bool,
}

/// One address field to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset in the packet.
    pub offset: usize,
    /// Address family.
    pub family: Family,
    /// Bytes present: 4 or 16 for full addresses, `ceil(prefix/8)` for ECS,
    /// fewer when cut by the end of the capture.
    pub len: u8,
    /// Meaningful bits: 32/128 for full addresses, the ECS source prefix, or
    /// `8 * len` for a truncated slot.
    pub prefix_bits: u8,
    /// DNS role of the address.
    pub side: Side,
    /// Where it was found.
    pub origin: Origin,
    /// The field is cut by the end of the captured bytes.
    pub truncated: bool,
    cover: [Cover; MAX_COVER],
    ncover: u8,
}

impl Slot {
    /// The byte range of the slot in the packet.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len as usize
    }

    /// Indexes into [`Located::checksums`] of the checksums directly covering
    /// this slot (checksums covering those are found through their parents).
    pub fn checksums(&self) -> impl Iterator<Item = usize> + '_ {
        self.cover[..self.ncover as usize]
            .iter()
            .map(|c| c.ck as usize)
    }
}

/// An EDNS client identifier to rewrite ([`crate::edns`]): not an
/// address, any length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Byte offset in the packet.
    pub offset: usize,
    /// Bytes present.
    pub len: usize,
    /// How it is rewritten.
    pub kind: crate::edns::IdKind,
    cover: [Cover; MAX_COVER],
    ncover: u8,
}

impl Field {
    /// The byte range of the field in the packet.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// A checksum field that depends on some slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    /// Offset of the 2-byte field in the packet.
    pub field: usize,
    /// UDP rules: zero means "no checksum", a computed zero is sent as 0xffff.
    pub udp: bool,
    parents: [Cover; MAX_REGIONS],
    nparents: u8,
}

impl Checksum {
    /// Indexes of the checksums whose data includes this checksum's field.
    pub fn parents(&self) -> impl Iterator<Item = usize> + '_ {
        self.parents[..self.nparents as usize]
            .iter()
            .map(|c| c.ck as usize)
    }
}

/// Identifies the fragments of one IP datagram (RFC 791, RFC 8200): family,
/// the addresses as captured (before any rewriting), the identification and
/// the protocol (IPv6: the fragment header's next header). IPv4 addresses
/// occupy the first 4 bytes of `src`/`dst`, the rest is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Address family of the fragmented IP header.
    pub family: Family,
    /// Source address bytes.
    pub src: [u8; 16],
    /// Destination address bytes.
    pub dst: [u8; 16],
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Protocol / next header of the fragmentable part.
    pub protocol: u8,
}

/// The outermost IP header of a packet is a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragInfo {
    /// Which datagram the fragment belongs to.
    pub key: FragKey,
    /// Fragment offset in bytes.
    pub offset: u32,
    /// More fragments follow (MF / M flag).
    pub more: bool,
    /// Captured fragment payload bytes (after the IPv4 header or the IPv6
    /// fragment header) in the packet.
    pub data: Range<usize>,
    /// Fragment payload length claimed by the IP header; more than
    /// `data.len()` when the capture cut the packet.
    pub len: u32,
    /// First fragment of UDP (or UDP-Lite): offset of the UDP checksum field
    /// in the packet, if captured.
    pub udp_checksum: Option<usize>,
    /// Offset of the fragment's IP header in the packet.
    pub ip: usize,
}

impl FragInfo {
    /// The capture (snaplen) cut the fragment's payload.
    pub fn cut(&self) -> bool {
        (self.data.len() as u64) < self.len as u64
    }
}

/// A DNS message that may hold a reverse name (it has an `arpa` label), for
/// [`crate::revwash`]: where it is and which checksums cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameSite {
    /// Start of the message (after a TCP length prefix).
    pub start: usize,
    /// End of the message, or of the captured bytes when cut.
    pub end: usize,
    /// The whole message was captured.
    pub complete: bool,
    /// Inside an ICMP quote.
    pub quoted: bool,
    /// Carried by TCP.
    pub tcp: bool,
    /// Tunnel and quote nesting depth (0: the outermost IP header).
    pub depth: u8,
    /// The outermost IP header: offset and family.
    pub ip: Option<(usize, Family)>,
    /// Checksums summing over the message: index, start and end of the data
    /// each one sums.
    regions: [(u16, u32, u32); MAX_REGIONS],
    nreg: u8,
}

impl NameSite {
    /// Checksum regions (index into [`Located::checksums`], base, end).
    pub fn regions(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.regions[..self.nreg as usize].iter().map(|&(c, b, e)| {
            let end = if e == u32::MAX {
                usize::MAX
            } else {
                e as usize
            };
            (c as usize, b as usize, end)
        })
    }
}

/// What [`locate`] found in one packet. Reuse it across packets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Located {
    /// Every address field to rewrite.
    pub slots: Vec<Slot>,
    /// Every checksum field that depends on a slot.
    pub checksums: Vec<Checksum>,
    /// Complete DNS messages found (UDP payload, or each TCP-framed message
    /// without its length prefix); quoted (ICMP) messages are not listed.
    pub dns: Vec<Range<usize>>,
    /// Index into `slots` of the DNS client's address of the innermost
    /// non-quoted packet whose ports make it DNS (53, 853 or 443).
    pub client: Option<usize>,
    /// Some IP header (not quoted) is a fragment.
    pub is_fragment: bool,
    /// The outermost IP header is a fragment (and its header and, for
    /// IPv6, its fragment header were captured).
    pub frag: Option<FragInfo>,
    /// The packet is a TCP segment of DNS (port 53) in the outermost IP
    /// header, and [`Located::follow_tcp`] is set: its DNS payload is left
    /// to [`crate::tcpdns`] (no DNS slot is reported for it).
    pub tcp: Option<TcpSeg>,
    /// Leave the DNS payload of outermost TCP segments to the stream
    /// reassembler ([`crate::tcpdns`]) instead of walking each segment on
    /// its own. Kept by [`Located::clear`].
    pub follow_tcp: bool,
    /// EDNS client identifiers ([`crate::edns`]).
    pub fields: Vec<Field>,
    /// Option, kept by [`Located::clear`]: also report the A and AAAA
    /// RDATA of DNS messages as slots ([`Origin::Answer`]).
    pub answers: bool,
    /// Option, kept by [`Located::clear`]: ports walked as DNS besides 53
    /// (`--dns-port`).
    pub dns_ports: Vec<u16>,
    /// DNS messages that may hold reverse names (every cut one too).
    pub names: Vec<NameSite>,
    ecs: Vec<EcsField>,
    found: crate::edns::Found,
}

impl Located {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget the previous packet, keeping the allocations.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.checksums.clear();
        self.dns.clear();
        self.client = None;
        self.is_fragment = false;
        self.frag = None;
        self.tcp = None;
        self.fields.clear();
        self.names.clear();
        self.ecs.clear();
        self.found.clear();
    }
}

/// One direction of a TCP connection: addresses (as captured, before any
/// rewriting; IPv4 in the first 4 bytes) and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Address family.
    pub v6: bool,
    /// Source address bytes.
    pub src: [u8; 16],
    /// Destination address bytes.
    pub dst: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl FlowKey {
    /// The other direction of the same connection.
    pub fn reverse(&self) -> FlowKey {
        FlowKey {
            v6: self.v6,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// A DNS-over-TCP segment as found by [`locate`] (offsets relative to the
/// packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSeg {
    /// Connection and direction.
    pub key: FlowKey,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags` has ACK).
    pub ack: u32,
    /// The flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    pub flags: u8,
    /// Offset of the TCP header.
    pub header: usize,
    /// Offset of the checksum field, if captured.
    pub checksum: Option<usize>,
    /// Captured payload bytes.
    pub payload: Range<usize>,
    /// The capture cut the segment (its payload is longer than captured);
    /// its DNS was then walked per segment, as far as the bytes go.
    pub cut: bool,
    /// The IP header carrying the segment (offset, family) when it is the
    /// outermost one under a link layer without a length field of its own:
    /// the segment may then change length ([`resize_tcp`]).
    pub ip: Option<(usize, Family)>,
}

/// The layer a malformed packet failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// Link-layer header (Ethernet, VLAN tags, SLL, null, PPPoE, MPLS).
    Link,
    /// ARP.
    Arp,
    /// IPv4 header or options.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// IPv6 extension header.
    Ipv6Ext,
    /// UDP or UDP-Lite.
    Udp,
    /// TCP.
    Tcp,
    /// ICMPv4.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// GRE.
    Gre,
    /// Teredo or VXLAN encapsulation.
    Tunnel,
}

/// Why a packet is refused. Dropping is the safe default: the packet may hold
/// an address that would otherwise pass through unwashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The capture's link type is not supported.
    #[error("unsupported link type")]
    UnsupportedLinktype,
    /// Not IPv4, IPv6 or ARP for IP (LLDP, 802.3 frames, IPX, ...).
    #[error("not an IP packet")]
    NonIp,
    /// A header's fields are inconsistent.
    #[error("malformed {0:?} header")]
    Malformed(Layer),
    /// A tunnel whose payload is not understood (GRE with another protocol,
    /// EtherIP, L2TP, MPLS-in-IP, GENEVE, GTP-U).
    #[error("unknown tunnel payload")]
    UnknownTunnel,
    /// DNS over TCP whose segment is not a whole number of messages.
    #[error("DNS message split across TCP segments")]
    TcpDnsSplit,
    /// A complete DNS message that cannot be walked (may hide ECS).
    #[error("DNS message could not be parsed")]
    UnparsedDns,
    /// IPv6 routing header of a type that is not understood, or several.
    #[error("unsupported IPv6 routing header")]
    RoutingHeader,
    /// IPv4 loose or strict source route option.
    #[error("IPv4 source route option")]
    SourceRoute,
    /// IPv6 mobility header of a type that is not understood.
    #[error("unsupported IPv6 mobility header")]
    MobilityHeader,
    /// Tunnels or quotes nested deeper than [`MAX_DEPTH`].
    #[error("nesting too deep")]
    TooDeep,
    /// An IP fragment inside a tunnel that could carry DNS (its later
    /// fragments may hold an ECS option; tunnelled fragments are not
    /// reassembled).
    #[error("fragment inside a tunnel")]
    TunnelledFragment,
}

impl DropReason {
    /// A stable snake_case name, for statistics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::UnsupportedLinktype => "unsupported_linktype",
            DropReason::NonIp => "non_ip",
            DropReason::Malformed(l) => match l {
                Layer::Link => "malformed_link",
                Layer::Arp => "malformed_arp",
                Layer::Ipv4 => "malformed_ipv4",
                Layer::Ipv6 => "malformed_ipv6",
                Layer::Ipv6Ext => "malformed_ipv6_ext",
                Layer::Udp => "malformed_udp",
                Layer::Tcp => "malformed_tcp",
                Layer::Icmp => "malformed_icmp",
                Layer::Icmpv6 => "malformed_icmpv6",
                Layer::Gre => "malformed_gre",
                Layer::Tunnel => "malformed_tunnel",
            },
            DropReason::UnknownTunnel => "unknown_tunnel",
            DropReason::TcpDnsSplit => "tcp_dns_split",
            DropReason::UnparsedDns => "unparsed_dns",
            DropReason::RoutingHeader => "routing_header",
            DropReason::SourceRoute => "ipv4_source_route",
            DropReason::MobilityHeader => "mobility_header",
            DropReason::TooDeep => "nesting_too_deep",
            DropReason::TunnelledFragment => "tunnelled_fragment",
        }
    }

    /// Every reason name [`DropReason::as_str`] can return.
    pub const ALL_NAMES: &'static [&'static str] = &[
        "unsupported_linktype",
        "non_ip",
        "malformed_link",
        "malformed_arp",
        "malformed_ipv4",
        "malformed_ipv6",
        "malformed_ipv6_ext",
        "malformed_udp",
        "malformed_tcp",
        "malformed_icmp",
        "malformed_icmpv6",
        "malformed_gre",
        "malformed_tunnel",
        "unknown_tunnel",
        "tcp_dns_split",
        "unparsed_dns",
        "routing_header",
        "ipv4_source_route",
        "mobility_header",
        "nesting_too_deep",
        "tunnelled_fragment",
    ];
}

/// Link types understood by [`locate`].
pub fn linktype_supported(linktype: u32) -> bool {
    matches!(
        linktype,
        0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276
    )
}

/// Find every address slot and checksum in `pkt` (captured bytes of a
/// packet with the given pcap link type). `out` is cleared first; on error
/// it is left empty.
pub fn locate(linktype: u32, pkt: &[u8], out: &mut Located) -> Result<(), DropReason> {
    out.clear();
    if fast::plain(linktype, pkt, out) {
        return Ok(());
    }
    locate_general(linktype, pkt, out)
}

/// The shortcut behind [`locate`] alone: true when it located the packet
/// (exactly as the walker would); false, with `out` empty, when the packet
/// is left to the walker. For tests.
#[doc(hidden)]
pub fn locate_plain(linktype: u32, pkt: &[u8], out: &mut Located) -> bool {
    out.clear();
    fast::plain(linktype, pkt, out)
}

/// The shortcut's classification alone, for callers that rewrite plain
/// packets themselves (with [`patch_plain`]): `Some` when `pkt` is a plain
/// UDP packet, and then [`locate`] would report exactly its two addresses
/// and checksums. `out` is cleared; it serves as scratch space.
pub fn classify_plain(linktype: u32, pkt: &[u8], out: &mut Located) -> Option<Plain> {
    out.clear();
    fast::classify(linktype, pkt, &mut out.found, out.answers, &out.dns_ports)
}

/// [`patch`] for an address of a plain packet: write `new` over `old` at
/// `at` (one of `pl.addr`) and update the IPv4 header and UDP checksums.
#[inline]
pub fn patch_plain<const N: usize>(
    pkt: &mut [u8],
    pl: &Plain,
    at: usize,
    old: &[u8; N],
    new: &[u8; N],
) {
    let Some(cur) = pkt.get_mut(at..at + N) else {
        return;
    };
    cur.copy_from_slice(new);
    let d = u32::from(delta_even(old, new));
    if let Some(f) = pl.ip_ck {
        update_checksum(pkt, f, false, d);
    }
    update_checksum(pkt, pl.udp_ck, true, d);
}

/// [`locate`] without the shortcut for plain UDP packets: the general
/// walker alone. For tests that compare the two.
#[doc(hidden)]
pub fn locate_general(linktype: u32, pkt: &[u8], out: &mut Located) -> Result<(), DropReason> {
    out.clear();
    let r = walk::Walker::new(pkt, out).link(linktype);
    if r.is_err() {
        out.clear();
    }
    r
}

/// Walk one DNS message (no TCP length prefix) on its own: the DNS slots
/// (ECS addresses and whatever else the walker rewrites inside DNS) with
/// offsets relative to `msg`, as [`locate`] finds them in a UDP payload.
/// `complete`: false for a message known to be cut short (walked as far as
/// the bytes go). `out` is cleared first; on error it is left empty.
pub fn locate_dns(msg: &[u8], complete: bool, out: &mut Located) -> Result<(), DropReason> {
    out.clear();
    let r = walk::Walker::new(msg, out).dns_message(complete);
    if r.is_err() {
        out.clear();
    }
    r
}

/// Write `new` at `at` in `pkt`, bytes covered by the one checksum whose
/// field is at `field` and whose data starts at `base` (a TCP checksum
/// over a payload), updating it incrementally (RFC 1624).
pub fn patch_covered(pkt: &mut [u8], at: usize, new: &[u8], field: Option<usize>, base: usize) {
    let Some(cur) = pkt.get_mut(at..at + new.len()) else {
        return;
    };
    if cur == new {
        return;
    }
    let old = cur.to_vec();
    cur.copy_from_slice(new);
    if let Some(f) = field {
        let odd = at.saturating_sub(base) % 2 == 1;
        update_checksum(pkt, f, false, delta(&old, new, odd));
    }
}

/// Write `new` into slot `slot` of `pkt` and update every checksum covering
/// it, including checksums covering those checksums. `new` must be as long
/// as the slot (extra bytes are ignored, a shorter value only replaces its
/// own length). Out-of-range slots are ignored.
pub fn patch(pkt: &mut [u8], loc: &Located, slot: usize, new: &[u8]) {
    let Some(s) = loc.slots.get(slot) else {
        return;
    };
    let n = (s.len as usize).min(new.len()).min(16);
    let Some(cur) = pkt.get_mut(s.offset..s.offset + n) else {
        return;
    };
    let mut old = [0u8; 16];
    old[..n].copy_from_slice(cur);
    cur.copy_from_slice(&new[..n]);
    // One sum serves every covering checksum: odd alignment is the same sum
    // byte-swapped (RFC 1071).
    let even = delta_even(&old[..n], &new[..n]);
    for c in &s.cover[..s.ncover as usize] {
        let d = if c.odd { even.swap_bytes() } else { even };
        apply(pkt, loc, c.ck as usize, u32::from(d), 0);
    }
}

/// Write `new` into field `field` of `pkt` (as long as the field; extra
/// bytes are ignored) and update every checksum covering it, as [`patch`]
/// does for a slot.
pub fn patch_field(pkt: &mut [u8], loc: &Located, field: usize, new: &[u8]) {
    let Some(f) = loc.fields.get(field) else {
        return;
    };
    let n = f.len.min(new.len());
    let Some(cur) = pkt.get_mut(f.offset..f.offset + n) else {
        return;
    };
    // In even-sized pieces, so the sums cannot overflow.
    let mut sum = 0u32;
    for (o, w) in cur.chunks(4096).zip(new[..n].chunks(4096)) {
        sum += u32::from(delta_even(o, w));
    }
    let even = fold(sum);
    cur.copy_from_slice(&new[..n]);
    for c in &f.cover[..f.ncover as usize] {
        let d = if c.odd { even.swap_bytes() } else { even };
        apply(pkt, loc, c.ck as usize, u32::from(d), 0);
    }
}

/// One's complement sum of the change from `old` to `new` (`~m + m'` of RFC
/// 1624) with the first byte as the high byte of a word, folded into
/// 1..=0xffff (never 0, so both zeros of one's complement agree).
#[inline]
fn delta_even(old: &[u8], new: &[u8]) -> u16 {
    // Starting at 0xffff (a zero) keeps the sum positive.
    let mut sum = 0xffffu32;
    let mut o = old.chunks_exact(2);
    let mut n = new.chunks_exact(2);
    for (a, b) in (&mut o).zip(&mut n) {
        sum += (0xffff - u32::from(u16::from_be_bytes([a[0], a[1]])))
            + u32::from(u16::from_be_bytes([b[0], b[1]]));
    }
    if let (Some(&a), Some(&b)) = (o.remainder().first(), n.remainder().first()) {
        sum += (0xffff - (u32::from(a) << 8)) + (u32::from(b) << 8);
    }
    fold(sum)
}

/// [`delta_even`] for data whose first byte is the high byte of a word
/// unless `odd`.
fn delta(old: &[u8], new: &[u8], odd: bool) -> u32 {
    let d = delta_even(old, new);
    u32::from(if odd { d.swap_bytes() } else { d })
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Add the change `d` to checksum `ck` (RFC 1624 eqn. 3) and propagate the
/// change of its field to the checksums covering it.
fn apply(pkt: &mut [u8], loc: &Located, ck: usize, d: u32, depth: usize) {
    let Some(c) = loc.checksums.get(ck) else {
        return;
    };
    if depth > MAX_COVER {
        return;
    }
    let Some((hc, nc)) = update_checksum(pkt, c.field, c.udp, d) else {
        return;
    };
    let (ob, nb) = (hc.to_be_bytes(), nc.to_be_bytes());
    for p in &c.parents[..c.nparents as usize] {
        apply(pkt, loc, p.ck as usize, delta(&ob, &nb, p.odd), depth + 1);
    }
}

/// Add the change `d` to the checksum field at `field`; `udp`: zero stays
/// zero ("no checksum") and a result of zero is written as 0xffff. Returns
/// the old and new values when the field changed.
#[inline]
fn update_checksum(pkt: &mut [u8], field: usize, udp: bool, d: u32) -> Option<(u16, u16)> {
    let f = pkt.get_mut(field..field + 2)?;
    let hc = u16::from_be_bytes([f[0], f[1]]);
    // A change of zero (either zero of one's complement) leaves the field
    // as it is: eqn. 3 would turn a stored 0xffff into 0x0000.
    if (udp && hc == 0) || fold(d) == 0xffff {
        return None;
    }
    let mut nc = !fold(!hc as u32 + fold(d) as u32);
    if udp && nc == 0 {
        nc = 0xffff;
    }
    if nc == hc {
        return None;
    }
    f.copy_from_slice(&nc.to_be_bytes());
    Some((hc, nc))
}

/// Write `new` over the bytes of name site `site` starting at `at` (same
/// length) and update every checksum covering them, with parity relative
/// to each checksum's data and only for bytes inside its data (UDP-Lite
/// coverage). Out-of-range writes are ignored.
pub fn patch_site(pkt: &mut [u8], loc: &Located, site: usize, at: usize, new: &[u8]) {
    let Some(s) = loc.names.get(site) else {
        return;
    };
    let Some(cur) = pkt.get(at..at + new.len()) else {
        return;
    };
    let mut sums = [0u64; MAX_REGIONS];
    for (k, (&o, &n)) in cur.iter().zip(new).enumerate() {
        if o == n {
            continue;
        }
        let k = at + k;
        for (i, (_, base, end)) in s.regions().enumerate() {
            if k >= base && k < end {
                let shift = if (k - base) % 2 == 0 { 8 } else { 0 };
                sums[i] += u64::from(0xffff - (u32::from(o) << shift)) + (u64::from(n) << shift);
            }
        }
    }
    pkt[at..at + new.len()].copy_from_slice(new);
    for (i, (ck, _, _)) in s.regions().enumerate() {
        if sums[i] != 0 {
            apply(pkt, loc, ck, u32::from(fold64(sums[i])), 0);
        }
    }
}

fn fold64(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// One's complement sum of `b` (an odd last byte is the high byte of a
/// word), folded.
fn sum16(b: &[u8]) -> u16 {
    let mut s = 0u64;
    let mut c = b.chunks_exact(2);
    for w in &mut c {
        s += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let Some(&x) = c.remainder().first() {
        s += u64::from(x) << 8;
    }
    fold64(s)
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Why [`resize_site`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeError {
    /// Not a whole UDP message directly over the outermost IP header of a
    /// link layer without its own length field (TCP, ICMP quote, tunnel,
    /// UDP-Lite, PPPoE, MPLS, a cut message, lengths that do not add up).
    NotPlain,
    /// A length would exceed 65,535.
    TooLong,
}

/// The link layer of `linktype` reaches the IP header at `ip` without a
/// length field of its own (Ethernet and VLAN tags, Linux SLL and SLL2,
/// raw IP, null/loopback): IP lengths alone say how long the packet is.
pub(crate) fn plain_link(linktype: u32, pkt: &[u8], ip: usize) -> bool {
    match linktype {
        1 => ip >= 2 && matches!(be16(pkt, ip - 2), Some(0x0800 | 0x86dd)),
        113 => ip == 16,
        276 => ip == 20,
        101 | 12 | 14 | 228 | 229 => ip == 0,
        0 | 108 => ip == 4,
        _ => false,
    }
}

/// The TCP segment `pkt`, located as `seg`, with its payload from `from`
/// to its end replaced by `new`: the IPv4 total length (and header
/// checksum) or IPv6 payload length follow, and the TCP checksum is
/// adjusted by the change of everything it sums (the pseudo-header length
/// and the segment), so a valid checksum stays valid and a wrong one stays
/// exactly as wrong. The payload must end where the IP datagram ends;
/// bytes after it (Ethernet padding) are kept.
pub fn resize_tcp(
    pkt: &[u8],
    seg: &TcpSeg,
    from: usize,
    new: &[u8],
) -> Result<Vec<u8>, ResizeError> {
    use ResizeError::*;
    let (ip, family) = seg.ip.ok_or(NotPlain)?;
    let (h, end) = (seg.header, seg.payload.end);
    let ck = seg.checksum.ok_or(NotPlain)?;
    if seg.cut || from < seg.payload.start || end > pkt.len() || ck + 2 > end || h < ip {
        return Err(NotPlain);
    }
    let grow = |v: usize| {
        (v + new.len())
            .checked_sub(end - from)
            .filter(|&x| x <= 0xffff)
    };
    let len_field = match family {
        Family::V4 => {
            let tl = be16(pkt, ip + 2).ok_or(NotPlain)? as usize;
            if pkt.get(ip + 9) != Some(&6) || tl == 0 || ip + tl != end {
                return Err(NotPlain);
            }
            ip + 2
        }
        Family::V6 => {
            let pl = be16(pkt, ip + 4).ok_or(NotPlain)? as usize;
            if pl == 0 || ip + 40 + pl != end {
                return Err(NotPlain);
            }
            ip + 4
        }
    };
    let old_ip = be16(pkt, len_field).ok_or(NotPlain)?;
    let new_ip = grow(old_ip as usize).ok_or(TooLong)? as u16;
    let old_tcp = end - h;
    let new_tcp = grow(old_tcp).ok_or(TooLong)?;
    let mut v = Vec::with_capacity(pkt.len() + new.len());
    v.extend_from_slice(&pkt[..from]);
    v.extend_from_slice(new);
    v.extend_from_slice(&pkt[end..]);
    v[len_field..len_field + 2].copy_from_slice(&new_ip.to_be_bytes());
    if family == Family::V4 {
        let d = delta_even(&old_ip.to_be_bytes(), &new_ip.to_be_bytes());
        update_checksum(&mut v, ip + 10, false, u32::from(d));
    }
    // Everything the TCP checksum sums, before and after: the
    // pseudo-header's length and the segment (its checksum field is in
    // both and cancels out).
    let before = u32::from(sum16(&pkt[h..end])) + old_tcp as u32;
    let after = u32::from(sum16(&v[h..h + new_tcp])) + new_tcp as u32;
    let d = u32::from(0xffff - fold(before)) + u32::from(fold(after));
    update_checksum(&mut v, ck, false, u32::from(fold(d)));
    Ok(v)
}

/// The packet with the DNS message of name site `site` replaced by `new`,
/// of another length: the UDP length, the IPv4 total length (and header
/// checksum) or IPv6 payload length follow, and the UDP checksum is
/// adjusted by the change of everything it sums, so a valid checksum stays
/// valid and a wrong one stays exactly as wrong (a zero one stays zero).
/// Bytes after the IP datagram (Ethernet padding) are kept.
pub fn resize_site(
    pkt: &[u8],
    linktype: u32,
    loc: &Located,
    site: usize,
    new: &[u8],
) -> Result<Vec<u8>, ResizeError> {
    use ResizeError::*;
    let s = loc.names.get(site).ok_or(NotPlain)?;
    if !s.complete || s.quoted || s.tcp || s.depth != 0 || s.start < 8 || s.end > pkt.len() {
        return Err(NotPlain);
    }
    let (ip, family) = s.ip.ok_or(NotPlain)?;
    if !plain_link(linktype, pkt, ip) {
        return Err(NotPlain);
    }
    let u = s.start - 8;
    let ulen = be16(pkt, u + 4).ok_or(NotPlain)? as usize;
    if ulen == 0 || u + ulen != s.end {
        return Err(NotPlain);
    }
    let ck = loc
        .checksums
        .iter()
        .find(|c| c.field == u + 6)
        .ok_or(NotPlain)?;
    if !ck.udp || ck.nparents != 0 {
        return Err(NotPlain);
    }
    let old_len = s.end - s.start;
    let grow = |v: usize| {
        (v + new.len())
            .checked_sub(old_len)
            .filter(|&x| x <= 0xffff)
    };
    let new_ulen = grow(ulen).ok_or(TooLong)?;
    let (len_field, new_iplen) = match family {
        Family::V4 => {
            if pkt.get(ip + 9) != Some(&17) {
                return Err(NotPlain);
            }
            let tl = be16(pkt, ip + 2).ok_or(NotPlain)? as usize;
            if tl == 0 || ip + tl != s.end {
                return Err(NotPlain);
            }
            (ip + 2, grow(tl).ok_or(TooLong)?)
        }
        Family::V6 => {
            let pl = be16(pkt, ip + 4).ok_or(NotPlain)? as usize;
            if pl == 0 || ip + 40 + pl != s.end {
                return Err(NotPlain);
            }
            (ip + 4, grow(pl).ok_or(TooLong)?)
        }
    };
    let mut v = Vec::with_capacity(pkt.len() + new.len());
    v.extend_from_slice(&pkt[..s.start]);
    v.extend_from_slice(new);
    v.extend_from_slice(&pkt[s.end..]);
    let old_ip = [pkt[len_field], pkt[len_field + 1]];
    let new_ip = (new_iplen as u16).to_be_bytes();
    v[len_field..len_field + 2].copy_from_slice(&new_ip);
    if family == Family::V4 {
        update_checksum(
            &mut v,
            ip + 10,
            false,
            u32::from(delta_even(&old_ip, &new_ip)),
        );
    }
    let nu = (new_ulen as u16).to_be_bytes();
    v[u + 4..u + 6].copy_from_slice(&nu);
    // The UDP checksum sums the length twice (pseudo-header and header)
    // and the payload.
    let dl = u32::from(0xffff - ulen as u16) + u32::from(new_ulen as u16);
    let d = 2 * dl + u32::from(0xffff - sum16(&pkt[s.start..s.end])) + u32::from(sum16(new));
    update_checksum(&mut v, u + 6, true, u32::from(fold(d)));
    Ok(v)
}

#[cfg(test)]
mod tests;

/// True when a UDP or TCP packet between ports `s` and `d` is walked as
/// DNS: port 53, or one of `extra` (`--dns-port`).
#[inline]
pub fn dns_ports(s: u16, d: u16, extra: &[u16]) -> bool {
    s == 53 || d == 53 || (!extra.is_empty() && extra.iter().any(|&p| p == s || p == d))
}
