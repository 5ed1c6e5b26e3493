"""Live figures per version from the prediction log (the dashboard's deployment page)."""

from __future__ import annotations

import pandas as pd
import pytest

from mloop.monitoring.traffic import per_version


def test_requests_p99_and_error_share_per_version_count_each_request_once() -> None:
    rows = [("a", 0, 1, "ok", 0.010), ("a", 1, 1, "ok", 0.010), ("a", 0, 1, "ok", 0.010),  # a duplicate
            ("b", 0, 1, "error", 5.0), ("c", 0, 2, "ok", 0.020), ("a", 0, 3, "shadow", 0.030)]  # fmt: skip
    for i in range(98):
        rows.append((f"r{i}", 0, 1, "ok", 0.001))
    frame = pd.DataFrame(rows, columns=["request_id", "row", "version", "status", "latency_s"])
    one, two, three = per_version(frame)
    assert (one["version"], one["requests"], one["errors"]) == (1, 100, 1)
    assert one["error_share"] == pytest.approx(0.01)
    assert one["p99_ms"] == pytest.approx(pd.Series([10.0] + [1.0] * 98).quantile(0.99))  # errors left out
    assert (two["requests"], two["p99_ms"], two["shadow"]) == (1, pytest.approx(20.0), False)
    assert three["shadow"] and three["requests"] == 1
    assert per_version(pd.DataFrame()) == []
