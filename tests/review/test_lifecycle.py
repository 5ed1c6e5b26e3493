"""The lifecycle checks, each made to fail and pass on a real project."""

from __future__ import annotations

from pathlib import Path

from mloop import Project
from tests.review.conftest import finding, fraud_project, reopen


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
