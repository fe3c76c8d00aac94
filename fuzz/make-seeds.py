#!/usr/bin/env python3
"""Build the seed corpora of the fuzz targets under fuzz/seeds/TARGET/.

Seeds come from the repository's testdata/ and, when it is there, from the
shared corpus ($IPWASH_CORPUS, default ../shared/testdata beside the
repository): whole captures and C-DNS files (decompressed, cut to 64 KiB),
single packets taken out of every capture (first byte: the link type's
index in fuzz/src/lib.rs LINKTYPES), plus a few small inputs made here.
Bloom filters and state files are made by the ipwash binary ($IPWASH_BIN,
default target/release/ipwash) when it exists.

Nothing here is committed: the script runs before each campaign.

Usage: python3 fuzz/make-seeds.py [OUT_DIR]
"""
import gzip
import hashlib
import lzma
import os
import pathlib
import struct
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"
CORPUS = pathlib.Path(os.environ.get("IPWASH_CORPUS", ROOT.parent / "shared" / "testdata"))
BIN = pathlib.Path(os.environ.get("IPWASH_BIN", ROOT / "target" / "release" / "ipwash"))

# Same order as LINKTYPES in fuzz/src/lib.rs.
LINKTYPES = [1, 0, 12, 14, 101, 108, 113, 228, 229, 276]
MAX_FILE = 64 * 1024
PACKETS_PER_FILE = 300
KEY32 = "15e7c1b2d3a4f50617e8c9dab0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3"

counts = {}


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    p = d / name
    if not p.exists():
        p.write_bytes(data)
        counts[target] = counts.get(target, 0) + 1


