"""The rules of a schema as DuckDB SQL, evaluated for every row in one vectorised pass.

Each rule gives a condition and a reason. A row's reason is its first failing rule, in column order;
``_reasons`` lists them all. Reasons name the column and the rule, never the value (the value is in the
quarantine row), so a report can count rows by reason. A column tagged ``pii`` shows no rule value either
(``email: not one of the allowed values (***)``): an allowed list or a pattern of personal data is itself
personal data, and reasons travel into reports, logs and audit payloads.

Tensor columns are checked before this pass, with NumPy (:mod:`mloop.data.tensors`); their reasons join
the pass as a column per tensor (``__r<i>``, in the table :data:`TENSOR_TABLE`), so they count and order
like every other rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from mloop.data.schema import DTYPES, Column, Dataset
from mloop.data.sql import literal, quote
from mloop.security.pii import MASK

TENSOR_TABLE = "tensor_checks"  # row key, __pos (the row's position in the checked tensors), __r<i>

_INT = r"\s*[+-]?[0-9]+\s*"
_NAIVE_TIME = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"}
_FLOATS = {"FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class Rule:
    condition: str
    reason: str
    reason_is_sql: bool = False  # the reason is an SQL expression (a tensor's per-row reason), not text


def typed_name(index: int) -> str:
    return quote(f"__t{index}")


def reason_name(index: int) -> str:
    """The column of a tensor column's reasons in :data:`TENSOR_TABLE`."""
    return quote(f"__r{index}")


def typed_expr(column: Column, raw_type: str) -> str:
    """SQL turning the raw column into the declared type; NULL where a non-null value does not convert."""
    raw = quote(column.name)
    if column.is_tensor:
        return "NULL"  # checked and stored outside DuckDB (the values never go through the SQL pass)
    target = DTYPES[column.dtype]
    if raw_type == target:
        return raw
    if column.dtype in ("int32", "int64"):
        if raw_type == "VARCHAR":
            # TRY_CAST would round '1.5' to 2; only whole numbers are integers.
            return f"CASE WHEN regexp_full_match({raw}, {literal(_INT)}) THEN TRY_CAST(trim({raw}) AS {target}) END"
        if raw_type in _FLOATS or raw_type.startswith("DECIMAL"):
            return f"CASE WHEN {raw} = trunc({raw}) THEN TRY_CAST({raw} AS {target}) END"
    if column.dtype == "timestamp" and raw_type in _NAIVE_TIME:
        return f"CAST({raw} AS TIMESTAMPTZ)"  # naive times are UTC (the session's time zone)
    if raw_type == "VARCHAR" and column.dtype != "string":
        return f"TRY_CAST(trim({raw}) AS {target})"
    return f"TRY_CAST({raw} AS {target})"


def rules(dataset: Dataset, column: Column, index: int, raw_type: str) -> list[Rule]:
    if column.is_tensor:
        return [Rule(f"{reason_name(index)} IS NOT NULL", reason_name(index), reason_is_sql=True)]
    raw, typed, target = quote(column.name), typed_name(index), DTYPES[column.dtype]
    name = column.name
    out: list[Rule] = []
    if dataset.required(column):
        what = "key" if name in dataset.key else "timestamp" if name == dataset.timestamp else "column"
        out.append(Rule(f"{raw} IS NULL", f"{name}: missing value ({what} may not be null)"))
    if raw_type != target:
        out.append(Rule(f"{raw} IS NOT NULL AND {typed} IS NULL", f"{name}: not a valid {column.dtype}"))
    if column.dtype in ("float32", "float64") and not column.allow_non_finite:
        out.append(Rule(f"(isnan({typed}) OR isinf({typed}))", f"{name}: not a finite number"))
    if column.min is not None:
        out.append(
            Rule(f"{typed} < {_value(column, column.min)}", f"{name}: below min {_shown(column, column.min)}")
        )
    if column.max is not None:
        out.append(
            Rule(f"{typed} > {_value(column, column.max)}", f"{name}: above max {_shown(column, column.max)}")
        )
    if column.allowed is not None:
        values = ", ".join(_value(column, v) for v in column.allowed)
        shown = ", ".join(str(v) for v in column.allowed[:6]) + (", ..." if len(column.allowed) > 6 else "")
        out.append(Rule(f"{typed} NOT IN ({values})",
                        f"{name}: not one of the allowed values ({_shown(column, shown)})"))  # fmt: skip
    if column.regex is not None:
        out.append(
            Rule(
                f"NOT regexp_full_match({typed}, {literal(column.regex)})",
                f"{name}: does not match {_shown(column, repr(column.regex))}",
            )
        )
    return out


