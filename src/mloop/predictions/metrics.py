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
    "Predictions not logged because their line could not be written (a full disk; the answer is still given), by endpoint.",
    ["endpoint"],
)
