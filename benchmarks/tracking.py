"""Benchmark: experiment tracking: ``run.log_metric`` in a training loop, and ``runs.search`` over many runs,
on SQLite and PostgreSQL, against MLflow 3.17 on SQLite.

Prints, from one run:

1. Logging. A training loop of --points steps, each doing ~20 us of real work, timed without logging, with
   ``run.log_metric("loss", value, step=step)`` per step (mloop on SQLite, and on PostgreSQL), and with the
   floor: a function of the same signature that appends ``(key, step, time(), value)`` to a Python list.
   Two kinds of work: a NumPy ufunc on an array sized to take ~20 us (it releases the GIL, as NumPy and
   PyTorch kernels do, so mloop's writer thread can use the other core) and a pure-Python loop calibrated
   to ~20 us (it holds the GIL: the writer's Python competes with the loop). Per kind: seconds per loop,
   us per step, overhead % over the loop without logging, us added per point, and the time ``run.end()``
   takes to write what is still buffered. The timed loop includes the background writes that happen
   during it; the stored points are counted afterwards. Medians over --repeat repetitions, in rotating
   order.
2. The peer, when its venv exists: the same loop (NumPy work, same array size) with MLflow 3.17.2's
   ``mlflow.log_metric`` against a local ``sqlite:///`` tracking store, synchronous (--peer-points points,
   it costs milliseconds each) and with ``synchronous=False`` (its async logging, --peer-async-points
   points; its end includes ``mlflow.flush_async_logging()``), run as a subprocess script written to
   benchmarks/.work/.
3. Search. ``project.runs.search`` over --runs runs of one experiment, for five query shapes: a selective
   metric filter; the same and a param equality; no filter, ordered by a metric desc (limit 100); a
   non-selective metric filter with limit 100; a param equality and a metric filter ordered by the metric
   (limit 10). p50 and p99 over --queries queries after two warm-ups, on SQLite and PostgreSQL. Next to it:
   mloop's own SQL for the shape executed raw by the driver (what the database costs; the rest is Python),
   and the floor: a hand-written SQL query for the same ids on the same database, alone and followed by
   the five raw ``IN (...)`` reads of the found runs' rows (runs, params, tags, latest metrics, artifacts)
   that ``load_runs`` does, without decoding. The result ids of mloop, of the floor and (at the same size)
   of MLflow are checked to be equal. Then, when the peer venv exists, MLflow's
   ``MlflowClient.search_runs`` with the same filters over --peer-runs runs (the first of the same data:
   same ids, start times and values).

    .venv/bin/python benchmarks/tracking.py                 # starts a throwaway PostgreSQL server
    .venv/bin/python benchmarks/tracking.py --runs 20000 --points 20000 --repeat 3 --no-postgres
    .venv/bin/python benchmarks/tracking.py --postgres-url postgresql+psycopg://me@127.0.0.1/bench --no-peer
    .venv/bin/python benchmarks/tracking.py --skip-logging --explain   # search only, with query plans

The peer venv:  python3 -m venv benchmarks/.peers/mlflow && benchmarks/.peers/mlflow/bin/pip install
"mlflow==3.17.2"

Goals: logging 100k points adds <= 5% to a loop doing 20 us of work per step; ``runs.search`` with a metric
filter over 100k runs answers in <= 200 ms, on SQLite and on PostgreSQL.

How the runs are populated. Through the public API a run (start, 3 params, 2 tags, 2 metrics, end) costs
~16 ms on SQLite here (~27 minutes for 100k; MLflow ~50 ms a run, ~1.4 hours), and the script prints the
rate it measures on a sample. So the runs are written in bulk, in the shapes the service writes, and
checked: one run is started through ``project.run`` first; its ``info`` is the template of every run's
(with the run's own param values, pid and timing); the rows go in with SQLAlchemy Core ``insert`` over
the ORM tables of ``mloop.store.schema``, so the column types (``UTCDateTime``, ``JSONText``) encode the
values exactly as the service's sessions do; on SQLite the storage class of every column of a bulk row is
compared with the API run's. Each run gets 3 params (``num_leaves`` in 15/31/63/127, ``learning_rate``,
``boosting`` in gbdt/dart/goss), 2 tags (``team``, ``stage``), 2 metrics (``auc`` ~ N(0.85, 0.055): about
0.6% of runs above 0.99; ``loss``) as ``run_latest_metrics`` rows and one ``run_metrics`` history point
each (search reads only the latest values); 97% finished, 3% failed; one start every 10 s. No audit events
are written for the bulk runs (search does not read them). The SQLite database is cached in
benchmarks/.work/, keyed by the size, the data version and the migration head; PostgreSQL is populated
afresh in a throwaway server and ANALYZEd (autovacuum would within a minute of such a load). MLflow's store
is populated the same way: its schema is made by MLflow, one run is logged through its API, and the bulk
rows (``runs``, ``params``, ``tags`` with its ``mlflow.*`` system tags, ``metrics``, ``latest_metrics``)
copy that run's row shapes; it is cached in benchmarks/.work/ too.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import time as _now
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text

from mloop import Project
from mloop.store.schema import (
    ExperimentRow,
    LatestMetricRow,
    MetricRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)
from mloop.training import search as search_lang

HERE = Path(__file__).parent
WORK = HERE / ".work"
PEERS = HERE / ".peers"
DATA_VERSION = 2  # bump when make_runs or populate change what they write: invalidates the cached databases
T0 = datetime(2026, 6, 1, tzinfo=UTC)
STEP_US = 20.0  # the work per training step
LEAVES, RATES = [15, 31, 63, 127], [0.01, 0.03, 0.05, 0.1]
BOOSTING, TEAMS, STAGES = ["gbdt", "dart", "goss"], ["risk", "growth", "fraud"], ["dev", "tuned"]
CHUNK = 10_000

# name, mloop filter, mloop order_by, limit, MLflow filter, MLflow order_by, floor SQL ({e}: experiment id)
_JOIN_AUC = "JOIN run_latest_metrics m ON m.run_id = r.id AND m.key = 'auc'"
SHAPES: list[tuple[str, str | None, list[str], int, str, list[str], str]] = [
    ("metrics.auc > 0.99", "metrics.auc > 0.99", [], 100, "metrics.auc > 0.99", [],
     f"SELECT r.id FROM runs r {_JOIN_AUC} AND m.value > 0.99 WHERE r.experiment_id = {{e}} "
     "ORDER BY r.started_at DESC, r.id LIMIT 100"),
    ("auc > 0.99 and num_leaves = 31", "metrics.auc > 0.99 and params.num_leaves = 31", [], 100,
     "metrics.auc > 0.99 and params.num_leaves = '31'", [],
     f"SELECT r.id FROM runs r {_JOIN_AUC} AND m.value > 0.99 JOIN run_params p ON p.run_id = r.id "
     "AND p.key = 'num_leaves' AND p.value = '31' WHERE r.experiment_id = {e} "
     "ORDER BY r.started_at DESC, r.id LIMIT 100"),
    ("order by auc desc, limit 100", None, ["metrics.auc desc"], 100, "", ["metrics.auc DESC"],
     f"SELECT r.id FROM runs r {_JOIN_AUC} WHERE r.experiment_id = {{e}} ORDER BY m.value DESC LIMIT 100"),
    ("metrics.auc > 0.6, limit 100", "metrics.auc > 0.6", [], 100, "metrics.auc > 0.6", [],
     f"SELECT r.id FROM runs r {_JOIN_AUC} AND m.value > 0.6 WHERE r.experiment_id = {{e}} "
     "ORDER BY r.started_at DESC, r.id LIMIT 100"),
    ("dart and auc > 0.95 by auc, limit 10", "params.boosting = 'dart' and metrics.auc > 0.95",
     ["metrics.auc desc"], 10, "params.boosting = 'dart' and metrics.auc > 0.95", ["metrics.auc DESC"],
     f"SELECT r.id FROM runs r {_JOIN_AUC} AND m.value > 0.95 JOIN run_params p ON p.run_id = r.id "
     "AND p.key = 'boosting' AND p.value = 'dart' WHERE r.experiment_id = {e} ORDER BY m.value DESC LIMIT 10"),
]  # fmt: skip
LOADS = [  # what load_runs reads for the found ids, as raw SQL
    "SELECT r.id, e.name, r.name, r.status, r.started_at, r.ended_at, r.parent_id, r.info, r.error, "
    "r.created_by FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id IN ({ids})",
    "SELECT run_id, key, value FROM run_params WHERE run_id IN ({ids})",
    "SELECT run_id, key, value FROM run_tags WHERE run_id IN ({ids})",
    "SELECT run_id, key, value FROM run_latest_metrics WHERE run_id IN ({ids})",
    "SELECT run_id, name, digest, size FROM run_artifacts WHERE run_id IN ({ids})",
]


def pctl(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return times[len(times) // 2], times[min(len(times) - 1, math.ceil(len(times) * 0.99) - 1)]


# --- the work of a training step -------------------------------------------------------------------------


def numpy_work(size: int) -> Callable[[], float]:
    x = np.random.default_rng(0).random(size)
    y = np.empty_like(x)

    def work() -> float:
        np.sin(x, out=y)
        return y.item(0)

    return work


def python_work(count: int) -> Callable[[], float]:
    def work() -> float:
        acc = 0.0
        for i in range(count):
            acc += i * 0.5
        return acc

    return work


def calibrate(make: Callable[[int], Callable[[], float]], start: int, target_us: float) -> tuple[int, float]:
    """The size for ``make`` whose work takes ``target_us`` (median of batches), and its measured time."""
    size = start
    for _ in range(6):
        work = make(size)
        batches = []
        for _ in range(7):
            started = time.perf_counter()
            for _ in range(500):
                work()
            batches.append((time.perf_counter() - started) / 500 * 1e6)
        took = statistics.median(batches)
        if abs(took - target_us) < 0.03 * target_us:
            break
        size = max(1, round(size * target_us / took))
    return size, took


# --- 1. logging --------------------------------------------------------------------------------------------


def loop_plain(work: Callable[[], float], points: int) -> float:
    started = time.perf_counter()
    for _step in range(points):
        _value = work()
    return time.perf_counter() - started


def loop_logged(work: Callable[[], float], points: int, log: Callable[[str, float, int], None]) -> float:
    started = time.perf_counter()
    for step in range(points):
        log("loss", work(), step)
    return time.perf_counter() - started


def floor_logger() -> Callable[[str, float, int], None]:
    """The least a ``log_metric(key, value, step)`` can do: append the point, stamped, to a list."""
    buffer: list[tuple[str, int, float, float]] = []
    append = buffer.append

    def floor(key: str, value: float, step: int) -> None:
        append((key, step, _now(), value))

    return floor


def bench_logging(
    work: Callable[[], float], projects: dict[str, Project], points: int, repeat: int
) -> dict[str, dict[str, float]]:
    """Median seconds of the loop for each variant (plain, floor, one per project), and the run ends."""
    loops: dict[str, list[float]] = {"plain": [], "floor": [], **{name: [] for name in projects}}
    ends: dict[str, list[float]] = {name: [] for name in projects}
    variants = list(loops)
    for rep in range(repeat):
        for name in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
            if name == "plain":
                loops[name].append(loop_plain(work, points))
            elif name == "floor":
                loops[name].append(loop_logged(work, points, floor_logger()))
            else:
                project = projects[name]
                run = project.run("logging", params={"points": points})
                loops[name].append(loop_logged(work, points, run.log_metric))
                started = time.perf_counter()
                run.end()
                ends[name].append(time.perf_counter() - started)
                with project.store.read() as session:
                    stored = session.scalar(
                        select(func.count()).select_from(MetricRow).where(MetricRow.run_id == run.id)
                    )
                if stored != points:
                    print(f"  !! {name}: {stored} of {points} points stored")
    out = {name: {"loop": statistics.median(times)} for name, times in loops.items()}
    for name, times in ends.items():
        out[name]["end"] = statistics.median(times)
    return out


def api_rate(project: Project, runs: int) -> float:
    """Seconds per run populated through the public API (start, 3 params, 2 tags, 2 metrics, end)."""
    started = time.perf_counter()
    for i in range(runs):
        with project.run("api-rate", params={"num_leaves": 31, "learning_rate": 0.05, "boosting": "gbdt"},
                         tags={"team": "risk", "stage": "dev"}) as run:  # fmt: skip
            run.log_metrics({"auc": 0.9 + i * 1e-6, "loss": 0.3})
    return (time.perf_counter() - started) / runs


# --- 3. search: the data ----------------------------------------------------------------------------------


def make_runs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"{a:016x}{b:016x}" for a, b in rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)])
    auc = np.clip(rng.normal(0.85, 0.055, n), 0.5, 0.9999)
    return {
        "id": ids,
        "start_s": np.arange(n, dtype=np.int64) * 10,  # seconds after T0
        "duration_s": rng.uniform(5, 600, n).round(3),
        "failed": rng.random(n) < 0.03,
        "num_leaves": np.array(LEAVES)[rng.integers(0, len(LEAVES), n)],
        "learning_rate": np.array(RATES)[rng.integers(0, len(RATES), n)],
        "boosting": np.array(BOOSTING)[rng.integers(0, len(BOOSTING), n)],
        "team": np.array(TEAMS)[rng.integers(0, len(TEAMS), n)],
        "stage": np.array(STAGES)[rng.integers(0, len(STAGES), n)],
        "auc": auc,
        "loss": (-np.log(auc) * rng.uniform(0.8, 1.25, n)).round(6),
        "step": rng.integers(50, 500, n),
    }


def populate(project: Project, experiment: str, data: dict[str, np.ndarray]) -> int:
    """Write the runs of ``data`` into ``experiment`` (created here) in bulk; returns the experiment id."""
    with project.run("shape-check", params={"num_leaves": 31, "learning_rate": 0.05, "boosting": "gbdt"},
                     tags={"team": "risk", "stage": "dev"}) as run:  # fmt: skip
        run.log_metrics({"auc": 0.9, "loss": 0.3}, step=7)
    template = project.runs.get(run.id)
    store = project.store
    project_id = store.project_id(project.name)
    with store.write() as session:
        row = ExperimentRow(project_id=project_id, name=experiment, created_at=T0, tags={})
        session.add(row)
        session.flush()
        experiment_id = row.id
    actor = project.actor.name
    n = len(data["id"])
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        runs, params, tags, latest, points = [], [], [], [], []
        for i in range(lo, hi):
            run_id = str(data["id"][i])
            started = T0 + timedelta(seconds=int(data["start_s"][i]))
            duration = float(data["duration_s"][i])
            failed = bool(data["failed"][i])
            values = {"num_leaves": int(data["num_leaves"][i]),
                      "learning_rate": float(data["learning_rate"][i]), "boosting": str(data["boosting"][i])}  # fmt: skip
            info = {**template.info, "param_values": values, "pid": 1000 + i % 50_000,
                    "wall_seconds": duration, "cpu_seconds": round(duration * 0.93, 6), "metric_points": 2}  # fmt: skip
            if failed:
                info["error_type"] = "builtins.RuntimeError"
            runs.append({"id": run_id, "experiment_id": experiment_id, "parent_id": None,
                         "name": f"{experiment}-{run_id[:6]}", "status": "failed" if failed else "finished",
                         "started_at": started, "ended_at": started + timedelta(seconds=duration),
                         "error": "RuntimeError: diverged" if failed else None, "info": info,
                         "created_by": actor, "heartbeat_at": started + timedelta(seconds=duration)})  # fmt: skip
            params += [{"run_id": run_id, "key": k, "value": json.dumps(v) if not isinstance(v, str) else v}
                       for k, v in values.items()]  # fmt: skip
            tags += [{"run_id": run_id, "key": k, "value": str(data[k][i])} for k in ("team", "stage")]
            step = int(data["step"][i])
            for key in ("auc", "loss"):
                value = float(data[key][i])
                latest.append({"run_id": run_id, "key": key, "step": step, "value": value})
                points.append({"run_id": run_id, "key": key, "step": step,
                               "ts": started + timedelta(seconds=duration * 0.99), "value": value})  # fmt: skip
        with store.write(serialize=False) as session:
            for table, rows in ((RunRow, runs), (RunParamRow, params), (RunTagRow, tags),
                                (LatestMetricRow, latest), (MetricRow, points)):  # fmt: skip
                session.execute(insert(table.__table__), rows)  # type: ignore[attr-defined]
    return experiment_id


def check_shapes(path: Path, template_experiment: str, experiment_id: int) -> list[str]:
    """Columns whose SQLite storage class differs between the API run and a bulk run."""
    conn = sqlite3.connect(path)
    real = conn.execute(
        "SELECT r.id FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE e.name = ? LIMIT 1",
        (template_experiment,),
    ).fetchone()[0]
    bulk = conn.execute("SELECT id FROM runs WHERE experiment_id = ? LIMIT 1", (experiment_id,)).fetchone()[0]
    differ = []
    for table, key in (("runs", "id"), ("run_params", "run_id"), ("run_tags", "run_id"),
                       ("run_latest_metrics", "run_id"), ("run_metrics", "run_id")):  # fmt: skip
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
        kinds = ", ".join(f"typeof({c})" for c in columns)
        got = [conn.execute(f"SELECT {kinds} FROM {table} WHERE {key} = ? ORDER BY 1", (i,)).fetchall()
               for i in (real, bulk)]  # fmt: skip
        differ += [f"{table}.{c}" for c, a, b in zip(columns, got[0][0], got[1][0], strict=True) if a != b]
        stamp = [
            conn.execute(f"SELECT * FROM {table} WHERE {key} = ? LIMIT 1", (i,)).fetchone()
            for i in (real, bulk)
        ]
        for c, a, b in zip(columns, *stamp, strict=True):  # same text layout of times (length)
            if isinstance(a, str) and c.endswith(("_at", "ts")) and len(a) != len(b):
                differ.append(f"{table}.{c} ({a!r} vs {b!r})")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file before the rename
    conn.close()
    return differ


def open_search_project(url: str, root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    return Project.open(root, env={}, metadata_url=url)


def experiment_runs(project: Project, experiment: str) -> int | None:
    with project.store.read() as session:
        found = session.execute(
            select(ExperimentRow.id, func.count(RunRow.id))
            .outerjoin(RunRow, RunRow.experiment_id == ExperimentRow.id)
            .where(ExperimentRow.name == experiment)
            .group_by(ExperimentRow.id)
        ).first()
    return None if found is None else int(found[1])


def experiment_id(project: Project, experiment: str) -> int:
    with project.store.read() as session:
        return int(session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == experiment)) or 0)


def sqlite_search_db(data: dict[str, np.ndarray], n: int) -> tuple[Path, float | None, list[str]]:
    """The cached SQLite database with ``n`` runs (populated when missing); seconds it took, if it did."""
    from mloop.store import open_metadata_store

    probe = open_metadata_store("sqlite://", migrate=False)
    head = probe.head_revision()
    probe.close()
    path = WORK / f"tracking-sqlite-{n}-runs-v{DATA_VERSION}-{head}.db"
    if path.exists():
        return path, None, []
    partial = path.with_suffix(".partial")
    for leftover in glob.glob(f"{partial}*"):
        os.unlink(leftover)
    started = time.perf_counter()
    project = open_search_project(f"sqlite:///{partial}", WORK / "tracking-project")
    try:
        eid = populate(project, f"bench-{n}", data)
    finally:
        project.close()
    took = time.perf_counter() - started
    differ = check_shapes(partial, "shape-check", eid)
    partial.rename(path)
    return path, took, differ


# --- 3. search: measuring ----------------------------------------------------------------------------------


class Raw:
    """The driver itself (sqlite3 or psycopg) on the same database, for the floor."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        else:
            import psycopg
            from sqlalchemy.engine import make_url

            plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            self.conn = psycopg.connect(plain, autocommit=True)

    def ids(self, sql: str) -> list[str]:
        return [row[0] for row in self.conn.execute(sql).fetchall()]

    def load(self, ids: list[str]) -> int:
        if not ids:
            return 0
        mark = "?" if self.sqlite else "%s"
        marks = ",".join([mark] * len(ids))
        return sum(len(self.conn.execute(sql.format(ids=marks), ids).fetchall()) for sql in LOADS)

    def explain(self, sql: str) -> str:
        if self.sqlite:
            return "\n".join(
                "      " + str(row[-1]) for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql)
            )
        rows = self.conn.execute("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql).fetchall()
        return "\n".join("      " + row[0] for row in rows)

    def close(self) -> None:
        self.conn.close()


def mloop_sql(project: Project, experiment: str, shape: tuple[Any, ...]) -> tuple[str, bool]:
    """The SQL that ``runs.search`` runs for ``shape`` (with its values inlined), and whether it drives from
    the metric index."""
    _, filter_, order_by, limit = shape[:4]
    where, orders = search_lang.parse_filter(filter_), search_lang.parse_order_by(order_by)
    where = search_lang.with_order_metric(where, orders) or where  # the head query runs.search tries first
    engine = project.store.engine
    with project.store.read() as session:
        eid = experiment_id(project, experiment)
        drive = engine.dialect.name != "sqlite" or search_lang.should_drive(session, where, orders, limit)
        query = search_lang.build_query([eid], where, orders, limit, engine.dialect.name, drive=drive)
    return str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})), drive


