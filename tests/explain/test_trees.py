"""Tree models: LightGBM's own TreeSHAP and scikit-learn's trees through shap are exact (additivity to
1e-6 on rows never seen in training) and give shap.TreeExplainer's values."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeRegressor

from mloop.explain import ExplainError, explain
from mloop.models import get_flavour, infer
from mloop.registry.versions import LoadedModel
from tests.explain.conftest import Data

Case = tuple[
    str, Any, str, Callable[[pd.DataFrame], np.ndarray]
]  # flavour, model, output, the model's output


@pytest.fixture(scope="session")
def forest(data: Data) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(data.X, data.binary)


@pytest.fixture(scope="session")
def booster(data: Data) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(n_estimators=30, num_leaves=8, n_jobs=1, verbose=-1).fit(data.X, data.binary)


@pytest.fixture(scope="session")
def cases(data: Data, forest: RandomForestClassifier, booster: lgb.LGBMClassifier) -> list[Case]:
    X = data.X
    lgb_reg = lgb.LGBMRegressor(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1).fit(X, data.value)
    gb = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(X, data.binary)
    hist = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, data.value)
    tree = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, data.value)
    extra = ExtraTreesClassifier(n_estimators=20, max_depth=5, random_state=0).fit(X, data.classes)
    return [
        ("lightgbm", booster, "log_odds", lambda f: booster.predict(f, raw_score=True, num_threads=1)),
        ("lightgbm", lgb_reg, "value", lambda f: lgb_reg.predict(f, num_threads=1)),
        ("sklearn", forest, "probability", lambda f: forest.predict_proba(f)[:, 1]),
        ("sklearn", gb, "log_odds", gb.decision_function),
        ("sklearn", hist, "value", hist.predict),
        ("sklearn", tree, "value", tree.predict),
        # a multiclass forest, explained for class "c" whatever it predicts: that class's probability
        ("sklearn", extra, "probability", lambda f: extra.predict_proba(f)[:, 2]),
    ]


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1))
def test_tree_attributions_add_up_to_the_models_output(data: Data, cases: list[Case], seed: int) -> None:
    rows = data.rows(seed)
    for flavour, model, output, raw in cases:
        target = "c" if getattr(model, "classes_", np.array([])).size == 3 else None
        found = explain(flavour, model, rows, target=target)
        assert (found.output, found.method, found.exact) == (output, "tree_shap", True), type(model).__name__
        np.testing.assert_allclose(found.value, raw(rows), atol=1e-6, err_msg=type(model).__name__)


def test_lightgbm_equals_shap_tree_explainer(data: Data, booster: lgb.LGBMClassifier) -> None:
    rows = data.rows(1, n=20)
    found = explain("lightgbm", booster, rows)
    reference = shap.TreeExplainer(booster)
    np.testing.assert_allclose(found.values.to_numpy(), reference.shap_values(rows), atol=1e-6)
    np.testing.assert_allclose(found.base_value, reference.expected_value, atol=1e-6)
    np.testing.assert_allclose(found.prediction, booster.predict_proba(rows)[:, 1])


def test_sklearn_forest_equals_shap_tree_explainer_for_the_positive_class(
    data: Data, forest: RandomForestClassifier
) -> None:
    rows = data.rows(2, n=20)
    found = explain("sklearn", forest, rows)
    reference = shap.TreeExplainer(forest)
    np.testing.assert_allclose(found.values.to_numpy(), reference.shap_values(rows)[:, :, 1], atol=1e-6)
    np.testing.assert_allclose(found.base_value, reference.expected_value[1], atol=1e-6)
    assert found.target is None  # binary: always classes_[1], what predict answers
    np.testing.assert_allclose(found.prediction, forest.predict_proba(rows)[:, 1])


def test_multiclass_forest_explains_the_predicted_class_unless_told(data: Data) -> None:
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(data.X, data.classes)
    rows = data.rows(3, n=10)
    proba = forest.predict_proba(rows)
    found = explain("sklearn", forest, rows)
    assert found.target == list(forest.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(found.value, proba.max(axis=1), atol=1e-6)
    told = explain("sklearn", forest, rows, target="b")
    assert told.target == ["b"] * 10
    np.testing.assert_allclose(told.value, proba[:, 1], atol=1e-6)
    with pytest.raises(ExplainError, match=r"target='z' is not one of the model's classes"):
        explain("sklearn", forest, rows, target="z")


def test_top_k_orders_by_magnitude(data: Data, booster: lgb.LGBMClassifier) -> None:
    found = explain("lightgbm", booster, data.rows(4, n=5))
    for row, top in zip(found.values.to_numpy(), found.top(3), strict=True):
        magnitudes = [abs(v) for v in top.values()]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(np.abs(row).max())
        assert len(top) == 3
        assert min(magnitudes) >= np.sort(np.abs(row))[-3]


def test_the_request_path_without_pandas_gives_the_dataframe_paths_numbers() -> None:
    """An explain request's columns go to TreeSHAP as a numpy matrix (categories encoded with the booster's
    own codes); the numbers are those of the DataFrame path."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.gamma(2.0, 50.0, 400), "device": pd.Categorical(rng.choice(["web", "pos", "app"], 400)),
                          "hour": rng.integers(0, 24, 400).astype("float64")})  # fmt: skip
    labels = ((frame.amount > 120) & (frame.device == "web")).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, num_threads=1, verbose=-1).fit(frame, labels)
    flavour = get_flavour("lightgbm")
    signature = infer(frame, flavour.predict(model, frame))
    info = SimpleNamespace(signature=signature, name="m", version=1)
    loaded = LoadedModel(info, flavour, model)  # type: ignore[arg-type]
    columns = {"amount": [250.0, 10.0, 99.5], "device": ["web", "pos", "app"], "hour": [3.0, 0.0, 12.0]}
    fast = loaded.attributions_columns(columns)
    slow = loaded.attributions(pd.DataFrame(columns).astype({"device": "object"}))
    assert loaded._row_explainer is not None
    assert np.allclose(fast.values.to_numpy(), slow.values.to_numpy(), atol=1e-12)
    assert np.allclose(fast.prediction, slow.prediction) and np.allclose(fast.base_value, slow.base_value)
