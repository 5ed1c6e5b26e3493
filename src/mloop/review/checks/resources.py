"""Resource use: what a thousand predictions cost against the budget, endpoints that serve nobody, and
stores that grow with nothing set to trim them."""

from __future__ import annotations

from datetime import timedelta

from mloop.data.listing import MAX_PAGE, DatasetSummary
from mloop.review import cost
from mloop.review.cost import CostReport
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed

COST_WINDOW = timedelta(days=7)  # the serving window priced against the budget
GROWTH_DAYS = 30  # a store that took rows within this many days is growing


def _datasets(facts: Facts) -> list[DatasetSummary]:
    """Every dataset with its totals and newest ingestion, a page at a time (counted in the database)."""
    found: list[DatasetSummary] = []
    while True:
        page, total = facts.platform.data.dataset_page(offset=len(found), limit=MAX_PAGE)
        found += page
        if not page or len(found) >= total:
            return found


def _requests(facts: Facts, endpoint: str, since: str) -> int:
    """Requests the prediction log holds for ``endpoint`` over ``since`` (shadow copies not counted)."""
    return sum(int(v.get("requests", 0)) for v in facts.traffic(endpoint, since) if not v.get("shadow"))


def _cost(facts: Facts) -> CostReport:
    return facts.memo("cost", lambda: cost.report(facts.platform, since=COST_WINDOW, now=facts.now))


@check(
    "resources.cost-budget",
    concern="resources",
    severity="high",
    title="Every endpoint with a budget costs less per 1,000 predictions than its budget",
    fix="`mloop cost --alert` shows the figures and opens an incident per endpoint over budget; cut the "
    "serving cost (fewer workers, batching) or raise review.requirements.<endpoint>.budget_per_1k",
    mlts=("monitor-6",),
    maturity=4,
)
def cost_budget(facts: Facts) -> Outcome:
    budgeted = {e: c for e, c in _cost(facts).endpoints.items() if c.budget_per_1k is not None}
    if not budgeted:
        return not_applicable("no endpoint has review.requirements.<endpoint>.budget_per_1k")
    over, evidence = [], []
    for endpoint, spent in sorted(budgeted.items()):
        if spent.per_1k is None:
            evidence.append(f"{endpoint}: no request measured in the last {COST_WINDOW.days} days")
            continue
        evidence.append(f"{endpoint}: {spent.per_1k:.4g} per 1k (budget {spent.budget_per_1k:.4g}) over "
                        f"{spent.requests} requests, {spent.cpu_seconds:.1f} CPU s, {spent.use.gb_hours:.3g} GB-h")  # fmt: skip
        if spent.over_budget:
            over.append(endpoint)
    refs = [f"endpoint:{e}" for e in over or budgeted] + [f"setting:review.requirements.{e}.budget_per_1k"
                                                          for e in over]  # fmt: skip
    if over:
        return failed(f"{len(over)} endpoint(s) over their budget per 1k predictions", evidence, refs,
                      endpoints=over)  # fmt: skip
    return passed(f"{len(budgeted)} endpoint(s) within budget", evidence, refs)


@check(
    "resources.idle",
    concern="resources",
    severity="low",
    title="Every live endpoint answered a request within review.thresholds.idle_days",
    fix="`mloop undeploy ENDPOINT` to free an endpoint nobody calls, or raise review.thresholds.idle_days",
)
def idle(facts: Facts) -> Outcome:
    days = facts.settings.review.thresholds.idle_days
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    quiet, evidence = [], []
    for endpoint in sorted(facts.live):
        requests = _requests(facts, endpoint, f"{days}d")
        first = facts.history(endpoint)[0].created_at  # live since its first revision, not its latest
        young = first is not None and first > facts.now - timedelta(days=days)
        evidence.append(f"{endpoint}: {requests} requests in the last {days} days"
                        + (f" (live only since {first:%Y-%m-%d %H:%M})" if young and first else ""))  # fmt: skip
        if requests == 0 and not young:  # a new endpoint has not had the time to be idle
            quiet.append(endpoint)
    if quiet:
        return failed(f"{len(quiet)} live endpoint(s) idle for {days} days", evidence,
                      [f"endpoint:{e}" for e in quiet], endpoints=quiet)  # fmt: skip
    return passed(
        f"no endpoint idle for {days} days", evidence, [f"endpoint:{e}" for e in sorted(facts.live)]
    )


@check(
    "resources.retention",
    concern="resources",
    severity="low",
    title="The prediction log and datasets' quarantine have a retention period while they grow",
    fix="Set retention.prediction_log_days and retention.quarantine_days in mloop.yaml "
    "(`mloop retention purge` and `mloop serve` then delete what is older)",
)
def retention(facts: Facts) -> Outcome:
    settings = facts.settings.retention
    growing, evidence, refs = [], [], []
    since = facts.now - timedelta(days=GROWTH_DAYS)
    logged = {e: _requests(facts, e, f"{GROWTH_DAYS}d") for e in facts.live}
    if sum(logged.values()):
        evidence.append(f"prediction log: {sum(logged.values())} requests logged in {GROWTH_DAYS} days, "
                        f"retention.prediction_log_days = {settings.prediction_log_days}")  # fmt: skip
        if settings.prediction_log_days is None:
            growing.append("prediction_log")
            refs.append("setting:retention.prediction_log_days")
    for info in _datasets(facts):
        if not info.quarantined or info.last_ingestion is None or info.last_ingestion < since:
            continue
        evidence.append(f"dataset {info.name}: {info.quarantined} quarantined rows, "
                        f"retention.quarantine_days = {settings.quarantine_days}")  # fmt: skip
        if settings.quarantine_days is None:
            growing.append(f"dataset:{info.name}")
            refs.append(f"dataset:{info.name}")
    if not evidence:
        return not_applicable(f"nothing logged or quarantined in the last {GROWTH_DAYS} days")
    if settings.quarantine_days is None and any(r.startswith("dataset:") for r in refs):
        refs.append("setting:retention.quarantine_days")
    if growing:
        return failed(f"{len(growing)} growing store(s) kept forever", evidence, refs, stores=growing)
    return passed("every growing store has a retention period", evidence, refs)
