"""The training set of a pipeline: labels joined point in time with their features, split by time."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from mloop.data.sources import ParquetSource
from mloop.errors import NotFound, SchemaError
from mloop.features.definitions import DatasetSource
from mloop.training.ranking import query_times
from mloop.training.workspace import Workspace


@dataclass
class TrainingSet:
    frame: pd.DataFrame  # label-source columns, then the features; sorted by time
    features: list[str]  # the model's input columns
    label: str
    timestamp: str
    task: str  # binary | multiclass | regression
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    fingerprint: str
    views: list[dict[str, Any]]
    time_range: tuple[datetime, datetime]
    boundaries: tuple[datetime, datetime]  # validation starts after the first, test after the second
    notes: list[str] = field(default_factory=list)
    group: str | None = None  # a ranking set's query column: rows of one query are contiguous in each split

    def summary(self) -> dict[str, Any]:
        balance = float(self.frame[self.label].mean()) if self.task == "binary" else None
        return {
            "rows": {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)},
            "time_range": [self.time_range[0].isoformat(), self.time_range[1].isoformat()],
            "split": {
                "valid_after": self.boundaries[0].isoformat(),
                "test_after": self.boundaries[1].isoformat(),
            },
            "label": self.label,
            "task": self.task,
            "label_balance": None if balance is None else round(balance, 6),
            "label_classes": self._class_counts(),
            "features": list(self.features),
            "views": self.views,
            "fingerprint": self.fingerprint,
            "notes": list(self.notes),
        }

    def _class_counts(self) -> dict[str, int] | None:
        if self.task != "multiclass":
            return None
        counts = self.frame[self.label].value_counts(sort=False)
        return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}


def build_training_set(project: Workspace, pipeline: Any) -> TrainingSet:
    label = pipeline.label
    labels = load_labels(project, label.source)
    group = getattr(pipeline, "group", None)
    needed = [
        label.column,
        label.timestamp,
        *pipeline.slices,
        *pipeline.sensitive,
        *([group] if group else []),
    ]
    absent = [c for c in needed if c not in labels.columns]
    if absent:
        raise SchemaError(
            f"The label source has no column(s) {absent} (it has {list(labels.columns)}); the label, its "
            "timestamp, slices and sensitive columns must all be in it."
        )
    stamp = labels[label.timestamp]
    if not pd.api.types.is_datetime64_any_dtype(stamp) or getattr(stamp.dt, "tz", None) is None:
        raise SchemaError(
            f"Label timestamp {label.timestamp!r} must hold timezone-aware times; localize it: "
            f"df[{label.timestamp!r}] = df[{label.timestamp!r}].dt.tz_localize('UTC')."
        )
    notes: list[str] = []
    missing = labels[label.column].isna()
    if len(labels) == 0 or missing.all():
        raise SchemaError(f"The label source has no labelled rows in {label.column!r}: nothing to train on.")
    if missing.any():
        notes.append(f"{int(missing.sum())} rows without a label were left out")
        labels = labels[~missing]
    if group:  # a query's rows together, queries in time order: LightGBM takes groups as contiguous runs
        labels["__query_ts__"] = query_times(labels, group, label.timestamp)
        labels = labels.sort_values(["__query_ts__", group], kind="stable").drop(columns="__query_ts__")
        labels = labels.reset_index(drop=True)
        task = _ranking_task(labels[label.column], label.column)
    else:
        labels = labels.sort_values(label.timestamp, kind="stable").reset_index(drop=True)
        task = _task(labels[label.column], label.column, classifier=is_classifier(pipeline.model))
    joined = project.features.historical(labels, list(pipeline.features), timestamp=label.timestamp)
    features = [c for c in joined.columns if c not in labels.columns]
    if not features:
        raise SchemaError(
            "The pipeline's features resolved to no columns; name them as 'view:feature' or 'view:*'."
        )
    _check_coverage(
        joined, _null_when_absent(project, pipeline.features, features), labels[label.timestamp], notes
    )
    start, end = labels[label.timestamp].min(), labels[label.timestamp].max()
    valid_span, test_span = pipeline.split.bounds()
    test_after, valid_after = end - test_span, end - test_span - valid_span
    # a query is split by its first time, so its rows never straddle two splits
    times = query_times(joined, group, label.timestamp) if group else joined[label.timestamp]
    parts = {
        "train": joined[times <= valid_after],
        "valid": joined[(times > valid_after) & (times <= test_after)],
        "test": joined[times > test_after],
    }
    for part, rows in parts.items():
        if len(rows) == 0:
            raise SchemaError(
                f"The {part} split is empty: labels run from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
                f"validation starts after {valid_after:%Y-%m-%d %H:%M} and test after {test_after:%Y-%m-%d %H:%M}. "
                "Give more labelled history or shorter windows: TimeSplit(valid=..., test=...)."
            )
        if task != "regression" and part == "train" and rows[label.column].nunique() < 2:
            raise SchemaError(
                f"The training split holds only label {rows[label.column].iloc[0]!r}: a classifier needs two "
                "classes or more. Give more labelled history, or check the label column."
            )
    definitions = project.features.definitions()
    view_names = sorted({ref.split(":")[0] for ref in pipeline.features})
    views = []
    for name in view_names:
        for kind in ("feature_view", "on_demand_view"):
            stored = definitions.get((kind, name))
            if stored is not None:
                views.append({"name": name, "kind": kind, "version": stored.version})
                if kind == "on_demand_view":
                    views.extend(
                        {"name": ref.split(":")[0], "kind": "feature_view",
                         "version": definitions[("feature_view", ref.split(":")[0])].version}
                        for ref in stored.spec["inputs"]
                    )  # fmt: skip
    digest = fingerprint(joined[[label.timestamp, label.column, *features]])
    return TrainingSet(
        frame=joined, features=features, label=label.column, timestamp=label.timestamp, task=task,
        train=parts["train"], valid=parts["valid"], test=parts["test"], fingerprint=digest,
        views=_unique(views), time_range=(start.to_pydatetime(), end.to_pydatetime()),
        boundaries=(valid_after.to_pydatetime(), test_after.to_pydatetime()), notes=notes, group=group,
    )  # fmt: skip


def load_labels(project: Workspace, source: Any) -> pd.DataFrame:
    """A label source as a DataFrame: a DataFrame, an ingested dataset's name, or a Parquet/CSV path."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    if isinstance(source, DatasetSource):
        return project.data.read(source.dataset)
    if isinstance(source, ParquetSource):
        return pd.read_parquet([str(p) for p in source.files()])  # type: ignore[call-overload]  # pyarrow reads a list of files; pandas-stubs says one
    if isinstance(source, str | Path):
        path = Path(source)
        if path.suffix.lower() == ".parquet" and path.exists():
            return pd.read_parquet(path)
        if path.suffix.lower() == ".csv" and path.exists():
            return pd.read_csv(path)
        try:
            return project.data.read(str(source))
        except NotFound:
            raise NotFound(
                f"Label source {source!r} is neither an ingested dataset nor a Parquet/CSV file; ingest it "
                "(mloop data ingest FILE --dataset NAME) or pass a DataFrame."
            ) from None
    raise SchemaError(
        f"Cannot read labels from a {type(source).__name__}: pass a dataset name, a path or a DataFrame."
    )


