"""``project.data``: ingest and validate datasets (reading them is :mod:`mloop.data.queries`).

Ingestion commits in two steps that keep "nothing half-written" true: the engine stages every file in a
private local folder; the files are published into the dataset (a rename in a folder, one upload each on
S3, where an object appears only when complete), then one metadata transaction records the ingestion, its
file list and its audit event. Readers see only files listed by committed ingestions, so a crash in
between leaves orphans that the next ingestion of the dataset removes; a failure before the commit
deletes what was published.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.data import ingest as engine
from mloop.data import queries
from mloop.data.infer import infer_dataset
from mloop.data.lock import dataset_lock
from mloop.data.queries import DatasetCatalog
from mloop.data.report import IngestReport
from mloop.data.schema import Dataset, name_problem
from mloop.data.sensors import History
from mloop.data.sources import CsvSource, Source, as_source
from mloop.errors import MloopError, SchemaError
from mloop.store.schema import DatasetRow, DatasetSchemaRow, IngestionRow


class DataService(DatasetCatalog):
    """Datasets of the project: ingest and validate (writes need ``data.write``), and everything
    :class:`DatasetCatalog` reads.

    ``after_ingest`` holds what runs after each committed ingestion, given its report (the project adds
    the sensor incidents' check): a hook that fails adds a note to the report, never undoes the ingestion.
    """

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.after_ingest: builtins.list[Callable[[IngestReport], None]] = []

    # ---- ingest ---------------------------------------------------------------------------------------

    def ingest(
        self,
        source: Any,
        dataset: str | Dataset,
        *,
        schema: str | Path | Dataset | None = None,
        progress: engine.Progress | None = None,
        memory_limit: str | None = None,
        **source_options: Any,
    ) -> IngestReport:
        """Validate every row of ``source`` and add the valid ones to ``dataset``.

        >>> report = project.data.ingest("transactions.csv", "transactions")   # doctest: +SKIP
        >>> report.rows_read == report.rows_accepted + report.rows_quarantined  # doctest: +SKIP
        True
        """
        return self._run(source, dataset, schema, progress, memory_limit, source_options, write=True)

    def validate(
        self,
        source: Any,
        dataset: str | Dataset,
        *,
        schema: str | Path | Dataset | None = None,
        progress: engine.Progress | None = None,
        **source_options: Any,
    ) -> IngestReport:
        """Check ``source`` against the dataset's schema and report, writing nothing."""
        return self._run(source, dataset, schema, progress, None, source_options, write=False)

    def _run(
        self,
        source: Any,
        dataset: str | Dataset,
        schema: str | Path | Dataset | None,
        progress: engine.Progress | None,
        memory_limit: str | None,
        source_options: dict[str, Any],
        *,
        write: bool,
    ) -> IngestReport:
        started = time.perf_counter()
        src = as_source(source, **source_options)
        name = dataset.name if isinstance(dataset, Dataset) else dataset
        problem = name_problem(name)
        if problem:
            raise SchemaError(f"Invalid dataset name: {problem}. Choose a name like 'transactions'.")
        declared = _declared(dataset, schema, name)
        self._authorize("data.write" if write else "data.read", f"dataset:{name}")
        folder = self.folder(declared.name if declared else name)
        storage = self._ctx.data
        fresh = not storage.remote and not os.path.exists(folder)
        try:
            with storage.reaching(), self._locked(name, exclusive=write):
                report = self._locked_run(src, name, declared, folder, progress, memory_limit, write=write)
        finally:
            if fresh and not any(p.name != ".lock" for p in Path(folder).iterdir()):
                shutil.rmtree(folder, ignore_errors=True)  # a failed first ingestion leaves no trace
        report.seconds = time.perf_counter() - started
        if write and report.ingest_id and not report.skipped:
            for hook in self.after_ingest:
                try:
                    hook(report)
                except MloopError as exc:  # the data is in: what failed after it is said, not raised
                    report.notes.append(f"after the ingestion: {exc}")
        return report

    def _locked_run(
        self,
        src: Source,
        name: str,
        declared: Dataset | None,
        folder: str,
        progress: engine.Progress | None,
        memory_limit: str | None,
        *,
        write: bool,
    ) -> IngestReport:
        stored, version = self._stored_schema(name)
        ingest_id = uuid.uuid4().hex
        # Staged beside the dataset in a folder (a rename publishes it), on local scratch disk for S3.
        workdir = self._ctx.data.staging(folder) / ingest_id
        workdir.mkdir(parents=True)
        # The fingerprint (a SHA-256 of the whole file) is computed beside validation, not before it: a new
        # file, the common case, costs the longer of the two instead of their sum.
        with ThreadPoolExecutor(1, thread_name_prefix="mloop-fingerprint") as pool:
            started = time.perf_counter()
            hashing = pool.submit(_timed, src.fingerprint, progress)
            try:
                notes: builtins.list[str] = []
                if declared is None and stored is None:
                    declared, notes = self._infer(name, src, workdir)
                target = declared or stored
                assert target is not None
                if stored is not None and declared is not None and declared != stored:
                    notes.append(f"schema changed: recorded as version {version + 1}")
                existing = self.files(name) if stored is not None and target.key else []
                key_ranges = self._key_ranges(name) if existing else {}
                history = self._sensor_history(name) if stored is not None and target.sensors else None
                if write:
                    self._remove_orphans(folder, name, workdir)
                with engine.Ingestion(
                    target, src, workdir=workdir, ingest_id=ingest_id, existing=existing, progress=progress,
                    memory_limit=memory_limit, parquet=self._ctx.parquet, key_ranges=key_ranges,
                    history=history,
                ) as job:  # fmt: skip
                    try:
                        outcome = job.validate()
                    except MloopError:
                        # A re-sent file is recognised even if it no longer fits a changed schema.
                        previous = self._ingestion_by_fingerprint(name, hashing.result()[0])
                        if previous is not None:
                            return self._skipped(previous, name, write)
                        raise
                    fingerprint, hashed = hashing.result()
                    previous = self._ingestion_by_fingerprint(name, fingerprint)
                    if previous is not None:
                        return self._skipped(previous, name, write)
                    if write:
                        job.write(outcome)
                report = IngestReport(
                    dataset=name, source=src.describe(), fingerprint=fingerprint, rows_read=outcome.rows_read,
                    rows_accepted=outcome.rows_accepted, rows_quarantined=outcome.rows_quarantined,
                    by_reason=outcome.by_reason, min_ts=outcome.min_ts, max_ts=outcome.max_ts,
                    notes=notes + outcome.notes, dry_run=not write,
                    timings={"fingerprint": hashed, **outcome.timings},
                    schema_version=version if stored is not None and declared in (None, stored) else version + 1,
                )  # fmt: skip
                if write:
                    clock = time.perf_counter()
                    self._commit(report, target, stored, outcome, workdir / "out", folder, ingest_id)
                    report.timings["commit"] = round(time.perf_counter() - clock, 4)
                report.timings["total"] = round(time.perf_counter() - started, 4)
            finally:
                hashing.cancel()
                shutil.rmtree(workdir, ignore_errors=True)
                with contextlib.suppress(OSError):
                    workdir.parent.rmdir()
        return report

    def _sensor_history(self, name: str) -> History:
        """What the sensor checks' windows read before a batch: every stored file, accepted and quarantined."""
        folder = self.folder(name)
        with self._ctx.store.read() as session:
            quarantined = queries.quarantine_files(session, self._ctx.project_id, name)
        join = self._ctx.data.join
        return History(
            accepted=[join(folder, f) for f in self._committed_files(name)],
            quarantined=[join(folder, q) for q in quarantined],
        )

    def _skipped(self, previous: IngestionRow, name: str, write: bool) -> IngestReport:
        report = self._report(previous, name, skipped=True)
        report.notes.append(f"already ingested as {previous.id} on {previous.finished_at:%Y-%m-%d %H:%M} UTC")
        report.dry_run = not write
        return report

    def _infer(self, name: str, src: Source, workdir: Path) -> tuple[Dataset, list[str]]:
        with engine.connect(workdir) as con:
            opened = src.open(con, workdir)
            return infer_dataset(name, con, opened, text_source=isinstance(src, CsvSource))

    def _commit(
        self,
        report: IngestReport,
        target: Dataset,
        stored: Dataset | None,
        outcome: engine.Outcome,
        staged: Path,
        folder: str,
        ingest_id: str,
    ) -> None:
        storage = self._ctx.data
        published: builtins.list[str] = []
        files: list[dict[str, Any]] = []
        quarantine: str | None = None
        moves = []
        for entry in outcome.files:
            relative = Path(str(entry["path"])).relative_to("data").as_posix()
            files.append({**entry, "path": relative})
            moves.append((staged / str(entry["path"]), relative))
        if outcome.quarantine:
            quarantine = f"_quarantine/{ingest_id}.parquet"
            moves.append((staged / outcome.quarantine, quarantine))
        try:
            # Published first, then listed in the manifest: readers see only listed files, so a crash in
            # between leaves orphans (removed by the next ingestion), never a half-visible ingestion.
            for local, relative in moves:
                published.append(storage.join(folder, relative))
                storage.publish(local, published[-1])
            with self._mutate("data.write", f"dataset:{report.dataset}", action="data.ingest") as change:
                session = change.session
                row = self._dataset_row(session, report.dataset)
                if stored is None or stored != target:
                    assert report.schema_version is not None  # set by validation, which ran above
                    self._add_schema(session, row, report.schema_version, target)
                now = utcnow()
                # What the audit event records of the ingestion is what its row holds.
                recorded = {name: getattr(report, name) for name in _AUDITED}
                session.add(
                    IngestionRow(
                        id=ingest_id, dataset_id=row.id, **recorded, reasons=report.by_reason, files=files,
                        quarantine=quarantine, min_ts=report.min_ts, max_ts=report.max_ts, started_at=now,
                        finished_at=now, actor=self.actor.name,
                    )
                )  # fmt: skip
                session.flush()
                change.payload.update(ingest_id=ingest_id, **recorded)
        except BaseException:
            for location in published:
                with contextlib.suppress(Exception):  # what cannot be deleted now is an orphan for later
                    storage.delete(location)
            raise
        report.ingest_id = ingest_id
        report.files = [storage.join(folder, f["path"]) for f in files]
        report.quarantine = storage.join(folder, quarantine) if quarantine else None

    def _remove_orphans(self, folder: str, name: str, workdir: Path) -> None:
        """Delete files left by an ingestion that crashed before it committed (the lock is held, so no
        other ingestion or validation is running: every working folder but ours is a crash's)."""
        storage = self._ctx.data
        known = {storage.join(folder, f) for f in self._committed_files(name)}
        with self._ctx.store.read() as session:
            known |= {
                storage.join(folder, q) for q in queries.quarantine_files(session, self._ctx.project_id, name)
            }
        for location in storage.list(folder):
            if "_staging" not in location[len(folder) :].split("/") and location not in known:
                storage.delete(location)
        for staged in workdir.parent.iterdir():
            if staged != workdir:
                shutil.rmtree(staged, ignore_errors=True)

    def _locked(self, name: str, *, exclusive: bool) -> contextlib.AbstractContextManager[None]:
        """One ingestion (or erasure) of a dataset at a time, on this host and across hosts."""
        lease = f"dataset:{self._ctx.project_id}:{name}"
        return dataset_lock(self._ctx.data, self._ctx.store, lease, self.folder(name), exclusive=exclusive)

    def set_schema(self, dataset: Dataset) -> int:
        """Record a new schema version for ``dataset`` (creating the dataset if needed); returns the version."""
        with self._mutate("data.write", f"dataset:{dataset.name}", action="data.schema") as change:
            session = change.session
            row = self._dataset_row(session, dataset.name)
            version = (queries.newest_schema_version(session, row.id) or 0) + 1
            self._add_schema(session, row, version, dataset)
            change.payload["version"] = version
        return version

    def _dataset_row(self, session: Session, name: str) -> DatasetRow:
        """The dataset's row, created in ``session`` (by this actor) if the dataset is new."""
        row = queries.dataset(session, self._ctx.project_id, name)
        if row is None:
            row = DatasetRow(project_id=self._ctx.project_id, name=name, created_at=utcnow(),
                             created_by=self.actor.name)  # fmt: skip
            session.add(row)
            session.flush()
        return row

    def _add_schema(self, session: Session, row: DatasetRow, version: int, schema: Dataset) -> None:
        session.add(DatasetSchemaRow(dataset_id=row.id, version=version, spec=schema.to_dict(),
                                     created_at=utcnow(), created_by=self.actor.name))  # fmt: skip


_AUDITED = ("source", "fingerprint", "rows_read", "rows_accepted", "rows_quarantined", "schema_version")
"""The fields of an ingestion's report that its row and its audit event both record."""


def _declared(dataset: str | Dataset, schema: str | Path | Dataset | None, name: str) -> Dataset | None:
    if isinstance(dataset, Dataset):
        if schema is not None:
            raise SchemaError("Pass the schema once: either a Dataset, or a dataset name and schema=.")
        return dataset
    if schema is None:
        return None
    if isinstance(schema, Dataset):
        if schema.name != name:
            return schema.model_copy(update={"name": name})
        return schema
    return Dataset.from_yaml(schema, name=name)


def _timed(function: Any, *args: Any) -> tuple[Any, float]:
    clock = time.perf_counter()
    return function(*args), round(time.perf_counter() - clock, 4)
