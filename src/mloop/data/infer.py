"""Infer a dataset schema from a source, for the first ingestion of a dataset that has none.

Typed sources (Parquet, Arrow) keep their types. CSV columns are text: each is given the narrowest type
that at least 98% of a sample of its values parse as, so a few bad values do not turn a numeric column
into text (those rows are quarantined instead, and the report says how many were expected to fail).
Columns are inferred nullable, except the timestamp; declare a schema to be stricter. A column of arrays
(a fixed-shape tensor, nested lists, a DataFrame column of NumPy arrays) becomes a tensor column with the
shape of its first rows (a variable first dimension where only that differs).
"""

from __future__ import annotations

import duckdb
from pydantic import ValidationError

from mloop.data import tensors
from mloop.data.checks import _INT
from mloop.data.schema import Column, Dataset, describe, pick_timestamp
from mloop.data.sources import Opened
from mloop.data.sql import literal, quote
from mloop.errors import SchemaError

_SAMPLE = 100_000
_THRESHOLD = 0.98
_FROM_DUCKDB = {
    "TINYINT": "int32",
    "SMALLINT": "int32",
    "INTEGER": "int32",
    "UTINYINT": "int32",
    "USMALLINT": "int32",
    "BIGINT": "int64",
    "UINTEGER": "int64",
    "UBIGINT": "int64",
    "HUGEINT": "int64",
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool",
    "VARCHAR": "string",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
}


def infer_dataset(
    name: str, con: duckdb.DuckDBPyConnection, opened: Opened, *, text_source: bool
) -> tuple[Dataset, list[str]]:
    notes: list[str] = []
    dtypes: dict[str, str] = {}
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    nested = [c for c, t in opened.types.items() if t.endswith("]") or t.startswith("STRUCT(shape ")]
    if nested:
        table = opened.read_columns(con, nested)
        for column in nested:
            found = tensors.infer(table[column])
            if found is None:
                raise SchemaError(
                    f"Column {column!r} holds lists or arrays whose shape or element type could not be "
                    "inferred from its first rows (ragged, mixed or not numbers). Declare it: "
                    f"Column({column!r}, 'tensor', shape=(...), dtype='float32'), or shape=(-1,) for sequences."
                )
            shapes[column] = found
    for column, raw_type in opened.types.items():
        if column in shapes:
            dtypes[column] = "tensor"
        elif text_source and raw_type == "VARCHAR":
            dtypes[column], note = _guess_text(con, opened.view, column)
            if note:
                notes.append(note)
        elif raw_type in _FROM_DUCKDB:
            dtypes[column] = _FROM_DUCKDB[raw_type]
        elif raw_type.startswith("DECIMAL"):
            dtypes[column] = "float64"
        else:
            raise SchemaError(
                f"Column {column!r} has type {raw_type}, which mloop datasets do not store. Convert it to a "
                "string or number in the source, or declare a schema without it and extra_columns: ignore."
            )
    timestamp = pick_timestamp(dtypes)
    try:
        columns = [
            Column(c, d, shape=shapes[c][0], element=shapes[c][1]) if c in shapes
            else Column(c, d, nullable=c != timestamp)
            for c, d in dtypes.items()
        ]  # fmt: skip
        dataset = Dataset(name, columns=columns, timestamp=timestamp)
    except ValidationError as exc:
        raise SchemaError(
            describe(exc, f"inferred for {name!r}")
            + " Rename the column(s) in the source, or declare a schema."
        ) from None
    notes.insert(
        0,
        f"dataset {name!r} did not exist: inferred its schema from the source "
        f"({len(columns)} columns, timestamp: {timestamp or 'none'}); see `mloop data schema {name}`",
    )
    return dataset, notes


def _guess_text(con: duckdb.DuckDBPyConnection, view: str, column: str) -> tuple[str, str | None]:
    col = quote(column)
    counts = con.execute(
        f"SELECT count({col}), "
        f"count(CASE WHEN regexp_full_match({col}, {literal(_INT)}) THEN 1 END), "
        f"count(TRY_CAST(trim({col}) AS DOUBLE)), "
        f"count(TRY_CAST(trim({col}) AS TIMESTAMPTZ)), "
        f"count(CASE WHEN lower(trim({col})) IN ('true', 'false') THEN 1 END) "
        f"FROM (SELECT {col} FROM {quote(view)} LIMIT {_SAMPLE})"
    ).fetchone()
    assert counts is not None
    present, as_int, as_float, as_time, as_bool = counts
    if present == 0:
        return "string", None
    for dtype, parsed in (
        ("int64", as_int),
        ("float64", as_float),
        ("timestamp", as_time),
        ("bool", as_bool),
    ):
        if parsed / present >= _THRESHOLD:
            note = None
            if parsed < present:
                note = (
                    f"inferred {column!r} as {dtype}: {present - parsed} of {present} sampled values do not "
                    "parse and their rows will be quarantined"
                )
            return dtype, note
    return "string", None
