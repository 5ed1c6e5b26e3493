"""The Ray executor: each task a Ray task on a cluster (or a local Ray started on demand).

>>> with open_executor("ray:10.0.0.5:6379", jobs=None) as pool:      # doctest: +SKIP
...     results = pool.map(run_trial, tasks)        # as many at once as the cluster has CPUs per task

Resources per task (CPUs, memory, GPUs) and retries come from ``compute:`` in mloop.yaml. A task whose
worker or node dies is rerun up to ``compute.max_retries`` times, then comes back as a
:class:`~mloop.errors.ComputeUnavailable` result (the trial is recorded as failed); an exception raised by
the task itself is its result, not retried. Interrupting ``map`` (Ctrl-C, a cancelled search) cancels its
tasks on the cluster, the running ones included, before the interrupt goes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Self

from mloop._ray import connect, lost, task_options, task_slots
from mloop.config import ComputeSettings

POLL_SECONDS = 0.5  # how often a wait returns to Python, so that Ctrl-C is seen at once


class RayExecutor:
    """Maps a function over tasks as Ray tasks; the function and the tasks must pickle (cloudpickle)."""

    name = "ray"

    def __init__(self, jobs: int | None = 2, *, compute: ComputeSettings | None = None) -> None:
        self.compute = compute or ComputeSettings(executor="ray")
        self._ray = connect(self.compute)  # unreachable: ComputeUnavailable here, before any run is opened
        fits = task_slots(self._ray, self.compute)  # a task no node can hold: ConfigError, not a hang
        self.parallel = max(1, int(jobs)) if jobs is not None else fits
        self._pending: list[Any] = []

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        if not tasks:
            return []
        ray = self._ray
        remote = ray.remote(_apply).options(**task_options(self.compute))
        refs = [remote.remote(fn, task) for task in tasks]
        self._pending = list(refs)
        try:
            waiting = list(refs)
            while waiting:
                _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_SECONDS)
        except BaseException:
            self.cancel()
            raise
        self._pending = []
        out = []
        what = getattr(fn, "__name__", "a task")
        for index, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except Exception as exc:
                out.append(lost(exc, f"Task {index} ({what})", self.compute.max_retries))
        return out

    def cancel(self) -> None:
        """Cancel the tasks of an unfinished ``map`` on the cluster (running ones are killed)."""
        pending, self._pending = self._pending, []
        for ref in pending:
            with contextlib.suppress(Exception):  # finished already, or its node is gone
                self._ray.cancel(ref, force=True, recursive=True)

    def close(self) -> None:
        """Cancel what is still running; the connection stays for the process's next use of Ray."""
        self.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _apply(fn: Callable[[Any], Any], task: Any) -> Any:
    """The Ray task: any picklable callable, a builtin or a bound method included."""
    return fn(task)


__all__ = ["RayExecutor"]
