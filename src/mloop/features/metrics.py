"""Prometheus metrics of the feature store (exported on /metrics by ``mloop serve``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STALE = Counter(
    "mloop_online_stale_values_total",
    "Online reads answered null because the stored value was older than the view's TTL.",
    ["project", "view"],
)
FRESHNESS = Gauge(
    "mloop_feature_view_freshness_seconds",
    "Seconds since the newest event materialized or pushed into a feature view.",
    ["project", "view"],
    multiprocess_mode="mostrecent",
)
LAG = Gauge(
    "mloop_feature_view_materialization_lag_seconds",
    "Seconds between now and the end of a feature view's last committed materialization.",
    ["project", "view"],
    multiprocess_mode="mostrecent",
)
SPARSE = Counter(
    "mloop_online_sparse_windows_total",
    "Online aggregations answered null because their window held fewer values than its min_count.",
    ["project", "view", "feature"],
)
DEFAULTED = Counter(
    "mloop_online_defaulted_reads_total",
    "Online reads of a feature view answered with its declared defaults: the online store was unreachable.",
    ["project", "view"],
)
