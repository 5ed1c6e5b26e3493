"""Alert rules on stored monitoring results, without a project."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mloop.config.monitoring import EndpointMonitoring
from mloop.monitoring.rules import drift_alerts

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _window(rows: int, drifted: bool = True) -> dict[str, object]:
    columns = [{"column": "amount", "method": "psi", "statistic": 0.4, "threshold": 0.2, "drifted": drifted},
               {"column": "device", "method": "psi", "statistic": 0.01, "threshold": 0.2, "drifted": False}]  # fmt: skip
    return {"version": 3, "start": "2026-03-01T00:00:00+00:00", "rows": rows, "columns": columns}


@given(rows=st.integers(0, 1_000), min_rows=st.integers(1, 1_000))
def test_a_drifted_window_alerts_only_with_enough_rows(rows: int, min_rows: int) -> None:
    options = EndpointMonitoring.model_validate({"drift": {"min_rows": min_rows}})
    alerts = drift_alerts("fraud", [_window(rows)], options, NOW)
    assert len(alerts) == (1 if rows >= min_rows else 0)
    for alert in alerts:
        assert alert.key == "fraud/drift/v3" and alert.labels["columns"] == "amount"
        assert "1 of 2 columns drifted" in alert.summary


def test_the_newest_window_of_each_version_decides() -> None:
    options = EndpointMonitoring()
    calm_after = [_window(500), _window(500, drifted=False)]
    assert drift_alerts("fraud", calm_after, options, NOW) == []
    assert len(drift_alerts("fraud", calm_after[::-1], options, NOW)) == 1
