"""Run ipwash inside table engines.

Every helper takes the washer's construction arguments (``method``,
``key_file``, options), never a key: the key (and a state table) travel as
*files*. On a cluster, ship them with ``SparkContext.addFile`` (or a mounted
secret) and name them by their basename; each worker builds its own
``Washer`` from the file, so no key ever appears in a job's arguments or a
pickled closure.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence

from ._ipwash import Washer

__all__ = [
    "wash_table",
    "wash_batches",
    "polars_expr",
    "wash_polars",
    "duckdb_register",
    "spark_wash",
]


def _spec(method: str, key_file: Optional[str], options: Dict[str, Any]):
    return (method, key_file, dict(options))


def _build(spec) -> Washer:
    method, key_file, options = spec
    return Washer(method, key_file=key_file, **options)


def wash_table(table, columns: Sequence[str], washer: Washer):
    """Return a pyarrow.Table (or RecordBatch) with ``columns`` washed."""
    for name in columns:
        i = table.schema.get_field_index(name)
        if i < 0:
            raise KeyError(f"no column {name!r}")
        table = table.set_column(i, table.schema.field(i).name, washer.map(table.column(i)))
    return table


def wash_batches(batches: Iterable, columns: Sequence[str], washer: Washer) -> Iterator:
    """Wash ``columns`` of every pyarrow.RecordBatch of ``batches``."""
    import pyarrow as pa

    for b in batches:
        arrays = list(b.columns)
        for name in columns:
            i = b.schema.get_field_index(name)
            if i < 0:
                raise KeyError(f"no column {name!r}")
            arrays[i] = washer.map(arrays[i])
        yield pa.RecordBatch.from_arrays(arrays, schema=b.schema)


# --- Polars -----------------------------------------------------------------


def polars_expr(column: str, washer: Washer):
    """A Polars expression washing ``column`` batch by batch (``map_batches``).

    ``df.with_columns(polars_expr("ip_src", w), polars_expr("ip_dst", w))``
    """
    import polars as pl

    def run(s: "pl.Series") -> "pl.Series":
        return pl.Series(s.name, washer.map(s.to_arrow()))

    return pl.col(column).map_batches(run, return_dtype=pl.String, is_elementwise=True)


def wash_polars(df, columns: Sequence[str], washer: Washer):
    """Return ``df`` (a polars DataFrame or LazyFrame) with ``columns`` washed."""
    return df.with_columns([polars_expr(c, washer) for c in columns])


# --- DuckDB -----------------------------------------------------------------


def duckdb_register(con, washer: Washer, name: str = "ipwash"):
    """Register a vectorised SQL function ``name(VARCHAR) -> VARCHAR``.

    ``SELECT ipwash(ip_src) FROM 'dns.parquet'`` then washes whole Arrow
    vectors at a time. Returns ``con``.
    """
    try:
        from duckdb.sqltypes import VARCHAR
    except ImportError:  # duckdb < 1.4
        from duckdb.typing import VARCHAR

    def fn(col):
        return washer.map(col)

    con.create_function(name, fn, [VARCHAR], VARCHAR, type="arrow", null_handling="special")
    return con


# --- PySpark ----------------------------------------------------------------


def spark_wash(
    df,
    columns: Sequence[str],
    method: str,
    key_file: Optional[str] = None,
    state_file: Optional[str] = None,
    threads: int = 1,
    **options: Any,
):
    """Wash ``columns`` of a Spark DataFrame with ``DataFrame.mapInArrow``.

    ``key_file`` and ``state_file`` are the names of files shipped to the
    executors with ``spark.sparkContext.addFile(path)``: on each executor the
    file is found with ``SparkFiles.get(basename)``. Only the basename travels
    in the plan; the key stays in the file. ``threads`` is per Python worker
    (Spark already runs one worker per core).
    """
    key_name = os.path.basename(key_file) if key_file else None
    state_name = os.path.basename(state_file) if state_file else None
    cols = list(columns)
    opts = dict(options)
    schema = df.schema

    def run(batches):
        from pyspark import SparkFiles

        kf = SparkFiles.get(key_name) if key_name else None
        extra = dict(opts)
        if state_name:
            extra["state_file"] = SparkFiles.get(state_name)
        w = Washer(method, key_file=kf, threads=threads, **extra)
        yield from wash_batches(batches, cols, w)

    return df.mapInArrow(run, schema)
