"""Training: experiment tracking (runs, params, metrics, artifacts), run search, the training pipeline.

>>> with project.run("fraud", params={"num_leaves": 31}) as run:   # doctest: +SKIP
...     run.log_metric("auc", 0.91)
"""

from __future__ import annotations

from mloop.training.queries import Experiment, RunInfo
from mloop.training.run import Run
from mloop.training.search import FilterError
from mloop.training.tracking import RunService

__all__ = ["Experiment", "FilterError", "Run", "RunInfo", "RunService"]
