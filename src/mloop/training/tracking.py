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

import builtins
import logging
import os
import re
import traceback
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mloop._service import Context, Service
from mloop._time import utcnow
from mloop.errors import MloopError, NotFound
from mloop.store.clock import database_now
from mloop.store.schema import (
    ExperimentRow,
    RunArtifactRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)
from mloop.training import heartbeat, queries
from mloop.training import search as search_lang
from mloop.training.environment import environment
from mloop.training.queries import Experiment, RunInfo, load_runs, metric_value
from mloop.training.run import (
    MAX_SEARCH,
    OPEN_RUNS,
    OpenRuns,
    Run,
    check_name,
    checked_texts,
    json_value,
)

log = logging.getLogger("mloop.training")


class RunService(Service):
    """Experiments and runs of a project (``project.runs``): start, read, search, compare."""

    def __init__(self, ctx: Context, root: Path | None = None) -> None:
        super().__init__(ctx)
        self._root = root

    def _open_runs(self) -> OpenRuns:
        runs: OpenRuns = self._ctx.resources.get("training.open_runs", OpenRuns)
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
        check_name("experiment", experiment)
        if name is not None:
            check_name("run", name)
        param_rows = checked_texts("param", params or {})
        tag_rows = checked_texts("tag", tags or {})
        parent_id = parent.id if isinstance(parent, Run) else parent
        run_id = uuid.uuid4().hex
        now = utcnow()
        info = environment(self._root or Path.cwd())
        info["pid"], info["heartbeat_seconds"] = os.getpid(), heartbeat.INTERVAL
        info["param_values"] = {k: json_value(v) for k, v in (params or {}).items()}
        payload: dict[str, Any] = {"run": run_id, "params": len(param_rows), "tags": len(tag_rows)}
        if parent_id:
            payload["parent"] = parent_id
        with self._mutate("runs.write", f"experiment:{experiment}", action="runs.start", **payload) as change:
            session = change.session
            experiment_id = queries.experiment_id(session, self._ctx.project_id, experiment)
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
                heartbeat_at=database_now(self._ctx.store, session),  # the clock every beat is judged by
            )
            session.add(run)
            session.flush()
            session.add_all(RunParamRow(run_id=run_id, key=k, value=v) for k, v in param_rows.items())
            session.add_all(RunTagRow(run_id=run_id, key=k, value=v) for k, v in tag_rows.items())
        return self._opened(Run(self, self._ctx, run, experiment))

    def _opened(self, run: Run) -> Run:
        OPEN_RUNS.add(run)
        self._open_runs().add(run)
        heartbeat.HEARTBEAT.watch(run.id, self._ctx.store)
        return run

    def resume(self, run_id: str) -> Run:
        """Reopen run ``run_id`` that a crash left ``running`` (or that ended ``failed``), to go on with it
        in this process: metrics, artifacts and a torch model's checkpoints continue where they stopped.

        >>> with project.runs.resume(run_id) as run:    # doctest: +SKIP
        ...     net.fit(X, y)         # a TorchClassifier continues from the run's last checkpoint
        """
        run_id = self._resolve(run_id)
        experiment = self._experiment_of(run_id)
        if run_id in self._open_runs():
            raise MloopError(f"Run {run_id} is open in this process already; use that Run object.")
        with self._mutate(
            "runs.write", f"experiment:{experiment}", action="runs.resume", run=run_id
        ) as change:
            row = change.session.get(RunRow, run_id)
            assert row is not None  # resolved above
            if row.status == "finished":
                raise MloopError(
                    f"Run {run_id} finished; only a run left running by a crash, or failed, can be resumed. "
                    "Start a new run (project.run(...)) to train again."
                )
            change.payload["was"] = row.status
            info = dict(row.info)
            info["resumed"] = [*info.get("resumed", []), {"pid": os.getpid(), "at": utcnow().isoformat()}]
            info["heartbeat_seconds"] = heartbeat.INTERVAL
            row.status, row.ended_at, row.error, row.info = "running", None, None, info
            row.heartbeat_at = database_now(self._ctx.store, change.session)
            change.session.flush()
            opened = Run(self, self._ctx, row, experiment)
        return self._opened(opened)

    def finish(self, run: Run, status: str, error: BaseException | None) -> None:
        timing = run.timing()
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
        self._open_runs().discard(run)
        heartbeat.HEARTBEAT.forget(run.id)

    def write_params(self, run: Run, params: Mapping[str, Any]) -> None:
        texts = checked_texts("param", params)
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
            stored = queries.params(session, run.id, list(texts))
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
            values.update({k: json_value(v) for k, v in params.items()})
            row.info = {**row.info, "param_values": values}

    def set_tags(self, run: Run | str, tags: Mapping[str, Any]) -> None:
        """Set tags of ``run`` (a run or its id), replacing values set before."""
        texts = checked_texts("tag", tags)
        run_id = run.id if isinstance(run, Run) else self._resolve(run)
        experiment = run.experiment if isinstance(run, Run) else self._experiment_of(run_id)
        if not texts:
            return
        with self._mutate(
            "runs.write", f"experiment:{experiment}", action="runs.set_tags", run=run_id, keys=sorted(texts)
        ) as change:
            session = change.session
            stored = queries.tags(session, run_id, list(texts))
            for key, value in texts.items():
                if key in stored:
                    stored[key].value = value
                else:
                    session.add(RunTagRow(run_id=run_id, key=key, value=value))

    def write_artifact(self, run: Run, source: str | Path | bytes, name: str | None) -> str:
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
        heartbeat.Reaper(self._ctx).sweep([run_id])
        with self._ctx.store.read() as session:
            return load_runs(session, [run_id])[0]

    def metric_history(self, run_id: str, key: str) -> builtins.list[tuple[int, datetime, float]]:
        """Every point of metric ``key`` of the run, as ``(step, ts, value)`` ordered by step then time."""
        run_id = self._resolve(run_id)
        self._authorize("runs.read", f"experiment:{self._experiment_of(run_id)}")
        self._open_runs().flush([run_id])
        with self._ctx.store.read() as session:
            rows = queries.metric_points(session, run_id, key)
        return [(step, ts, metric_value(value)) for step, ts, value in rows]

    def list(self, experiment: str | None = None, limit: int = 100) -> builtins.list[RunInfo]:
        """The newest runs (of ``experiment``, or of every experiment), newest first."""
        return self.search(experiment, limit=limit)

    def experiments(self) -> builtins.list[Experiment]:
        self._authorize("runs.read", "experiment:*")
        with self._ctx.store.read() as session:
            return queries.experiments(session, self._ctx.project_id)

    def search(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[RunInfo]:
        """Runs of ``experiment`` (a name, names, or None for all) matching ``filter``, ordered by
        ``order_by`` (default: newest first), at most ``limit`` after skipping the first ``offset`` (a
        page, counted in the database). The filter language is described in :mod:`mloop.training.search`;
        one SQL query finds the runs.

        >>> project.runs.search("fraud", "metrics.auc > 0.9 and params.num_leaves = 31",
        ...                     order_by=["metrics.auc desc"], limit=10, offset=20)   # doctest: +SKIP
        """
        where = search_lang.parse_filter(filter)
        orders = search_lang.parse_order_by(order_by)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH:
            raise MloopError(f"limit must be a whole number from 1 to {MAX_SEARCH:,}, got {limit!r}.")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise MloopError(f"offset must be a whole number of runs to skip, 0 or more, got {offset!r}.")
        names = self._readable(experiment)
        with self._ctx.store.read() as session:
            ids = None if names is None else self._experiment_ids(session, names)
            dialect = self._ctx.store.engine.dialect.name
            # PostgreSQL's planner has statistics and picks the join order itself; SQLite's needs the hint.
            head = search_lang.with_order_metric(where, orders)
            if head is not None:  # walk the order metric's index; enough runs have it, most of the time
                query = search_lang.build_query(ids, head, orders, limit, dialect, offset=offset)
                found = session.scalars(query).all()
                if len(found) == limit:  # the head is a prefix of the full order: its page is the page
                    return load_runs(session, found)
            drive = dialect != "sqlite" or search_lang.should_drive(session, where, orders, limit + offset)
            query = search_lang.build_query(ids, where, orders, limit, dialect, drive=drive, offset=offset)
            found = session.scalars(query).all()
            return load_runs(session, found)

    def count(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        at_most: int | None = None,
    ) -> int:
        """How many runs :meth:`search` would find with no limit (for the number of pages), counted in
        the database; ``at_most`` stops counting there (a broad filter over 100,000 runs costs in
        proportion to its matches: a page needs to know only a few pages ahead).

        >>> project.runs.count("fraud", "metrics.auc > 0.9", at_most=1001)      # doctest: +SKIP
        """
        where = search_lang.parse_filter(filter)
        if at_most is not None and (isinstance(at_most, bool) or not isinstance(at_most, int) or at_most < 1):
            raise MloopError(f"at_most must be a whole number of runs, 1 or more, got {at_most!r}.")
        names = self._readable(experiment)
        with self._ctx.store.read() as session:
            ids = None if names is None else self._experiment_ids(session, names)
            dialect = self._ctx.store.engine.dialect.name
            return int(session.scalar(search_lang.count_query(ids, where, dialect, at_most)) or 0)

    def experiment_names(self) -> builtins.list[str]:
        """The project's experiment names, the newest created first (without :meth:`experiments`' run
        counts, which read every run)."""
        self._authorize("runs.read", "experiment:*")
        with self._ctx.store.read() as session:
            return queries.experiment_names(session, self._ctx.project_id, limit=MAX_SEARCH)

    def keys(self, experiment: str, recent: int = 1000) -> dict[str, builtins.list[str]]:
        """The param, metric and tag keys of the ``recent`` newest runs of ``experiment`` (what a table
        can show as columns), sorted: ``{"params": [...], "metrics": [...], "tags": [...]}``. Bounded by
        ``recent`` so that it costs the same with 100 or 100,000 runs."""
        names = self._readable(experiment)
        assert names is not None
        with self._ctx.store.read() as session:
            ids = self._experiment_ids(session, names)
            return queries.keys(session, ids, recent)

    def _readable(self, experiment: str | Sequence[str] | None) -> builtins.list[str] | None:
        """The experiment names, once the actor may read each, with pending metrics written and dead runs
        marked so the database answers what the caller sees."""
        names = (
            [experiment] if isinstance(experiment, str) else None if experiment is None else list(experiment)
        )
        for name in names or ["*"]:
            self._authorize("runs.read", f"experiment:{name}")
        self._open_runs().flush()
        heartbeat.Reaper(self._ctx).sweep()
        return names

    def compare(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Params, metrics and tags of several runs side by side: ``{"runs": [...], "params": {key:
        [value per run]}, "metrics": {...}, "tags": {...}, "differs": {"params": [keys], ...}}``."""
        if len(run_ids) < 1:
            raise MloopError("Name at least one run to compare.")
        return queries.side_by_side([self.get(run_id) for run_id in run_ids])

    def artifact(self, run_id: str, name: str) -> bytes:
        """The bytes of artifact ``name`` of the run (checked against its digest)."""
        run_id = self._resolve(run_id)
        self._authorize("runs.read", f"experiment:{self._experiment_of(run_id)}")
        with self._ctx.store.read() as session:
            row = session.get(RunArtifactRow, (run_id, name))
            names = [] if row else queries.artifact_names(session, run_id)
        if row is None:
            listed = ", ".join(names[:20]) or "none"
            raise NotFound(f"Run {run_id} has no artifact {name!r}. Its artifacts: {listed}.")
        return self._ctx.artifacts.get_bytes(row.digest)

    # ---- helpers --------------------------------------------------------------------------------------

    def _run_row(self, session: Session, run_id: str) -> RunRow | None:
        return queries.run(session, self._ctx.project_id, run_id)

    def _resolve(self, run_id: str) -> str:
        """The full id of ``run_id``, which may be a unique prefix of 6 or more characters."""
        if not isinstance(run_id, str) or not run_id:
            raise MloopError(f"A run id is a string of hex digits, got {run_id!r}.")
        with self._ctx.store.read() as session:
            if self._run_row(session, run_id) is not None:
                return run_id
            matches: builtins.list[str] = []
            if len(run_id) >= 6 and re.fullmatch(r"[0-9a-f]+", run_id):
                matches = queries.run_ids_starting(session, self._ctx.project_id, run_id, limit=2)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise MloopError(f"Run id prefix {run_id!r} matches several runs; give more characters.")
        raise NotFound(
            f"No run {run_id!r} in project {self._ctx.project!r}; `mloop runs list` shows the runs."
        )

    def _experiment_of(self, run_id: str) -> str:
        with self._ctx.store.read() as session:
            name = queries.experiment_of(session, self._ctx.project_id, run_id)
        if name is None:
            raise NotFound(
                f"No run {run_id!r} in project {self._ctx.project!r}; `mloop runs list` shows the runs."
            )
        return name

    def _experiment_ids(self, session: Session, names: Sequence[str]) -> builtins.list[int]:
        found = queries.experiment_ids(session, self._ctx.project_id, names)
        missing = [n for n in names if n not in found]
        if missing:
            known = queries.experiment_names(session, self._ctx.project_id, limit=50)
            raise NotFound(
                f"No experiment {missing[0]!r} in project {self._ctx.project!r}. "
                f"Experiments: {', '.join(sorted(known)) or 'none yet (project.run(...) creates one)'}."
            )
        return [found[n] for n in names]
