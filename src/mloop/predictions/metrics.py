"""Prometheus metrics of the prediction log writers (exported on /metrics by ``mloop serve``)."""

from __future__ import annotations

from prometheus_client import Counter

PREDLOG_ROWS = Counter(
    "mloop_prediction_log_rows_total",
    "Predicted rows written to the prediction log (its segment files), by endpoint.",
    ["endpoint"],
)
PREDLOG_DROPPED = Counter(
    "mloop_prediction_log_dropped_total",
    "Prediction-log lines the disk refused (a full disk), by endpoint: a served answer is then refused with 503; "
    "shadow, error and sampled-explanation lines are dropped.",
    ["endpoint"],
)
