"""Store what drift is measured against, for a model registered by hand (a training pipeline does it for
its own models): the reference profile and, for tensor inputs, the reference sample.

>>> with project.run("digits") as run:                                              # doctest: +SKIP
...     lineage = log_reference(run, train_frame, prediction=model_proba, classes=list(range(10)))
...     run.register(model, "digits", input_example=example, lineage=lineage)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from mloop.metrics.profile import build_profile, profile_to_json
from mloop.metrics.reference import ROWS, reference_sample, sample_to_bytes


class _Run(Protocol):
    def log_artifact(self, source: bytes, name: str | None = None) -> str: ...


def log_reference(
    run: _Run, frame: pd.DataFrame, *, prediction: np.ndarray | pd.Series | None = None,
    classes: list[Any] | None = None, rows: int = ROWS, seed: int = 0,
) -> dict[str, str]:  # fmt: skip
    """Profile ``frame`` (the model's inputs as it was trained on them, one column per input; a tensor
    input is a column of arrays) and its ``prediction``, log the profile and the tensor columns'
    reference sample as artifacts of ``run``, and return the lineage entries to register the version with
    (``reference_profile``, and ``reference_sample`` when there is a tensor column)."""
    profile = build_profile(frame, prediction=prediction, classes=classes, seed=seed)
    lineage = {
        "reference_profile": run.log_artifact(profile_to_json(profile).encode(), "reference_profile.json")
    }
    sample = reference_sample(frame, rows=rows, seed=seed)
    if sample:
        lineage["reference_sample"] = run.log_artifact(sample_to_bytes(sample), "reference_sample.npz")
    return lineage


__all__ = ["log_reference"]