def typed_view(
    dataset: Dataset, source_view: str, raw_types: dict[str, str], row_key: tuple[str, ...] = ("_row",)
) -> str:
    """``SELECT`` of every source column as it came (row key included) and each declared column
    converted to its type as ``__t<i>``; with tensor columns, joined to their checks."""
    converted = ", ".join(
        f"{typed_expr(c, raw_types[c.name])} AS {typed_name(i)}" for i, c in enumerate(dataset.columns)
    )
    joined = ""
    if dataset.tensors:
        joined = f" JOIN {TENSOR_TABLE} USING ({', '.join(quote(k) for k in row_key)})"
    return f"SELECT *, {converted} FROM {quote(source_view)}{joined}"


def failures_query(
    dataset: Dataset, typed: str, raw_types: dict[str, str], row_key: tuple[str, ...], carry: list[str]
) -> str:
    """Rows failing a column rule: their row key, the ``carry`` columns as they came, ``_reason`` (the
    first failing rule) and ``_reasons`` (the first failing rule of each failing column).

    One OR of every condition finds the failing rows; the reasons are worked out for those rows only.
    """
    keys = ", ".join(quote(k) for k in [*row_key, *carry])
    chains: list[str] = []
    conditions: list[str] = []
    for i, column in enumerate(dataset.columns):
        column_rules = rules(dataset, column, i, raw_types[column.name])
        if column_rules:
            whens = " ".join(
                f"WHEN {r.condition} THEN {r.reason if r.reason_is_sql else literal(r.reason)}"
                for r in column_rules
            )
            chains.append(f"CASE {whens} END")
            conditions.extend(f"({r.condition})" for r in column_rules)
    if not chains:
        return f"SELECT {keys}, NULL::VARCHAR AS _reason, NULL::VARCHAR AS _reasons FROM {typed} WHERE false"
    cases = ", ".join(f"{chain} AS __r{i}" for i, chain in enumerate(chains))
    names = ", ".join(f"__r{i}" for i in range(len(chains)))
    return (
        f"SELECT {keys}, COALESCE({names}) AS _reason, concat_ws('; ', {names}) AS _reasons "
        f"FROM (SELECT {keys}, {cases} FROM {typed} WHERE {' OR '.join(conditions)})"
    )


def key_columns(dataset: Dataset) -> list[tuple[str, str]]:
    """(typed column name in the typed view, column name) for each key column."""
    index = {c.name: i for i, c in enumerate(dataset.columns)}
    return [(typed_name(index[k]), quote(k)) for k in dataset.key]


def _shown(column: Column, value: object) -> str:
    """A rule's value as a reason shows it: masked on a column tagged ``pii``."""
    return MASK if column.pii else str(value)


def _value(column: Column, value: object) -> str:
    """A bound or allowed value as SQL of the column's type; a fraction stays one on an integer column
    (cast to the column's type, max 1.5 would become 2 and let 2 pass)."""
    target = (
        "DOUBLE" if isinstance(value, float) and column.dtype in ("int32", "int64") else DTYPES[column.dtype]
    )
    return f"CAST({literal(_text(value))} AS {target})"


def _text(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
