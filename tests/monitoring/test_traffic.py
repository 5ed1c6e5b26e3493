"""Live figures per version from the prediction log (the dashboard's deployment page)."""

from __future__ import annotations

import pandas as pd
import pytest

from mloop.monitoring.traffic import per_version


def test_requests_p99_and_error_share_per_version() -> None:
    """Each request's first row per version, as mloop.predictions.summary.request_rows reads them (the
    reader drops a record's other rows and counts a segment compacted meanwhile once: tested there)."""
    rows = [(1, "ok", 0.010), (1, "error", 5.0), (2, "ok", 0.020), (3, "shadow", 0.030), (1, "rejected", 0.1)]
    rows += [(1, "ok", 0.001)] * 98
    frame = pd.DataFrame(rows, columns=["version", "status", "latency_s"])
    one, two, three = per_version(frame)
    assert (one["version"], one["requests"], one["errors"]) == (1, 100, 1)
    assert one["error_share"] == pytest.approx(0.01)
    assert one["p99_ms"] == pytest.approx(pd.Series([10.0] + [1.0] * 98).quantile(0.99))  # errors left out
    assert (two["requests"], two["p99_ms"], two["shadow"]) == (1, pytest.approx(20.0), False)
    assert three["shadow"] and three["requests"] == 1
    assert per_version(pd.DataFrame()) == []
