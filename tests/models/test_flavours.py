"""The flavour conformance suite: every flavour, over every kind of model it handles."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.errors import MalformedInput, MloopError
from mloop.models import FLAVOURS, Flavour, flavour_for, get_flavour
from mloop.models.package import pack, unpack
from mloop.models.sklearn import ModelVersionWarning
from tests.models.cases import CASES, case

NAMES = list(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_detects_the_flavour_and_conforms_to_the_protocol(name: str) -> None:
    item = case(name)
    flavour = flavour_for(item.model)
    assert flavour.name == item.flavour
    assert isinstance(flavour, Flavour)


@pytest.mark.parametrize("name", NAMES)
def test_predict_semantics(name: str) -> None:
    item = case(name)
    got = flavour_for(item.model).predict(item.model, item.frame)
    np.testing.assert_allclose(got, item.expected, rtol=0, atol=1e-12)
    if item.shape == "binary":
        assert got.ndim == 1 and ((got >= 0) & (got <= 1)).all()
    elif item.shape == "multiclass":
        assert got.shape == (len(item.frame), 3)
        np.testing.assert_allclose(got.sum(axis=1), 1.0)
    else:
        assert got.ndim == 1


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_identical_predictions(name: str, tmp_path: Path) -> None:
    item = case(name)
    flavour = get_flavour(item.flavour)
    flavour.save(item.model, tmp_path)
    again = flavour.load(tmp_path)
    assert type(again) is type(item.model)
    assert np.array_equal(flavour.predict(again, item.frame), flavour.predict(item.model, item.frame))


@pytest.mark.parametrize("name", NAMES)
def test_columns_in_another_order_are_put_back_in_the_fitted_order(name: str) -> None:
    item = case(name)
    flavour = get_flavour(item.flavour)
    shuffled = item.frame[list(reversed(item.frame.columns))]
    assert np.array_equal(flavour.predict(item.model, shuffled), flavour.predict(item.model, item.frame))


@pytest.mark.parametrize("name", NAMES)
def test_info_is_json_and_names_type_and_params(name: str) -> None:
    item = case(name)
    info = flavour_for(item.model).info(item.model)
    assert json.loads(json.dumps(info)) == info
    assert info["type"].endswith(type(item.model).__name__)
    assert isinstance(info["params"], dict) and info["params"]
    assert info["task"] in ("classification", "regression")


@pytest.fixture(scope="module")
def fresh_process_predictions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    """Pack every case, then load and predict all of them in ONE new Python process."""
    root = tmp_path_factory.mktemp("fresh")
    for name in NAMES:
        item = case(name)
        pack(item.model, get_flavour(item.flavour), root / f"{name}.tar.gz")
        item.frame.to_parquet(root / f"{name}.parquet")
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, pandas as pd
        from pathlib import Path
        from mloop.models.package import unpack
        root = Path({str(root)!r})
        for name in {NAMES!r}:
            flavour, model = unpack(root / f"{{name}}.tar.gz", root / name)
            np.save(root / f"{{name}}.npy", flavour.predict(model, pd.read_parquet(root / f"{{name}}.parquet")))
            print(name, type(model).__name__)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kinds = dict(line.split() for line in done.stdout.splitlines())
    return {name: (np.load(root / f"{name}.npy"), kinds[name]) for name in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_fresh_process_predicts_exactly_the_same(
    name: str, fresh_process_predictions: dict[str, tuple[Any, Any]]
) -> None:
    item = case(name)
    predictions, kind = fresh_process_predictions[name]
    assert kind == type(item.model).__name__
    assert np.array_equal(predictions, flavour_for(item.model).predict(item.model, item.frame))


def test_packing_is_deterministic(tmp_path: Path) -> None:
    item = case("lgbm-classifier")
    pack(item.model, get_flavour("lightgbm"), tmp_path / "a.tar.gz")
    pack(item.model, get_flavour("lightgbm"), tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_lightgbm_is_stored_as_its_text_format_not_a_pickle(tmp_path: Path) -> None:
    item = case("lgbm-classifier")
    get_flavour("lightgbm").save(item.model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lightgbm.json", "model.txt"]
    assert (tmp_path / "model.txt").read_text().startswith("tree\n")
    meta = json.loads((tmp_path / "lightgbm.json").read_text())
    assert meta["classes"] == ["fraud", "ok"] and meta["objective"] == "binary"


def test_an_archive_that_escapes_its_folder_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        import io

        tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "into").mkdir()
    with pytest.raises(MalformedInput, match="not a packed mloop model"):
        unpack(evil, tmp_path / "into")
    assert not (tmp_path / "outside.txt").exists()


def test_loading_under_another_sklearn_version_warns_with_both(tmp_path: Path) -> None:
    import sklearn

    item = case("sklearn-pipeline")
    flavour = get_flavour("sklearn")
    flavour.save(item.model, tmp_path)
    meta = json.loads((tmp_path / "sklearn.json").read_text())
    meta["sklearn_version"] = "1.0.2"
    (tmp_path / "sklearn.json").write_text(json.dumps(meta))
    with pytest.warns(
        ModelVersionWarning, match=rf"scikit-learn 1\.0\.2 .* scikit-learn {sklearn.__version__}"
    ):
        flavour.load(tmp_path)


def test_unknown_flavour_names_the_choices() -> None:
    with pytest.raises(
        MloopError, match="Unknown model flavour 'keras'; flavours: torch, .*lightgbm, sklearn"
    ):
        get_flavour("keras")


def test_an_object_no_flavour_handles_is_refused_with_the_fix() -> None:
    with pytest.raises(MloopError, match=r"No model flavour handles a builtins\.dict.*flavour="):
        flavour_for({"weights": [1, 2]})


class Doubler:
    """A flavour written outside mloop: adding a backend is one entry in the table."""

    name = "doubler"

    def handles(self, model: Any) -> bool:
        return isinstance(model, DoublerModel)

    def save(self, model: Any, folder: Path) -> None:
        (folder / "factor.txt").write_text(str(model.factor))

    def load(self, folder: Path) -> Any:
        return DoublerModel(float((folder / "factor.txt").read_text()))

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        return frame.iloc[:, 0].to_numpy() * model.factor

    def info(self, model: Any) -> dict[str, Any]:
        return {"type": "DoublerModel", "params": {"factor": model.factor}}


class DoublerModel:
    def __init__(self, factor: float) -> None:
        self.factor = factor


def test_one_table_entry_adds_a_flavour(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(FLAVOURS, "doubler", f"{__name__}:Doubler")
    flavour = flavour_for(DoublerModel(2.0))
    assert flavour.name == "doubler" and isinstance(flavour, Flavour)
    pack(DoublerModel(2.0), flavour, tmp_path / "m.tar.gz")
    (tmp_path / "out").mkdir()
    again, model = unpack(tmp_path / "m.tar.gz", tmp_path / "out")
    assert again.name == "doubler"
    assert again.predict(model, pd.DataFrame({"x": [1.0, 2.5]})).tolist() == [2.0, 5.0]
