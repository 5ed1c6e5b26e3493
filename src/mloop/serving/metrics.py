"""Prometheus metrics of the inference service (exported on /metrics by ``mloop serve``).

With ``mloop serve --workers N`` each worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (set by
the command before the workers start) and /metrics, whichever worker answers it, adds them all up:
counters and histograms sum, in-flight gauges sum over live workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

# Buckets for a service whose answers take well under a millisecond to tens of milliseconds.
_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "mloop_predict_requests_total",
    "Prediction requests answered, by endpoint, model version and status (ok, rejected: client error, error).",
    ["endpoint", "version", "status"],
)
LATENCY = Histogram(
    "mloop_predict_latency_seconds",
    "Time from a prediction request's arrival in the service layer to its answer.",
    ["endpoint", "version"],
    buckets=_SECONDS,
)
LOOKUP = Histogram(
    "mloop_feature_lookup_latency_seconds",
    "Time spent looking up a prediction's online features (one round trip for all views).",
    ["endpoint"],
    buckets=_SECONDS,
)
PIPELINE_STAGE = Histogram(
    "mloop_pipeline_stage_seconds",
    "Time each stage of a pipeline endpoint takes per request, by pipeline, stage and answering version.",
    ["pipeline", "stage", "version"],
    buckets=_SECONDS,
)
SHADOW = Counter(
    "mloop_shadow_predictions_total",
    "Shadow predictions run off the request path, by endpoint, shadow version and status.",
    ["endpoint", "version", "status"],
)
SHADOW_DROPPED = Counter(
    "mloop_shadow_dropped_total",
    "Shadow copies dropped because the shadow queue was full (the primary answer is never delayed).",
    ["endpoint"],
)
SHED = Counter(
    "mloop_shed_requests_total",
    "Requests answered 503 at once: the worker was at serving.max_concurrency requests in flight, or its "
    "event loop more than serving.max_queue_ms behind.",
)
RATE_LIMITED = Counter(
    "mloop_rate_limited_requests_total",
    "Requests answered 429 because their API key was over its rate limit.",
)
RATE_LIMIT_FALLBACK = Counter(
    "mloop_rate_limit_fallback_total",
    "Rate limit checks made against this replica's own bucket because the shared limiter (Redis, "
    "serving.rate_limit_url) did not answer.",
)
IN_FLIGHT = Gauge(
    "mloop_requests_in_flight", "Guarded requests the workers are answering now.", multiprocess_mode="livesum"
)
BATCH_SIZE = Histogram(
    "mloop_batch_size_rows",
    "Rows per model call when dynamic batching groups concurrent requests, by endpoint and version.",
    ["endpoint", "version"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
QUEUE_DEPTH = Gauge(
    "mloop_batch_queue_depth",
    "Requests waiting for a batch, by endpoint and version.",
    ["endpoint", "version"],
)
EXPLAINED = Counter(
    "mloop_explained_predictions_total",
    "Sampled answers explained off the request path (deployment option explain_sample), by endpoint and "
    "status: ok (logged), error (the explainer failed), dropped (the queue was full).",
    ["endpoint", "status"],
)
CACHE = Counter("mloop_cache_lookups_total", "Response cache lookups by endpoint and result (hit, miss).",
                ["endpoint", "result"])  # fmt: skip


def exposition() -> bytes:
    """The Prometheus text of this process, or of every worker in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
        return generate_latest(registry)
    return generate_latest()
