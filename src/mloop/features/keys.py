"""The types of join keys: declared on an entity (``Entity(..., dtype="int64")``), or taken from the
sources of the views that use it, and checked on every online read before the store is asked.

A key of the wrong type finds nothing in the online store, so without the check a request with
``{"customer_id": "42"}`` or ``"abc"`` would be answered as if the customer had no features. Strings
are keys of a string key; integers, and JSON numbers that are whole (``42.0``), of an integer key, within
its range; a boolean is neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.data.schema import ALIASES
from mloop.errors import SchemaError

KEY_DTYPES = ("int32", "int64", "string")
_ARROW = {
    "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(), "float64": pa.float64(),
    "bool": pa.bool_(), "string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
}  # fmt: skip
_JSON_NAMES = {"str": "string", "bool": "boolean", "float": "number", "int": "integer", "NoneType": "null",
               "list": "array", "dict": "object"}  # fmt: skip


def declared(
    entity: str, join_keys: Sequence[str], dtype: str | Mapping[str, str] | None
) -> tuple[str, ...] | None:
    """The dtype of each of ``join_keys`` from an entity's ``dtype``: one for all keys, or one per key."""
    if dtype is None:
        return None
    given = {key: dtype for key in join_keys} if isinstance(dtype, str) else dict(dtype)
    if not isinstance(dtype, str | Mapping) or sorted(given) != sorted(join_keys):
        raise SchemaError(
            f"Entity {entity!r}: dtype must be one type for its join key(s) ('int64') or one per key "
            f"({ {k: 'int64' for k in join_keys} }), got {dtype!r}."
        )
    out = []
    for key in join_keys:
        text = str(given[key]).lower()
        name = ALIASES.get(text, text)
        if name not in KEY_DTYPES:
            raise SchemaError(
                f"Entity {entity!r}: join key {key!r} cannot be of type {given[key]!r}; a join key is one of "
                f"{', '.join(KEY_DTYPES)}."
            )
        out.append(name)
    return tuple(out)


def check(columns: Mapping[str, Sequence[Any]], types: Mapping[str, str]) -> None:
    """Refuse (a :class:`SchemaError`, answered 422) the first key value not of its key's type, naming
    the key, the type it must have and the type it has."""
    for key, dtype in types.items():
        values = columns.get(key)
        if values is None:
            continue
        if dtype == "string":
            for row, value in enumerate(values):
                if value is not None and not isinstance(value, str):
                    raise _wrong(key, dtype, value, row)
            continue
        whole: list[Any] | None = None
        for row, value in enumerate(values):
            if type(value) is int or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer | float | np.floating):
                raise _wrong(key, dtype, value, row)
            if isinstance(value, float | np.floating):
                if not float(value).is_integer():
                    raise _wrong(key, dtype, value, row)
                whole = list(values) if whole is None else whole
                whole[row] = int(value)
        typed_array(values if whole is None else whole, dtype, f"Join key {key!r}")


def _wrong(key: str, dtype: str, value: Any, row: int) -> SchemaError:
    kind = type(value).__name__
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    where = f" (row {row})" if row else ""
    return SchemaError(
        f"Join key {key!r} must be {'a string' if dtype == 'string' else f'an integer ({dtype})'}, "
        f"got {_JSON_NAMES.get(kind, kind)} {shown}{where}. Send the key as its entity stores it."
    )


def typed_array(values: Any, dtype: str, what: str) -> pa.Array:
    """``values`` as an Arrow array of ``dtype``; a number out of its range, or a value of another type,
    is a :class:`SchemaError` that starts with ``what`` (also the range check of join keys on reads)."""
    try:
        return pa.array(values, _ARROW[dtype], from_pandas=True)
    except OverflowError:
        raise SchemaError(f"{what} holds a number out of the range of {dtype}.") from None
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise SchemaError(f"{what} does not hold {dtype} values ({exc}).") from None
