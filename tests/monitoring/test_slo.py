"""SLOs: burn rates, budgets, and multi-window alerts on a simulated outage and a healthy run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mloop.errors import MalformedInput
from mloop.monitoring.slo import Objective, alerts, budget, burn_rates

START = datetime(2026, 12, 1, tzinfo=UTC)
SLO = Objective("fraud-availability", target=0.999)


def minutes(n: int, rate: int = 600, bad_share: float = 0.0002, outage: tuple[int, int] | None = None,
            seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """n one-minute buckets of ``rate`` requests, a healthy bad share, and an optional outage (all bad)."""
    rng = np.random.default_rng(seed)
    total = np.full(n, rate)
    bad = rng.binomial(rate, bad_share, n)
    if outage is not None:
        bad[outage[0] : outage[1]] = rate
    return pd.DataFrame(
        {"ts": [START + timedelta(minutes=i) for i in range(n)], "good": total - bad, "total": total}
    )


def test_a_healthy_run_stays_quiet_over_three_days() -> None:
    events = minutes(3 * 24 * 60)
    for hour in range(6, 72, 3):
        assert alerts(SLO, events, START + timedelta(hours=hour)) == []
    left = budget(SLO, events, START + timedelta(days=3))
    assert 0.7 < left.remaining < 0.9 and left.sli == pytest.approx(0.9998, abs=1e-4)


def test_an_outage_pages_within_minutes_and_stops_after_it_ends() -> None:
    events = minutes(14 * 60, outage=(6 * 60, 6 * 60 + 20))  # 20 minutes down, 6 h in
    before = START + timedelta(hours=6) - timedelta(minutes=1)
    assert alerts(SLO, events, before) == []
    during = alerts(SLO, events, START + timedelta(hours=6, minutes=5))
    assert [a.severity for a in during] == ["page"] and during[0].threshold == 14.4
    assert during[0].short_rate > 14.4 and during[0].long_rate > 14.4
    # 40 minutes after it ended the short windows (5 and 30 minutes) are clean: the page stops; the
    # ticket stays while the 6-hour window still holds the spent budget.
    after = alerts(SLO, events, START + timedelta(hours=7))
    assert [a.severity for a in after] == ["ticket"]
    assert alerts(SLO, events, START + timedelta(hours=12, minutes=30)) == []  # 6 h after: all clear
    spent = budget(SLO, events, START + timedelta(hours=14))
    assert spent.remaining < 0  # 12,000 bad requests: far over a 0.1% budget of 504 requests


def test_a_slow_burn_opens_a_ticket_not_a_page() -> None:
    events = minutes(4 * 24 * 60, bad_share=0.0015)  # burns at 1.5x: the budget is gone in 20 days
    fired = alerts(SLO, events, START + timedelta(days=4))
    assert [a.severity for a in fired] == ["ticket"]


def test_burn_rates_are_none_without_events_and_bad_input_is_refused() -> None:
    events = minutes(10)
    rates = burn_rates(SLO, events, START - timedelta(days=10))
    assert set(rates) == {"5m", "30m", "1h", "6h", "3d"} and all(v is None for v in rates.values())
    with pytest.raises(MalformedInput, match="between 0 and 1"):
        Objective("x", target=99)
    with pytest.raises(MalformedInput, match="missing total"):
        burn_rates(SLO, events.drop(columns="total"), START)
    with pytest.raises(MalformedInput, match="good <= total"):
        burn_rates(SLO, events.assign(good=events.total + 1), START)
