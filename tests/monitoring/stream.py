"""A synthetic model and prediction stream for the monitoring tests: a logistic model registered with a
reference profile and calibration data, and prediction-log records at chosen times (written as the
compacted Parquet a server would leave), with an optional covariate shift."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop import Project
from mloop.metrics.profile import build_profile
from mloop.predictions import tensors
from mloop.predictions.feedback import Feedback, Label
from mloop.predictions.files import SCHEMA, partition, to_table, write_parquet
from mloop.predictions.log import predictions_folder

# Midnight three days ago: inside every "last 7 days" a page or a command reads by default, on any date
# the suite runs (a fixed date here made tests fail a week after it was written).
START = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
FEATURES = ["x1", "x2", "channel"]
CHANNELS = np.array(["web", "app", "pos"])


def draw(n: int, rng: np.random.Generator, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame({
        "x1": rng.normal(shift, 1.0, n), "x2": rng.normal(0.0, 1.0, n),
        "channel": CHANNELS[rng.choice(3, n, p=[0.5, 0.3, 0.2])],
    })  # fmt: skip
    logit = 2.0 * frame["x1"] + frame["x2"] - 1.0
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, labels


def register(project: Project, seed: int = 0) -> Pipeline:
    """Fit and register ``fraud`` v1 with a reference profile and calibration data, as a pipeline would."""
    rng = np.random.default_rng(seed)
    train, y = draw(20_000, rng)
    encode = ColumnTransformer([("channel", OneHotEncoder(), ["channel"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(train, y)
    valid, yv = draw(5_000, rng)
    profile = build_profile(train, prediction=model.predict_proba(train)[:, 1], seed=seed)
    with project.run("fraud") as run:
        lineage = {
            "reference_profile": run.log_artifact(json.dumps(profile).encode(), "reference_profile.json"),
            "calibration": run.log_artifact(json.dumps({
                "scores": model.predict_proba(valid)[:, 1].tolist(), "labels": yv.tolist()}).encode(),
                "calibration.json"),
        }  # fmt: skip
        run.register(model, "fraud", input_example=train.head(50), lineage=lineage,
                     card={"threshold": 0.5, "training_data": {"task": "binary"}})  # fmt: skip
    return model


def records(model: Pipeline, hours: Iterable[int], rows: int, *, seed: int,
            shift_from: datetime | None = None, shift: float = 1.0, version: int = 1
            ) -> tuple[list[dict[str, Any]], dict[str, int]]:  # fmt: skip
    """One single-row record per prediction, ``rows`` per hour of ``hours`` (since :data:`START`),
    spread evenly; rows at or after ``shift_from`` get x1 shifted. Also the true label of each id."""
    rng = np.random.default_rng(seed)
    out, truth = [], {}
    for hour in hours:
        times = [START + timedelta(hours=hour, seconds=3600 * (i + 0.5) / rows) for i in range(rows)]
        shifted = np.array([shift_from is not None and t >= shift_from for t in times])
        frame, _ = draw(rows, rng)
        frame.loc[shifted, "x1"] += shift
        logit = 2.0 * frame["x1"] + frame["x2"] - 1.0
        labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
        scores = model.predict_proba(frame)[:, 1]
        columns = {c: frame[c].tolist() for c in FEATURES}
        for i, t in enumerate(times):
            rid = uuid.uuid4().hex
            truth[rid] = int(labels[i])
            out.append({"request_id": rid, "ts": t.timestamp(), "endpoint": "fraud", "model": "fraud",
                        "version": version, "revision": 1, "latency_s": 0.004, "status": "ok",
                        "predictions": [float(scores[i])],
                        "inputs": {c: [v[i]] for c, v in columns.items()}})  # fmt: skip
    return out, truth


def failures(start: datetime, minutes: int, per_minute: int) -> list[dict[str, Any]]:
    """Requests that failed with a server error, as the service logs them."""
    return [{"request_id": uuid.uuid4().hex, "ts": (start + timedelta(minutes=m, seconds=i)).timestamp(),
             "endpoint": "fraud", "model": "fraud", "version": 1, "revision": 1, "latency_s": 0.002,
             "status": "error", "predictions": [None], "inputs": {}}
            for m in range(minutes) for i in range(per_minute)]  # fmt: skip


def write(project: Project, recs: list[dict[str, Any]], name: str) -> None:
    """Write ``recs`` as compacted Parquet parts of the prediction log, one per day."""
    folder = predictions_folder(project.settings)
    by_day: dict[Any, list[dict[str, Any]]] = {}
    for rec in recs:
        by_day.setdefault(datetime.fromtimestamp(rec["ts"], UTC).date(), []).append(rec)
    for day, items in by_day.items():
        write_parquet(to_table(items), partition(folder, "fraud", day) / f"part-{name}.parquet")


def bulk(project: Project, model: Pipeline, rows: int, hours: int, *, seed: int) -> None:
    """``rows`` unshifted single-row predictions spread evenly over ``hours`` from :data:`START`, written
    column by column (as :func:`write` would, without a dict per record)."""
    rng = np.random.default_rng(seed)
    frame, _ = draw(rows, rng)
    scores = model.predict_proba(frame)[:, 1]
    ts = (START.timestamp() + np.arange(rows) * (hours * 3600 / rows)) * 1e6
    inputs = [json.dumps({"x1": a, "x2": b, "channel": c})
              for a, b, c in zip(frame["x1"].tolist(), frame["x2"].tolist(), frame["channel"].tolist(), strict=True)]  # fmt: skip
    table = pa.table({
        "request_id": [uuid.uuid4().hex for _ in range(rows)], "row": np.zeros(rows, dtype=np.int64),
        "ts": ts.astype(np.int64), "endpoint": ["fraud"] * rows, "model": ["fraud"] * rows,
        "version": np.ones(rows, dtype=np.int64), "revision": np.ones(rows, dtype=np.int64),
        "latency_s": np.full(rows, 0.004), "status": ["ok"] * rows,
        "prediction": [json.dumps(v) for v in scores.tolist()], "inputs": inputs, "tensors": tensors.empty(rows),
        "keys": pa.nulls(rows, pa.string()), "attributions": pa.nulls(rows, pa.string()),
        "defaulted": pa.nulls(rows, pa.string()),
    }).cast(SCHEMA)  # fmt: skip
    day = partition(predictions_folder(project.settings), "fraud", START.date())
    write_parquet(table, day / "part-bulk.parquet")


def label(project: Project, truth: dict[str, Any]) -> dict[str, Any]:
    """Send ``{request_id: label}`` through the feedback service (as the HTTP API would)."""
    from mloop.predictions.log import PredictionLog

    with PredictionLog(predictions_folder(project.settings)) as log:
        labels = [Label(rid, value) for rid, value in truth.items()]
        return Feedback(log).attach(project, labels).to_dict()


__all__ = ["START", "Path", "bulk", "failures", "label", "records", "register", "write"]
