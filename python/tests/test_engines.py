"""ipwash.Washer through pyarrow, Polars, DuckDB and PySpark: every value
must equal what `ipwash map` gives for it."""

import ipaddress
import os
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ipwash
from ipwash import engines
from conftest import cli_map, expected, ipwash_bin

COLS = ["ip_src", "ip_dst", "edns_ecs"]


def washer(keydir, **kw):
    return ipwash.Washer("cryptopan", key_file=str(keydir / "k32.key"), **kw)


def flags(keydir):
    return ["--method", "cryptopan", "--key-file", str(keydir / "k32.key")]


def check_table(t, src, keydir):
    for c in COLS:
        want = expected(src.column(c).to_pylist(), *flags(keydir))
        got = t.column(c).to_pylist()
        assert got == want, c
    # Other columns untouched.
    assert t.column("id").to_pylist() == src.column("id").to_pylist()
    assert t.column("qname").to_pylist() == src.column("qname").to_pylist()


def test_pyarrow(parquet_fixture, keydir):
    src = pq.read_table(parquet_fixture)
    t = engines.wash_table(src, COLS, washer(keydir))
    assert t.schema == src.schema
    check_table(t, src, keydir)
    # Nulls stay null, in place.
    assert t.column("ip_src")[3].as_py() is None
    assert t.column("ip_dst")[7].as_py() is None


def test_types_kept_and_thread_count_irrelevant(keydir):
    vals = ["192.0.2.1", None, "2001:db8::1", " 10.1.2.3 ", "10.9.0.0/16"]
    want = expected(vals, *flags(keydir))
    results = []
    for ty in (pa.string(), pa.large_string(), pa.string_view()):
        arr = pa.array(vals, type=ty)
        for th in (1, 2):
            out = washer(keydir, threads=th).map(arr)
            assert out.type == ty
            assert out.to_pylist() == want
            results.append(out.to_pylist())
    # A large array crosses the parallel piece boundary: same as one by one.
    big = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(150_000)]
    a1 = washer(keydir, threads=1).map(pa.array(big))
    a2 = washer(keydir, threads=2).map(pa.array(big))
    assert a1.equals(a2)
    some = big[::997]
    assert [a1[i * 997].as_py() for i in range(len(some))] == cli_map(some, *flags(keydir))


def test_binary_columns(keydir):
    addrs = ["192.0.2.1", "2001:db8::1", None, "198.51.100.7"]
    mapped = expected(addrs, *flags(keydir))
    packed = [None if a is None else ipaddress.ip_address(a).packed for a in addrs]
    want = [None if m is None else ipaddress.ip_address(m).packed for m in mapped]
    w = washer(keydir)
    for ty in (pa.binary(), pa.large_binary(), pa.binary_view()):
        out = w.map(pa.array(packed, type=ty))
        assert out.type == ty
        assert out.to_pylist() == want
    v4 = [p for p in packed if p is None or len(p) == 4]
    out = w.map(pa.array(v4, type=pa.binary(4)))
    assert out.type == pa.binary(4)
    assert out.to_pylist() == [None if p is None else ipaddress.ip_address(
        cli_map([str(ipaddress.ip_address(p))], *flags(keydir))[0]).packed for p in v4]
    assert w.map_pylist(packed) == want


def test_bad_values_and_nulls_as_documented(keydir):
    w = washer(keydir)
    bad = ["192.0.2.1", "not an address", None, "10.0.0.0/33", "", "1.2.3.4/-1"]
    with pytest.raises(ValueError) as e:
        w.map(pa.array(bad))
    assert "row 1" in str(e.value)
    assert "not an address" not in str(e.value), "the value itself is never echoed"
    wn = washer(keydir, on_error="null")
    got = wn.map(pa.array(bad)).to_pylist()
    assert got == [cli_map(["192.0.2.1"], *flags(keydir))[0], None, None, None, None, None]
    # Wrong binary length.
    with pytest.raises(ValueError):
        w.map(pa.array([b"\x01\x02\x03"]))
    assert wn.map(pa.array([b"\x01\x02\x03", None])).to_pylist() == [None, None]
    # A prefix with a technique that cannot wash prefixes.
    ipc = ipwash.Washer("ipcipher", key_file=str(keydir / "k16.key"), on_error="null")
    assert ipc.map_pylist(["10.0.0.0/8", "10.0.0.1"]) == [
        None,
        cli_map(["10.0.0.1"], "--method", "ipcipher", "--key-file", str(keydir / "k16.key"))[0],
    ]
    # Not an address column at all.
    with pytest.raises(TypeError):
        w.map(pa.array([1, 2, 3]))
    # Keys come from files; a missing file is an error.
    with pytest.raises(ValueError):
        ipwash.Washer("cryptopan", key_file=str(keydir / "missing.key"))


