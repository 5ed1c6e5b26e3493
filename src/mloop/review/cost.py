"""Cost and energy of the live project: per training run, per 1,000 predictions per endpoint, and of what
it stores (``mloop cost``, ``project.reviews.cost()``), from what mloop measured and mloop.yaml's prices.

- A run: ``cpu_seconds``, ``peak_rss_bytes``, ``wall_seconds`` and ``gpu_seconds`` recorded when it ended
  (:meth:`mloop.training.run.Run.timing`): core-hours = CPU s / 3600, GB-hours = peak GB x wall hours,
  GPU-hours = GPU s / 3600.
- An endpoint: the serving processes' samples (:mod:`mloop.predictions.usage`) over the window: each
  process's CPU seconds and memory held (GB x hours between samples) are shared among the endpoints it
  served in proportion to the requests each got; per 1k = that share's cost / its requests x 1000. A
  process that answered nothing in the window is idle cost, shown apart.
- Storage: the bytes under each dataset's folder and the prediction log (listed through the data
  storage) and the local artifact store, x the price of a GB-month, with the retention that applies.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mloop.artifacts.local import LocalBlobBackend
from mloop.config.review import Energy, Prices
from mloop.errors import MloopError
from mloop.monitoring.alerts import Alert
from mloop.predictions.log import predictions_folder
from mloop.predictions.place import LogFolder
from mloop.predictions.usage import Sample, read_usage, usage_folder
from mloop.review.energy import GB, Use, grams_co2e, kwh, money, storage_money
from mloop.review.platform import Reviewed
from mloop.storage import open_data_storage
from mloop.training.queries import RunInfo

PAGE = 500  # runs read per query while walking back to the window's start


@dataclass(frozen=True)
class RunCost:
    run: str
    experiment: str
    started_at: datetime
    wall_seconds: float
    cpu_seconds: float
    peak_gb: float | None  # None: the run ended before mloop measured memory
    gpu_seconds: float
    use: Use
    cost: float
    kwh: float
    grams_co2e: float


@dataclass(frozen=True)
class EndpointCost:
    endpoint: str
    requests: int
    cpu_seconds: float
    use: Use
    cost: float
    per_1k: float | None  # None: no request in the window
    kwh_per_1k: float | None
    grams_co2e_per_1k: float | None
    budget_per_1k: float | None
    processes: tuple[str, ...]

    @property
    def over_budget(self) -> bool:
        return self.budget_per_1k is not None and self.per_1k is not None and self.per_1k > self.budget_per_1k


@dataclass(frozen=True)
class StoredCost:
    what: str  # dataset:<name>, prediction_log, artifacts
    bytes: int | None  # None: not listable here (a remote artifact store)
    cost_per_month: float | None
    retention: str


@dataclass(frozen=True)
class CostReport:
    start: datetime
    end: datetime
    currency: str
    prices: Prices
    energy: Energy
    runs: tuple[RunCost, ...]
    endpoints: dict[str, EndpointCost]
    storage: tuple[StoredCost, ...]
    idle: Use = field(default_factory=Use)  # serving processes that answered nothing in the window
    alerts: tuple[dict[str, Any], ...] = ()  # budget incidents opened or resolved by this report

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(value).items()}

        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "currency": self.currency,
            "prices": self.prices.model_dump(), "energy": self.energy.model_dump(),
            "runs": [plain(r) for r in self.runs],
            "endpoints": {e: {**plain(c), "over_budget": c.over_budget} for e, c in self.endpoints.items()},
            "storage": [plain(s) for s in self.storage],
            "idle": {**self.idle.to_dict(), "cost": money(self.idle, self.prices)},
            "alerts": list(self.alerts),
        }  # fmt: skip


def report(platform: Reviewed, *, since: timedelta, now: datetime) -> CostReport:
    """The cost of ``platform`` over ``since`` before ``now`` (runs started and predictions answered then;
    storage as it is now)."""
    review = platform.settings.review
    start = now - since
    shares, idle = served(read_usage(usage_folder(platform.settings)), start, now)
    live = {d.endpoint for d in platform.deployments.list()}
    endpoints = {}
    for endpoint in sorted(set(shares) | live):
        share = shares.get(endpoint, Share())
        requirement = review.requirements.get(endpoint)
        endpoints[endpoint] = endpoint_cost(endpoint, share, review.prices, review.energy,
                                            None if requirement is None else requirement.budget_per_1k)  # fmt: skip
    return CostReport(start, now, review.prices.currency, review.prices, review.energy,
                      tuple(runs(platform, start, now)), endpoints, tuple(storage(platform)), idle)  # fmt: skip


# ---- training runs ----------------------------------------------------------------------------------------


def runs(platform: Reviewed, start: datetime, end: datetime) -> list[RunCost]:
    """Every ended run that started in [start, end), newest first."""
    found: list[RunCost] = []
    offset = 0
    while True:
        page = platform.runs.search(limit=PAGE, offset=offset)  # newest first
        for info in page:
            if start <= info.started_at < end and info.status != "running":
                found.append(run_cost(info, platform.settings.review.prices, platform.settings.review.energy))
        if len(page) < PAGE or page[-1].started_at < start:
            return found
        offset += PAGE


def run_cost(info: RunInfo, prices: Prices, energy: Energy) -> RunCost:
    wall = float(info.info.get("wall_seconds") or 0.0)
    cpu = float(info.info.get("cpu_seconds") or 0.0)
    gpu = float(info.info.get("gpu_seconds") or 0.0)
    peak = info.info.get("peak_rss_bytes")
    peak_gb = None if peak is None else int(peak) / GB
    use = Use(cpu / 3600, (peak_gb or 0.0) * wall / 3600, gpu / 3600)
    return RunCost(info.id, info.experiment, info.started_at, wall, cpu, peak_gb, gpu, use,
                   money(use, prices), kwh(use, energy), grams_co2e(use, energy))  # fmt: skip


# ---- serving ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """What one endpoint's requests used of the serving processes in a window."""

    requests: int = 0
    cpu_seconds: float = 0.0
    use: Use = field(default_factory=Use)
    processes: tuple[str, ...] = ()


