"""Torch models trained as scikit-learn estimators with mloop's tracking: per-epoch metrics, checkpoints
as run artifacts, resume after a killed process, early stopping, seeds."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from mloop import Project  # noqa: E402
from mloop.errors import MloopError, SchemaError  # noqa: E402
from mloop.training.run import active_run  # noqa: E402
from mloop.training.torch import TorchClassifier, TorchRegressor, as_input  # noqa: E402
from tests.training.digits import arrays  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models train several times faster on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class MLP(torch.nn.Module):
    def __init__(self, hidden: int = 32, out: int = 10) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
        )
        self.head = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(image).flatten(1))


def weights(net: TorchClassifier | TorchRegressor) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.module_.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def small(**kwargs: object) -> TorchClassifier:
    settings: dict[str, object] = {"max_epochs": 4, "lr": 1e-2, "batch_size": 32, "seed": 0}
    return TorchClassifier(MLP, **(settings | kwargs))


@pytest.mark.slow
def test_an_mlp_and_a_cnn_learn_the_digits() -> None:
    x, y = arrays(700)
    mlp = small(max_epochs=12).fit(x[:500], y[:500])
    assert (mlp.predict(x[500:]) == y[500:]).mean() > 0.8
    images = pd.DataFrame({"image": list(x.reshape(-1, 1, 8, 8))})  # a tensor column, one array per row
    cnn = TorchClassifier(CNN, max_epochs=12, lr=1e-2, batch_size=32).fit(images[:500], y[:500])
    proba = cnn.predict_proba(images[500:])
    assert proba.shape == (200, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (cnn.predict(images[500:]) == y[500:]).mean() > 0.8
    assert isinstance(cnn.module_, CNN)
    probabilities = cnn.probability_module()(torch.from_numpy(x[500:510].reshape(-1, 1, 8, 8)))
    assert np.allclose(probabilities.detach().numpy(), proba[:10], atol=1e-6)


def test_labels_of_any_kind_come_back_from_predict() -> None:
    x, y = arrays(200)
    names = np.array([f"digit {v}" for v in y])
    net = small(max_epochs=2).fit(x, names)
    assert net.classes_.tolist() == sorted(set(names.tolist()))
    assert set(net.predict(x[:20])) <= set(names.tolist())
    assert net.predict_proba(x[:5]).shape == (5, 10)


def test_each_epoch_is_logged_with_its_step_and_checkpointed_on_the_run(sqlite_project: Project) -> None:
    x, y = arrays(200)
    with sqlite_project.run("digits") as run:
        assert active_run() is run
        net = small().fit(x, y)
    assert active_run() is None
    for key in ("train_loss", "valid_loss", "valid_acc"):
        history = sqlite_project.runs.metric_history(run.id, key)
        assert [step for step, _, _ in history] == [1, 2, 3, 4], key
    logged = [value for _, _, value in sqlite_project.runs.metric_history(run.id, "valid_loss")]
    assert logged == pytest.approx(list(net.history[:, "valid_loss"]))
    state = torch.load(
        io.BytesIO(sqlite_project.runs.artifact(run.id, "checkpoints/last.pt")), weights_only=True
    )
    assert state["epoch"] == 4 and state["complete"] is True
    assert same(state["module"], weights(net))


def test_the_same_seed_gives_the_same_weights_and_another_seed_others() -> None:
    x, y = arrays(200)
    first, second = small(max_epochs=2).fit(x, y), small(max_epochs=2).fit(x, y)
    assert same(weights(first), weights(second))
    assert not same(weights(first), weights(small(max_epochs=2, seed=1).fit(x, y)))


def test_early_stopping_stops_when_the_validation_loss_stops_improving() -> None:
    x, y = arrays(150)
    net = small(max_epochs=60, lr=0.05, early_stopping=2).fit(x, y)
    losses = list(net.history[:, "valid_loss"])
    assert len(losses) < 60
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best >= 2  # the last two epochs did not beat the best


def test_a_finished_training_is_not_resumed_but_started_over(tmp_path: Path) -> None:
    x, y = arrays(200)
    folder = str(tmp_path / "ckpt")
    fresh = weights(small(max_epochs=2).fit(x, y))
    net = small(max_epochs=2, checkpoint_dir=folder).fit(x, y)
    again = small(max_epochs=2, checkpoint_dir=folder).fit(x, y)
    assert same(weights(net), fresh) and same(weights(again), fresh)
    assert not hasattr(again, "resumed_from_")


_SCRIPT = """
import os, signal, sys
import torch
import mloop as ml
from skorch.callbacks import Callback
from mloop.training.torch import TorchClassifier
from tests.training.digits import arrays
from tests.training.test_torch import MLP

