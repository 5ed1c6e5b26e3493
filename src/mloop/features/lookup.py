"""The online read path: one round trip to the online store for every view a request needs, then TTLs,
window aggregations and on-demand features applied in process. This is on the serving hot path: the
plan for a feature list is built once and cached; per request there is only key building, one store
read and assembling columns. When the store cannot be reached, each view's ``on_missing`` decides
(:mod:`mloop.features.fallback`): the request fails, or the view's features take its defaults.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop._time import CLOCK_SKEW
from mloop.data.sources import ParquetSource
from mloop.errors import OnlineStoreUnavailable, SchemaError
from mloop.features import keys as key_check
from mloop.features import on_demand
from mloop.features.aggregate import window_value
from mloop.features.definitions import Aggregation, DatasetSource, FeatureView, OnDemandView, PushSource
from mloop.features.fallback import STORE_UNAVAILABLE, Reads
from mloop.features.online.base import OnlineRead, decode, entity_key
from mloop.features.refs import Resolved
from mloop.models.signature import ColumnSpec, Signature

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CLOCK_SKEW_US = int(CLOCK_SKEW.total_seconds() * 1_000_000)


@dataclass
class ViewPart:
    view: FeatureView
    namespace: str
    features: list[str]  # plain feature names wanted
    aggregations: list[Aggregation]
    ttl_us: int | None
    window_us: int  # longest wanted lookback (Aggregation.lookback)
    dtypes: dict[str, str]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # tensors of more than one dimension


@dataclass
class OnlinePlan:
    join_keys: list[str]
    parts: list[ViewPart]
    on_demand: list[tuple[OnDemandView, list[str]]]
    request_fields: list[str]
    columns: list[tuple[str, str, str]]  # (output name, view, feature) in output order
    hidden: set[tuple[str, str]] = field(default_factory=set)  # inputs of on-demand views not asked for
    key_types: dict[str, str] = field(default_factory=dict)  # join key -> dtype, where known


@dataclass
class Stats:
    stale: dict[str, int] = field(default_factory=dict)
    sparse: dict[tuple[str, str], int] = field(
        default_factory=dict
    )  # (view, feature): windows under min_count
    defaulted: dict[str, str] = field(default_factory=dict)  # output column: why its view's defaults answered


def build_plan(
    resolved: Resolved,
    namespaces: Mapping[str, str],
    full_feature_names: bool,
    column_dtype: Callable[[FeatureView, str], str | None] = lambda view, key: None,
) -> OnlinePlan:
    """How to read ``resolved`` online; ``column_dtype(view, key)``: the type of a join key column in the
    view's source, for keys whose entity declares none (asked once here, never per request)."""
    parts: list[ViewPart] = []
    join_keys: list[str] = []
    wanted, hidden = on_demand.inputs_needed(resolved)
    for name, features in wanted.items():
        view = resolved.objects[name]
        assert isinstance(view, FeatureView)
        aggs = [a for a in view.aggregations if a.feature in features]
        plain = [f for f in features if f in {x.name for x in view.features}]
        ttl = view.ttl
        parts.append(
            ViewPart(
                view, namespaces[name], plain, aggs,
                int(ttl.total_seconds() * 1_000_000) if isinstance(ttl, timedelta) else None,
                max((a.lookback // timedelta(microseconds=1) for a in aggs), default=0),
                {f.name: f.dtype for f in view.features},
                {f.name: f.shape for f in view.features if f.shape is not None and len(f.shape) > 1},
            )
        )  # fmt: skip
        join_keys.extend(k for k in view.join_keys if k not in join_keys)
    columns = [
        (f"{view}__{feature}" if full_feature_names else feature, view, feature)
        for view, features in resolved.views.items()
        for feature in features
    ]
    for odv, outputs in resolved.on_demand:
        columns.extend((f"{odv.name}__{o}" if full_feature_names else o, odv.name, o) for o in outputs)
    names = [c[0] for c in columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SchemaError(
            f"Feature name(s) {duplicated} come from more than one view; pass full_feature_names=True "
            "to name them view__feature."
        )
    request = [f.name for odv, _ in resolved.on_demand for f in odv.request]
    types = key_types([part.view for part in parts], column_dtype)
    return OnlinePlan(join_keys, parts, resolved.on_demand, request, columns, set(hidden), types)


def key_types(
    views: Sequence[FeatureView], column_dtype: Callable[[FeatureView, str], str | None]
) -> dict[str, str]:
    """The dtype of each join key of ``views``: its entity's declared one, else the one its views' sources
    agree on (integers of two widths: int64); a key whose type is not known accepts any scalar."""
    out = {
        key: dtype for view in views for entity in view.entities for key, dtype in entity.key_types.items()
    }
    for key in dict.fromkeys(k for view in views for k in view.join_keys):
        if key not in out:
            found = {column_dtype(view, key) for view in views if key in view.join_keys} - {None}
            if len(found) == 1 and found <= set(key_check.KEY_DTYPES):
                out[key] = str(found.pop())
            elif found and found <= {"int32", "int64"}:
                out[key] = "int64"
    return out


def lookup(
    plan: OnlinePlan,
    store: Reads,
    entity_rows: Any,
    *,
    at: datetime | None = None,
    stats: Stats | None = None,
) -> dict[str, list[Any]]:
    """Features for each entity row, as columns: the join keys, then the features in the order asked."""
    columns = _columns(entity_rows, plan)
    key_check.check(columns, plan.key_types)  # before the store is asked: a wrong type would find nothing
    n = len(columns[plan.join_keys[0]]) if plan.join_keys else 0
    now = _micros(at) if at is not None else time.time_ns() // 1000
    # "Now" is this host's clock. An event a writer stamped in its future, by no more than CLOCK_SKEW, has
    # happened (the writer's clock is ahead of ours): it counts in the windows as happening now, instead of
    # missing from them until this clock reaches it. As of a given ``at`` (replays), the future is the future.
    ahead = now + _CLOCK_SKEW_US if at is None else now
    row_requests: list[tuple[str, str]] = []
    event_requests: list[tuple[str, str, int]] = []
    # Each distinct entity is read and aggregated once: a ranker's request repeats its user on every
    # candidate row (200 rows, one user), and an as-of window is computed from that user's events.
    part_keys: list[tuple[list[str], list[str]]] = []
    for part in plan.parts:
        values = [columns[k] for k in part.view.join_keys]
        keys = [entity_key(v) for v in zip(*values, strict=True)]
        distinct = list(dict.fromkeys(keys))
        part_keys.append((keys, distinct))
        if part.features:
            row_requests.extend((part.namespace, k) for k in distinct)
        if part.aggregations:
            event_requests.extend((part.namespace, k, now - part.window_us) for k in distinct)
    answer = _read(plan, store, row_requests, event_requests)
    results: dict[tuple[str, str], list[Any]] = {}
    row_at = event_at = 0
    for part, (keys, distinct) in zip(plan.parts, part_keys, strict=True):
        name, m = part.view.name, len(distinct)
        times = Counter(keys) if stats is not None and m < n else None  # rows per entity, for the counts
        position = {k: i for i, k in enumerate(distinct)}
        per: dict[str, list[Any]] = {}
        if answer is None:  # the store is unreachable and every view answers its defaults
            for feature in [*part.features, *(a.feature for a in part.aggregations)]:
                per[feature] = [part.view.defaults.get(feature)] * m
        elif part.features:
            found = answer.rows[row_at : row_at + m]
            row_at += m
            for feature in part.features:
                per[feature] = [None] * m
            for i, row in enumerate(found):
                if row is None:
                    continue
                if part.ttl_us is not None and row.event_ts < now - part.ttl_us:
                    if stats is not None:
                        stats.stale[name] = stats.stale.get(name, 0) + (times[distinct[i]] if times else 1)
                    continue
                stored = row.values if isinstance(row.values, dict) else decode(row.values)
                for feature in part.features:
                    value = _typed(stored.get(feature), part.dtypes[feature])
                    if feature in part.shapes and value is not None:
                        # Stored flat (the row-major values); served in the feature's shape.
                        value = np.asarray(value).reshape(part.shapes[feature]).tolist()
                    per[feature][i] = value
        if answer is not None and part.aggregations:
            found_events = answer.events[event_at : event_at + m]
            event_at += m
            decoded = [
                [(e.event_ts, e.values if isinstance(e.values, dict) else decode(e.values)) for e in events]
                for events in found_events
            ]
            for agg in part.aggregations:
                out = []
                for i, stored_events in enumerate(decoded):
                    triples = [(now if now < ts <= ahead else ts, v.get("_created", 0), v.get(agg.column))
                               for ts, v in stored_events]  # fmt: skip
                    value, sparse = window_value(agg, triples, now)
                    if sparse and stats is not None:
                        where = (name, agg.feature)
                        stats.sparse[where] = stats.sparse.get(where, 0) + (
                            times[distinct[i]] if times else 1
                        )
                    out.append(value)
                per[agg.feature] = out
        for feature, got in per.items():
            results[(name, feature)] = got if m == n else [got[position[k]] for k in keys]
    for odv, outputs in plan.on_demand:
        rows = pd.RangeIndex(len(next(iter(columns.values()), [])))  # a view may read request fields only
        pairs = [ref.split(":", 1) for ref in odv.inputs]
        data: dict[str, Any] = {feature: results[(view, feature)] for view, feature in pairs}
        data.update(request_columns(odv, columns, rows))
        # One frame built at once: adding the request's columns to it one by one cost a third of the
        # lookup of a one-row request.
        computed = on_demand.run_on_demand(odv, pd.DataFrame(data, index=rows))
        for output in outputs:
            results[(odv.name, output)] = computed[output]
    response: dict[str, list[Any]] = {k: list(columns[k]) for k in plan.join_keys}
    for out_name, view, feature in plan.columns:
        response[out_name] = results[(view, feature)]
    if answer is None and stats is not None:  # an on-demand view's outputs from defaults are defaulted too
        request_only = {odv.name for odv, _ in plan.on_demand if not odv.inputs}
        stats.defaulted.update(
            (out, STORE_UNAVAILABLE) for out, view, _ in plan.columns if view not in request_only
        )
    return response


def _read(
    plan: OnlinePlan, store: Reads, rows: list[tuple[str, str]], events: list[tuple[str, str, int]]
) -> OnlineRead | None:
    """The store's answer; None when it cannot be reached and every view declares ``on_missing="default"``."""
    try:
        return store.read(rows, events)
    except OnlineStoreUnavailable as exc:
        failing = [part.view.name for part in plan.parts if part.view.on_missing != "default"]
        if failing or not plan.parts:
            raise OnlineStoreUnavailable(
                f"{exc} The request fails because feature view(s) {failing} declare on_missing='error' "
                "(the default); declare on_missing='default' with defaults={...} to answer with them instead."
            ) from None
        return None


def source_dtype(view: FeatureView, key: str, dataset_schema: Callable[[str], Any]) -> str | None:
    """The dtype of column ``key`` in ``view``'s source, where its schema tells (None otherwise): a push
    source's field, an ingested dataset's column (``dataset_schema(name)``), a Parquet file's column."""
    source = view.source
    try:
        if isinstance(source, PushSource):
            return next((f.dtype for f in source.schema if f.name == key and f.shape is None), None)
        if isinstance(source, DatasetSource):
            return next((str(c.dtype) for c in dataset_schema(source.dataset).columns if c.name == key), None)
        if isinstance(source, ParquetSource):
            schema = pq.read_schema(source.files()[0])
            kind = schema.field(key).type if key in schema.names else None
            if kind is not None and pa.types.is_integer(kind):
                return "int32" if pa.types.is_int32(kind) else "int64"
            return (
                "string"
                if kind is not None and (pa.types.is_string(kind) or pa.types.is_large_string(kind))
                else None
            )
    except Exception:  # unreadable now (no file yet, no permission): the key's type stays open
        return None
    return None


# The Python type whose values a request field of each dtype takes as they are: a column of them makes the
# frame the field's signature would (float64, int64, bool, pandas' str), so the check can be skipped.
_AS_IS: dict[str, type] = {"float64": float, "int64": int, "bool": bool, "string": str}
_INT64 = (-(2**63), 2**63)


def request_columns(odv: OnDemandView, columns: Mapping[str, list[Any]], rows: pd.Index) -> dict[str, Any]:
    """The request fields ``odv`` reads, typed by their declared dtypes: a wrong type gets one problem per
    field (a 422). Values already of the field's Python type (a float for float64, and no inf) are taken
    as they are: the signature's check and its frame cost a fifth of a one-row lookup."""
    if all(_as_is(columns[f.name], f.dtype) for f in odv.request):
        return {f.name: columns[f.name] for f in odv.request}
    given = pd.DataFrame({f.name: columns[f.name] for f in odv.request}, index=rows)
    typed = _request_signature(odv).validate(given)
    return {f.name: typed[f.name] for f in odv.request}


def _as_is(values: list[Any], dtype: str) -> bool:
    kind = _AS_IS.get(dtype)
    if kind is None or not all(type(v) is kind for v in values):
        return False
    if kind is float:  # NaN is a null, as the signature reads it; inf is refused there
        return all(v - v == 0 or v != v for v in values)
    if kind is int:
        return all(_INT64[0] <= v < _INT64[1] for v in values)
    return True


def _request_signature(odv: OnDemandView) -> Signature:
    return _signature_of(tuple((f.name, f.dtype) for f in odv.request))


@functools.lru_cache(maxsize=256)
def _signature_of(fields: tuple[tuple[str, str], ...]) -> Signature:
    """The signature of an on-demand view's request fields, made once: a signature works out its fast
    path on first use (:meth:`~mloop.models.signature.Signature.validate`), and serving asks every request."""
    return Signature([ColumnSpec(name, dtype, nullable=True) for name, dtype in fields])


def _columns(entity_rows: Any, plan: OnlinePlan) -> dict[str, list[Any]]:
    if isinstance(entity_rows, Mapping):
        columns = {k: (list(v) if isinstance(v, list | tuple) else [v]) for k, v in entity_rows.items()}
    elif isinstance(entity_rows, pd.DataFrame):
        columns = {c: entity_rows[c].tolist() for c in entity_rows.columns}
    elif isinstance(entity_rows, Sequence):
        names = {k for row in entity_rows for k in row}
        columns = {k: [row.get(k) for row in entity_rows] for k in names}
    else:
        raise SchemaError("entity_rows must be a dict of columns, a list of dicts or a DataFrame.")
    missing = [k for k in [*plan.join_keys, *plan.request_fields] if k not in columns]
    if missing:
        raise SchemaError(
            f"entity_rows lack {missing}: the features asked for need join keys {plan.join_keys}"
            + (f" and request fields {plan.request_fields}" if plan.request_fields else "")
            + "."
        )
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise SchemaError("entity_rows columns have different lengths; give one value per row in each.")
    return columns


def _typed(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "timestamp":
        return _EPOCH + timedelta(microseconds=value)
    if dtype == "date":
        return date.fromisoformat(value)
    return value


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise SchemaError("at= must be timezone-aware (UTC).")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
