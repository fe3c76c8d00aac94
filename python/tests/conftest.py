"""Shared fixtures: the ipwash binary (the reference every value is checked
against), keys, and a Parquet file with ENTRADA2's address columns."""

import ipaddress
import os
import random
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def ipwash_bin() -> str:
    b = os.environ.get("IPWASH_BIN")
    if b:
        return b
    for cand in (REPO / "target" / "release" / "ipwash", REPO / "target" / "debug" / "ipwash"):
        if cand.exists():
            return str(cand)
    found = shutil.which("ipwash")
    if found:
        return found
    raise RuntimeError("ipwash binary not found: build it (cargo build --release) or set IPWASH_BIN")


def cli_map(values, *flags):
    """`ipwash map` over full addresses, one per line."""
    if not values:
        return []
    out = subprocess.run(
        [ipwash_bin(), "map", *flags],
        input="".join(v + "\n" for v in values).encode(),
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().splitlines()


def expected(values, *flags):
    """What the washer must give for each value, built from `ipwash map`:
    a full address is mapped as is; a prefix `a/len` is masked, mapped, and
    masked again; None stays None."""
    todo = []
    for v in values:
        if v is None:
            continue
        a, _, n = v.strip().partition("/")
        if n:
            net = ipaddress.ip_network(f"{a}/{n}", strict=False)
            todo.append(str(net.network_address))
        else:
            todo.append(a)
    uniq = sorted(set(todo))
    mapped = dict(zip(uniq, cli_map(uniq, *flags)))
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        a, _, n = v.strip().partition("/")
        if n:
            net = ipaddress.ip_network(f"{a}/{n}", strict=False)
            m = mapped[str(net.network_address)]
            mnet = ipaddress.ip_network(f"{m}/{n}", strict=False)
            out.append(f"{mnet.network_address}/{n}")
        else:
            out.append(mapped[a])
    return out


@pytest.fixture(scope="session")
def keydir(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    (d / "k32.key").write_text("3c" * 16 + "d1" * 16 + "\n")
    (d / "k16.key").write_text("a7" * 16 + "\n")
    os.chmod(d / "k32.key", 0o600)
    os.chmod(d / "k16.key", 0o600)
    return d


def entrada_rows(n, seed=5):
    """Rows shaped as ENTRADA2's dns table: ip_src/ip_dst as text, edns_ecs
    as `addr/len` text or null."""
    rnd = random.Random(seed)
    clients4 = [f"198.51.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(300)]
    clients6 = [f"2001:db8:{rnd.randrange(65536):x}::{rnd.randrange(1, 65536):x}" for _ in range(100)]
    servers = ["192.0.2.53", "2001:db8::53"]
    rows = []
    for i in range(n):
        c = rnd.choice(clients4 if rnd.random() < 0.75 else clients6)
        s = servers[1] if ":" in c else servers[0]
        ecs = None
        if rnd.random() < 0.3:
            ecs = (c.rsplit(".", 1)[0] + ".0/24") if ":" not in c else (c.split("::")[0] + "::/48")
        src, dst = (c, s) if i % 2 == 0 else (s, c)
        rows.append({"id": i, "qname": f"q{i % 97}.example.", "ip_src": src, "ip_dst": dst, "edns_ecs": ecs})
    # Nulls in the address columns too.
    rows[3]["ip_src"] = None
    rows[7]["ip_dst"] = None
    return rows


@pytest.fixture(scope="session")
def parquet_fixture(tmp_path_factory):
    rows = entrada_rows(5000)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("qname", pa.string()),
            ("ip_src", pa.string()),
            ("ip_dst", pa.string()),
            ("edns_ecs", pa.string()),
        ]
    )
    t = pa.Table.from_pylist(rows, schema=schema)
    p = tmp_path_factory.mktemp("entrada") / "dns.parquet"
    pq.write_table(t, p, row_group_size=1500)
    return p
