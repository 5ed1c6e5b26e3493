"""The prediction log on disk: segment lines, writer locks, compaction into Parquet, and reading it back.

Layout under ``<data_url>/_predictions/`` (a dataset name starts with a letter, so no dataset can share
the folder)::

    segments/<writer>.lock                    held (flock) by the live writer <pid>-<random>
    segments/<writer>-<seq>.jsonl             append-only JSON lines, one per request
    endpoint=<name>/date=<YYYY-MM-DD>/part-<writer>-<seq>.parquet    compacted, one row per predicted row

With ``data_url`` on S3, ``segments/`` is in each server's local spool folder and the rest on S3
(:class:`~mloop.predictions.place.LogFolder`); every function here takes either a local folder or that.

A Parquet part is named after the segment it came from, so compacting a segment twice (a crash between
writing the Parquet and deleting the segment) replaces the same file instead of duplicating its rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop._time import as_utc
from mloop.crypto import PLAIN, ParquetFiles
from mloop.predictions import place, tensors
from mloop.predictions.place import LogFolder

log = logging.getLogger("mloop.predictions")

SEGMENTS = place.SEGMENTS
FIXED = ["request_id", "row", "ts", "endpoint", "model", "version", "revision", "latency_s", "status",
         "prediction", "defaulted"]  # fmt: skip
_RESERVED = {*FIXED, "label", "labelled_at"}  # the columns labelled() adds
_POSITION = "__position__"  # a row's place in the table read, kept through deduplication and sorting
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("endpoint", pa.string()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("revision", pa.int64()),
        ("latency_s", pa.float64()),
        ("status", pa.string()),
        ("prediction", pa.string()),  # JSON: a number, a string, or a list for several outputs
        ("inputs", pa.string()),  # JSON object: the model's inputs of this row after feature lookup
        ("tensors", tensors.TYPE),  # the inputs that are tensors: name -> shape and flat float32 values
        (
            "keys",
            pa.string(),
        ),  # JSON object: the request's fields the model did not take (join keys); null if none
        # JSON object of an "explained" row (a sampled answer's attributions, logged after it): base_value,
        # attributions, output, method; null on every other row, and absent from parts written before it
        ("attributions", pa.string()),
        # JSON object {input: reason} of the inputs answered with their feature view's declared defaults
        # (the online store was unreachable); null when none was, and absent from parts written before it
        ("defaulted", pa.string()),
    ]
)
EXPLAINED = "explained"  # the status of the line holding a sampled answer's attributions (same request id)
_LINE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_TYPES: dict[str, type | tuple[type, ...]] = {
    "request_id": str, "ts": (int, float), "endpoint": str, "model": str, "version": int, "revision": int,
    "latency_s": (int, float), "predictions": list, "inputs": dict,
}  # fmt: skip


# ---- encoding -----------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Strict JSON (no NaN): numpy scalars become numbers, non-finite floats null, times ISO strings."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps(plain(value), allow_nan=False, separators=(",", ":"))


def plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def encode(answer: Any, ts: float, status: str, attributions: list[Any] | None = None) -> bytes:
    """One segment line for one answered request (see :class:`~mloop.serving.inference.Answer`).

    It is written on the request path, so it is encoded by orjson (about 1 µs for a row of 20 inputs, a
    tenth of the standard library's time), which writes non-finite floats as null as :func:`dumps` does;
    what orjson refuses (an int over 64 bits, a lone surrogate) takes the standard library's path.
    ``attributions``: one object per row, on an :data:`EXPLAINED` line."""
    record = {"request_id": answer.request_id, "ts": ts, "endpoint": answer.endpoint, "model": answer.model,
              "version": answer.version, "revision": answer.revision, "latency_s": answer.seconds,
              "status": status, "predictions": answer.predictions, "inputs": answer.inputs}  # fmt: skip
    keys = getattr(answer, "keys", None)
    if keys:
        record["keys"] = keys
    if attributions is not None:
        record["attributions"] = attributions
    defaulted = getattr(answer, "defaulted", None)
    if defaulted:
        record["defaulted"] = defaulted
    try:
        return orjson.dumps(record, default=plain, option=_LINE)
    except (TypeError, orjson.JSONEncodeError):
        return (dumps(record) + "\n").encode()


def parse(data: bytes, source: str = "segment") -> tuple[list[dict[str, Any]], int]:
    """The complete records of a segment's bytes and how many lines were skipped: a torn last line (the
    writer died mid-write) or a line that is not a whole record."""
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the data ends with a newline
    records, skipped = [], int(bool(torn.strip()))
    loads = orjson.loads
    for line in lines:
        try:
            record = loads(line)
        except orjson.JSONDecodeError:
            if not line.strip():
                continue
            try:  # what orjson refuses but the standard library wrote (an int over 64 bits)
                record = json.loads(line)
            except ValueError:
                skipped += 1
                continue
        if not _whole(record):
            skipped += 1
            continue
        records.append(record)
    if skipped:
        log.warning("prediction log: skipped %d torn or unreadable line(s) of %s", skipped, source)
    return records, skipped


def _whole(record: Any) -> bool:
    if type(record) is not dict:
        return False
    for key, kind in _TYPES.items():
        if not isinstance(record.get(key), kind):
            return False
    for values in record["inputs"].values():  # noqa: SIM110  (a loop: 4x faster than all() over a generator)
        if type(values) is not list:
            return False
    return True


def to_table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """One row per predicted row of each record, in :data:`SCHEMA`."""
    request_id: list[str] = []
    row: list[int] = []
    ts: list[int] = []
    endpoint: list[str] = []
    model: list[str] = []
    version: list[int] = []
    revision: list[int] = []
    latency: list[float] = []
    status: list[str] = []
    prediction: list[str] = []
    inputs_json: list[str] = []
    keys_json: list[str | None] = []
    explained: list[str | None] = []
    defaulted: list[str | None] = []
    nested: dict[int, dict[str, Any]] = {}  # rows with a list among their inputs (maybe a tensor), by place
    for rec in records:
        inputs: Mapping[str, list[Any]] = rec["inputs"] or {}
        predictions = rec["predictions"]
        n = len(predictions)
        request_id += [str(rec["request_id"])] * n
        row += range(n)
        ts += [round(float(rec["ts"]) * 1_000_000)] * n
        endpoint += [str(rec["endpoint"])] * n
        model += [str(rec["model"])] * n
        version += [int(rec["version"])] * n
        revision += [int(rec["revision"])] * n
        latency += [float(rec["latency_s"])] * n
        status += [str(rec.get("status", "ok"))] * n
        lists = False
        for values in inputs.values():  # a loop, not any(): this runs per record of every compaction
            if values and type(values[0]) is list:
                lists = True
                break
        keys: Mapping[str, list[Any]] = rec.get("keys") or {}
        why: list[Any] | None = rec.get("attributions")
        fallback = rec.get("defaulted")
        defaulted += [_text(fallback) if fallback else None] * n
        for i, value in enumerate(predictions):
            prediction.append(_text(value))
            explained.append(_text(why[i]) if why is not None and i < len(why) else None)
            keys_json.append(
                _text({k: v[i] if i < len(v) else None for k, v in keys.items()}) if keys else None
            )
            row_inputs = {k: v[i] if i < len(v) else None for k, v in inputs.items()}
            if lists:
                nested[len(inputs_json)] = row_inputs
                inputs_json.append("")
            else:
                inputs_json.append(_text(row_inputs))
    tensor_column = tensors.empty(len(inputs_json))
    if nested:
        tensor_column, rest = tensors.to_arrow([nested.get(i, {}) for i in range(len(inputs_json))])
        for i in nested:
            inputs_json[i] = _text(rest[i])
    columns = [request_id, row, ts, endpoint, model, version, revision, latency, status, prediction,
               inputs_json]  # fmt: skip
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=False)]
    keys_column = pa.array(keys_json, type=pa.string())
    explained_column = pa.array(explained, type=pa.string())
    defaulted_column = pa.array(defaulted, type=pa.string())
    return pa.Table.from_arrays(
        [*arrays, tensor_column, keys_column, explained_column, defaulted_column], schema=SCHEMA
    )


def _text(value: Any) -> str:
    """A parsed JSON value written back as JSON text (orjson; the standard library for a huge int)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return dumps(value)


