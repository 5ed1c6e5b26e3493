"""Per-file key ranges: which stored files can hold a key that is being ingested.

Each data file's manifest entry records, for every key column, the least and greatest value it holds
(``{"keys": {"id": {"type": "int64", "min": "17", "max": "52001"}}}``, values as DuckDB text, taken from the statistics DuckDB returns
when it writes the file, so they cost nothing to gather). The duplicate-key check of an append then reads
the key columns of only the files whose ranges overlap the range of the new keys (one aggregate over the
new rows and one pass over the ranges, not a scan of the dataset). A file without ranges (written
before they were recorded, or with a key column whose type has none) is always read.

>>> ranges = from_stats(dataset, {'"id"': {"min": "1", "max": "9"}})   # doctest: +SKIP
>>> candidates(con, "fresh", dataset, files, {files[0]: ranges})        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mloop.data import checks
from mloop.data.schema import DTYPES, Dataset
from mloop.data.sql import quote

KeyRanges = dict[str, dict[str, str]]
"""Key column -> its dtype and least and greatest value, as text DuckDB casts back to that type (a range
recorded under another dtype, before a schema change, is not used)."""

# Types whose order DuckDB's Parquet statistics and comparisons share (a float's NaN, for one, has none).
ORDERED = {"int32", "int64", "string", "timestamp", "date"}


def from_stats(dataset: Dataset, stats: Mapping[str, Mapping[str, str]]) -> KeyRanges | None:
    """The ranges of a file from DuckDB's ``RETURN_STATS`` (a long string's bounds are a truncated
    prefix and a raised truncation: still bounds)."""
    ranges: KeyRanges = {}
    for name in _ordered_key(dataset):
        column = stats.get(quote(name), {})
        if "min" not in column or "max" not in column:
            return None
        ranges[name] = _range(dataset, name, str(column["min"]), str(column["max"]))
    return ranges or None


def from_table(dataset: Dataset, table: pa.Table) -> KeyRanges | None:
    """The ranges of a file written from ``table`` (the Arrow path of tensor datasets)."""
    ranges: KeyRanges = {}
    for name in _ordered_key(dataset):
        low, high = (v.as_py() for v in pc.min_max(table[name]).values())
        if low is None or high is None:
            return None
        ranges[name] = _range(dataset, name, _text(low), _text(high))
    return ranges or None


def candidates(
    con: duckdb.DuckDBPyConnection,
    fresh: str,
    dataset: Dataset,
    files: Sequence[str],
    ranges: Mapping[str, KeyRanges],
) -> list[str]:
    """The files of ``files`` that may hold a key of table ``fresh`` (whose key columns carry their typed
    names): a file is skipped only when, for some key column, its range and the new keys' do not meet."""
    ordered = _ordered_key(dataset)
    known = [i for i, f in enumerate(files) if ordered and _usable(dataset, ordered, ranges.get(f, {}))]
    if not known:
        return list(files)
    index = {c.name: i for i, c in enumerate(dataset.columns)}
    table = pa.table(
        {
            "idx": pa.array(known, pa.int64()),
            **{f"lo{j}": [ranges[files[i]][name]["min"] for i in known] for j, name in enumerate(ordered)},
            **{f"hi{j}": [ranges[files[i]][name]["max"] for i in known] for j, name in enumerate(ordered)},
        }
    )
    con.register("_mloop_key_ranges", table)
    try:
        possible = set(range(len(files))) - set(known)
        kept = set(known)
        for j, name in enumerate(ordered):
            kind, value = DTYPES[dataset.column(name).dtype], checks.typed_name(index[name])
            lo, hi = f"TRY_CAST(r.lo{j} AS {kind})", f"TRY_CAST(r.hi{j} AS {kind})"
            # The new keys' own range, then one pass over the (few) file ranges: a join of the ranges
            # against every new key (ASOF, or a range join) costs seconds where this costs milliseconds.
            hit = con.execute(
                f"WITH n AS (SELECT min({value}) AS least, max({value}) AS greatest FROM {fresh}) "
                f"SELECT r.idx FROM _mloop_key_ranges r, n WHERE {lo} IS NULL OR {hi} IS NULL "
                f"OR ({lo} <= n.greatest AND {hi} >= n.least)"
            ).fetchall()
            kept &= {int(row[0]) for row in hit}
    finally:
        con.unregister("_mloop_key_ranges")
    return [files[i] for i in sorted(possible | kept)]


def _ordered_key(dataset: Dataset) -> list[str]:
    """The key columns whose ranges are recorded (all of them, or none if one has no usable order)."""
    key = list(dataset.key or [])
    return key if key and all(dataset.column(k).dtype in ORDERED for k in key) else []


def _range(dataset: Dataset, name: str, low: str, high: str) -> dict[str, str]:
    return {"type": dataset.column(name).dtype, "min": low, "max": high}


def _usable(dataset: Dataset, names: list[str], ranges: KeyRanges) -> bool:
    return all(n in ranges and ranges[n].get("type") == dataset.column(n).dtype for n in names)


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


__all__ = ["KeyRanges", "candidates", "from_stats", "from_table"]
