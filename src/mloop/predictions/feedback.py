"""Feedback: ground-truth labels attached to logged predictions, and the join monitoring reads.

A label names a request id (and the row within a multi-row request, default 0). Labels are checked
first (a finite number, a boolean or a string; anything else is a 422 listing each bad item), then the
request ids are looked up in the prediction log: this worker's recent answers, every writer's live
segments, then the compacted Parquet. An id found nowhere is reported back as unknown, not stored, and
does not fail the batch (the caller can retry it: a prediction answered by another worker reaches its
segment within ``flush_seconds``). The caller needs ``predict`` on the endpoint that answered each
request. Accepted labels of one call are one Parquet file, written atomically::

    <data_url>/_predictions/feedback/date=<received date>/part-<time>-<pid>-<random>.parquet

A label sent twice for the same row is kept twice; :func:`labelled` uses the newest.

>>> feedback = Feedback(log)                                                          # doctest: +SKIP
>>> feedback.attach(project, [Label("9f2c...", True)]).to_dict()                      # doctest: +SKIP
{'accepted': 1, 'unknown': []}
>>> labelled(log.folder, "fraud", since=datetime(2026, 12, 1, tzinfo=UTC))            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop._time import as_utc, utcnow
from mloop.crypto import PLAIN, ParquetFiles
from mloop.errors import MalformedInput
from mloop.models.signature import FieldProblem
from mloop.predictions.files import read_predictions, write_parquet
from mloop.predictions.log import PredictionLog
from mloop.predictions.place import LogFolder

FOLDER = "feedback"
MAX_ITEMS = 10_000
MAX_LABEL_CHARS = 10_000
LABEL_TYPES = "a finite number, a boolean or a string"
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("endpoint", pa.string()),
        ("label", pa.string()),  # JSON, so numbers, booleans and strings keep their type
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Label:
    """Ground truth for row ``row`` of the request ``request_id``."""

    request_id: str
    label: Any
    row: int = 0


@dataclass(frozen=True)
class FeedbackResult:
    accepted: int
    unknown: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "unknown": self.unknown}


class LabelError(MalformedInput):
    """Some labels cannot be stored; ``problems`` holds one entry per bad item (answered as a 422)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{len(problems)} feedback item(s) cannot be stored:\n{lines}\n"
            f"Send each label as {LABEL_TYPES}, for a row the request has; nothing of this call was stored."
        )

    def to_dict(self) -> list[dict[str, str]]:
        return [{"field": p.name, "expected": p.expected, "got": p.got} for p in self.problems]


