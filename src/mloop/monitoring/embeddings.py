"""Drift of a tensor input (images, embeddings) in a window, against the version's reference sample.

The suite (:mod:`mloop.monitoring.suite`) calls :func:`tensor_drift` for a column its profile calls a
``tensor``; the methods are those of :mod:`mloop.metrics.embedding_drift`, the domain classifier by
default (it sees a change of location and of spread in any component, and its AUC reads the same for
any window size). ``mmd`` and ``component_share`` are chosen per column like any other method
(``drift.methods`` in mloop.yaml). The work is bounded: each method subsamples the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.metrics import embedding_drift

DEFAULT = "domain_classifier"
THRESHOLDS = {"domain_classifier": embedding_drift.AUC_THRESHOLD, "mmd": embedding_drift.MMD_ALPHA,
              "component_share": embedding_drift.SHARE_THRESHOLD}  # fmt: skip
OPTION = {"domain_classifier": "threshold", "mmd": "alpha", "component_share": "threshold"}


@dataclass(frozen=True)
class TensorDrift:
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool | None
    rows: int
    note: str = ""


def tensor_drift(
    sample: np.ndarray | None, values: pd.Series, method: str | None, threshold: float | None, seed: int = 0
) -> TensorDrift:
    """Drift of the tensors ``values`` (one array or nested list per row, None where missing) against
    the reference ``sample`` ``(rows, d)``."""
    method = method or DEFAULT
    cut = THRESHOLDS[method] if threshold is None else float(threshold)
    present = [v for v in values.tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))]
    rows = len(present)
    if sample is None or not len(sample):
        return TensorDrift(method, None, None, cut, None, rows,
                           "no reference sample of this column: register the version with one "
                           "(mloop.monitoring.reference.log_reference)")  # fmt: skip
    if rows < 2:
        return TensorDrift(method, None, None, cut, None, rows, "fewer than 2 values in the window")
    try:
        current = embedding_drift.as_matrix(present)
    except ValueError:
        return TensorDrift(method, None, None, cut, None, rows, "the window's tensors differ in shape")
    if current.shape[1] != sample.shape[1]:
        return TensorDrift(method, None, None, cut, None, rows,
                           f"the window's tensors have {current.shape[1]} components, the reference "
                           f"{sample.shape[1]}: the model's input shape changed")  # fmt: skip
    finite = np.isfinite(current).all(axis=1)
    if finite.sum() < 2:
        return TensorDrift(method, None, None, cut, None, rows, "fewer than 2 finite tensors in the window")
    options: dict[str, Any] = {OPTION[method]: cut, "seed": seed}
    found = embedding_drift.embedding_drift(sample, current[finite], method, **options)
    note = f"{found.reference_rows:,} reference and {found.current_rows:,} window rows compared"
    return TensorDrift(method, found.statistic, found.p_value, cut, found.drifted, rows, note)


__all__ = ["DEFAULT", "THRESHOLDS", "TensorDrift", "tensor_drift"]
