"""Feature definitions: entities, feature views with window aggregations, on-demand views, sources.

A feature is defined once, here, and both the offline store (training sets) and the online store
(serving) compute it from that one definition.

>>> import mloop as ml
>>> customer = ml.Entity("customer", join_keys=["customer_id"])
>>> stats = ml.FeatureView(
...     "customer_txn_stats", entities=[customer], ttl="7d",
...     source=ml.ParquetSource("data/transactions.parquet", timestamp="ts"),
...     aggregations=[ml.Aggregation("amount", "mean", window="1h"),
...                   ml.Aggregation("amount", "count", window="24h")],
... )
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from mloop._names import valid
from mloop._time import parse_duration
from mloop.data.schema import ALIASES, DTYPES, ELEMENTS
from mloop.data.sources import ParquetSource, Source
from mloop.errors import SchemaError
from mloop.features.aggregation import Aggregation as Aggregation  # re-exported: defined with the views
from mloop.features.aggregation import duration_text
from mloop.features.fallback import checked as checked_defaults
from mloop.features.keys import declared as keys_dtypes
from mloop.store.types import canonical_json

# The most elements one tensor feature value may hold: it travels as JSON in every online read, so 4096
# float32 (a 4096-d embedding, ~40-80 KB of JSON) keeps a lookup in the low milliseconds.
MAX_TENSOR_ELEMENTS = 4096
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def _check_name(kind: str, name: str) -> str:
    if not valid(_NAME, name):
        raise SchemaError(
            f"{kind} name {name!r} is not allowed: start with a lowercase letter and use only a-z, 0-9 and _."
        )
    return name


def _dtype(value: str, where: str) -> str:
    dtype = ALIASES.get(str(value).lower(), str(value).lower())
    if dtype not in DTYPES:
        raise SchemaError(f"{where}: unknown dtype {value!r}; use one of {', '.join(DTYPES)}.")
    return dtype


@dataclass(frozen=True)
class Field:
    """A typed column: ``Field("amount", "float64")``; with ``shape``, a fixed-shape tensor whose elements
    are ``dtype``: ``Field("embedding", "float32", shape=(64,))`` (at most :data:`MAX_TENSOR_ELEMENTS`
    elements). Online, a tensor feature reads back as a (nested) list of that shape; offline, as per-row
    NumPy arrays. ``pii=True`` marks personal data: the prediction log hashes it (see docs/security.md)."""

    name: str
    dtype: str = "float64"
    shape: tuple[int, ...] | None = None
    pii: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"Field name {self.name!r} must be a non-empty string.")
        where = f"field {self.name!r}"
        if self.shape is None:
            object.__setattr__(self, "dtype", _dtype(self.dtype, where))
            return
        dtype = ALIASES.get(str(self.dtype).lower(), str(self.dtype).lower())
        if dtype not in ELEMENTS:
            raise SchemaError(f"{where}: a tensor's dtype is its element type, one of {', '.join(ELEMENTS)}.")
        shape = (self.shape,) if isinstance(self.shape, int) else tuple(self.shape)
        if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
            raise SchemaError(
                f"{where}: shape {list(shape)} must list positive sizes, e.g. (64,); a feature tensor has a fixed "
                "shape (no -1)."
            )
        if math.prod(shape) > MAX_TENSOR_ELEMENTS:
            raise SchemaError(
                f"{where}: shape {list(shape)} holds {math.prod(shape)} elements, more than the "
                f"{MAX_TENSOR_ELEMENTS} an online feature value may hold. Reduce it (e.g. a smaller embedding "
                "or PCA), or keep the tensor in a dataset and read it offline."
            )
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)

    @property
    def size(self) -> int:
        """Elements per value: 1 for a scalar."""
        return math.prod(self.shape) if self.shape else 1

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            spec["shape"] = list(self.shape)  # only when set: scalar fields keep their stored hash
        if self.pii:
            spec["pii"] = True  # likewise: untagged fields keep their stored hash
        return spec


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer, a merchant), identified by its join key columns. ``dtype``
    (as Feast's ``value_type``): the type of its keys, ``"int64"``, ``"int32"`` or ``"string"``, one for
    all or one per key (``{"country": "string", "store_id": "int64"}``); left out, it is taken from the
    sources of the views that use the entity. Online reads refuse a key of another type. ``pii=True``
    marks the join keys as personal data: the prediction log hashes them, ``mloop forget`` erases by them."""

    name: str
    join_keys: Sequence[str] = ()
    description: str = ""
    dtype: str | Mapping[str, str] | None = None
    pii: bool = False

    def __post_init__(self) -> None:
        _check_name("Entity", self.name)
        keys = tuple(self.join_keys) or (f"{self.name}_id",)
        if len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
            raise SchemaError(
                f"Entity {self.name!r}: join_keys must be distinct column names, got {list(keys)}."
            )
        object.__setattr__(self, "join_keys", keys)
        types = keys_dtypes(self.name, keys, self.dtype)
        object.__setattr__(self, "dtype", None if types is None else dict(zip(keys, types, strict=True)))

    kind = "entity"

    @property
    def key_types(self) -> dict[str, str]:
        """``{join key: dtype}`` of the keys whose type is declared (none when ``dtype`` is left out)."""
        return dict(self.dtype) if isinstance(self.dtype, Mapping) else {}

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
        }
        if self.dtype is not None:
            spec["dtypes"] = self.key_types  # only when declared: entities without keep their stored hash
        if self.pii:
            spec["pii"] = True  # likewise: untagged entities keep their stored hash
        return spec


