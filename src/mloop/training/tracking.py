"""Experiment tracking: runs with their params, metrics, tags, artifacts and environment.

>>> with project.run("fraud", params={"num_leaves": 31}, tags={"team": "risk"}) as run:   # doctest: +SKIP
...     for step in range(100):
...         run.log_metric("loss", loss, step=step)      # buffered: microseconds, no database round trip
...     run.log_metrics({"auc": 0.91})
...     run.log_artifact("plot.png")
>>> project.runs.search("fraud", filter="metrics.auc > 0.9", order_by=["metrics.auc desc"])  # doctest: +SKIP

Starting and ending a run are audited mutations (``runs.start``, ``runs.end``), as are params, tags and
artifacts. Metric points are not: they go to an in-memory buffer that a background thread writes in
batches (:mod:`mloop.training.metric_log`), flushed when the run ends, when its body raises, when the
project closes and when the process exits.
"""

from __future__ import annotations

import atexit
import builtins
import json
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from time import time as _now
from types import TracebackType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._service import Context, Service
from mloop._time import utcnow
from mloop.errors import MloopError, NotFound
from mloop.store.schema import (
    ExperimentRow,
    MetricRow,
    RunArtifactRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)
from mloop.training import search as search_lang
from mloop.training.environment import environment
from mloop.training.metric_log import AUTO, STEP_LIMIT, MetricBuffer
from mloop.training.records import Experiment, RunInfo, load_runs, metric_value

log = logging.getLogger("mloop.training")

MAX_KEY = 250
MAX_VALUE = 1000
MAX_NAME = 200
MAX_SEARCH = 100_000
# Letters, digits and _ - . / : and space. No ',' or ']': the metric batch encoding relies on it.
_KEY = re.compile(r"[A-Za-z0-9_\-./: ]+")


