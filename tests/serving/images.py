"""Models for serving tests.

A tensor model without torch: a scikit-learn pipeline over 8x8 images (an ``image`` column of ``(1, 8, 8)``
float32 arrays) that stacks the column, flattens it and classifies. Its steps are NumPy and operator
functions, so the pickled model loads in a ``mloop serve`` subprocess. And a three-class model over scalar
columns."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from mloop import Project

SHAPE = (1, 8, 8)


def images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` images of SHAPE; the label is whether the top half is brighter than the bottom."""
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def labels(batch: np.ndarray) -> np.ndarray:
    return (batch[:, 0, :4].mean(axis=(1, 2)) > batch[:, 0, 4:].mean(axis=(1, 2))).astype(int)


def frame(batch: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"image": list(batch)})


def register(project: Project, name: str = "digits") -> Any:
    """Register the image classifier as ``name``; returns the fitted pipeline."""
    train = images(300)
    model = make_pipeline(
        FunctionTransformer(operator.itemgetter("image")),
        FunctionTransformer(np.stack),
        FunctionTransformer(np.reshape, kw_args={"shape": (-1, int(np.prod(SHAPE)))}),
        LogisticRegression(max_iter=500),
    ).fit(frame(train), labels(train))
    project.models.register(name, model, input_example=frame(train[:5]))
    return model


def tabular() -> tuple[pd.DataFrame, np.ndarray]:
    """Thirty rows of a, b (floats) and s (text) labelled lo, mid or hi by a."""
    x = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 3, "s": ["u", "v", "w"] * 10})
    return x, np.array(["lo", "mid", "hi"])[(x["a"] // 10).astype(int)]


def register_multiclass(project: Project, name: str = "tri") -> Any:
    """Register a three-class model over scalar columns (its outputs: hi, lo, mid)."""
    x, y = tabular()
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["s"]), remainder="passthrough"), LogisticRegression()
    ).fit(x, y)
    project.models.register(name, model, input_example=x)
    return model