def test_other_methods_match_cli(keydir, tmp_path):
    vals = ["192.0.2.1", "2001:db8::1", "10.20.30.40", "198.51.100.0/24"]
    cases = [
        ("truncate", {}, ["--method", "truncate"]),
        ("truncate", {"ipv4_prefix": 16}, ["--method", "truncate", "--ipv4-prefix", "16"]),
        ("tsa", {"key_file": str(keydir / "k32.key")}, ["--method", "tsa", "--key-file", str(keydir / "k32.key")]),
        ("ipcrypt-pfx", {"key_file": str(keydir / "k32.key")},
         ["--method", "ipcrypt-pfx", "--key-file", str(keydir / "k32.key")]),
    ]
    for m, kw, fl in cases:
        assert ipwash.Washer(m, **kw).map_pylist(vals) == expected(vals, *fl), m
    # ipcrypt-deterministic: full addresses only (IPv4 becomes IPv6).
    fl = ["--method", "ipcrypt-deterministic", "--key-file", str(keydir / "k16.key")]
    w = ipwash.Washer("ipcrypt-deterministic", key_file=str(keydir / "k16.key"))
    assert w.map_pylist(vals[:3]) == cli_map(vals[:3], *fl)


def test_stateful_methods_need_a_frozen_table(keydir, tmp_path):
    vals = ["192.0.2.1", "2001:db8::1", "10.20.30.40", "192.0.2.1"]
    st = tmp_path / "enum.state"
    ref = cli_map(vals, "--method", "enumerate", "--state", str(st))
    assert oct(os.stat(st).st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError):
        ipwash.Washer("enumerate")
    w = ipwash.Washer("enumerate", state_file=str(st))
    assert w.map_pylist(vals) == ref
    before = st.read_bytes()
    with pytest.raises(ValueError) as e:
        w.map_pylist(["203.0.113.9"])
    assert "not in the state table" in str(e.value)
    assert st.read_bytes() == before


def test_polars(parquet_fixture, keydir):
    pl = pytest.importorskip("polars")
    src = pq.read_table(parquet_fixture)
    df = pl.read_parquet(parquet_fixture)
    out = engines.wash_polars(df, COLS, washer(keydir))
    lazy = engines.wash_polars(pl.scan_parquet(parquet_fixture), COLS, washer(keydir)).collect()
    assert out.equals(lazy)
    check_table(out.to_arrow(), src, keydir)


def test_duckdb(parquet_fixture, keydir):
    duckdb = pytest.importorskip("duckdb")
    src = pq.read_table(parquet_fixture)
    con = duckdb.connect()
    engines.duckdb_register(con, washer(keydir))
    t = con.sql(
        f"SELECT id, qname, ipwash(ip_src) AS ip_src, ipwash(ip_dst) AS ip_dst, "
        f"ipwash(edns_ecs) AS edns_ecs FROM read_parquet('{parquet_fixture}') ORDER BY id"
    ).to_arrow_table()
    check_table(t, src, keydir)


def test_wash_file_equals_cli(keydir, tmp_path):
    cap = tmp_path / "in.pcap"
    subprocess.run([ipwash_bin(), "synth", "--packets", "2000", "-o", str(cap)], check=True)
    a, b = tmp_path / "py.pcap", tmp_path / "cli.pcap"
    washer(keydir).wash_file(str(cap), str(a))
    subprocess.run([ipwash_bin(), "wash", "-q", *flags(keydir), str(cap), "-o", str(b)], check=True)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(RuntimeError):
        washer(keydir).wash_file(str(tmp_path / "missing.pcap"), str(tmp_path / "x.pcap"))
    assert not (tmp_path / "x.pcap").exists()


def java_available():
    return shutil.which("java") is not None


def test_pyspark(parquet_fixture, keydir):
    if not java_available():
        msg = "Java not found on PATH: the PySpark test needs a JRE (Debian: openjdk-17-jre-headless)"
        if os.environ.get("IPWASH_REQUIRE_TOOLS"):
            pytest.fail(msg)
        pytest.skip(msg)
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("ipwash-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        key = str(keydir / "k32.key")
        spark.sparkContext.addFile(key)
        df = spark.read.parquet(str(parquet_fixture)).repartition(3)
        out = engines.spark_wash(df, COLS, "cryptopan", key_file=key)
        t = pa.Table.from_pandas(out.orderBy("id").toPandas(), preserve_index=False)
        src = pq.read_table(parquet_fixture)
        check_table(t.cast(src.schema), src, keydir)
    finally:
        spark.stop()