@dataclass
class DatasetSource(Source):
    """An ingested mloop dataset (see ``project.data``); its timestamp column comes from its schema."""

    dataset: str = ""

    def describe(self) -> str:
        return f"dataset {self.dataset}"


@dataclass
class PushSource(Source):
    """Rows pushed by applications (``project.features.push``): written to the online store at once and
    appended to an offline log that later training sets read."""

    name: str = ""
    schema: Sequence[Field] = ()

    def __post_init__(self) -> None:
        _check_name("PushSource", self.name)
        fields = tuple(f if isinstance(f, Field) else Field(*f) for f in self.schema)
        if not fields:
            raise SchemaError(f"PushSource {self.name!r} needs a schema: a list of Field(name, dtype).")
        self.schema = fields
        if self.timestamp is None:
            stamps = [f.name for f in fields if f.dtype == "timestamp"]
            if len(stamps) != 1:
                raise SchemaError(
                    f"PushSource {self.name!r}: say which field is the event time with timestamp=..."
                )
            self.timestamp = stamps[0]

    kind = "push_source"

    def describe(self) -> str:
        return f"push source {self.name}"

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schema": [f.spec() for f in self.schema],
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
        }


def source_spec(source: Source) -> dict[str, Any]:
    """A source as data, so definitions can be stored, compared and versioned."""
    if isinstance(source, ParquetSource):
        paths = [source.path] if isinstance(source.path, str | Path) else list(source.path)
        return {"type": "parquet", "path": [str(p) for p in paths], "timestamp": source.timestamp,
                "created_timestamp": source.created_timestamp}  # fmt: skip
    if isinstance(source, DatasetSource):
        return {"type": "dataset", "dataset": source.dataset, "timestamp": source.timestamp,
                "created_timestamp": source.created_timestamp}  # fmt: skip
    if isinstance(source, PushSource):
        return {"type": "push", **source.spec()}
    raise SchemaError(
        f"A feature view cannot read from {type(source).__name__}; use ParquetSource, DatasetSource (an ingested "
        "dataset) or PushSource. Ingest CSV files as a dataset first: mloop data ingest FILE --dataset NAME."
    )


def source_from_spec(spec: dict[str, Any]) -> Source:
    kind = spec["type"]
    if kind == "parquet":
        path = spec["path"][0] if len(spec["path"]) == 1 else spec["path"]
        return ParquetSource(
            path, timestamp=spec["timestamp"], created_timestamp=spec.get("created_timestamp")
        )
    if kind == "dataset":
        return DatasetSource(dataset=spec["dataset"], timestamp=spec.get("timestamp"),
                             created_timestamp=spec.get("created_timestamp"))  # fmt: skip
    if kind == "push":
        return PushSource(name=spec["name"], schema=[Field(**f) for f in spec["schema"]],
                          timestamp=spec["timestamp"], created_timestamp=spec.get("created_timestamp"))  # fmt: skip
    raise SchemaError(f"Unknown stored source type {kind!r}.")