def served(samples: list[Sample], start: datetime, end: datetime) -> tuple[dict[str, Share], Use]:
    """Each endpoint's share of the serving processes' use in (start, end], and the use of processes
    that answered nothing then."""
    by_process: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_process[sample.process].append(sample)
    totals: dict[str, list[Any]] = {}
    idle = Use()
    for process, taken in sorted(by_process.items()):
        taken.sort(key=lambda s: s.at)
        inside = [s for s in taken if start < s.at <= end]
        if not inside:
            continue
        before = next((s for s in reversed(taken) if s.at <= start), None)
        cpu, requests, gb_hours = _deltas(before, inside)
        use = Use(cpu / 3600, gb_hours, 0.0)
        answered = sum(requests.values())
        if answered == 0:
            idle = idle + use
            continue
        for endpoint, count in requests.items():
            if count <= 0:
                continue
            part = count / answered
            total = totals.setdefault(endpoint, [0, 0.0, Use(), []])
            total[0] += count
            total[1] += cpu * part
            total[2] = total[2] + use.scaled(part)
            total[3].append(process)
    shares = {e: Share(t[0], t[1], t[2], tuple(t[3])) for e, t in totals.items()}
    return shares, idle


def _deltas(before: Sample | None, inside: list[Sample]) -> tuple[float, dict[str, int], float]:
    """CPU seconds, requests by endpoint and GB-hours of one process between ``before`` (its last sample
    before the window; None: it started in the window, from zero) and its last sample in the window.
    Memory: each sample's resident set held since the sample before it."""
    last = inside[-1]
    cpu = last.cpu_seconds - (before.cpu_seconds if before else 0.0)
    base = before.requests if before else {}
    requests = {e: n - base.get(e, 0) for e, n in last.requests.items()}
    previous = before.at if before else inside[0].started
    gb_hours = 0.0
    for sample in inside:
        gb_hours += sample.rss_bytes / GB * (sample.at - previous).total_seconds() / 3600
        previous = sample.at
    return cpu, requests, gb_hours


