"""Batch scoring: a Parquet file of rows in, the same rows with their predictions out.

>>> report = score(project, "fraud", "txns.parquet", "preds.parquet", timestamp="ts")   # doctest: +SKIP
>>> report.rows, report.model, report.version
(120000, 'fraud', 3)

``target`` is an endpoint or a model (see :mod:`mloop.serving.scoring.targets` for how a name resolves). The model's
features (``lineage["features"]``) are looked up in the offline store as of each row's own time, with the
point-in-time join that built its training set, so a row never sees a value from after its time. A column
the input holds itself wins over the looked-up one, as on the v1 API. The merged rows are checked against
the signature and predicted.

The input is read in chunks of ``chunk_rows``. With several ``workers`` a pool of processes scores chunks in
parallel; each opens the project and loads the model once. Results are written in input order to a
temporary file beside ``output``, which is renamed over it only when every chunk has succeeded: a failure
midway leaves no partial output (and an older output file, if any, untouched). Workers are forked from a
clean fork server (or spawned), never from the caller, so a script that scores with several workers must
run from an ``if __name__ == "__main__":`` block, as Python's multiprocessing requires.

With ``partition_by`` the output is a folder of partitions instead, each chunk committed on its own, and a
rerun after a crash resumes where it stopped (see :mod:`mloop.serving.scoring.partitions`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mloop._ray import connect, is_ray
from mloop.config import ComputeSettings
from mloop.errors import MloopError, NotFound, SchemaError
from mloop.features.definitions import FeatureView, OnDemandView
from mloop.models.signature import SignatureError
from mloop.project import Project
from mloop.serving.scoring.chunks import Chunks, Failure, Plan, attempt, output_names, run_pool
from mloop.serving.scoring.output import AtomicParquet
from mloop.serving.scoring.partitions import PartitionedOutput, check_folder, pinned_version, run_key
from mloop.serving.scoring.ray import score_on_ray
from mloop.serving.scoring.targets import resolve_target

Progress = Callable[[int, int], None]  # (rows done, rows in all)
MAX_WORKERS = 4


@dataclass(frozen=True)
class ScoreReport:
    """What one scoring run did."""

    input: str
    output: str
    model: str
    version: int
    endpoint: str | None  # set when the target was an endpoint
    rows: int
    chunks: int
    workers: int
    seconds: float
    columns: list[str]
    notes: list[str] = field(default_factory=list)
    resumed_chunks: int = 0  # partitioned output: chunks an interrupted run had committed, not scored again

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rows_per_second": round(self.rows_per_second, 1)}


def score(
    project: Project,
    target: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    timestamp: str = "ts",
    chunk_rows: int = 100_000,
    workers: int | None = None,
    version: int | None = None,
    alias: str | None = None,
    keep: Sequence[str] | None = None,
    progress: Progress | None = None,
    executor: str | None = None,
    partition_by: str | None = None,
) -> ScoreReport:
    """Score every row of the Parquet file ``input_path`` with ``target`` and write ``output_path``: the input's
    columns (or only ``keep``), then ``prediction`` (for a model with several outputs, such as a multiclass
    model's probabilities, ``prediction`` holds the list per row as the v1 API answers it, and
    ``prediction_<output>`` each output). ``timestamp`` names the column of each row's time, needed when
    the model looks up features; ``workers`` defaults to min(CPUs, 4), 1 scores in this process. ``executor`` (default
    ``compute.executor`` when it names Ray): ``ray``, ``ray:HOST:PORT`` or ``ray://HOST:PORT`` score with Ray Data
    on the cluster (see :mod:`mloop.serving.scoring.ray`); ``inprocess`` scores here; ``process`` in
    ``workers`` local processes.

    ``partition_by`` (a column of the output, or ``"date"``: the UTC day of ``timestamp``) makes ``output_path``
    a folder of partitions, each row stamped with ``model``, ``model_version`` and ``features_as_of``; a rerun
    after a crash skips the chunks already committed (see :mod:`mloop.serving.scoring.partitions`)::

        score(project, "yield", "fields.parquet", "preds/", partition_by="date")"""
    started = time.perf_counter()
    if partition_by is None:
        source, output = _check_paths(input_path, output_path)
    else:
        source, output = _check_input(input_path), check_folder(Path(output_path))
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise MloopError(f"chunk_rows must be a whole number of rows >= 1, got {chunk_rows!r}.")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise MloopError(f"workers must be a whole number >= 1 (1 scores in this process), got {workers!r}.")
    compute = _compute(project, executor)
    if compute is not None and partition_by is not None:
        raise MloopError(
            "Partitioned output (partition_by / --partition-by) is scored by local workers, which commit and "
            "resume chunk by chunk; pass executor='process' (--executor process), or drop partition_by."
        )
    chosen = resolve_target(project, target, version=version, alias=alias)
    if compute is not None:
        connect(compute)  # an unreachable cluster fails here, before any output file is opened
    if executor == "inprocess":
        workers = 1
    notes = [f"scored with {chosen.note}"]
    with _open(source) as parquet:
        total = parquet.metadata.num_rows
        sink: AtomicParquet | PartitionedOutput
        if partition_by is None:
            plan = _plan(project, chosen.model, chosen.version, parquet.schema_arrow, timestamp, keep)
            sink = AtomicParquet(output)
        else:
            key = run_key(source, target=target, version=version, alias=alias, chunk_rows=chunk_rows,
                          partition_by=partition_by, keep=keep, timestamp=timestamp)  # fmt: skip
            pinned = pinned_version(output, key)
            if pinned is not None and pinned != chosen.version:
                notes.append(f"resumed with v{pinned}, the version the interrupted run started with "
                             f"({target!r} now names v{chosen.version})")  # fmt: skip
            schema = parquet.schema_arrow
            kept = keep if keep is None or timestamp not in schema.names else [*keep, timestamp]
            plan = _plan(project, chosen.model, pinned or chosen.version, schema, timestamp,
                         list(dict.fromkeys(kept)) if kept is not None else None)  # fmt: skip
            _check_partition(plan, partition_by)
            sink = PartitionedOutput(output, key, partition_by=partition_by, timestamp=timestamp, model=plan.model,
                                     version=plan.version, manifest={"input": str(source), "target": target,
                                                                     "chunk_rows": chunk_rows, "rows": total})  # fmt: skip
        chunks = math.ceil(total / chunk_rows)
        wanted = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
        used = max(1, min(wanted, chunks))  # a process per chunk at most; one chunk is scored here
        tick = progress or (lambda done, total: None)
        resumed = len(sink.committed)
        if resumed:
            notes.append(f"resumed: {resumed} of {chunks} chunk(s) were committed by an earlier run")
        with sink:
            done = sink.rows_done
            tick(done, total)

            def write(start: int, rows: int, result: pa.Table | Failure) -> None:
                nonlocal done
                if isinstance(result, Failure):
                    _raise(result, plan, source, start, rows)
                sink.write(result, start)
                done += rows
                tick(done, total)

            todo = ((start, batch) for start, batch in _chunks(parquet, chunk_rows) if not sink.skip(start))

            if compute is not None and total:
                used, scored = score_on_ray(project, plan, source, compute, chunk_rows)
                for table in scored:
                    write(done, table.num_rows, table)
            elif used == 1:
                model = project.models.load(plan.model, version=plan.version)
                for start, batch in todo:
                    write(start, batch.num_rows, attempt(project, plan, model, batch))
            else:
                run_pool(project, plan, todo, used, write)
            sink.finish(total, chunks, _empty(parquet.schema_arrow, plan))
    columns = [*plan.keep, *output_names(plan.outputs)]
    if partition_by is not None:
        columns = [c for c in columns if c != partition_by] + ["model", "model_version", "features_as_of"]
    return ScoreReport(str(source), str(output), plan.model, plan.version, chosen.endpoint, total, chunks, used,
                       time.perf_counter() - started, columns, notes, resumed)  # fmt: skip


def _compute(project: Project, executor: str | None) -> ComputeSettings | None:
    """The compute settings to score on Ray with, or None to score locally."""
    compute = project.settings.compute.with_executor(executor)
    return compute if is_ray(compute.executor) else None


def _chunks(parquet: pq.ParquetFile, chunk_rows: int) -> Chunks:
    start = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        yield start, batch
        start += batch.num_rows


# ---- planning ---------------------------------------------------------------------------------------------


def _check_input(input_path: str | Path) -> Path:
    source = Path(input_path)
    if not source.is_file():
        raise NotFound(f"Input file {source} does not exist; pass the Parquet file of rows to score.")
    return source


def _check_paths(input_path: str | Path, output_path: str | Path) -> tuple[Path, Path]:
    source, output = _check_input(input_path), Path(output_path)
    if not output.parent.is_dir():
        raise NotFound(f"The folder of the output file, {output.parent}, does not exist; create it first.")
    if output.is_dir():
        raise MloopError(
            f"Output {output} is a folder; name the Parquet file to write, like {output}/preds.parquet."
        )
    return source, output


def _open(source: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(
            f"Input {source} is not a Parquet file ({exc}). Convert it, for example with pandas: "
            "pd.read_csv(path).to_parquet('rows.parquet')."
        ) from None


def _plan(
    project: Project, model: str, version: int, schema: pa.Schema, timestamp: str, keep: Sequence[str] | None
) -> Plan:
    info = project.models.get(model, version=version)
    features = tuple(str(f) for f in info.lineage.get("features", []) or [])
    signature = info.signature
    inputs = tuple(c.name for c in signature.inputs) if signature is not None else ()
    outputs = tuple(c.name for c in signature.outputs) if signature is not None else ()
    columns = list(schema.names)
    kept = tuple(columns if keep is None else keep)
    unknown = [c for c in kept if c not in columns]
    if unknown:
        raise SchemaError(f"keep names column(s) {unknown} the input does not have; it has {columns}.")
    clash = [c for c in output_names(outputs) if c in kept]
    if clash:
        raise SchemaError(
            f"The input has a column {clash[0]!r}, which the output uses for predictions; rename it in the "
            "input, or leave it out of the output with keep=[...] (--keep)."
        )
    lookup: tuple[str, ...] = ()
    # Rows that carry every input themselves need no lookup (and no time), as on the v1 API.
    if features and not set(inputs) <= set(columns):
        keys, requests = _lookup_columns(project, features)
        needed = [timestamp, *(c for c in keys if c != timestamp)]
        if timestamp not in columns:
            raise SchemaError(
                f"Model {model!r} version {version} looks up features ({', '.join(features)}) as of each row's "
                f"time, but the input has no column {timestamp!r}. Name the column of each row's time with "
                f"timestamp= (--timestamp), or add one. The input has {columns}."
            )
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SchemaError(
                f"Model {model!r} version {version} looks up features ({', '.join(features)}) by column(s) "
                f"{missing}, which the input lacks; add them. The input has {columns}."
            )
        _check_time(schema.field(timestamp).type, timestamp)
        lookup = tuple(needed)
    else:
        requests = []
    return Plan(model, version, features, inputs, lookup, tuple(requests), timestamp, kept, outputs)


def _check_partition(plan: Plan, partition_by: str) -> None:
    if partition_by in plan.keep or (partition_by == "date" and plan.timestamp in plan.keep):
        return
    raise SchemaError(
        f"partition_by={partition_by!r} names no column of the output ({list(plan.keep)}); name one of them, "
        f"or 'date' (the UTC day of the {plan.timestamp!r} column) when the input has that column."
    )


def _lookup_columns(project: Project, features: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The columns the point-in-time lookup of ``features`` reads from each row (join keys and on-demand
    request fields), and the request fields with their types."""
    columns: list[str] = []
    requests: list[tuple[str, str]] = []
    views = [ref.split(":")[0] for ref in features]
    while views:
        view = project.features.get(views.pop(0))
        if isinstance(view, FeatureView):
            names = view.join_keys
        elif isinstance(view, OnDemandView):
            names = [f.name for f in view.request]
            requests += [(f.name, f.dtype) for f in view.request if (f.name, f.dtype) not in requests]
            views += [ref.split(":")[0] for ref in view.inputs]
        else:
            names = []
        columns += [n for n in names if n not in columns]
    return columns, requests


