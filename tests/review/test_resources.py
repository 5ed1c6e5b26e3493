"""The resources checks, each made to fail and pass on a real project that a real ``mloop serve`` answered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from mloop import Column, Dataset, Project
from mloop._time import utcnow
from tests.review.conftest import finding, fraud_project, reopen
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

ANSWERED = 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = fraud_project(tmp_path_factory.mktemp("resources"))
    with mloop_serve(project.root) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for row in fraud_rows(project.root, ANSWERED):
            answer = client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
            assert answer.status_code == 200, answer.text
    yield project
    project.close()


def test_cost_per_1k_above_the_budget_fails_and_within_it_passes(served: Project) -> None:
    assert finding(served, "resources.cost-budget").status == "n/a"  # no budget stated
    tight = reopen(served, review={"requirements": {"fraud": {"budget_per_1k": 0.0}}})
    try:
        over = finding(tight, "resources.cost-budget")
        assert over.status == "fail" and over.weight == "high"
        assert over.outcome.refs == ("endpoint:fraud", "setting:review.requirements.fraud.budget_per_1k")
        assert f"over {ANSWERED} requests" in over.outcome.evidence[0]
        # The figure is the one `mloop cost` gives for the same window.
        spent = tight.reviews.cost(since="7d").endpoints["fraud"]
        assert f"{spent.per_1k:.4g} per 1k" in over.outcome.evidence[0]
    finally:
        tight.close()
    loose = reopen(served, review={"requirements": {"fraud": {"budget_per_1k": 1000.0}}})
    try:
        assert finding(loose, "resources.cost-budget").status == "pass"
    finally:
        loose.close()
        reopen(served, review=None).close()


def test_an_endpoint_without_a_request_in_idle_days_is_idle(served: Project) -> None:
    used = finding(served, "resources.idle")
    assert (
        used.status == "pass" and f"fraud: {ANSWERED} requests in the last 7 days" in used.outcome.evidence[0]
    )
    later = finding(served, "resources.idle", now=utcnow() + timedelta(days=8))  # a week on, nobody called
    assert later.status == "fail" and later.outcome.refs == ("endpoint:fraud",)
    assert later.outcome.evidence == ("fraud: 0 requests in the last 7 days",)


def test_a_new_endpoint_is_not_idle_yet_and_nothing_deployed_is_not_applicable(tmp_path: Path) -> None:
    project = fraud_project(tmp_path, deploy=False)
    try:
        assert finding(project, "resources.idle").status == "n/a"
        assert finding(project, "resources.retention").status == "n/a"  # nothing logged
        project.deploy("fraud", "fraud", version=1)
        young = finding(project, "resources.idle")
        assert young.status == "pass" and "live only since" in young.outcome.evidence[0]
    finally:
        project.close()


def test_a_growing_prediction_log_without_retention_fails_until_one_is_set(served: Project) -> None:
    forever = finding(served, "resources.retention")
    assert forever.status == "fail" and forever.weight == "low"
    assert "setting:retention.prediction_log_days" in forever.outcome.refs
    assert f"{ANSWERED} requests logged in 30 days" in forever.outcome.evidence[0]
    kept = reopen(served, retention={"prediction_log_days": 30})
    try:
        assert finding(kept, "resources.retention").status == "pass"
    finally:
        kept.close()
        reopen(served, retention=None).close()


def test_a_dataset_that_quarantines_rows_without_quarantine_days_fails_until_they_are_set(
    tmp_path: Path,
) -> None:
    project = Project.open(tmp_path, env={})
    try:
        assert finding(project, "resources.retention").status == "n/a"
        source = tmp_path / "scores.csv"
        source.write_text("id,amount\n1,10.5\n2,-3\n3,7\n")  # amount -3 breaks min=0: quarantined
        project.data.ingest(
            source, Dataset("scores", columns=[Column("id", "int64"), Column("amount", "float64", min=0)])
        )
        kept = finding(project, "resources.retention")
        assert kept.status == "fail" and kept.outcome.refs == (
            "dataset:scores",
            "setting:retention.quarantine_days",
        )
        assert kept.outcome.evidence == (
            "dataset scores: 1 quarantined rows, retention.quarantine_days = None",
        )
        trimmed = reopen(project, retention={"quarantine_days": 14})
        try:
            assert finding(trimmed, "resources.retention").status == "pass"
            # `mloop cost` lists the dataset's bytes, read through the data storage, with that retention.
            stored = next(s for s in trimmed.reviews.cost().storage if s.what == "dataset:scores")
            on_disk = sum(
                f.stat().st_size for f in Path(trimmed.data.folder("scores")).rglob("*") if f.is_file()
            )
            assert stored.bytes == on_disk > 0 and "quarantine kept 14 days" in stored.retention
        finally:
            trimmed.close()
    finally:
        project.close()
