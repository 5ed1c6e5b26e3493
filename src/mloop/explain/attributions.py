"""Per-row attributions and the table of explainers, one per flavour.

An :class:`Attributions` holds, for each row, a value per feature and a base value whose sum is the
model's output in a stated space (:data:`OUTPUTS`): a LightGBM binary classifier is explained in log-odds
(TreeSHAP is exact there, not on the probability), a regressor in its values. ``prediction`` is what
``predict`` answers for the same rows, so a caller sees both the served answer and the sum it decomposes.

Methods by flavour (:data:`EXPLAINERS`; docs/explain.md): LightGBM's own TreeSHAP; scikit-learn
trees through ``shap.TreeExplainer`` and linear models in closed form (both exact); PyTorch through Captum's
Integrated Gradients (approximate: ``delta`` per row); anything else (ONNX, pipelines, other estimators)
through KernelSHAP, only with an explicit ``budget``. Linear models and the fallback measure attributions
against a ``background`` sample of the training inputs, which the caller passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mloop.errors import MloopError
from mloop.plugins import Plugins

OUTPUTS = ("log_odds", "probability", "value", "margin")
BASE = "base_value"


class ExplainError(MloopError):
    """A model cannot be explained as asked (no method for its flavour, no budget for the fallback)."""


@dataclass(frozen=True)
class Attributions:
    """Attributions of ``len(values)`` rows; ``values.columns`` are the model's input names."""

    values: pd.DataFrame  # one row per input row, one column per feature
    base_value: np.ndarray  # (rows,): the expected output the attributions start from
    prediction: np.ndarray  # what predict answers for the rows (a probability, a value)
    output: str  # the space in which base_value + sum(values) holds: one of OUTPUTS
    method: str  # "tree_shap", "linear_shap", "integrated_gradients", "kernel_shap", ...
    exact: bool  # additivity holds to rounding; False: ``delta`` says how far it is off
    delta: np.ndarray | None = None  # (rows,) |sum - output| reported by an approximate method
    target: Any = None  # the class explained, for a multiclass model
    maps: dict[str, np.ndarray] | None = None  # a tensor column's per-element attributions (rows, *shape)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def value(self) -> np.ndarray:
        """``base_value + sum(attributions)`` per row: the model's output in :attr:`output`."""
        return np.asarray(self.base_value, dtype=float) + self.values.to_numpy(dtype=float).sum(axis=1)

    def frame(self) -> pd.DataFrame:
        """One column per feature plus ``base_value``, indexed like the input."""
        out = self.values.copy()
        out[BASE] = self.base_value
        return out

    def top(self, k: int | None) -> list[dict[str, float]]:
        """Per row, the ``k`` attributions largest in magnitude (all when ``k`` is None), largest first."""
        matrix = self.values.to_numpy(dtype=float)
        names = list(self.values.columns)
        order = np.argsort(-np.abs(matrix), axis=1, kind="stable")
        if k is not None:
            order = order[:, :k]
        return [{names[j]: float(matrix[i, j]) for j in row} for i, row in enumerate(order)]

    def to_dicts(self, top_k: int | None = None) -> list[dict[str, Any]]:
        """The rows as the HTTP answer has them: base value, attributions (the top ``top_k``),
        prediction, and the output value the attributions add up to."""
        rows = []
        for i, attributions in enumerate(self.top(top_k)):
            row: dict[str, Any] = {
                "base_value": float(self.base_value[i]),
                "attributions": attributions,
                "prediction": _plain(self.prediction[i]),
                "value": float(self.value[i]),
            }
            if self.delta is not None:
                row["delta"] = float(self.delta[i])
            rows.append(row)
        return rows

    def mean_abs(self) -> dict[str, float]:
        """Mean |attribution| per feature: the global importance of a data set's rows."""
        return {str(k): float(v) for k, v in self.values.abs().mean(axis=0).items()}


class Explainer(Protocol):
    """How one flavour's models are explained."""

    def explain(
        self,
        model: Any,
        frame: pd.DataFrame,
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> Attributions:
        """Attributions of ``frame``'s rows (already validated against the signature); ``background``:
        rows of the training inputs, for a method that measures against an expected input."""
        ...


EXPLAINERS = Plugins(
    "explainer",
    {
        "lightgbm": "mloop.explain.trees:LightGBMExplainer",
        "sklearn": "mloop.explain.sklearn:SklearnExplainer [explain]",
        "torch": "mloop.explain.torch:TorchExplainer [explain]",
        "onnx": "mloop.explain.fallback:FallbackExplainer [explain]",
    },
    unknown="No explainer for the {name!r} flavour; explainers exist for {choices}.",
    error=ExplainError,
)
# The model-agnostic method for every other flavour, looked up like the rest (lazily, naming its extra).
FALLBACK = Plugins("explainer", {"fallback": "mloop.explain.fallback:FallbackExplainer [explain]"},
                   error=ExplainError)  # fmt: skip


def explain(
    flavour: str,
    model: Any,
    frame: pd.DataFrame,
    *,
    budget: int | None = None,
    target: Any = None,
    background: pd.DataFrame | None = None,
) -> Attributions:
    """Attributions of ``frame``'s rows by the explainer of ``flavour`` (a flavour's name); a flavour with
    no explainer of its own gets the model-agnostic fallback, which needs ``budget`` and ``background``.

    >>> found = explain("sklearn", forest, X_test[:5])                  # doctest: +SKIP
    >>> found.output, found.method                                      # doctest: +SKIP
    ('probability', 'tree_shap')
    """
    if frame.empty:
        raise ExplainError("Nothing to explain: give at least one row.")
    if background is not None and background.empty:
        raise ExplainError("The background has no rows: pass a sample of the training inputs (100 rows do).")
    if flavour in EXPLAINERS:
        explainer: Explainer = EXPLAINERS.load(flavour)()
    else:
        explainer = FALLBACK.load("fallback")(flavour)
    return explainer.explain(model, frame, budget=budget, target=target, background=background)


def row_explainer(
    flavour: str, model: Any, signature: Any
) -> Callable[[Mapping[str, list[Any]], Any], Attributions] | None:
    """The flavour's explainer of plain request columns without pandas, where it offers one (LightGBM)."""
    if flavour not in EXPLAINERS:
        return None
    make = getattr(EXPLAINERS.load(flavour), "row_explainer", None)
    if make is None:
        return None
    made: Callable[[Mapping[str, list[Any]], Any], Attributions] | None = make(
        EXPLAINERS.load(flavour)(), model, signature
    )
    return made


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return dict(value)
    return value
