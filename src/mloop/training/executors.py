"""Where search trials and training runs run: in this process, in a local process pool, or on Ray
(:mod:`mloop.training.ray`). A backend maps a function over tasks and closes.

The name comes from the call (``executor=``) or from ``compute.executor`` in mloop.yaml: ``inprocess``,
``process``, ``ray``, ``ray:HOST:PORT`` (a Ray cluster's GCS address) or ``ray://HOST:PORT`` (Ray Client).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, Self

from mloop._ray import is_ray
from mloop.config import ComputeSettings
from mloop.plugins import Plugins


class Executor(Protocol):
    """Maps a function over tasks. Whoever opens one closes it, or uses it as a context manager:

    >>> with open_executor("process", jobs=4) as pool:        # doctest: +SKIP
    ...     results = pool.map(run_trial, tasks)
    """

    name: str
    parallel: int  # how many tasks to hand over at once

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """``[fn(t) for t in tasks]``, in order; an exception in one task comes back as its result."""
        ...

    def close(self) -> None:
        """Release the workers; closing again does nothing."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class InProcessExecutor:
    """Runs the tasks one after the other in this process, whatever ``jobs`` says."""

    name = "inprocess"
    parallel = 1

    def __init__(self, jobs: int = 1) -> None:
        pass

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        out = []
        for task in tasks:
            try:
                out.append(fn(task))
            except Exception as exc:  # a failed trial must not end the search
                out.append(exc)
        return out

    def close(self) -> None:
        pass  # no workers to release

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LocalProcessExecutor:
    """Runs up to ``jobs`` tasks at once in spawned worker processes; the function and the tasks must
    pickle (a module-level function, plain data)."""

    name = "process"

    def __init__(self, jobs: int = 2) -> None:
        self.parallel = max(1, int(jobs))
        # Spawned, not forked: LightGBM's OpenMP runtime and DuckDB's threads do not survive a fork.
        self._pool = ProcessPoolExecutor(
            max_workers=self.parallel, mp_context=multiprocessing.get_context("spawn")
        )

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        futures = [self._pool.submit(fn, task) for task in tasks]
        out = []
        for future in futures:
            try:
                out.append(future.result())
            except Exception as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        """Cancel the tasks not started, wait for the running ones and end the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


EXECUTORS = Plugins(
    "executor",
    {
        "inprocess": "mloop.training.executors:InProcessExecutor",
        "process": "mloop.training.executors:LocalProcessExecutor",
        "ray": "mloop.training.ray:RayExecutor [ray]",
    },
)
DEFAULT_JOBS = 2


def open_executor(
    name: str | Executor, jobs: int | None = DEFAULT_JOBS, *, compute: ComputeSettings | None = None
) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`; ``ray:HOST:PORT`` and ``ray://HOST:PORT`` open
    the ``ray`` entry on that cluster) running ``jobs`` tasks at once; an executor passed in is returned as
    it is. ``compute`` gives a Ray executor the resources of each task; ``jobs=None`` lets Ray fill the
    cluster (its CPUs over ``compute.cpus_per_task``) and means 2 elsewhere."""
    if not isinstance(name, str):
        return name
    if is_ray(name):
        settings = (compute or ComputeSettings()).model_copy(update={"executor": name})
        ray_executor: Executor = EXECUTORS.load("ray")(jobs, compute=settings)
        return ray_executor
    executor: Executor = EXECUTORS.load(name)(DEFAULT_JOBS if jobs is None else jobs)
    return executor
