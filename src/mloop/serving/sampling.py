"""Sampled attribution logging: a share of an endpoint's answers explained off the request path.

An endpoint deployed with ``options={"explain_sample": 0.1}`` has one answer in ten explained by the
version that gave it, on the model inputs it was given (after the feature lookup), and the attributions
written to the prediction log as an ``explained`` line under the answer's request id
(:func:`mloop.predictions.explanations.read_explanations` reads them back, labels joined). The answer is
logged first and sent as usual: the explanation is computed later, on one background thread fed by a
bounded queue, like the shadow copies of :class:`~mloop.serving.inference.Inference`; when the queue is
full the sample is dropped and counted (``mloop_explained_predictions_total{status="dropped"}``) rather
than queued without bound, and an explainer that fails is counted, never the caller's error.

>>> sampler = AttributionSampler(prediction_log)                                   # doctest: +SKIP
>>> sampler.offer(live.name, predictor, answer, logged, share=0.1)                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from typing import Any

import pandas as pd

from mloop.predictions import Answer, PredictionLog
from mloop.serving import metrics
from mloop.serving.predictor import Predictor

log = logging.getLogger("mloop.serving")

SAMPLE_QUEUE = 1_000  # answers waiting to be explained; more are dropped and counted

_Item = tuple[str, Predictor, dict[str, list[Any]], Answer]


class AttributionSampler:
    """Explains a random share of the answers it is offered, on its own thread; one per server process."""

    def __init__(self, prediction_log: PredictionLog, *, queue_size: int = SAMPLE_QUEUE, seed: int | None = None
                 ) -> None:  # fmt: skip
        self.prediction_log = prediction_log
        self._queue: queue.Queue[_Item | None] = queue.Queue(queue_size)
        self._random = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.explained = self.failed = self.dropped = 0

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
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._explain(*item)
            finally:
                self._queue.task_done()

    def _explain(
        self, endpoint: str, predictor: Predictor, inputs: dict[str, list[Any]], logged: Answer
    ) -> None:
        started = time.perf_counter()
        try:
            found = predictor.model.attributions(pd.DataFrame(inputs))
        except (
            Exception
        ) as exc:  # an explainer's failure is data about the explainer, never a request's error
            self.failed += 1
            metrics.EXPLAINED.labels(endpoint, "error").inc()
            log.debug("explain sample %s v%s: %s: %s", endpoint, predictor.version, type(exc).__name__, exc,
                      extra={"request_id": logged.request_id})  # fmt: skip
            return
        rows = [{"base_value": row["base_value"], "attributions": row["attributions"], "output": found.output,
                 "method": found.method} for row in found.to_dicts()]  # fmt: skip
        elapsed = time.perf_counter() - started
        explained = Answer(logged.request_id, logged.endpoint, logged.model, logged.version, logged.revision,
                           logged.predictions, logged.inputs, elapsed, logged.keys)  # fmt: skip
        if self.prediction_log.record(explained, attributions=rows):
            self.explained += 1
            metrics.EXPLAINED.labels(endpoint, "ok").inc()

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
