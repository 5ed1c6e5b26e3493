"""What a neural network's output means, turned into mloop's prediction semantics with NumPy alone (the
PyTorch and ONNX flavours share it, and the ONNX one must work without torch).

A module's raw output is one of three things, which the flavour records when the model is registered:

- ``"values"``: a regressor's values, or anything that is not a class score: answered as they are (an
  ``(n, 1)`` output as a 1-d array);
- ``"logits"``: unnormalised class scores: a softmax over the last dimension (a sigmoid for one column or a
  1-d output, which is a binary classifier's logit of the positive class);
- ``"probabilities"``: class probabilities already.

A classifier then answers as every flavour does: the positive class's probability as a 1-d array for two
classes, the class-probability matrix for more.

>>> answer(np.array([[0.0, 0.0]]), "logits")
array([0.5])
>>> answer(np.array([[2.0], [4.0]]), "values")
array([2., 4.])
"""

from __future__ import annotations

import numpy as np

OUTPUTS = ("values", "logits", "probabilities")


def answer(raw: np.ndarray, output: str) -> np.ndarray:
    """The prediction a caller gets from a network's raw output ``raw`` (first dimension: the batch)."""
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if output == "values":
        return values
    if output == "logits":
        values = _sigmoid(values) if values.ndim == 1 else _softmax(values)
    if values.ndim == 2 and values.shape[1] == 2:
        return values[:, 1]
    return values


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = shifted / shifted.sum(axis=-1, keepdims=True)
    return out
