"""Prometheus metrics of the prediction log writers (exported on /metrics by ``mloop serve``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PREDLOG_QUEUE = Gauge(
    "mloop_prediction_log_queue_depth",
    "Answered predictions waiting for the prediction log writers of the workers.",
    multiprocess_mode="livesum",
)
PREDLOG_ROWS = Counter(
    "mloop_prediction_log_rows_total",
    "Predicted rows written to the prediction log (its segment files), by endpoint.",
    ["endpoint"],
)
PREDLOG_DROPPED = Counter(
    "mloop_prediction_log_dropped_total",
    "Predictions not logged because the log's queue was full (the answer is never delayed), by endpoint.",
    ["endpoint"],
)
