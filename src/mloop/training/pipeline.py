"""``mloop.TrainingPipeline``: from feature views and labels to a registered, documented model.

>>> pipeline = ml.TrainingPipeline(
...     "fraud", features=["customer_txn_stats:*"],
...     label=ml.Label("fraud_labels", column="is_fraud", timestamp="ts"),
...     model=lightgbm.LGBMClassifier(n_estimators=300), split=ml.TimeSplit(valid="7d", test="7d"),
...     slices=["card_country"], sensitive=["age_band"])
>>> run = pipeline.run(project)          # doctest: +SKIP

One run: the point-in-time training set is built from the feature store, split by time (never randomly
across time), the model fitted (LightGBM with early stopping on the validation split), evaluated on
validation and test, per slice and for fairness gaps, a reference profile of every input and of the
prediction stored for monitoring, and the model registered with its signature, lineage and model card.
With ``group="request_id"`` the pipeline trains a learning-to-rank model (``lightgbm.LGBMRanker(
objective="lambdarank")``) on query groups: whole queries fall in one split, the fit stops early on the
validation NDCG@10, and recall@K, NDCG@K, hit rate@K and MRR of validation and test are stored on the
run (labelled impressions from :func:`mloop.training.ranking.label_impressions`).
With ``federated=Federated(clients="region")`` a torch model is trained instead by one process per
client on its own rows, only weights crossing (:mod:`mloop.training.federated`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mloop._time import parse_duration
from mloop.errors import SchemaError
from mloop.training.dataset import TrainingSet, build_training_set
from mloop.training.fitting import fit, predict_scores, seeded
from mloop.training.workspace import Workspace

DEFAULT_SEED = 0


@dataclass(frozen=True)
class Label:
    """Where the ground truth is: a dataset name (ingested), a DataFrame, or a Parquet path; the label
    ``column``; the ``timestamp`` at which each label's features are looked up. Every other column of
    the source is available as a join key, slice or sensitive attribute."""

    source: Any
    column: str
    timestamp: str


@dataclass(frozen=True)
class TimeSplit:
    """The last ``test`` of labelled time is the test set, the ``valid`` before it the validation set,
    everything earlier the training set."""

    valid: str | timedelta = "7d"
    test: str | timedelta = "7d"

    def bounds(self) -> tuple[timedelta, timedelta]:
        valid = parse_duration(self.valid, what="validation window")
        test = parse_duration(self.test, what="test window")
        assert valid is not None and test is not None
        if valid <= timedelta(0) or test <= timedelta(0):
            raise SchemaError("TimeSplit windows must be positive, like valid='7d', test='7d'.")
        return valid, test


@dataclass
class TrainingPipeline:
    """A repeatable recipe for training one model; ``run`` it, or ``tune`` it first."""

    name: str
    features: Sequence[str]
    label: Label
    model: Any
    split: TimeSplit = field(default_factory=TimeSplit)
    metrics: Sequence[str] = ()
    slices: Sequence[str] = ()
    sensitive: Sequence[str] = ()
    description: str = ""
    threshold: float | str = "f1"
    seed: int = DEFAULT_SEED
    experiment: str | None = None
    register: bool = True
    federated: Any = None  # a mloop.training.federated.Federated: train in one process per client
    group: str | None = None  # a ranker's query column (request_id): fitted on query groups, kept whole

    def training_set(self, project: Workspace) -> TrainingSet:
        """The point-in-time training set, split by time (what ``run`` fits on)."""
        return build_training_set(project, self)

    def run(
        self,
        project: Workspace,
        *,
        params: dict[str, Any] | None = None,
        data: TrainingSet | None = None,
        executor: str | Any | None = None,
    ) -> Any:
        """Build the training set, fit, evaluate, profile and register; returns the finished run. The fit
        runs on ``executor`` (default ``compute.executor`` of mloop.yaml: in this process unless set), as
        ``pipeline.run(project, executor="ray")``; everything else, the recording included, runs here."""
        from mloop.training.run_pipeline import execute

        return execute(self, project, params=params or {}, data=data, executor=executor)

    def tune(
        self,
        project: Workspace,
        space: dict[str, Any],
        *,
        trials: int = 20,
        timeout: float | None = None,
        metric: str | None = None,
        executor: str | Any | None = None,
        jobs: int | None = None,
        refit: bool = False,
    ) -> Any:
        """Hyper-parameter search with Optuna (TPE sampler, median pruning): every trial a child run of
        one parent run, the best marked; ``refit`` then runs the pipeline with the best parameters.
        Trials run ``jobs`` at a time (default 2; on Ray as many as the cluster has room for) on
        ``executor`` (default ``compute.executor``: inprocess, process, ray, ray:HOST:PORT, ray://HOST:PORT)."""
        from mloop.training.tune import tune

        if self.group is not None:  # a trial fits without query groups: it would tune another model
            raise SchemaError(
                f"Pipeline {self.name!r} trains a ranker (group={self.group!r}); tuning does not fit on query "
                "groups yet. Run it with chosen parameters: pipeline.run(project, params={...})."
            )
        return tune(self, project, space, trials=trials, timeout=timeout, metric=metric, executor=executor,
                    jobs=jobs, refit=refit)  # fmt: skip


__all__ = ["Label", "TimeSplit", "TrainingPipeline", "fit", "predict_scores", "seeded"]