def timed(call: Callable[[], Any], queries: int) -> tuple[tuple[float, float], Any]:
    call()
    result = call()
    times = []
    for _ in range(queries):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return pctl(times), result


def bench_search(
    project: Project, url: str, experiment: str, queries: int, explain: bool
) -> list[dict[str, Any]]:
    raw = Raw(url)
    eid = experiment_id(project, experiment)
    out = []
    try:
        for shape in SHAPES:
            name, filter_, order_by, limit, _, _, floor_sql = shape
            floor_sql = floor_sql.format(e=eid)
            ours, found = timed(lambda: project.runs.search(experiment, filter_, order_by, limit), queries)  # noqa: B023
            sql, drive = mloop_sql(project, experiment, shape)
            own, own_ids = timed(lambda: raw.ids(sql), queries)  # noqa: B023
            floor, floor_ids = timed(lambda: raw.ids(floor_sql), queries)  # noqa: B023
            full, _ = timed(lambda: raw.load(raw.ids(floor_sql)), queries)  # noqa: B023
            ids = [r.id for r in found]
            counted = floor_sql.split(" ORDER BY")[0].replace("SELECT r.id", "SELECT count(*)", 1)
            matches = raw.ids(counted)[0]
            problems = []
            if ids != floor_ids:
                problems.append(f"mloop's {len(ids)} ids differ from the floor's {len(floor_ids)}")
            if own_ids != ids:
                problems.append("mloop's raw SQL returned other ids than runs.search")
            out.append({"name": name, "mloop": ours, "own": own, "floor": floor, "full": full, "ids": ids,
                        "matches": matches, "drive": drive, "problems": problems})  # fmt: skip
            if explain:
                print(f"  plan of mloop's query for {name!r} (drive={drive}):\n    {sql}\n{raw.explain(sql)}")
    finally:
        raw.close()
    return out


