"""Attribution drift: a window where the model's reliance moved raises one incident through the alert path,
although no input drifted enough to be flagged; a random split of the reference data stays quiet."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.config.monitoring import AttributionOptions, EndpointMonitoring
from mloop.explain.importance import on_holdout
from mloop.metrics.profile import build_profile
from mloop.monitoring.attribution_drift import AttributionWatch, attribution_alerts, compare
from tests.monitoring.stream import START, write
from tests.monitoring.stream import register as register_unexplained

FEATURES = ["a", "b", "c"]


def draw(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """``a`` matters only in its tail (above 2: 2% of the rows, where it decides), ``b`` and ``c`` a little
    everywhere."""
    frame = pd.DataFrame({c: rng.normal(size=n) for c in FEATURES})
    logit = 4 * (frame["a"] > 2) + 0.4 * frame["b"] + 0.4 * frame["c"]
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def reliance_moved(frame: pd.DataFrame, rng: np.random.Generator, share: float = 0.08) -> pd.DataFrame:
    """``share`` of the rows with an ordinary ``a`` (|a| < 1) moved just past 2, where the model's step is:
    too little to drift ``a`` (PSI at most 0.07 over twenty draws, under the 0.1 that flags it) but ``a`` now
    decides about a tenth of the rows instead of a fiftieth, so the model leans on it far more (distance of
    the shares at least 0.163, median 0.215, over twenty draws; at most 0.052 on twenty random splits:
    benchmarks/explain_global.py)."""
    out = frame.copy()
    ordinary = np.flatnonzero(np.abs(out["a"].to_numpy()) < 1)
    moved = rng.choice(ordinary, int(share * len(out)), replace=False)
    out.loc[out.index[moved], "a"] = rng.uniform(2.05, 3.0, len(moved))
    return out


def records(model: Any, frame: pd.DataFrame, hour: int) -> list[dict[str, Any]]:
    scores = model.predict_proba(frame[FEATURES])[:, 1]
    times = [START + timedelta(hours=hour, seconds=3600 * (i + 0.5) / len(frame)) for i in range(len(frame))]
    return [{"request_id": uuid.uuid4().hex, "ts": t.timestamp(), "endpoint": "fraud", "model": "fraud",
             "version": 1, "revision": 1, "latency_s": 0.003, "status": "ok", "predictions": [float(scores[i])],
             "inputs": {c: [float(frame[c].iloc[i])] for c in FEATURES}}
            for i, t in enumerate(times)]  # fmt: skip


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    train, y = draw(3_000, rng)
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, n_jobs=1, verbose=-1).fit(train, y)
    reference, _ = draw(3_000, rng)
    holdout, split = reference.iloc[:1_500], reference.iloc[1_500:]  # drawn at random: a random split
    fresh, _ = draw(1_500, rng)
    return {"model": model, "train": train, "holdout": holdout, "split": split,
            "moved": reliance_moved(fresh, rng)}  # fmt: skip


def _open(root: Path) -> Project:
    return Project.open(root, env={}, monitoring={"window": "1h", "sinks": [{"kind": "log"}]})


def _register(project: Project, data: dict[str, Any]) -> None:
    model = data["model"]
    profile = build_profile(data["train"], prediction=model.predict_proba(data["train"])[:, 1], seed=0)
    with project.run("fraud") as run:
        digest = run.log_artifact(json.dumps(profile).encode(), "reference_profile.json")
        card = {"threshold": 0.5, "training_data": {"task": "binary"},
                "importance": on_holdout("lightgbm", model, data["holdout"])}  # fmt: skip
        run.register(model, "fraud", input_example=data["train"].head(50),
                     lineage={"reference_profile": digest}, card=card)  # fmt: skip


def test_moved_reliance_alerts_once_while_a_random_split_and_every_input_stay_quiet(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    with _open(tmp_path) as project:
        _register(project, data)
        write(project, records(data["model"], data["split"], 0), "quiet")
        quiet = project.monitoring.update(
            "fraud", now=START + timedelta(hours=1), lookback=timedelta(hours=1)
        )
        write(project, records(data["model"], data["moved"], 1), "moved")
        moved = project.monitoring.update(
            "fraud", now=START + timedelta(hours=2), lookback=timedelta(hours=2)
        )
        again = project.monitoring.update(
            "fraud", now=START + timedelta(hours=2, minutes=5), lookback=timedelta(hours=2)
        )
    (calm,) = quiet["drift"]
    assert calm["attribution"]["drifted"] is False and calm["attribution"]["rows"] == 500
    assert quiet["alerts"]["opened"] == []
    (window,) = moved["drift"]
    found = window["attribution"]
    assert found["drifted"] is True and found["distance"] >= 0.1 and found["rows"] == 500
    assert found["moved"][0]["feature"] == "a" and found["moved"][0]["change"] > 0
    assert not set(FEATURES) & set(window["drifted"])  # no input drifted: only the reasoning moved
    (alert,) = [a for a in moved["alerts"]["opened"] if a["name"] == "attribution_drift"]
    assert (
        alert["key"] == "fraud/attribution"
        and "relies" in alert["description"]
        and "`a`" in alert["description"]
    )
    assert alert["labels"]["version"] == "1" and alert["labels"]["features"].startswith("a")
    assert not [a for a in again["alerts"]["opened"] if a["name"] == "attribution_drift"]  # one incident


def test_a_version_whose_card_has_no_importance_is_reported_not_failed(tmp_path: Path) -> None:
    from tests.monitoring.stream import records as unexplained_records

    with _open(tmp_path) as project:
        model = register_unexplained(project)  # a scikit-learn pipeline registered without importance
        recs, _ = unexplained_records(model, [0], 300, seed=1)
        write(project, recs, "a")
        read = project.monitoring.drift("fraud", since=START, until=START + timedelta(hours=1))
        (window,) = project.monitoring.update(
            "fraud", now=START + timedelta(hours=1), lookback=timedelta(hours=1)
        )["drift"]
    assert "attribution" not in read[0]  # a read explains nothing: only stored windows are explained
    assert window["attribution"]["drifted"] is None
    assert "no global importance" in window["attribution"]["note"]


def _entry(version: int, distance: float, rows: int = 500, start: str = "2026-11-30T00:00:00+00:00") -> dict:
    moved = [{"feature": "a", "sentence": "v1 in this window relies 60% more on `a`"}]
    found = {"distance": distance, "threshold": 0.1, "drifted": distance >= 0.1, "moved": moved}
    return {"version": version, "rows": rows, "start": start, "attribution": found}


def test_the_alert_is_one_per_endpoint_on_the_worst_version_and_needs_enough_rows() -> None:
    options, now = EndpointMonitoring(), datetime(2026, 12, 1, tzinfo=UTC)
    (alert,) = attribution_alerts("fraud", [_entry(1, 0.15), _entry(2, 0.3), _entry(3, 0.05)], options, now)
    assert alert.key == "fraud/attribution" and alert.labels["version"] == "2" and alert.value == 0.3
    assert attribution_alerts("fraud", [_entry(1, 0.4, rows=150)], options, now) == []  # under min_rows
    assert attribution_alerts("fraud", [_entry(1, 0.4), _entry(1, 0.02)], options, now) == []  # newest calm


def test_the_distance_is_the_share_that_moved_between_features() -> None:
    found = compare({"a": 0.5, "b": 0.5}, {"a": 0.8, "b": 0.2}, rows=500, threshold=0.25, version=4)
    assert found["distance"] == pytest.approx(0.3) and found["drifted"] is True
    assert found["moved"][0]["sentence"].startswith("v4 in this window relies 60% more on `a`")
    same = compare({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}, rows=500, threshold=0.1, version=4)
    assert same["distance"] == 0 and same["drifted"] is False


def test_the_settings_bound_the_threshold_and_can_switch_it_off(tmp_path: Path) -> None:
    endpoint = {"attribution": {"threshold": 0.2, "rows": 300}}
    with Project.open(tmp_path, env={}, monitoring={"endpoints": {"fraud": endpoint}}) as project:
        options = project.settings.monitoring.endpoint("fraud").attribution
    assert options.threshold == 0.2 and options.rows == 300 and options.enabled
    with pytest.raises(ml.ConfigError, match="threshold"):
        Project.open(
            tmp_path, env={}, monitoring={"endpoints": {"fraud": {"attribution": {"threshold": 1.5}}}}
        )
    never = AttributionWatch(lambda model, version: pytest.fail("switched off: no model is loaded"))
    off = AttributionOptions(enabled=False)
    assert never.entry("fraud", 1, {"shares": {"a": 1.0}}, pd.DataFrame({"a": [1.0]}), off) == {}


def test_logged_inputs_the_model_cannot_read_are_a_note_not_a_failed_update(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    with Project.open(tmp_path, env={}) as project:
        _register(project, data)
        loaded = project.models.load("fraud", 1)
        importance = project.models.get("fraud", 1).card["importance"]
    watch = AttributionWatch(lambda model, version: loaded)
    window = data["split"].drop(columns=["b"])  # a column the prediction log did not keep
    found = watch.entry("fraud", 1, importance, window, AttributionOptions())["attribution"]
    assert found["drifted"] is None and "cannot be explained" in found["note"] and "b" in found["note"]
    assert (
        watch.entry("fraud", 1, importance, data["split"], AttributionOptions())["attribution"]["drifted"]
        is False
    )
