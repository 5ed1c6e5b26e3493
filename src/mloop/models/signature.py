"""Model signatures: the columns a model takes and gives, with their types, checked before every prediction.

Types use the dataset vocabulary (:data:`mloop.data.schema.DTYPES`): int32, int64, float32, float64, bool,
string, timestamp, date. :meth:`Signature.validate` takes what a caller sends and returns exactly what the
model was trained on, or raises :class:`SignatureError` with one line per bad field, which the serving layer
turns into a 422:

- columns come back in the signature's order; extra columns are dropped (or refused with ``extra="error"``);
- a missing required column is refused; a missing optional one is filled with nulls;
- numbers are cast only where no value changes: int to float while it is exactly representable
  (|v| <= 2**53 for float64, 2**24 for float32), float to int while every value is whole, int64 to int32
  within range, float64 to float32 within range;
- strings are never read as numbers, numbers never as strings, and bools are neither;
- timestamps may arrive as ISO 8601 strings (JSON has no time type) and come back as UTC;
- nulls (None, NaN, NaT) pass only where ``nullable``; +-inf only where ``allow_non_finite``;
- a tensor column (``shape`` set: the per-row shape, ``-1`` where it varies) takes arrays or nested lists
  and gives one array per row of exactly its dtype and shape (:mod:`mloop.models.tensors`);
- a column whose training type was categorical (``categories`` set) comes back categorical with the training
  categories; a value not among them becomes null, which is how LightGBM and scikit-learn's encoders treat
  an unseen category.

>>> sig = infer(train_X, model.predict_proba(train_X)[:, 1])   # doctest: +SKIP
>>> sig.validate(request_frame)                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mloop.data.schema import DTYPES
from mloop.errors import SchemaError
from mloop.models import tensors
from mloop.models.flavours import json_safe

_EXACT_INT = {"float64": 2**53, "float32": 2**24}
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_NULLABLE_INT = {"int32": "Int32", "int64": "Int64"}
_EXAMPLES = 3


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column."""

    name: str
    dtype: str
    required: bool = True
    nullable: bool = False
    allow_non_finite: bool = False
    categories: tuple[Any, ...] | None = None
    shape: tuple[int, ...] | None = None  # a tensor's per-row shape (no batch dimension); None: a scalar

    def __post_init__(self) -> None:
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))
            problem = tensors.check_shape(self.name, self.dtype, self.shape)
            if problem is not None:
                raise SchemaError(problem[0].upper() + problem[1:] + ".")
        elif self.dtype not in DTYPES:
            raise SchemaError(
                f"Column {self.name!r}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}."
            )

    @property
    def is_tensor(self) -> bool:
        return self.shape is not None

    def expected(self) -> str:
        if self.shape is not None:
            return tensors.describe(self.dtype, self.shape)
        text = self.dtype
        if self.categories is not None:
            text += f" (categorical, {len(self.categories)} categories)"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "required": self.required,
            "nullable": self.nullable,
            "allow_non_finite": self.allow_non_finite,
        }
        if self.categories is not None:
            out["categories"] = json_safe(list(self.categories))
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        categories = data.get("categories")
        shape = data.get("shape")
        return cls(
            data["name"],
            data["dtype"],
            data.get("required", True),
            data.get("nullable", False),
            data.get("allow_non_finite", False),
            tuple(categories) if categories is not None else None,
            tuple(shape) if shape is not None else None,
        )


@dataclass(frozen=True)
class FieldProblem:
    """Why one field of an input is refused."""

    name: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.name}: expected {self.expected}, got {self.got}"