def endpoint_cost(endpoint: str, share: Share, prices: Prices, energy: Energy,
                  budget: float | None) -> EndpointCost:  # fmt: skip
    cost = money(share.use, prices)
    per = 1000 / share.requests if share.requests else None
    return EndpointCost(
        endpoint, share.requests, share.cpu_seconds, share.use, cost,
        None if per is None else cost * per,
        None if per is None else kwh(share.use, energy) * per,
        None if per is None else grams_co2e(share.use, energy) * per,
        budget, share.processes,
    )  # fmt: skip


# ---- storage ----------------------------------------------------------------------------------------------


def storage(platform: Reviewed) -> list[StoredCost]:
    """What the project keeps: each dataset, the prediction log, the artifacts."""
    settings = platform.settings
    price = settings.review.prices
    retention = settings.retention
    data = open_data_storage(settings.data_url, settings.scratch_dir)
    quarantine = f"quarantine kept {retention.quarantine_days} days" if retention.quarantine_days else (
        "quarantine kept forever (retention.quarantine_days unset)")  # fmt: skip
    kept: list[StoredCost] = []
    for info in platform.data.list():
        folder = platform.data.folder(info.name)
        size = sum(data.size(f) for f in data.list(folder, suffix="")) if data.exists(folder) else 0
        kept.append(StoredCost(f"dataset:{info.name}", size, storage_money(size, price),
                               f"rows kept until erased (mloop forget); {quarantine}"))  # fmt: skip
    log = LogFolder.of(predictions_folder(settings))
    size = _tree(log.spool) + (0 if not log.storage.remote and Path(log.parts) == log.spool else
                               sum(log.storage.size(f) for f in log.storage.list(log.parts, suffix="")))  # fmt: skip
    days = retention.prediction_log_days
    kept.append(StoredCost("prediction_log", size, storage_money(size, price),
                           f"kept {days} days" if days else "kept forever (retention.prediction_log_days unset)"))  # fmt: skip
    backend = platform.artifacts.backend
    if isinstance(backend, LocalBlobBackend):
        size = _tree(backend.root)
        kept.append(StoredCost("artifacts", size, storage_money(size, price), "kept while referenced"))
    else:
        kept.append(StoredCost("artifacts", None, None, f"not listed: {backend.url} is remote"))
    return kept


def _tree(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 if it is not there)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we walked (a compaction, a purge)
                total += os.path.getsize(os.path.join(root, name))
    return total


# ---- budgets --------------------------------------------------------------------------------------------


def window(since: str) -> timedelta:
    """``7d``, ``24h``, ``90m`` as a duration."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    try:
        amount, unit = float(since[:-1]), units[since[-1]]
        if amount <= 0:
            raise ValueError(since)
    except (ValueError, KeyError, IndexError):
        raise MloopError(
            f"--since {since!r} is not a window: write a number and d, h or m (7d, 24h, 90m)."
        ) from None
    return timedelta(**{unit: amount})


def budget_alert(spent: EndpointCost, currency: str, now: datetime) -> Alert:
    """The incident of an endpoint whose cost per 1k predictions is over its budget."""
    assert spent.per_1k is not None and spent.budget_per_1k is not None  # over_budget says so
    return Alert(
        key=f"{spent.endpoint}/cost/budget", name="cost-budget", severity="ticket", endpoint=spent.endpoint,
        summary=f"{spent.endpoint} costs {spent.per_1k:.4g} {currency} per 1k predictions, over its budget of "
        f"{spent.budget_per_1k:.4g}",
        description=f"{spent.requests} requests, {spent.cpu_seconds:.1f} CPU s, {spent.use.gb_hours:.3g} GB-h "
        "(mloop cost); raise review.requirements.<endpoint>.budget_per_1k or cut the serving cost.",
        value=spent.per_1k, threshold=spent.budget_per_1k, started_at=now,
    )  # fmt: skip