class Crash(Callback):  # kill -9 in the middle of epoch 3, after epoch 2's checkpoint
    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 3 and len(net.history[-1]["batches"]) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

torch.set_num_threads(1)  # as the test process trains its uninterrupted twin
root, mode = sys.argv[1], sys.argv[2]
project = ml.Project.open(root, env={})
net = TorchClassifier(MLP, max_epochs=5, lr=1e-2, batch_size=32, seed=7,
                      callbacks=[Crash()] if mode == "crash" else [])
run = project.run("digits") if mode == "crash" else project.runs.resume(sys.argv[3])
print(run.id, flush=True)
x, y = arrays(200)
with run:
    net.fit(x, y)
torch.save(net.module_.state_dict(), os.path.join(root, "resumed.pt"))
print(net.resumed_from_, flush=True)
"""


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_checkpoint_to_the_same_weights(
    sqlite_project: Project, tmp_path: Path
) -> None:
    x, y = arrays(200)
    uninterrupted = small(max_epochs=5, seed=7).fit(x, y)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    root = str(sqlite_project.root)

    crashed = subprocess.run([sys.executable, str(script), root, "crash"], capture_output=True, text=True,
                             timeout=120, env=env, cwd=ROOT)  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    run_id = crashed.stdout.split()[0]
    assert sqlite_project.runs.get(run_id).status == "running"  # nobody ended it
    state = torch.load(
        io.BytesIO(sqlite_project.runs.artifact(run_id, "checkpoints/last.pt")), weights_only=True
    )
    assert state["epoch"] == 2 and state["complete"] is False

    resumed = subprocess.run([sys.executable, str(script), root, "resume", run_id], capture_output=True,
                             text=True, timeout=120, env=env, cwd=ROOT)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == [run_id, "2"]  # the same run, continued after epoch 2
    assert same(torch.load(tmp_path / "project" / "resumed.pt", weights_only=True), weights(uninterrupted))
    info = sqlite_project.runs.get(run_id)
    assert info.status == "finished"
    steps = [step for step, _, _ in sqlite_project.runs.metric_history(run_id, "valid_loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5]


def test_only_a_crashed_or_failed_run_can_be_resumed(sqlite_project: Project) -> None:
    with sqlite_project.run("digits") as run, pytest.raises(MloopError, match="open in this process"):
        sqlite_project.runs.resume(run.id)
    with pytest.raises(MloopError, match="finished; only a run left running"):
        sqlite_project.runs.resume(run.id)


def test_dataframes_become_tensors_and_bad_columns_say_what_to_do() -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    stacked = as_input(pd.DataFrame(x, columns=["a", "b", "c"]))
    assert stacked.dtype == np.float32 and stacked.shape == (4, 3)
    both = as_input(pd.DataFrame({"image": list(np.zeros((4, 2, 2))), "age": [1, 2, 3, 4]}))
    assert both["image"].shape == (4, 2, 2) and both["age"].dtype == np.float32
    with pytest.raises(SchemaError, match="'city' holds .* Encode it as numbers"):
        as_input(pd.DataFrame({"city": ["a", "b"]}))
    with pytest.raises(SchemaError, match="'seq' holds arrays of different shapes"):
        as_input(pd.DataFrame({"seq": [np.zeros(3), np.zeros(4)]}))
    with pytest.raises(SchemaError, match="not one of the classes"):
        x8, y8 = arrays(100)
        small(max_epochs=1).fit(x8, y8 % 5, X_valid=x8[:10], y_valid=y8[:10] + 5)


def test_a_regressor_answers_one_value_per_row() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    y = x[:, :4].sum(axis=1)
    net = TorchRegressor(MLP, module__out=1, max_epochs=15, lr=1e-2, batch_size=32, seed=0).fit(
        x[:240], y[:240]
    )
    predicted = net.predict(x[240:])
    assert predicted.shape == (60,)
    assert np.corrcoef(predicted, y[240:])[0, 1] > 0.8