class SignatureError(SchemaError):
    """An input does not match a signature; ``problems`` holds one :class:`FieldProblem` per bad field."""

    def __init__(
        self,
        problems: list[FieldProblem],
        headline: str = "The input does not match the model's signature",
        fix: str = "Send each column the signature lists, with the type shown.",
    ) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        count = f"{len(problems)} field{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{headline} ({count}):\n{lines}\n{fix}")

    def to_dict(self) -> list[dict[str, str]]:
        return [{"field": p.name, "expected": p.expected, "got": p.got} for p in self.problems]


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and gives (``outputs``).

    >>> sig = Signature([ColumnSpec("amount", "float64"), ColumnSpec("country", "string")])
    >>> list(sig.validate(pd.DataFrame({"country": ["DE"], "amount": [3]})).columns)
    ['amount', 'country']
    """

    inputs: list[ColumnSpec]
    outputs: list[ColumnSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [c.name for c in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"A signature names each input once; repeated: {', '.join(duplicates)}.")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def validate(self, frame: pd.DataFrame, *, extra: str = "ignore") -> pd.DataFrame:
        """``frame`` as the model expects it (see the module docstring), or :class:`SignatureError`."""
        if extra not in ("ignore", "error"):
            raise SchemaError(f"extra must be 'ignore' or 'error', not {extra!r}.")
        if not isinstance(frame, pd.DataFrame):
            raise SchemaError(f"Expected a pandas DataFrame of inputs, got {type(frame).__name__}.")
        ready = self._as_is(frame)
        if ready is not None:
            return ready
        problems: list[FieldProblem] = []
        columns: dict[str, pd.Series] = {}
        present = {str(c): c for c in frame.columns}  # a frame may name its columns 0, 1, ...
        if len(present) != len(frame.columns):
            problems.append(FieldProblem("(columns)", "unique column names", "a repeated column"))
        for spec in self.inputs:
            if spec.name not in present:
                if spec.required:
                    problems.append(
                        FieldProblem(spec.name, spec.expected(), "nothing: the column is missing")
                    )
                    continue
                series = pd.Series([None] * len(frame), index=frame.index, dtype=object)
                converted, problem = _convert(series, dataclasses.replace(spec, nullable=True))
            else:
                converted, problem = _convert(frame[present[spec.name]], spec)
            if problem is not None:
                problems.append(FieldProblem(spec.name, spec.expected(), problem))
            else:
                columns[spec.name] = converted
        if extra == "error":
            known = set(self.names)
            problems += [
                FieldProblem(str(c), "nothing (not in the signature)", "an extra column")
                for c in frame.columns
                if str(c) not in known
            ]
        if problems:
            raise SignatureError(problems)
        return pd.DataFrame(columns, index=frame.index)

    def _as_is(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """``frame`` unchanged (a shallow copy) when it is already what the model expects, else None: the
        signature's columns in its order, each of its numpy number dtype, every float finite. The serving
        hot path (a row of looked-up numbers) then skips the per-column work, 1.3 ms for 20 columns here;
        anything else, extra columns included, takes the general path, which converts or explains."""
        plan = self._numbers
        if plan is None or len(frame.columns) != len(plan[0]) or list(frame.columns) != plan[0]:
            return None
        if list(frame.dtypes) != plan[1]:
            return None
        if plan[2] and not np.isfinite(frame.to_numpy(dtype="float64")).all():
            return None
        return frame.copy(deep=False)

    @functools.cached_property
    def _numbers(self) -> tuple[list[str], list[np.dtype[Any]], bool] | None:
        """What :meth:`_as_is` compares: the names, the numpy dtypes and whether any is a float; None
        unless every input is a plain number column (no shape, no categories)."""
        if not all(s.shape is None and s.categories is None and s.dtype in _NUMPY_FAST for s in self.inputs):
            return None
        dtypes = [np.dtype(s.dtype) for s in self.inputs]
        return [s.name for s in self.inputs], dtypes, any(d.kind == "f" for d in dtypes)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [c.to_dict() for c in self.inputs], "outputs": [c.to_dict() for c in self.outputs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            [ColumnSpec.from_dict(c) for c in data.get("inputs", [])],
            [ColumnSpec.from_dict(c) for c in data.get("outputs", [])],
        )


def infer(
    frame: pd.DataFrame,
    predictions: Any = None,
    *,
    output_names: Sequence[str] | None = None,
    nullable: bool | None = None,
) -> Signature:
    """The signature of a model fed ``frame`` and answering ``predictions``.

    Every column is required and ``allow_non_finite`` if it holds +-inf. A column is ``nullable`` if it holds
    a null, or always with ``nullable=True`` (for models that take missing values, such as LightGBM), so
    without that infer from the training set or a sample that shows its nulls, not from one clean row.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"Infer a signature from a pandas DataFrame, not a {type(frame).__name__}.")
    problems: list[FieldProblem] = []
    inputs = []
    for name in frame.columns:
        spec = _spec(str(name), frame[name])
        if isinstance(spec, FieldProblem):
            problems.append(spec)
        else:
            inputs.append(dataclasses.replace(spec, nullable=True) if nullable else spec)
    if problems:
        raise SignatureError(
            problems,
            "Cannot infer a signature from this example",
            f"Convert those columns to one of {', '.join(DTYPES)}, or pass signature= explicitly.",
        )
    return Signature(inputs, _outputs(predictions, output_names))


