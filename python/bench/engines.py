"""Time ipwash.Washer in each engine on N rows of ENTRADA2-like addresses,
beside the engine's own overhead (the same query with an identity function
in place of the washer).

    python3 python/bench/engines.py --rows 10000000 [--spark-rows 2000000]

Prints one line per engine: rows, seconds washing, seconds identity, and
million rows per second. Uses cryptopan with a throw-away key file.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import ipwash
from ipwash import engines


def make_column(n, seed=1):
    """IPv4 text: ~200k distinct clients, skewed (squared uniform ids)."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 1 << 18, n, dtype=np.int64)
    ids = (u * u) >> 18
    a = pa.array(ids + (198 << 24), type=pa.int64())
    parts = [
        pc.cast(pc.bit_wise_and(pc.shift_right(a, s), 255), pa.string()) for s in (24, 16, 8, 0)
    ]
    return pc.binary_join_element_wise(*parts, ".")


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def report(name, n, wash_s, ident_s):
    print(
        f"{name:8s} rows={n:>10,} wash={wash_s:7.2f}s identity={ident_s:7.2f}s "
        f"-> {n / wash_s / 1e6:6.2f} M rows/s washed, engine alone {n / ident_s / 1e6:6.2f} M rows/s",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--spark-rows", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", default="", help="comma list of engines to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    d = tempfile.mkdtemp()
    key = os.path.join(d, "bench.key")
    with open(key, "w") as f:
        f.write("5a" * 32 + "\n")
    n = args.rows
    col = make_column(n)
    table = pa.table({"ip_src": col})
    w = ipwash.Washer("cryptopan", key_file=key, threads=args.threads)
    print(f"washer threads: {w.threads}", flush=True)

    if "pyarrow" not in skip:
        ws, _ = timed(lambda: w.map(table.column("ip_src")))
        ident, _ = timed(lambda: table.column("ip_src").combine_chunks())
        report("pyarrow", n, ws, ident)

    if "polars" not in skip:
        import polars as pl

        df = pl.from_arrow(table)
        ws, _ = timed(lambda: engines.wash_polars(df, ["ip_src"], w))
        ident, _ = timed(
            lambda: df.with_columns(
                pl.col("ip_src").map_batches(lambda s: pl.Series(s.name, s.to_arrow()), return_dtype=pl.String)
            )
        )
        report("polars", n, ws, ident)

    if "duckdb" not in skip:
        import duckdb
        from duckdb.sqltypes import VARCHAR

        con = duckdb.connect()
        con.register("t", table)
        engines.duckdb_register(con, w)
        con.create_function("ident", lambda c: c, [VARCHAR], VARCHAR, type="arrow")
        ws, _ = timed(lambda: con.sql("SELECT ipwash(ip_src) FROM t").to_arrow_table())
        ident, _ = timed(lambda: con.sql("SELECT ident(ip_src) FROM t").to_arrow_table())
        report("duckdb", n, ws, ident)

    if "spark" not in skip:
        from pyspark.sql import SparkSession

        sn = args.spark_rows or n
        pq.write_table(table.slice(0, sn), os.path.join(d, "t.parquet"), row_group_size=1 << 20)
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.addFile(key)
        sdf = spark.read.parquet(os.path.join(d, "t.parquet"))
        sdf.count()
        ws, _ = timed(
            lambda: engines.spark_wash(sdf, ["ip_src"], "cryptopan", key_file=key).write.mode(
                "overwrite"
            ).format("noop").save()
        )
        ident, _ = timed(
            lambda: sdf.mapInArrow(lambda it: it, sdf.schema).write.mode("overwrite").format("noop").save()
        )
        report("spark", sn, ws, ident)
        spark.stop()


if __name__ == "__main__":
    main()