# ---- atomic files and locks ---------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(table: pa.Table, target: Path | str, parquet: ParquetFiles = PLAIN) -> None:
    """Write ``target`` so that readers see the old file or the whole new one, and it survives a crash;
    encrypted when ``parquet`` encrypts."""
    parquet.replace(table, target)


def try_lock(path: Path) -> int | None:
    """An exclusive flock on ``path`` (created if missing), or None when another open file holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def writer_of(segment: Path) -> str:
    return segment.stem.rsplit("-", 1)[0]


# ---- compaction ---------------------------------------------------------------------------------------


def partition(folder: Path, endpoint: str, day: date) -> Path:
    return folder / f"endpoint={quote(endpoint, safe='')}" / f"date={day.isoformat()}"


def part_location(folder: LogFolder, endpoint: str, day: date, name: str) -> str:
    return folder.join(f"endpoint={quote(endpoint, safe='')}", f"date={day.isoformat()}", name)


def compact(folder: Path | LogFolder, segment: Path, parquet: ParquetFiles = PLAIN) -> tuple[int, int]:
    """Turn ``segment`` into Parquet parts (one per endpoint and date), then delete it. The caller holds
    the segment's writer lock. Answers (rows written, lines skipped). On S3 each part is uploaded whole;
    if S3 cannot be reached the segment stays, to be compacted later."""
    place = LogFolder.of(folder)
    try:
        data = segment.read_bytes()
    except FileNotFoundError:
        return 0, 0
    records, skipped = parse(data, str(segment))
    groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[str(rec["endpoint"]), datetime.fromtimestamp(float(rec["ts"]), UTC).date()].append(rec)
    rows = 0
    for (endpoint, day), recs in groups.items():
        table = to_table(recs)
        with place.storage.reaching():
            write_parquet(table, part_location(place, endpoint, day, f"part-{segment.stem}.parquet"), parquet)
        rows += table.num_rows
    segment.unlink(missing_ok=True)  # only now: its rows are durable in Parquet
    fsync_dir(segment.parent)
    return rows, skipped


def recover(
    folder: Path | LogFolder, own: str | None = None, parquet: ParquetFiles = PLAIN
) -> tuple[int, int, int]:
    """Compact the segments of writers that are gone (their lock is free), safely across processes.
    Answers (segments, rows, skipped lines)."""
    segments = LogFolder.of(folder).segments
    writers = {writer_of(p) for p in segments.glob("*.jsonl")} | {p.stem for p in segments.glob("*.lock")}
    done = rows = skipped = 0
    for writer in sorted(writers - {own}):
        lock = segments / f"{writer}.lock"
        fd = try_lock(lock)
        if fd is None:  # a live writer, or another process recovering it now
            continue
        try:
            for segment in sorted(segments.glob(f"{writer}-*.jsonl")):
                n, bad = compact(folder, segment, parquet)
                done, rows, skipped = done + 1, rows + n, skipped + bad
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    if done:
        log.info("prediction log: recovered %d row(s) from %d segment(s) of stopped writers", rows, done)
    return done, rows, skipped


# ---- reading ------------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def parquet_parts(
    folder: Path | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[str]:
    """Compacted parts (paths, or s3:// URLs), newest date first, pruned by endpoint and by date."""
    place = LogFolder.of(folder)
    if place.storage.remote:
        base = place.join(f"endpoint={quote(endpoint, safe='')}") if endpoint is not None else place.parts
        with place.storage.reaching():
            found = place.storage.list(base)
    else:
        pattern = f"endpoint={quote(endpoint, safe='')}" if endpoint is not None else "endpoint=*"
        found = [str(p) for p in Path(place.parts).glob(f"{pattern}/date=*/part-*.parquet")]
    parts = []
    for location in found:
        *_, endpoint_dir, day_dir, name = location.split("/")
        if not (
            endpoint_dir.startswith("endpoint=") and day_dir.startswith("date=") and name.startswith("part-")
        ):
            continue
        day = date.fromisoformat(day_dir.partition("=")[2])
        if (since is not None and day < since.date()) or (until is not None and day > until.date()):
            continue
        parts.append(location)
    return sorted(parts, key=lambda p: p.rsplit("/", 2)[-2:], reverse=True)


def live_records(folder: Path | LogFolder) -> Iterator[dict[str, Any]]:
    """Records of segments not compacted yet (their writers may be appending: a partial line is skipped)."""
    for segment in sorted(LogFolder.of(folder).segments.glob("*.jsonl")):
        with contextlib.suppress(FileNotFoundError):  # compacted meanwhile: its Parquet is listed later
            data = segment.read_bytes()
            yield from parse(data[: data.rfind(b"\n") + 1], str(segment))[0]


def read_table(
    folder: Path | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
) -> pa.Table:
    """Every logged row in :data:`SCHEMA`, segments included; not deduplicated."""
    since, until = _utc(since), _utc(until)
    # Segments first: one compacted between the two reads is then seen twice (deduplicated), never missed.
    live = [r for r in live_records(folder) if endpoint is None or r["endpoint"] == endpoint]
    tables = [to_table(live)]
    parts = parquet_parts(folder, endpoint, since, until)
    if parts:
        with LogFolder.of(folder).storage.reaching():
            tables.append(parquet.dataset(parts, schema=SCHEMA).to_table())
    table = pa.concat_tables(tables)
    mask = None
    if endpoint is not None:
        mask = pc.equal(table["endpoint"], endpoint)
    for op, bound in ((pc.greater_equal, since), (pc.less, until)):
        if bound is not None:
            test = op(table["ts"], pa.scalar(bound, pa.timestamp("us", tz="UTC")))
            mask = test if mask is None else pc.and_(mask, test)
    return table if mask is None else table.filter(mask)


def read_predictions(
    folder: Path | str | LogFolder,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
    *,
    keys: bool = False,
) -> pd.DataFrame:
    """One row per predicted row, oldest first, without duplicates: the fixed columns, then one column
    per model input (an input named like a fixed column, ``label`` or ``labelled_at`` is prefixed
    ``input.``). ``status`` is ``ok`` for the answers callers got, ``shadow`` for a shadow version's
    answer to the same request (same request id) and ``error`` for a request that failed with a server
    error (prediction null, no inputs; the availability SLI counts these). The lines holding sampled
    attributions (status ``explained``) are not predictions: :func:`mloop.predictions.explanations.read_explanations`
    reads them. ``defaulted`` is ``{input: reason}`` for a row answered with its feature views' declared
    defaults (``online_store_unavailable``: Redis was down), None otherwise. With ``keys``, the column
    ``keys`` holds the request's fields the model did not take (its join keys: ``{"customer_id": 7}``), or
    None: with the inputs, what the request sent (an input named ``keys`` is then ``input.keys``).

    >>> read_predictions(".mloop/data/_predictions", "fraud", since=datetime(2026, 12, 1))  # doctest: +SKIP
    """
    table = read_table(
        folder if isinstance(folder, LogFolder) else Path(folder), endpoint, since, until, parquet
    )
    table = table.filter(pc.not_equal(table["status"], EXPLAINED))
    tensor_column = table.column("tensors")
    frame = table.drop_columns(
        ["tensors", "attributions"] if keys else ["tensors", "keys", "attributions"]
    ).to_pandas()  # keys: for erasure and for replaying requests, not a model input
    frame[_POSITION] = np.arange(len(frame))
    # A shadow version's answer (status "shadow") shares the request id of the answer the caller got.
    frame = frame.drop_duplicates(["request_id", "row", "version", "status"])
    frame = frame.sort_values(["ts", "request_id", "row"])
    frame = frame.reset_index(drop=True)
    positions = pa.array(frame.pop(_POSITION).to_numpy())
    frame["prediction"] = pd.Series(
        [json.loads(v) for v in frame["prediction"]], dtype=object
    ).infer_objects()
    frame["defaulted"] = pd.Series([json.loads(v) if isinstance(v, str) else None for v in frame.pop("defaulted")],
                                   index=frame.index, dtype=object)  # fmt: skip
    if keys:
        frame["keys"] = pd.Series([json.loads(v) if isinstance(v, str) else None for v in frame.pop("keys")],
                                  index=frame.index, dtype=object)  # fmt: skip
    inputs = pd.DataFrame.from_records([json.loads(v) for v in frame.pop("inputs")], index=frame.index)
    kept = tensor_column.take(positions)
    for name in tensors.names(kept):
        found = pd.Series(tensors.values(kept, name), index=frame.index, dtype=object)
        # a row whose value was not a tensor (ragged, strings) kept it in the JSON inputs
        inputs[name] = found.where(found.notna(), inputs[name]) if name in inputs else found
    reserved = _RESERVED | {"keys"} if keys else _RESERVED
    inputs.columns = [f"input.{c}" if c in reserved else c for c in inputs.columns]
    return pd.concat([frame, inputs], axis=1)


def find_requests(
    folder: Path | LogFolder, request_ids: Iterable[str], parquet: ParquetFiles = PLAIN
) -> dict[str, tuple[str, int]]:
    """``{request_id: (endpoint, rows)}`` for the ids found in live segments or Parquet parts (newest
    date first, stopping once every id is found)."""
    wanted = set(request_ids)
    found: dict[str, tuple[str, int]] = {}
    for rec in live_records(folder):
        if rec["request_id"] in wanted:
            found[rec["request_id"]] = (str(rec["endpoint"]), len(rec["predictions"]))
    by_day: dict[str, list[str]] = defaultdict(list)
    for part in parquet_parts(folder):
        by_day[part.rsplit("/", 2)[-2]].append(part)
    for day in sorted(by_day, reverse=True):
        missing = wanted - found.keys()
        if not missing:
            break
        with LogFolder.of(folder).storage.reaching():
            dataset = parquet.dataset(by_day[day], schema=SCHEMA)
            hits = dataset.to_table(
                columns=["request_id", "endpoint", "row"], filter=pc.field("request_id").isin(sorted(missing))
            )
        for rid, ep, row in zip(
            *(hits[c].to_pylist() for c in ("request_id", "endpoint", "row")), strict=True
        ):
            rows = max(found[rid][1], row + 1) if rid in found else row + 1
            found[rid] = (ep, rows)
    return found