# --- PostgreSQL --------------------------------------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port (as tests/services.py starts one)."""

    def __init__(self) -> None:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
        )
        found = candidates[-1] if candidates else shutil.which("initdb")
        if not found:
            raise RuntimeError(
                "PostgreSQL is not installed (apt-get install postgresql), or pass --postgres-url"
            )
        self.bindir = Path(found).parent
        self.root = Path(tempfile.mkdtemp(prefix="mloop-bench-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None  # postgres refuses to run as root
        if self.user:
            shutil.chown(self.root, self.user, self.user)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        data = self.root / "data"
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"], user=self.user, cwd=self.root, capture_output=True, check=True,
        )  # fmt: skip
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "shared_buffers=256MB"],
            user=self.user, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import psycopg

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited at start")
            with contextlib.suppress(Exception):
                with psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
                ) as c:
                    c.execute("CREATE DATABASE bench")
                return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/bench"
            time.sleep(0.1)
        raise RuntimeError("postgres did not accept connections within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_search_project(url: str, data: dict[str, np.ndarray], n: int) -> tuple[Project, float | None]:
    project = open_search_project(url, WORK / "tracking-project")
    count = experiment_runs(project, f"bench-{n}")
    if count == n:
        return project, None
    if count is not None:
        project.close()
        raise SystemExit(
            f"experiment bench-{n} in {url} holds {count} runs, not {n}: drop it or use another db"
        )
    started = time.perf_counter()
    populate(project, f"bench-{n}", data)
    with project.store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return project, time.perf_counter() - started


# --- the peer ----------------------------------------------------------------------------------------------

PEER_SCRIPT = r"""
import json, logging, os, sqlite3, statistics, sys, time, warnings
from pathlib import Path
import numpy as np
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import mlflow
from mlflow import MlflowClient

mode, db = sys.argv[1], Path(sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{db}")

def work_of(size):
    x = np.random.default_rng(0).random(size); y = np.empty_like(x)
    def work():
        np.sin(x, out=y)
        return y.item(0)
    return work

def plain(work, points):
    started = time.perf_counter()
    for _ in range(points):
        work()
    return time.perf_counter() - started

def logged(work, points, **kw):
    log = mlflow.log_metric
    started = time.perf_counter()
    for step in range(points):
        log("loss", work(), step, **kw)
    return time.perf_counter() - started

def count(run_id):
    return len(MlflowClient().get_metric_history(run_id, "loss"))

if mode == "log":
    points, async_points, size, repeat, base_points = map(int, sys.argv[3:8])
    work = work_of(size)
    mlflow.set_experiment("logging")
    with mlflow.start_run():  # the schema and the experiment, before timing
        mlflow.log_metric("warm", 1.0, step=0)
        mlflow.log_metric("warm", 1.0, step=1, synchronous=False)
    out = {"plain": [], "sync": [], "sync_end": [], "async": [], "async_end": [], "stored": []}
    for rep in range(repeat):
        out["plain"].append(plain(work, base_points) / base_points)
        for kind, n, kw in (("sync", points, {}), ("async", async_points, {"synchronous": False})):
            run = mlflow.start_run()
            out[kind].append(logged(work, n, **kw) / n)
            started = time.perf_counter()
            if kw:
                mlflow.flush_async_logging()
            mlflow.end_run()
            out[kind + "_end"].append(time.perf_counter() - started)
            got = count(run.info.run_id)
            if got != n:
                out["stored"].append(f"{kind}: {got} of {n}")
    print(json.dumps({k: statistics.median(v) if k != "stored" else v for k, v in out.items()}))
else:
    data_path, n, queries, shapes = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
    populate_s = None
    if not db.exists():
        partial = db.with_suffix(".partial")
        for p in db.parent.glob(partial.name + "*"):
            p.unlink()
        mlflow.set_tracking_uri(f"sqlite:///{partial}")
        started = time.perf_counter()
        data = dict(np.load(data_path))
        exp_id = mlflow.create_experiment(f"bench-{n}")
        with mlflow.start_run(experiment_id=exp_id) as template:
            mlflow.log_params({"num_leaves": 31, "learning_rate": 0.05, "boosting": "gbdt"})
            mlflow.set_tags({"team": "risk", "stage": "dev"})
            mlflow.log_metrics({"auc": 0.9, "loss": 0.3}, step=7)
        tid = template.info.run_id
        conn = sqlite3.connect(partial)
        cols = [c[1] for c in conn.execute("PRAGMA table_info(runs)")]
        trow = dict(zip(cols, conn.execute("SELECT * FROM runs WHERE run_uuid = ?", (tid,)).fetchone()))
        system = [(k, v) for k, v in conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (tid,))
                  if k.startswith("mlflow.") and k != "mlflow.runName"]
        conn.execute("DELETE FROM metrics WHERE run_uuid = ?", (tid,))
        conn.execute("DELETE FROM latest_metrics WHERE run_uuid = ?", (tid,))
        for table in ("params", "tags"):
            conn.execute(f"DELETE FROM {table} WHERE run_uuid = ?", (tid,))
        conn.execute("DELETE FROM runs WHERE run_uuid = ?", (tid,))
        t0 = int(data["t0_ms"])
        runs, params, tags, metrics, latest = [], [], [], [], []
        for i in range(n):
            rid = str(data["id"][i]); start = t0 + int(data["start_s"][i]) * 1000
            end = start + int(float(data["duration_s"][i]) * 1000); name = f"bench-{rid[:6]}"
            row = dict(trow, run_uuid=rid, name=name, status="FAILED" if data["failed"][i] else "FINISHED",
                       start_time=start, end_time=end, artifact_uri=trow["artifact_uri"].replace(tid, rid))
            runs.append(tuple(row[c] for c in cols))
            params += [("num_leaves", str(int(data["num_leaves"][i])), rid),
                       ("learning_rate", str(float(data["learning_rate"][i])), rid),
                       ("boosting", str(data["boosting"][i]), rid)]
            tags += [(k, v, rid) for k, v in system] + [("mlflow.runName", name, rid),
                     ("team", str(data["team"][i]), rid), ("stage", str(data["stage"][i]), rid)]
            step = int(data["step"][i])
            for key in ("auc", "loss"):
                value = float(data[key][i])
                metrics.append((key, value, end - 1000, rid, step, 0))
                latest.append((key, value, end - 1000, step, 0, rid))
        conn.executemany(f"INSERT INTO runs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", runs)
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                         "VALUES (?, ?, ?, ?, ?, ?)", metrics)
        conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                         "VALUES (?, ?, ?, ?, ?, ?)", latest)
        conn.commit()
        conn.close()
        populate_s = time.perf_counter() - started
        partial.rename(db)
        mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    exp_id = client.get_experiment_by_name(f"bench-{n}").experiment_id
    out = {"populate_s": populate_s, "shapes": []}
    for filter_string, order_by, limit in shapes:
        call = lambda: client.search_runs([exp_id], filter_string, order_by=order_by, max_results=limit)
        call()
        found = call()
        times = []
        for _ in range(queries):
            started = time.perf_counter(); call(); times.append((time.perf_counter() - started) * 1e3)
        times.sort()
        out["shapes"].append({"p50": times[len(times) // 2], "p99": times[-1],
                              "ids": [r.info.run_id for r in found]})
    print(json.dumps(out))
"""


def peer_python() -> Path | None:
    python = PEERS / "mlflow" / "bin" / "python"
    if python.exists():
        return python
    print(f"  (peer skipped: create it with  python3 -m venv {PEERS / 'mlflow'} && "
          f"{PEERS / 'mlflow'}/bin/pip install \"mlflow==3.17.2\")")  # fmt: skip
    return None


def run_peer(python: Path, args: list[str], cwd: Path) -> dict[str, Any] | None:
    script = WORK / "peer_mlflow.py"
    script.write_text(PEER_SCRIPT)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [str(python), str(script), *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    if result.returncode != 0:
        print(f"  (peer failed: {result.stderr.strip()[-1500:]})")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def peer_logging(python: Path, size: int, args: argparse.Namespace) -> dict[str, Any] | None:
    root = Path(tempfile.mkdtemp(prefix="mlflow-log-", dir=WORK))
    try:
        base = max(args.peer_points, 20_000)
        return run_peer(python, ["log", str(root / "mlflow.db"), str(args.peer_points),
                                 str(args.peer_async_points), str(size), str(args.repeat), str(base)], root)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def peer_search(python: Path, data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any] | None:
    n = args.peer_runs
    version = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    root = WORK / f"tracking-mlflow-{n}-runs-v{DATA_VERSION}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    data_path = WORK / f"tracking-data-{n}.npz"
    np.savez(data_path, t0_ms=np.int64(T0.timestamp() * 1000), **{k: v[:n] for k, v in data.items()})
    shapes = [[s[4], s[5], s[3]] for s in SHAPES]
    try:
        return run_peer(python, ["search", str(root / "mlflow.db"), str(data_path), str(n),
                                 str(args.peer_queries), json.dumps(shapes)], root)  # fmt: skip
    finally:
        data_path.unlink(missing_ok=True)


# --- report ------------------------------------------------------------------------------------------------


def logging_report(kind: str, size_note: str, figures: dict[str, dict[str, float]], points: int,
                   peer: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, float]:  # fmt: skip
    base = figures["plain"]["loop"] / points
    print(f"\n{kind} work per step ({size_note}); {points:,} points; medians of {args.repeat}")
    print(f"  {'':<44}{'loop s':>9} {'us/step':>9} {'overhead':>9} {'us/point':>9} {'end ms':>9}")

    def row(name: str, per_step: float, n: int, end: float | None = None) -> float:
        overhead = per_step / base - 1
        end_text = f"{end * 1e3:>9.1f}" if end is not None else f"{'':>9}"
        print(f"  {name:<44}{per_step * n:>9.3f} {per_step * 1e6:>9.2f} {overhead * 100:>8.1f}% "
              f"{(per_step - base) * 1e6:>9.2f} {end_text}")  # fmt: skip
        return overhead

    row("no logging", base, points)
    overheads = {
        "floor": row(
            "floor: list.append((key, step, time(), value))", figures["floor"]["loop"] / points, points
        )
    }
    for name in ("sqlite", "postgres"):
        if name in figures:
            f = figures[name]
            overheads[name] = row(f"mloop run.log_metric ({name})", f["loop"] / points, points, f["end"])
    if peer:
        print(f"  (MLflow, its own process: no logging {peer['plain'] * 1e6:.2f} us/step)")
        for key, n, label in (("sync", args.peer_points, "MLflow 3.17 log_metric (sqlite)"),
                              ("async", args.peer_async_points, "MLflow 3.17 log_metric(synchronous=False)")):  # fmt: skip
            per = peer[key]
            overhead = per / peer["plain"] - 1
            print(f"  {label:<44}{per * n:>9.3f} {per * 1e6:>9.2f} {overhead * 100:>8.1f}% "
                  f"{(per - peer['plain']) * 1e6:>9.2f} {peer[key + '_end'] * 1e3:>9.1f}   ({n:,} points)")  # fmt: skip
            overheads["mlflow_" + key] = (per - peer["plain"]) * 1e6
        for problem in peer["stored"]:
            print(f"  !! MLflow stored {problem}")
    return overheads


def search_report(name: str, figures: list[dict[str, Any]], n: int, populated: float | None) -> None:
    how = f"populated in {populated:.0f} s" if populated is not None else "cached"
    print(f"\nruns.search over {n:,} runs, {name} ({how}); ms, p50 / p99")
    print(f"  {'':<38}{'matches':>8}  {'mloop search':>15}  {'its SQL, raw':>13}  {'floor: ids':>13}  "
          f"{'ids + rows':>13}  {'mloop/floor':>11}")  # fmt: skip
    for f in figures:
        drive = "index" if f["drive"] else "runs"
        print(f"  {f['name']:<38}{f['matches']:>8,}  {f['mloop'][0]:>7.1f} {f['mloop'][1]:>7.1f}  "
              f"{f['own'][0]:>6.1f} {f['own'][1]:>6.1f}  {f['floor'][0]:>6.1f} {f['floor'][1]:>6.1f}  "
              f"{f['full'][0]:>6.1f} {f['full'][1]:>6.1f}  {f['mloop'][0] / f['full'][0]:>10.1f}x  "
              f"(from {drive})")  # fmt: skip
        for problem in f["problems"]:
            print(f"    !! {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000, help="metric points per logged loop")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each loop (medians)")
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the searched experiment")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per search shape")
    parser.add_argument("--postgres-url", help="an existing PostgreSQL database to use (it adds a project)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    parser.add_argument("--peer-points", type=int, default=2_000, help="points of MLflow's synchronous loop")
    parser.add_argument("--peer-async-points", type=int, default=10_000, help="points of MLflow's async loop")
    parser.add_argument("--peer-runs", type=int, default=100_000, help="runs in MLflow's searched experiment")
    parser.add_argument("--peer-queries", type=int, default=5, help="timed queries per shape for MLflow")
    parser.add_argument("--api-runs", type=int, default=100, help="runs to time through the public API")
    parser.add_argument("--skip-logging", action="store_true", help="only the search part")
    parser.add_argument("--skip-search", action="store_true", help="only the logging part")
    parser.add_argument("--explain", action="store_true", help="print the plan of mloop's query per shape")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    peer_py = None if args.no_peer else peer_python()

    server = None
    pg_url = args.postgres_url
    if not pg_url and not args.no_postgres:
        try:
            server = Postgres()
            pg_url = server.start()
        except (RuntimeError, subprocess.CalledProcessError, ImportError) as exc:
            print(f"  (postgres skipped: {exc})")
            pg_url = None
    summary: list[str] = []
    temp = Path(tempfile.mkdtemp(prefix="tracking-", dir=WORK))
    try:
        if not args.skip_logging:
            size, took_np = calibrate(numpy_work, 2_000, STEP_US)
            count, took_py = calibrate(python_work, 400, STEP_US)
            projects = {"sqlite": Project.open(temp, env={})}
            if pg_url:
                (temp / "pg").mkdir()
                projects["postgres"] = Project.open(temp / "pg", env={}, metadata_url=pg_url)
            rates = {name: api_rate(p, args.api_runs) for name, p in projects.items()}
            mlflow_log = peer_logging(peer_py, size, args) if peer_py else None
            results = {}
            for kind, work, note in (
                ("NumPy", numpy_work(size), f"np.sin of {size:,} floats, {took_np:.1f} us, releases the GIL"),
                (
                    "pure-Python",
                    python_work(count),
                    f"{count:,}-iteration loop, {took_py:.1f} us, holds the GIL",
                ),
            ):
                figures = bench_logging(work, projects, args.points, args.repeat)
                results[kind] = logging_report(kind, note, figures, args.points,
                                               mlflow_log if kind == "NumPy" else None, args)  # fmt: skip
            for project in projects.values():
                project.close()
            print("\npopulating through the public API (start, 3 params, 2 tags, 2 metrics, end), "
                  f"{args.api_runs} runs: " + ", ".join(
                      f"{name} {rate * 1e3:.1f} ms/run ({rate * args.runs / 60:.0f} min for {args.runs:,})"
                      for name, rate in rates.items()))  # fmt: skip
            for kind, over in results.items():
                sq = over["sqlite"] * 100
                line = f"logging overhead, {kind} work: SQLite {sq:.1f}%"
                if "postgres" in over:
                    line += f", PostgreSQL {over['postgres'] * 100:.1f}%"
                summary.append(line + f" (goal <= 5%; floor {over['floor'] * 100:.1f}%)")
            np_over = results["NumPy"]
            if "mlflow_sync" in np_over:
                ours = (np_over["sqlite"]) * STEP_US
                summary.append(
                    f"us added per point: mloop SQLite {ours:.2f}, MLflow sync {np_over['mlflow_sync']:.0f} "
                    f"({np_over['mlflow_sync'] / max(ours, 1e-3):,.0f}x), MLflow async {np_over['mlflow_async']:.0f} "
                    f"({np_over['mlflow_async'] / max(ours, 1e-3):,.0f}x)"
                )  # fmt: skip

        if not args.skip_search:
            data = make_runs(max(args.runs, 0 if args.no_peer else args.peer_runs))
            ours_data = {k: v[: args.runs] for k, v in data.items()}
            path, took, differ = sqlite_search_db(ours_data, args.runs)
            if differ:
                print(f"  !! bulk rows differ from the API run's in: {', '.join(differ)}")
            elif took is not None:
                print("  (bulk rows have the API run's storage classes and time layouts, every column)")
            url = f"sqlite:///{path}"
            project = open_search_project(url, WORK / "tracking-project")
            sqlite_figures = bench_search(project, url, f"bench-{args.runs}", args.queries, args.explain)
            project.close()
            search_report(f"SQLite {sqlite3.sqlite_version}", sqlite_figures, args.runs, took)
            all_figures = {"SQLite": sqlite_figures}
            if pg_url:
                project, took = postgres_search_project(pg_url, ours_data, args.runs)
                with project.store.engine.connect() as conn:
                    version = conn.execute(text("SHOW server_version")).scalar()
                pg_figures = bench_search(project, pg_url, f"bench-{args.runs}", args.queries, args.explain)
                project.close()
                search_report(f"PostgreSQL {version}", pg_figures, args.runs, took)
                all_figures["PostgreSQL"] = pg_figures
            peer = peer_search(peer_py, data, args) if peer_py else None
            if peer:
                how = f"populated in {peer['populate_s']:.0f} s" if peer["populate_s"] else "cached"
                print(f"\nMLflow 3.17 MlflowClient.search_runs over {args.peer_runs:,} runs, SQLite ({how}); "
                      f"ms, p50 / p99 of {args.peer_queries}")  # fmt: skip
                for shape, got, ours in zip(SHAPES, peer["shapes"], sqlite_figures, strict=True):
                    ratio = f"{got['p50'] / ours['mloop'][0]:>8.1f}x mloop SQLite"
                    same = ""
                    if args.peer_runs == args.runs:
                        same = "  same ids" if got["ids"] == ours["ids"] else "  !! other ids than mloop"
                    else:
                        ratio += f" (at {args.runs:,} runs)"
                    print(f"  {shape[0]:<38}{got['p50']:>9.1f} {got['p99']:>9.1f}  {ratio}{same}")
            for backend, figures in all_figures.items():
                metric = [f for f, s in zip(figures, SHAPES, strict=True) if s[1] and "metrics." in s[1]]
                worst = max(f["mloop"][0] for f in metric)
                summary.append(
                    f"search with a metric filter, {backend}: p50 {min(f['mloop'][0] for f in metric):.1f} to "
                    f"{worst:.1f} ms, p99 up to {max(f['mloop'][1] for f in metric):.1f} ms over {args.runs:,} runs "
                    f"(goal <= 200 ms); all shapes p50 up to {max(f['mloop'][0] for f in figures):.1f} ms"
                )  # fmt: skip
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        if server:
            server.stop()
    print("\ngoals:")
    for line in summary:
        print("  " + line)
    print(f"(python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
