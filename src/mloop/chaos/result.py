"""What one ``mloop chaos run`` measured: the clients' requests before, during and after the fault, and how
soon after the fault's end they were answered well again.

A request is *good* when it is answered 2xx without declared defaults (an answer marked ``defaulted`` is an
answer, but a degraded one). Latencies are from when each request was due (open loop), of answered ones.

- **first answer**: from the fault's end to the first good answer that arrives after it.
- **back to baseline**: from the fault's end to the first request (by when it was due) that begins a run
  of :func:`streak` good requests in a row, each no slower than :func:`threshold_s` of the latency before
  the fault: the clients see the service as it was.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from mloop.review.probe import Sample

DEFAULTED = "defaulted"  # the outcome's suffix for a 2xx answered with declared defaults: "200 defaulted"
PHASES = ("before", "during", "after")


def good(sample: Sample) -> bool:
    return sample.outcome.startswith("2") and not sample.outcome.endswith(DEFAULTED)


def answered(sample: Sample) -> bool:
    return sample.outcome.startswith("2")


def streak(rps: float) -> int:
    """Good requests in a row that count as recovered: half a second's worth, at least 5."""
    return max(5, math.ceil(rps * 0.5))


def threshold_s(before: Sequence[Sample]) -> float | None:
    """The slowest latency that counts as the baseline's: the p99 before the fault, with 50% and 10 ms
    of slack (a busy machine's jitter is not a fault's tail); None when nothing was answered before."""
    ok = [s.latency_s for s in before if good(s)]
    if not ok:
        return None
    p99 = float(np.quantile(np.array(ok), 0.99))
    return max(p99 * 1.5, p99 + 0.010)


def back_to_baseline(samples: Iterable[Sample], after: float, threshold: float, run: int) -> float | None:
    """When (the due time) the first run of ``run`` good requests due at or after ``after``, each within
    ``threshold`` seconds, began; None if there is none yet. ``samples`` ordered by when they were due."""
    start, count = 0.0, 0
    for sample in samples:
        if sample.due < after:
            continue
        if good(sample) and sample.latency_s <= threshold:
            if count == 0:
                start = sample.due
            count += 1
            if count >= run:
                return start
        else:
            count = 0
    return None


@dataclass(frozen=True)
class Phase:
    """The requests due in one phase: before the fault, during it, after it."""

    name: str
    sent: int
    answered: int  # 2xx, defaulted or not
    defaulted: int  # 2xx answered with a feature view's declared defaults
    failed: dict[str, int]  # by HTTP status, or "timeout" / "connection"
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, name: str, samples: Sequence[Sample]) -> Phase:
        ok = np.array([s.latency_s for s in samples if answered(s)], dtype=np.float64) * 1000.0

        def ms(q: float) -> float | None:
            return round(float(np.quantile(ok, q)), 2) if len(ok) else None

        failed = Counter(s.outcome for s in samples if not answered(s))
        return cls(name, len(samples), len(ok), sum(1 for s in samples if s.outcome.endswith(DEFAULTED)),
                   dict(sorted(failed.items())), ms(0.5), ms(0.99))  # fmt: skip


@dataclass(frozen=True)
class ChaosResult:
    """One fault injected under load, as the clients saw it. ``to_dict()`` for JSON; :meth:`row` is the
    row of docs/reliability.md's table."""

    fault: str
    endpoint: str
    url: str
    at: datetime
    seconds: float  # the fault's length asked
    rps: float
    phases: tuple[Phase, ...]
    first_answer_s: float | None  # from the fault's end to the first good answer after it
    baseline_s: float | None  # from the fault's end until latency is back to the baseline's
    lost: int | None  # answered request ids missing from the prediction log; None: not checked
    lost_note: str  # why ``lost`` is None, or how it was checked
    client_lag_ms: float  # how late the client sent its latest request: a busy client shows here
    target: dict[str, Any] = field(default_factory=dict)  # what the fault measured of its target

    @property
    def failed(self) -> dict[str, int]:
        """Failed requests of the whole run, by cause."""
        total: Counter[str] = Counter()
        for phase in self.phases:
            total.update(phase.failed)
        return dict(sorted(total.items()))

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def sees(self) -> str:
        """What the clients saw, in one sentence per phase."""
        parts = []
        for p in self.phases:
            failed = ", ".join(f"{n} × {cause}" for cause, n in p.failed.items()) or "none failed"
            defaulted = f" ({p.defaulted} with defaults)" if p.defaulted else ""
            latency = f"p50 {_ms(p.p50_ms)} / p99 {_ms(p.p99_ms)}"
            parts.append(f"{p.name}: {p.answered} of {p.sent} answered{defaulted}, {failed}; {latency}")
        return "; ".join(parts)

    def row(self) -> dict[str, Any]:
        """The table's row: fault, what the user sees, recovery, requests failed, data lost."""
        return {"fault": f"{self.fault} {self.seconds:g} s at {self.rps:g} rps", "sees": self.sees(),
                "recovery_s": self.baseline_s, "first_answer_s": self.first_answer_s,
                "failed": self.failed, "lost": self.lost, **self.target}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        out["failed"] = self.failed
        return out


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g} ms"


def summarize(fault: str, endpoint: str, url: str, at: datetime, rps: float, seconds: float,
              samples: Sequence[Sample], starts: float, ends: float, lag_s: float) -> dict[str, Any]:  # fmt: skip
    """The phases and recovery of ``samples`` around a fault that started at ``starts`` and ended at
    ``ends`` (``time.monotonic()``), as the fields of a :class:`ChaosResult` (without ``lost``)."""
    ordered = sorted(samples, key=lambda s: s.due)
    window = max(ends, starts + seconds)  # an instant fault (a kill) is watched for ``seconds``
    split = {
        "before": [s for s in ordered if s.due < starts],
        "during": [s for s in ordered if starts <= s.due < window],
        "after": [s for s in ordered if s.due >= window],
    }
    phases = tuple(Phase.of(name, split[name]) for name in PHASES)
    later = [s.done for s in ordered if good(s) and s.done >= ends]
    first = round(min(later) - ends, 3) if later else None
    limit = threshold_s(split["before"])
    began = back_to_baseline(ordered, ends, limit, streak(rps)) if limit is not None else None
    baseline = round(max(0.0, began - ends), 3) if began is not None else None
    return {"fault": fault, "endpoint": endpoint, "url": url, "at": at, "seconds": float(seconds),
            "rps": float(rps), "phases": phases, "first_answer_s": first, "baseline_s": baseline,
            "client_lag_ms": round(lag_s * 1000.0, 3)}  # fmt: skip
