"""Model flavours: how a kind of model is saved, loaded and asked for predictions.

A flavour is four verbs and two questions (:class:`Flavour`). Backends are chosen from one explicit table,
:data:`FLAVOURS`, and imported only when used: a kind of model is one entry
(``"torch": "mloop.models.torch:TorchFlavour [torch]"``) and one module. A flavour may also offer
``prepare(model, example, *, signature, task, output)``, which the registry calls before anything else to
turn a model and its input example into what the flavour saves (the PyTorch flavour does).

Prediction semantics are the same for every flavour, so serving and monitoring need not know which one
they hold: a binary classifier answers the probability of the positive class (``classes_[1]``) as a 1-d
array; a multiclass classifier answers the class-probability matrix, one column per class in
``classes_`` order; a regressor (or any model without probabilities) answers its values as a 1-d array.

>>> flavour = flavour_for(model)                    # doctest: +SKIP
>>> flavour.save(model, Path("out")); again = flavour.load(Path("out"))   # doctest: +SKIP
>>> flavour.predict(again, frame)                   # doctest: +SKIP
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from mloop.errors import MloopError
from mloop.plugins import Plugins


class ExportError(MloopError):
    """A model cannot be saved or converted in the form asked for (``torch.export``, ONNX); says why."""


@runtime_checkable
class Flavour(Protocol):
    """What the registry needs from a kind of model."""

    name: str

    def handles(self, model: Any) -> bool:
        """True if this flavour knows how to save ``model`` (must not import heavy libraries to decide)."""
        ...

    def save(self, model: Any, folder: Path) -> None:
        """Write the model into the empty folder ``folder``."""
        ...

    def load(self, folder: Path) -> Any:
        """Read back what :meth:`save` wrote."""
        ...

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """Predictions with the semantics of the module docstring."""
        ...

    def info(self, model: Any) -> dict[str, Any]:
        """``{"type": "module.Class", "params": {...}}`` and anything else worth recording (JSON-safe)."""
        ...


# Order matters for detection: the first flavour that handles a model wins, so the specific ones
# (LightGBM's scikit-learn wrappers are scikit-learn estimators too) come first.
FLAVOURS = Plugins(
    "model flavour",
    {
        "torch": "mloop.models.torch:TorchFlavour [torch]",
        "onnx": "mloop.models.onnx:OnnxFlavour [onnx]",
        "lightgbm": "mloop.models.lightgbm:LightGBMFlavour",
        "sklearn": "mloop.models.sklearn:SklearnFlavour",
    },
    unknown="Unknown model flavour {name!r}; flavours: {choices}.",
    error=MloopError,
)
_loaded: dict[str, Flavour] = {}


def get_flavour(name: str) -> Flavour:
    """The flavour called ``name``; an unknown name lists the choices."""
    if name not in _loaded:
        _loaded[name] = FLAVOURS.load(name)()
    return _loaded[name]


def flavour_for(model: Any) -> Flavour:
    """The first flavour in :data:`FLAVOURS` that handles ``model``."""
    for name in FLAVOURS:
        flavour = get_flavour(name)
        if flavour.handles(model):
            return flavour
    raise MloopError(
        f"No model flavour handles a {type(model).__module__}.{type(model).__qualname__}; flavours: "
        f"{', '.join(FLAVOURS)} (an object with the scikit-learn API - fit, predict, get_params - is "
        "handled by sklearn). Wrap the model in a scikit-learn estimator, or pass flavour= explicitly."
    )


def from_module(model: Any, package: str) -> bool:
    """True if ``model``'s class, or a base class, comes from ``package``: a test that imports nothing."""
    return any((getattr(cls, "__module__", "") or "").split(".")[0] == package for cls in type(model).__mro__)


def class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` made storable as JSON: numpy scalars unwrapped, non-finite floats as strings, and
    anything else (estimators inside a pipeline's params) as its short repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth < 8 and isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def ordered(frame: pd.DataFrame, names: list[str] | None) -> pd.DataFrame:
    """``frame`` with the columns the model was fitted on, in that order, when it holds them all."""
    if names and list(frame.columns) != names and set(names) <= set(frame.columns):
        return frame[names]
    return frame
