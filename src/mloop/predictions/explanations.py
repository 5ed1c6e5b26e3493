"""The sampled attributions of the prediction log, read back beside their predictions and labels.

An endpoint deployed with ``options={"explain_sample": 0.1}`` has a tenth of its answers explained off the
request path (:mod:`mloop.serving.sampling`); each explanation is written as an ``explained`` line that
shares the request id (and row numbers) of the answer it explains. Those lines are not predictions:
:func:`~mloop.predictions.files.read_predictions` leaves them out, and :func:`read_explanations` reads
only them, with the label feedback gave the row, if any.

>>> read_explanations(predictions_folder(project.settings), "fraud")        # doctest: +SKIP
   request_id  row  ts  model  version  prediction  base_value  output  method  attributions  label ...
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from mloop.crypto import PLAIN, ParquetFiles
from mloop.predictions.feedback import read_feedback
from mloop.predictions.files import EXPLAINED, read_table
from mloop.predictions.place import LogFolder

COLUMNS = ["request_id", "row", "ts", "model", "version", "prediction", "base_value", "output", "method",
           "attributions", "label", "labelled_at"]  # fmt: skip


def read_explanations(
    folder: Path | str | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
) -> pd.DataFrame:
    """One row per explained row with ``since <= ts < until``, oldest first (:data:`COLUMNS`):
    ``attributions`` is a dict {feature: value} that adds up, with ``base_value``, to the model's output in
    ``output``; ``label`` and ``labelled_at`` are the newest label of the row (None when it has none)."""
    place = folder if isinstance(folder, LogFolder) else Path(folder)
    table = read_table(place, endpoint, since, until, parquet)
    table = table.filter(pc.equal(table["status"], EXPLAINED))
    frame = table.select(
        ["request_id", "row", "ts", "model", "version", "prediction", "attributions"]
    ).to_pandas()
    frame = frame.drop_duplicates(["request_id", "row", "version"])  # at-least-once recovery
    frame = frame.sort_values(["ts", "request_id", "row"]).reset_index(drop=True)
    explained = [json.loads(v) for v in frame.pop("attributions")]
    frame["prediction"] = pd.Series([json.loads(v) for v in frame["prediction"]], dtype=object)
    frame["base_value"] = [float(e["base_value"]) for e in explained]
    frame["output"] = [str(e["output"]) for e in explained]
    frame["method"] = [str(e["method"]) for e in explained]
    frame["attributions"] = pd.Series([dict(e["attributions"]) for e in explained], dtype=object)
    labels = read_feedback(place, endpoint, parquet=parquet).drop_duplicates(
        ["request_id", "row"], keep="last"
    )
    labels = labels.rename(columns={"received_at": "labelled_at"})[
        ["request_id", "row", "label", "labelled_at"]
    ]
    labels["row"] = labels["row"].astype(frame["row"].dtype)
    merged = frame.merge(labels, on=["request_id", "row"], how="left")
    merged["label"] = merged["label"].astype(object).where(merged["label"].notna(), None)
    return merged[COLUMNS]
