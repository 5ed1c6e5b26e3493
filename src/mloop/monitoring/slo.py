"""Service-level objectives: error budgets and multi-window burn-rate alerts.

An SLO says what share of events must be good over a period: 99% of predictions answered within 50 ms,
99.9% not answered 5xx, over 30 days. The error budget is the bad share it allows (1% of the period's
events); the burn rate of a window is its bad share divided by that budget share, so a burn rate of 1
spends exactly the budget over the period and 14.4 spends 2% of a 30-day budget in one hour.

Alerts follow the Google SRE workbook's multi-window, multi-burn-rate rules (:data:`RULES`): an alert
fires when both its long window and its short window burn faster than its rate. The long window keeps
a brief blip from paging; the short one makes the alert stop soon after the problem does.

======  ============  =============  ==========  ===============================
name    long window   short window   burn rate   spends
======  ============  =============  ==========  ===============================
page    1 h           5 min          14.4        2% of a 30-day budget in 1 h
page    6 h           30 min         6           5% in 6 h
ticket  3 d           6 h            1           10% in 3 d
======  ============  =============  ==========  ===============================

Events come as counts per time bucket (``ts``, ``good``, ``total``), as Prometheus counters or the
prediction log give them; windows are summed from cumulative counts, so any number of windows costs one
pass.

>>> slo = Objective("fraud-latency", target=0.99)
>>> burn_rates(slo, events, now)                 # doctest: +SKIP
{'5m': 0.0, '30m': 0.0, '1h': 0.1, '6h': 0.2, '3d': 0.3}
>>> alerts(slo, events, now)                     # doctest: +SKIP
[]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import as_utc
from mloop.errors import MalformedInput


@dataclass(frozen=True)
class Rule:
    severity: str
    long: timedelta
    short: timedelta
    rate: float


RULES = (
    Rule("page", timedelta(hours=1), timedelta(minutes=5), 14.4),
    Rule("page", timedelta(hours=6), timedelta(minutes=30), 6.0),
    Rule("ticket", timedelta(days=3), timedelta(hours=6), 1.0),
)


@dataclass(frozen=True)
class Objective:
    name: str
    target: float  # the share of good events, e.g. 0.99
    period: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise MalformedInput(
                f"SLO {self.name!r}: target {self.target} must be a share between 0 and 1, e.g. 0.99 for 99%."
            )

    @property
    def budget(self) -> float:
        return 1.0 - self.target


@dataclass(frozen=True)
class Alert:
    slo: str
    severity: str
    long: str
    short: str
    threshold: float
    long_rate: float
    short_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    slo: str
    target: float
    events: int
    bad: int
    allowed: float  # bad events the budget allows over the period so far
    remaining: float  # share of the budget left: 1 untouched, 0 spent, negative overspent
    sli: float | None  # the good share over the period; None without events


def _label(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _counts(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = {"ts", "good", "total"} - set(events.columns)
    if missing:
        raise MalformedInput(
            f"SLO events need columns ts, good and total; missing {', '.join(sorted(missing))}."
        )
    frame = events.sort_values("ts")
    ts = pd.to_datetime(frame["ts"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    good = frame["good"].to_numpy(dtype=np.float64)
    total = frame["total"].to_numpy(dtype=np.float64)
    if (good < 0).any() or (good > total).any():
        raise MalformedInput("SLO events: each bucket needs 0 <= good <= total.")
    return ts, np.r_[0.0, np.cumsum(total - good)], np.r_[0.0, np.cumsum(total)]


def _window(
    ts: np.ndarray, bad: np.ndarray, total: np.ndarray, now: int, span: timedelta
) -> tuple[float, float]:
    start = now - int(span.total_seconds() * 1e9)
    lo, hi = np.searchsorted(ts, start, side="right"), np.searchsorted(ts, now, side="right")
    return float(bad[hi] - bad[lo]), float(total[hi] - total[lo])


def _now(now: datetime) -> int:
    return int(pd.Timestamp(as_utc(now)).value)  # nanoseconds since the epoch


def burn_rates(slo: Objective, events: pd.DataFrame, now: datetime) -> dict[str, float | None]:
    """Burn rate per window of :data:`RULES` ending at ``now``; None for a window without events."""
    ts, bad, total = _counts(events)
    at = _now(now)
    out: dict[str, float | None] = {}
    for span in sorted({w for r in RULES for w in (r.short, r.long)}):
        b, t = _window(ts, bad, total, at, span)
        out[_label(span)] = (b / t) / slo.budget if t else None
    return out


def alerts(slo: Objective, events: pd.DataFrame, now: datetime) -> list[Alert]:
    """The rules of :data:`RULES` that fire at ``now``: both windows burning faster than the rule's rate.
    One alert per incident: the fastest firing rule per severity, and no ticket while a page fires."""
    rates = burn_rates(slo, events, now)
    firing: dict[str, Alert] = {}
    for rule in RULES:
        long, short = rates[_label(rule.long)], rates[_label(rule.short)]
        if long is None or short is None or long <= rule.rate or short <= rule.rate:
            continue
        alert = Alert(slo.name, rule.severity, _label(rule.long), _label(rule.short), rule.rate, long, short)
        if rule.severity not in firing or rule.rate > firing[rule.severity].threshold:
            firing[rule.severity] = alert
    if "page" in firing:  # a page covers the ticket of the same incident (Alertmanager's inhibition)
        firing.pop("ticket", None)
    return list(firing.values())


def budget(slo: Objective, events: pd.DataFrame, now: datetime) -> Budget:
    """The error budget over the SLO's period ending at ``now``."""
    ts, bad, total = _counts(events)
    b, t = _window(ts, bad, total, _now(now), slo.period)
    allowed = t * slo.budget
    remaining = 1.0 - b / allowed if allowed else 1.0
    return Budget(slo.name, slo.target, int(t), int(b), allowed, remaining, (1 - b / t) if t else None)


__all__ = ["RULES", "Alert", "Budget", "Objective", "Rule", "alerts", "budget", "burn_rates"]
