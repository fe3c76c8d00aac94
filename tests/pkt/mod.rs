//! Packet and capture builders shared by the privacy tests (audit, MACs,
//! metadata): little-endian pcapng blocks, classic pcap, and Ethernet /
//! IPv4 / UDP / DNS packets with valid checksums.
#![allow(dead_code)]

/// A little-endian pcapng builder.
pub fn opt(code: u16, val: &[u8]) -> Vec<u8> {
    let mut v = code.to_le_bytes().to_vec();
    v.extend((val.len() as u16).to_le_bytes());
    v.extend(val);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

pub fn opts(list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (c, val) in list {
        v.extend(opt(*c, val));
    }
    if !list.is_empty() {
        v.extend([0, 0, 0, 0]);
    }
    v
}

pub fn block(btype: u32, body: &[u8]) -> Vec<u8> {
    let padded = (body.len() + 3) & !3;
    let total = (12 + padded) as u32;
    let mut v = btype.to_le_bytes().to_vec();
    v.extend(total.to_le_bytes());
    v.extend(body);
    v.resize(8 + padded, 0);
    v.extend(total.to_le_bytes());
    v
}

pub fn shb(list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    b.extend(1u16.to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend((-1i64).to_le_bytes());
    b.extend(opts(list));
    block(0x0A0D_0D0A, &b)
}

pub fn idb(list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = 1u16.to_le_bytes().to_vec();
    b.extend([0, 0]);
    b.extend(0u32.to_le_bytes());
    b.extend(opts(list));
    block(1, &b)
}

pub fn epb(data: &[u8], list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = 0u32.to_le_bytes().to_vec();
    b.extend(0u32.to_le_bytes());
    b.extend(1_000_000u32.to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend(data);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b.extend(opts(list));
    block(6, &b)
}

pub fn isb(list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = 0u32.to_le_bytes().to_vec();
    b.extend(0u32.to_le_bytes());
    b.extend(2_000_000u32.to_le_bytes());
    b.extend(opts(list));
    block(5, &b)
}

pub fn dsb(secrets: &[u8]) -> Vec<u8> {
    // TLS key log.
    let mut b = 0x544c_534bu32.to_le_bytes().to_vec();
    b.extend((secrets.len() as u32).to_le_bytes());
    b.extend(secrets);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    block(0x0A, &b)
}

/// An Ethernet/IPv4/UDP DNS query from 192.0.2.7 to 198.51.100.1.
pub fn dns_query() -> Vec<u8> {
    let dns: &[u8] = &[
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3,
        b'c', b'o', b'm', 0, 0, 1, 0, 1,
    ];
    let mut p = vec![
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x02,
    ];
    p.extend([0x08, 0x00]);
    let total = (20 + 8 + dns.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend([192, 0, 2, 7, 198, 51, 100, 1]);
    let ck = checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend(&ip);
    let ulen = (8 + dns.len()) as u16;
    let mut udp = vec![0xc0, 0x01, 0, 53];
    udp.extend(ulen.to_be_bytes());
    udp.extend([0, 0]);
    udp.extend(dns);
    let mut pseudo = vec![192, 0, 2, 7, 198, 51, 100, 1, 0, 17];
    pseudo.extend(ulen.to_be_bytes());
    pseudo.extend(&udp);
    let ck = checksum(&pseudo);
    udp[6..8].copy_from_slice(&ck.to_be_bytes());
    p.extend(udp);
    p
}

pub fn checksum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A classic little-endian microsecond pcap file of Ethernet frames.
pub fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    v.extend([0; 8]);
    v.extend(65535u32.to_le_bytes());
    v.extend(linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend((1_700_000_000 + i as u32).to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend(f);
    }
    v
}

/// An IPv4 header and UDP datagram with valid checksums.
pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend(src);
    ip.extend(dst);
    let ck = checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let ulen = (8 + payload.len()) as u16;
    let mut udp = sport.to_be_bytes().to_vec();
    udp.extend(dport.to_be_bytes());
    udp.extend(ulen.to_be_bytes());
    udp.extend([0, 0]);
    udp.extend(payload);
    let mut pseudo = src.to_vec();
    pseudo.extend(dst);
    pseudo.extend([0, 17]);
    pseudo.extend(ulen.to_be_bytes());
    pseudo.extend(&udp);
    let ck = checksum(&pseudo);
    let ck = if ck == 0 { 0xffff } else { ck };
    udp[6..8].copy_from_slice(&ck.to_be_bytes());
    ip.extend(udp);
    ip
}

/// An Ethernet frame.
pub fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = dst.to_vec();
    v.extend(src);
    v.extend(ethertype.to_be_bytes());
    v.extend(payload);
    v
}

pub const MAC_A: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x53, 0x01];
pub const MAC_B: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x53, 0x02];

/// A DNS query message for `name` (dotted), type `qtype`.
pub fn dns_query_msg(name: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.').filter(|l| !l.is_empty()) {
        m.push(l.len() as u8);
        m.extend(l.as_bytes());
    }
    m.push(0);
    m.extend(qtype.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    m
}

/// A DNS response for `name` with one A record.
pub fn dns_response_a(name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = dns_query_msg(name, 1);
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 1;
    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend(addr);
    m
}

/// An Ethernet/IPv4/UDP DNS frame.
pub fn dns_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, msg: &[u8]) -> Vec<u8> {
    ether(MAC_B, MAC_A, 0x0800, &ipv4_udp(src, dst, sport, dport, msg))
}
