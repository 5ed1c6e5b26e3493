"""The model-agnostic fallback: KernelSHAP (``shap.KernelExplainer``) on what ``predict`` answers, for a
model with no exact method (an ONNX graph, a scikit-learn pipeline, an SVM, a flavour from a plugin).

It costs model evaluations, so it runs only with an explicit ``budget``: the number of coalitions (inputs
with some features taken from the row and the others from a background row) evaluated per explained row;
each is scored on every background row, so one explained row costs ``budget * len(background)`` rows of
``predict``. With ``budget >= 2**features - 2`` every coalition is evaluated and the values are the exact
Shapley values of ``predict`` against the background; below it they are an estimate. Either way
``base_value + sum`` equals ``predict`` on the row (KernelSHAP solves under that constraint); ``delta``
reports how far it is off, to rounding.

The space is the served one: the probability of the class explained for a classifier (the positive class
for a binary one), the value for a regressor.

>>> found = explain("onnx", graph, rows, budget=200, background=train.sample(50))    # doctest: +SKIP
>>> found.method, found.output                                                          # doctest: +SKIP
('kernel_shap', 'probability')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError
from mloop.explain.background import background_rows, require_background, split_weights
from mloop.models.flavours import FLAVOURS, get_flavour

METHOD = "kernel_shap"


class FallbackExplainer:
    """KernelSHAP through the flavour's own ``predict``, so it explains exactly what is served."""

    def __init__(self, flavour: str = "onnx") -> None:
        self.flavour = flavour

    def explain(
        self,
        model: Any,
        frame: pd.DataFrame,
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> Attributions:
        if self.flavour not in FLAVOURS:
            raise ExplainError(
                f"No explainer for the {self.flavour!r} flavour, and no such model flavour to run the "
                f"fallback with; flavours: {', '.join(FLAVOURS)}."
            )
        flavour = get_flavour(self.flavour)
        info = flavour.info(model)
        return kernel_shap(
            lambda rows: flavour.predict(model, rows),
            frame,
            budget=budget,
            target=target,
            background=background,
            classifier=info.get("task") == "classification",
            classes=info.get("classes"),
            why=f"The {self.flavour} flavour has no exact method",
        )


def kernel_shap(
    predict: Callable[[pd.DataFrame], np.ndarray],
    frame: pd.DataFrame,
    *,
    budget: int | None,
    target: Any,
    background: pd.DataFrame | None,
    classifier: bool,
    classes: list[Any] | None,
    why: str,
) -> Attributions:
    """KernelSHAP attributions of ``predict`` on ``frame``'s rows; ``why`` says why no exact method
    applies, for the error when ``budget`` is missing."""
    features = [str(c) for c in frame.columns]
    check_budget(budget, len(features), why)
    assert budget is not None
    tensors = [c for c in features if _is_tensor(frame[c])]
    if tensors:
        raise ExplainError(
            f"The fallback (KernelSHAP) attributes scalar columns; {', '.join(tensors)} hold tensors. "
            "Register the network as a torch model, which Integrated Gradients explains."
        )
    background = background_rows(require_background(background, "The fallback (KernelSHAP)"), features)
    import shap  # type: ignore[import-untyped]

    dtypes = frame.dtypes

    def score(values: np.ndarray) -> np.ndarray:
        # shap hands over a bare array; the model gets the DataFrame with the user's names and dtypes.
        rows = pd.DataFrame(values, columns=features).astype(dtypes.to_dict())
        return np.asarray(predict(rows), dtype=float)

    served = score(frame.to_numpy(dtype=object))
    rows_of, weights = split_weights(background)
    data: Any = rows_of.to_numpy(dtype=object)
    if weights is not None:  # a registered summary: each centroid counts for the rows it stands for
        from shap.utils._legacy import DenseData  # type: ignore[import-untyped]

        data = DenseData(data, features, None, weights)
    kernel = shap.KernelExplainer(score, data, link="identity")
    found = kernel.shap_values(frame.to_numpy(dtype=object), nsamples=budget, l1_reg=False, silent=True)
    values = np.asarray(found, dtype=float)
    base = np.atleast_1d(np.asarray(kernel.expected_value, dtype=float))
    rows = np.arange(len(frame))
    chosen = None
    if served.ndim == 2:  # a class-probability matrix: one class per row
        labels = list(classes) if classes is not None else list(range(served.shape[1]))
        if target is None:
            picked = served.argmax(axis=1)
        elif target in labels:
            picked = np.full(len(frame), labels.index(target))
        else:
            raise ExplainError(f"target={target!r} is not one of the model's classes {labels}.")
        values, base, served = values[rows, :, picked], base[picked], served[rows, picked]
        chosen = np.asarray(labels, dtype=object)[picked].tolist()
    else:
        if target is not None:
            raise ExplainError(f"target={target!r} is for a multiclass model; this one has one output.")
        base = np.full(len(frame), base[0])
    output = "probability" if classifier or served.ndim == 2 else "value"
    table = pd.DataFrame(values, columns=features, index=frame.index)
    delta = np.abs(base + values.sum(axis=1) - served)
    return Attributions(table, base, served, output, METHOD, exact=False, delta=delta, target=chosen)


def check_budget(budget: int | None, features: int, why: str) -> None:
    """:class:`ExplainError` unless ``budget`` is a number of model evaluations KernelSHAP can work with."""
    if budget is None:
        raise ExplainError(
            f"{why}; it is explained by the model-agnostic fallback (KernelSHAP), which costs model "
            "evaluations, so it runs only with a budget: pass budget=N (model evaluations per row, e.g. "
            f'{max(200, minimum(features))}) in Python, or "budget": N in the HTTP body.'
        )
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < minimum(features):
        raise ExplainError(
            f"budget={budget!r} is too small for KernelSHAP on {features} features: give at least "
            f"{minimum(features)} model evaluations per row (2 per feature + 2), more for steadier values."
        )


def minimum(features: int) -> int:
    """The smallest budget for which KernelSHAP's regression is determined with room to spare (or every
    coalition, when there are fewer)."""
    return min(2 * features + 2, max(1, 2**features - 2))


def _is_tensor(column: pd.Series) -> bool:
    return column.dtype == object and len(column) > 0 and isinstance(column.iloc[0], np.ndarray)
