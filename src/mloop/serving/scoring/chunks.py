"""Scoring one chunk of a batch, in this process or in a pool of worker processes (for :mod:`batch`).

A chunk is an Arrow record batch of input rows. Its features are looked up point in time from the offline
store (``project.features.historical``, the join that builds training sets), the input's own columns
overlaid, and the result predicted. A user error in a chunk comes back as a :class:`Failure`, which
crosses a process boundary intact (a :class:`SignatureError` keeps its per-field problems), so the
parent can name the rows it happened in.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import MloopError
from mloop.models.signature import ColumnSpec, FieldProblem, Signature, SignatureError
from mloop.project import Project


@dataclass(frozen=True)
class Plan:
    """Everything needed to score a chunk; built once, in the parent, from the input's schema."""

    model: str
    version: int
    features: tuple[str, ...]  # the feature references the model was trained on
    inputs: tuple[str, ...]  # the signature's input columns
    lookup: tuple[str, ...]  # input columns the offline lookup reads (time, keys, request fields); () = none
    requests: tuple[tuple[str, str], ...]  # on-demand views' request fields and their types
    timestamp: str
    keep: tuple[str, ...]  # input columns copied to the output
    outputs: tuple[str, ...]  # the signature's output names


@dataclass(frozen=True)
class Failure:
    """A user error in a chunk."""

    kind: type[MloopError]
    message: str
    problems: tuple[FieldProblem, ...] = ()


Chunks = Iterator[tuple[int, pa.RecordBatch]]  # (index of the chunk's first row, its rows)
Write = Callable[[int, int, "pa.Table | Failure"], None]  # (first row, rows, result)


def attempt(project: Project, plan: Plan, model: Any, batch: pa.RecordBatch) -> pa.Table | Failure:
    """The output rows of ``batch`` (its kept columns, then the predictions), or why they cannot be."""
    try:
        return score_chunk(project, plan, model, batch)
    except SignatureError as exc:
        return Failure(SignatureError, str(exc), tuple(exc.problems))
    except MloopError as exc:
        return Failure(type(exc), str(exc))


def score_chunk(project: Project, plan: Plan, model: Any, batch: pa.RecordBatch) -> pa.Table:
    frame = batch.to_pandas()
    if plan.lookup:
        entities = frame[list(plan.lookup)]
        if plan.requests:  # typed before an on-demand view computes with them: a per-field error, as online
            specs = [ColumnSpec(name, dtype, nullable=True) for name, dtype in plan.requests]
            checked = Signature(specs).validate(entities)
            entities = entities.assign(**{str(c): checked[c] for c in checked.columns})
        joined = project.features.historical(entities, list(plan.features), timestamp=plan.timestamp)
        inputs = joined.drop(columns=list(plan.lookup))
        for name in plan.inputs:  # the input's own columns win over looked-up ones
            if name in frame.columns:
                inputs[name] = frame[name]
    else:
        inputs = frame
    scores = model.predict(inputs)
    table = pa.Table.from_batches([batch]).select(list(plan.keep))
    for name, column in prediction_columns(scores, plan.outputs).items():
        table = table.append_column(name, column)
    return table


def output_names(outputs: Sequence[str]) -> list[str]:
    """The prediction columns of the output for a signature with these outputs."""
    if len(outputs) <= 1:
        return ["prediction"]
    return ["prediction", *(_output_column(o) for o in outputs)]


def prediction_columns(scores: Any, outputs: Sequence[str]) -> dict[str, pa.Array]:
    """``prediction`` as the v1 API answers it (a value per row, or a list for several outputs), plus one
    column per output when there are several; non-finite scores become nulls, as on the v1 API."""
    array = np.asarray(scores)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim <= 1:
        return {"prediction": pa.array(array.ravel(), from_pandas=True)}
    width = array.shape[1]
    names = list(outputs) if len(outputs) == width else [str(i) for i in range(width)]
    offsets = pa.array(np.arange(0, array.size + 1, width, dtype=np.int32))
    columns = {"prediction": pa.ListArray.from_arrays(offsets, pa.array(array.ravel(), from_pandas=True))}
    for j, name in enumerate(names):
        columns[_output_column(name)] = pa.array(array[:, j], from_pandas=True)
    return columns


def _output_column(name: str) -> str:
    return name if name.startswith("prediction") else f"prediction_{name}"


# ---- worker processes -------------------------------------------------------------------------------------

PRELOAD = ["mloop.project", "mloop.serving.scoring.chunks", "mloop.models.sklearn", "mloop.models.lightgbm"]
_WORKER: dict[str, Any] = {}  # per worker process: its project, plan and model, or why it could not start


def run_pool(project: Project, plan: Plan, chunks: Chunks, workers: int, write: Write) -> None:
    """Score ``chunks`` in ``workers`` processes and ``write`` the results in input order, with at most two
    chunks per worker in flight (so memory stays bounded however large the input)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    settings = project.settings.model_dump(exclude={"api_key"})  # the worker acts as project.actor instead
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_init_worker,
        initargs=(str(project.root), settings, project.actor, plan, threads),
    ) as pool:  # fmt: skip
        pending: deque[tuple[int, int, Any]] = deque()
        try:
            for start, batch in chunks:
                pending.append((start, batch.num_rows, pool.submit(_worker_score, batch)))
                if len(pending) >= 2 * workers:
                    first, rows, future = pending.popleft()
                    write(first, rows, future.result())
            while pending:
                first, rows, future = pending.popleft()
                write(first, rows, future.result())
        except BrokenProcessPool:
            raise MloopError(
                "A scoring worker process died (out of memory, or killed). A script that scores with several "
                "workers must start from an `if __name__ == '__main__':` block, as Python's multiprocessing "
                "requires; or pass workers=1 (--workers 1), or a smaller chunk_rows (--chunk-rows)."
            ) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _context() -> Any:
    """Not fork: the parent holds database connections and OpenMP threads that a fork copies mid-use (a
    forked LightGBM can hang). A fork server is a clean process that imports mloop once and forks each
    worker from there, so workers start fast, and faster again on the next run in the same process."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # ignored once the server runs; a missing module is skipped
    return context


def _init_worker(root: str, settings: dict[str, Any], actor: Any, plan: Plan, threads: int) -> None:
    try:
        from threadpoolctl import threadpool_limits

        # Several workers that each run a thread per core (OpenMP, BLAS) would only fight over the cores.
        threadpool_limits(threads)

        project = Project.open(root, actor=actor, env={}, **settings)
        model = project.models.load(plan.model, version=plan.version)
        _WORKER.update(project=project, plan=plan, model=model)
    except MloopError as exc:
        _WORKER["failure"] = Failure(type(exc), str(exc))
    except Exception as exc:  # a worker that cannot start says why, instead of breaking the pool
        _WORKER["failure"] = Failure(
            MloopError, f"A scoring worker could not start: {type(exc).__name__}: {exc}"
        )


def _worker_score(batch: pa.RecordBatch) -> pa.Table | Failure:
    failure: Failure | None = _WORKER.get("failure")
    if failure is not None:
        return failure
    return attempt(_WORKER["project"], _WORKER["plan"], _WORKER["model"], batch)
