"""Dataset schemas: columns with types and rules, a unique key and a timestamp column.

>>> import mloop as ml
>>> txns = ml.Dataset("transactions", columns=[
...     ml.Column("txn_id", "int64", nullable=False),
...     ml.Column("ts", "timestamp"),
...     ml.Column("amount", "float64", min=0),
...     ml.Column("country", "string", allowed=["DE", "FR", "NL"]),
... ], key=["txn_id"], timestamp="ts")
>>> images = ml.Dataset("digits", columns=[
...     ml.Column("id", "int64"),
...     ml.Column("image", "tensor", shape=(1, 28, 28), dtype="float32"),   # a fixed-shape tensor
...     ml.Column("readings", "tensor", shape=(-1, 3), dtype="float64"),    # a sequence of 3-vectors
... ], key="id")
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from mloop._names import valid
from mloop._time import as_utc
from mloop.data.sensor_spec import SensorChecks
from mloop.errors import SchemaError

# dtype -> DuckDB type. Every value mloop stores is one of these.
DTYPES: dict[str, str] = {
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
}
ALIASES = {
    "int": "int64",
    "integer": "int64",
    "float": "float64",
    "double": "float64",
    "str": "string",
    "text": "string",
    "boolean": "bool",
    "datetime": "timestamp",
}
NUMERIC = {"int32", "int64", "float32", "float64"}
TENSOR = "tensor"
# Element types of a tensor column (the dtype= of Column(name, "tensor", shape=..., dtype=...)).
ELEMENTS = ("float32", "float64", "int32", "int64", "uint8", "bool")
ORDERED = NUMERIC | {"timestamp", "date"}
# Columns mloop adds to quarantine files and partition paths.
RESERVED = {"_row", "_file", "_line", "_raw", "_reason", "_reasons", "_date", "_ingest"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_TIMESTAMP_NAMES = ("ts", "timestamp", "event_timestamp", "event_time", "time", "datetime", "created_at")


class Column(BaseModel):
    """One column: its type, whether it may be null, and the rules each value must pass.

    ``min``/``max`` apply to numbers, timestamps and dates; ``allowed`` to any type; ``regex`` (a full
    match, RE2 syntax) to strings. Float columns reject NaN and infinity unless ``allow_non_finite``.

    A **tensor** column holds one array per row: ``Column("image", "tensor", shape=(1, 28, 28),
    dtype="float32")``. With the positional type ``"tensor"``, ``dtype=`` names the element type (one of
    :data:`ELEMENTS`, stored as ``element``; float32 if omitted) and ``shape`` the per-row shape; a first
    dimension of ``-1`` makes a variable-length sequence (``shape=(-1,)``, ``shape=(-1, 3)``). Each row must
    have that shape, convert to the element type exactly and (floats) hold only finite values unless
    ``allow_non_finite``; other rows are quarantined with the reason. In YAML:
    ``{name: image, dtype: tensor, element: float32, shape: [1, 28, 28]}``.

    ``pii=True`` marks personal data (an e-mail, a customer id): the prediction log stores a keyed hash of
    such an input instead of the value (``pii:`` in ``mloop.yaml``), quarantine reasons never show its
    rules' values, and ``mloop forget`` finds a subject's rows by it. In YAML: ``{name: email, pii: true}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: str = "string"
    nullable: bool = True
    min: float | int | datetime | date | None = None
    max: float | int | datetime | date | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    allow_non_finite: bool = False
    shape: tuple[int, ...] | None = None
    element: str | None = None
    pii: bool = False  # personal data; left out of the stored spec when False, so old schemas compare equal
    description: str = ""

    def __init__(self, name: str | None = None, dtype: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        if dtype is not None:
            if str(dtype).lower() == TENSOR and "dtype" in data:
                # Column("image", "tensor", shape=..., dtype="float32"): the keyword is the element type.
                if data.get("element") is not None:
                    raise SchemaError(
                        f"column {data.get('name')!r}: give the element type once, as dtype= or element=."
                    )
                data["element"] = data.pop("dtype")
            data["dtype"] = dtype
        super().__init__(**data)

    @property
    def is_tensor(self) -> bool:
        return self.dtype == TENSOR

    @property
    def fixed(self) -> bool:
        """A tensor column whose every dimension is known (no -1): stored as a fixed-shape tensor."""
        return self.shape is not None and -1 not in self.shape

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or value != value.strip():
            raise ValueError(f"column name {value!r} must be non-empty with no surrounding spaces")
        if value in RESERVED:
            raise ValueError(f"column name {value!r} is reserved by mloop ({', '.join(sorted(RESERVED))})")
        return value

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: str) -> str:
        dtype = ALIASES.get(str(value).lower(), str(value).lower())
        if dtype not in DTYPES and dtype != TENSOR:
            raise ValueError(f"unknown dtype {value!r}; use one of {', '.join([*DTYPES, TENSOR])}")
        return dtype

    @field_validator("element", mode="before")
    @classmethod
    def _element(cls, value: Any) -> Any:
        if value is None:
            return None
        element = ALIASES.get(str(value).lower(), str(value).lower())
        if element not in ELEMENTS:
            raise ValueError(f"unknown tensor element type {value!r}; use one of {', '.join(ELEMENTS)}")
        return element

    @field_validator("shape", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value,)  # shape=64 is shape=(64,)
        return value

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, value: Any) -> Any:
        # A date written as text stays a date (not midnight of a datetime), so a schema read back from
        # YAML equals the one written. Values are compared in UTC: a naive datetime is taken to be UTC.
        if isinstance(value, str) and _ISO_DATE.match(value.strip()):
            with contextlib.suppress(ValueError):
                text = value.strip()
                value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        return as_utc(value) if isinstance(value, datetime) else value

    @model_validator(mode="after")
    def _rules(self) -> Column:
        if self.dtype == TENSOR:
            return self._tensor_rules()
        if self.shape is not None or self.element is not None:
            what = "shape" if self.shape is not None else "element"
            raise ValueError(
                f"column {self.name!r}: {what} applies to tensor columns, not to {self.dtype}; declare "
                f"Column({self.name!r}, 'tensor', shape={self.shape or (64,)}, dtype='float32')"
            )
        if (self.min is not None or self.max is not None) and self.dtype not in ORDERED:
            raise ValueError(
                f"min/max apply to numbers, timestamps and dates, not to {self.dtype} column {self.name!r}"
            )
        for bound in (self.min, self.max):
            if bound is not None and isinstance(bound, date) != (self.dtype in ("timestamp", "date")):
                kind = "a number" if self.dtype in NUMERIC else "a date or time such as 2024-01-01"
                raise ValueError(
                    f"column {self.name!r}: bound {bound!r} does not fit dtype {self.dtype}; write {kind}"
                )
        if self.min is not None and self.max is not None and _ordered(self.min) > _ordered(self.max):
            raise ValueError(f"column {self.name!r}: min {self.min} is greater than max {self.max}")
        if self.regex is not None:
            if self.dtype != "string":
                raise ValueError(f"regex applies to string columns, not to {self.dtype} column {self.name!r}")
            problem = _re2_problem(self.regex)
            if problem:
                raise ValueError(
                    f"column {self.name!r}: regex {self.regex!r} does not compile as RE2, the syntax values "
                    f"are checked with ({problem}); rewrite it without lookarounds or backreferences"
                )
        if self.allowed is not None and len(self.allowed) == 0:
            raise ValueError(
                f"column {self.name!r}: allowed is empty, so no value could pass; omit it instead"
            )
        if self.allowed is not None and self.dtype in NUMERIC:
            wrong = [v for v in self.allowed if isinstance(v, bool) or not isinstance(v, int | float)]
            if wrong:
                raise ValueError(
                    f"column {self.name!r}: allowed values {wrong} are not numbers; list numbers for a "
                    f"{self.dtype} column"
                )
        return self

    def _tensor_rules(self) -> Column:
        name = self.name
        if self.shape is None or len(self.shape) == 0:
            raise ValueError(
                f"tensor column {name!r} needs shape=, the shape of one row's value, e.g. shape=(1, 28, 28), "
                "or shape=(-1,) for a variable-length sequence"
            )
        shape = self.shape
        if any(d == 0 or d < -1 for d in shape) or -1 in shape[1:]:
            raise ValueError(
                f"tensor column {name!r}: shape {list(shape)} must hold positive sizes, with -1 allowed as "
                "the first dimension only (a variable length), e.g. (1, 28, 28), (-1,) or (-1, 3)"
            )
        rules = {"min": self.min, "max": self.max, "allowed": self.allowed, "regex": self.regex}
        given = [rule for rule, value in rules.items() if value is not None]
        if given:
            raise ValueError(
                f"{'/'.join(given)} do not apply to tensor column {name!r}; a tensor's rules are its shape, "
                "element type and allow_non_finite"
            )
        if self.element is None:
            object.__setattr__(self, "element", "float32")
        return self


