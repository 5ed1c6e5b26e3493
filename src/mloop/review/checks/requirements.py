"""Business and technical requirements: what mloop.yaml's ``review.requirements`` states per endpoint (mode,
p99, throughput, availability), checked against the prediction log of the last day and the latest probe
(``mloop review --probe ENDPOINT``, recorded as the audit event ``review.probe``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from mloop.config.review import Requirement
from mloop.predictions import summary
from mloop.predictions.log import predictions_folder
from mloop.review import probe as probes
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed, warned
from mloop.security.audit_chain import Event

DAY = timedelta(days=1)
_EXAMPLE = "{mode: real-time, p99_ms: 50, throughput_rps: 200, availability: 0.999}"


@dataclass(frozen=True)
class Measured:
    """An endpoint's requests of the last day as callers saw them (shadow copies left out)."""

    answered: int
    errors: int
    p99_ms: float | None  # of the answered requests, every version together
    peak_rps: float  # requests (answered or failed) in the busiest minute, per second

    @property
    def requests(self) -> int:
        return self.answered + self.errors


def measured(facts: Facts, endpoint: str) -> Measured:
    """The last day of ``endpoint``'s prediction log (memoised for the review)."""

    def read() -> Measured:
        facts.traffic(endpoint, "1d")  # monitoring.read on the endpoint, as every other reader of the log
        rows = summary.request_rows(predictions_folder(facts.settings), endpoint, facts.now - DAY, facts.now,
                                    facts.platform.parquet)  # fmt: skip
        if rows.empty:
            return Measured(0, 0, None, 0.0)
        rows = rows[rows["status"].isin(["ok", "error"])]
        ok = rows[rows["status"] == "ok"]["latency_s"].dropna().to_numpy(dtype=np.float64)
        peak = int(rows.groupby("minute").size().max()) if len(rows) else 0
        return Measured(
            int((rows["status"] == "ok").sum()), int((rows["status"] == "error").sum()),
            float(np.quantile(ok, 0.99) * 1000.0) if len(ok) else None, peak / 60.0,
        )  # fmt: skip

    return facts.memo(("requirements.measured", endpoint), read)


def latest_probe(facts: Facts, endpoint: str) -> Event | None:
    """The newest ``review.probe`` of ``endpoint``, if it was ever probed."""
    return probes.latest(facts.events(probes.ACTION), endpoint)


def _stated(facts: Facts, figure: str) -> dict[str, Requirement]:
    """The live endpoints whose requirement states ``figure``."""
    wanted = facts.settings.review.requirements
    return {e: r for e, r in sorted(wanted.items()) if e in facts.live and getattr(r, figure) is not None}


def _probe_line(endpoint: str, event: Event) -> str:
    p: dict[str, Any] = event.payload
    return (f"{endpoint}: probe (event {event.seq}, {event.ts:%Y-%m-%d %H:%M}) at {p['target_rps']:g} rps for "
            f"{p['seconds']:g} s: {p['achieved_rps']:g} rps answered, p99 {p['p99_ms']} ms, errors {p['errors']}")  # fmt: skip


@check(
    "requirements.declared",
    concern="requirements",
    severity="low",
    title="Every live endpoint states its requirement (mode, p99, throughput, availability), and every stated "
    "requirement names an endpoint that exists",
    fix=f"State it in mloop.yaml: review.requirements.ENDPOINT: {_EXAMPLE}; remove entries of endpoints that "
    "are not deployed.",
)
def declared(facts: Facts) -> Outcome:
    stated = facts.settings.review.requirements
    if not facts.live and not stated:
        return not_applicable("no endpoint is deployed and no requirement is stated")
    missing = sorted(e for e in facts.live if e not in stated)
    stray = sorted(e for e in stated if e not in facts.live)
    evidence = [f"{e}: live, no review.requirements entry" for e in missing]
    evidence += [f"{e}: a requirement is stated, but no such endpoint is deployed" for e in stray]
    evidence += [f"{e}: {stated[e].model_dump(exclude_defaults=True) or 'defaults only'}"
                 for e in sorted(stated) if e in facts.live]  # fmt: skip
    refs = [f"endpoint:{e}" for e in missing] + [f"setting:review.requirements.{e}" for e in stray]
    if missing or stray:
        return failed(f"{len(missing)} live endpoint(s) without a requirement, {len(stray)} requirement(s) "
                      "for no endpoint", evidence, refs, missing=missing, stray=stray)  # fmt: skip
    return passed(f"all {len(facts.live)} live endpoint(s) state their requirement", evidence,
                  [f"setting:review.requirements.{e}" for e in sorted(stated)])  # fmt: skip


