"""scikit-learn's bundled digits (8×8 images, 10 classes) behind a feature view, shared by the training
tests of torch models and multiclass pipelines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

import mloop as ml

image = ml.Entity("image", join_keys=["image_id"])
PIXELS = [f"p{i}" for i in range(64)]


def arrays(rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """The first ``rows`` digits as float32 pixels in [0, 1], and their labels."""
    x, y = load_digits(return_X_y=True)
    return (x[:rows] / 16.0).astype(np.float32), y[:rows]


def setup(project: ml.Project, folder: Path, model: object, rows: int = 600,
          slices: tuple[str, ...] = ("ink",)) -> ml.TrainingPipeline:  # fmt: skip
    """A pipeline over the first ``rows`` digits, one a minute: the last 20% of time is test, the 20%
    before it validation. Labels are the digit as text ("d0" ... "d9"); ``ink`` (light/heavy) slices."""
    x, y = arrays(rows)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ts = pd.date_range(start, periods=rows, freq="1min", tz="UTC").astype("datetime64[us, UTC]")
    pixels = pd.DataFrame(x.astype(np.float64), columns=PIXELS)
    features = pd.concat([pd.DataFrame({"image_id": np.arange(rows), "ts": ts - pd.Timedelta("30s")}), pixels],
                         axis=1)  # fmt: skip
    path = folder / "digits.parquet"
    features.to_parquet(path, index=False)
    view = ml.FeatureView("digits", entities=[image], source=ml.ParquetSource(str(path), timestamp="ts"),
                          ttl="1d", features=[ml.Field(p, "float64") for p in PIXELS])  # fmt: skip
    project.apply([view])
    ink = np.where(x.sum(axis=1) > np.median(x.sum(axis=1)), "heavy", "light")
    labels = pd.DataFrame({"image_id": np.arange(rows), "ts": ts, "digit": [f"d{v}" for v in y], "ink": ink})
    span = rows // 5
    return ml.TrainingPipeline(
        "digits", features=["digits:*"], label=ml.Label(labels, column="digit", timestamp="ts"), model=model,
        split=ml.TimeSplit(valid=f"{span}m", test=f"{span}m"), slices=list(slices),
        description="Reads handwritten digits.",
    )  # fmt: skip
