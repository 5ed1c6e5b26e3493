"""What ``mloop forget`` and ``mloop retention purge`` did (or, dry, would do)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mloop.data.erasure import DatasetErasure
from mloop.features.erasure import FeatureErasure
from mloop.predictions.erasure import PredictionErasure


@dataclass
class ForgetReport:
    """Where a data subject's rows were removed, and the model versions trained on data that held them."""

    entity: str  # the column, e.g. customer_id
    key_hmac: str  # HMAC-SHA256 of the value under the project's PII key: never the value itself
    dry_run: bool
    datasets: list[DatasetErasure] = field(default_factory=list)
    features: FeatureErasure = field(default_factory=FeatureErasure)
    predictions: PredictionErasure = field(default_factory=PredictionErasure)
    models: list[str] = field(default_factory=list)  # "model vN": retrain these

    @property
    def removed(self) -> int:
        """Rows and keys found (dry run) or removed, everywhere."""
        return (
            sum(d.rows + d.quarantined for d in self.datasets)
            + sum(self.features.push_rows.values())
            + sum(self.features.online_keys.values())
            + self.predictions.rows
            + self.predictions.labels
        )

    def places(self) -> list[tuple[str, int]]:
        """``(where, rows or keys)`` for each place visited, for a table."""
        out = [(f"dataset {d.dataset}", d.rows) for d in self.datasets]
        out += [(f"quarantine of {d.dataset}", d.quarantined) for d in self.datasets if d.quarantined]
        out += [(f"push log {name}", n) for name, n in self.features.push_rows.items()]
        out += [(f"online store {view} (keys)", n) for view, n in self.features.online_keys.items()]
        out += [("prediction log", self.predictions.rows), ("feedback labels", self.predictions.labels)]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Counts only: what the audit event records and the CLI prints (no value)."""
        return {
            "entity": self.entity,
            "key_hmac": self.key_hmac,
            "dry_run": self.dry_run,
            "removed": self.removed,
            "datasets": {
                d.dataset: {"rows": d.rows, "files": d.files, "quarantined": d.quarantined}
                for d in self.datasets
            },
            "push_log": dict(self.features.push_rows),
            "online_store": dict(self.features.online_keys),
            "prediction_log": self.predictions.to_dict(),
            "not_erased": {
                "external_sources": self.features.external,
                "composite_key_views": self.features.composite,
            },
            "models_to_retrain": list(self.models),
        }


@dataclass
class PurgeReport:
    """What retention deleted (or, dry, would delete)."""

    dry_run: bool
    prediction_log_days: int | None
    quarantine_days: int | None
    partitions: int = 0  # prediction-log day folders (each endpoint's, and feedback's)
    prediction_files: int = 0
    quarantine_files: int = 0
    quarantine_rows: int = 0

    @property
    def removed(self) -> int:
        return self.partitions + self.quarantine_files

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
