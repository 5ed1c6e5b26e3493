"""How a network's inputs come from a frame: each input a tensor column, or scalar columns stacked into one
``(n, k)`` float32 matrix, in order. The PyTorch and ONNX flavours share it (the ONNX one without torch).

>>> inputs = [ModelInput("image", ("image",), True), ModelInput("extra", ("age", "height"), False)]
>>> [a.shape for a in arrays(inputs, frame)]       # doctest: +SKIP
[(2, 1, 8, 8), (2, 2)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.models import tensors
from mloop.models.tensors import cells


@dataclass(frozen=True)
class ModelInput:
    """One input of a network: a tensor column (``tensor``), or scalar columns stacked into (n, k)."""

    name: str
    columns: tuple[str, ...]
    tensor: bool
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": list(self.columns), "tensor": self.tensor, "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInput:
        return cls(data["name"], tuple(data["columns"]), bool(data["tensor"]), data.get("dtype", "float32"))


def arrays(inputs: list[ModelInput], frame: pd.DataFrame) -> list[np.ndarray]:
    """The batch arrays of ``frame``, one per input, in order (contiguous, of each input's dtype)."""
    out = []
    for item in inputs:
        if item.tensor:
            batch = tensors.stack(frame[item.columns[0]].tolist())
        else:
            batch = np.asarray(frame[list(item.columns)], dtype=np.float32)
        out.append(np.ascontiguousarray(batch, dtype=item.dtype))
    return out


def batches(
    inputs: list[ModelInput], specs: dict[str, Any], columns: dict[str, list[Any]]
) -> list[np.ndarray] | None:
    """The batch arrays of a request's ``columns`` (plain values: nested lists or arrays), one per input, when
    every input is a tensor column whose values convert to its signature spec (in ``specs``, by name)
    without a problem; else None, and the caller takes the general path, which names the problem. It skips
    pandas: for a small network, building and validating a DataFrame costs more than the model call."""
    out = []
    for item in inputs:
        spec = specs.get(item.columns[0])
        values = columns.get(item.columns[0])
        if not item.tensor or spec is None or spec.shape is None or values is None:
            return None
        converted, problem = tensors.convert(
            values, spec.dtype, spec.shape, nullable=False, allow_non_finite=spec.allow_non_finite
        )
        if problem is not None:
            return None
        try:
            batch = tensors.stack(converted)
        except ValueError:
            return None
        out.append(np.ascontiguousarray(batch, dtype=item.dtype))
    return out


def to_frame(inputs: list[ModelInput], values: dict[str, np.ndarray]) -> pd.DataFrame:
    """The frame whose :func:`arrays` are ``values`` (one batch array per input name)."""
    columns: dict[str, Any] = {}
    for item in inputs:
        batch = values[item.name]
        if item.tensor:
            columns[item.columns[0]] = cells(batch)
        else:
            columns.update({c: batch[:, j] for j, c in enumerate(item.columns)})
    return pd.DataFrame(columns)


def generated(signature: Any, rows: int = 2, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows of random values in the dtype (and shape) of each input of ``signature``; a variable
    dimension gets length 4."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for spec in signature.inputs:
        if spec.shape is not None:
            shape = (rows, *[d if d != -1 else 4 for d in spec.shape])
            columns[spec.name] = cells(_random(rng, spec.dtype, shape))
        else:
            columns[spec.name] = _random(rng, spec.dtype, (rows,))
    return pd.DataFrame(columns)


def _random(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 10, shape).astype(dtype)