class Dataset(BaseModel):
    """A named dataset and its schema. ``key`` columns are unique across everything ingested."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    timestamp: str | None = None
    extra_columns: Literal["error", "ignore"] = "error"
    sensors: tuple[SensorChecks, ...] = ()  # rules on each sensor's series (mloop.data.sensors)
    description: str = ""

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        if isinstance(data.get("key"), str):
            data["key"] = (data["key"],)
        if isinstance(data.get("sensors"), SensorChecks | dict):
            data["sensors"] = (data["sensors"],)
        super().__init__(**data)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        names = [c.name for c in self.columns]
        if not names:
            raise ValueError(f"dataset {self.name!r} has no columns")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"dataset {self.name!r} declares column(s) {duplicated} more than once")
        for key in self.key:
            if key not in names:
                raise ValueError(f"key column {key!r} is not a column of {self.name!r} (columns: {names})")
        if self.timestamp is not None:
            if self.timestamp not in names:
                raise ValueError(f"timestamp column {self.timestamp!r} is not a column of {self.name!r}")
            if self.column(self.timestamp).dtype not in ("timestamp", "date"):
                raise ValueError(f"timestamp column {self.timestamp!r} must have dtype timestamp or date")
        tensor_keys = [k for k in self.key if self.column(k).is_tensor]
        if tensor_keys:
            raise ValueError(f"key column(s) {tensor_keys} are tensors; a key must be a scalar column")
        for checks in self.sensors:
            self._sensor_problem(checks, names)
        return self

    def _sensor_problem(self, checks: SensorChecks, names: list[str]) -> None:
        where = f"sensor checks of {checks.value!r}"
        if self.timestamp is None or self.column(self.timestamp).dtype != "timestamp":
            raise ValueError(f"{where} order readings by time: declare a timestamp column (dtype timestamp)")
        unknown = [c for c in (*checks.key, checks.value) if c not in names]
        if unknown:
            raise ValueError(
                f"{where} name column(s) {unknown} that {self.name!r} does not declare ({names})"
            )
        if self.column(checks.value).dtype not in NUMERIC:
            raise ValueError(
                f"{where}: {checks.value!r} must be a number column, not {self.column(checks.value).dtype}"
            )
        odd = [c for c in checks.key if self.column(c).is_tensor]
        if odd:
            raise ValueError(f"{where}: key column(s) {odd} are tensors; a sensor is named by scalar columns")

    @property
    def tensors(self) -> list[Column]:
        """The tensor columns, in declared order."""
        return [c for c in self.columns if c.is_tensor]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(
            f"Dataset {self.name!r} has no column {name!r}; columns: {[c.name for c in self.columns]}."
        )

    @property
    def pii(self) -> list[str]:
        """The columns tagged ``pii=True``, in declared order."""
        return [c.name for c in self.columns if c.pii]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def required(self, column: Column) -> bool:
        """Key and timestamp columns can never be null, whatever the column says."""
        return not column.nullable or column.name in self.key or column.name == self.timestamp

    # ---- files --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data["columns"] = [
            c.model_dump(mode="json", exclude_defaults=True) | {"name": c.name} for c in self.columns
        ]
        return {"name": self.name, **data}

    def to_yaml(self) -> str:
        data = self.to_dict()
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if yaml.safe_load(text) != data:
            # Some characters (NEL, the Unicode line and paragraph separators) do not survive YAML as
            # raw text; escaping everything outside ASCII keeps the file exact.
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "schema") -> Dataset:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(describe(exc, origin)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, *, name: str | None = None) -> Dataset:
        """Read a schema file; ``name`` fills in (or overrides) the dataset name it declares."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SchemaError(f"Schema file {path} does not exist.") from None
        except yaml.YAMLError as exc:
            raise SchemaError(f"Schema file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SchemaError(
                f"Schema file {path} must hold a mapping with 'columns', not {type(data).__name__}."
            )
        if name:
            data["name"] = name
        return cls.from_dict(data, origin=str(path))


