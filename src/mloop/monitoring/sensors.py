"""``project.sensors``: one incident per sensor and rule for a dataset with sensor checks.

After each ingestion of such a dataset (the project runs :meth:`SensorService.check` itself), the
ingestion's findings (:mod:`mloop.monitoring.sensor_faults`) become alerts, on the monitoring incident log
under the endpoint ``dataset:<name>`` (so ``mloop monitor alerts`` lists them too):

=====================  ==============================================  ==========================================
alert                  fires when the ingestion holds                  key
=====================  ==============================================  ==========================================
``sensor_range``       readings outside the physical range             ``dataset:<name>/<sensor>/<value>/range``
``sensor_stuck``       a run of ``stuck`` identical readings           ``dataset:<name>/<sensor>/<value>/stuck``
``sensor_spike``       readings ``spike_z`` robust z-scores off        ``dataset:<name>/<sensor>/<value>/spike``
``sensor_silence``     a gap of ``silence`` or more (or none since)    ``dataset:<name>/<sensor>/silence``
=====================  ==============================================  ==========================================

``<sensor>`` is the key, ``field_id=3,sensor_id=31``. A new incident is sent to the sinks and logged as
``monitoring.alert``; while it lasts, the next ingestions update its counts in place (nothing sent again);
it is resolved (``monitoring.resolve``) by an ingestion in which the sensor reported with no fault of that
rule, or for silence, by one in which it reported without a gap. A sensor with no reading in an ingestion
keeps its reading-rule incidents as they are: there is no evidence either way.

>>> project.data.ingest("soil-2025-06-01.csv", "soil")          # doctest: +SKIP
>>> project.sensors.incidents("soil", open_only=True)            # doctest: +SKIP
[{'key': 'dataset:soil/field_id=3,sensor_id=31/moisture/stuck', 'status': 'firing', ...}]
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from mloop._service import Service
from mloop._time import utcnow
from mloop.data.queries import DatasetCatalog
from mloop.data.report import IngestReport
from mloop.data.schema import Dataset
from mloop.data.sensor_spec import SensorChecks
from mloop.errors import NotFound
from mloop.monitoring import queries
from mloop.monitoring.alerts import Alert, deliver, sinks_from_settings
from mloop.monitoring.sensor_faults import Finding, findings


def endpoint_of(dataset: str) -> str:
    """The endpoint under which a dataset's sensor incidents are logged: ``dataset:<name>``."""
    return f"dataset:{dataset}"


