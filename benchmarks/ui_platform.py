"""The platform-sized project of benchmarks/ui.py: 1,000 model versions, one endpoint with a long revision
history, its loop timeline, and 10,000,000 prediction-log rows over the last 7 days.

- **Models**: ``fraud`` with 500 versions and 50 models ``m00``..``m49`` with 10 each (1,000 versions), a
  small logistic regression on 5 features, registered through the API (cached: about a minute once). Each
  ``fraud`` version has the reference profile its monitoring compares against.
- **Endpoint** ``fraud``: 100 revisions (canary steps), v499 at 90% and v500 at 10% now; 200 loop events;
  a latency and an availability SLO (30-day budgets) in mloop.yaml.
- **Prediction log**: compacted Parquet parts as the compactor writes them (``endpoint=fraud/date=D/
  part-<writer>-<seq>.parquet``, 50,000 rows each: 200 parts), evenly over the 7 days before now (16.5
  requests a second), 0.1% errors, latencies log-normal around 2 ms. Rewritten on every run, since the
  pages read "the last hour"; the JSON columns are made once and reused (benchmarks/.work/).
- **Monitoring**: the drift and performance windows that ``mloop monitor update fraud`` stores, computed
  once after the log is written (the dashboard reads them, as it does on a server where the loop runs).
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.monitoring.reference import log_reference
from mloop.predictions.files import SCHEMA
from mloop.predictions.log import predictions_folder

SEED_VERSION = 1
FEATURES = [f"f{i}" for i in range(5)]
PART_ROWS = 50_000
FRAUD_VERSIONS, OTHER_MODELS, OTHER_VERSIONS, REVISIONS, LOOP_EVENTS = 500, 50, 10, 100, 200

CONFIG = """
monitoring:
  window: 1h
  endpoints:
    fraud:
      slos:
        - {kind: latency, target: 0.99, threshold_ms: 50}
        - {kind: availability, target: 0.999}