def name_problem(name: str) -> str | None:
    """What is wrong with a dataset name, or None: it names a folder, so it is checked before any is made."""
    if not valid(_NAME, name):
        return (
            f"dataset name {name!r} must start with a lowercase letter and hold only a-z, 0-9 and _ "
            "(it names a folder)"
        )
    return None


def describe(exc: ValidationError, origin: str) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-after"))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"Invalid dataset schema ({origin}): " + "; ".join(problems) + "."


def _re2_problem(regex: str) -> str | None:
    """Why DuckDB's RE2, which checks the values, rejects ``regex``; None when it compiles."""
    with duckdb.connect() as con:
        try:
            con.execute("SELECT regexp_full_match('', ?)", [regex])
        except duckdb.Error as exc:
            return str(exc).strip().splitlines()[0]
    return None


def _ordered(bound: float | int | date) -> float:
    """A bound as a number that compares with any other bound of its column (a date or time is its POSIX
    timestamp; a date is its midnight, UTC)."""
    if isinstance(bound, datetime):
        return bound.timestamp()
    if isinstance(bound, date):
        return datetime(bound.year, bound.month, bound.day, tzinfo=UTC).timestamp()
    return bound


def pick_timestamp(columns: dict[str, str]) -> str | None:
    """The timestamp column to partition by when none is declared: a well-known name, or the only one."""
    stamps = [name for name, dtype in columns.items() if dtype in ("timestamp", "date")]
    for name in _TIMESTAMP_NAMES:
        if name in stamps:
            return name
    return stamps[0] if len(stamps) == 1 else None
