"""The PyTorch flavour: saved with torch.export, loaded without the user's class, mloop's output semantics."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop import Project
from mloop.errors import MloopError, NotFound, SchemaError
from mloop.models import flavour_for, get_flavour
from mloop.models.flavours import ExportError
from mloop.models.signature import ColumnSpec, Signature

torch = pytest.importorskip("torch")
nn = torch.nn


class DigitsCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(image)).flatten(1))


class SensorLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, num_layers=2, batch_first=True)
        self.out = nn.Linear(8, 1)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(series)
        return self.out(hidden[:, -1])


class TwoTower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.user = nn.Linear(4, 3)
        self.item = nn.Linear(5, 3)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (self.user(user) * self.item(item)).sum(dim=1, keepdim=True)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.export refuses it
            return self.lin(x)
        return -self.lin(x)


def _digits(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[:n, None] / 16.0).astype(np.float32), digits.target[:n]


def _trained_cnn() -> DigitsCNN:
    torch.manual_seed(0)
    images, labels = _digits(128)
    model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(images)), torch.from_numpy(labels))
        loss.backward()
        optimiser.step()
    return model


def _linear(outputs: int, inputs: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(inputs, outputs))


X3 = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)


def _raw(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(module(torch.from_numpy(x)).numpy())


# ---- detection and semantics ----------------------------------------------------------------------------


def test_a_module_and_a_skorch_net_take_the_torch_flavour() -> None:
    from skorch import NeuralNetRegressor

    assert flavour_for(_linear(1)).name == "torch"
    net = NeuralNetRegressor(_linear(1), max_epochs=1, verbose=0)
    assert flavour_for(net).name == "torch"  # not sklearn, though it has fit and get_params


def test_multiclass_logits_become_the_class_probability_matrix() -> None:
    flavour = get_flavour("torch")
    module = _linear(3)
    made, frame = flavour.prepare(module, X3, task="classification")
    got = flavour.predict(made, frame)
    expected = torch.softmax(torch.from_numpy(_raw(module, X3)), dim=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert made.classes == [0, 1, 2]


@pytest.mark.parametrize("width", [1, 2])
def test_binary_logits_become_the_positive_class_probability(width: int) -> None:
    flavour = get_flavour("torch")
    module = _linear(width)
    made, frame = flavour.prepare(module, X3, task="classification", output="logits")
    got = flavour.predict(made, frame)
    raw = torch.from_numpy(_raw(module, X3))
    expected = torch.sigmoid(raw[:, 0]) if width == 1 else torch.softmax(raw, dim=1)[:, 1]
    assert got.shape == (6,)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)
    assert made.classes == [0, 1]


def test_probabilities_are_answered_as_given_and_values_are_one_dimensional() -> None:
    flavour = get_flavour("torch")
    probabilities = nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1))
    made, frame = flavour.prepare(probabilities, X3, task="classification", output="probabilities")
    np.testing.assert_allclose(flavour.predict(made, frame), _raw(probabilities, X3), rtol=1e-6)
    regressor = _linear(1)
    made, frame = flavour.prepare(regressor, X3)
    got = flavour.predict(made, frame)
    assert got.shape == (6,) and made.output == "values"
    np.testing.assert_allclose(got, _raw(regressor, X3)[:, 0], rtol=1e-6)


def test_prediction_leaves_a_training_module_in_training_mode() -> None:
    module = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 1))
    flavour = get_flavour("torch")
    made, frame = flavour.prepare(module, X3)
    first, second = flavour.predict(made, frame), flavour.predict(made, frame)
    np.testing.assert_array_equal(first, second)  # dropout off while predicting
    assert module.training


@pytest.mark.parametrize(
    ("criterion", "output"), [("NLLLoss", "probabilities"), ("CrossEntropyLoss", "logits")]
)
def test_a_skorch_classifier_answers_what_its_predict_proba_does(criterion: str, output: str) -> None:
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(3, 3)] + ([nn.Softmax(dim=-1)] if output == "probabilities" else [])
    y = np.array([0, 1, 2, 0, 1, 2])
    net = NeuralNetClassifier(
        nn.Sequential(*layers), criterion=getattr(nn, criterion), max_epochs=2, verbose=0, train_split=None
    ).fit(X3, y)
    flavour = get_flavour("torch")
    made, frame = flavour.prepare(net, X3)
    assert (made.output, made.task, made.classes) == (output, "classification", [0, 1, 2])
    np.testing.assert_allclose(flavour.predict(made, frame), net.predict_proba(X3), rtol=1e-5)


def test_a_skorch_regressor_answers_values() -> None:
    from skorch import NeuralNetRegressor

    y = X3.sum(axis=1, keepdims=True)
    net = NeuralNetRegressor(_linear(1), max_epochs=2, verbose=0, train_split=None).fit(X3, y)
    flavour = get_flavour("torch")
    made, frame = flavour.prepare(net, X3)
    assert made.task == "regression"
    np.testing.assert_allclose(flavour.predict(made, frame), net.predict(X3)[:, 0], rtol=1e-6)


def test_bad_task_or_output_is_refused_with_the_choices() -> None:
    flavour = get_flavour("torch")
    with pytest.raises(MloopError, match="task must be one of classification, regression"):
        flavour.prepare(_linear(1), X3, task="ranking")
    with pytest.raises(MloopError, match="output must be one of values, logits, probabilities"):
        flavour.prepare(_linear(1), X3, task="classification", output="scores")


# ---- registry -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_cnn_registers_with_a_tensor_signature_and_answers_any_batch(sqlite_project: Project) -> None:
    images, _ = _digits()
    cnn = _trained_cnn()
    version = sqlite_project.models.register("digits", cnn, input_example=images[:8], task="classification")
    assert version.signature is not None
    assert version.signature.inputs == [ColumnSpec("image", "float32", shape=(1, 8, 8))]
    assert [c.name for c in version.signature.outputs] == [str(i) for i in range(10)]
    loaded = sqlite_project.models.load("digits", version=version.version)
    expected = torch.softmax(torch.from_numpy(_raw(cnn, images[:20])), dim=1).numpy()
    frame = pd.DataFrame({"image": list(images[:20])})
    np.testing.assert_allclose(loaded.predict(frame), expected, rtol=1e-5, atol=1e-6)
    one = loaded.predict({"image": images[0].tolist()})  # one row, as nested lists from JSON
    np.testing.assert_allclose(one[0], expected[0], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_an_lstm_over_sequences_round_trips(sqlite_project: Project) -> None:
    torch.manual_seed(0)
    lstm = SensorLSTM()
    series = np.random.default_rng(1).standard_normal((4, 50, 3))  # float64: stored as float32
    version = sqlite_project.models.register("sensor", lstm, input_example=series)
    assert version.signature is not None
    assert version.signature.inputs == [ColumnSpec("series", "float32", shape=(50, 3))]
    loaded = sqlite_project.models.load("sensor")
    more = np.random.default_rng(2).standard_normal((7, 50, 3)).astype(np.float32)
    got = loaded.predict(pd.DataFrame({"series": list(more)}))
    np.testing.assert_allclose(got, _raw(lstm, more)[:, 0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_several_inputs_from_a_dict_or_a_frame_with_scalar_columns(sqlite_project: Project) -> None:
    torch.manual_seed(0)
    towers = TwoTower()
    rng = np.random.default_rng(3)
    users, items = (
        rng.standard_normal((5, 4)).astype(np.float32),
        rng.standard_normal((5, 5)).astype(np.float32),
    )
    version = sqlite_project.models.register("towers", towers, input_example={"item": items, "user": users})
    assert version.signature is not None
    assert {c.name: c.shape for c in version.signature.inputs} == {"item": (5,), "user": (4,)}
    with torch.no_grad():
        expected = towers(torch.from_numpy(users), torch.from_numpy(items)).numpy()[:, 0]
    loaded = sqlite_project.models.load("towers")
    got = loaded.predict(pd.DataFrame({"user": list(users), "item": list(items)}))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The user tower's four numbers as scalar columns instead: stacked in signature order.
    frame = pd.DataFrame({"item": list(items), **{f"u{i}": users[:, i] for i in range(4)}})
    version = sqlite_project.models.register("towers", towers, input_example=frame)
    assert version.signature is not None
    assert [c.name for c in version.signature.inputs] == ["item", "u0", "u1", "u2", "u3"]
    np.testing.assert_allclose(sqlite_project.models.load("towers").predict(frame), expected, rtol=1e-5)


@pytest.mark.slow
def test_a_signature_alone_is_enough_to_register(sqlite_project: Project) -> None:
    signature = Signature([ColumnSpec("input", "float32", shape=(3,))])
    version = sqlite_project.models.register("lin", _linear(1), signature=signature)
    assert version.signature == signature
    assert sqlite_project.models.load("lin").predict({"input": [1.0, 2.0, 3.0]}).shape == (1,)


def test_without_an_example_or_a_signature_the_error_says_what_to_pass(sqlite_project: Project) -> None:
    with pytest.raises(MloopError, match="pass input_example="):
        sqlite_project.models.register("lin", _linear(1))


def test_task_is_refused_for_other_flavours(sqlite_project: Project) -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(X3, X3[:, 0])
    with pytest.raises(MloopError, match="task= and output= say what a PyTorch module answers"):
        sqlite_project.models.register("lr", model, input_example=pd.DataFrame(X3), task="regression")
    with pytest.raises(SchemaError, match="input_example is a pandas DataFrame"):
        sqlite_project.models.register("lr", model, input_example=X3)


@pytest.mark.slow
def test_an_unexportable_model_is_refused_by_name_and_nothing_is_registered(sqlite_project: Project) -> None:
    blobs = sorted(p for p in sqlite_project.root.rglob("*") if p.is_file())
    with pytest.raises(ExportError) as raised:
        sqlite_project.models.register("branchy", Branchy(), input_example=X3)
    message = str(raised.value)
    assert "'branchy' was not registered" in message and "Branchy" in message
    assert "torch.export failed" in message and "torch.where or torch.cond" in message
    with pytest.raises(NotFound):
        sqlite_project.models.get("branchy")
    assert sorted(p for p in sqlite_project.root.rglob("*") if p.is_file()) == blobs


# ---- a fresh process, without the class ----------------------------------------------------------------


@pytest.mark.slow
def test_a_fresh_process_without_the_class_predicts_the_same(sqlite_project: Project, tmp_path: Path) -> None:
    images, _ = _digits(16)
    cnn = _trained_cnn()
    sqlite_project.models.register("digits", cnn, input_example=images[:4], task="classification")
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import importlib.util, numpy as np, pandas as pd
        from mloop import Project
        assert importlib.util.find_spec("tests") is None, "the test module must not be importable"
        project = Project.open({str(sqlite_project.root)!r}, env={{}})
        loaded = project.models.load("digits", version=1)
        images = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "got.npy")!r}, loaded.predict(pd.DataFrame({{"image": list(images)}})))
        print(type(loaded.model).__name__, loaded.model.device)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(mloop.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["TorchModel", "cpu"]
    expected = torch.softmax(torch.from_numpy(_raw(cnn, images)), dim=1).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_state_dict_is_saved_beside_the_program(tmp_path: Path) -> None:
    flavour = get_flavour("torch")
    module = _linear(2)
    made, _ = flavour.prepare(module, X3, task="classification")
    flavour.save(made, tmp_path)
    state = torch.load(tmp_path / "state_dict.pt", weights_only=True)
    again = _linear(2)
    again.load_state_dict(state)
    np.testing.assert_array_equal(_raw(again, X3), _raw(module, X3))
    loaded = flavour.load(tmp_path)
    (tmp_path / "again").mkdir()
    flavour.save(loaded, tmp_path / "again")  # a loaded model saves again without its class
    assert (tmp_path / "again" / "model.pt2").exists()


def test_a_request_of_tensor_columns_skips_pandas_with_the_same_answers_and_errors(project: Project) -> None:
    """The row predictor of a network takes nested lists straight to the model; what it declines (a bad
    shape, NaN) goes the general path, which names the problem as ever."""
    images, _ = _digits(8)
    model = DigitsCNN().eval()
    project.models.register("digits", model, input_example=images, task="classification")
    loaded = project.models.load("digits", version=1)
    columns = {"image": [x.tolist() for x in images[:3]]}
    fast = loaded.predict_columns(columns)
    general = loaded.predict(pd.DataFrame({"image": list(images[:3])}))
    np.testing.assert_allclose(fast, general, rtol=1e-6)
    for bad, got in (([[0.0] * 8] * 8, "shape (8, 8)"), (np.full((1, 8, 8), np.nan).tolist(), "NaN")):
        with pytest.raises(
            SchemaError, match=rf"signature of model 'digits' version 1(.|\n)*{re.escape(got)}"
        ):
            loaded.predict_columns({"image": [bad]})
