"""Dynamic batching: concurrent requests to one model version become one feature lookup and one model
call.

A request joins the pending group of its version. The group goes to the model when it holds
``max_batch_size`` rows, or ``max_wait_ms`` after its first request arrived. The group is computed on the
event loop itself: a worker thread would compete with the loop for the GIL (the lookup and the merge are
Python), and every hand-over costs the loop up to the interpreter's switch interval, which is more than a
group of 32 rows takes. Requests that arrive while a group computes are read by the loop right after it
and form the next group, so groups grow with the load: at low load a request waits at most
``max_wait_ms``; at high load every call carries many rows.

Tensor inputs group the same way: the rows of all requests are concatenated and the flavour stacks each
tensor column into one batch array, so the batch-size histogram counts rows (images), not requests.

If the group's call fails (one request with a bad field, or sequences of different lengths that cannot be
stacked into one batch), each request of the group is retried alone, so only a bad one gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mloop.project import Project
from mloop.serving import metrics
from mloop.serving.predictor import Prediction, Predictor


@dataclass
class _Waiting:
    rows: Sequence[Mapping[str, Any]]
    future: asyncio.Future[Prediction]


@dataclass
class Batcher:
    """The batching queue of one (endpoint, version) in one server process; used on its event loop."""

    predictor: Predictor
    project: Project
    endpoint: str
    max_batch_size: int
    max_wait_ms: float
    _pending: list[_Waiting] = field(default_factory=list)
    _rows: int = 0
    _running: bool = False
    _timer: asyncio.TimerHandle | None = None

    async def predict(self, rows: Sequence[Mapping[str, Any]]) -> Prediction:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(rows, loop.create_future())
        self._pending.append(waiting)
        self._rows += len(rows)
        self._gauge()
        if not self._running:
            if self._rows >= self.max_batch_size or self.max_wait_ms <= 0:
                self._start(loop)
            elif self._timer is None:
                self._timer = loop.call_later(self.max_wait_ms / 1000, self._start, loop)
        return await waiting.future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running or not self._pending:
            return
        group: list[Any] = []
        size = 0
        while self._pending and (not group or size + len(self._pending[0].rows) <= self.max_batch_size):
            item = self._pending.pop(0)
            group.append(item)
            size += len(item.rows)
        self._rows -= size
        self._gauge()
        self._running = True
        metrics.BATCH_SIZE.labels(self.endpoint, str(self.predictor.version)).observe(size)
        try:
            results = self._run([w.rows for w in group])
        except Exception as exc:  # a bug, not a client's mistake: every request of the group gets it
            results = [exc] * len(group)
        self._finished(loop, group, results)

    def _run(self, groups: list[Sequence[Mapping[str, Any]]]) -> list[Prediction | BaseException]:
        """One lookup and one model call for every request of the group."""
        if len(groups) == 1:
            return [self._alone(groups[0])]
        rows = [row for rows in groups for row in rows]
        try:
            whole = self.predictor.predict(self.project, rows, checked=True)
        except Exception:  # a bad request, or tensors that do not stack across requests: each on its own
            return [self._alone(rows) for rows in groups]  # find the request at fault; the rest succeed
        out: list[Prediction | BaseException] = []
        start = 0
        for part in groups:
            end = start + len(part)
            out.append(Prediction(whole.predictions[start:end],
                                  {k: v[start:end] for k, v in whole.inputs.items()}, whole.lookup_seconds,
                                  {k: v[start:end] for k, v in whole.keys.items()}, whole.defaulted))  # fmt: skip
            start = end
        return out

    def _alone(self, rows: Sequence[Mapping[str, Any]]) -> Prediction | BaseException:
        try:
            return self.predictor.predict(self.project, rows, checked=True)
        except Exception as exc:  # handed to that request's future, raised in its handler
            return exc

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[_Waiting],
        results: list[Prediction | BaseException],
    ) -> None:
        self._running = False
        for waiting, result in zip(group, results, strict=True):
            if waiting.future.done():  # the client went away
                continue
            if isinstance(result, BaseException):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)
        if self._pending:
            self._start(loop)  # queued while the group ran (a request's own call): no further wait

    def _gauge(self) -> None:
        metrics.QUEUE_DEPTH.labels(self.endpoint, str(self.predictor.version)).set(len(self._pending))

    def close(self) -> None:
        """Nothing to release: groups run on the event loop."""
