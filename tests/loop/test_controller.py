"""The loop controller on a real training pipeline and prediction log: triggers, the gate, the canary
steps, promotion, rollback, pause/resume, approval and the lease; every decision read back from the
event log."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.errors import MetadataUnavailable
from mloop.loop import lease
from mloop.loop.controller import LoopController
from mloop.predictions.files import partition, to_table, write_parquet
from mloop.predictions.log import predictions_folder
from tests.training.fraud import setup

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fraud(tmp_path: Path) -> Iterator[tuple[Project, ml.TrainingPipeline]]:
    root = tmp_path / "p"
    root.mkdir()
    project = Project.open(root, env={})
    pipeline, _ = setup(project, root, rows=4_000)
    pipeline.run(project)
    project.models.set_alias("fraud", "champion", 1)
    project.deploy("fraud", "fraud", version=1)
    yield project, _grown(pipeline, 30)
    project.close()


def _grown(pipeline: ml.TrainingPipeline, rows: int) -> ml.TrainingPipeline:
    """The pipeline with ``rows`` more labels, a day after the data v1 was trained on (the OnNewData trigger)."""
    frame = pipeline.label.source
    later = frame.tail(rows).assign(ts=frame["ts"].max() + pd.Timedelta(days=1))
    label = ml.Label(pd.concat([frame, later], ignore_index=True), column="is_fraud", timestamp="ts")
    return ml.TrainingPipeline(**{**pipeline.__dict__, "label": label})


def _policy(pipeline: ml.TrainingPipeline, **changes: Any) -> ml.LoopPolicy:
    fields: dict[str, Any] = {
        "triggers": [ml.OnNewData(rows=1)],
        "gate": ml.Gate(metric="auc", min_gain=-1.0, max_latency_ms=None),
        "rollout": ml.Canary(steps=[0.1, 0.5, 1.0], min_requests=20, max_error_rate=0.05, compare=None),
        "rollback": None,
    }
    return ml.LoopPolicy("fraud", pipeline, **{**fields, **changes})


def _controller(project: Project, policy: ml.LoopPolicy, **kwargs: Any) -> LoopController:
    return LoopController(project, [policy], train="inprocess", **kwargs)


def _serve(project: Project, version: int, ok: int, errors: int = 0, latency_s: float = 0.003) -> None:
    """Requests answered by ``version`` just now, as the server logs them (``errors`` failed with a 500):
    with the endpoint's live revision, which tells a loop step's requests apart."""
    now, revision = time.time(), project.deployments.get("fraud").revision
    recs = [{"request_id": uuid.uuid4().hex, "ts": now + i * 1e-4, "endpoint": "fraud", "model": "fraud",
             "version": version, "revision": revision, "latency_s": latency_s, "status": "error" if i < errors else "ok",
             "predictions": [None if i < errors else 0.1], "inputs": {}} for i in range(ok + errors)]  # fmt: skip
    day = datetime.fromtimestamp(now, UTC).date()
    write_parquet(to_table(recs), partition(predictions_folder(project.settings), "fraud", day) /
                  f"part-{uuid.uuid4().hex}.parquet")  # fmt: skip


def _actions(project: Project) -> list[str]:
    return [e["action"] for e in project.loop.timeline("fraud", alerts=False)]


def _routes(project: Project) -> list[tuple[int, float]]:
    return [(r.version, round(r.weight, 3)) for r in project.deployments.get("fraud").routes]


@pytest.mark.slow
def test_a_trigger_retrains_and_the_canary_walks_to_promotion(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    controller = _controller(project, _policy(pipeline))
    (first,) = controller.tick()
    assert first["decision"] == "canary" and _routes(project) == [(1, 0.9), (2, 0.1)]
    # The step records the revision it made: its requests are told apart by it, not by the clocks.
    assert project.loop.state("fraud").step_revision == project.deployments.get("fraud").revision
    assert project.models.get("fraud", alias="challenger").version == 2
    assert controller.tick()[0]["reason"].startswith("v2: 0 of 20 requests")
    _serve(project, 2, 25)
    assert controller.tick()[0]["decision"] == "canary" and _routes(project) == [(1, 0.5), (2, 0.5)]
    _serve(project, 2, 25)
    controller.tick()
    assert _routes(project) == [(2, 1.0)]
    _serve(project, 2, 25)
    assert controller.tick()[0]["decision"] == "promote"
    assert project.models.get("fraud", alias="champion").version == 2
    assert project.models.get("fraud", alias="previous").version == 1
    assert _actions(project) == ["loop.trigger", "loop.gate", "loop.canary", "loop.canary", "loop.canary",
                                 "loop.promote"]  # fmt: skip
    gate = project.loop.timeline("fraud", alerts=False)[1]
    assert gate["passed"] and {c["name"] for c in gate["checks"]} >= {"train_rows", "roc_auc_gain"}
    assert project.loop.state("fraud").phase == "idle"


@pytest.mark.slow
def test_a_canary_that_fails_requests_is_rolled_back_in_the_same_tick(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    project.deploy(
        "fraud", "fraud", version=1, options={"timeout_ms": 5_000}
    )  # the operator's, not the loop's
    controller = _controller(project, _policy(pipeline))
    controller.tick()
    assert project.deployments.get("fraud").options == {"timeout_ms": 5_000}  # kept by the canary step
    _serve(project, 2, ok=5, errors=3)  # 3 failures already exceed 5% of the step's 20 requests
    started = time.perf_counter()
    (decision,) = controller.tick()
    assert time.perf_counter() - started < 5  # measured and rolled back in one tick
    assert decision["decision"] == "rollback" and "3 failed requests" in decision["reason"]
    assert _routes(project) == [(1, 1.0)] and project.deployments.get("fraud").options == {
        "timeout_ms": 5_000
    }
    assert project.models.get("fraud", alias="champion").version == 1
    with pytest.raises(ml.NotFound):
        project.models.get("fraud", alias="challenger")
    rollback = project.loop.timeline("fraud", alerts=False)[-1]
    assert rollback["action"] == "loop.rollback" and rollback["numbers"]["challenger"]["errors"] == 3
    assert controller.tick()[0]["decision"] == "cooldown"


@pytest.mark.slow
def test_a_failed_gate_leaves_production_alone(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    (decision,) = _controller(project, _policy(pipeline, gate=ml.Gate(min_gain=0.5))).tick()
    assert decision["decision"] == "gate_failed" and "roc_auc_gain" in decision["reason"]
    assert _routes(project) == [(1, 1.0)] and _actions(project) == ["loop.trigger", "loop.gate"]


@pytest.mark.slow
def test_a_gate_asking_for_confidence_records_the_bound(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    policy = _policy(pipeline, gate=ml.Gate(min_gain=0.001, confidence=0.9))
    (decision,) = _controller(project, policy).tick()
    assert decision["decision"] == "gate_failed" and "roc_auc_gain_low" in decision["reason"]
    gate = project.loop.timeline("fraud", alerts=False)[-1]
    bound = next(c for c in gate["checks"] if c["name"] == "roc_auc_gain_low")
    assert bound["confidence"] == 0.9 and bound["value"] <= bound["high"] and not bound["passed"]
    assert _routes(project) == [(1, 1.0)]


def test_a_failed_training_run_leaves_production_alone(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    broken = ml.TrainingPipeline("fraud", features=["no_such_view:*"], label=pipeline.label, model=pipeline.model,
                                 split=pipeline.split)  # fmt: skip
    (decision,) = _controller(project, _policy(broken)).tick()
    assert decision["decision"] == "train_failed" and "no_such_view" in decision["reason"]
    assert _routes(project) == [(1, 1.0)] and _actions(project)[-1] == "loop.train_failed"


@pytest.mark.slow
def test_pause_stops_the_loop_until_resumed(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    controller = _controller(project, _policy(pipeline))
    project.loop.pause("fraud", reason="freeze")
    assert controller.tick()[0]["decision"] == "paused" and _routes(project) == [(1, 1.0)]
    project.loop.resume("fraud")
    assert controller.tick()[0]["decision"] == "canary"


@pytest.mark.slow
def test_the_final_step_waits_for_approval(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    controller = _controller(project, _policy(pipeline, approval=True))
    controller.tick()
    with pytest.raises(ml.MloopError, match="nothing waits for approval"):
        project.loop.approve("fraud")
    _serve(project, 2, 25)
    controller.tick()  # 10% -> 50%
    _serve(project, 2, 25)
    assert controller.tick()[0]["decision"] == "awaiting"
    assert controller.tick()[0]["decision"] == "awaiting" and _routes(project) == [(1, 0.5), (2, 0.5)]
    project.loop.approve("fraud")
    assert controller.tick()[0]["decision"] == "canary" and _routes(project) == [(2, 1.0)]


@pytest.mark.slow
def test_two_controllers_never_both_act(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    first = _controller(project, _policy(pipeline), lease_ttl=timedelta(seconds=30))
    second = _controller(project, _policy(pipeline), lease_ttl=timedelta(seconds=30))
    assert first.tick(NOW)[0]["decision"] == "canary"
    assert second.tick(NOW + timedelta(seconds=10))[0]["decision"] == "standby"
    assert _actions(project).count("loop.trigger") == 1
    # the first goes silent: once its lease has expired the second takes over where it stopped
    assert second.tick(NOW + timedelta(seconds=31))[0]["reason"].startswith("v2: 0 of 20")


@pytest.mark.slow
def test_a_controller_whose_lease_ran_out_mid_tick_writes_nothing(fraud, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The fence: each write of a tick checks the lease in its own transaction. Here a tick that began
    while its controller held the lease (acquire is made to say so) finds another holding it now."""
    project, pipeline = fraud
    LoopController(project, [], holder="other", lease_ttl=timedelta(seconds=30)).tick(NOW)  # takes the lease
    late = _controller(project, _policy(pipeline), holder="late", lease_ttl=timedelta(seconds=30))
    monkeypatch.setattr(lease, "acquire", lambda *args, **kwargs: True)  # acquired before "other" took over
    (decision,) = late.tick(NOW + timedelta(seconds=1))
    assert decision["decision"] == "standby" and "no longer holds" in decision["reason"]
    assert "(other does)" in decision["reason"]
    assert _routes(project) == [(1, 1.0)] and _actions(project) == []  # no deployment, no event