def load(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(raw)
    return raw


def pcap_packets(b):
    """(linktype, packet bytes) of a classic pcap or pcapng file; stops at
    the first damaged record."""
    if len(b) < 24:
        return
    magic = b[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from pcapng_packets(b)
        return
    table = {
        b"\xa1\xb2\xc3\xd4": (">", 16), b"\xd4\xc3\xb2\xa1": ("<", 16),
        b"\xa1\xb2\x3c\x4d": (">", 16), b"\x4d\x3c\xb2\xa1": ("<", 16),
        b"\xa1\xb2\xcd\x34": (">", 24), b"\x34\xcd\xb2\xa1": ("<", 24),
    }
    if magic not in table:
        return
    e, hlen = table[magic]
    lt = struct.unpack(e + "I", b[20:24])[0] & 0x03FFFFFF
    at = 24
    while at + hlen <= len(b):
        caplen = struct.unpack(e + "I", b[at + 8:at + 12])[0]
        if at + hlen + caplen > len(b) or caplen > 1 << 20:
            return
        yield lt, b[at + hlen:at + hlen + caplen]
        at += hlen + caplen


def pcapng_packets(b):
    at, e, ifaces = 0, "<", []
    while at + 12 <= len(b):
        btype = b[at:at + 4]
        if btype == b"\x0a\x0d\x0d\x0a":
            e = "<" if b[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack(e + "I", b[at + 4:at + 8])[0]
        if blen < 12 or at + blen > len(b):
            return
        t = struct.unpack(e + "I", btype)[0]
        body = b[at + 8:at + blen - 4]
        if t == 1 and len(body) >= 2:
            ifaces.append(struct.unpack(e + "H", body[:2])[0])
        elif t == 6 and len(body) >= 20:
            iface, _, _, cap = struct.unpack(e + "IIII", body[:16])
            if iface < len(ifaces):
                yield ifaces[iface], body[20:20 + cap]
        elif t == 3 and len(body) >= 4 and ifaces:
            yield ifaces[0], body[4:]
        elif t == 2 and len(body) >= 20:
            iface = struct.unpack(e + "H", body[:2])[0]
            cap = struct.unpack(e + "I", body[12:16])[0]
            if iface < len(ifaces):
                yield ifaces[iface], body[20:20 + cap]
        at += blen


def captures():
    found = sorted((ROOT / "testdata").glob("*.pcap*"))
    if (CORPUS / "pcap").is_dir():
        found += sorted(p for p in (CORPUS / "pcap").rglob("*") if p.is_file() and ".pcap" in p.name)
    if (CORPUS / "cdns").is_dir():
        found += sorted(p for p in (CORPUS / "cdns").rglob("*.pcap*") if p.is_file())
    return found


def capture_seeds():
    for path in captures():
        try:
            b = load(path)
        except (OSError, EOFError, lzma.LZMAError):
            continue
        put("capture_reader", b[:MAX_FILE])
        n = 0
        for lt, pkt in pcap_packets(b):
            if lt not in LINKTYPES:
                break
            seed = bytes([LINKTYPES.index(lt)]) + pkt
            put("locate", seed)
            put("plain_vs_general", seed)
            n += 1
            if n >= PACKETS_PER_FILE:
                break
    # Tiny hand-made files: each magic with an empty body and one record.
    rec = struct.pack("<IIII", 1, 2, 4, 4) + b"\x45\x00\x00\x14"
    for magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\x34\xcd\xb2\xa1"):
        hdr = magic + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 101)
        extra = b"\0" * 8 if magic == b"\x34\xcd\xb2\xa1" else b""
        put("capture_reader", hdr)
        put("capture_reader", hdr + rec[:16] + extra + rec[16:])


def cdns_seeds():
    if not (CORPUS / "cdns").is_dir():
        return
    for path in sorted((CORPUS / "cdns").rglob("*")):
        if not path.is_file() or ".cdns" not in path.name and ".cbor" not in path.name:
            continue
        try:
            b = load(path)
        except (OSError, EOFError, lzma.LZMAError):
            continue
        put("cdns_block", b[:MAX_FILE])


def tool_seeds():
    if not BIN.exists():
        print(f"make-seeds: {BIN} not found; no Bloom filter or state file seeds", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as t:
        t = pathlib.Path(t)
        key = t / "k.key"
        key.write_text(KEY32 + "\n")
        ents = t / "ents.tsv"
        ents.write_text("192.0.2.0/24\tdoc-a\n2001:db8::/32\tdoc-b\n")
        sample = ROOT / "testdata" / "sample-dns.pcap"
        for extra in ([], ["--entities", str(ents)]):
            out = t / ("bloom" + str(len(extra)))
            subprocess.run([str(BIN), "bloom", "build", str(sample), "-o", str(out),
                            "--key-file", str(key), "--expected-items", "300",
                            "--fp-rate", "0.05", "--min-clients", "1", *extra],
                           check=False, capture_output=True)
            for f in sorted(out.glob("*.bloom")) if out.is_dir() else []:
                put("bloom_file", f.read_bytes())
        addrs = "192.0.2.1\n198.51.100.7\n2001:db8::1\n192.0.2.1\n::ffff:10.0.0.1\n"
        for m in (["enumerate"], ["enumerate", "--numbering", "dnswasher"],
                  ["prefix-map", "--key-file", str(key)]):
            st = t / "state.csv"
            st.unlink(missing_ok=True)
            subprocess.run([str(BIN), "map", "--method", *m, "--state", str(st)],
                           input=addrs.encode(), check=False, capture_output=True)
            if st.exists():
                put("state_csv", st.read_bytes())


def text_seeds():
    for k in (KEY32, KEY32 + "\n", KEY32 + "\r\n", KEY32[:32], KEY32[:32] + "\n",
              "  " + KEY32.upper() + " \n", KEY32[:-1], KEY32 + "0", "zz" + KEY32[2:], ""):
        put("key_file", k.encode())
    for text in ("192.0.2.1\n2001:db8::1\n", " 10.0.0.1 \r\n::\n255.255.255.255",
                 "::ffff:192.0.2.1\nfe80::1%eth0\n1.2.3\n",
                 "0123456789abcdef0123456789abcdef0123456789abcdef\n" * 2,
                 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"):
        put("map_line", text.encode())
    # Log lines for the text scanner: the forms of the README's examples
    # and the awkward neighbours (times, versions, names, reverse names).
    for line in (
        "01-Dec-2026 00:00:00.000 client @0x7f2c 10.137.47.144#4467 (a.example): "
        "query: a.example IN A +E(0)K (192.0.2.53)\n",
        "[2001:db8::1]:53 fe80::1%eth0 ::ffff:192.0.2.7 2001:DB8::A:B 64:ff9b::192.0.2.7\n",
        "4.3.2.1.in-addr.arpa 8.B.D.0.1.0.0.2.ip6.arpa 1.0/25.2.0.192.in-addr.arpa\n",
        "BIND 9.18.28 v1.2.3.4 1.2.3.4.5 12:34:56.789 00:11:22:33:44:55 10.0.0.0/8 "
        "2001:db8::/32 peer=192.0.2.1:853, dead:1.2.3.4:zz std::vector\n",
        "1:2:3:4:5:6:7:8:5353 2001:db8::1:53 " + "0123456789abcdef.:" * 8 + "\n",
    ):
        put("text_scan", line.encode())
    put("state_csv", b"kind,family,original,replacement\nparam,,method,enumerate\n"
                     b"param,,numbering,sequential\ncounter,ipv4,,2\ncounter,ipv6,,1\n"
                     b"pair,ipv4,192.0.2.1,0.0.0.1\n")


capture_seeds()
cdns_seeds()
tool_seeds()
text_seeds()
for t in sorted(counts):
    print(f"make-seeds: {t}: {counts[t]} new seeds in {OUT / t}")