@check(
    "requirements.latency",
    concern="requirements",
    severity="high",
    title="Each endpoint's p99 latency over the last day (answered requests, every version) and at its latest "
    "probe is within its requirement's p99_ms",
    fix="Find the slow version (the dashboard's Deployments page shows p99 per version; `mloop monitor slo "
    "ENDPOINT` the latency SLO); add a replica (another `mloop serve` behind the load balancer, docs/deploy.md) "
    "or dynamic batching (serving.max_batch_size in mloop.yaml), or roll back with `mloop rollback ENDPOINT`.",
    mlts=("monitor-6",),
    maturity=4,
)
def latency(facts: Facts) -> Outcome:
    wanted = _stated(facts, "p99_ms")
    if not wanted:
        return not_applicable("no live endpoint's requirement states p99_ms")
    slow, seen, evidence, refs = [], [], [], []
    for endpoint, requirement in wanted.items():
        target = float(requirement.p99_ms or 0)
        found, shot = measured(facts, endpoint), latest_probe(facts, endpoint)
        refs.append(f"endpoint:{endpoint}")
        if found.p99_ms is not None:
            seen.append(endpoint)
            evidence.append(f"{endpoint}: p99 {found.p99_ms:.1f} ms over {found.answered} answered request(s) "
                            f"of the last day; target {target:g} ms")  # fmt: skip
            if found.p99_ms > target:
                slow.append(endpoint)
        else:
            evidence.append(f"{endpoint}: no answered request in the last day; target {target:g} ms")
        if shot is not None and shot.ts >= facts.now - DAY and shot.payload.get("p99_ms") is not None:
            seen.append(endpoint)
            refs.append(f"event:{shot.seq}")
            evidence.append(_probe_line(endpoint, shot))
            if float(shot.payload["p99_ms"]) > target:
                slow.append(endpoint)
    if not seen:
        return not_applicable("no traffic and no probe in the last day to measure latency from", evidence)
    slow = sorted(set(slow))
    if slow:
        return failed(f"{len(slow)} endpoint(s) over their p99 target", evidence, refs, endpoints=slow)
    return passed(f"{len(set(seen))} endpoint(s) within their p99 target", evidence, refs)


@check(
    "requirements.availability",
    concern="requirements",
    severity="high",
    title="Each endpoint answered at least its requirement's availability share of the last day's requests "
    "without a server error",
    fix="See the failures with `mloop monitor slo ENDPOINT` (the availability SLO) and the server's log; roll "
    "back with `mloop rollback ENDPOINT` if a new version brought them.",
    maturity=4,
)
def availability(facts: Facts) -> Outcome:
    wanted = _stated(facts, "availability")
    if not wanted:
        return not_applicable("no live endpoint's requirement states availability")
    short, seen, evidence = [], [], []
    for endpoint, requirement in wanted.items():
        target, found = float(requirement.availability or 0), measured(facts, endpoint)
        if not found.requests:
            evidence.append(f"{endpoint}: no request in the last day; target {target:.4%}")
            continue
        seen.append(endpoint)
        share = found.answered / found.requests
        evidence.append(f"{endpoint}: {found.answered} of {found.requests} request(s) answered without error "
                        f"({share:.4%}) in the last day; target {target:.4%}")  # fmt: skip
        if share < target:
            short.append(endpoint)
    if not seen:
        return not_applicable("no request in the last day to measure availability from", evidence)
    refs = [f"endpoint:{e}" for e in short or seen]
    if short:
        return failed(
            f"{len(short)} endpoint(s) below their availability target", evidence, refs, endpoints=short
        )
    return passed(f"{len(seen)} endpoint(s) at or above their availability target", evidence, refs)