class Feedback:
    """Attaches labels to the predictions of ``log`` (one per server process, like the log)."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log
        self.place = LogFolder.of(log.folder)
        self.folder = self.place.join(FOLDER)  # a path, or an s3:// URL when data_url is on S3

    def attach(self, caller: Any, labels: Sequence[Label]) -> FeedbackResult:
        """Store the labels whose request is logged; answer how many were stored and the unknown ids."""
        actor = caller.actor
        actor.require_somewhere(
            "predict", "endpoint"
        )  # before any lookup: no answer tells a stranger a thing
        problems = [p for i, item in enumerate(labels) for p in _check(i, item, len(labels))]
        if problems:
            raise LabelError(problems)
        # A request of an endpoint the caller may not predict on is unknown to it, exactly like an id that
        # was never logged: neither its existence nor its row count is told.
        found = {rid: at for rid, at in self.log.find(item.request_id for item in labels).items()
                 if actor.can("predict", f"endpoint:{at[0]}")}  # fmt: skip
        for i, item in enumerate(labels):
            if item.request_id in found and item.row >= (rows := found[item.request_id][1]):
                problems.append(FieldProblem(_name(i, "row", len(labels)), f"a row of the request, 0 to {rows - 1}",
                                             str(item.row)))  # fmt: skip
        if problems:
            raise LabelError(problems)
        accepted = [item for item in labels if item.request_id in found]
        unknown = list(dict.fromkeys(item.request_id for item in labels if item.request_id not in found))
        if accepted:
            self._write(accepted, {rid: ep for rid, (ep, _) in found.items()})
        return FeedbackResult(len(accepted), unknown)

    def _write(self, labels: Sequence[Label], endpoints: Mapping[str, str]) -> None:
        now = utcnow()
        table = pa.Table.from_pydict(
            {
                "request_id": [item.request_id for item in labels],
                "row": [item.row for item in labels],
                "endpoint": [endpoints[item.request_id] for item in labels],
                "label": [json.dumps(item.label) for item in labels],
                "received_at": [now] * len(labels),
            },
            schema=SCHEMA,
        )
        name = f"part-{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{secrets.token_hex(4)}.parquet"
        target = self.place.storage.join(self.folder, f"date={now.date().isoformat()}", name)
        with self.place.storage.reaching():
            write_parquet(table, target, self.log.parquet)

    def read(
        self, endpoint: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        return read_feedback(self.log.folder, endpoint, since, until, self.log.parquet)

    def labelled(
        self, endpoint: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        self.log.flush()
        return labelled(self.log.folder, endpoint, since, until, self.log.parquet)


def _name(i: int, what: str, count: int) -> str:
    return what if count == 1 else f"items.{i}.{what}"


def _check(i: int, item: Label, count: int) -> list[FieldProblem]:
    problems = []
    rid = item.request_id
    if not isinstance(rid, str) or not 0 < len(rid) <= 200:
        problems.append(FieldProblem(_name(i, "request_id", count), "a request id from a prediction's answer",
                                     repr(rid)[:80]))  # fmt: skip
    if isinstance(item.row, bool) or not isinstance(item.row, int) or item.row < 0:
        problems.append(FieldProblem(_name(i, "row", count), "a row index, 0 or more", repr(item.row)[:80]))
    got = _label_problem(item.label)
    if got is not None:
        problems.append(FieldProblem(_name(i, "label", count), LABEL_TYPES, got))
    return problems


def _label_problem(label: Any) -> str | None:
    if isinstance(label, bool | int):
        return None
    if isinstance(label, float):
        return None if math.isfinite(label) else f"{label} (not a finite number)"
    if isinstance(label, str):
        too_long = len(label) > MAX_LABEL_CHARS
        return f"a string of {len(label):,} characters (at most {MAX_LABEL_CHARS:,})" if too_long else None
    if label is None:
        return "null"
    kinds: dict[type, str] = {dict: "an object", list: "a list"}
    kind = kinds.get(type(label), type(label).__name__)
    return f"{kind}: {json.dumps(label, default=str)[:60]}" if isinstance(label, dict | list) else kind


# ---- readers ------------------------------------------------------------------------------------------


def read_feedback(
    folder: Path | str | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
) -> pd.DataFrame:
    """Every stored label with ``since <= received_at < until``, oldest first: request_id, row, endpoint,
    label (the value as sent), received_at. ``folder`` is the prediction log's folder."""
    place = LogFolder.of(folder if isinstance(folder, LogFolder) else Path(folder))
    with place.storage.reaching():
        parts = [p for p in place.storage.list(place.join(FOLDER))
                 if p.rsplit("/", 2)[-2].startswith("date=") and p.rsplit("/", 1)[-1].startswith("part-")]  # fmt: skip
        table = parquet.dataset(parts, schema=SCHEMA).to_table() if parts else SCHEMA.empty_table()
    mask = None
    times = [since and pa.scalar(as_utc(since), SCHEMA.field("received_at").type),
             until and pa.scalar(as_utc(until), SCHEMA.field("received_at").type)]  # fmt: skip
    tests = [(pc.equal, "endpoint", endpoint), (pc.greater_equal, "received_at", times[0]),
             (pc.less, "received_at", times[1])]  # fmt: skip
    for op, column, value in tests:
        if value is not None:
            test = op(table[column], value)
            mask = test if mask is None else pc.and_(mask, test)
    frame = (table if mask is None else table.filter(mask)).to_pandas()
    frame = frame.sort_values(["received_at", "request_id", "row"], kind="stable").reset_index(drop=True)
    frame["label"] = pd.Series([json.loads(v) for v in frame["label"]], dtype=object).infer_objects()
    return frame


def labelled(
    folder: Path | str | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
) -> pd.DataFrame:
    """Logged predictions with ``since <= ts < until`` that have a label: the columns of
    :func:`~mloop.predictions.files.read_predictions` plus ``label`` and ``labelled_at`` (the newest
    label of each row)."""
    predictions = read_predictions(folder, endpoint, since, until, parquet)
    labels = read_feedback(folder, endpoint, parquet=parquet)
    labels = labels.drop_duplicates(["request_id", "row"], keep="last")
    labels = labels.rename(columns={"received_at": "labelled_at"}).drop(columns=["endpoint"])
    labels["row"] = labels["row"].astype(predictions["row"].dtype)
    return predictions.merge(labels, on=["request_id", "row"], how="inner")
