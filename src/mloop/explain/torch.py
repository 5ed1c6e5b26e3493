"""PyTorch models: Captum's Integrated Gradients on the module's raw output.

IG integrates the output's gradient along the straight line from a baseline input to the row, in
``n_steps`` steps (Gauss-Legendre); ``base_value`` is the output at the baseline, and ``base_value +
sum(attributions)`` equals the output at the row up to the integral's error, which Captum returns as the
convergence delta: :attr:`Attributions.delta` per row, ``exact=False``. More steps, smaller delta.

What is explained: a binary classifier's log-odds of the positive class (its one logit, or the difference
of its two), ``log_odds``; a multiclass classifier's logit of the class explained (the predicted one unless
``target`` names another), ``margin``; a network that outputs probabilities, that class's ``probability``;
a regressor's ``value``.

The baseline is all zeros unless one is given: zero is "no signal" for the inputs networks are usually fed
(standardised columns, whose zero is the mean; images scaled to [0, 1], whose zero is black), it needs no
data, and it makes ``base_value`` the same for every row. Pass ``baseline=`` (a frame of one row, or as
many rows as explained) where zero means something else.

A scalar column gets one attribution; a tensor column (an image) gets the sum over its elements, and the
per-element map is kept in :attr:`Attributions.maps` (``maps["image"]``, shape ``(rows, *shape)``).

>>> found = TorchExplainer(n_steps=64).explain(loaded.model, frame)         # doctest: +SKIP
>>> found.maps["image"].shape, found.delta.max()                           # doctest: +SKIP
((4, 1, 8, 8), 0.0003)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError
from mloop.models.outputs import answer

STEPS = 50  # Captum's default; the delta shows when a model needs more
BATCH = 4096  # rows x steps per forward pass, so a large request does not hold every step in memory


class TorchExplainer:
    def __init__(self, n_steps: int = STEPS, baseline: pd.DataFrame | None = None) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
            raise ExplainError(
                f"n_steps must be a whole number >= 2 (50 is Captum's default); got {n_steps!r}."
            )
        self.n_steps = n_steps
        self.baseline = baseline

    def explain(
        self,
        model: Any,
        frame: pd.DataFrame,
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> Attributions:
        import torch
        from captum.attr import IntegratedGradients  # type: ignore[import-untyped]

        from mloop.models.torch import TorchFlavour, TorchModel

        made: TorchModel = model if isinstance(model, TorchModel) else TorchFlavour().prepare(model, frame)[0]
        for spec in made.inputs:
            if spec.tensor and spec.dtype not in ("float32", "float64"):
                raise ExplainError(
                    f"Integrated Gradients needs real-valued inputs; {spec.name!r} is {spec.dtype} (indices, "
                    "tokens). Explain an embedding model through its float inputs instead."
                )
        arrays = [np.asarray(a, dtype=_float(a)) for a in made.arrays(frame)]
        bases = self._baselines(made, frame, arrays)
        module = made.module
        live = made.program is None
        was = live and bool(getattr(module, "training", False))
        if live:
            module.eval()
        try:
            inputs = tuple(torch.from_numpy(a).to(made.device).requires_grad_() for a in arrays)
            baselines = tuple(torch.from_numpy(b).to(made.device) for b in bases)
            with torch.no_grad():
                raw = _first(module(*(i.detach() for i in inputs))).cpu().numpy()
                at_base = _first(module(*baselines)).cpu().numpy()
            score, output, picked, chosen = _space(made, raw, target)

            def forward(*args: Any) -> Any:
                return score(_first(module(*args)))

            ig = IntegratedGradients(forward)
            found, delta = ig.attribute(
                inputs, baselines=baselines, target=None if picked is None else picked.tolist(),
                n_steps=self.n_steps, internal_batch_size=_chunk(len(frame), self.n_steps),
                return_convergence_delta=True,
            )  # fmt: skip
        finally:
            if was:
                module.train(True)
        rows = np.arange(len(frame))
        base = _pick(_reduce(made, at_base), picked, rows)
        table, maps = _columns(made, [f.detach().cpu().numpy().astype(float) for f in found], frame)
        return Attributions(
            table, base, _pick(answer(raw, made.output), picked, rows, served=True), output,
            "integrated_gradients", exact=False, delta=np.abs(delta.detach().cpu().numpy().astype(float)),
            target=chosen, maps=maps or None,
        )  # fmt: skip

    def _baselines(self, made: Any, frame: pd.DataFrame, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.baseline is None:
            return [np.zeros_like(a) for a in arrays]
        given = [
            np.asarray(b, dtype=a.dtype) for b, a in zip(made.arrays(self.baseline), arrays, strict=True)
        ]
        if len(self.baseline) == 1:
            return [np.repeat(b, len(frame), axis=0) for b in given]
        if len(self.baseline) != len(frame):
            raise ExplainError(f"The baseline has {len(self.baseline)} rows: give one row, or one per row "
                               f"explained ({len(frame)}).")  # fmt: skip
        return given


def _space(made: Any, raw: np.ndarray, target: Any) -> tuple[Any, str, np.ndarray | None, Any]:
    """The function of the raw output that is explained, its space, and the class index per row."""
    width = 1 if raw.ndim == 1 else int(np.prod(raw.shape[1:]))
    labels = list(made.classes) if made.classes is not None else list(range(width))
    if made.output == "values" or made.task != "classification":
        if width != 1:
            raise ExplainError(f"This network outputs {width} values; explain a network with one output.")
        _no_target(target)
        return _flat, "value", None, None
    if width == 1 or (width == 2 and made.output == "logits"):
        _no_target(target)
        space = "log_odds" if made.output == "logits" else "probability"
        return (_flat if width == 1 else _difference), space, None, None
    if target is None:
        picked = answer(raw, made.output).reshape(len(raw), -1).argmax(axis=1)
    elif target in labels:
        picked = np.full(len(raw), labels.index(target))
    else:
        raise ExplainError(f"target={target!r} is not one of the model's classes {labels}.")
    if width == 2:  # two probabilities: the positive class unless told
        picked = picked if target is not None else np.ones(len(raw), dtype=int)
    space = "margin" if made.output == "logits" else "probability"
    return (
        _identity,
        space,
        picked,
        (None if width == 2 else np.asarray(labels, dtype=object)[picked].tolist()),
    )


def _flat(out: Any) -> Any:
    return out.reshape(out.shape[0])


def _difference(out: Any) -> Any:
    return out[:, 1] - out[:, 0]  # a two-logit classifier's log-odds of class 1


def _identity(out: Any) -> Any:
    return out


def _reduce(made: Any, raw: np.ndarray) -> np.ndarray:
    """The baseline's output in the explained space (before a class is picked)."""
    out = raw.reshape(len(raw), -1)
    if made.task == "classification" and made.output == "logits" and out.shape[1] == 2:
        return out[:, 1] - out[:, 0]
    return out[:, 0] if out.shape[1] == 1 else out


