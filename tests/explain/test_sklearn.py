"""scikit-learn linear models: exact in closed form against a background's mean, equal to shap's
LinearExplainer; what has no exact method (a pipeline, multiclass gradient boosting) goes to the fallback."""

from __future__ import annotations

import numpy as np
import pytest
import shap
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.explain import ExplainError, explain
from tests.explain.conftest import Data


@pytest.fixture(scope="module")
def logistic(data: Data) -> LogisticRegression:
    return LogisticRegression().fit(data.X, data.binary)


@pytest.fixture(scope="module")
def regressors(data: Data) -> list[LinearRegression | Ridge | Lasso]:
    return [
        model.fit(data.X, data.value) for model in (LinearRegression(), Ridge(alpha=2.0), Lasso(alpha=0.05))
    ]


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1))
def test_linear_attributions_add_up_to_the_models_output(
    data: Data, logistic: LogisticRegression, regressors: list[LinearRegression | Ridge | Lasso], seed: int
) -> None:
    rows, background = data.rows(seed), data.X.sample(100, random_state=seed % 1000)
    found = explain("sklearn", logistic, rows, background=background)
    assert (found.output, found.method, found.exact) == ("log_odds", "linear_shap", True)
    np.testing.assert_allclose(found.value, logistic.decision_function(rows), atol=1e-6)
    np.testing.assert_allclose(found.prediction, logistic.predict_proba(rows)[:, 1])
    for regressor in regressors:
        found = explain("sklearn", regressor, rows, background=background)
        assert found.output == "value"
        np.testing.assert_allclose(found.value, regressor.predict(rows), atol=1e-6)


def test_linear_values_equal_shap_linear_explainer(data: Data, logistic: LogisticRegression) -> None:
    model = logistic
    background, rows = data.X[:100], data.rows(5, n=10)
    found = explain("sklearn", model, rows, background=background)
    reference = shap.LinearExplainer(model, background)
    np.testing.assert_allclose(found.values.to_numpy(), reference.shap_values(rows), atol=1e-6)
    np.testing.assert_allclose(found.base_value, reference.expected_value, atol=1e-6)


def test_multiclass_logistic_explains_a_class_margin(data: Data) -> None:
    model = LogisticRegression().fit(data.X, data.classes)
    rows = data.rows(6, n=8)
    margins = model.decision_function(rows)
    found = explain("sklearn", model, rows, background=data.X, target="a")
    assert found.output == "margin" and found.target == ["a"] * 8
    np.testing.assert_allclose(found.value, margins[:, 0], atol=1e-6)
    predicted = explain("sklearn", model, rows, background=data.X)
    assert predicted.target == list(model.predict(rows))
    np.testing.assert_allclose(predicted.value, margins.max(axis=1), atol=1e-6)


def test_linear_without_background_says_how_to_pass_one(data: Data) -> None:
    model = Ridge().fit(data.X, data.value)
    with pytest.raises(ExplainError, match=r"background=train_frame\.sample\(100"):
        explain("sklearn", model, data.rows(0))
    with pytest.raises(ExplainError, match="lacks the model's input columns noise"):
        explain("sklearn", model, data.rows(0), background=data.X.drop(columns="noise"))


def test_a_pipeline_goes_to_the_fallback_and_needs_a_budget(data: Data) -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(data.X, data.binary)
    with pytest.raises(ExplainError) as caught:
        explain("sklearn", pipeline, data.rows(0), background=data.X)
    message = str(caught.value)
    assert "Pipeline transforms your columns" in message and "KernelSHAP" in message
    assert "budget=N" in message and '"budget": N in the HTTP body' in message
    rows = data.rows(7, n=2)
    found = explain("sklearn", pipeline, rows, budget=64, background=data.X[:20])  # 2**6 - 2 coalitions: all
    assert (found.method, found.output, found.exact) == ("kernel_shap", "probability", False)
    np.testing.assert_allclose(found.value, pipeline.predict_proba(rows)[:, 1], atol=1e-6)
    assert found.delta is not None and found.delta.max() < 1e-6


def test_multiclass_gradient_boosting_has_no_exact_method(data: Data) -> None:
    model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(data.X, data.classes)
    with pytest.raises(ExplainError, match="GradientBoostingClassifier has no exact method here"):
        explain("sklearn", model, data.rows(0))
    found = explain("sklearn", model, data.rows(8, n=2), budget=20, background=data.X[:20], target="c")
    assert found.method == "kernel_shap" and found.target == ["c", "c"]
    np.testing.assert_allclose(found.value, model.predict_proba(data.rows(8, n=2))[:, 2], atol=1e-6)
