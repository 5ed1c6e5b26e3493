"""The reference sample of tensor columns: the rows embedding drift compares a window against.

A reference profile (:mod:`mloop.metrics.profile`) is JSON and holds no tensor values; embedding drift
(:mod:`mloop.metrics.embedding_drift`) needs rows. :func:`reference_sample` draws at most ``rows``
(2,000 by default: what the domain classifier uses a side) of every tensor column, flattened to
``(rows, d)`` float32, and :func:`sample_to_bytes` stores them as one ``.npz`` file (NumPy's format, read
back without pickle) beside the profile: 2,000 x 784 pixels is 6 MB, 2,000 x 128 embeddings 1 MB.

>>> frame = pd.DataFrame({"image": list(np.zeros((5, 2, 2), dtype=np.float32)), "age": range(5)})
>>> sample = reference_sample(frame, rows=3)
>>> {k: v.shape for k, v in sample.items()}
{'image': (3, 4)}
>>> sample_from_bytes(sample_to_bytes(sample))["image"].dtype
dtype('float32')
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import MalformedInput
from mloop.metrics.profile import is_tensor

ROWS = 2_000


def tensor_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that :func:`~mloop.metrics.profile.build_profile` profiles as tensors."""
    return [str(c) for c in frame.columns if is_tensor(frame[c])]


def reference_sample(
    frame: pd.DataFrame, columns: Sequence[str] | None = None, *, rows: int = ROWS, seed: int = 0
) -> dict[str, np.ndarray]:
    """At most ``rows`` rows (drawn without replacement with ``default_rng(seed)``, the same rows for
    every column) of each tensor column (default: all of them), flattened to ``(rows, d)`` float32; the
    rows where a column is null are left out of that column."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 2:
        raise ValueError(f"reference_sample's rows must be an integer >= 2; got {rows!r}.")
    names = tensor_columns(frame) if columns is None else list(columns)
    picked = np.arange(len(frame))
    if len(frame) > rows:
        picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    out = {}
    for name in names:
        values = [v for v in frame[name].iloc[picked] if v is not None and not _is_nan(v)]
        if not values:
            continue
        arrays = [np.asarray(v, dtype=np.float32).ravel() for v in values]
        sizes = {a.size for a in arrays}
        if len(sizes) > 1:
            raise MalformedInput(
                f"Column {name!r} holds tensors of {len(sizes)} sizes; a reference sample needs one shape "
                "(pad or crop variable-length sequences, or leave the column out)."
            )
        out[name] = np.stack(arrays)
    return out


def sample_to_bytes(sample: Mapping[str, np.ndarray]) -> bytes:
    """The sample as ``.npz`` bytes (one array per column)."""
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {k: np.ascontiguousarray(v) for k, v in sample.items()}
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def sample_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """A sample from :func:`sample_to_bytes`'s bytes (never unpickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            return {k: stored[k] for k in stored.files}
    except (ValueError, OSError) as exc:
        raise MalformedInput(
            f"This is not a reference sample (.npz): {exc}. Rebuild it with reference_sample."
        ) from None


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


__all__ = ["ROWS", "reference_sample", "sample_from_bytes", "sample_to_bytes", "tensor_columns"]
