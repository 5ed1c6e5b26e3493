"""Scheduled jobs in the loop: a batch-scoring job runs once per due time from the controller's tick, each run
an event with its figures; a failure is recorded and retried at the next tick, resuming."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop import Project
from mloop.errors import MalformedInput, MloopError
from mloop.loop.controller import LoopController
from mloop.serving.scoring import ScoringJob, read_scores
from tests.serving import pit
from tests.serving.pit import DAY, T0

FIELDS = pd.DataFrame({"field_id": [10, 11, 12], "customer_id": pd.Series([1, 2, 1], dtype="int64")})


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project.open(tmp_path, env={})
    pit.build(project, tmp_path)
    FIELDS.to_parquet(tmp_path / "fields.parquet", index=False)
    yield project
    project.close()


def _at(day: int, hour: int) -> datetime:
    return T0 + day * DAY + timedelta(hours=hour)


def test_a_scoring_job_runs_once_per_due_time_and_records_it(project: Project) -> None:
    job = ScoringJob(
        "daily", "pit:1", project.root / "fields.parquet", project.root / "preds", cron="0 4 * * *"
    )
    controller = LoopController(project, [], jobs=[job])
    first = controller.tick(_at(2, 5))  # 05:00 on day 2: the 04:00 run is due
    assert [d["decision"] for d in first] == ["job_run"] and first[0]["rows"] == 3
    assert controller.tick(_at(2, 5) + timedelta(minutes=30))[0]["decision"] == "job_waiting"
    assert controller.tick(_at(3, 3))[0]["decision"] == "job_waiting"  # day 3's run is at 04:00
    assert controller.tick(_at(5, 4))[0]["decision"] == "job_run"  # days 3 and 4 missed: one run, for day 5
    events = project.loop.job_events("daily")
    assert [e["action"] for e in events] == ["loop.job_run", "loop.job_run"]
    assert [e["due"] for e in events] == [_at(2, 4).isoformat(), _at(5, 4).isoformat()]
    assert all(e["rows"] == 3 and e["version"] == 1 and e["seconds"] >= 0 for e in events)
    scored = read_scores(project.root / "preds").to_pandas()
    # Each field scored as of its run's due time: customer 1 holds 1.0 on day 2 and 100.0 from day 3.
    assert sorted(scored["date"].unique()) == ["2026-02-03", "2026-02-06"]
    for date, seen in (("2026-02-03", [1.0, 5.0, 1.0]), ("2026-02-06", [100.0, 5.0, 100.0])):
        day = scored[scored["date"] == date].sort_values("field_id")
        np.testing.assert_allclose(day["prediction"], [pit.expected(v) for v in seen])
    assert (scored["features_as_of"] == scored["ts"]).all() and set(scored["model_version"]) == {1}


def test_a_failed_run_is_recorded_and_retried_at_the_next_tick(project: Project) -> None:
    calls: list[datetime] = []

    def fields(due: datetime) -> pd.DataFrame:
        calls.append(due)
        if len(calls) == 1:
            raise OSError("the field database is down")
        return FIELDS

    job = ScoringJob("daily", "pit:1", fields, project.root / "preds", cron="0 4 * * *")
    controller = LoopController(project, [], jobs=[job])
    failed = controller.tick(_at(2, 5))
    assert failed[0]["decision"] == "job_failed" and "field database is down" in failed[0]["reason"]
    retried = controller.tick(_at(2, 6))
    assert retried[0]["decision"] == "job_run" and retried[0]["rows"] == 3
    assert calls == [_at(2, 4), _at(2, 4)]  # the retry is for the same due time
    assert [e["action"] for e in project.loop.job_events("daily")] == ["loop.job_failed", "loop.job_run"]
    assert len(read_scores(project.root / "preds")) == 3


def test_jobs_are_checked_when_made(project: Project) -> None:
    with pytest.raises(MalformedInput, match="cron|minute"):
        ScoringJob("daily", "pit:1", "fields.parquet", "preds", cron="0 25 * * *")
    with pytest.raises(MalformedInput, match="letters, digits"):
        ScoringJob("daily yield/*", "pit:1", "fields.parquet", "preds")
    job = ScoringJob("daily", "pit:1", "fields.parquet", "preds")
    with pytest.raises(MloopError, match="distinct names"):
        LoopController(project, [], jobs=[job, job])


def test_jobs_declared_in_mloop_yaml_run_from_mloop_loop_tick(project: Project) -> None:
    from typer.testing import CliRunner

    from mloop.cli import _state
    from mloop.cli.main import app
    from mloop.errors import ConfigError
    from mloop.serving.scoring.scheduled import jobs_from_settings

    FIELDS.assign(ts=_at(2, 5)).to_parquet(project.root / "asof.parquet", index=False)  # the fixture's data
    spec = {
        "name": "daily",
        "target": "pit:1",
        "input": "asof.parquet",
        "output": "preds",
        "cron": "* * * * *",
    }
    (job,) = jobs_from_settings([spec], project.root)
    assert job.input == project.root / "asof.parquet" and job.output == project.root / "preds"
    (project.root / "mloop.yaml").write_text(f"loop:\n  jobs:\n  - {spec}\n".replace("'", '"'))
    try:
        done = CliRunner().invoke(app, ["--project", str(project.root), "loop", "tick", "--json"])
    finally:
        _state.close()  # the CLI keeps its project open for the process: a later CLI call would act on it
    assert done.exit_code == 0, done.output
    assert '"job_run"' in done.output and len(read_scores(project.root / "preds")) == 3
    for bad, says in (({**spec, "every": "day"}, "unknown option"), ({"name": "x"}, "needs target, input"),
                      ({**spec, "cron": "61 * * * *"}, "loop.jobs entry 1")):  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            jobs_from_settings([bad], project.root)
