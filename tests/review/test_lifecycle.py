"""The lifecycle checks, each made to fail and pass on a real project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop import Project
from mloop.loop.controller import LoopController
from tests.review.conftest import finding, fraud_project, reopen
from tests.training.fraud import setup


def test_an_endpoint_with_one_revision_has_no_rollback_target_until_a_second_is_deployed(
    tmp_path: Path,
) -> None:
    project = fraud_project(tmp_path, deploy=False)
    try:
        assert finding(project, "lifecycle.rollback-target").status == "n/a"  # nothing deployed
        project.deploy("fraud", "fraud", version=1)
        first = finding(project, "lifecycle.rollback-target")
        assert first.status == "fail" and first.weight == "high"
        assert (
            first.outcome.refs == ("endpoint:fraud",)
            and "revision 1 is its first" in first.outcome.evidence[0]
        )
        project.deploy("fraud", "fraud", version=2)
        assert finding(project, "lifecycle.rollback-target").status == "pass"
        project.models.delete_version("fraud", 1)  # the revision before needs v1: gone
        gone = finding(project, "lifecycle.rollback-target")
        assert gone.status == "fail" and "deleted" in gone.outcome.evidence[0]
    finally:
        project.close()


def test_an_endpoint_is_monitored_once_it_is_configured(reviewed: Project) -> None:
    unwatched = finding(reviewed, "lifecycle.monitored")
    assert unwatched.status == "fail"
    assert "fraud: not under monitoring.endpoints" in unwatched.outcome.evidence
    watched = reopen(reviewed, monitoring={"endpoints": {"fraud": {"slos": []}}})
    try:
        assert finding(watched, "lifecycle.monitored").status == "pass"  # both versions keep a profile
    finally:
        watched.close()
        reopen(reviewed, monitoring=None).close()


# ---- what the serving versions carry from training ----------------------------------------------------


def _trained(root: Path, *, outside_git: bool = False) -> tuple[Project, ml.TrainingPipeline]:
    """A fraud project and its pipeline, trained once (v1), nothing deployed. A run records the git commit of
    the folder it runs in (here, the mloop work tree); ``outside_git`` trains from ``root``, outside any."""
    project = Project.open(root, env={})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    pipeline, _ = setup(project, root, rows=3_000, start=start)
    here = os.getcwd()
    os.chdir(root if outside_git else here)
    try:
        pipeline.run(project)
    finally:
        os.chdir(here)
    return project, pipeline


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """``fraud`` v1 from the pipeline on endpoint ``fraud``; ``plain`` v1, registered from a bare run (no
    split, no slices, no training set), on endpoint ``plain``."""
    project, _ = _trained(tmp_path_factory.mktemp("mixed"), outside_git=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    with project.run("plain") as run:
        run.register(model, "plain", input_example=frame.head(20))
    project.deploy("fraud", "fraud", version=1)
    project.deploy("plain", "plain", version=1)
    yield project
    project.close()


def test_a_version_from_a_bare_run_has_no_holdout_slices_fairness_or_lineage(mixed: Project) -> None:
    for check in ("lifecycle.holdout-gate", "lifecycle.slices", "lifecycle.fairness", "lifecycle.lineage"):
        found = finding(mixed, check)
        assert found.status == "fail", check
        assert found.outcome.refs == ("model:plain/1",) and found.outcome.numbers["versions"] == [
            "plain: plain v1"
        ]
    holdout = finding(mixed, "lifecycle.holdout-gate").outcome.evidence
    assert any(
        line.startswith("fraud: fraud v1: test_roc_auc 0.") and "holdout rows" in line for line in holdout
    )
    assert "plain: plain v1: no test_* metric and no passed loop.gate" in holdout
    assert "plain: plain v1: no a training-set fingerprint, no feature views" in (
        finding(mixed, "lifecycle.lineage").outcome.evidence
    )
    watched = reopen(mixed, monitoring={"endpoints": {"plain": {"performance": {"sensitive": ["b"]}}}})
    try:  # live fairness monitoring of the sensitive column counts as its evaluation
        fair = finding(watched, "lifecycle.fairness")
        assert fair.status == "pass" and "plain: plain v1: offline none, live ['b']" in fair.outcome.evidence
    finally:
        watched.close()
        reopen(mixed, monitoring=None).close()
    mixed.deployments.undeploy("plain")
    try:
        for check in ("lifecycle.holdout-gate", "lifecycle.slices", "lifecycle.fairness"):
            assert finding(mixed, check).status == "pass", check
        lineage = finding(mixed, "lifecycle.lineage")  # traced to its training set, but no git commit
        assert lineage.status == "warn" and "commit not recorded" in lineage.outcome.evidence[0]
    finally:
        mixed.deploy("plain", "plain", version=1)


def test_serving_versions_go_stale_as_the_review_moves_past_their_training_data(reviewed: Project) -> None:
    fresh = finding(reviewed, "lifecycle.staleness")
    assert fresh.status == "pass" and "(limit 90)" in fresh.outcome.evidence[0]
    later = finding(reviewed, "lifecycle.staleness", now=datetime.now(UTC) + timedelta(days=100))
    assert later.status == "fail" and len(later.outcome.numbers["versions"]) == 1  # v2 serves
    strict = reopen(reviewed, review={"thresholds": {"stale_model_days": 1}})
    try:
        assert (
            finding(strict, "lifecycle.staleness", now=datetime.now(UTC) + timedelta(days=3)).status == "fail"
        )
    finally:
        strict.close()
        reopen(reviewed, review=None).close()


def test_a_champion_moved_without_a_second_person_fails_approval(reviewed: Project) -> None:
    assert finding(reviewed, "lifecycle.approval").status == "n/a"  # require_approval is off
    approving = Project.open(reviewed.root, env={}, require_approval=True)
    try:
        assert finding(approving, "lifecycle.approval").status == "n/a"  # nothing changed production yet
        alice = approving.as_actor(approving.users.add("alice", ["ml_engineer"]).actor())
        bob = approving.as_actor(approving.users.add("bob", ["mlops"]).actor())
        alice.models.promote("fraud", 2, to="production")
        bob.models.approve("fraud", 2)
        approved = finding(approving, "lifecycle.approval")
        assert approved.status == "pass"
        assert "requested by alice, approved by bob" in approved.outcome.evidence[0]
        approving.models.set_alias("fraud", "champion", 1)  # v1 was never approved for production
        moved = finding(approving, "lifecycle.approval")
        assert moved.status == "fail" and moved.weight == "high"
        assert any("champion to v1, never approved" in line for line in moved.outcome.evidence)
        approving.models.set_alias("fraud", "champion", 2)
        assert finding(approving, "lifecycle.approval").status == "fail"  # the earlier move stays on record
    finally:
        approving.close()


def test_the_loop_retrains_through_a_canary_and_a_tuned_pipeline_run_in_git_passes(tmp_path: Path) -> None:
    project, pipeline = _trained(tmp_path)
    try:
        assert finding(project, "lifecycle.canary").status == "n/a"  # nothing deployed
        project.models.set_alias("fraud", "champion", 1)
        project.deploy("fraud", "fraud", version=1)
        lineage = finding(project, "lifecycle.lineage")
        assert lineage.status == "pass" and "customer_stats" in lineage.outcome.evidence[0]
        assert finding(project, "lifecycle.canary").status == "n/a"  # a first revision replaces nothing
        assert finding(project, "lifecycle.retraining").outcome.evidence == (
            "fraud: no entry under loop.policies, no retraining in the last 90 days",
        )
        looped = reopen(
            project, loop={"policies": [{"endpoint": "fraud", "pipeline": "tests.training.fraud:setup"}]}
        )
        try:
            assert finding(looped, "lifecycle.retraining").status == "fail"  # configured, never retrained
            policy = ml.LoopPolicy("fraud", _grown(pipeline), triggers=[ml.OnNewData(rows=1)],
                                   gate=ml.Gate(metric="auc", min_gain=-1.0, max_latency_ms=None),
                                   rollout=ml.Canary(steps=[0.1, 1.0], min_requests=20, max_error_rate=0.05,
                                                     compare=None), rollback=None)  # fmt: skip
            assert LoopController(project, [policy], train="inprocess").tick()[0]["decision"] == "canary"
            retrained = finding(looped, "lifecycle.retraining")
            assert retrained.status == "pass" and "v2 retrained" in retrained.outcome.evidence[0]
            gate = finding(looped, "lifecycle.holdout-gate").outcome  # v2 serves 10% on the gate's word
            assert any("fraud v2 passed the loop gate" in line for line in gate.evidence)
        finally:
            looped.close()
        project.deploy("fraud", "fraud", version=2)  # the canary's challenger takes it all: canaried
        assert finding(project, "lifecycle.canary").status == "pass"
        project.deploy("fraud", "fraud", version=1)  # straight back to v1, no canary
        skipped = finding(project, "lifecycle.canary")
        assert skipped.status == "fail" and skipped.outcome.numbers["skipped"] == ["fraud#4"]
        project.deploy("fraud", "fraud", version=2, canary=0.2)
        project.deploy("fraud", "fraud", version=2)
        assert finding(project, "lifecycle.canary").status == "warn"  # the latest change was canaried
        assert finding(project, "lifecycle.tuned").status == "fail"
        pipeline.tune(project, {"num_leaves": [7, 15]}, trials=2)
        tuned = finding(project, "lifecycle.tuned")
        assert tuned.status == "pass" and tuned.outcome.refs[0].startswith("run:")
    finally:
        project.close()


def _grown(pipeline: ml.TrainingPipeline) -> ml.TrainingPipeline:
    """The pipeline with 30 more labels a day after its data ends: new data for the OnNewData trigger."""
    frame = pipeline.label.source
    later = frame.tail(30).assign(ts=frame["ts"].max() + pd.Timedelta(days=1))
    label = ml.Label(pd.concat([frame, later], ignore_index=True), column="is_fraud", timestamp="ts")
    return ml.TrainingPipeline(**{**pipeline.__dict__, "label": label})
