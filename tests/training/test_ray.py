"""Search and training on a real Ray cluster (a head and a worker node on loopback): the study in the
metadata database, a run recorded exactly as locally, a worker node killed mid-search, a cancelled
search, an unreachable head."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import optuna
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from mloop import Project
from mloop.config import ComputeSettings
from mloop.errors import ComputeUnavailable, ConfigError
from mloop.training.executors import open_executor
from tests.ray_cluster import RayCluster
from tests.services import free_port, unavailable
from tests.training.fraud import setup

pytestmark = pytest.mark.ray

FINISHED = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL}


class SlowClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A small LightGBM model whose fit first leaves a mark (its process id) and pauses: long enough to
    kill the node it runs on."""

    def __init__(
        self, num_leaves: int = 7, pause: float = 0.0, marks: str = "", random_state: int = 0
    ) -> None:
        self.num_leaves = num_leaves
        self.pause = pause
        self.marks = marks
        self.random_state = random_state

    def fit(self, x: Any, y: Any) -> SlowClassifier:
        if self.marks:  # which node, which process, when
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
            Path(self.marks, f"{node}-{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(self.pause)
        self.model_ = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=self.num_leaves, verbosity=-1,
                                              random_state=self.random_state).fit(x, y)  # fmt: skip
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x: Any) -> Any:
        return self.model_.predict_proba(x)

    def predict(self, x: Any) -> Any:
        return self.model_.predict(x)


