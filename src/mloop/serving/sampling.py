"""Sampled attribution logging: a share of an endpoint's answers explained off the request path.

An endpoint deployed with ``options={"explain_sample": 0.1}`` has one answer in ten explained by the
version that gave it, on the model inputs it was given (after the feature lookup), and the attributions
written to the prediction log as an ``explained`` line under the answer's request id
(:func:`mloop.predictions.explanations.read_explanations` reads them back, labels joined). The answer is
logged first and sent as usual: the explanation is computed later, by a child process at idle priority
(:mod:`~mloop.serving.explainer`: explaining costs several predictions, and on the server's own thread it
took a quarter of its throughput), fed by one thread of the server from a bounded queue, which sends the
samples gathered meanwhile in one batch (per-call costs dominate one row's); when the queue is full (the
child gets no CPU while the server is saturated) the sample is dropped and counted
(``mloop_explained_predictions_total{status="dropped"}``) rather than queued without bound, and an
explainer that fails is counted, never the caller's error.

>>> sampler = AttributionSampler(prediction_log)                                   # doctest: +SKIP
>>> sampler.offer(live.name, predictor, answer, logged, share=0.1)                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from mloop.predictions import Answer, PredictionLog
from mloop.serving import metrics
from mloop.serving.explainer import ExplainerProcess
from mloop.serving.predictor import Predictor

log = logging.getLogger("mloop.serving")

SAMPLE_QUEUE = 1_000  # answers waiting to be explained; more are dropped and counted
BATCH = 256  # samples explained by one explainer call at most
PAUSE = 0.1  # seconds between batches: at 100 samples/s, batches of about 10 rows

Explain = Callable[[tuple[str, int], Any, pd.DataFrame], list[dict[str, Any]]]
_Item = tuple[
    str, Predictor, dict[str, list[Any]], Answer
]  # endpoint, version, its inputs, the logged answer


class AttributionSampler:
    """Explains a random share of the answers it is offered, on its own thread; one per server process."""

    def __init__(self, prediction_log: PredictionLog, *, queue_size: int = SAMPLE_QUEUE, seed: int | None = None,
                 pause: float = PAUSE, explainer: Explain | None = None, priority: str = "idle") -> None:  # fmt: skip
        self.prediction_log = prediction_log
        self.pause = pause
        self._queue: queue.Queue[_Item | None] = queue.Queue(queue_size)
        self._random = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.explained = self.failed = self.dropped = 0
        # the child process by default; ``explain_here`` (in this process) for tests
        self._child = ExplainerProcess(priority) if explainer is None else None
        self._explain_rows: Explain = explainer if explainer is not None else self._child.explain  # type: ignore[union-attr]

    def offer(
        self, endpoint: str, predictor: Predictor, answer: Answer, logged: Answer, share: float
    ) -> bool:
        """Queue ``answer`` to be explained with probability ``share``; True when it was. ``logged`` is the
        answer as the prediction log keeps it (PII protected): the explanation's line copies it, while the
        attributions are computed on ``answer``'s own inputs, which the model saw."""
        if share <= 0 or self._random.random() >= share:
            return False
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="mloop-explain-sample", daemon=True
                    )
                    self._thread.start()
        try:
            self._queue.put_nowait((endpoint, predictor, answer.inputs, logged))
        except queue.Full:
            self.dropped += 1
            metrics.EXPLAINED.labels(endpoint, "dropped").inc()
            return False
        return True

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while items[-1] is not None and len(items) < BATCH:  # what else is waiting: one model call
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                work = [item for item in items if item is not None]
                groups: dict[int, list[_Item]] = {}
                for item in work:
                    groups.setdefault(id(item[1]), []).append(item)
                for group in groups.values():
                    self._explain(group)
            finally:
                for _ in items:
                    self._queue.task_done()
            if items[-1] is None:
                return
            time.sleep(self.pause)  # let samples gather: a batch costs about what one row costs

    def _explain(self, group: list[_Item]) -> None:
        """One explainer call for every sample of one version; if it fails, each sample on its own, so a
        bad row costs only its own explanation."""
        started = time.perf_counter()
        endpoint, predictor = group[0][0], group[0][1]
        names = list(dict.fromkeys(name for item in group for name in item[2]))
        sizes = [len(item[3].predictions) for item in group]
        columns = {n: [v for item, size in zip(group, sizes, strict=True)
                       for v in item[2].get(n, [None] * size)] for n in names}  # fmt: skip
        try:
            found = self._explain_rows(
                (predictor.name, predictor.version), predictor.model, pd.DataFrame(columns)
            )
        except (
            Exception
        ) as exc:  # an explainer's failure is data about the explainer, never a request's error
            if len(group) > 1:
                for item in group:
                    self._explain([item])
                return
            self.failed += 1
            metrics.EXPLAINED.labels(endpoint, "error").inc()
            log.debug("explain sample %s v%s: %s: %s", endpoint, predictor.version, type(exc).__name__, exc,
                      extra={"request_id": group[0][3].request_id})  # fmt: skip
            return
        rows = [{"base_value": row["base_value"], "attributions": row["attributions"], "output": row["output"],
                 "method": row["method"]} for row in found]  # fmt: skip
        elapsed = time.perf_counter() - started
        at = 0
        for (_, _, _, logged), size in zip(group, sizes, strict=True):
            explained = Answer(logged.request_id, logged.endpoint, logged.model, logged.version, logged.revision,
                               logged.predictions, logged.inputs, elapsed, logged.keys)  # fmt: skip
            if self.prediction_log.record(explained, attributions=rows[at : at + size]):
                self.explained += 1
                metrics.EXPLAINED.labels(endpoint, "ok").inc()
            at += size

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued sample is explained (for tests, benchmarks and graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        if self._child is not None:
            self._child.close()