"""


def training(rng: np.random.Generator, n: int = 2_000) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    label = (frame["f0"] + 0.5 * frame["f1"] + rng.normal(scale=0.5, size=n) > 1).astype(int).to_numpy()
    return frame, label


def registry(root: Path) -> Project:
    """The project with the models, the endpoint's revisions and the loop's events (cached under ``root``)."""
    done = root / "registry.json"
    if done.exists() and json.loads(done.read_text()).get("version") == SEED_VERSION:
        return Project.open(root, env={})
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "mloop.yaml").write_text(CONFIG)
    project = Project.open(root, env={})
    rng = np.random.default_rng(0)
    frame, label = training(rng)
    model = LogisticRegression().fit(frame, label)
    example = frame.head(20)
    started = time.perf_counter()
    for v in range(FRAUD_VERSIONS):
        with project.run("fraud-train", params={"C": 1.0, "i": v}) as run:
            run.log_metric("roc_auc", 0.8 + v / 1e4)
            lineage = (
                log_reference(run, frame, prediction=model.predict_proba(frame)[:, 1]) if v >= 490 else {}
            )
        project.models.register("fraud", model, run_id=run.id, input_example=example, lineage=lineage)
    for m in range(OTHER_MODELS):
        for _ in range(OTHER_VERSIONS):
            project.models.register(f"m{m:02d}", model, input_example=example, metrics={"auc": 0.8})
    print(f"  registered {FRAUD_VERSIONS + OTHER_MODELS * OTHER_VERSIONS:,} versions in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    for r in range(REVISIONS - 1):
        project.deploy("fraud", "fraud", version=FRAUD_VERSIONS - 1 - (r % 2))
    project.deploy("fraud", "fraud", version=FRAUD_VERSIONS, canary=0.1)
    for i in range(LOOP_EVENTS):
        project.loop.record("fraud", "canary", challenger=FRAUD_VERSIONS, champion=FRAUD_VERSIONS - 1,
                            step=i % 5 + 1, share=0.1)  # fmt: skip
    done.write_text(json.dumps({"version": SEED_VERSION}))
    return project


def _json_columns(root: Path, rows: int) -> pa.Table:
    """request_id, prediction and inputs of at least ``rows`` rows (cached: the slow part to make)."""
    rows = max(rows, 1_000_000)
    for cached in sorted(root.parent.glob(f"ui-platform-json-*-v{SEED_VERSION}.parquet")):
        if int(cached.name.split("-")[3]) >= rows:
            return pq.read_table(cached)
    cache = root.parent / f"ui-platform-json-{rows}-v{SEED_VERSION}.parquet"
    rng = np.random.default_rng(1)
    values = np.round(rng.normal(size=(rows, len(FEATURES))), 4)
    score = 1 / (1 + np.exp(-(values[:, 0] + 0.5 * values[:, 1] - 1)))
    inputs = [
        f'{{"f0":{a},"f1":{b},"f2":{c},"f3":{d},"f4":{e}}}' for a, b, c, d, e in values.tolist()
    ]  # fmt: skip
    table = pa.table({
        "request_id": pa.array([f"{i:032x}" for i in range(rows)]),
        "prediction": pa.array([repr(s) for s in np.round(score, 6).tolist()]),
        "inputs": pa.array(inputs),
    })  # fmt: skip
    pq.write_table(table, cache)
    return table


def _write(project: Project, folder: Path, rows: int, start: datetime, end: datetime, seq: int) -> int:
    """``rows`` rows evenly at random in ``[start, end)`` as parts numbered from ``seq``; the next number."""
    if rows <= 0:
        return seq
    columns = _json_columns(Path(project.root), max(rows, PART_ROWS))
    rng = np.random.default_rng(seq)
    first_us, span_us = int(start.timestamp() * 1e6), int((end - start).total_seconds() * 1e6)
    ts = np.sort(rng.integers(0, span_us, rows)) + first_us
    version = np.where(rng.random(rows) < 0.9, FRAUD_VERSIONS - 1, FRAUD_VERSIONS)
    status = np.where(rng.random(rows) < 0.001, "error", "ok")
    latency = rng.lognormal(np.log(0.002), 0.5, rows)
    revision = project.deployments.get("fraud").revision
    days = ts // 86_400_000_000  # a part holds one day, as the compactor writes them
    bounds = sorted({*range(0, rows, PART_ROWS), *(np.flatnonzero(np.diff(days)) + 1).tolist(), rows})
    for first, stop in itertools.pairwise(bounds):
        n, at = stop - first, first % (len(columns) - PART_ROWS)  # the JSON columns are reused cyclically
        day = datetime.fromtimestamp(ts[first] / 1e6, UTC).date()
        table = pa.table({
            "request_id": columns["request_id"][at:at + n],
            "row": pa.array(np.zeros(n, np.int32)), "ts": pa.array(ts[first:stop], pa.timestamp("us", tz="UTC")),
            "endpoint": pa.array(["fraud"] * n), "model": pa.array(["fraud"] * n),
            "version": pa.array(version[first:stop]), "revision": pa.array(np.full(n, revision)),
            "latency_s": pa.array(latency[first:stop]), "status": pa.array(status[first:stop]),
            "prediction": columns["prediction"][at:at + n], "inputs": columns["inputs"][at:at + n],
            "tensors": pa.nulls(n, SCHEMA.field("tensors").type), "keys": pa.nulls(n, pa.string()),
        }, schema=SCHEMA)  # fmt: skip
        target = folder / "endpoint=fraud" / f"date={day.isoformat()}" / f"part-bench-{seq:06d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
        seq += 1
    return seq


def prediction_log(project: Project, rows: int, now: datetime) -> None:
    """``rows`` rows over the 7 days before ``now``, and the monitoring windows stored over them.

    Made once; a later run tops it up to ``now`` at the same rate, drops the days older than 7, and stores
    the new windows (``mloop monitor update``), as a server where the loop runs would have done."""
    folder = Path(predictions_folder(project.settings))  # type: ignore[arg-type]  # local data_url
    state_file = Path(project.root) / "log.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    started = time.perf_counter()
    if state.get("rows") != rows:
        shutil.rmtree(folder, ignore_errors=True)
        since = now - timedelta(days=7)
        state = {"rows": rows, "seq": _write(project, folder, rows, since, now, 0)}
        for day in range(7, 0, -1):  # a day at a time: what an hourly update would have read
            project.monitoring.update("fraud", now=now - timedelta(days=day - 1), lookback=timedelta(days=1))
    else:
        until = datetime.fromisoformat(state["until"])
        more = int(rows * (now - until) / timedelta(days=7))
        state["seq"] = _write(project, folder, more, until, now, state["seq"])
        for old in (folder / "endpoint=fraud").glob("date=*"):
            if old.name < f"date={(now - timedelta(days=7)).date().isoformat()}":
                shutil.rmtree(old)
        project.monitoring.update("fraud", now=now)
    state["until"] = now.isoformat()
    state_file.write_text(json.dumps(state))
    print(
        f"  the prediction log and its monitoring windows up to now in {time.perf_counter() - started:.0f} s"
    )


def seed(root: Path, rows: int) -> Project:
    """The project, its log written up to now, and the stored monitoring windows."""
    project = registry(root)
    prediction_log(project, rows, datetime.now(UTC))
    return project
