"""Run tracking: lifecycle, buffered metrics (nothing lost on exceptions, at exit, under threads, when the
database fails), params, tags, artifacts, environment and permissions. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mloop import Project
from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.security.actor import Actor
from mloop.security.roles import Grant
from mloop.store.schema import LatestMetricRow, MetricRow
from mloop.training import environment, metric_log
from mloop.training.tracking import Run

examples = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def stored_points(project: Project, run_id: str, key: str | None = None) -> int:
    with project.store.read() as session:
        query = select(func.count()).select_from(MetricRow).where(MetricRow.run_id == run_id)
        if key is not None:
            query = query.where(MetricRow.key == key)
        return int(session.scalar(query) or 0)


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b) or a == b == 0


# ---- lifecycle -------------------------------------------------------------------------------------------


def test_a_run_records_params_metrics_tags_artifacts_and_its_end(project: Project, tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG fake")
    with project.run(
        "fraud", params={"num_leaves": 31, "lr": 0.05, "objective": "binary"}, tags={"team": "risk"}
    ) as run:
        assert run.status == "running" and run.experiment == "fraud"
        run.log_param("seed", 7)
        run.log_params({"num_leaves": 31})  # the same value again: fine
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1))
        run.log_metrics({"auc": 0.91, "f1": 0.5}, step=3)
        digest = run.log_artifact(plot)
        report = run.log_artifact(b'{"ok": true}', "reports/eval.json")
        run.set_tag("stage", "tuned")
    assert run.status == "finished"

    info = project.runs.get(run.id)
    assert info.status == "finished" and info.error is None
    assert info.started_at <= info.ended_at  # type: ignore[operator]
    assert info.params == {"lr": "0.05", "num_leaves": "31", "objective": "binary", "seed": "7"}
    assert info.info["param_values"] == {"lr": 0.05, "num_leaves": 31, "objective": "binary", "seed": 7}
    assert info.tags == {"team": "risk", "stage": "tuned"}
    assert info.metrics == {"loss": 0.01, "auc": 0.91, "f1": 0.5}
    assert info.artifacts["plot.png"] == {"digest": digest, "size": plot.stat().st_size}
    assert project.runs.artifact(run.id, "plot.png") == plot.read_bytes()
    assert project.runs.artifact(run.id, "reports/eval.json") == b'{"ok": true}'
    assert project.artifacts.get_bytes(report) == b'{"ok": true}'
    assert info.info["metric_points"] == 102
    assert info.info["wall_seconds"] >= 0 and info.info["cpu_seconds"] >= 0
    assert info.info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info.info["host"] and "numpy" in info.info["packages"] and "mloop" in info.info["packages"]

    history = project.runs.metric_history(run.id, "loss")
    assert [s for s, _, _ in history] == list(range(100))
    assert [v for _, _, v in history] == [1 / (s + 1) for s in range(100)]
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(history))

    actions = [
        (e.action, e.payload.get("run")) for e in project.audit.events() if e.action.startswith("runs.")
    ]
    assert actions[0] == ("runs.start", run.id) and actions[-1] == ("runs.end", run.id)
    assert {a for a, _ in actions} == {
        "runs.start",
        "runs.log_params",
        "runs.log_artifact",
        "runs.set_tags",
        "runs.end",
    }
    assert [e.name for e in project.runs.experiments()] == ["fraud"]
    assert project.runs.get(run.id[:8]).id == run.id  # a unique prefix will do


def test_a_failing_body_marks_the_run_failed_and_reraises(project: Project) -> None:
    with pytest.raises(ZeroDivisionError), project.run("fraud") as run:
        run.log_metric("loss", 0.5)
        1 / 0  # noqa: B018
    info = project.runs.get(run.id)
    assert info.status == "failed"
    assert info.error == "ZeroDivisionError: division by zero"
    assert info.info["error_type"] == "builtins.ZeroDivisionError"
    assert "1 / 0" in info.info["traceback"]
    assert info.metrics == {"loss": 0.5} and info.ended_at is not None
    ended = [e for e in project.audit.events() if e.action == "runs.end"]
    assert ended[-1].payload == {"run": run.id, "status": "failed", "error": "ZeroDivisionError"}


def test_ten_thousand_points_survive_an_exception_and_the_latest_is_right(project: Project) -> None:
    with pytest.raises(RuntimeError, match="diverged"), project.run("fraud") as run:
        for step in range(10_000):
            run.log_metric("loss", 10_000.0 - step, step=step)
        run.log_metric("loss", -1.0, step=5_000)  # an older step logged late: not the latest
        raise RuntimeError("diverged")
    assert stored_points(project, run.id) == 10_001
    info = project.runs.get(run.id)
    assert info.status == "failed" and info.metrics == {"loss": 1.0}
    with project.store.read() as session:
        latest = session.scalar(select(LatestMetricRow).where(LatestMetricRow.run_id == run.id))
    assert latest is not None and (latest.key, latest.step, latest.value) == ("loss", 9_999, 1.0)


def test_latest_is_the_highest_step_then_the_newest(project: Project) -> None:
    with project.run("fraud") as run:
        run.log_metric("acc", 0.1, step=5)
        run.log_metric("acc", 0.2, step=3)
        run.log_metric("acc", 0.3, step=5)  # same step, logged later: wins
        run.flush()
        run.log_metric("acc", 0.4, step=4)  # a later batch with a lower step does not replace it
    assert project.runs.get(run.id).metrics == {"acc": 0.3}
    assert [(s, v) for s, _, v in project.runs.metric_history(run.id, "acc")] == [
        (3, 0.2),
        (4, 0.4),
        (5, 0.1),
        (5, 0.3),
    ]


def test_steps_count_per_key_when_left_out(sqlite_project: Project) -> None:
    with sqlite_project.run("fraud") as run:
        for _ in range(3):
            run.log_metrics({"a": 1.0, "b": 2.0})
        run.log_metric("a", 9.0, step=100)
        run.log_metric("a", 10.0)  # the fourth "a" without a step
    steps = [s for s, _, _ in sqlite_project.runs.metric_history(run.id, "a")]
    assert steps == [0, 1, 2, 3, 100]
    assert [s for s, _, _ in sqlite_project.runs.metric_history(run.id, "b")] == [0, 1, 2]


@examples
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40))
def test_every_float_round_trips_exactly(project: Project, values: list[float]) -> None:
    # NaN is stored as NULL and read back as NaN; infinities and every finite float bit for bit.
    run = project.runs.start("floats")
    for i, value in enumerate(values):
        run.log_metric("x", value, step=i)
    run.end()
    history = project.runs.metric_history(run.id, "x")
    assert len(history) == len(values)
    assert all(same_float(got, want) for (_, _, got), want in zip(history, values, strict=True))
    assert same_float(project.runs.get(run.id).metrics["x"], values[-1])


def test_nan_is_kept_and_matches_no_comparison(project: Project) -> None:
    with project.run("fraud") as run:
        run.log_metric("loss", float("nan"))
        run.log_metric("auc", float("inf"))
    info = project.runs.get(run.id)
    assert math.isnan(info.metrics["loss"]) and info.metrics["auc"] == math.inf
    assert project.runs.search("fraud", "metrics.loss > 0 or metrics.loss <= 0 or metrics.loss != 1") == []
    assert [r.id for r in project.runs.search("fraud", "metrics.auc > 1e300")] == [run.id]
    assert info.to_dict()["metrics"] == {"auc": "inf", "loss": "nan"}


def test_threads_logging_at_once_lose_nothing(project: Project) -> None:
    run = project.runs.start("fraud")
    per_thread, threads = 3_000, 6

    def work(n: int) -> None:
        for i in range(per_thread):
            run.log_metric(f"own_{n}", float(i), step=i)
            run.log_metric("shared", float(n))  # steps numbered across threads, never twice

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run.end()
    assert stored_points(project, run.id) == 2 * per_thread * threads
    shared = project.runs.metric_history(run.id, "shared")
    assert sorted(s for s, _, _ in shared) == list(range(per_thread * threads))
    for n in range(threads):
        assert [v for _, _, v in project.runs.metric_history(run.id, f"own_{n}")] == [
            float(i) for i in range(per_thread)
        ]


def test_points_logged_while_the_database_fails_are_written_later(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = metric_log.write_points
    failures = {"left": 2}

    def flaky(*args: object, **kwargs: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(metric_log, "write_points", flaky)
    run = sqlite_project.runs.start("fraud")
    for i in range(500):
        run.log_metric("loss", float(i))
    with pytest.raises(OSError, match="disk full"):
        run.flush()
    for i in range(500):
        run.log_metric("loss", float(i + 500))
    with pytest.raises(OSError, match="disk full"):
        run.flush()
    run.end()
    assert [v for _, _, v in sqlite_project.runs.metric_history(run.id, "loss")] == [
        float(i) for i in range(1000)
    ]
    assert [s for s, _, _ in sqlite_project.runs.metric_history(run.id, "loss")] == list(range(1000))


def test_a_backlog_makes_producers_write_it_themselves(sqlite_project: Project) -> None:
    run = sqlite_project.runs.start("fraud")
    run._buffer.max_pending = 100
    run.log_metric("loss", 0.0)
    for i in range(300):
        run.log_metric("loss", float(i))
    run._backlogged()  # what the writer does when more than max_pending points wait
    run.log_metric("loss", 1.0)  # takes the slow path: writes the backlog first
    assert run._buffer.pending() <= 1
    run.end()
    assert stored_points(sqlite_project, run.id) == 302


@pytest.mark.slow
def test_a_run_never_ended_is_flushed_and_ended_at_exit(sqlite_project: Project, tmp_path: Path) -> None:
    root = sqlite_project.root
    script = textwrap.dedent(
        f"""
        import sys
        from mloop import Project
        project = Project.open({str(root)!r}, env={{}})
        run = project.runs.start("exit")
        for i in range(5_000):
            run.log_metric("loss", float(i))
        print(run.id)
        if sys.argv[1] == "crash":
            raise ValueError("bad batch")
        """
    )
    ids = {}
    for how in ("clean", "crash"):
        done = subprocess.run(
            [sys.executable, "-c", script, how], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == (0 if how == "clean" else 1), done.stderr
        ids[how] = done.stdout.strip()
    clean, crash = sqlite_project.runs.get(ids["clean"]), sqlite_project.runs.get(ids["crash"])
    assert clean.status == "finished" and clean.metrics == {"loss": 4999.0}
    assert crash.status == "failed" and crash.error == "ValueError: bad batch"
    assert stored_points(sqlite_project, clean.id) == stored_points(sqlite_project, crash.id) == 5_000


def test_closing_the_project_ends_its_open_runs(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    with Project.open(root, env={}) as project:
        run = project.runs.start("fraud")
        run.log_metric("loss", 0.25)
    assert run.status == "finished"
    with Project.open(root, env={}) as project:
        assert project.runs.get(run.id).metrics == {"loss": 0.25}


def test_child_runs_point_at_their_parent(project: Project) -> None:
    with project.run("tune") as parent:
        with project.run("tune", params={"lr": 0.1}, parent=parent) as child:
            child.log_metric("auc", 0.8)
        other = project.runs.start("tune", parent=parent.id, name="trial-2")
        other.end()
    assert project.runs.get(child.id).parent_id == parent.id
    assert project.runs.get(other.id).name == "trial-2"
    children = project.runs.search("tune", f"attributes.parent_id = '{parent.id}'")
    assert {r.id for r in children} == {child.id, other.id}
    with pytest.raises(NotFound, match="Parent run 'nope'"):
        project.runs.start("tune", parent="nope")


# ---- validation ------------------------------------------------------------------------------------------


def test_what_cannot_be_logged_is_refused_with_the_fix(sqlite_project: Project) -> None:
    run = sqlite_project.runs.start("fraud", params={"lr": 0.1})
    with pytest.raises(MloopError, match="Param 'lr' of run .* is '0.1' already; params are set once"):
        run.log_param("lr", 0.2)
    with pytest.raises(MloopError, match="is 1,001 characters long; at most 1,000 fit"):
        run.log_param("notes", "x" * 1001)
    with pytest.raises(MloopError, match="The metric name 'a,b' is not valid"):
        run.log_metric("a,b", 1.0)
    with pytest.raises(MloopError, match="The param name '' is not valid"):
        run.log_params({"": 1})
    with pytest.raises(MloopError, match="must be a number, got str '0.9'"):
        run.log_metric("auc", "0.9")  # type: ignore[arg-type]
    with pytest.raises(MloopError, match="must be a whole number"):
        run.log_metric("auc", 0.9, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(MloopError, match="must be a whole number"):
        run.log_metric("auc", 0.9, step=2**60)
    with pytest.raises(MloopError, match="Name the artifact when logging bytes"):
        run.log_artifact(b"data")
    with pytest.raises(MloopError, match="no '..'"):
        run.log_artifact(b"data", "../escape")
    run.end()
    with pytest.raises(MloopError, match="is finished; metrics can only be logged while it runs"):
        run.log_metric("auc", 0.9)
    with pytest.raises(MloopError, match="is finished; params can only be logged"):
        run.log_param("seed", 1)
    run.set_tag("reviewed", True)  # tags may still change
    assert sqlite_project.runs.get(run.id).tags == {"reviewed": "true"}
    assert sqlite_project.runs.get(run.id).params == {"lr": "0.1"}


def test_metric_values_can_be_numpy_and_ints(sqlite_project: Project) -> None:
    import numpy as np

    with sqlite_project.run("fraud") as run:
        run.log_metric("a", np.float32(0.5), step=np.int64(2))  # type: ignore[arg-type]
        run.log_metric("b", 3)
        run.log_metric("c", True)
    assert sqlite_project.runs.get(run.id).metrics == {"a": 0.5, "b": 3.0, "c": 1.0}


# ---- environment -----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_runs_record_the_git_commit_and_whether_the_tree_is_dirty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": os.devnull}  # fmt: skip

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "v1")
    commit = git("rev-parse", "HEAD").strip()
    monkeypatch.chdir(repo)
    with Project.open(repo, env={}) as project:
        (repo / "notes.txt").write_text("untracked files do not count")
        clean = project.runs.start("fraud")
        clean.end()
        (repo / "train.py").write_text("print('v2')\n")
        dirty = project.runs.start("fraud")
        dirty.end()
        assert project.runs.get(clean.id).info["git"] == {"commit": commit, "branch": "main", "dirty": False}
        assert project.runs.get(dirty.id).info["git"] == {"commit": commit, "branch": "main", "dirty": True}

    assert environment.git_state(tmp_path) is None  # not a repository
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert environment.git_state(repo) is None  # no git at all


def test_package_versions_are_read_without_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "lightgbm", raising=False)
    versions = environment.package_versions(("numpy", "lightgbm", "surely-not-installed-pkg"))
    assert set(versions) == {"numpy", "lightgbm"} and "lightgbm" not in sys.modules


# ---- permissions -----------------------------------------------------------------------------------------


def test_an_auditor_reads_runs_but_cannot_start_one(project: Project) -> None:
    with project.run("fraud") as run:
        run.log_metric("auc", 0.9)
    project.users.add("ann", ["auditor"])
    auditor = project.as_actor(Actor("ann", "user", (Grant("auditor"),)))
    with pytest.raises(
        PermissionDenied, match="ann \\(roles: auditor\\) may not runs.write on experiment:fraud"
    ):
        auditor.run("fraud")
    assert [r.id for r in auditor.runs.search("fraud", "metrics.auc > 0.5")] == [run.id]
    scoped = project.as_actor(Actor("sam", "user", (Grant("data_scientist", "experiment:churn*"),)))
    with pytest.raises(PermissionDenied):
        scoped.runs.start("fraud")
    with scoped.run("churn-v2") as allowed:
        pass
    assert allowed.status == "finished"
    with pytest.raises(PermissionDenied):
        scoped.runs.get(run.id)


def test_run_is_importable_from_the_package() -> None:
    import mloop.training as training

    assert training.Run is Run and "RunService" in training.__all__
