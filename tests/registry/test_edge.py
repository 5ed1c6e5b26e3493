"""Edge packages: the standalone runner answers like the served model, checks its files, refuses bad input;
int8 quantization records its measured cost on the version."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from mloop import Project
from mloop.errors import MalformedInput
from mloop.models.edge import runner
from mloop.models.flavours import ExportError
from tests.registry.conftest import as_user

pytestmark = pytest.mark.slow  # a torch CNN registered and exported to ONNX: ~8 s for the module
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn

BANDS, SIZE = 4, 16
PRE = {"tile": {"mean": [0.1, 0.2, 0.3, 0.4], "std": [0.5, 1.0, 2.0, 4.0], "axis": 0}}
# Runs the runner with mloop made unimportable, so a stray import fails the test instead of passing quietly.
NO_MLOOP = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "mloop" or name.startswith("mloop."):
            raise ImportError("the edge runner must not import mloop")
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
import runner
code = runner.main(sys.argv[2:])
assert not any(m == "mloop" or m.startswith("mloop.") for m in sys.modules)
sys.exit(code)
"""


class TileCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(BANDS, 6, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(6 * 16, 2)

    def forward(self, tile: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(torch.relu(self.conv(tile))).flatten(1))


def _tiles(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, BANDS, SIZE, SIZE)).astype(np.float32)


def _raw(normalized: np.ndarray) -> np.ndarray:
    """What a sensor delivers: the tiles before the version's normalization."""
    std = np.array(PRE["tile"]["std"]).reshape(1, -1, 1, 1)
    return normalized * std + np.array(PRE["tile"]["mean"]).reshape(1, -1, 1, 1)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("edge")
    with Project.open(root, env={}) as opened:
        opened.models.register(
            "disease", TileCNN(), input_example=_tiles(8, 0), task="classification",
            lineage={"preprocessing": PRE},
        )  # fmt: skip
        yield opened


@pytest.fixture(scope="module")
def unpacked(project: Project) -> Path:
    made = project.models.package_edge("disease", 1, project.root / "disease.tar.gz")
    assert made.folder == "disease-1" and made.quantization is None
    assert made.manifest["served_parity"]["max_abs_diff"] < 1e-5
    with tarfile.open(made.path) as tar:
        tar.extractall(project.root / "unpacked", filter="data")
    return project.root / "unpacked" / "disease-1"


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-B", "-c", NO_MLOOP, str(folder), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_runner_answers_like_the_served_model_without_mloop(
    project: Project, unpacked: Path, tmp_path: Path
) -> None:
    tiles = _tiles(13, 1)
    served = project.models.load("disease", version=1).predict(pd.DataFrame({"tile": list(tiles)}))
    np.save(tmp_path / "tiles.npy", _raw(tiles))
    done = _run(unpacked, str(tmp_path / "tiles.npy"), "--out", str(tmp_path / "p.npy"))
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), served, rtol=0, atol=1e-5)
    rows = [{"tile": t.tolist()} for t in _raw(tiles[:3])]  # JSON rows, printed
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    printed = _run(unpacked, str(tmp_path / "rows.json"))
    assert printed.returncode == 0, printed.stderr
    answer_ = json.loads(printed.stdout)
    assert answer_["model"] == "disease:1"
    np.testing.assert_allclose(answer_["predictions"], served[:3], rtol=0, atol=1e-5)


def test_check_passes_and_a_changed_file_is_named(unpacked: Path, tmp_path: Path) -> None:
    done = _run(unpacked, "--check")
    assert done.returncode == 0 and json.loads(done.stdout)["check"]["rows"] == 8
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in unpacked.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-5] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    broken = _run(copy, "--check")
    assert broken.returncode == runner.BAD_PACKAGE
    assert "model.onnx does not match the package's manifest" in broken.stderr and "unpack" in broken.stderr
    (copy / "model.onnx").write_bytes((unpacked / "model.onnx").read_bytes())
    (copy / "preprocessing.json").unlink()
    assert "preprocessing.json is missing" in _run(copy, "--check").stderr