@pytest.mark.slow
def test_on_new_data_counts_labelled_rows_after_the_training_data(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    controller = _controller(project, _policy(pipeline, triggers=[ml.OnNewData(rows=31)]))
    assert controller.tick()[0]["decision"] == "quiet"
    controller.policies = [_policy(pipeline, triggers=[ml.OnNewData(rows=30)])]
    assert controller.tick()[0]["decision"] == "canary"
    assert project.loop.timeline("fraud", alerts=False)[0]["numbers"]["rows"] == 30


@pytest.mark.slow
def test_a_schedule_fires_once_per_scheduled_time(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    registered = project.models.get("fraud", 1).created_at
    policy = _policy(pipeline, triggers=[ml.Schedule("0 3 * * *")], gate=ml.Gate(min_gain=0.5))
    controller = _controller(project, policy)
    next_three = (registered + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    assert controller.tick(next_three - timedelta(days=1, hours=1) if next_three - timedelta(days=1) > registered
                           else registered)[0]["decision"] == "quiet"  # fmt: skip
    assert controller.tick(next_three + timedelta(minutes=1))[0]["decision"] == "gate_failed"
    later = next_three + timedelta(minutes=1) + policy.pause_after_failure
    assert controller.tick(later)[0]["decision"] == "quiet"  # the 03:00 run happened already


def _log_inputs(project: Project, frame: pd.DataFrame, start: datetime, version: int = 1) -> list[str]:
    """``frame``'s rows as version ``version``'s answers, spread over the hour from ``start``."""
    ids, recs = [], []
    for i, row in enumerate(frame.to_dict("records")):
        rid = uuid.uuid4().hex
        ids.append(rid)
        recs.append({"request_id": rid, "ts": start.timestamp() + 3000 * i / len(frame), "endpoint": "fraud",
                     "model": "fraud", "version": version, "revision": 1, "latency_s": 0.003, "status": "ok",
                     "predictions": [float(row.pop("__score", 0.5))],
                     "inputs": {k: [None if pd.isna(v) else v] for k, v in row.items()}})  # fmt: skip
    write_parquet(to_table(recs), partition(predictions_folder(project.settings), "fraud", start.date()) /
                  f"part-{uuid.uuid4().hex}.parquet")  # fmt: skip
    return ids


def _last_hour() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@pytest.mark.slow
def test_on_drift_fires_on_psi_of_the_top_features(fraud) -> None:  # type: ignore[no-untyped-def]
    project, pipeline = fraud
    names = [c.name for c in project.models.get("fraud", 1).signature.inputs]
    test = pipeline.training_set(project).test[names].sample(1500, replace=True, random_state=0)
    _log_inputs(project, test.reset_index(drop=True), _last_hour())
    controller = _controller(project, _policy(pipeline, triggers=[ml.OnDrift(psi=0.2, features="top:3")]))
    assert controller.tick()[0]["decision"] == "quiet"  # the same distribution as the training data
    top = controller.policies[0]
    from mloop.loop.triggers import _features

    hot = _features(top.triggers[0], project, project.models.get("fraud", 1))[0]
    shifted = test.assign(**{hot: test[hot] * 5 + 10})
    _log_inputs(project, shifted.reset_index(drop=True), _last_hour())
    controller.release()
    picky = _controller(
        project, _policy(pipeline, triggers=[ml.OnDrift(psi=0.2, features="top:3", min_rows=5000)])
    )
    assert picky.tick()[0]["decision"] == "quiet"  # 3,000 rows in the window: too few for this policy
    picky.release()
    assert controller.tick()[0]["decision"] == "canary"
    trigger = project.loop.timeline("fraud", alerts=False)[0]
    assert trigger["trigger"] == "drift" and hot in trigger["numbers"]["psi"]


@pytest.mark.slow
def test_on_performance_fires_on_the_live_auc_from_labels(fraud) -> None:  # type: ignore[no-untyped-def]
    from tests.monitoring.stream import label

    project, pipeline = fraud
    names = [c.name for c in project.models.get("fraud", 1).signature.inputs]
    rows = pipeline.training_set(project).test[names].head(300).reset_index(drop=True)
    scores = pd.Series([i / 300 for i in range(300)])
    ids = _log_inputs(project, rows.assign(__score=scores), _last_hour())
    policy = _policy(
        pipeline, triggers=[ml.OnPerformance(metric="auc", below=0.85, window="1d", min_labels=100)]
    )
    label(project, {rid: bool(i % 2) for i, rid in enumerate(ids)})  # labels unrelated to the scores
    assert _controller(project, policy).tick()[0]["decision"] == "canary"
    trigger = project.loop.timeline("fraud", alerts=False)[0]
    assert trigger["trigger"] == "performance" and trigger["numbers"]["source"] == "realised"
    assert trigger["numbers"]["value"] < 0.6 and trigger["numbers"]["labelled"] == 300


@pytest.mark.slow
def test_an_slo_page_during_the_canary_rolls_back(tmp_path: Path) -> None:
    from tests.monitoring.stream import failures

    root = tmp_path / "p"
    root.mkdir()
    slos = [{"kind": "availability", "target": 0.999}]
    with Project.open(root, env={}, monitoring={"endpoints": {"fraud": {"slos": slos}}}) as project:
        pipeline, _ = setup(project, root, rows=4_000)
        pipeline.run(project)
        project.models.set_alias("fraud", "champion", 1)
        project.deploy("fraud", "fraud", version=1)
        controller = _controller(project, _policy(_grown(pipeline, 30), rollback=ml.OnSLOBreach()))
        assert controller.tick()[0]["decision"] == "canary"
        _serve(project, 1, 200)
        recs = failures(datetime.now(UTC) - timedelta(minutes=20), 20, 10)
        write_parquet(to_table(recs), partition(predictions_folder(project.settings), "fraud",
                                                datetime.now(UTC).date()) / "part-outage.parquet")  # fmt: skip
        (decision,) = controller.tick()
        assert decision["decision"] == "rollback" and decision["reason"].startswith("SLO page")
        assert _routes(project) == [(1, 1.0)]


def test_policies_from_mloop_yaml_and_their_errors() -> None:
    from mloop.errors import ConfigError
    from mloop.loop.policy import policies_from_settings

    (policy,) = policies_from_settings([{
        "endpoint": "fraud", "pipeline": "tests.loop.pipelines:fraud",
        "triggers": [{"schedule": "0 3 * * *"}, {"drift": {"psi": 0.3, "features": "top:5", "min_rows": 1000}}],
        "gate": {"metric": "auc", "min_gain": 0.01}, "rollout": {"steps": [0.1, 1.0], "min_requests": 100},
        "approval": True,
    }])  # fmt: skip
    assert [t.kind for t in policy.triggers] == ["schedule", "drift"] and policy.rollout.steps == [0.1, 1.0]
    assert policy.approval and policy.gate.min_gain == 0.01 and policy.triggers[1].min_rows == 1000
    for spec, needle in [
        ({"pipeline": "x:y"}, "needs 'endpoint'"),
        ({"endpoint": "f", "pipeline": "x:y", "triggers": [{"cron": "x"}]}, "unknown trigger 'cron'"),
        ({"endpoint": "f", "pipeline": "x:y", "triggers": [{"schedule": "0 25 * * *"}]}, "hour"),
        ({"endpoint": "f", "pipeline": "x:y", "triggers": [{"drift": {"min_rows": 0}}]}, "at least 1 row"),
        ({"endpoint": "f", "pipeline": "x:y", "rollout": {"steps": [0.5, 0.2]}}, "rising shares"),
        ({"endpoint": "f", "pipeline": "x:y", "gate": {"metric": "bleu"}}, "Unknown metric 'bleu'"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            policies_from_settings([spec])
    with pytest.raises(ConfigError, match="cannot import pipeline"):
        policies_from_settings([{"endpoint": "f", "pipeline": "no.such.module:p"}])[0].resolved_pipeline()


def test_the_loop_keeps_ticking_after_a_tick_fails(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick that raises (the database restarting past its retry window) is logged; the next one runs."""
    controller = LoopController(sqlite_project, [])
    ticks: list[str] = []
    stop = threading.Event()

    def tick(now: datetime | None = None) -> list[dict[str, object]]:
        ticks.append("tick")
        if len(ticks) == 1:
            raise MetadataUnavailable("the metadata store could not be reached")
        stop.set()
        return []

    monkeypatch.setattr(controller, "tick", tick)
    controller.run(interval=0.01, stop=stop)
    assert ticks == ["tick", "tick"]
