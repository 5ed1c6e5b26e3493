"""``project.monitoring``: drift and live performance over tumbling windows of the prediction log, SLOs,
alerts, and the report.

:meth:`MonitoringService.update` is what a scheduler (the loop controller, ``mloop monitor drift``)
calls: it computes and stores every complete window not stored yet (performance windows again while
their labels may still arrive, for ``monitoring.label_horizon``), then :meth:`check` evaluates the alert
rules (:mod:`mloop.monitoring.rules`): an alert whose key is new opens an incident, is sent to the sinks
and appended to the event log as ``monitoring.alert``; one that stops firing is resolved the same way
(``monitoring.resolve``); one that keeps firing is neither sent nor logged again.

>>> project.monitoring.update("fraud")                       # doctest: +SKIP
>>> project.monitoring.drift("fraud", since="1d")             # doctest: +SKIP
[{'start': '2026-12-02T10:00:00+00:00', 'version': 3, 'rows': 5120, 'drifted': ['amount'], ...}, ...]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mloop._service import Context, Service
from mloop._time import utcnow
from mloop.config.monitoring import MonitoringSettings, slo_name
from mloop.deployments import queries as deployment_queries
from mloop.errors import NotFound
from mloop.features import queries as feature_queries
from mloop.monitoring import distributions, queries, ranges, rules, sli, slo, traffic, windows
from mloop.monitoring.alerts import (
    ONLINE_STORE_DOWN,
    SETTLED_ELSEWHERE,
    Alert,
    deliver,
    no_longer_serving,
    serving_versions,
    sinks_from_settings,
)
from mloop.monitoring.attribution_drift import AttributionWatch, attribution_alerts
from mloop.monitoring.performance import predictions_of, window_performance
from mloop.monitoring.suite import compare
from mloop.monitoring.versions import VersionInfo, load_version, served_registry
from mloop.predictions import summary
from mloop.predictions.feedback import read_feedback
from mloop.predictions.files import FIXED, read_predictions
from mloop.predictions.log import predictions_folder

Since = str | datetime
Read = tuple[list[windows.Window], pd.DataFrame, datetime]  # the windows of a range, its rows, its end
LOOKBACK_WINDOWS = 168  # update() looks back a week of hourly windows, or as many of a smaller size


class MonitoringService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._versions: dict[tuple[str, int], VersionInfo] = {}
        self._attribution = AttributionWatch(
            lambda model, version: served_registry(ctx, model).load(model, version)
        )

    @property
    def settings(self) -> MonitoringSettings:
        return self._ctx.settings.monitoring

    # ---- windows ---------------------------------------------------------------------------------------

    def range(self, endpoint: str, *, since: Since = "1d", until: datetime | None = None,
              window: timedelta | str | None = None) -> ranges.Range:  # fmt: skip
        """The range and window size a read of ``since``/``until``/``window`` covers: when ``until`` is
        not given, from the endpoint's first logged prediction at the earliest to the window of its last
        one; in windows coarser than ``monitoring.window`` when there would be too many (``note`` says
        so; see :mod:`mloop.monitoring.ranges`). An endpoint never deployed nor logged is NotFound."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        now = utcnow()
        self._known(endpoint)
        # A caller that names the end (update, the loop's triggers, a command passing on a range) chose the
        # range: only a read up to now follows the data, which spares the ticks a scan of the log.
        data = ranges.data_span(self._folder(), endpoint, self._ctx.parquet) if until is None else None
        if data is None and until is None:
            with self._ctx.store.read() as session:
                revisions = deployment_queries.history(session, self._ctx.project_id, endpoint)
            data = (revisions[0].created_at, now) if revisions else None
        end = until or now
        return ranges.choose(windows.since_time(since, end), end, window, self.settings.window,
                             until_given=until is not None, data=data)  # fmt: skip

    def drift(self, endpoint: str, *, since: Since = "1d", until: datetime | None = None,
              window: timedelta | str | None = None, partial: bool = False, store: bool = False,
              methods: Mapping[str, str] | None = None, thresholds: Mapping[str, float] | None = None
              ) -> list[dict[str, Any]]:  # fmt: skip
        """Drift of every input and of the prediction per window and version in :meth:`range`: complete
        windows, and with ``partial`` the one still open at ``until`` too. A read: nothing is written
        unless ``store`` (then the complete windows are saved, which needs ``monitoring.write``, and get
        their attribution drift, :mod:`~mloop.monitoring.attribution_drift`, which explains a sample of each
        window: too dear for every read); :meth:`update` is what stores windows for history, SLOs and alerts.
        ``methods`` and ``thresholds`` add to the endpoint's ``drift`` settings."""
        read = self._read(self.range(endpoint, since=since, until=until, window=window), endpoint, partial)
        return self._drift_of(endpoint, read, store, (dict(methods or {}), dict(thresholds or {})))

    def performance(self, endpoint: str, *, since: Since = "1d", until: datetime | None = None,
                    window: timedelta | str | None = None, partial: bool = False, store: bool = False
                    ) -> list[dict[str, Any]]:  # fmt: skip
        """Realised (from the labels so far) and estimated performance per window and version; windows
        as :meth:`drift`."""
        read = self._read(self.range(endpoint, since=since, until=until, window=window), endpoint, partial)
        return self._performance_of(endpoint, read, store)

    def update(self, endpoint: str, *, now: datetime | None = None, lookback: timedelta | None = None
               ) -> dict[str, Any]:  # fmt: skip
        """Compute and store the complete windows not stored yet, then :meth:`check` the alert rules."""
        self._authorize("monitoring.write", f"endpoint:{endpoint}")  # a write: checked before the work
        now = now or utcnow()
        size = self.settings.window
        lookback = lookback or min(timedelta(days=7), size * LOOKBACK_WINDOWS)
        since = windows.floor(now - lookback, size)
        with self._ctx.store.read() as session:
            done = queries.stored_windows(session, self._ctx.project_id, endpoint, "drift", since)
        todo = [
            w
            for w in windows.tumbling(since, now, size)
            if f"{w[0].isoformat()}/{w[1].isoformat()}" not in done
        ]
        drifted = (
            self.drift(endpoint, since=todo[0][0], until=todo[-1][1], window=size, store=True) if todo else []
        )
        horizon = windows.floor(max(since, now - self.settings.label_horizon), size)
        perf = self.performance(endpoint, since=horizon, until=now, window=size, store=True)
        return {"drift": drifted, "performance": perf, "alerts": self.check(endpoint, now=now)}

    def history(self, endpoint: str, kind: str, *, since: Since = "7d", until: datetime | None = None
                ) -> list[dict[str, Any]]:  # fmt: skip
        """Stored windows of ``kind`` (drift or performance), oldest first."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        self._known(endpoint)
        if kind not in queries.KINDS:
            raise ValueError(f"kind must be one of {', '.join(queries.KINDS)}; got {kind!r}.")
        start = windows.since_time(since, until or utcnow())
        with self._ctx.store.read() as session:
            return queries.load(session, self._ctx.project_id, endpoint, kind, since=start, until=until,
                                size=self.settings.window)  # fmt: skip

    def traffic(self, endpoint: str, *, since: Since = "1h", now: datetime | None = None
                ) -> list[dict[str, Any]]:  # fmt: skip
        """Per version over the last ``since``: requests, errors and their share, p99 latency in ms
        (:mod:`mloop.monitoring.traffic`), read from the prediction log."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        self._known(endpoint)
        now = now or utcnow()
        first = summary.request_rows(
            self._folder(), endpoint, windows.since_time(since, now), now, self._ctx.parquet
        )
        return traffic.per_version(first)

    # ---- SLOs and alerts --------------------------------------------------------------------------------

    def slo(self, endpoint: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Each SLO of the endpoint (mloop.yaml): SLI, error budget, burn rates and the rules firing now."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        self._known(endpoint)
        now = now or utcnow()
        specs = self.settings.endpoint(endpoint).slos
        if not specs:
            return []
        since = now - max([s.period for s in specs] + [timedelta(days=3)])
        latency = [s.threshold_ms for s in specs if s.kind == "latency"]
        counts = (
            summary.minute_counts(self._folder(), endpoint, since, now, self._ctx.parquet, latency)
            if any(s.kind in ("latency", "availability") for s in specs)
            else None
        )
        # the quality SLOs share one read of the log (with its JSON) between them
        predictions = (
            read_predictions(self._folder(), endpoint, since, now, self._ctx.parquet)
            if any(s.kind == "quality" for s in specs)
            else pd.DataFrame()
        )
        out = []
        for spec in specs:
            if spec.kind == "latency":
                events = sli.latency_from_counts(counts, f"within_{latency.index(spec.threshold_ms)}")
            elif spec.kind == "availability":
                events = sli.availability_from_counts(counts)
            else:
                events = self._events(endpoint, spec, predictions, now)
            objective = slo.Objective(slo_name(spec), spec.target, spec.period)
            budget = slo.budget(objective, events, now)
            out.append({
                "name": objective.name, "kind": spec.kind, "target": spec.target,
                "period": windows.label(spec.period), "events": budget.events, "bad": budget.bad,
                "remaining": budget.remaining, "sli": budget.sli, "burn_rates": slo.burn_rates(objective, events, now),
                "alerts": [a.to_dict() for a in slo.alerts(objective, events, now)],
            })  # fmt: skip
        return out

    def check(self, endpoint: str, *, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """Evaluate the alert rules now; open, keep or resolve incidents; notify the sinks of changes."""
        self._authorize("monitoring.write", f"endpoint:{endpoint}")
        now = now or utcnow()
        options = self.settings.endpoint(endpoint)
        recent = now - 2 * self.settings.window - self.settings.label_horizon
        with self._ctx.store.read() as session:
            drift = queries.load(session, self._ctx.project_id, endpoint, "drift", since=recent)
            perf = queries.load(session, self._ctx.project_id, endpoint, "performance", since=recent)
        perf = [p for p in perf if p.get("realised") or p.get("estimated")]
        firing = {a.key: a for a in [*rules.drift_alerts(endpoint, drift, options, now),
                                     *rules.performance_alerts(endpoint, perf, options, now),
                                     *attribution_alerts(endpoint, drift, options, now),
                                     *rules.slo_alerts(endpoint, self.slo(endpoint, now=now), now)]}  # fmt: skip
        serving = serving_versions(self._ctx, endpoint)  # a retired version's alerts end, with that reason
        firing = {k: a for k, a in firing.items() if not no_longer_serving(a, serving)}
        opened, resolved, ongoing = [], [], []
        with self._ctx.store.read() as session:
            open_now = {k: Alert.from_dict(r.alert) for k, r in queries.open_incidents(
                session, self._ctx.project_id, endpoint).items()}  # fmt: skip
        for key, alert in firing.items():
            known = open_now.get(key)
            if known is None or _rank(alert.severity) > _rank(known.severity):
                opened.append(alert)  # new, or escalated (ticket to page): a new incident row
                if known is not None:
                    resolved.append(known.resolved(now))
            else:
                ongoing.append(known)
        resolved += [
            a.resolved(now, no_longer_serving(a, serving))
            for k, a in open_now.items()
            if k not in firing and not k.endswith(SETTLED_ELSEWHERE)  # their own rules resolve those
        ]
        for alert in resolved:
            self._record(alert, "monitoring.resolve")
        for alert in opened:
            self._record(alert, "monitoring.alert")
        if opened or resolved:
            deliver(sinks_from_settings(self.settings.sinks), [*resolved, *opened])
        self._touch(ongoing, now)
        return {"opened": [a.to_dict() for a in opened], "resolved": [a.to_dict() for a in resolved],
                "firing": [a.to_dict() for a in [*ongoing, *opened]]}  # fmt: skip

    def settle(self, endpoint: str, key: str, firing: Alert | None, *, now: datetime | None = None,
               reason: str = "") -> Alert | None:  # fmt: skip
        """Keep the one incident ``key`` in step with a rule evaluated elsewhere (a cost budget): open it
        when ``firing`` and none is open, resolve it (with ``reason``) when it is open and no longer
        firing, and send the change to the sinks. The change, or None when there is none."""
        self._authorize("monitoring.write", f"endpoint:{endpoint}")
        with self._ctx.store.read() as session:
            row = queries.open_incidents(session, self._ctx.project_id, endpoint).get(key)
            known = None if row is None else Alert.from_dict(row.alert)
        if firing is not None and known is None:
            change, action = firing, "monitoring.alert"
        elif firing is None and known is not None:
            change, action = known.resolved(now or utcnow(), reason), "monitoring.resolve"
        else:
            return None  # still firing (its incident stays open, not sent again), or never fired
        self._record(change, action)
        deliver(sinks_from_settings(self.settings.sinks), [change])
        return change

    def alerts(self, endpoint: str | None = None, *, open_only: bool = False, since: Since | None = None,
               offset: int = 0, limit: int = 500) -> list[dict[str, Any]]:  # fmt: skip
        """Incidents, newest first (``open_only``: those still firing), ``limit`` from ``offset``."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}" if endpoint else "*")
        if endpoint is not None:
            self._known(endpoint)
        start = None if since is None else windows.since_time(since, utcnow())
        with self._ctx.store.read() as session:
            found = queries.incidents(session, self._ctx.project_id, endpoint=endpoint, open_only=open_only,
                                      since=start, offset=offset, limit=limit)  # fmt: skip
        return [a.to_dict() for a in found]

    # ---- the report -------------------------------------------------------------------------------------

    def report(self, endpoint: str, *, since: Since = "7d", until: datetime | None = None,
               window: timedelta | str | None = None, stored: bool = False) -> dict[str, Any]:  # fmt: skip
        """Everything the HTML report shows, as plain data (``mloop monitor report --json``), over
        :meth:`range` (``note`` says when the window was coarsened). With ``stored`` (the dashboard),
        drift and performance are the windows :meth:`update` stored, none recomputed (the open window
        shows once stored), and the prediction distribution comes from the log's per-minute summaries
        (:mod:`mloop.predictions.summary`): no read decodes the whole range."""
        now = utcnow()
        span = self.range(endpoint, since=since, until=until, window=window)
        start, until = span.since, span.until
        if stored:
            drift = self.history(endpoint, "drift", since=start, until=until)
            perf = self.history(endpoint, "performance", since=start, until=until)
            pairs = [(e["model"], int(e["version"])) for e in drift if e.get("model")]
            shown = distributions.from_summaries(self._folder(), endpoint, pairs, start, until, self._ctx.parquet,
                                                 self._reference)  # fmt: skip
        else:
            read = self._read(span, endpoint, partial=True)  # one read of the log for every section
            drift = self._drift_of(endpoint, read, False, ({}, {}))  # a read: nothing stored
            perf = self._performance_of(endpoint, read, False)
            shown = distributions.from_frame(self._groups(read[1]), self._reference)
        return {
            "endpoint": endpoint, "since": start.isoformat(), "until": until.isoformat(),
            "generated_at": now.isoformat(), "window": windows.label(span.window), "note": span.note,
            "drift": drift, "predictions": shown, "performance": perf,
            "slos": self.slo(endpoint, now=min(now, until)), "alerts": self.alerts(endpoint, since=start),
        }  # fmt: skip

    # ---- internals --------------------------------------------------------------------------------------

    def _folder(self) -> Any:
        return predictions_folder(self._ctx.settings)

    def _known(self, endpoint: str) -> None:
        """NotFound unless ``endpoint`` was deployed or has logged predictions: before any other work."""
        with self._ctx.store.read() as session:
            deployed = {r.endpoint for r in deployment_queries.newest(session, self._ctx.project_id)}
        if endpoint in deployed:  # no listing of the log's store: alerts are read while S3 is down
            return
        known = deployed | ranges.logged_endpoints(self._folder())
        if endpoint not in known:
            raise NotFound(
                f"No endpoint {endpoint!r}: it was never deployed and has no logged prediction; known: "
                f"{', '.join(sorted(known)) or 'none yet'}. Check the name (`mloop deployments list` shows the deployed ones)."
            )

    def _drift_of(self, endpoint: str, read: Read, store: bool,
                  extra: tuple[dict[str, str], dict[str, float]]) -> list[dict[str, Any]]:  # fmt: skip
        spans, frame, until = read
        out = [
            e
            for span, part in windows.split(frame, spans)
            for e in self._drift_window(endpoint, span, part, extra, explain=store)
        ]
        if store:
            self._save(endpoint, "drift", [e for e in out if _complete(e, until)])
        return out

    def _performance_of(self, endpoint: str, read: Read, store: bool) -> list[dict[str, Any]]:
        spans, frame, until = read
        frame = self._with_labels(endpoint, frame)
        out = [
            e
            for span, part in windows.split(frame, spans)
            for e in self._performance_window(endpoint, span, part)
        ]
        if store:
            self._save(endpoint, "performance", [e for e in out if _complete(e, until)])
        return out

    def _read(self, span: ranges.Range, endpoint: str, partial: bool = False
              ) -> Read:  # fmt: skip
        until, size = span.until, span.window
        spans = windows.tumbling(span.since, until, size, complete=not partial)
        if not spans:
            return spans, pd.DataFrame(), until
        frame = read_predictions(
            self._folder(), endpoint, spans[0][0], min(spans[-1][1], until), self._ctx.parquet
        )
        return spans, self._ok(frame), until

    @staticmethod
    def _ok(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["status"] == "ok"] if len(frame) else frame

    def _version(self, model: str, version: int) -> VersionInfo:
        key = (model, version)
        if key not in self._versions:
            self._versions[key] = load_version(self._ctx, model, version)
        return self._versions[key]

    def _groups(self, part: pd.DataFrame) -> list[tuple[str, int, pd.DataFrame]]:
        if part.empty:
            return []
        groups = part.groupby(["model", "version"], sort=True)
        return [(str(m), int(v), g) for (m, v), g in groups]  # type: ignore[call-overload]  # pandas-stubs: keys are Hashable

    def _drift_window(self, endpoint: str, span: windows.Window, part: pd.DataFrame,
                      extra: tuple[dict[str, str], dict[str, float]] = ({}, {}), explain: bool = False
                      ) -> list[dict[str, Any]]:  # fmt: skip
        # Attribution drift only for windows being stored (update): explaining costs far more than counting.
        base = {"start": span[0].isoformat(), "end": span[1].isoformat()}
        groups = self._groups(part)
        if not groups:
            return [{**base, "version": 0, "model": None, "rows": 0, "empty": True, "columns": [], "drifted": [],
                     "note": "no predictions in this window: drift cannot be decided"}]  # fmt: skip
        options = self.settings.endpoint(endpoint).drift
        explained = self.settings.endpoint(endpoint).attribution
        out = []
        for model, version, group in groups:
            info = self._version(model, version)
            entry = {**base, "version": version, "model": model, "rows": len(group), "empty": False}
            if info.profile is None:
                out.append({**entry, "columns": [], "drifted": [],
                            "note": f"{model} v{version} has no reference profile (register it through a "
                                    "training pipeline to monitor its drift)"})  # fmt: skip
                continue
            inputs = _inputs(group)
            prediction = predictions_of(group["prediction"], info.classes)
            report = compare(info.profile, inputs, prediction=prediction if np.isfinite(prediction).any() else None,
                             columns=[c for c in options.columns if c in inputs] if options.columns else None,
                             methods={**options.methods, **extra[0]}, thresholds={**options.thresholds, **extra[1]},
                             correction=options.correction, samples=info.samples)  # fmt: skip
            attribution = (
                self._attribution.entry(model, version, info.importance, inputs, explained) if explain else {}
            )
            out.append({**entry, **report.to_dict(), "note": "", **attribution})
        return out

    def _with_labels(self, endpoint: str, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        labels = read_feedback(self._folder(), endpoint, parquet=self._ctx.parquet).drop_duplicates(
            ["request_id", "row"], keep="last"
        )
        labels = labels[["request_id", "row", "label"]].astype({"row": frame["row"].dtype})
        return frame.merge(labels, on=["request_id", "row"], how="left")

    def _performance_window(
        self, endpoint: str, span: windows.Window, part: pd.DataFrame
    ) -> list[dict[str, Any]]:
        base = {"start": span[0].isoformat(), "end": span[1].isoformat()}
        options = self.settings.endpoint(endpoint).performance
        out = []
        for model, version, group in self._groups(part):
            info = self._version(model, version)
            if info.task not in ("binary", "multiclass", "regression"):
                continue
            found = window_performance(
                _inputs(group).assign(prediction=group["prediction"].to_numpy(), label=group["label"].to_numpy()),
                task=info.task, threshold=options.threshold or info.threshold, slices=options.slices,
                sensitive=options.sensitive, estimator=info.estimator, min_labels=options.min_labels,
                classes=info.classes,
            )  # fmt: skip
            out.append({**base, "version": version, "model": model, "task": info.task, **found})
        return out

    def _events(self, endpoint: str, spec: Any, predictions: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """Freshness and quality events (latency and availability come from the log's minute counts)."""
        if spec.kind == "freshness":
            with self._ctx.store.read() as session:  # the view's watermarks, the store's outages: one read
                marks = feature_queries.materializations(session, self._ctx.project_id, spec.feature_view)
                outages = queries.spans(session, self._ctx.project_id, endpoint, ONLINE_STORE_DOWN,
                                        now - spec.period)  # fmt: skip
            return sli.freshness_events(marks, spec.max_age, now, outages)
        frame = self._with_labels(endpoint, self._ok(predictions))
        values = []
        for span, part in windows.split(frame, windows.tumbling(now - spec.period, now, spec.window)):
            found = self._performance_window(endpoint, span, part)
            realised = [f["realised"].get(spec.metric) for f in found if f.get("realised")]
            values.append((span[1], float(np.mean(realised)) if realised else None))
        return sli.quality_events(values, spec.min, spec.max)

    def _reference(self, model: str, version: int) -> dict[str, Any] | None:
        return distributions.numeric_reference(self._version(model, version).profile)

    def _save(self, endpoint: str, kind: str, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        self._authorize("monitoring.write", f"endpoint:{endpoint}")
        with self._ctx.store.write() as session:
            queries.save(session, self._ctx.project_id, endpoint, kind, entries, utcnow())

    def _record(self, alert: Alert, action: str) -> None:
        with self._mutate("monitoring.write", f"endpoint:{alert.endpoint}", action=action,
                          alert=alert.to_dict()) as change:  # fmt: skip
            queries.settle_incident(change.session, self._ctx.project_id, alert, action)

    def _touch(self, ongoing: list[Alert], now: datetime) -> None:
        if not ongoing:
            return
        with self._ctx.store.write() as session:
            rows = queries.open_incidents(session, self._ctx.project_id)
            for alert in ongoing:
                if alert.key in rows:
                    rows[alert.key].last_seen = now


def _complete(entry: dict[str, Any], until: datetime) -> bool:
    return datetime.fromisoformat(entry["end"]) <= until


def _rank(severity: str) -> int:
    return ("info", "ticket", "page").index(severity)


def _inputs(group: pd.DataFrame) -> pd.DataFrame:
    """The model-input columns of prediction-log rows, under their own names."""
    keep = [c for c in group.columns if c not in FIXED and c not in ("label", "labelled_at")]
    frame = group[keep].reset_index(drop=True)
    return frame.rename(columns={c: c[len("input.") :] for c in keep if c.startswith("input.")})
