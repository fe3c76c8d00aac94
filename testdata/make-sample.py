#!/usr/bin/env python3
"""Write testdata/sample-dns.pcap: a small DNS capture made by this project.

Every address is from the documentation ranges (RFC 5737, RFC 3849). It holds
the cases a washer must get right: DNS over UDP and TCP, IPv4 and IPv6,
802.1Q, EDNS Client Subnet in a query and its response, an ICMP port
unreachable quoting a DNS response, an ICMPv6 error, ARP, an IPv4 fragment
pair, a zero IPv4 UDP checksum, a deliberately wrong UDP checksum, and a
non-IP frame. Checksums are computed here, independently of ipwash.

Usage: python3 testdata/make-sample.py [OUT]
"""
import ipaddress
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a):
    return ipaddress.IPv4Address(a).packed


def ip6(a):
    return ipaddress.IPv6Address(a).packed


def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns(qid, qname, qtype=1, response=False, ecs=None, answer=None):
    flags = 0x8180 if response else 0x0100
    ar = 1 if ecs is not None else 0
    an = 1 if answer else 0
    m = struct.pack("!HHHHHH", qid, flags, 1, an, 0, ar)
    m += name(qname) + struct.pack("!HH", qtype, 1)
    if answer:
        m += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, len(answer)) + answer
    if ecs is not None:
        fam, prefix, addr = ecs
        raw = (ip4(addr) if fam == 1 else ip6(addr))[: (prefix + 7) // 8]
        opt = struct.pack("!HHHBB", 8, 4 + len(raw), fam, prefix, 0) + raw
        m += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt
    return m


def udp4(src, dst, sport, dport, payload, zero=False, corrupt=False):
    ln = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, ln, 0)
    c = 0
    if not zero:
        pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, ln)
        c = csum(pseudo + hdr + payload) or 0xFFFF
        if corrupt:
            c ^= 0x1234
    return struct.pack("!HHHH", sport, dport, ln, c) + payload


def udp6(src, dst, sport, dport, payload):
    ln = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, ln, 0)
    pseudo = ip6(src) + ip6(dst) + struct.pack("!IxxxB", ln, 17)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, ln, c) + payload


def tcp4(src, dst, sport, dport, seq, ack, flags, payload):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload


