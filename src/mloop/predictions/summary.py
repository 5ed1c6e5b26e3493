"""Per-minute summaries of the prediction log for the figures read often: live traffic, SLO budgets and
the prediction distribution of the dashboard, without decoding the log's JSON columns.

Request counts and latencies count the *first row* of each record (one per request and version that
answered it: ``ok``, ``error`` or ``shadow``) per minute; the prediction histogram counts every row. A compacted Parquet part never changes under its name
(compaction names it after its segment; erasure rewrites it, which changes its size), so what a summary
takes from a part is computed once per process and kept, keyed by the part's location, size and
modification time (``CACHED_PARTS`` entries at most, least recently used dropped). The live segments are
read on every call. A segment compacted between listing the segments and listing the parts is counted
once: its records are dropped when its part is listed (the part is named after it).

Ranges are whole minutes: a minute is in ``[since, until)`` when it starts there (``since`` is floored to
its minute). Figures match a row-by-row read of :func:`~mloop.predictions.files.read_predictions` over the
same minutes (tested).

>>> minute_counts(folder, "fraud", since, until, thresholds_ms=(50.0,))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop._time import as_utc
from mloop.crypto import PLAIN, ParquetFiles
from mloop.predictions.files import SCHEMA, parquet_parts, parse, to_table
from mloop.predictions.place import LogFolder

MINUTE_US = 60_000_000
CACHED_PARTS = 20_000
STATUSES = ("ok", "error", "shadow", "timeout")  # appended only: a status's code is its place here
_BASE = ["ts", "version", "status", "latency_s"]


class _Memo:
    """What each summary took from each part: bounded, least recently used dropped, thread-safe."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = (
            size,
            OrderedDict[tuple[Any, ...], pd.DataFrame](),
            threading.Lock(),
        )

    def get(self, key: tuple[Any, ...], make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        made = make()
        with self.lock:
            self.items[key] = made
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return made


_MEMO = _Memo(CACHED_PARTS)


def minute_counts(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime,
                  parquet: ParquetFiles = PLAIN, thresholds_ms: Sequence[float] = ()) -> pd.DataFrame:  # fmt: skip
    """``minute`` (its start, UTC), ``version``, ``status``, ``requests`` and, per threshold ``i``,
    ``within_<i>``: the ``ok`` answers whose latency was at most ``thresholds_ms[i]``."""
    thresholds = tuple(float(t) for t in thresholds_ms)
    names = [f"within_{i}" for i in range(len(thresholds))]

    def count(table: pa.Table) -> pd.DataFrame:
        frame = _first_rows(table)
        for name, limit in zip(names, thresholds, strict=True):
            frame[name] = ((frame["status"] == "ok") & (frame["latency_s"] * 1000.0 <= limit)).astype(
                np.int64
            )
        frame["requests"] = 1
        return frame.groupby(["minute", "version", "status"], as_index=False, observed=True)[
            ["requests", *names]
        ].sum()

    frame = _summaries(folder, endpoint, since, until, parquet, ("counts", thresholds), _BASE, count)
    if frame.empty:
        return pd.DataFrame({"minute": pd.Series([], dtype="datetime64[us, UTC]"), "version": [], "status": [],
                             "requests": [], **{n: [] for n in names}})  # fmt: skip
    out = frame.groupby(["minute", "version", "status"], as_index=False, observed=True)[
        ["requests", *names]
    ].sum()
    out["minute"] = pd.to_datetime(out["minute"], unit="us", utc=True)
    return out


def prediction_histograms(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime,
                          parquet: ParquetFiles, edges: Mapping[tuple[str, int], Sequence[float | None]]
                          ) -> dict[tuple[str, int], np.ndarray]:  # fmt: skip
    """Per ``(model, version)`` of ``edges``: counts of its numeric ``ok`` predictions (every row) in each
    bin of its edges, binned as :func:`~mloop.metrics.profile.bin_frequencies` bins them (the end edges
    are ignored: the first and last bins are open; a value equal to an edge falls in the bin below it); a
    prediction that is not a number (a label, a list) is left out. One read of each part for them all."""
    wanted = sorted((model, int(version), tuple(e)) for (model, version), e in edges.items())
    if not wanted:  # no version with a reference to bin against: nothing to read
        return {}

    def count(table: pa.Table) -> pd.DataFrame:
        table = table.filter(pc.equal(table["status"], "ok"))  # every row is a prediction
        values, models = _numbers(table["prediction"]), table["model"].to_numpy(zero_copy_only=False)
        versions = table["version"].to_numpy()
        minute = table["ts"].cast(pa.int64()).to_numpy() // MINUTE_US * MINUTE_US
        found = []
        for i, (model, version, bounds) in enumerate(wanted):
            mine = (models == model) & (versions == version) & np.isfinite(values)
            inner = np.asarray(bounds[1:-1], dtype=np.float64)
            found.append(pd.DataFrame({"pair": i, "minute": minute[mine],
                                       "bin": np.searchsorted(inner, values[mine], side="left")}))  # fmt: skip
        return pd.concat(found).groupby(["pair", "minute", "bin"], as_index=False).size()

    columns = [*_BASE, "model", "prediction"]
    frame = _summaries(folder, endpoint, since, until, parquet, ("histogram", tuple(wanted)), columns, count)
    out = {}
    for i, (model, version, bounds) in enumerate(wanted):
        counts = np.zeros(len(bounds) - 1, np.int64)
        if len(frame):
            mine = frame[frame["pair"] == i]
            np.add.at(counts, mine["bin"].to_numpy(), mine["size"].to_numpy())
        out[(model, version)] = counts
    return out


def _numbers(text: pa.ChunkedArray) -> np.ndarray:
    """The JSON predictions as floats, NaN for those that are not a number (a label, a list, null)."""
    try:  # a column of plain numbers, the common case: parsed by Arrow, ten times pandas' speed
        return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


# ---- reading ------------------------------------------------------------------------------------------


def _first_rows(table: pa.Table) -> pd.DataFrame:
    """Each record's first row of the statuses counted, with its minute (microseconds since the epoch)."""
    keep = pc.and_(pc.equal(table["row"], 0), pc.is_in(table["status"], pa.array(STATUSES)))
    table = table.filter(keep)
    ts = table["ts"].cast(pa.int64()).to_numpy()
    codes = pc.index_in(table["status"], pa.array(STATUSES)).to_numpy()  # a category: no string per row
    return pd.DataFrame({
        "minute": ts // MINUTE_US * MINUTE_US, "version": table["version"].to_numpy(),
        "status": pd.Categorical.from_codes(np.asarray(codes, dtype=np.int8), categories=pd.Index(STATUSES)), "latency_s": table["latency_s"].to_numpy(),
    })  # fmt: skip


def _summaries(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime,
               parquet: ParquetFiles, key: tuple[Any, ...], columns: list[str],
               summarize: Callable[[pa.Table], pd.DataFrame]) -> pd.DataFrame:  # fmt: skip
    """``summarize`` of every part of ``endpoint`` that may hold minutes of the range (memoized under
    ``key`` unless it is empty) and of the live segments, as one frame limited to those minutes."""
    place = LogFolder.of(folder)
    wanted = sorted({*columns, "row", "ts", "status"})
    first = int(as_utc(since).timestamp() * 1e6) // MINUTE_US * MINUTE_US
    last = int(as_utc(until).timestamp() * 1e6)
    segments = sorted(place.segments.glob("*.jsonl")) if place.segments.exists() else []
    parts = parquet_parts(place, endpoint, as_utc(since) - timedelta(minutes=1), as_utc(until))
    frames = []
    with place.storage.reaching():
        # an unmemoized read takes only the range's rows: Parquet statistics skip the other parts' data
        within = None if key else (pc.field("ts") >= as_utc(since)) & (pc.field("ts") < as_utc(until))
        for part in parts:
            make = functools.partial(_summarize_part, summarize, parquet, part, wanted, within)
            frames.append(_MEMO.get((*key, part, _identity(place, part)), make) if key else make())
    compacted = {part.rsplit("/", 1)[-1] for part in parts}
    live: list[dict[str, Any]] = []
    for segment in segments:
        if f"part-{segment.stem}.parquet" in compacted:
            continue
        try:
            data = segment.read_bytes()
        except FileNotFoundError:  # compacted meanwhile: counted from its part when listed, else next time
            continue
        live.extend(
            r for r in parse(data[: data.rfind(b"\n") + 1], str(segment))[0] if r["endpoint"] == endpoint
        )
    if live:
        table = to_table(live)
        frames.append(summarize(table.filter(pc.equal(table["endpoint"], endpoint)).select(wanted)))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame[(frame["minute"] >= first) & (frame["minute"] < last)]


def _summarize_part(summarize: Callable[[pa.Table], pd.DataFrame], parquet: ParquetFiles, location: str,
                    columns: list[str], within: pc.Expression | None) -> pd.DataFrame:  # fmt: skip
    return summarize(parquet.dataset([location], schema=SCHEMA).to_table(columns=columns, filter=within))


def _identity(place: LogFolder, location: str) -> tuple[int, int]:
    """Size and modification time of a part (size only on object storage, where a rewrite changes it)."""
    if place.storage.remote:
        return place.storage.size(location), 0
    stat = os.stat(location)
    return stat.st_size, stat.st_mtime_ns


def request_rows(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime,
                 parquet: ParquetFiles = PLAIN) -> pd.DataFrame:  # fmt: skip
    """``minute``, ``version``, ``status`` and ``latency_s`` of each counted first row in the range (not
    memoized: for short ranges such as the last hour, where a percentile needs every latency)."""
    return _summaries(folder, endpoint, since, until, parquet, (), _BASE, _first_rows)  # no key: not memoized
