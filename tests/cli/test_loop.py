"""``mloop loop``: tick, status, timeline, pause, resume and approve on policies from mloop.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mloop import Project
from tests.cli.conftest import Run
from tests.training.fraud import setup

PIPELINE = """
import lightgbm
import mloop as ml

pipeline = ml.TrainingPipeline(
    "fraud", features=["customer_stats:*", "customer_last:*", "amount_ratio:amount_ratio"],
    label=ml.Label({labels!r}, column="is_fraud", timestamp="ts"),
    model=lightgbm.LGBMClassifier(n_estimators=50, num_leaves=7, verbose=-1),
    split=ml.TimeSplit(valid="5d", test="5d"))
"""


@pytest.mark.slow
def test_tick_status_timeline_pause_resume(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    with Project.open(root, env={}) as project:
        pipeline, frame = setup(project, root, rows=3_000)
        pipeline.run(project)
        project.models.set_alias("fraud", "champion", 1)
        project.deploy("fraud", "fraud", version=1)
        later = frame.tail(10).assign(ts=frame["ts"].max() + pd.Timedelta(days=1))
        labels = root / "labels.parquet"

        pd.concat([frame, later], ignore_index=True).to_parquet(labels)
    (root / "cli_pipeline.py").write_text(PIPELINE.format(labels=str(labels)))
    policy = {"endpoint": "fraud", "pipeline": "cli_pipeline:pipeline", "triggers": [{"new_data": {"rows": 5}}],
              "gate": {"min_gain": -1.0, "max_latency_ms": None}, "rollout": {"steps": [0.2, 1.0], "min_requests": 10},
              "approval": True}  # fmt: skip
    (root / "mloop.yaml").write_text(yaml.safe_dump({"loop": {"policies": [policy]}}))

    (decision,) = cli("loop", "tick", "--json").json()
    assert decision["decision"] == "canary", decision
    status = cli("loop", "status", "fraud", "--json").json()
    assert status["phase"] == "canary" and status["challenger"] == 2
    refused = cli("loop", "approve", "fraud")
    assert refused.code == 1 and "nothing waits for approval" in refused.err
    assert cli("loop", "pause", "fraud", "--reason", "freeze").code == 0
    assert cli("loop", "tick", "--json").json()[0]["decision"] == "paused"
    assert cli("loop", "resume", "fraud").code == 0
    shown = cli("loop", "timeline", "fraud")
    assert shown.code == 0 and "loop.gate" in shown.out and "freeze" in shown.out
    actions = [e["action"] for e in cli("loop", "timeline", "fraud", "--json").json()]
    assert actions[:3] == ["loop.trigger", "loop.gate", "loop.canary"] and "loop.pause" in actions


def test_tick_without_policies_says_how_to_declare_them(cli: Run) -> None:
    done = cli("loop", "tick")
    assert done.code == 1 and "loop.policies" in done.err