def ipv4(src, dst, proto, payload, ident=1, frag=0, mf=False, total=None):
    ln = 20 + len(payload) if total is None else total
    off = (frag // 8) | (0x2000 if mf else 0)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ln, ident, off, 64, proto, 0, ip4(src), ip4(dst))
    c = csum(h)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + ip6(src) + ip6(dst) + payload


MAC_C = bytes.fromhex("020000000001")
MAC_S = bytes.fromhex("020000000002")


def eth(payload, ethertype, vlan=None, src=MAC_C, dst=MAC_S):
    if vlan is not None:
        return dst + src + struct.pack("!HHH", 0x8100, vlan, ethertype) + payload
    return dst + src + struct.pack("!H", ethertype) + payload


def main(out):
    C4, C4b, S4 = "192.0.2.10", "192.0.2.77", "198.51.100.53"
    C6, S6 = "2001:db8:c11e:17::10", "2001:db8:53::53"
    frames = []
    # UDP query and response, IPv4.
    q = dns(0x1001, "www.example.com", 1)
    r = dns(0x1001, "www.example.com", 1, True, answer=ip4("203.0.113.80"))
    frames.append(eth(ipv4(C4, S4, 17, udp4(C4, S4, 40001, 53, q)), 0x0800))
    frames.append(eth(ipv4(S4, C4, 17, udp4(S4, C4, 53, 40001, r)), 0x0800))
    # A query carrying ECS (the resolver forwards a client /24) and its response.
    q = dns(0x1002, "cdn.example.net", 1, ecs=(1, 24, "203.0.113.0"))
    r = dns(0x1002, "cdn.example.net", 1, True, ecs=(1, 24, "203.0.113.0"))
    frames.append(eth(ipv4(C4b, S4, 17, udp4(C4b, S4, 40002, 53, q)), 0x0800))
    frames.append(eth(ipv4(S4, C4b, 17, udp4(S4, C4b, 53, 40002, r)), 0x0800))
    # IPv6 query with an IPv6 ECS /56, and the response.
    q = dns(0x1003, "example.org", 28, ecs=(2, 56, "2001:db8:c11e:1700::"))
    r = dns(0x1003, "example.org", 28, True, answer=ip6("2001:db8::80"))
    frames.append(eth(ipv6(C6, S6, 17, udp6(C6, S6, 40003, 53, q)), 0x86DD))
    frames.append(eth(ipv6(S6, C6, 17, udp6(S6, C6, 53, 40003, r)), 0x86DD))
    # 802.1Q-tagged query.
    q = dns(0x1004, "mail.example.com", 15)
    frames.append(eth(ipv4(C4, S4, 17, udp4(C4, S4, 40004, 53, q)), 0x0800, vlan=11))
    # DNS over TCP: handshake, one framed query, one framed response.
    frames.append(eth(ipv4(C4, S4, 6, tcp4(C4, S4, 40005, 53, 1000, 0, 0x02, b"")), 0x0800))
    frames.append(eth(ipv4(S4, C4, 6, tcp4(S4, C4, 53, 40005, 5000, 1001, 0x12, b"")), 0x0800))
    q = dns(0x1005, "tcp.example.com", 1, ecs=(1, 20, "203.0.112.0"))
    frames.append(eth(ipv4(C4, S4, 6, tcp4(C4, S4, 40005, 53, 1001, 5001, 0x18, struct.pack("!H", len(q)) + q)), 0x0800))
    r = dns(0x1005, "tcp.example.com", 1, True, answer=ip4("203.0.113.81"))
    frames.append(eth(ipv4(S4, C4, 6, tcp4(S4, C4, 53, 40005, 5001, 1001 + 2 + len(q), 0x18, struct.pack("!H", len(r)) + r)), 0x0800))
    # ICMP port unreachable from the client, quoting the server's response.
    r = dns(0x1006, "gone.example.com", 1, True)
    inner = ipv4(S4, C4, 17, udp4(S4, C4, 53, 40006, r))
    quote = inner[:28 + 12]
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quote
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    frames.append(eth(ipv4(C4, S4, 1, icmp), 0x0800))
    # ICMPv6 destination unreachable quoting an IPv6 query.
    q = dns(0x1007, "v6.example.org", 28)
    inner = ipv6(C6, S6, 17, udp6(C6, S6, 40007, 53, q))
    body = struct.pack("!BBHI", 1, 4, 0, 0) + inner
    pseudo = ip6(S6) + ip6(C6) + struct.pack("!IxxxB", len(body), 58)
    body = body[:2] + struct.pack("!H", csum(pseudo + body)) + body[4:]
    frames.append(eth(ipv6(S6, C6, 58, body), 0x86DD))
    # ARP request and reply.
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + MAC_C + ip4(C4) + b"\0" * 6 + ip4(S4)
    frames.append(eth(arp, 0x0806, dst=b"\xff" * 6))
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + MAC_S + ip4(S4) + MAC_C + ip4(C4)
    frames.append(eth(arp, 0x0806, src=MAC_S, dst=MAC_C))
    # A large response in two IPv4 fragments.
    r = dns(0x1008, "big.example.com", 16, True, answer=b"\x7f" + b"v" * 127 + b"\x7f" + b"w" * 127)
    u = udp4(S4, C4, 53, 40008, r)
    first, rest = u[:160], u[160:]
    frames.append(eth(ipv4(S4, C4, 17, first, ident=0x4242, mf=True), 0x0800))
    frames.append(eth(ipv4(S4, C4, 17, rest, ident=0x4242, frag=160), 0x0800))
    # A query whose UDP checksum is zero ("none"), and one that is wrong.
    q = dns(0x1009, "zero.example.com", 1)
    frames.append(eth(ipv4(C4b, S4, 17, udp4(C4b, S4, 40009, 53, q, zero=True)), 0x0800))
    q = dns(0x100A, "wrong.example.com", 1)
    frames.append(eth(ipv4(C4b, S4, 17, udp4(C4b, S4, 40010, 53, q, corrupt=True)), 0x0800))
    # A non-IP frame (LLDP): dropped under the fail-closed rule.
    frames.append(eth(b"\x02\x07\x04" + MAC_S + b"\x00\x00", 0x88CC, dst=bytes.fromhex("0180c200000e")))

    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1767225600  # 2026-01-01T00:00:00Z
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", t + i, 1000 * i, len(fr), len(fr)))
            f.write(fr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "testdata/sample-dns.pcap")
