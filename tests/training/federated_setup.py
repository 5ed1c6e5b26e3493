"""A federated pipeline's data: scikit-learn's breast cancer set behind a feature view, its labels in a
Parquet file with a label-skewed ``region`` (three clients), and a small MLP (importable by the spawned
client processes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer

import mloop as ml

patient = ml.Entity("patient", join_keys=["patient_id"])
FEATURES = [f"f{i}" for i in range(30)]
REGIONS = ("north", "south", "west")


class MLP(torch.nn.Module):
    def __init__(self, inputs: int = 30, hidden: int = 8, out: int = 2) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def regions(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A label-skewed region per row: north holds mostly malignant (0), west mostly benign (1)."""
    rng = np.random.default_rng(seed)
    draw = rng.random(len(labels))
    skewed = np.where(labels == 0, np.where(draw < 0.6, 0, np.where(draw < 0.85, 1, 2)),
                      np.where(draw < 0.15, 0, np.where(draw < 0.45, 1, 2)))  # fmt: skip
    return np.asarray(REGIONS)[skewed]


def setup(
    project: ml.Project, folder: Path, model: object, rows: int = 360, **pipeline: object
) -> ml.TrainingPipeline:
    """A pipeline over the first ``rows`` patients, one a minute; labels from a Parquet file (each client
    reads its own rows from it), the last 20% of each client's time its test set, the 20% before it valid."""
    x, y = load_breast_cancer(return_X_y=True)
    x, y = ((x - x.mean(axis=0)) / x.std(axis=0))[:rows], y[:rows]
    ts = pd.date_range(datetime(2026, 1, 1, tzinfo=UTC), periods=rows, freq="1min", tz="UTC").astype(
        "datetime64[us, UTC]"
    )
    features = pd.concat([pd.DataFrame({"patient_id": np.arange(rows), "ts": ts - pd.Timedelta("30s")}),
                          pd.DataFrame(x, columns=FEATURES)], axis=1)  # fmt: skip
    features.to_parquet(folder / "patients.parquet", index=False)
    view = ml.FeatureView("patients", entities=[patient], source=ml.ParquetSource(str(folder / "patients.parquet"), timestamp="ts"),
                          ttl="1d", features=[ml.Field(f, "float64") for f in FEATURES])  # fmt: skip
    project.apply([view])
    labels = pd.DataFrame({"patient_id": np.arange(rows), "ts": ts, "benign": y, "region": regions(y)})
    labels.to_parquet(folder / "labels.parquet", index=False)
    span = rows // 5
    return ml.TrainingPipeline(
        "diagnosis", features=["patients:*"], label=ml.Label(str(folder / "labels.parquet"), column="benign", timestamp="ts"),
        model=model, split=ml.TimeSplit(valid=f"{span}m", test=f"{span}m"), description="Flags tumours as benign.",
        **pipeline,  # type: ignore[arg-type]
    )  # fmt: skip