def _ranking_task(values: pd.Series, column: str) -> str:
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or (numbers < 0).any() or (numbers != np.floor(numbers)).any():
        raise SchemaError(
            f"A ranking label must be a relevance grade, a whole number 0 or more (0 = not clicked, 1 = "
            f"clicked, 2 = bought); {column!r} holds values like {values.head(3).tolist()}."
        )
    return "ranking"


def _task(values: pd.Series, column: str, *, classifier: bool) -> str:
    distinct = pd.unique(values.dropna())
    if len(distinct) < 2 and (
        classifier or pd.api.types.is_bool_dtype(values) or set(distinct.tolist()) <= {0, 1}
    ):
        raise SchemaError(
            f"Label {column!r} has a single class ({distinct[0]!r}): a classifier needs two or more. "
            "Check the label column or the time range of the labels."
        )
    if pd.api.types.is_bool_dtype(values) or set(distinct.tolist()) <= {0, 1}:
        return "binary"
    if classifier:
        return "multiclass"
    if pd.api.types.is_numeric_dtype(values):
        return "regression"
    raise SchemaError(
        f"Label {column!r} holds {values.dtype} values like {distinct[:3].tolist()}: use a classifier for "
        "classes (0/1 for binary, any labels for multiclass), or numbers with a regressor."
    )


def _check_coverage(joined: pd.DataFrame, features: list[str], times: pd.Series, notes: list[str]) -> None:
    """Labels whose times fall outside the feature data find no features: refuse when none does."""
    empty = joined[features].isna().all(axis=1)
    if empty.all():
        raise SchemaError(
            f"No label row found any feature value: the labels run from {times.min():%Y-%m-%d} to {times.max():%Y-%m-%d} "
            "UTC, outside the feature data (or beyond its TTL). Check the label timestamps against the sources "
            "of the feature views."
        )
    if empty.mean() > 0.5:
        notes.append(
            f"{empty.mean():.0%} of label rows found no feature value (labels outside the feature data?)"
        )


def _null_when_absent(project: Workspace, refs: list[str], features: list[str]) -> list[str]:
    """The features that are null when an entity has no data at that time (plain features and mean, min,
    max, last); count, sum and distinct_count are 0 instead, so they cannot tell."""
    zero = set()
    for ref in refs:
        view = project.features.get(ref.split(":")[0])
        for aggregation in getattr(view, "aggregations", ()):
            if aggregation.fn in ("count", "sum", "distinct_count"):
                zero.add(aggregation.feature)
    telling = [f for f in features if f not in zero]
    return telling or features


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        key = (item["name"], item["kind"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def fingerprint(frame: pd.DataFrame) -> str:
    """A hash of the joined training frame (values, column names and order): the same data, the same
    fingerprint, in any process."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False, categorize=False)
    digest.update(np.ascontiguousarray(hashed.to_numpy()).tobytes())
    return digest.hexdigest()
