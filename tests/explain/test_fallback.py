"""The fallback (KernelSHAP): only with a budget, which bounds the model evaluations; additive; with a
budget covering every coalition it gives the exact Shapley values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.svm import SVR

from mloop.explain import ExplainError, explain
from mloop.explain.fallback import kernel_shap
from tests.explain.conftest import Data


def test_without_a_budget_the_error_names_the_fallback_and_how_to_enable_it(data: Data) -> None:
    model = SVR().fit(data.X[:100], data.value[:100])
    with pytest.raises(ExplainError) as caught:
        explain("sklearn", model, data.rows(0), background=data.X)
    message = str(caught.value)
    assert "SVR has no exact method" in message and "fallback (KernelSHAP)" in message
    assert "budget=N" in message and '"budget": N in the HTTP body' in message
    with pytest.raises(
        ExplainError, match="budget=5 is too small for KernelSHAP on 6 features: give at least 14"
    ):
        explain("sklearn", model, data.rows(0), budget=5, background=data.X)
    with pytest.raises(ExplainError, match="background=train_frame"):
        explain("sklearn", model, data.rows(0), budget=20)


@pytest.mark.parametrize("budget", [14, 40])
def test_the_budget_bounds_the_model_evaluations_per_row(data: Data, budget: int) -> None:
    model = Ridge().fit(data.X, data.value)
    seen: list[int] = []

    def predict(rows: pd.DataFrame) -> np.ndarray:
        assert list(rows.columns) == list(data.X.columns)  # the model sees the user's column names
        seen.append(len(rows))
        return np.asarray(model.predict(rows))

    background, rows = data.X[:10], data.rows(1, n=3)
    found = kernel_shap(predict, rows, budget=budget, target=None, background=background, classifier=False,
                        classes=None, why="test")  # fmt: skip
    # the background once, each row once, then at most `budget` coalitions per row on every background row
    assert sum(seen) <= len(background) + 2 * len(rows) + len(rows) * budget * len(background)
    assert sum(seen) >= len(rows) * budget * len(background) // 2  # and the budget is used, not ignored
    assert found.output == "value" and found.delta is not None
    np.testing.assert_allclose(found.value, model.predict(rows), atol=1e-6)


def test_a_budget_covering_every_coalition_gives_the_exact_values(data: Data) -> None:
    model = Ridge().fit(data.X, data.value)
    background, rows = data.X[:40], data.rows(2, n=4)
    exact = explain("sklearn", model, rows, background=background)  # closed form
    found = kernel_shap(model.predict, rows, budget=2**6 - 2, target=None, background=background,
                        classifier=False, classes=None, why="test")  # fmt: skip
    np.testing.assert_allclose(found.values.to_numpy(), exact.values.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(found.base_value, exact.base_value, atol=1e-6)


def test_a_flavour_without_an_explainer_or_a_model_flavour_is_refused(data: Data) -> None:
    with pytest.raises(ExplainError, match="No explainer for the 'xgboost' flavour"):
        explain("xgboost", object(), data.rows(0), budget=20, background=data.X)


def test_an_onnx_model_is_explained_by_the_fallback_in_its_served_space(data: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    from mloop.models.export import to_onnx
    from mloop.models.flavours import get_flavour
    from mloop.models.signature import infer

    X = data.X.astype("float32")
    model = LogisticRegression().fit(X, data.classes)
    graph = to_onnx(get_flavour("sklearn"), model, infer(X))
    with pytest.raises(ExplainError, match="The onnx flavour has no exact method; .* budget=N"):
        explain("onnx", graph, X[:2], background=X)
    rows = X[:3]
    found = explain("onnx", graph, rows, budget=30, background=X[:20], target="b")
    assert (found.method, found.output, found.target) == ("kernel_shap", "probability", ["b", "b", "b"])
    np.testing.assert_allclose(found.value, get_flavour("onnx").predict(graph, rows)[:, 1], atol=1e-6)
