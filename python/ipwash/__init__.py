"""ipwash: pseudonymise and anonymise IP addresses in Arrow columns and DNS captures.

``Washer(method, key_file=..., **method_options)`` applies one of ipwash's
techniques (the same code as the ``ipwash`` command) to

* Arrow arrays of strings (``"192.0.2.1"``, ``"2001:db8::/48"``) or 4/16-byte
  binaries, through the Arrow C data interface without copying the input:
  ``Washer.map(array)`` returns an array of the same type, nulls kept;
* Python lists: ``Washer.map_pylist(values)``;
* capture files: ``Washer.wash_file(inp, out)``.

Helpers for table engines live in :mod:`ipwash.engines` (PySpark
``mapInArrow``, Polars ``map_batches``, DuckDB Arrow UDFs).
"""

from ._ipwash import Washer, __version__

__all__ = ["Washer", "__version__"]
