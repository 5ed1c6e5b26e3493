"""Batch scoring with Ray Data (for :mod:`mloop.serving.scoring.job`, ``mloop score --executor ray``).

The input is read by Ray Data on the cluster's nodes (so every node must reach the file: one host, a
shared volume), scored by ``map_batches`` on a pool of actors that each open the project and load the model
once, and streamed back in input order to the caller, which writes the one output file atomically as the
local path does: same rows, same order, same predictions. A chunk's user error (a signature mismatch)
stops the job with that error; nothing partial is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from mloop._ray import connect, task_slots
from mloop.config import ComputeSettings
from mloop.errors import MloopError
from mloop.models.signature import SignatureError
from mloop.project import Project
from mloop.serving.scoring.chunks import Failure, Plan, attempt


class Scorer:
    """One Ray Data actor: the project and the model, opened once; called with each batch of rows."""

    def __init__(self, root: str, settings: dict[str, Any], actor: Any, plan: Plan, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # the actor's share of the node, not a thread per core
        self.project = Project.open(root, actor=actor, env={}, **settings)
        self.model = self.project.models.load(plan.model, version=plan.version)
        self.plan = plan

    def __call__(self, batch: pa.Table) -> pa.Table:
        result = attempt(self.project, self.plan, self.model, _record_batch(batch))
        if isinstance(result, Failure):
            raise ScoringFailed(result, batch.num_rows)
        return result


class ScoringFailed(MloopError):
    """A user error in a batch, carried out of Ray Data intact (pickled as its :class:`Failure`)."""

    def __init__(self, failure: Failure, rows: int) -> None:
        super().__init__(f"In a batch of {rows:,} rows: {failure.message}")
        self.failure, self.rows = failure, rows

    def __reduce__(self) -> Any:
        return (ScoringFailed, (self.failure, self.rows))

    def error(self, plan: Plan) -> MloopError:
        """The error as the caller raises it."""
        where = f"In a batch of {self.rows:,} rows"
        if self.failure.kind is SignatureError:
            return SignatureError(
                list(self.failure.problems),
                f"{where}, the input does not match the signature of model {plan.model!r} version {plan.version} "
                "(row numbers below count from the batch's first row; score with --executor inprocess for the "
                "rows' numbers in the file)",
                "Give each column the type shown, or leave a feature's column out of the input to have it "
                "looked up in the feature store.",
            )
        try:
            return self.failure.kind(f"{where}: {self.failure.message}")
        except TypeError:  # an error class that takes more than a message
            return MloopError(f"{where}: {self.failure.message}")


def score_on_ray(
    project: Project, plan: Plan, source: Path, compute: ComputeSettings, chunk_rows: int
) -> tuple[int, Iterator[pa.Table]]:
    """(actors, the scored rows in input order); the cluster is connected before this returns."""
    ray = connect(compute)
    from ray import data as ray_data

    context = ray_data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order
    context.raise_original_map_exception = True  # a batch's error arrives as itself, not as UserCodeException
    actors = task_slots(ray, compute)  # an actor is a task's size; none fits: ConfigError, not a hang
    settings = project.settings.model_dump(exclude={"api_key"})  # the actor acts as project.actor instead
    threads = max(1, int(compute.cpus_per_task))
    remote: dict[str, Any] = {"max_restarts": compute.max_retries, "max_task_retries": compute.max_retries}
    if compute.memory_per_task:
        remote["memory"] = compute.memory_per_task
    scored = ray_data.read_parquet(str(source)).map_batches(
        Scorer, fn_constructor_args=(str(project.root), settings, project.actor, plan, threads),
        batch_size=chunk_rows, batch_format="pyarrow", concurrency=(1, actors),
        num_cpus=compute.cpus_per_task, num_gpus=compute.gpus_per_task or None, **remote,
    )  # fmt: skip
    return actors, _stream(scored, plan)


def _stream(scored: Any, plan: Plan) -> Iterator[pa.Table]:
    try:
        yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
    except Exception as exc:
        found = _mloop_error(exc)
        if found is None:
            raise
        raise (found.error(plan) if isinstance(found, ScoringFailed) else found) from None


def _mloop_error(exc: BaseException) -> MloopError | None:
    """The user error inside Ray's wrappers (RayTaskError, Ray Data's UserCodeException), if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MloopError):
            return current
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return None


def _record_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


__all__ = ["Scorer", "ScoringFailed", "score_on_ray"]
