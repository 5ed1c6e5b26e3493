"""``project.privacy``: erasure of a data subject, retention, and the names of PII inputs.

Erasure visits, in order, the datasets, the push logs and online store, and the prediction log with its
feedback; each file is replaced atomically, so a kill mid-way leaves each one old or new, and a rerun
finishes the work (it removes what is left and corrects the counts). One audit event, ``privacy.forget``,
records the counts per place and the HMAC of the key (never the key). A dry run needs the same permission
(its counts tell whether a person is in the data) and changes nothing, audit log included.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mloop._service import Service
from mloop._time import utcnow
from mloop.data.erasure import DatasetEraser, QuarantineRetention
from mloop.data.queries import DatasetCatalog
from mloop.errors import ConfigError, NotFound, SchemaError
from mloop.features.erasure import FeatureEraser
from mloop.predictions import erasure as predictions
from mloop.predictions.log import predictions_folder
from mloop.privacy import queries
from mloop.privacy.reports import ForgetReport, PurgeReport
from mloop.security.pii import Pseudonymizer
from mloop.store.schema import DatasetRow

log = logging.getLogger("mloop.privacy")


class PrivacyService(Service):
    """Erasure (``privacy.forget``) and retention (``privacy.purge``)."""

    @property
    def pseudonymizer(self) -> Pseudonymizer:
        """The keyed hash of PII values (the key file is created on first use)."""
        return self._ctx.resources.get(
            "pii_key", lambda: Pseudonymizer.from_file(self._ctx.settings.pii.key_file)
        )

    def pii_inputs(self) -> frozenset[str]:
        """Every name tagged PII in the project: dataset columns (newest schemas), features and the join
        keys of tagged entities. The server hashes the logged inputs of these names; it asks once per
        endpoint snapshot, not per request."""
        names = FeatureEraser(self._ctx).pii_names()
        catalog = DatasetCatalog(self._ctx)
        with self._ctx.store.read() as session:
            datasets = session.scalars(
                select(DatasetRow.name).where(DatasetRow.project_id == self._ctx.project_id)
            ).all()
        for name in datasets:
            with contextlib.suppress(NotFound):  # a dataset whose first ingestion failed has no schema
                names.update(catalog.schema(name).pii)
        return frozenset(names)

    # ---- erasure --------------------------------------------------------------------------------------

    def forget(self, entity: str, value: Any, *, dry_run: bool = False) -> ForgetReport:
        """Remove every row whose column ``entity`` holds ``value`` (its hash, in the prediction log).

        >>> project.privacy.forget("customer_id", 42).to_dict()["models_to_retrain"]   # doctest: +SKIP
        ['fraud v3']
        """
        if not isinstance(entity, str) or not entity or value is None or value == "":
            raise SchemaError("Name the subject as a column and a value: forget('customer_id', 42).")
        self._authorize("privacy.forget", f"entity:{entity}")
        keys = self.pseudonymizer
        report = ForgetReport(entity, keys.digest(value), dry_run)
        report.datasets = DatasetEraser(self._ctx).erase(entity, value, dry_run=dry_run)
        features = FeatureEraser(self._ctx)
        report.features = features.erase(entity, value, dry_run=dry_run)
        try:
            folder = predictions_folder(self._ctx.settings)
        except ConfigError:
            folder = None  # no local prediction log: nothing was logged here
        if folder is not None:
            report.predictions = predictions.erase(
                folder, entity, value, keys, dry_run=dry_run, parquet=self._ctx.parquet
            )
        report.models = self._trained_on(features, report)
        if not dry_run:
            with self._mutate("privacy.forget", f"entity:{entity}", action="privacy.forget") as change:
                DatasetEraser.record(change.session, report.datasets)
                change.payload.update(report.to_dict())
        log.info("privacy.forget %s: %d found%s", entity, report.removed, " (dry run)" if dry_run else "")
        return report

    def _trained_on(self, features: FeatureEraser, report: ForgetReport) -> list[str]:
        """Model versions whose lineage names a view the subject's data reached: one keyed by the column
        (its training set joined the subject's labels), or one reading a dataset or push log the subject
        was found in. Nothing when the subject was found nowhere."""
        if not report.removed:
            return []
        views = {view.name for view, _ in features.views() if report.entity in view.join_keys}
        hit = {("dataset", d.dataset) for d in report.datasets if d.rows}
        hit |= {("push", name) for name in report.features.push_rows}
        views |= {
            view
            for view, source in features.sources([v.name for v, _ in features.views()]).items()
            if source in hit
        }
        with self._ctx.store.read() as session:
            return queries.trained_on(session, self._ctx.project_id, views)

    # ---- retention ------------------------------------------------------------------------------------

    def purge(self, *, dry_run: bool = False, now: datetime | None = None) -> PurgeReport:
        """Delete prediction-log days and quarantine files older than ``retention:`` allows (nothing when
        it sets no limit). ``mloop serve`` runs this every hour."""
        self._authorize("privacy.purge", "retention")
        settings = self._ctx.settings.retention
        now = now or utcnow()
        report = PurgeReport(dry_run, settings.prediction_log_days, settings.quarantine_days)
        expired: list[predictions.Expired] = []
        if settings.prediction_log_days is not None:
            try:
                expired = predictions.expired(
                    predictions_folder(self._ctx.settings), settings.prediction_log_days, now
                )
            except ConfigError:
                expired = []
        quarantine = QuarantineRetention(self._ctx)
        old = (
            quarantine.expired(settings.quarantine_days, now) if settings.quarantine_days is not None else []
        )
        report.partitions = len(expired)
        report.prediction_files = sum(e.files for e in expired)
        report.quarantine_files = len(old)
        report.quarantine_rows = sum(q.rows for q in old)
        if dry_run or not report.removed:
            return report
        with self._mutate("privacy.purge", "retention", action="privacy.purge") as change:
            QuarantineRetention.forget(change.session, old)
            change.payload.update(report.to_dict())
        # After the commit: a kill here leaves files no manifest lists, which a rerun (or the next
        # ingestion, for quarantine) deletes.
        quarantine.delete(old)
        predictions.purge(expired, predictions_folder(self._ctx.settings))
        return report