class SensorService(Service):
    """Sensor incidents of datasets with :class:`~mloop.data.sensor_spec.SensorChecks`."""

    def check(
        self, dataset: str, *, ingest_id: str | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        """Open, update or resolve the sensor incidents from one ingestion (the newest by default).

        Silence is judged at ``now``; by default the newest reading of that ingestion, the dataset's own
        clock (a backfill of last season is not silent because it is old). Returns the ``opened``,
        ``updated``, ``resolved`` and ``firing`` alerts as dicts.
        """
        self._authorize("monitoring.write", f"dataset:{dataset}")
        catalog = DatasetCatalog(self._ctx)
        schema = catalog.schema(dataset)
        if not schema.sensors:
            raise NotFound(
                f"Dataset {dataset!r} declares no sensor checks, so it has no sensor incidents. Add "
                "sensors=SensorChecks(...) to its schema (mloop data schema) to check its sensors."
            )
        reports = catalog.ingestions(dataset)
        chosen = [r for r in reports if ingest_id is None or r.ingest_id == ingest_id]
        if not chosen:
            raise NotFound(
                f"Dataset {dataset!r} has no ingestion {ingest_id!r}; `mloop data ingestions` lists them."
            )
        report = chosen[-1]
        found = self._findings(schema, report, catalog.files(dataset), now)
        return self._settle(dataset, schema, found, utcnow() if now is None else now)

    def incidents(
        self, dataset: str | None = None, *, open_only: bool = False, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Sensor incidents, newest first: of one dataset, or of every dataset (``open_only``: firing)."""
        self._authorize("monitoring.read", f"dataset:{dataset}" if dataset else "*")
        with self._ctx.store.read() as session:
            if dataset is not None:
                found = queries.incidents(session, self._ctx.project_id, endpoint=endpoint_of(dataset),
                                          open_only=open_only, limit=limit)  # fmt: skip
            else:
                found = [a for a in queries.incidents(session, self._ctx.project_id, open_only=open_only, limit=limit)
                         if a.name.startswith("sensor_")]  # fmt: skip
        return [a.to_dict() for a in found]

    def after_ingest(self, report: IngestReport) -> None:
        """The hook the project runs after each committed ingestion: check its sensors, if it has any."""
        fresh = report.ingest_id and not report.skipped and not report.dry_run
        if fresh and DatasetCatalog(self._ctx).schema(report.dataset).sensors:
            self.check(report.dataset, ingest_id=report.ingest_id)

    # ---- internals --------------------------------------------------------------------------------------

    def _findings(
        self, schema: Dataset, report: IngestReport, stored: list[str], now: datetime | None
    ) -> list[Finding]:
        as_of = now or report.max_ts
        if as_of is None:  # nothing accepted: the newest faulty reading is the clock
            as_of = utcnow()
        with duckdb.connect() as con, self._ctx.data.reaching():
            con.execute("SET TimeZone = 'UTC'")
            return findings(con, schema, batch=report.files, quarantine=report.quarantine, stored=stored,
                            parquet=self._ctx.parquet, as_of=as_of)  # fmt: skip

    def _settle(self, dataset: str, schema: Dataset, found: list[Finding], now: datetime) -> dict[str, Any]:
        endpoint = endpoint_of(dataset)
        by_value = {c.value: c for c in schema.sensors}
        with self._ctx.store.read() as session:
            open_now = {k: Alert.from_dict(r.alert) for k, r in queries.open_incidents(
                session, self._ctx.project_id, endpoint).items()}  # fmt: skip
        opened, updated, resolved = [], [], []
        for finding in found:
            checks = by_value[finding.value]
            alert = _alert(dataset, schema, checks, finding, now)
            known = open_now.get(alert.key)
            # a gap that ends at this batch's first reading is a new silence, unless it is the one open
            fires = finding.count > 0 or (finding.resumed and known is None)
            if fires and known is None:
                opened.append(alert)
            elif fires and known is not None:
                updated.append(_merged(known, alert))
            elif known is not None:
                resolved.append(known.resolved(max(now, known.started_at)))
        for alert in opened:
            self._record(alert, "monitoring.alert")
        for alert in resolved:
            self._record(alert, "monitoring.resolve")
        if updated:
            with self._ctx.store.write() as session:
                rows = queries.open_incidents(session, self._ctx.project_id, endpoint)
                for alert in updated:
                    rows[alert.key].alert, rows[alert.key].last_seen = alert.to_dict(), now
        if opened or resolved:
            deliver(sinks_from_settings(self._ctx.settings.monitoring.sinks), [*resolved, *opened])
        firing = [
            *opened,
            *updated,
            *(a for k, a in open_now.items() if k not in {x.key for x in [*updated, *resolved]}),
        ]
        return {"opened": [a.to_dict() for a in opened], "updated": [a.to_dict() for a in updated],
                "resolved": [a.to_dict() for a in resolved], "firing": [a.to_dict() for a in firing]}  # fmt: skip

    def _record(self, alert: Alert, action: str) -> None:
        with self._mutate("monitoring.write", f"dataset:{alert.labels['dataset']}", action=action,
                          alert=alert.to_dict()) as change:  # fmt: skip
            queries.settle_incident(change.session, self._ctx.project_id, alert, action)


def _alert(dataset: str, schema: Dataset, checks: SensorChecks, finding: Finding, now: datetime) -> Alert:
    sensor = ",".join(f"{k}={v}" for k, v in zip(checks.key, finding.sensor, strict=True))
    rule = finding.rule
    where = f"{dataset} sensor {sensor}"
    labels = {"dataset": dataset, "sensor": sensor, "rule": rule, "count": str(finding.count),
              **dict(zip(checks.key, finding.sensor, strict=True))}  # fmt: skip
    if finding.first is not None:
        labels |= {"first": finding.first.isoformat(), "last": (finding.last or finding.first).isoformat()}
    threshold: float | None
    if rule == "silence":
        longest = finding.longest.total_seconds() / 3600 if finding.longest else 0.0
        summary = f"{where}: silent {longest:.1f} h (no reading for {checks.silence} or more; {finding.count} gap(s))"
        key, value, threshold = f"{endpoint_of(dataset)}/{sensor}/silence", longest, _hours(checks)
    else:
        labels["value"] = finding.value
        summary = f"{where}: {finding.count} reading(s) quarantined: {checks.reason(rule)}"
        key, value = f"{endpoint_of(dataset)}/{sensor}/{finding.value}/{rule}", float(finding.count)
        bound = {"stuck": checks.stuck, "spike": checks.spike_z}.get(rule)
        threshold = None if bound is None else float(bound)
    return Alert(key=key, name=f"sensor_{rule}", severity=checks.severity, endpoint=endpoint_of(dataset),
                 summary=summary, value=value, threshold=threshold,
                 labels=labels, started_at=now)  # fmt: skip


def _merged(known: Alert, fresh: Alert) -> Alert:
    """The open incident with the newest ingestion's counts added: its start and key are kept."""
    count = int(known.labels.get("count", "0")) + int(fresh.labels.get("count", "0"))
    labels = {
        **fresh.labels,
        "count": str(count),
        "first": known.labels.get("first", fresh.labels.get("first", "")),
    }
    value = max(known.value or 0.0, fresh.value or 0.0) if fresh.name == "sensor_silence" else float(count)
    return Alert(key=known.key, name=known.name, severity=known.severity, endpoint=known.endpoint,
                 summary=fresh.summary, value=value, threshold=fresh.threshold, labels=labels,
                 started_at=known.started_at)  # fmt: skip


def _hours(checks: SensorChecks) -> float:
    after = checks.silence_after
    return after.total_seconds() / 3600 if after else 0.0
