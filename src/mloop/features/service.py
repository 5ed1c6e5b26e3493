"""``project.features``: define, materialize, push and read features, offline and online.

>>> project.apply([customer, customer_txn_stats])                                   # doctest: +SKIP
>>> train = project.features.historical(labels, features=["customer_txn_stats:*"])  # doctest: +SKIP
>>> project.features.materialize_incremental()                                     # doctest: +SKIP
>>> project.features.online([{"customer_id": 42}], features=["customer_txn_stats:*"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._ray import connect, is_ray
from mloop._time import as_utc, parse_duration, utcnow
from mloop.data.service import DataService
from mloop.errors import MetadataUnavailable, OnlineStoreUnavailable, SchemaError
from mloop.features import lookup, materialize_run, offline, on_demand, queries, sequences
from mloop.features import push as pushing
from mloop.features.definitions import DatasetSource, FeatureView, OnDemandView, PushSource
from mloop.features.fallback import Reads, Unreachable
from mloop.features.history import DefinitionHistory
from mloop.features.materialize import Chunk, span
from mloop.features.materialize import connect as duckdb_connect
from mloop.features.materialize_run import ViewRun
from mloop.features.online import open_online_store
from mloop.features.online.base import OnlineStore
from mloop.features.refs import resolve
from mloop.features.reports import FreshnessInfo, MaterializeReport, PushReport
from mloop.features.sequences import SequenceSpec
from mloop.features.tables import push_log, table_for
from mloop.store.schema import MaterializationRow

log = logging.getLogger("mloop.features")
REFRESH_SECONDS = 1.0


class _Definitions:
    """The applied definitions, loaded once and refreshed at most every second (or at once after apply)."""

    def __init__(self) -> None:
        self.loaded_at = 0.0
        self.stored: dict[tuple[str, str], queries.Stored] = {}
        self.objects: dict[str, FeatureView | OnDemandView] = {}
        self.plans: dict[tuple[tuple[str, ...], bool], lookup.OnlinePlan] = {}
        self.lock = threading.Lock()


class FeatureService(DefinitionHistory):
    """Feature definitions and values for the project. Reads need ``features.read``; apply needs
    ``features.write``, materialize ``features.materialize``, push ``features.push``. The history of the
    definitions (versions, diffs, row counts) is :class:`DefinitionHistory`'s."""

    # ---- definitions ----------------------------------------------------------------------------------

    def plan(self, definitions: Iterable[Any]) -> queries.Plan:
        """What ``apply`` would change, with a diff per definition; changes nothing."""
        self._authorize("features.read", "features:*")
        with self._ctx.store.read() as session:
            return queries.plan(session, self._ctx.project_id, self._complete(definitions))

    def apply(self, definitions: Iterable[Any]) -> queries.Plan:
        """Record new and changed definitions (each change a new version), all or nothing."""
        items = self._complete(definitions)
        self._authorize("features.write", "features:*")
        with self._ctx.store.read() as session:
            if not queries.plan(session, self._ctx.project_id, items).pending:
                return queries.plan(session, self._ctx.project_id, items)  # nothing to record, no event
        with self._mutate("features.write", "features:*", action="features.apply") as change:
            result = queries.plan(change.session, self._ctx.project_id, items)
            queries.record(change.session, self._ctx.project_id, result, self.actor.name)
            change.payload["changes"] = [
                {"kind": c.kind, "name": c.name, "action": c.action, "version": c.version}
                for c in result.pending
            ]
        self._definitions(force=True)
        return result

    def delete(self, name: str, kind: str = "feature_view") -> None:
        """Delete a definition; refused while a model, a view or an on-demand view depends on it."""
        if kind not in queries.KINDS:
            raise SchemaError(f"Unknown definition kind {kind!r}; one of {', '.join(queries.KINDS)}.")
        with self._mutate("features.write", f"{kind}:{name}", action="features.delete") as change:
            change.payload["version"] = queries.delete(change.session, self._ctx.project_id, kind, name)
        self._definitions(force=True)

    def get(self, name: str) -> FeatureView | OnDemandView:
        self._authorize("features.read", f"feature_view:{name}")
        objects = self._definitions().objects
        if name not in objects:
            raise SchemaError(
                f"No feature view named {name!r}; views: {', '.join(sorted(objects)) or 'none'}."
            )
        return objects[name]

    def definitions(self) -> dict[tuple[str, str], queries.Stored]:
        self._authorize("features.read", "features:*")
        return dict(self._definitions().stored)

    # ---- offline --------------------------------------------------------------------------------------

    def historical(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        full_feature_names: bool = False,
        timestamp: str | None = None,
        sequence: SequenceSpec | None = None,
    ) -> pd.DataFrame:
        """A point-in-time correct training set: one row per entity row, in order, with the features as of
        each row's time (``timestamp``, default ``event_timestamp`` or the frame's only datetime column).
        With ``sequence=SequenceSpec(length, step)``, instead a sequence per row of the features as of each
        step up to that time, as tensor columns (see :mod:`mloop.features.sequences`)."""
        self._authorize("features.read", "features:*")
        defs = self._definitions()
        if sequence is not None:
            return sequences.historical(self.historical, entity_df, features, sequence, objects=defs.objects,
                                        timestamp=timestamp or _timestamp_column(entity_df),
                                        full_feature_names=full_feature_names)  # fmt: skip
        resolved = resolve(features, defs.objects)
        wanted, hidden = on_demand.inputs_needed(resolved)
        views = {name: resolved.objects[name] for name in wanted}
        tables = {
            name: table_for(view, self._data, self._ctx.data, self._ctx.parquet)  # type: ignore[arg-type]
            for name, view in views.items()
        }
        column = timestamp or _timestamp_column(entity_df)
        frame = offline.historical(
            entity_df, [(views[n], f) for n, f in wanted.items()], tables, timestamp=column,  # type: ignore[misc]
            full_feature_names=full_feature_names, workdir=self._workdir(),
        )  # fmt: skip
        for odv, outputs in resolved.on_demand:
            inputs = pd.DataFrame(
                {
                    feature: frame[_name(view, feature, full_feature_names)]
                    for view, feature in _pairs(odv.inputs)
                }
            )
            for request in odv.request:
                if request.name not in entity_df.columns:
                    raise SchemaError(
                        f"On-demand view {odv.name!r} needs request field {request.name!r}: add it to the entity frame."
                    )
                inputs[request.name] = entity_df[request.name].to_numpy()
            computed = on_demand.run_on_demand(odv, inputs)
            for output in outputs:
                frame[_name(odv.name, output, full_feature_names)] = computed[output]
        for name, view in views.items():
            for field in view.features:  # type: ignore[union-attr]  # views are FeatureViews
                output = _name(name, field.name, full_feature_names)
                if field.shape is not None and len(field.shape) > 1 and output in frame.columns:
                    # Stored flat (row-major); per-row arrays in the feature's shape, as a dataset reads.
                    shape = field.shape
                    cells = [None if v is None else np.asarray(v).reshape(shape) for v in frame[output]]
                    frame[output] = pd.Series(cells, index=frame.index, dtype=object)
        drop = [_name(v, f, full_feature_names) for v, f in hidden]
        return frame.drop(columns=[c for c in drop if c in frame.columns])

    # ---- online ---------------------------------------------------------------------------------------

    def online(
        self,
        entity_rows: Any,
        features: Sequence[str],
        *,
        full_feature_names: bool = False,
        at: datetime | None = None,
        defaulted: dict[str, str] | None = None,
    ) -> dict[str, list[Any]]:
        """Features for serving, as columns: one round trip to the online store for all views. Stale
        values (older than the view's TTL) come back null and are counted. While the store cannot be
        reached, the views' ``on_missing`` decide: :class:`~mloop.errors.OnlineStoreUnavailable`, or
        their defaults, each such column then added to ``defaulted`` (column: reason) and counted."""
        self._authorize("features.read", "features:*")
        defs = self._definitions()
        key = (tuple(features), full_feature_names)
        plan = defs.plans.get(key)
        if plan is None:
            resolved = resolve(features, defs.objects)
            column_dtype = lambda view, key: lookup.source_dtype(view, key, self._data.schema)  # noqa: E731
            plan = lookup.build_plan(resolved, self._namespaces(defs), full_feature_names, column_dtype)
            defs.plans[key] = plan
        stats = lookup.Stats()
        store: Reads
        try:
            store = self.online_store
        except OnlineStoreUnavailable as exc:  # down since before its first use: retried on the next call
            store = Unreachable(exc)
        result = lookup.lookup(plan, store, entity_rows, at=at, stats=stats)
        if stats.defaulted:
            from mloop.features.metrics import DEFAULTED

            if defaulted is not None:
                defaulted.update(stats.defaulted)
            for part in plan.parts:
                DEFAULTED.labels(self._ctx.project, part.view.name).inc()
        if stats.stale or stats.sparse:
            from mloop.features.metrics import SPARSE, STALE

            for view, count in stats.stale.items():
                STALE.labels(self._ctx.project, view).inc(count)
            for (view, feature), count in stats.sparse.items():
                SPARSE.labels(self._ctx.project, view, feature).inc(count)
        return result

    @property
    def online_store(self) -> OnlineStore:
        return self._ctx.resources.get(
            "online_store",
            lambda: open_online_store(
                self._ctx.settings.online_url, timeout=self._ctx.settings.online_timeout_ms / 1000
            ),
        )

    # ---- materialization ------------------------------------------------------------------------------

    def materialize(
        self,
        start: datetime,
        end: datetime,
        *,
        views: Sequence[str] | None = None,
        chunk: str = "1d",
        progress: Any = None,
        executor: str | None = None,
    ) -> MaterializeReport:
        """Load the online store with each view's values for events in ``(start, end]``, chunk by chunk;
        every chunk is committed, so a crash resumes without gaps or duplicates. On Ray (``executor``,
        default ``compute.executor``) the chunks run in parallel and are committed in order."""
        return self._materialize(lambda view: as_utc(start), as_utc(end), views, chunk, progress, executor)

    def materialize_incremental(
        self,
        end: datetime | None = None,
        *,
        views: Sequence[str] | None = None,
        chunk: str = "1d",
        progress: Any = None,
        executor: str | None = None,
    ) -> MaterializeReport:
        """Materialize from each view's watermark (its last committed chunk) to ``end`` (default now)."""
        return self._materialize(self._watermark, as_utc(end or utcnow()), views, chunk, progress, executor)

    def _materialize(
        self,
        start_of: Any,
        end: datetime,
        views: Sequence[str] | None,
        chunk: str,
        progress: Any,
        executor: str | None,
    ) -> MaterializeReport:
        self._authorize("features.materialize", "features:*")
        size = parse_duration(chunk, what="chunk size")
        assert size is not None
        defs = self._definitions()
        selected = self._select(defs, views)
        report = MaterializeReport(end=end)
        compute = self._ctx.settings.compute.with_executor(executor)
        on_ray = is_ray(compute.executor)
        if on_ray:  # connected before anything is written: an unreachable cluster fails here
            connect(compute)
        clock = time.perf_counter()
        views_run = [ViewRun(view, table_for(view, self._data, self._ctx.data, self._ctx.parquet),
                             defs.stored[("feature_view", view.name)].version) for view in selected]  # fmt: skip
        with self._guarded("online_url"):  # the online store on a full disk (DuckDB spill names its file)
            materialize_run.run(views_run, start_of=start_of, end=end, size=size, store=self.online_store,
                                online_url=self._ctx.settings.online_url, workdir=self._workdir(),
                                compute=compute if on_ray else None, commit=self._commit_chunk,
                                report=report, progress=progress)  # fmt: skip
        report.seconds = time.perf_counter() - clock
        with self._mutate("features.materialize", "features:*", action="features.materialize") as change:
            change.payload.update(report.summary())
        return report

    def _commit_chunk(self, view: str, version: int, piece: Chunk, started: datetime) -> None:
        """Record a written chunk and its audit event in one transaction: a crash leaves both or neither
        (the chunk's rows in the online store are idempotent, so a rerun writes them again)."""
        with self._mutate("features.materialize", f"feature_view:{view}", action="features.materialize_chunk",
                          version=version, start=piece.start.isoformat(), end=piece.end.isoformat(),
                          rows=piece.rows, values=piece.values) as change:  # fmt: skip
            change.session.add(
                MaterializationRow(
                    project_id=self._ctx.project_id, view=view, view_version=version, start_ts=piece.start,
                    end_ts=piece.end, rows=piece.rows, values=piece.values, last_event_ts=piece.last_event_ts,
                    started_at=started, finished_at=utcnow(), actor=self.actor.name,
                )
            )  # fmt: skip

    def _watermark(self, view: FeatureView) -> datetime | None:
        version = self._definitions().stored[("feature_view", view.name)].version
        with self._ctx.store.read() as session:
            return queries.materialized(session, self._ctx.project_id, view.name, version)[1]

    # ---- push -----------------------------------------------------------------------------------------

    def push(self, source: str | PushSource, rows: Any) -> PushReport:
        """Write ``rows`` to the online store of every view fed by the push source (readable at once) and
        append them to its offline log (seen by later training sets)."""
        name = source.name if isinstance(source, PushSource) else source
        self._authorize("features.push", f"push_source:{name}")
        clock = time.perf_counter()
        defs = self._definitions()
        stored = defs.stored.get(("push_source", name))
        if stored is None:
            known = sorted(n for k, n in defs.stored if k == "push_source")
            raise SchemaError(
                f"No push source named {name!r}; push sources: {', '.join(known) or 'none applied'}."
            )
        push_source = queries.load(defs.stored, "push_source", name)
        assert isinstance(push_source, PushSource)
        table = pushing.prepare(push_source, rows)
        report = PushReport(source=name, rows=table.num_rows)
        fed = [
            view
            for view in defs.objects.values()
            if isinstance(view, FeatureView)
            and isinstance(view.source, PushSource)
            and view.source.name == name
        ]
        for view in fed:  # before anything is written
            pushing.check_keys(view, table, name)
        for view in fed:
            namespace = self._namespaces(defs)[view.name]
            online_rows, events = pushing.online_records(view, table)
            report.written += self.online_store.write(namespace, online_rows) if online_rows else 0
            report.written += self.online_store.add_events(namespace, events) if events else 0
            report.views.append(view.name)
        log = push_log(self._ctx.data, name)
        report.log = pushing.append_log(table, log, self._ctx.data, self._ctx.parquet)
        report.seconds = time.perf_counter() - clock
        return report

    # ---- freshness ------------------------------------------------------------------------------------

    def freshness(self, views: Sequence[str] | None = None) -> list[FreshnessInfo]:
        """Per feature view (or those of ``views``): the newest event materialized and how far the
        watermark lags behind now."""
        self._authorize("features.read", "features:*")
        defs = self._definitions()
        now = utcnow()
        out = []
        with self._ctx.store.read() as session:
            for (kind, name), stored in sorted(defs.stored.items()):
                if kind != "feature_view" or (views is not None and name not in views):
                    continue
                last_event, watermark = queries.materialized(
                    session, self._ctx.project_id, name, stored.version
                )
                view = defs.objects.get(name)
                if isinstance(view, FeatureView) and isinstance(view.source, PushSource):
                    pushed = self._last_pushed(view.source)
                    last_event = max(filter(None, [last_event, pushed]), default=None)
                out.append(FreshnessInfo(name, stored.version, last_event, watermark, now))
        return out

    def _last_pushed(self, source: PushSource) -> datetime | None:
        from mloop.features.tables import push_table

        table = push_table(source, self._ctx.data, self._ctx.parquet)
        with duckdb_connect() as con:
            table.attach(con)
            return span(con, table)[1]

    # ---- helpers --------------------------------------------------------------------------------------

    @property
    def _data(self) -> DataService:
        return DataService(self._ctx)

    def _workdir(self) -> Path:
        """Where DuckDB spills: beside the data in a folder, on local scratch disk when data is on S3."""
        storage = self._ctx.data
        path = (
            Path(storage.root) / "_tmp"
            if not storage.remote
            else Path(self._ctx.settings.scratch_dir) / "features"
        )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _definitions(self, force: bool = False) -> _Definitions:
        defs: _Definitions = self._ctx.resources.get("feature_definitions", _Definitions)
        if force or time.monotonic() - defs.loaded_at > REFRESH_SECONDS:
            try:  # a serving request's path: it must not wait for a database that is restarting
                with defs.lock, self._ctx.store.read(wait=force or not defs.stored) as session:
                    stored = queries.latest(session, self._ctx.project_id)
            except MetadataUnavailable as exc:
                if force or not defs.stored:
                    raise
                log.warning("feature definitions kept as they were: %s", exc)
                defs.loaded_at = time.monotonic()  # try again after REFRESH_SECONDS
                return defs
            if force or stored != defs.stored:
                objects = {}
                for kind, name in stored:
                    if kind in ("feature_view", "on_demand_view"):
                        objects[name] = queries.load(stored, kind, name)
                defs.stored, defs.objects, defs.plans = stored, objects, {}  # type: ignore[assignment]
            defs.loaded_at = time.monotonic()
        return defs

    def _namespaces(self, defs: _Definitions) -> dict[str, str]:
        return {
            name: f"{name}.v{s.version}" for (kind, name), s in defs.stored.items() if kind == "feature_view"
        }

    def _select(self, defs: _Definitions, names: Sequence[str] | None) -> list[FeatureView]:
        views = {n: o for n, o in defs.objects.items() if isinstance(o, FeatureView)}
        if names is None:
            return list(views.values())
        unknown = [n for n in names if n not in views]
        if unknown:
            raise SchemaError(
                f"Unknown feature view(s) {unknown}; views: {', '.join(sorted(views)) or 'none'}."
            )
        return [views[n] for n in names]

    def _complete(self, definitions: Iterable[Any]) -> list[Any]:
        """Fill in what a definition leaves to the platform: a dataset source's timestamp column."""
        out = []
        for item in definitions:
            if (
                isinstance(item, FeatureView)
                and isinstance(item.source, DatasetSource)
                and not item.source.timestamp
            ):
                schema = self._data.schema(item.source.dataset)
                if not schema.timestamp:
                    raise SchemaError(
                        f"Feature view {item.name!r}: dataset {item.source.dataset!r} has no timestamp column; "
                        "pass DatasetSource(dataset, timestamp=...)."
                    )
                source = dataclasses.replace(item.source, timestamp=schema.timestamp)
                item = dataclasses.replace(item, source=source)
            out.append(item)
        return out


def _pairs(refs: Sequence[str]) -> list[tuple[str, str]]:
    """``"view:feature"`` references as (view, feature) pairs."""
    return [(view, feature) for view, _, feature in (ref.partition(":") for ref in refs)]


def _name(view: str, feature: str, full: bool) -> str:
    return f"{view}__{feature}" if full else feature


def _timestamp_column(frame: pd.DataFrame) -> str:
    if "event_timestamp" in frame.columns:
        return "event_timestamp"
    stamps = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    if len(stamps) == 1:
        return str(stamps[0])
    raise SchemaError(
        "Say which column of the entity frame holds each row's time: historical(..., timestamp='ts') "
        f"(datetime columns found: {stamps or 'none'})."
    )