@pytest.fixture
def on_ray(tmp_path: Path, ray_cluster: RayCluster) -> Project:
    """A project whose compute.executor is the test cluster (set as in mloop.yaml)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "mloop.yaml").write_text(f"compute:\n  executor: {ray_cluster.executor}\n  max_retries: 2\n")
    project = Project.open(root, env={})
    yield project
    project.close()


def study_of(project: Project, parent_run_id: str) -> optuna.Study:
    parent = project.runs.get(parent_run_id)
    storage = parent.tags["study_storage"]
    return optuna.load_study(study_name=parent.tags["study"], storage=storage)


def test_a_search_runs_its_trials_on_the_cluster_in_one_study_kept_beside_the_metadata(
    on_ray: Project, tmp_path: Path
) -> None:
    pipeline, _ = setup(on_ray, tmp_path, rows=3_000)
    result = pipeline.tune(on_ray, {"num_leaves": (4, 31), "learning_rate": (0.05, 0.3, "log")}, trials=4)

    parent = on_ray.runs.get(result.parent_run_id)
    assert parent.params["executor"] == "ray"
    assert [t["state"] for t in result.trials] == ["complete"] * 4
    study = study_of(on_ray, result.parent_run_id)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert study.best_trial.params == result.best_params
    # Optuna's tables live in a file of their own: its alembic_version would clash with mloop's.
    meta = Path(on_ray.settings.metadata_url.removeprefix("sqlite:///"))
    assert parent.tags["study_storage"] == f"sqlite:///{meta.with_name('mloop.optuna.db')}"
    reopened = Project.open(on_ray.root, env={})  # mloop's own migrations still find their revision
    reopened.close()


def test_a_training_run_on_the_cluster_is_recorded_as_a_local_one(on_ray: Project, tmp_path: Path) -> None:
    pipeline, _ = setup(on_ray, tmp_path, rows=3_000)
    remote = pipeline.run(on_ray)  # compute.executor: the cluster
    local = pipeline.run(on_ray, executor="inprocess")

    assert on_ray.runs.get(remote.id).tags["executor"] == "ray"
    assert on_ray.runs.get(local.id).tags["executor"] == "inprocess"
    assert on_ray.runs.get(remote.id).metrics == pytest.approx(on_ray.runs.get(local.id).metrics)
    assert set(on_ray.runs.get(remote.id).artifacts) == set(on_ray.runs.get(local.id).artifacts)
    remote_version = on_ray.models.get("fraud", version=remote.model_version.version)
    assert (
        remote_version.lineage["training_set_fingerprint"] == on_ray.runs.get(remote.id).tags["training_set"]
    )
    rows = pipeline.training_set(on_ray).test
    assert remote_version.signature is not None
    inputs = rows[remote_version.signature.names]
    a = on_ray.models.load("fraud", version=remote.model_version.version).predict(inputs)
    b = on_ray.models.load("fraud", version=local.model_version.version).predict(inputs)
    assert np.allclose(a, b)


def test_a_worker_node_killed_mid_search_loses_no_trial(
    on_ray: Project, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    pipeline, _ = setup(on_ray, tmp_path, rows=2_000)
    marks = tmp_path / "marks"
    marks.mkdir()
    pipeline.model = SlowClassifier(pause=3.0, marks=str(marks))

    import ray

    head = ray.get_runtime_context().get_node_id()  # this driver's node: the head

    def kill_when_the_worker_fits() -> None:
        # Wait for a fit on the worker node itself: on a busy machine the worker can take half a minute to
        # start its first process, while the head runs trial after trial (two marks from the head only).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and all(m.name.startswith(head) for m in marks.iterdir()):
            time.sleep(0.1)
        ray_cluster.kill_worker()

    killer = threading.Thread(target=kill_when_the_worker_fits)
    killer.start()
    try:
        result = pipeline.tune(on_ray, {"num_leaves": (4, 15)}, trials=4, jobs=2)
    finally:
        killer.join()
        ray_cluster.start_worker()

    study = study_of(on_ray, result.parent_run_id)
    assert len(study.trials) == 4 and {t.state for t in study.trials} <= FINISHED
    children = on_ray.runs.search(
        filter=f"tags.kind = 'trial' and attributes.parent_id = '{result.parent_run_id}'"
    )
    assert len(children) == 4
    states = {t["number"]: t["state"] for t in result.trials}
    for trial in study.trials:  # the study and the runs agree on every trial
        assert {"complete": "COMPLETE", "failed": "FAIL", "pruned": "PRUNED"}[
            states[trial.number]
        ] == trial.state.name
    # The trial on the killed node was either run again (a retry left a third mark in the first batch)
    # or recorded as failed, naming the lost node.
    failed = [t for t in result.trials if t["state"] == "failed"]
    assert len(list(marks.iterdir())) > 4 or any("lost on Ray" in t["error"] for t in failed)


def sleep_and_mark(folder: str) -> int:
    Path(folder, f"started-{os.getpid()}").touch()
    time.sleep(60)
    Path(folder, "finished").touch()
    return 0


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C as in a terminal. A process started in the background by a non-interactive shell (a CI
    script's ``cmd &``) inherits SIGINT ignored, and then ``interrupt_main`` does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_an_interrupted_map_cancels_its_tasks_on_the_cluster(ray_cluster: RayCluster, tmp_path: Path) -> None:
    pool = open_executor(ray_cluster.executor, jobs=1)

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("started-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        pool.map(sleep_and_mark, [str(tmp_path)])
    [started] = tmp_path.glob("started-*")
    pid = int(started.name.removeprefix("started-"))
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the cancelled task's worker process still runs"
    assert not (tmp_path / "finished").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("zombie") < 0


def test_an_unreachable_head_is_named_and_leaves_no_run(sqlite_project: Project, tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        unavailable("ray is not installed (pip install 'mloop[ray]')")
    pipeline, _ = setup(sqlite_project, tmp_path, rows=2_000)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    for executor in (f"ray:{address}", f"ray://{address}"):
        with pytest.raises(ComputeUnavailable, match=f"Ray head at {address}.*ray start --head"):
            pipeline.tune(sqlite_project, {"num_leaves": (4, 31)}, trials=2, executor=executor)
        with pytest.raises(ComputeUnavailable, match=f"Ray head at {address}"):
            pipeline.run(sqlite_project, executor=executor)
    assert sqlite_project.runs.search() == []


def test_resources_per_task_bound_how_many_tasks_run_at_once(ray_cluster: RayCluster) -> None:
    # 2 nodes of 1 CPU: 2 one-CPU tasks at once, 4 half-CPU ones; a two-CPU task fits no node.
    assert open_executor(ray_cluster.executor, jobs=None).parallel == 2
    halves = open_executor(ray_cluster.executor, jobs=None, compute=ComputeSettings(cpus_per_task=0.5))
    assert halves.parallel == 4 and halves.map(square, [3]) == [9]
    with pytest.raises(
        ConfigError, match=r"No node of the Ray cluster can hold one task.*largest node has 1 CPUs"
    ):
        open_executor(ray_cluster.executor, jobs=None, compute=ComputeSettings(cpus_per_task=2.0))


def square(n: int) -> int:
    return n * n


LOCAL = """
from mloop.config import ComputeSettings
from mloop.training.executors import open_executor
import ray
pool = open_executor("ray", jobs=None, compute=ComputeSettings(executor="ray", local_cpus=1))
print(pool.map(abs, [-2, -3]), pool.parallel, int(ray.cluster_resources()["CPU"]))
"""


@pytest.mark.slow
def test_executor_ray_starts_a_local_ray_with_the_cpus_it_is_given(tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        unavailable("ray is not installed (pip install 'mloop[ray]')")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
           "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", LOCAL], env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[2, 3] 1 1"
