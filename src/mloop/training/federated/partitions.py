"""Where a client's rows come from. A :class:`Partition` is a recipe, not data: it is sent to the client
process, which loads its own rows with it; the driver never holds them.

- :class:`PipelinePartition`: a training pipeline's label source filtered on the partition key, joined
  with the features point in time and split by time in the client, exactly as the pipeline would.
- :class:`FramePartition`: the rows of a Parquet file whose key column holds the client's value (pyarrow
  reads only those), with a column naming each row's split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mloop.errors import SchemaError

SPLITS = ("train", "valid", "test")


@dataclass
class ClientData:
    """One client's rows, in the client process only: inputs and labels per split, and their fingerprint."""

    x: dict[str, np.ndarray]  # split → (rows, features) float32
    y: dict[str, np.ndarray]  # split → labels
    features: list[str]
    fingerprint: str


class Partition(Protocol):
    """Loads one client's rows, in that client's process."""

    @property
    def name(self) -> str: ...

    def load(self) -> ClientData: ...


@dataclass(frozen=True)
class FramePartition:
    """The rows of the Parquet file ``path`` where ``key == value``; ``split`` names each row's split
    (train, valid or test).

    >>> FramePartition("north", "rows.parquet", "region", "north", ["x1", "x2"], "label")  # doctest: +SKIP
    """

    name: str
    path: str
    key: str
    value: Any
    features: tuple[str, ...] | list[str]
    label: str
    split: str = "split"

    def load(self) -> ClientData:
        from mloop.training.dataset import fingerprint

        columns = [self.split, self.label, *self.features]
        rows = pd.read_parquet(self.path, columns=columns, filters=[(self.key, "==", self.value)])
        if len(rows) == 0:
            raise SchemaError(
                f"Client {self.name!r} has no rows where {self.key} == {self.value!r} in {self.path}."
            )
        parts = {s: rows[rows[self.split] == s] for s in SPLITS}
        return ClientData(
            x={s: numeric(p, list(self.features)) for s, p in parts.items()},
            y={s: p[self.label].to_numpy() for s, p in parts.items()},
            features=list(self.features),
            fingerprint=fingerprint(rows[columns]),
        )


@dataclass(frozen=True)
class PipelinePartition:
    """A training pipeline's rows where the label source's ``key == value``, built in the client:
    ``opener()`` opens the project there (a picklable callable, like ``partial(Project.open, root)``)."""

    name: str
    opener: Callable[[], Any]
    pipeline: Any
    key: str
    value: Any

    def load(self) -> ClientData:
        from mloop.training.dataset import build_training_set, load_labels

        project = self.opener()
        try:
            source = self.pipeline.label.source
            if isinstance(source, str | Path) and str(source).lower().endswith(".parquet"):
                mine = pd.read_parquet(source, filters=[(self.key, "==", self.value)])  # only these rows
            else:
                labels = load_labels(project, source)
                mine = labels[labels[self.key] == self.value].reset_index(drop=True)
                del labels  # the other clients' rows are not kept (a real client would not have them)
            label = dataclasses.replace(self.pipeline.label, source=mine)
            data = build_training_set(
                project, dataclasses.replace(self.pipeline, label=label, federated=None)
            )
        finally:
            close = getattr(project, "close", None)
            if callable(close):
                close()
        return ClientData(
            x={s: numeric(getattr(data, s), data.features) for s in SPLITS},
            y={s: getattr(data, s)[data.label].to_numpy() for s in SPLITS},
            features=list(data.features),
            fingerprint=data.fingerprint,
        )


def numeric(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The feature columns as a float32 matrix (missing values as 0); a text column is refused (clients could not agree on its
    categories without sharing them)."""
    text = [
        c
        for c in features
        if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if text:
        raise SchemaError(
            f"Federated training takes numeric features; {text} hold text. Encode them as numbers in the "
            "feature view (an on-demand view), or leave them out of the pipeline's features."
        )
    return frame[features].to_numpy(
        dtype=np.float32, na_value=0.0
    )  # a missing value reads as 0, the same in every client
