"""The prediction path shared by the v1 API and the Open Inference Protocol: permission, version choice,
feature lookup and prediction, shadow copies, metrics.

The caller needs ``predict`` on ``endpoint:NAME``; the feature lookup runs as the server itself, so a
client key needs no read access to the feature store. Shadow versions get a copy of the rows on a
bounded background queue after the answer is computed: they never change it, never delay it, and when
the queue is full the copy is dropped and counted rather than queued without bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from mloop.errors import MloopError, OnlineStoreUnavailable, PredictionTimeout
from mloop.models.signature import ColumnSpec
from mloop.predictions import Answer, PredictionLog
from mloop.serving import metrics
from mloop.serving.batching import Batcher
from mloop.serving.cache import ResponseCache
from mloop.serving.deadline import Deadlines
from mloop.serving.endpoints import EndpointTable, LiveEndpoint
from mloop.serving.predictor import Prediction, Predictor, check_rows
from mloop.serving.sampling import AttributionSampler
from mloop.serving.store_alerts import OnlineStoreAlerts

log = logging.getLogger("mloop.serving")

SHADOW_QUEUE = 1_000


class Inference:
    """Answers predictions for the endpoints of ``table``; one per server process."""

    def __init__(
        self,
        table: EndpointTable,
        *,
        shadow_queue: int = SHADOW_QUEUE,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.table = table
        self.project = table.project
        self.prediction_log = prediction_log  # every answer is recorded there, off the request path
        self._shadow: queue.Queue[tuple[LiveEndpoint, str, list[Mapping[str, Any]]] | None] = queue.Queue(
            shadow_queue
        )
        self._shadow_thread: threading.Thread | None = None
        self.shadow_results: list[dict[str, Any]] = []  # the newest few, for tests and the dashboard
        self._batchers: dict[tuple[Any, ...], Batcher] = {}
        self._caches: dict[str, ResponseCache] = {}
        self._options_of: dict[tuple[str, int], tuple[int, float, int, float]] = {}
        # a share of the answers explained off the request path (deployment option explain_sample)
        self.sampler = (
            AttributionSampler(prediction_log, priority=self.project.settings.serving.explain_priority)
            if prediction_log is not None
            else None
        )
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self.store_alerts = OnlineStoreAlerts(self.project)  # <endpoint>/online-store/down
        self.deadlines = Deadlines()  # the threads of endpoints deployed with timeout_ms

    def predict(
        self,
        caller: Any,
        endpoint: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        request_id: str | None = None,
        at: datetime | None = None,
        record: bool = True,
    ) -> Answer:
        """Predictions for ``rows`` from the version the endpoint's traffic policy picks (or ``version``,
        which must be one the endpoint serves), computed on this thread; ``at``: features as of then;
        ``record=False``: not written to the prediction log (a pipeline stage logging a sample only)."""
        live, predictor, started = self._begin(caller, endpoint, rows, version)
        hit = None if at is not None else self._from_cache(live, rows, version, request_id, started)
        if hit is not None:
            return hit
        with self._measured(live, predictor, started, request_id):
            result = predictor.predict(self.project, rows, checked=True, at=at)
        return self._finish(live, predictor, rows, version, result, started, request_id, record=record)

    async def predict_async(
        self,
        caller: Any,
        endpoint: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        request_id: str | None = None,
        at: datetime | None = None,
    ) -> Answer:
        """As :meth:`predict`, on the event loop: grouped with concurrent requests by the version's
        :class:`~mloop.serving.batching.Batcher` when batching is on, computed inline when it is off (a
        thread hop would cost more than the model call) or when ``at`` asks for features as of a time. An
        endpoint deployed with ``timeout_ms`` has its calls made on its own threads, unbatched, and answers
        :class:`~mloop.errors.PredictionTimeout` past it (:mod:`mloop.serving.deadline`)."""
        live, predictor, started = self._begin(caller, endpoint, rows, version)
        hit = None if at is not None else self._from_cache(live, rows, version, request_id, started)
        if hit is not None:
            return hit
        timeout = live.deployment.options.get("timeout_ms", self.project.settings.serving.timeout_ms)
        batcher = None if at is not None or timeout is not None else self._batcher(live, predictor)
        with self._measured(live, predictor, started, request_id):
            if timeout is not None:
                result = await self.deadlines.call(live.name, float(timeout), predictor.predict, self.project, rows,
                                                   checked=True, at=at)  # fmt: skip
            elif batcher is None:
                result = predictor.predict(self.project, rows, checked=True, at=at)
            else:
                result = await batcher.predict(rows)
        return self._finish(live, predictor, rows, version, result, started, request_id)

    def _begin(
        self, caller: Any, endpoint: str, rows: Sequence[Mapping[str, Any]], version: int | None
    ) -> tuple[LiveEndpoint, Predictor, float]:
        started = time.perf_counter()
        live, predictor = self.resolve(caller, endpoint, rows, version)
        return live, predictor, started

    def resolve(
        self, caller: Any, endpoint: str, rows: Sequence[Mapping[str, Any]], version: int | None = None
    ) -> tuple[LiveEndpoint, Predictor]:
        """The live endpoint and the version that would answer ``rows`` (its traffic policy, or the pinned
        ``version``), after the caller's ``predict`` permission and the rows' shape are checked: what
        explanations and counterfactuals use to reach the same model a prediction would."""
        caller.actor.require("predict", f"endpoint:{endpoint}")
        live = self.table.get(endpoint)
        check_rows(rows, live.tensors)
        return live, live.predictors[self._choose(live, rows, version)]

    @contextlib.contextmanager
    def _measured(
        self, live: LiveEndpoint, predictor: Predictor, started: float, request_id: str | None
    ) -> Iterator[None]:
        status = "error"
        try:
            yield
            status = "ok"
        except OnlineStoreUnavailable:  # the server's fault, not the caller's: the availability SLO counts it
            self.store_alerts.failed(
                live.name, "its requests fail with 503 (feature views with on_missing: error)"
            )
            raise
        except PredictionTimeout:
            status = "timeout"
            raise
        except MloopError:
            status = "rejected"
            raise
        finally:
            if status != "ok":
                elapsed = time.perf_counter() - started
                endpoint, version = live.name, predictor.version
                metrics.REQUESTS.labels(endpoint, str(version), status).inc()
                metrics.LATENCY.labels(endpoint, str(version)).observe(elapsed)
                if status in ("error", "timeout") and self.prediction_log is not None:  # the SLIs' bad events
                    failed = Answer(request_id or uuid.uuid4().hex, endpoint, predictor.name, version,
                                    live.revision, [None], {}, elapsed)  # fmt: skip
                    self.prediction_log.record(failed, status=status)

    def _finish(
        self,
        live: LiveEndpoint,
        predictor: Predictor,
        rows: Sequence[Mapping[str, Any]],
        pinned: int | None,
        result: Prediction,
        started: float,
        request_id: str | None,
        *,
        cached: bool = False,
        record: bool = True,
    ) -> Answer:
        elapsed = time.perf_counter() - started
        version = predictor.version
        served, latency, lookup = self._series(live.name, version)
        served.inc()
        latency.observe(elapsed)
        if not cached:
            lookup.observe(result.lookup_seconds)
            cache = self._cache(live)
            if result.defaulted:  # never cached: the next request reads the store again
                self.store_alerts.failed(live.name, "predictions are answered with the declared defaults")
            elif cache is not None:
                cache.put(rows, pinned, (predictor, result))
            if predictor.features and not result.defaulted:
                self.store_alerts.reached(live.name)
        answer = Answer(request_id or uuid.uuid4().hex, live.name, predictor.name, version, live.revision,
                        result.predictions, result.inputs, elapsed, result.keys, result.defaulted)  # fmt: skip
        if live.router.shadows and not cached:
            self._send_shadow(live, answer.request_id, list(rows))
        if self.prediction_log is not None and record:
            logged = self._logged(live, answer)
            # One write to the OS, never a flush; a line the disk refuses fails the request (503): no answer
            # leaves without its line (docs/serving.md), and the next request tries the disk again.
            self.prediction_log.record(logged, required=True)
            share = self._options(live)[3]
            if share and self.sampler is not None:
                self.sampler.offer(live.name, predictor, answer, logged, share)
        return answer

    def _logged(self, live: LiveEndpoint, answer: Answer) -> Answer:
        """``answer`` as the prediction log keeps it: inputs tagged PII hashed or masked (``pii:`` settings)."""
        mode = self.project.settings.pii.prediction_log
        if not live.pii or mode == "keep":
            return answer
        names, keyed = live.pii.intersection(answer.inputs), live.pii.intersection(answer.keys)
        if not names and not keyed:
            return answer
        protect = self.project.privacy.pseudonymizer.protect
        return dataclasses.replace(answer, inputs=protect(answer.inputs, names, mode) if names else answer.inputs,
                                   keys=protect(answer.keys, keyed, mode) if keyed else answer.keys)  # fmt: skip

    # ---- batching and the response cache -------------------------------------------------------------

    def _options(self, live: LiveEndpoint) -> tuple[int, float, int, float]:
        key = (live.name, live.revision)
        found = self._options_of.get(key)
        if found is None:
            serving = self.project.settings.serving
            options = live.deployment.options
            found = (int(options.get("max_batch_size", serving.max_batch_size)),
                     float(options.get("max_wait_ms", serving.max_wait_ms)),
                     int(options.get("cache_size", serving.cache_size)),
                     float(options.get("explain_sample", 0.0)))  # fmt: skip
            if len(self._options_of) > 1_000:
                self._options_of.clear()
            self._options_of[key] = found
        return found

    def _series(self, endpoint: str, version: int) -> tuple[Any, Any, Any]:
        """The Prometheus children of a successful request (``labels()`` costs microseconds each)."""
        key = (endpoint, version)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (metrics.REQUESTS.labels(endpoint, str(version), "ok"),
                                           metrics.LATENCY.labels(endpoint, str(version)),
                                           metrics.LOOKUP.labels(endpoint))  # fmt: skip
        return found

    def _batcher(self, live: LiveEndpoint, predictor: Predictor) -> Batcher | None:
        size, wait, _, _ = self._options(live)
        if size <= 1:
            return None
        key = (live.name, predictor.name, predictor.version, size, wait)
        batcher = self._batchers.get(key)
        if batcher is None or batcher.predictor is not predictor:
            batcher = self._batchers[key] = Batcher(predictor, self.project, live.name, size, wait)
        return batcher

    def _cache(self, live: LiveEndpoint) -> ResponseCache | None:
        size = self._options(live)[2]
        if size <= 0:
            return None
        cache = self._caches.get(live.name)
        if cache is None or cache.revision != live.revision or cache.size != size:
            cache = self._caches[live.name] = ResponseCache(live.revision, size)  # a new revision: empty
        return cache

    def _from_cache(
        self, live: LiveEndpoint, rows: Sequence[Mapping[str, Any]], pinned: int | None, request_id: str | None,
        started: float,
    ) -> Answer | None:  # fmt: skip
        cache = self._cache(live)
        if cache is None:
            return None
        found = cache.get(rows, pinned)
        metrics.CACHE.labels(live.name, "miss" if found is None else "hit").inc()
        if found is None:
            return None
        predictor, result = found
        return self._finish(live, predictor, rows, pinned, result, started, request_id, cached=True)

    def describe(self, caller: Any, endpoint: str, version: int | None = None) -> dict[str, Any]:
        """What the endpoint serves: its revision, traffic policy, and each version's inputs and outputs."""
        caller.actor.require("predict", f"endpoint:{endpoint}")
        live = self.table.get(endpoint)
        chosen = self._choose(live, [{}], version) if version is not None else live.deployment.primary
        predictor = live.predictors[chosen]
        signature = predictor.model.signature
        return {
            "endpoint": live.name,
            "revision": live.revision,
            "deployment": live.deployment.to_dict(),
            "model": predictor.name,
            "version": predictor.version,
            "versions": sorted(live.predictors),
            "features": predictor.features,
            "signature": signature.to_dict() if signature is not None else None,
        }

    def input_specs(self, caller: Any, endpoint: str, version: int | None = None) -> list[ColumnSpec]:
        """The signature's input columns of the version answering (the primary when not pinned); the
        caller needs ``predict`` on the endpoint, checked before it is looked up."""
        caller.actor.require("predict", f"endpoint:{endpoint}")
        return self._predictor(endpoint, version).specs

    def output_names(self, endpoint: str, version: int) -> list[str]:
        return self._predictor(endpoint, version).outputs

    def _predictor(self, endpoint: str, version: int | None) -> Predictor:
        live = self.table.get(endpoint)
        chosen = self._choose(live, [{}], version) if version is not None else live.deployment.primary
        return live.predictors[chosen]

    def _choose(self, live: LiveEndpoint, rows: Sequence[Mapping[str, Any]], version: int | None) -> int:
        if version is not None:
            if version not in live.predictors:
                served = ", ".join(str(v) for v in sorted(live.predictors))
                raise MloopError(
                    f"Endpoint {live.name!r} does not serve version {version}; it serves {served}. Leave the "
                    "version out to follow the traffic policy, or deploy that version first."
                )
            return version
        key = live.deployment.sticky_key
        sticky = rows[0].get(key) if key else None
        return live.router.pick(sticky)

    # ---- shadow traffic -------------------------------------------------------------------------------

    def _send_shadow(self, live: LiveEndpoint, request_id: str, rows: list[Mapping[str, Any]]) -> None:
        if self._shadow_thread is None:
            self._shadow_thread = threading.Thread(target=self._shadow_loop, name="mloop-shadow", daemon=True)
            self._shadow_thread.start()
        try:
            self._shadow.put_nowait((live, request_id, rows))
        except queue.Full:
            metrics.SHADOW_DROPPED.labels(live.name).inc()

    def _shadow_loop(self) -> None:
        while True:
            item = self._shadow.get()
            try:
                if item is None:
                    return
                live, request_id, rows = item
                for version in live.router.shadows:
                    self._run_shadow(live, live.predictors[version], request_id, rows)
            finally:
                self._shadow.task_done()

    def _run_shadow(self, live: LiveEndpoint, predictor: Predictor, request_id: str, rows: list[Any]) -> None:
        started = time.perf_counter()
        try:
            result = predictor.predict(self.project, rows)
            outcome: dict[str, Any] = {"predictions": result.predictions}
            status = "ok"
        except Exception as exc:  # a shadow's failure is data about the shadow, never the caller's error
            outcome, status = {"error": f"{type(exc).__name__}: {exc}"}, "error"
        seconds = time.perf_counter() - started
        metrics.SHADOW.labels(live.name, str(predictor.version), status).inc()
        record = {"request_id": request_id, "endpoint": live.name, "version": predictor.version,
                  "seconds": seconds, **outcome}  # fmt: skip
        self.shadow_results.append(record)
        del self.shadow_results[:-1000]
        if self.prediction_log is not None and status == "ok":  # beside the primary's, for comparison
            shadow = Answer(request_id, live.name, predictor.name, predictor.version, live.revision,
                            result.predictions, result.inputs, seconds, result.keys)  # fmt: skip
            self.prediction_log.record(self._logged(live, shadow), status="shadow")
        log.debug("shadow %s v%s: %s", live.name, predictor.version, status, extra={"request_id": request_id})

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued shadow copy has run and every sampled answer is explained (for tests and
        graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while self._shadow.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.sampler is not None:
            self.sampler.drain(max(0.0, deadline - time.monotonic()))
        self.store_alerts.drain(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.store_alerts.close()
        self.deadlines.close()
        for batcher in self._batchers.values():
            batcher.close()
        if self.sampler is not None:
            self.sampler.close()
        if self._shadow_thread is not None:
            self._shadow.put(None)
            self._shadow_thread.join(timeout=5)
            self._shadow_thread = None
