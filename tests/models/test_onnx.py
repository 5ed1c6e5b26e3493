"""ONNX export: converted, checked against the original, stored beside the version, served by ONNX Runtime."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.errors import MloopError, NotFound
from mloop.models import get_flavour
from mloop.models.export import check_parity
from mloop.models.flavours import ExportError
from mloop.models.onnx import OnnxFlavour
from mloop.models.signature import infer
from tests.models.cases import case

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 8 * 8, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(image)).flatten(1))


class SequenceLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(2, 6, batch_first=True)
        self.out = nn.Linear(6, 1)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(series)
        return self.out(hidden[:, -1])


IMAGES = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)


def _blobs(project: Project) -> list[Any]:
    return sorted(p for p in project.root.rglob("*") if p.is_file() and "artifacts" in p.parts)


def test_parity_refuses_with_the_largest_difference() -> None:
    want = np.array([0.5, 0.25, 0.125])
    assert check_parity(want, want * (1 + 1e-5), "m", rtol=1e-3, atol=1e-6)["max_rel_diff"] < 1e-3
    with pytest.raises(ExportError, match=r"differ by up to 0\.05 \(relative 0\.2; allowed rtol 0\.001\)"):
        check_parity(want, want + np.array([0, 0.05, 0]), "m", rtol=1e-3, atol=1e-6)
    with pytest.raises(ExportError, match=r"shape \(3, 1\), the original with \(3,\)"):
        check_parity(want, want[:, None], "m", rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_a_cnn_exports_and_serves_the_same_answers_under_onnx_runtime(sqlite_project: Project) -> None:
    models = sqlite_project.models
    models.register("digits", SmallCNN(), input_example=IMAGES, task="classification")
    made = models.export("digits", 1, format="onnx")
    parity = made.details["parity"]
    assert parity["rows"] == 6 and parity["max_abs_diff"] < 1e-5 and parity["rtol"] == 1e-3
    assert [e.format for e in models.exports("digits", 1)] == ["onnx"]
    assert models.export("digits", 1).artifact == made.artifact  # a second export is the first
    onnx = models.load("digits", version=1, runtime="onnx")
    native = models.load("digits", version=1)
    assert (onnx.flavour.name, onnx.info.flavour, onnx.info.artifact) == ("onnx", "onnx", made.artifact)
    many = np.random.default_rng(1).random((13, 1, 8, 8)).astype(np.float32)  # another batch size
    frame = pd.DataFrame({"image": list(many)})
    got, want = onnx.predict(frame), native.predict(frame)
    assert got.shape == (13, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(onnx.predict({"image": many[0].tolist()})[0], want[0], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_an_lstm_exports_with_its_sequence_input(sqlite_project: Project) -> None:
    series = np.random.default_rng(2).standard_normal((4, 20, 2)).astype(np.float32)
    sqlite_project.models.register("sensor", SequenceLSTM(), input_example=series)
    sqlite_project.models.export("sensor", 1)
    frame = pd.DataFrame({"series": list(np.random.default_rng(3).standard_normal((5, 20, 2)))})
    got = sqlite_project.models.load("sensor", runtime="onnx").predict(frame)
    np.testing.assert_allclose(got, sqlite_project.models.load("sensor").predict(frame), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_conversion_that_answers_differently_is_refused_and_nothing_is_stored(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_project.models.register("digits", SmallCNN(), input_example=IMAGES, task="classification")
    before = _blobs(sqlite_project)
    real = OnnxFlavour.predict

    def drifting(self: OnnxFlavour, model: Any, frame: pd.DataFrame) -> np.ndarray:
        return real(self, model, frame) * 1.01  # as if ONNX Runtime computed an operator differently

    monkeypatch.setattr(OnnxFlavour, "predict", drifting)
    with pytest.raises(ExportError) as raised:
        sqlite_project.models.export("digits", 1)
    assert "'digits' version 1 was not exported" in str(raised.value)
    assert "differ by up to" in str(raised.value) and "allowed rtol 0.001" in str(raised.value)
    assert sqlite_project.models.exports("digits", 1) == []
    assert _blobs(sqlite_project) == before
    with pytest.raises(NotFound, match="has no onnx export; create it with `mloop models export digits:1"):
        sqlite_project.models.load("digits", version=1, runtime="onnx")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["sklearn-pipeline", "sklearn-regressor", "lgbm-classifier", "lgbm-multiclass", "lgbm-regressor"]
)
def test_scikit_learn_and_lightgbm_models_export_with_their_converters(
    sqlite_project: Project, name: str
) -> None:
    item = case(name)
    sqlite_project.models.register("m", item.model, input_example=item.frame)
    made = sqlite_project.models.export("m", 1)
    assert made.details["converter"].startswith("skl2onnx" if name.startswith("sklearn") else "onnxmltools")
    frame = item.frame.astype("float32")
    got = sqlite_project.models.load("m", runtime="onnx").predict(frame)
    want = sqlite_project.models.load("m").predict(frame)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


class HomeMadeClassifier(LogisticRegression):
    """A subclass skl2onnx has no converter registered for."""


def test_a_model_without_a_converter_is_refused_by_class(sqlite_project: Project) -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    sqlite_project.models.register("home", HomeMadeClassifier().fit(frame, [0, 0, 1, 1]), input_example=frame)
    with pytest.raises(ExportError, match=r"No ONNX converter takes the .*HomeMadeClassifier"):
        sqlite_project.models.export("home", 1)
    assert sqlite_project.models.exports("home", 1) == []


def test_text_columns_are_refused_with_their_names(sqlite_project: Project) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"country": ["DE", "FR", "DE", "FR"], "amount": [1.0, 2.0, 3.0, 4.0]})
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["country"]), remainder="passthrough"), LogisticRegression()
    ).fit(frame, [0, 1, 0, 1])
    sqlite_project.models.register("text", model, input_example=frame)
    with pytest.raises(ExportError, match=r"cannot feed \(country: only numeric scalar columns"):
        sqlite_project.models.export("text", 1)


def test_unknown_formats_and_runtimes_list_the_choices(sqlite_project: Project) -> None:
    item = case("sklearn-regressor")
    sqlite_project.models.register("m", item.model, input_example=item.frame)
    with pytest.raises(MloopError, match="Export format 'tflite' is not one of: onnx"):
        sqlite_project.models.export("m", 1, format="tflite")
    with pytest.raises(MloopError, match="Runtime 'tensorrt' is not one of: native, onnx"):
        sqlite_project.models.load("m", runtime="tensorrt")


def test_the_onnx_flavour_round_trips(tmp_path: Any) -> None:
    from mloop.models.export import to_onnx

    item = case("lgbm-multiclass")
    flavour = get_flavour("lightgbm")
    signature = infer(item.frame)
    converted = to_onnx(flavour, item.model, signature)
    onnx = get_flavour("onnx")
    onnx.save(converted, tmp_path)
    again = onnx.load(tmp_path)
    frame = item.frame.astype("float32")
    np.testing.assert_array_equal(onnx.predict(again, frame), onnx.predict(converted, frame))
    assert onnx.info(again)["classes"] == list(item.model.classes_)