def check_key(kind: str, key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _KEY.fullmatch(key):
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        raise MloopError(
            f"The {kind} name {shown} is not valid: use 1 to {MAX_KEY} letters, digits, spaces "
            "and _ - . / : (for example 'val_auc' or 'loss/train')."
        )
    return key


def as_text(kind: str, key: str, value: Any) -> str:
    """A param or tag value as the text that is stored and searched: strings as they are, everything
    else as JSON (``31``, ``0.1``, ``true``, ``null``, ``[1, 2]``)."""
    text = value if isinstance(value, str) else json.dumps(_plain(value), sort_keys=True, default=str)
    if len(text) > MAX_VALUE:
        raise MloopError(
            f"The {kind} {key!r} is {len(text):,} characters long; at most {MAX_VALUE:,} fit. "
            f"Log a shorter value, or log the full value as an artifact (run.log_artifact)."
        )
    return text


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and the like turned into plain Python (for JSON)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def _metric_value(key: str, value: Any) -> float:
    if not isinstance(value, str | bytes) and value is not None:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise MloopError(
        f"The value of metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}. "
        "Log numbers as metrics; record text with run.set_tag."
    )


def _metric_step(key: str, step: Any) -> int:
    try:
        number = step.__index__()  # int, numpy integers; not floats
    except (AttributeError, TypeError):
        number = None
    if number is None or isinstance(step, bool) or not -STEP_LIMIT <= number <= STEP_LIMIT:
        raise MloopError(
            f"The step of metric {key!r} must be a whole number within ±2**53, got {step!r:.60}. "
            "Pass step=epoch (an int), or leave it out to count steps per metric from 0."
        )
    return int(number)


class Run:
    """A run in progress. Use it as a context manager: it ends ``finished`` when the block ends, or
    ``failed`` (with the exception recorded) when the block raises, after writing every metric point.

    ``log_metric`` is thread-safe and cheap (an append to an in-memory buffer); the points reach the
    database within ``metrics_interval`` seconds, and all of them before the run counts as ended.
    """

    def __init__(
        self, service: RunService, row: RunRow, experiment: str, *, metrics_interval: float = 0.5
    ) -> None:
        self._service = service
        self._ctx = service._ctx
        self.id = row.id
        self.experiment = experiment
        self.name = row.name
        self.parent_id = row.parent_id
        self.started_at = row.started_at
        self.ended_at: datetime | None = None
        self.model_version: Any = None  # set by Run.register's callers (the training pipeline)
        self._status = "running"
        self._lock = threading.Lock()
        self._buffer = MetricBuffer(
            self._ctx.store, self.id, interval=metrics_interval, on_backlog=self._backlogged
        )
        # The hot path's state, bound once: key -> key id, and the buffer's extend.
        self._keys: dict[str, int] = {}
        self._key_ids: dict[str, int] = {}  # every key logged, also while _keys is cleared
        self._extend = self._buffer.points.extend
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    # ---- metrics: the hot path ------------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record ``value`` of metric ``key`` at ``step``. Without a step, each key numbers its own
        points logged without one: 0, 1, 2, ... NaN is kept (stored as NULL, read back as NaN); ±inf as
        they are.

        Thread-safe without a lock, and cheap: the point goes to an in-memory buffer."""
        if type(value) is not float:
            value = _metric_value(key, value)
        kid = self._keys.get(key)
        if kid is None:
            kid = self._first_point(key)
        if step is None:
            step = AUTO
        elif type(step) is not int or not -STEP_LIMIT <= step <= STEP_LIMIT:
            step = _metric_step(key, step)
        # One C call: atomic under the GIL, so points from several threads never interleave.
        self._extend((kid, step, _now(), value))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at once, all at ``step`` (or each at its own next step)."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def _first_point(self, key: str) -> int:
        # The checks the hot path skips after a key's first point; also where producers land while
        # the writer has fallen behind (see _backlogged).
        with self._lock:
            if self._status != "running":
                raise MloopError(
                    f"Run {self.id} is {self._status}; metrics can only be logged while it runs. "
                    "Start a new run (project.run(...)) for more."
                )
            if self._buffer.pending() > self._buffer.max_pending:
                self._buffer.flush()  # back-pressure: raises if the database is still unreachable
            kid = self._key_ids.get(key)
            if kid is None:
                check_key("metric", key)
                self._buffer.keys.append(key)
                kid = self._key_ids[key] = len(self._buffer.keys) - 1
                self._buffer.start()
            self._keys[key] = kid
            return kid

    def _backlogged(self) -> None:
        # Called by the writer thread when too many points wait: send producers through _first_point.
        self._keys = {}

    def flush(self) -> int:
        """Write the buffered metric points now; returns how many were written."""
        return self._buffer.flush()

    # ---- params, tags, artifacts ----------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params. A param is set once: logging it again with the same value is a no-op, with
        another value an error (start a new run to try other values)."""
        self._require_running("params")
        self._service._log_params(self, params)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (they may change, and may be set after the run ended)."""
        self._service.set_tags(self, tags)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(self, source: str | Path | bytes, name: str | None = None) -> str:
        """Store a file (``source`` a path; ``name`` defaults to its file name) or bytes (``name``
        required) in the artifact store, and record it on the run; returns its sha256 digest. Logging a
        name again points it at the new content."""
        self._require_running("artifacts")
        return self._service._log_artifact(self, source, name)

    def register(self, model: Any, name: str, **kwargs: Any) -> Any:
        """Register ``model`` as a new version of ``name`` in the model registry, linked to this run."""
        from mloop.registry.service import ModelRegistry

        self.flush()
        return ModelRegistry(self._ctx).register(name, model, run_id=self.id, **kwargs)

    # ---- lifecycle ------------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self._status

    def end(self, status: str = "finished", error: BaseException | None = None) -> None:
        """Write every buffered metric point, then mark the run ``finished`` or ``failed``. Ending an
        ended run does nothing."""
        if status not in ("finished", "failed"):
            raise MloopError(f"A run ends 'finished' or 'failed', not {status!r}.")
        with self._lock:
            if self._status != "running":
                return
            self._status = "ending"
            self._keys = {}  # the next log_metric takes the slow path, which refuses it
        try:
            self._buffer.close()
            self._service._end(self, status, error)
        except BaseException:
            self._status = "running"
            raise
        self._status = status
        _OPEN.discard(self)
        self._service._open_runs().discard(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self.end("finished")
            return
        try:
            self.end("failed", exc)
        except Exception:
            # The body's exception is what the caller needs to see; this one goes to the log.
            log.exception("could not record the failure of run %s", self.id)

    def _require_running(self, what: str) -> None:
        if self._status != "running":
            raise MloopError(
                f"Run {self.id} is {self._status}; {what} can only be logged while it runs. "
                "Start a new run (project.run(...)) for more."
            )

    def _timing(self) -> dict[str, Any]:
        return {
            "wall_seconds": round(time.perf_counter() - self._wall0, 6),
            "cpu_seconds": round(time.process_time() - self._cpu0, 6),
            "metric_points": self._buffer.written,
        }

    def __repr__(self) -> str:
        return (
            f"Run({self.id!r}, experiment={self.experiment!r}, name={self.name!r}, status={self._status!r})"
        )


class _OpenRuns:
    """The runs a project opened and has not ended: flushed before its reads, ended when it closes."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs[run.id] = run

    def discard(self, run: Run) -> None:
        with self._lock:
            self._runs.pop(run.id, None)

    def flush(self, ids: Sequence[str] | None = None) -> None:
        with self._lock:
            runs = (
                list(self._runs.values()) if ids is None else [self._runs[i] for i in ids if i in self._runs]
            )
        for run in runs:
            run.flush()

    def close(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                run.end("finished")
            except Exception:
                log.exception("could not end run %s when its project closed", run.id)


# Every run of this process not yet ended, for the exit hook.
_OPEN: set[Run] = set()


@atexit.register
def _end_open_runs() -> None:
    """At exit, write the metric points of runs never ended and end them: ``failed`` if the process is
    dying of an uncaught exception, else ``finished``."""
    error = getattr(sys, "last_value", None)
    for run in list(_OPEN):
        try:
            run.end("failed" if error is not None else "finished", error)
        except Exception:
            log.exception("could not end run %s at exit", run.id)


class RunService(Service):
    """Experiments and runs of a project (``project.runs``): start, read, search, compare."""

    def __init__(self, ctx: Context, root: Path | None = None) -> None:
        super().__init__(ctx)
        self._root = root

    def _open_runs(self) -> _OpenRuns:
        runs: _OpenRuns = self._ctx.resources.get("training.open_runs", _OpenRuns)
        return runs

    # ---- writing --------------------------------------------------------------------------------------

    def start(
        self,
        experiment: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        parent: Run | str | None = None,
    ) -> Run:
        """Start a run in ``experiment`` (created on first use). ``parent`` (a run or its id) makes it a
        child run, as hyper-parameter trials are of their search."""
        _check_name("experiment", experiment)
        if name is not None:
            _check_name("run", name)
        param_rows = _texts("param", params or {})
        tag_rows = _texts("tag", tags or {})
        parent_id = parent.id if isinstance(parent, Run) else parent
        run_id = uuid.uuid4().hex
        now = utcnow()
        info = environment(self._root or Path.cwd())
        info["pid"] = os.getpid()
        info["param_values"] = {k: _json_value(v) for k, v in (params or {}).items()}
        payload: dict[str, Any] = {"run": run_id, "params": len(param_rows), "tags": len(tag_rows)}
        if parent_id:
            payload["parent"] = parent_id
        with self._mutate("runs.write", f"experiment:{experiment}", action="runs.start", **payload) as change:
            session = change.session
            experiment_id = session.scalar(
                select(ExperimentRow.id).where(
                    ExperimentRow.project_id == self._ctx.project_id, ExperimentRow.name == experiment
                )
            )
            if experiment_id is None:
                row = ExperimentRow(project_id=self._ctx.project_id, name=experiment, created_at=now, tags={})
                session.add(row)
                session.flush()
                experiment_id = row.id
                change.payload["experiment_created"] = True
            if parent_id is not None and self._run_row(session, parent_id) is None:
                raise NotFound(f"Parent run {parent_id!r} does not exist in project {self._ctx.project!r}.")
            run = RunRow(
                id=run_id,
                experiment_id=experiment_id,
                parent_id=parent_id,
                name=name or f"{experiment}-{run_id[:6]}",
                status="running",
                started_at=now,
                ended_at=None,
                error=None,
                info=info,
                created_by=self.actor.name,
            )
            session.add(run)
            session.flush()
            session.add_all(RunParamRow(run_id=run_id, key=k, value=v) for k, v in param_rows.items())
            session.add_all(RunTagRow(run_id=run_id, key=k, value=v) for k, v in tag_rows.items())
        opened = Run(self, run, experiment)
        _OPEN.add(opened)
        self._open_runs().add(opened)
        return opened

    def _end(self, run: Run, status: str, error: BaseException | None) -> None:
        timing = run._timing()
        payload: dict[str, Any] = {"run": run.id, "status": status}
        with self._mutate(
            "runs.write", f"experiment:{run.experiment}", action="runs.end", **payload
        ) as change:
            row = change.session.get(RunRow, run.id)
            if row is None:
                raise NotFound(f"Run {run.id} is gone from the metadata store; it cannot be ended.")
            info = dict(row.info)
            info.update(timing)
            if error is not None:
                change.payload["error"] = type(error).__name__
                row.error = f"{type(error).__name__}: {error}"
                info["error_type"] = f"{type(error).__module__}.{type(error).__qualname__}"
                info["traceback"] = "".join(traceback.format_exception(error))[-20_000:]
            row.status = status
            row.ended_at = run.ended_at = utcnow()
            row.info = info

    def _log_params(self, run: Run, params: Mapping[str, Any]) -> None:
        texts = _texts("param", params)
        if not texts:
            return
        with self._mutate(
            "runs.write",
            f"experiment:{run.experiment}",
            action="runs.log_params",
            run=run.id,
            keys=sorted(texts),
        ) as change:
            session = change.session
            stored = dict(
                session.execute(
                    select(RunParamRow.key, RunParamRow.value).where(
                        RunParamRow.run_id == run.id, RunParamRow.key.in_(list(texts))
                    )
                ).all()
            )
            for key, value in texts.items():
                if key in stored and stored[key] != value:
                    raise MloopError(
                        f"Param {key!r} of run {run.id} is {stored[key]!r} already; params are set once. "
                        f"Start a new run to try {value!r}, or record changing values as metrics or tags."
                    )
            session.add_all(
                RunParamRow(run_id=run.id, key=k, value=v) for k, v in texts.items() if k not in stored
            )
            row = session.get(RunRow, run.id)
            assert row is not None
            values = dict(row.info.get("param_values", {}))
            values.update({k: _json_value(v) for k, v in params.items()})
            row.info = {**row.info, "param_values": values}

    def set_tags(self, run: Run | str, tags: Mapping[str, Any]) -> None:
        """Set tags of ``run`` (a run or its id), replacing values set before."""
        texts = _texts("tag", tags)
        run_id = run.id if isinstance(run, Run) else self._resolve(run)
        experiment = run.experiment if isinstance(run, Run) else self._experiment_of(run_id)
        if not texts:
            return
        with self._mutate(
            "runs.write", f"experiment:{experiment}", action="runs.set_tags", run=run_id, keys=sorted(texts)
        ) as change:
            session = change.session
            stored = {
                tag.key: tag
                for tag in session.scalars(
                    select(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key.in_(list(texts)))
                )
            }
            for key, value in texts.items():
                if key in stored:
                    stored[key].value = value
                else:
                    session.add(RunTagRow(run_id=run_id, key=key, value=value))

    def _log_artifact(self, run: Run, source: str | Path | bytes, name: str | None) -> str:
        self._authorize("runs.write", f"experiment:{run.experiment}")
        if isinstance(source, bytes | bytearray | memoryview):
            if not name:
                raise MloopError(
                    "Name the artifact when logging bytes: run.log_artifact(data, 'report.json')."
                )
            data = bytes(source)
            digest, size = self._ctx.artifacts.put_bytes(data), len(data)
        else:
            path = Path(source)
            if path.is_dir():
                raise MloopError(f"{path} is a folder: log the files in it one by one, or an archive of it.")
            if not path.is_file():
                raise NotFound(f"Cannot log artifact {path}: no such file.")
            name = name or path.name
            digest, size = self._ctx.artifacts.put_file(path), path.stat().st_size
        if len(name) > 500 or name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise MloopError(
                f"Artifact name {name[:80]!r} is not valid: use a relative name of at most 500 characters "
                "with / between parts and no '..' (for example 'plots/roc.png')."
            )
        with self._mutate(
            "runs.write", f"experiment:{run.experiment}", action="runs.log_artifact", run=run.id, name=name,
            digest=digest, size=size,
        ) as change:  # fmt: skip
            stored = change.session.get(RunArtifactRow, (run.id, name))
            if stored is None:
                change.session.add(
                    RunArtifactRow(run_id=run.id, name=name, digest=digest, size=size, created_at=utcnow())
                )
            else:
                stored.digest, stored.size, stored.created_at = digest, size, utcnow()
        return digest

    # ---- reading --------------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunInfo:
        """The run ``run_id`` (a unique prefix of at least 6 characters will do)."""
        run_id = self._resolve(run_id)
        self._authorize("runs.read", f"experiment:{self._experiment_of(run_id)}")
        self._open_runs().flush([run_id])
        with self._ctx.store.read() as session:
            return load_runs(session, [run_id])[0]

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, datetime, float]]:
        """Every point of metric ``key`` of the run, as ``(step, ts, value)`` ordered by step then time."""
        run_id = self._resolve(run_id)
        self._authorize("runs.read", f"experiment:{self._experiment_of(run_id)}")
        self._open_runs().flush([run_id])
        with self._ctx.store.read() as session:
            rows = session.execute(
                select(MetricRow.step, MetricRow.ts, MetricRow.value)
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.ts, MetricRow.id)
            ).all()
        return [(step, ts, metric_value(value)) for step, ts, value in rows]

    def list(self, experiment: str | None = None, limit: int = 100) -> builtins.list[RunInfo]:
        """The newest runs (of ``experiment``, or of every experiment), newest first."""
        return self.search(experiment, limit=limit)

    def experiments(self) -> builtins.list[Experiment]:
        self._authorize("runs.read", "experiment:*")
        with self._ctx.store.read() as session:
            rows = session.execute(
                select(
                    ExperimentRow.name,
                    ExperimentRow.created_at,
                    func.count(RunRow.id),
                    func.max(RunRow.started_at),
                )
                .outerjoin(RunRow, RunRow.experiment_id == ExperimentRow.id)
                .where(ExperimentRow.project_id == self._ctx.project_id)
                .group_by(ExperimentRow.id, ExperimentRow.name, ExperimentRow.created_at)
                .order_by(ExperimentRow.name)
            ).all()
        return [Experiment(name, created, count, last) for name, created, count, last in rows]

    def search(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
    ) -> builtins.list[RunInfo]:
        """Runs of ``experiment`` (a name, names, or None for all) matching ``filter``, ordered by
        ``order_by`` (default: newest first), at most ``limit``. The filter language is described in
        :mod:`mloop.training.search`; one SQL query finds the runs.

        >>> project.runs.search("fraud", "metrics.auc > 0.9 and params.num_leaves = 31",
        ...                     order_by=["metrics.auc desc"], limit=10)          # doctest: +SKIP
        """
        where = search_lang.parse_filter(filter)
        orders = search_lang.parse_order_by(order_by)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH:
            raise MloopError(f"limit must be a whole number from 1 to {MAX_SEARCH:,}, got {limit!r}.")
        names = [experiment] if isinstance(experiment, str) else experiment
        for name in names or ["*"]:
            self._authorize("runs.read", f"experiment:{name}")
        self._open_runs().flush()
        with self._ctx.store.read() as session:
            ids = None if names is None else self._experiment_ids(session, names)
            dialect = self._ctx.store.engine.dialect.name
            # PostgreSQL's planner has statistics and picks the join order itself; SQLite's needs the hint.
            drive = dialect != "sqlite" or search_lang.should_drive(session, where, orders, limit)
            query = search_lang.build_query(ids, where, orders, limit, dialect, drive=drive)
            found = session.scalars(query).all()
            return load_runs(session, found)

    def compare(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Params, metrics and tags of several runs side by side: ``{"runs": [...], "params": {key:
        [value per run]}, "metrics": {...}, "tags": {...}, "differs": {"params": [keys], ...}}``."""
        if len(run_ids) < 1:
            raise MloopError("Name at least one run to compare.")
        infos = [self.get(run_id) for run_id in run_ids]
        out: dict[str, Any] = {
            "runs": [
                {"id": r.id, "name": r.name, "experiment": r.experiment, "status": r.status,
                 "started_at": r.started_at.isoformat(), "duration_seconds": r.duration_seconds}
                for r in infos
            ],
            "differs": {},
        }  # fmt: skip
        for part in ("params", "metrics", "tags"):
            keys = sorted({k for r in infos for k in getattr(r, part)})
            table = {k: [getattr(r, part).get(k) for r in infos] for k in keys}
            out[part] = table
            out["differs"][part] = [k for k, values in table.items() if len({repr(v) for v in values}) > 1]
        return out

    def artifact(self, run_id: str, name: str) -> bytes:
        """The bytes of artifact ``name`` of the run (checked against its digest)."""
        run_id = self._resolve(run_id)
        self._authorize("runs.read", f"experiment:{self._experiment_of(run_id)}")
        with self._ctx.store.read() as session:
            row = session.get(RunArtifactRow, (run_id, name))
            names = [] if row else session.scalars(
                select(RunArtifactRow.name).where(RunArtifactRow.run_id == run_id).order_by(RunArtifactRow.name)
            ).all()  # fmt: skip
        if row is None:
            listed = ", ".join(names[:20]) or "none"
            raise NotFound(f"Run {run_id} has no artifact {name!r}. Its artifacts: {listed}.")
        return self._ctx.artifacts.get_bytes(row.digest)

    # ---- helpers --------------------------------------------------------------------------------------

    def _run_row(self, session: Session, run_id: str) -> RunRow | None:
        return session.scalar(
            select(RunRow)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(RunRow.id == run_id, ExperimentRow.project_id == self._ctx.project_id)
        )

    def _resolve(self, run_id: str) -> str:
        """The full id of ``run_id``, which may be a unique prefix of 6 or more characters."""
        if not isinstance(run_id, str) or not run_id:
            raise MloopError(f"A run id is a string of hex digits, got {run_id!r}.")
        with self._ctx.store.read() as session:
            if self._run_row(session, run_id) is not None:
                return run_id
            matches: builtins.list[str] = []
            if len(run_id) >= 6 and re.fullmatch(r"[0-9a-f]+", run_id):
                matches = builtins.list(
                    session.scalars(
                        select(RunRow.id)
                        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                        .where(RunRow.id.like(run_id + "%"), ExperimentRow.project_id == self._ctx.project_id)
                        .limit(2)
                    )
                )
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise MloopError(f"Run id prefix {run_id!r} matches several runs; give more characters.")
        raise NotFound(
            f"No run {run_id!r} in project {self._ctx.project!r}; `mloop runs list` shows the runs."
        )

    def _experiment_of(self, run_id: str) -> str:
        with self._ctx.store.read() as session:
            name = session.scalar(
                select(ExperimentRow.name)
                .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
                .where(RunRow.id == run_id, ExperimentRow.project_id == self._ctx.project_id)
            )
        if name is None:
            raise NotFound(
                f"No run {run_id!r} in project {self._ctx.project!r}; `mloop runs list` shows the runs."
            )
        return name

    def _experiment_ids(self, session: Session, names: Sequence[str]) -> builtins.list[int]:
        found = dict(
            session.execute(
                select(ExperimentRow.name, ExperimentRow.id).where(
                    ExperimentRow.project_id == self._ctx.project_id,
                    ExperimentRow.name.in_(builtins.list(names)),
                )
            ).all()
        )
        missing = [n for n in names if n not in found]
        if missing:
            known = session.scalars(
                select(ExperimentRow.name).where(ExperimentRow.project_id == self._ctx.project_id).limit(50)
            ).all()
            raise NotFound(
                f"No experiment {missing[0]!r} in project {self._ctx.project!r}. "
                f"Experiments: {', '.join(sorted(known)) or 'none yet (project.run(...) creates one)'}."
            )
        return [found[n] for n in names]


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise MloopError(f"The {kind} name must be 1 to {MAX_NAME} characters, got {name!r:.80}.")


def _texts(kind: str, values: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise MloopError(
            f"{kind.capitalize()}s are a mapping of names to values, got {type(values).__name__}."
        )
    return {check_key(kind, key): as_text(kind, key, value) for key, value in values.items()}


def _json_value(value: Any) -> Any:
    """``value`` if it survives JSON unchanged (NaN and infinities do not), else its text."""
    value = _plain(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return value if isinstance(value, str) else as_text("param", "", value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