# ---- inference -------------------------------------------------------------------------------------------


def kind_of(series: pd.Series) -> str:
    """The signature dtype of ``series``, or a description of why it has none (starting with '?')."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return kind_of(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        size: int = getattr(dtype, "itemsize", 8)  # numpy's and pandas' nullable dtypes both have it
        wide = size > 4 or (size == 4 and pd.api.types.is_unsigned_integer_dtype(dtype))
        return "int64" if wide else "int32"
    if pd.api.types.is_float_dtype(dtype):
        return "float32" if getattr(dtype, "itemsize", 8) <= 4 else "float64"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return {
            "string": "string",
            "boolean": "bool",
            "integer": "int64",
            "floating": "float64",
            "mixed-integer-float": "float64",
            "datetime": "timestamp",
            "datetime64": "timestamp",
            "date": "date",
            "empty": "?null",
        }.get(inferred, f"?{inferred}")
    return f"?{dtype}"


def tensor_spec(name: str, batch: Any, *, dynamic: Sequence[int] = ()) -> ColumnSpec:
    """The spec of a tensor input from an example batch (first dimension: the batch); ``dynamic`` lists
    the per-row dimensions that may vary (0 is the first after the batch)."""
    array = np.asarray(batch)
    dtype = tensors.dtype_name(array)
    if dtype is None or array.ndim < 1:
        raise SchemaError(
            f"Input {name!r}: an example of {array.dtype} with shape {array.shape} is not a numeric batch; "
            "send an array whose first dimension is the batch."
        )
    shape = tuple(-1 if i in dynamic else int(d) for i, d in enumerate(array.shape[1:]))
    return ColumnSpec(name, dtype, shape=shape)


def _spec(name: str, series: pd.Series) -> ColumnSpec | FieldProblem:
    present = series.dropna()
    if series.dtype == object and len(present) and isinstance(present.iloc[0], np.ndarray):
        return _tensor_column(name, series)
    kind = kind_of(series)
    if kind == "?null":
        return FieldProblem(name, "values to infer a type from", "only nulls: pass a signature for it")
    if kind.startswith("?"):
        return FieldProblem(
            name, "a supported type", kind[1:] + " (convert it, for example to float64 or string)"
        )
    finite = True
    if kind in ("float32", "float64") and not isinstance(series.dtype, pd.CategoricalDtype):
        finite = not np.isinf(
            pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        ).any()
    categories = tuple(series.dtype.categories) if isinstance(series.dtype, pd.CategoricalDtype) else None
    return ColumnSpec(name, kind, True, bool(series.isna().any()), not finite, categories)


def _tensor_column(name: str, series: pd.Series) -> ColumnSpec | FieldProblem:
    arrays = [np.asarray(v) for v in series.dropna()]
    dtypes = {tensors.dtype_name(a) for a in arrays}
    if None in dtypes or len(dtypes) != 1:
        return FieldProblem(name, "arrays of one numeric dtype", f"{', '.join(sorted(map(str, dtypes)))}")
    try:
        shape = tensors.spec_shape(arrays)
    except ValueError as exc:
        return FieldProblem(name, "arrays with the same number of dimensions", str(exc))
    finite = all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f")
    return ColumnSpec(name, dtypes.pop() or "float32", True, bool(series.isna().any()), not finite,
                      shape=shape)  # fmt: skip


def _outputs(predictions: Any, names: Sequence[str] | None) -> list[ColumnSpec]:
    if predictions is None:
        return []
    values = np.asarray(predictions)
    series = pd.Series(values.ravel() if values.ndim <= 1 else values[:, 0])
    kind = kind_of(series)
    kind = kind if not kind.startswith("?") else "string"
    width = 1 if values.ndim <= 1 else values.shape[1]
    if names is None or len(names) != width:
        names = ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
    return [ColumnSpec(str(n), kind, nullable=bool(series.isna().any())) for n in names]


# ---- validation ------------------------------------------------------------------------------------------


def _convert(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, str | None]:
    if spec.shape is not None:
        arrays, problem = tensors.convert(
            series.tolist(),
            spec.dtype,
            spec.shape,
            nullable=spec.nullable,
            allow_non_finite=spec.allow_non_finite,
        )
        if problem is not None:
            return series, problem
        return pd.Series(tensors.cells(arrays), index=series.index), None
    if spec.categories is None and spec.dtype in _NUMPY_FAST:
        fast = _fast_numeric(series, spec)
        if fast is not None:
            return fast, None
    nulls = series.isna().to_numpy()
    if nulls.any() and not spec.nullable:
        return series, f"null values {_rows(nulls)}"
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(series.dtype.categories.dtype if len(series.dtype.categories) else object)
    got = kind_of(series)
    converter = _CONVERTERS[spec.dtype]
    out, problem = converter(series, spec, got, nulls)
    if problem is None and spec.categories is not None:
        # Codes against the training categories: an unseen value gets -1, which is a null.
        known = pd.Index(list(spec.categories))
        plain = got == "string" or nulls.any()  # nullable ints (Int64) cannot be cast to a numpy dtype
        codes = known.get_indexer(out if plain else out.astype(known.dtype))
        out = pd.Series(
            pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(known)), index=series.index
        )
    return out, problem


# Numeric targets whose common case (the input already has a plain numpy number dtype) is checked on the raw
# array, without the per-Series overhead of the general path: single-row requests are the serving hot path.
_NUMPY_FAST = {"int32": "i", "int64": "i", "float32": "f", "float64": "f", "bool": "b"}


def _fast_numeric(series: pd.Series, spec: ColumnSpec) -> pd.Series | None:
    """``series`` converted when that needs no judgement, else None (the general path then explains)."""
    dtype = series.dtype
    if not isinstance(dtype, np.dtype):
        return None
    target = _NUMPY_FAST[spec.dtype]
    if dtype == np.dtype(spec.dtype) and target in "ib":
        return series
    if target != "f" or dtype.kind not in "fi":
        return None
    values = series.to_numpy()
    if dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all() and not (spec.nullable and spec.allow_non_finite):
            missing = np.isnan(values)
            if (missing.any() and not spec.nullable) or (
                (~finite & ~missing).any() and not spec.allow_non_finite
            ):
                return None
        if dtype == np.dtype(spec.dtype):
            return series
        if spec.dtype == "float32":
            return None  # narrowing: the general path checks the range
        return pd.Series(values.astype(spec.dtype), index=series.index)
    if len(values) and np.abs(values).max() > _EXACT_INT[spec.dtype]:
        return None
    return pd.Series(values.astype(spec.dtype), index=series.index)


def _to_int(series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray) -> tuple[pd.Series, str | None]:
    if got in ("int32", "int64", "float32", "float64", "?null"):
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if got.startswith("float"):
            bad = ~nulls & ~(np.isfinite(values) & (values == np.round(values)))
            if bad.any():
                return series, f"{got} with values that are not whole numbers {_rows(bad, series)}"
        low, high = _INT_RANGE[spec.dtype]
        if got == "int64" or got.startswith("float"):
            # Compared as they are (Python ints, uint64): cast to int64 first, 2**63 would wrap around to
            # a negative number and pass, and 2**64 would raise.
            kept = series.dropna() if got == "int64" else values[~nulls]
            if len(kept) and (kept.min() < low or kept.max() > high):
                return series, f"{got} outside the {spec.dtype} range"
        if nulls.any():
            return series.astype("float64").astype(_NULLABLE_INT[spec.dtype]), None  # type: ignore[call-overload]  # pandas-stubs: a str dtype
        return series.astype(spec.dtype), None  # type: ignore[call-overload]  # pandas-stubs: a str dtype
    return series, _describe(got)


def _to_float(
    series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray
) -> tuple[pd.Series, str | None]:
    if got not in ("int32", "int64", "float32", "float64", "?null"):
        return series, _describe(got)
    if got in ("int32", "int64"):
        ints = series.dropna()  # not cast to int64 first: past it, a value would wrap around or raise
        limit = _EXACT_INT[spec.dtype]
        if len(ints) and (ints.max() > limit or ints.min() < -limit):
            return (
                series,
                f"{got} values too large for {spec.dtype} to hold exactly (|v| > 2**{limit.bit_length() - 1})",
            )
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    infinite = np.isinf(values)
    if spec.dtype == "float32":
        infinite = infinite | (np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max))
    if infinite.any() and not spec.allow_non_finite:
        return series, f"infinite values {_rows(infinite, series)}"
    return pd.Series(values.astype(spec.dtype), index=series.index), None


def _to_bool(
    series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray
) -> tuple[pd.Series, str | None]:
    if got not in ("bool", "?null"):
        return series, _describe(got)
    return series.astype("boolean" if nulls.any() else "bool"), None


def _to_string(
    series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray
) -> tuple[pd.Series, str | None]:
    if got not in ("string", "?null"):
        return series, _describe(got)
    return series, None


def _to_timestamp(
    series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray
) -> tuple[pd.Series, str | None]:
    if got == "timestamp":
        if getattr(series.dtype, "tz", None) is None and pd.api.types.is_datetime64_dtype(series.dtype):
            return series.dt.tz_localize("UTC"), None
        return pd.to_datetime(series, utc=True), None
    if got in ("string", "date", "?null"):
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
        bad = ~nulls & parsed.isna().to_numpy()
        if bad.any():
            return series, f"text that is not an ISO 8601 time {_rows(bad, series)}"
        return parsed, None
    return series, _describe(got)


def _to_date(
    series: pd.Series, spec: ColumnSpec, got: str, nulls: np.ndarray
) -> tuple[pd.Series, str | None]:
    if got == "date":
        return series, None
    if got in ("string", "timestamp", "?null"):
        parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
        bad = ~nulls & parsed.isna().to_numpy()
        if got == "timestamp":
            bad = bad | (~nulls & (parsed.dt.normalize() != parsed).to_numpy())
        if bad.any():
            return series, f"values that are not dates {_rows(bad, series)}"
        return pd.Series(
            [None if n else d.date() for d, n in zip(parsed, nulls, strict=True)],
            index=series.index,
            dtype=object,
        ), None
    return series, _describe(got)


_CONVERTERS: dict[str, Callable[..., tuple[pd.Series, str | None]]] = {
    "int32": _to_int,
    "int64": _to_int,
    "float32": _to_float,
    "float64": _to_float,
    "bool": _to_bool,
    "string": _to_string,
    "timestamp": _to_timestamp,
    "date": _to_date,
}


def _describe(got: str) -> str:
    return f"{got[1:]} values" if got.startswith("?") else got


def _rows(mask: np.ndarray, series: pd.Series | None = None) -> str:
    where = np.flatnonzero(mask)
    shown = where[:_EXAMPLES]
    if series is not None:
        items = ", ".join(f"{_show(series.iloc[i])} in row {i}" for i in shown)
    else:
        items = "rows " + ", ".join(str(i) for i in shown)
    more = f" and {len(where) - len(shown)} more" if len(where) > len(shown) else ""
    return f"({items}{more})"


def _show(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."