def test_a_tile_with_the_wrong_band_count_is_refused(unpacked: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, SIZE, SIZE)))
    done = _run(unpacked, str(tmp_path / "bad.npy"))
    assert done.returncode == runner.BAD_INPUT
    assert "shape (2, 3, 16, 16); the model takes (rows, 4 x 16 x 16)" in done.stderr
    assert "band count" in done.stderr


def test_int8_records_its_cost_on_the_version_and_checks_on_the_device(project: Project) -> None:
    tiles = _tiles(64, 2)
    labels = project.models.load("disease", version=1).predict(pd.DataFrame({"tile": list(tiles)})) >= 0.5
    made = project.models.package_edge(
        "disease", 1, project.root / "q.tar.gz", quantize="int8", holdout=tiles, labels=labels.astype(int)
    )
    cost = made.quantization
    assert cost is not None and cost["sample"] == "holdout rows" and cost["rows"] == 64
    assert cost["accuracy"] == 1.0 and cost["accuracy_change"] == cost["accuracy_int8"] - 1.0
    assert 0 < cost["max_abs_diff"] < 0.1 and 0.9 <= cost["agreement"] <= 1.0
    (export,) = [e for e in project.models.exports("disease", 1) if e.format == "onnx-int8"]
    assert (
        export.details["quantization"] == cost
        and made.manifest["source"]["export"]["artifact"] == export.artifact
    )
    again = project.models.package_edge("disease", 1, project.root / "q2.tar.gz", quantize="int8")
    assert again.quantization == cost  # measured once, when made: every package reports the same figures
    with tarfile.open(made.path) as tar:
        tar.extractall(project.root / "q", filter="data")
    assert made.folder == "disease-1-int8"  # beside the float package's disease-1 when both are unpacked
    done = _run(project.root / "q" / made.folder, "--check")
    assert done.returncode == 0, done.stderr


def test_a_reader_packages_a_version_whose_export_exists(project: Project, unpacked: Path) -> None:
    auditor = as_user(project, "ana", "auditor")  # models.read only
    made = auditor.models.package_edge("disease", 1, project.root / "read.tar.gz")
    assert made.manifest["files"] == json.loads((unpacked / "manifest.json").read_text())["files"]


def test_bad_requests_say_what_would_work(project: Project) -> None:
    with pytest.raises(MalformedInput, match=r"mean and std need 4 values each \(axis 0 of \(4, 16, 16\)\)"):
        project.models.package_edge("disease", 1, project.root / "x.tar.gz",
                                    preprocessing={"tile": {"mean": [0], "std": [1]}})  # fmt: skip
    with pytest.raises(MalformedInput, match="'image', which is not an input of the model \\(tile\\)"):
        project.models.package_edge("disease", 1, project.root / "x.tar.gz", preprocessing={"image": {}})
    with pytest.raises(MalformedInput, match="the folder .* does not exist"):
        project.models.package_edge("disease", 1, project.root / "nowhere" / "x.tar.gz")
    with pytest.raises(Exception, match="Quantization 'int4' is not one of: int8"):
        project.models.package_edge("disease", 1, project.root / "x.tar.gz", quantize="int4")
    assert not (project.root / "x.tar.gz").exists()


class Scorer(BaseEstimator):  # type: ignore[misc]
    """A scikit-learn estimator that no ONNX converter knows."""

    def fit(self, X: Any, y: Any) -> Scorer:
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float).sum(axis=1)


def test_a_model_that_cannot_be_converted_names_what_can(project: Project) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    project.models.register("custom", Scorer(), input_example=frame)
    with pytest.raises(ExportError) as raised:
        project.models.package_edge("custom", 1, project.root / "c.tar.gz")
    message = str(raised.value)
    assert "'custom' version 1 cannot be packaged for the edge" in message and "Scorer" in message
    assert "torch, sklearn or lightgbm model that converts to ONNX" in message
    assert not (project.root / "c.tar.gz").exists()
