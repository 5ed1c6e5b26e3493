"""The background a linear model and the fallback are measured against: kept with each version as a
weighted summary of its training inputs (never one record), so explaining a served model needs nothing
from the caller, and a linear model's attributions are exactly those against the rows' mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.explain.background import MIN_PER_CLUSTER, WEIGHT, split_weights, summarize


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.integers(0, 9, rows),
                         "colour": rng.choice(["red", "blue"], rows)})  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(min_value=MIN_PER_CLUSTER, max_value=300), seed=st.integers(0, 1_000))
def test_a_summary_keeps_the_mean_and_no_centroid_stands_for_fewer_than_five_rows(
    rows: int, seed: int
) -> None:
    frame = _frame(rows, seed)
    summary = summarize(frame, seed=seed)
    assert summary is not None and list(summary.columns) == ["a", "b", "colour", WEIGHT]
    centroids, weights = split_weights(summary)
    assert weights is not None and np.isclose(weights.sum(), 1.0)
    assert (weights * rows >= MIN_PER_CLUSTER - 1e-9).all()  # every centroid averages at least 5 records
    mean = np.average(centroids[["a", "b"]].to_numpy(dtype=float), axis=0, weights=weights)
    assert np.allclose(mean, frame[["a", "b"]].mean().to_numpy())
    assert set(centroids["colour"]) <= {"red", "blue"}


def test_too_few_rows_give_no_summary() -> None:
    assert summarize(_frame(MIN_PER_CLUSTER - 1)) is None


def test_a_registered_linear_model_is_explained_exactly_without_a_background_given(tmp_path: Path) -> None:
    frame = _frame(400)[["a", "b"]]
    labels = (frame.a + 0.2 * frame.b + np.random.default_rng(1).normal(size=400) > 1).astype(int)
    model = LogisticRegression().fit(frame, labels)
    with Project.open(tmp_path, env={}) as project:
        project.models.register("linear", model, input_example=frame.head(200))
        loaded = project.models.load("linear", version=1)
        found = loaded.attributions(frame.tail(5))
        assert (found.method, found.output, found.exact) == ("linear_shap", "log_odds", True)
        assert np.allclose(found.value, model.decision_function(frame.tail(5)), atol=1e-9)
        mean = frame.head(200).mean().to_numpy()
        expected = model.coef_[0] * (frame.tail(5).to_numpy() - mean)
        assert np.allclose(found.values.to_numpy(), expected, atol=1e-9)  # against the 200 rows' mean
        explained = loaded.explain(frame.tail(5), budget=20)  # the DataFrame form, base_value last
        assert list(explained.columns) == ["a", "b", "base_value"]