@check(
    "requirements.throughput",
    concern="requirements",
    severity="medium",
    title="Each endpoint has shown its requirement's throughput_rps: in its latest probe, or in a peak minute "
    "of real traffic",
    fix="`mloop review --probe ENDPOINT` against a server of the endpoint (loopback, or --url of one you own).",
)
def throughput(facts: Facts) -> Outcome:
    wanted = _stated(facts, "throughput_rps")
    if not wanted:
        return not_applicable("no live endpoint's requirement states throughput_rps")
    unshown, evidence, refs = [], [], []
    for endpoint, requirement in wanted.items():
        target, found, shot = (
            float(requirement.throughput_rps or 0),
            measured(facts, endpoint),
            latest_probe(facts, endpoint),
        )
        refs.append(f"endpoint:{endpoint}")
        evidence.append(
            f"{endpoint}: peak minute of the last day {found.peak_rps:.2f} rps; target {target:g} rps"
        )
        probed = shot is not None and float(shot.payload.get("achieved_rps", 0)) >= target
        if shot is not None:
            refs.append(f"event:{shot.seq}")
            evidence.append(_probe_line(endpoint, shot))
        if not probed and found.peak_rps < target:
            unshown.append(endpoint)
    if unshown:
        return warned(f"{len(unshown)} endpoint(s) never shown to sustain their throughput", evidence, refs,
                      fix=", ".join(f"`mloop review --probe {e}`" for e in unshown), endpoints=unshown)  # fmt: skip
    return passed(f"{len(wanted)} endpoint(s) have shown their throughput", evidence, refs)


@check(
    "requirements.mode",
    concern="requirements",
    severity="medium",
    title="Each endpoint is served the way its requirement's mode says: real-time by a live deployment, batch "
    "by batch scoring rather than an online endpoint",
    fix="Deploy a real-time endpoint (`mloop deploy ENDPOINT MODEL`); score a batch one with `mloop score` and "
    "`mloop undeploy ENDPOINT`, or change review.requirements.ENDPOINT.mode.",
)
def mode(facts: Facts) -> Outcome:
    stated = facts.settings.review.requirements
    if not stated:
        return not_applicable("no requirement is stated")
    missing, online, evidence = [], [], []
    for endpoint, requirement in sorted(stated.items()):
        live = endpoint in facts.live
        if requirement.mode == "real-time":
            if live:
                evidence.append(f"{endpoint}: real-time, live at revision {facts.live[endpoint].revision}")
            else:
                missing.append(endpoint)
                evidence.append(f"{endpoint}: real-time, but no live deployment")
        elif live:
            online.append(endpoint)
            evidence.append(f"{endpoint}: batch, yet live online at revision {facts.live[endpoint].revision} with "
                            f"{measured(facts, endpoint).requests} online request(s) in the last day; batch "
                            "scoring (`mloop score`) records no event, so no batch job is visible")  # fmt: skip
        else:
            evidence.append(f"{endpoint}: batch, no online endpoint")
    refs = [f"endpoint:{e}" for e in missing + online]
    if missing:
        return failed(f"{len(missing)} real-time endpoint(s) not deployed", evidence, refs, missing=missing,
                      online=online)  # fmt: skip
    if online:
        return warned(f"{len(online)} batch endpoint(s) served online", evidence, refs, online=online)
    return passed(f"{len(stated)} endpoint(s) served as their mode says", evidence,
                  [f"setting:review.requirements.{e}" for e in sorted(stated)])  # fmt: skip
