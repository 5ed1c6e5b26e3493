"""The extensibility checks, each made to fail and pass on a real project."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd

from mloop import Project
from mloop._time import utcnow
from tests.review.conftest import finding, fraud_project


def test_a_version_registered_without_a_signature_fails_until_one_with_a_signature_serves(
    tmp_path: Path,
) -> None:
    project = Project.open(tmp_path, env={})
    try:
        assert finding(project, "extensibility.signatures").status == "n/a"
        rng = np.random.default_rng(0)
        x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
        model = lightgbm.LGBMClassifier(n_estimators=5, verbosity=-1).fit(x, (x["a"] > 0).astype(int))
        with project.run("bare") as run:
            run.register(model, "bare")  # no input example: nothing to infer a signature from
            run.register(model, "bare", input_example=x.head())
        project.deploy("plain", "bare", version=1)
        bare = finding(project, "extensibility.signatures")
        assert bare.status == "fail" and bare.outcome.refs == ("model:bare/1",)
        assert "has no signature" in bare.outcome.evidence[0]
        project.deploy("plain", "bare", version=2)
        typed = finding(project, "extensibility.signatures")
        assert typed.status == "pass" and "2 typed inputs" in typed.outcome.evidence[0]
    finally:
        project.close()


def test_experimentation_is_tracked_when_runs_were_recorded_in_the_last_90_days(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "fraud").mkdir()
    empty = Project.open(tmp_path / "empty", env={})
    try:
        assert finding(empty, "extensibility.experiments").status == "fail"
    finally:
        empty.close()
    project = fraud_project(tmp_path / "fraud", deploy=False)
    try:
        now = finding(project, "extensibility.experiments")
        assert now.status == "pass" and now.outcome.evidence == ("experiment fraud: 2 run(s) in 90 days",)
        later = finding(project, "extensibility.experiments", now=utcnow() + timedelta(days=91))
        assert later.status == "warn" and "no run in 90 days" in later.outcome.summary
    finally:
        project.close()