def _check_time(kind: pa.DataType, column: str) -> None:
    if not pa.types.is_timestamp(kind):
        raise SchemaError(
            f"Input column {column!r} holds {kind}, not timestamps; store each row's time as a UTC timestamp "
            f"(pandas: df[{column!r}] = pd.to_datetime(df[{column!r}], utc=True)), or name the right column "
            "with timestamp= (--timestamp)."
        )
    if kind.tz is None:
        raise SchemaError(
            f"Input column {column!r} holds timestamps without a time zone; mloop compares times in UTC and "
            f"will not guess. If they are UTC: df[{column!r}] = df[{column!r}].dt.tz_localize('UTC')."
        )


def _empty(schema: pa.Schema, plan: Plan) -> pa.Table:
    fields = [schema.field(c) for c in plan.keep]
    for name in output_names(plan.outputs):
        kind = pa.list_(pa.float64()) if name == "prediction" and len(plan.outputs) > 1 else pa.float64()
        fields.append(pa.field(name, kind))
    return pa.schema(fields).empty_table()


def _raise(failure: Failure, plan: Plan, source: Path, start: int, rows: int) -> None:
    where = f"rows {start:,} to {start + rows - 1:,} of {source.name}"
    if failure.kind is SignatureError:
        raise SignatureError(
            list(failure.problems),
            f"In {where}, the input does not match the signature of model {plan.model!r} version "
            f"{plan.version} (row numbers below count from row {start:,})",
            "Give each column the type shown, or leave a feature's column out of the input to have it "
            "looked up in the feature store.",
        )
    try:
        error = failure.kind(f"In {where}: {failure.message}")
    except TypeError:  # an error class that takes more than a message
        error = MloopError(f"In {where}: {failure.message}")
    raise error


__all__ = ["ScoreReport", "score"]
