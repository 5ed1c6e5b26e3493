"""Training: experiment tracking (runs, params, metrics, artifacts), run search, the training pipeline.

>>> with project.run("fraud", params={"num_leaves": 31}) as run:   # doctest: +SKIP
...     run.log_metric("auc", 0.91)

Torch models train as scikit-learn estimators in :mod:`mloop.training.torch` (imported on demand, so
``import mloop`` does not load torch).
"""

from __future__ import annotations

from mloop.training.queries import Experiment, RunInfo
from mloop.training.run import Run, active_run
from mloop.training.search import FilterError
from mloop.training.tracking import RunService

__all__ = ["Experiment", "FilterError", "Run", "RunInfo", "RunService", "active_run"]