def _pick(
    values: np.ndarray, picked: np.ndarray | None, rows: np.ndarray, served: bool = False
) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if picked is not None and values.ndim == 2:
        return values[rows, picked]
    if served and values.ndim == 2:  # a binary model's probabilities, explained in log-odds: class 1
        return values[:, 1]
    return values


def _columns(made: Any, found: list[np.ndarray], frame: pd.DataFrame
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:  # fmt: skip
    """One attribution per column: a scalar group's columns one by one, a tensor column summed."""
    table: dict[str, np.ndarray] = {}
    maps: dict[str, np.ndarray] = {}
    for spec, values in zip(made.inputs, found, strict=True):
        if spec.tensor:
            (column,) = spec.columns
            maps[column] = values
            table[column] = values.reshape(len(values), -1).sum(axis=1)
        else:
            for j, column in enumerate(spec.columns):
                table[column] = values[:, j]
    return pd.DataFrame(table, index=frame.index), maps


def _float(array: np.ndarray) -> Any:
    return array.dtype if array.dtype.kind == "f" else np.float32


def _chunk(rows: int, steps: int) -> int | None:
    """Captum's ``internal_batch_size``: everything in one pass when it is small, else chunks of steps."""
    return None if rows * steps <= BATCH else max(BATCH, 2 * rows)


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple | list) else out


def _no_target(target: Any) -> None:
    if target is not None:
        raise ExplainError(f"target={target!r} is for a multiclass model; this one has one output explained.")