@dataclass(frozen=True)
class FeatureView:
    """Features of one or more entities, from one source: plain ``features`` (the latest value at or
    before t, within ``ttl``) and window ``aggregations`` (over the events in ``(t - window, t]``).
    ``on_missing``: what serving does while the online store is unreachable, ``"error"`` (503) or
    ``"default"`` (answer with ``defaults``, a value per feature, null for one left out; see
    :mod:`mloop.features.fallback`)."""

    name: str
    entities: Sequence[Entity] = ()
    source: Source | None = None
    ttl: str | timedelta | None = None
    features: Sequence[Field] = ()
    aggregations: Sequence[Aggregation] = ()
    owner: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    on_missing: str = "error"
    defaults: dict[str, Any] = field(default_factory=dict)

    kind = "feature_view"

    def __post_init__(self) -> None:
        _check_name("FeatureView", self.name)
        entities = tuple(self.entities)
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise SchemaError(f"FeatureView {self.name!r} needs entities=[mloop.Entity(...), ...].")
        object.__setattr__(self, "entities", entities)
        if self.source is None:
            raise SchemaError(
                f"FeatureView {self.name!r} needs a source (ParquetSource, DatasetSource, PushSource)."
            )
        source_spec(self.source)  # refuses unsupported sources with the fix
        if not isinstance(self.source, DatasetSource) and not self.source.timestamp:
            raise SchemaError(f"FeatureView {self.name!r}: its source needs timestamp='<event time column>'.")
        ttl = parse_duration(self.ttl, what=f"ttl of {self.name}") if self.ttl not in (None, 0, "0") else None
        if ttl is not None and ttl <= timedelta(0):
            ttl = None  # ttl 0 means no bound, as in Feast
        object.__setattr__(self, "ttl", ttl)
        fields = tuple(f if isinstance(f, Field) else Field(*f) for f in self.features)
        object.__setattr__(self, "features", fields)
        object.__setattr__(self, "aggregations", tuple(self.aggregations))
        if not fields and not self.aggregations:
            raise SchemaError(
                f"FeatureView {self.name!r} defines no features: give features=[...] or aggregations=[...]."
            )
        names = self.feature_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SchemaError(
                f"FeatureView {self.name!r} defines feature(s) {duplicated} twice; give them distinct names."
            )
        clash = sorted(set(names) & set(self.join_keys))
        if clash:
            raise SchemaError(f"FeatureView {self.name!r}: feature(s) {clash} have the name of a join key.")
        object.__setattr__(self, "tags", dict(self.tags))
        kinds: dict[str, str | None] = {f.name: f.dtype for f in fields} | {
            a.feature: None for a in self.aggregations
        }
        object.__setattr__(
            self, "defaults", checked_defaults(self.name, self.on_missing, self.defaults, kinds)
        )

    @property
    def join_keys(self) -> list[str]:
        return [key for entity in self.entities for key in entity.join_keys]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features] + [a.feature for a in self.aggregations]

    @property
    def max_window(self) -> timedelta | None:
        """How far back an event can still count for some aggregation (see Aggregation.lookback): the
        online store keeps this much, the offline store reads this much before the first entity row."""
        return max((a.lookback for a in self.aggregations), default=None)

    def spec(self) -> dict[str, Any]:
        assert self.source is not None
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "join_keys": self.join_keys,
            "source": source_spec(self.source),
            "ttl": duration_text(self.ttl) if isinstance(self.ttl, timedelta) else None,
            "features": [f.spec() for f in self.features],
            "aggregations": [a.spec() for a in self.aggregations],
            "owner": self.owner,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            # only when declared: views without keep their stored hash
            **(
                {"on_missing": self.on_missing, "defaults": self.defaults}
                if self.on_missing != "error"
                else {}
            ),
        }


@dataclass(frozen=True)
class OnDemandView:
    """Features computed at request time from stored features and request data, by ``fn``, a function
    over a batch: it receives a pandas DataFrame (one column per input feature, by its short name, and per
    request field) and returns a DataFrame or dict with the ``outputs`` columns. The same function runs when
    training sets are built and when features are served."""

    name: str
    inputs: Sequence[str] = ()
    request: Sequence[Field] = ()
    fn: Callable[..., Any] | None = None
    outputs: Sequence[Field] = ()
    description: str = ""
    source_code: str = ""

    kind = "on_demand_view"

    def __post_init__(self) -> None:
        _check_name("OnDemandView", self.name)
        for ref in self.inputs:
            if not isinstance(ref, str) or ref.count(":") != 1 or ref.endswith(":*"):
                raise SchemaError(
                    f"OnDemandView {self.name!r}: input {ref!r} must name one feature as 'view:feature'."
                )
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(
            self, "request", tuple(f if isinstance(f, Field) else Field(*f) for f in self.request)
        )
        outputs = tuple(f if isinstance(f, Field) else Field(*f) for f in self.outputs)
        if not outputs:
            raise SchemaError(f"OnDemandView {self.name!r} needs outputs=[mloop.Field(name, dtype), ...].")
        object.__setattr__(self, "outputs", outputs)
        if self.fn is None or not callable(self.fn):
            raise SchemaError(f"OnDemandView {self.name!r} needs fn=<a function of a DataFrame>.")
        if not self.source_code:
            object.__setattr__(self, "source_code", _function_source(self.fn, self.name))

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.outputs]

    def spec(self) -> dict[str, Any]:
        assert self.fn is not None
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "request": [f.spec() for f in self.request],
            "outputs": [f.spec() for f in self.outputs],
            "function": self.fn.__name__,
            "source_code": self.source_code,
            "description": self.description,
        }


def _function_source(fn: Callable[..., Any], view: str) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise SchemaError(
            f"OnDemandView {view!r}: the source of its function cannot be read (a lambda typed at a prompt?). "
            "Define it with def in a file, so the server can run the same code."
        ) from None


def function_from_source(spec: dict[str, Any]) -> Callable[..., Any]:
    """Rebuild an on-demand view's function from its stored source (run by processes that serve it)."""
    import numpy as np
    import pandas as pd

    namespace: dict[str, Any] = {"np": np, "numpy": np, "pd": pd, "pandas": pd}
    exec(compile(spec["source_code"], f"<on-demand view {spec['name']}>", "exec"), namespace)
    return namespace[spec["function"]]


Definition = Entity | FeatureView | OnDemandView | PushSource


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()
