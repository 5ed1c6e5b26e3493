"""The scikit-learn flavour: any estimator with the scikit-learn API, pipelines included.

Saved with joblib (pickle), beside the scikit-learn and Python versions it was saved with: a pickle is only
safe to load under the versions that wrote it, so loading under others warns with both. Unpickling runs
code, so load only blobs whose digest the registry recorded (the registry checks it on every load).
"""

from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.models.flavours import class_name, json_safe, ordered

MODEL_FILE = "model.joblib"
META_FILE = "sklearn.json"


class ModelVersionWarning(UserWarning):
    """A model is loaded under library versions other than those it was saved with."""


class SklearnFlavour:
    name = "sklearn"

    def handles(self, model: Any) -> bool:
        return all(callable(getattr(model, attr, None)) for attr in ("fit", "get_params")) and (
            callable(getattr(model, "predict", None)) or callable(getattr(model, "predict_proba", None))
        )

    def save(self, model: Any, folder: Path) -> None:
        import joblib
        import sklearn

        joblib.dump(model, folder / MODEL_FILE)
        meta = {
            "class": class_name(model),
            "sklearn_version": sklearn.__version__,
            "python_version": platform.python_version(),
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    def load(self, folder: Path) -> Any:
        import joblib
        import sklearn

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        saved = meta.get("sklearn_version")
        if saved != sklearn.__version__:
            warnings.warn(
                f"This {meta.get('class', 'model')} was saved with scikit-learn {saved} and is loaded with "
                f"scikit-learn {sklearn.__version__}; its predictions may differ or fail. Install "
                f"scikit-learn=={saved} where it is served, or retrain and register it again.",
                ModelVersionWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            # scikit-learn's own warning says the same with less context; ours is above.
            warnings.filterwarnings("ignore", message=".*[Tt]rying to unpickle estimator.*")
            return joblib.load(folder / MODEL_FILE)

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        from sklearn.base import is_classifier

        frame = ordered(frame, _feature_names(model))
        if is_classifier(model) and callable(getattr(model, "predict_proba", None)):
            proba = np.asarray(model.predict_proba(frame))
            return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
        return np.asarray(model.predict(frame))

    def info(self, model: Any) -> dict[str, Any]:
        from sklearn.base import is_classifier, is_regressor

        out: dict[str, Any] = {"type": class_name(model), "params": json_safe(model.get_params(deep=False))}
        out["task"] = (
            "classification" if is_classifier(model) else "regression" if is_regressor(model) else None
        )
        classes = getattr(model, "classes_", None)
        if classes is not None:
            out["classes"] = json_safe(list(classes))
        names = _feature_names(model)
        if names:
            out["features"] = names
        out["allow_nan"] = _allows_nan(model)
        if hasattr(model, "steps"):
            out["steps"] = [f"{name}: {class_name(step)}" for name, step in model.steps]
        return out


def _feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _allows_nan(model: Any) -> bool:
    """Whether the model takes missing values: from scikit-learn's ``allow_nan`` tag; a pipeline takes them
    if every step up to its first imputer does."""
    for step in [s for _, s in getattr(model, "steps", [])] or [model]:
        if step is None or step == "passthrough":
            continue
        if type(step).__name__.endswith("Imputer"):
            return True
        try:
            if not step.__sklearn_tags__().input_tags.allow_nan:
                return False
        except Exception:  # an estimator without scikit-learn's tags: assume it does not
            return False
    return True
