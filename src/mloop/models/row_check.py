"""Plain request rows checked against a signature without building a DataFrame: the serving hot path.

A JSON request holds Python scalars (``int``, ``float``, ``str``, ``bool``, ``None``). Checking a handful of
them against a :class:`~mloop.models.signature.Signature` through pandas costs a DataFrame and a Series per
column, milliseconds for one row; checking them value by value costs microseconds. :func:`conforms` is that
check. It is conservative: True only where :meth:`Signature.validate` would accept the values and convert
them without judgement (an int sent for a float column, say); anything else (a timestamp column, a whole
float sent for an int column, a wrong type) answers False, and the caller takes the general path, which
converts what it can and names what it cannot, field by field. So the fast path never changes an answer,
only its cost.

>>> spec = ColumnSpec("amount", "float64")
>>> conforms(spec, [12, 3.5]), conforms(spec, ["12"])
(True, False)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from mloop.models.signature import ColumnSpec

_EXACT_INT = {"float64": 2**53, "float32": 2**24}
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOAT32_MAX = 3.4028234663852886e38
_BASE = {"string": str, "bool": bool}


def conforms(spec: ColumnSpec, values: Sequence[Any]) -> bool:
    """True if every value is a plain Python scalar that ``spec`` takes as it is (see the module docstring).

    A value not among a categorical column's categories conforms: it becomes null, as in the general path.
    """
    if spec.shape is not None:  # a tensor: arrays or nested lists, checked by the general path
        return False
    kind = spec.dtype
    nullable = spec.nullable
    if kind in _EXACT_INT:
        limit = _EXACT_INT[kind]
        top = _FLOAT32_MAX if kind == "float32" else sys.float_info.max
        for v in values:
            cls = type(v)
            if cls is float:
                if v != v:  # NaN is a null
                    if not nullable:
                        return False
                elif not -top <= v <= top and not spec.allow_non_finite:
                    return False
            elif cls is int:
                if not -limit <= v <= limit:
                    return False
            elif v is not None or not nullable:
                return False
        return True
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]
        for v in values:
            if type(v) is int:
                if not low <= v <= high:
                    return False
            elif v is not None or not nullable:
                return False
        return True
    base = _BASE.get(kind)
    if base is None:  # timestamps and dates arrive as text and need parsing: the general path
        return False
    return all(type(v) is base or (v is None and nullable) for v in values)


def columns_conform(specs: Sequence[ColumnSpec], columns: dict[str, list[Any]]) -> bool:
    """True if every required spec has a column and every column :func:`conforms` to its spec."""
    for spec in specs:
        values = columns.get(spec.name)
        if values is None:
            if spec.required:
                return False
            continue
        if not conforms(spec, values):
            return False
    return True


__all__ = ["columns_conform", "conforms"]
