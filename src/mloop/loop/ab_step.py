"""The loop's online gate: an A/B test of the challenger against the champion on live outcomes.

Used instead of the stepped canary when the policy's gate has ``ab_metric``
(``Gate(ab_metric="ctr", ...)``). After the offline gate passes, :func:`start` deploys an A/B split
(the challenger takes ``ab_share``, sticky by ``ab_sticky_key`` or the deployment's sticky key, so a user
stays in one arm) and records ``loop.ab`` with ``started``. Each later tick, :func:`tick`:

1. runs the canary's safety checks on the challenger's requests since the split began (failures, p99
   latency, SLO page): a breach rolls back in the same tick;
2. reads the arms' outcomes since the split began and runs the sequential test
   (:mod:`mloop.monitoring.ab`, :mod:`mloop.metrics.sequential`);
3. acts on its decision: ``ship`` promotes (alias ``champion`` moves, ``previous`` keeps the old one;
   with ``approval`` it waits for ``mloop loop approve`` first), ``keep`` rolls back to the champion,
   ``need more data`` waits.

Every tick whose outcome counts moved records ``loop.ab`` with the report's numbers; a tick that saw no
new outcome records nothing (the loop ticks every few seconds, the numbers would repeat).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Protocol

from mloop.errors import NotFound
from mloop.loop.deploying import deploy
from mloop.loop.live import step_window, version_stats
from mloop.loop.policy import LoopPolicy
from mloop.loop.state import LoopState
from mloop.monitoring.ab import ABReport, analyse, outcomes
from mloop.predictions.log import predictions_folder


class LoopController(Protocol):
    """What this step uses of :class:`mloop.loop.controller.LoopController` (a protocol, so the controller
    can import this module without a cycle)."""

    project: Any

    def _breach(
        self, policy: LoopPolicy, mine: dict[str, Any], theirs: dict[str, Any], now: datetime
    ) -> str: ...

    def _drop_alias(self, policy: LoopPolicy, alias: str) -> None: ...

    def _record(self, endpoint: str, now: datetime, decision: str, **payload: Any) -> None: ...


_ZERO = {"requests": 0, "errors": 0, "error_rate": 0.0, "p99_ms": None, "labelled": 0, "live_auc": None}


def start(
    ctl: LoopController, policy: LoopPolicy, challenger: int, champion: int, now: datetime
) -> dict[str, Any]:
    """Split the endpoint between champion and challenger and record the start of the test."""
    gate, project = policy.gate, ctl.project
    sticky = gate.ab_sticky_key
    if sticky is None:
        with contextlib.suppress(NotFound):
            sticky = project.deployments.get(policy.endpoint).sticky_key
    share = gate.ab_share
    made = deploy(
        project, policy.endpoint, policy.model, ab={champion: 1 - share, challenger: share}, sticky_key=sticky
    )
    reason = (f"v{challenger} takes {share:.0%} of the traffic in an A/B test against v{champion} on "
              f"{gate.ab_metric} (sticky by {sticky or 'request'})")  # fmt: skip
    ctl._record(policy.endpoint, now, "ab", started=True, challenger=challenger, champion=champion, share=share,
                sticky_key=sticky, metric=gate.ab_metric, verdict="need more data", outcomes=0,
                revision=int(made.revision), reason=reason)  # fmt: skip
    return {"decision": "ab", "reason": reason}


def tick(
    ctl: LoopController, policy: LoopPolicy, state: LoopState, champion: Any, now: datetime
) -> dict[str, Any]:
    """One look at the running test: safety first, then the sequential test's decision."""
    project, ep, gate = ctl.project, policy.endpoint, policy.gate
    challenger, old = state.challenger, state.champion or champion.version
    assert challenger is not None and state.step_started is not None  # an A/B phase always has both
    folder = predictions_folder(project.settings)
    stats = version_stats(folder, ep, state.step_started, None, revision=state.step_revision,
                          min_labels=policy.rollout.min_labels, parquet=project.parquet)  # fmt: skip
    mine, theirs = stats.get(challenger, dict(_ZERO)), stats.get(old, dict(_ZERO))
    breach = ctl._breach(policy, mine, theirs, now)
    if breach:
        return _back(ctl, policy, old, challenger, now, breach, {"challenger": mine, "champion": theirs})
    assert gate.ab_metric is not None  # tick is only called for a gate with an A/B metric
    units = outcomes(folder, ep, step_window(state.step_started, state.step_revision), None,
                     revision=state.step_revision, metric=gate.ab_metric, missing=gate.ab_missing,
                     wait=gate.ab_wait_span, now=now, parquet=project.parquet)  # fmt: skip
    report = analyse(units, ep, metric=gate.ab_metric, alpha=gate.ab_alpha, mde=gate.ab_mde, control=old,
                     treatment=challenger, max_samples=gate.ab_max_samples)  # fmt: skip
    numbers = _numbers(report)
    if report.decision == "ship":
        if policy.approval:
            ctl._record(ep, now, "awaiting", challenger=challenger, numbers=numbers,
                        reason=f"A/B: ship v{challenger} ({report.reason}); waits for approval")  # fmt: skip
            return {"decision": "awaiting", "reason": "waiting for approval"}
        deploy(project, ep, policy.model, version=challenger)
        project.models.set_alias(policy.model, "champion", challenger)
        project.models.set_alias(policy.model, "previous", old)
        ctl._drop_alias(policy, "challenger")
        reason = f"A/B: ship: {report.reason}"
        ctl._record(
            ep, now, "promote", champion=challenger, previous=old, numbers=numbers, ab=True, reason=reason
        )
        return {"decision": "promote", "reason": reason}
    if report.decision == "keep":
        return _back(ctl, policy, old, challenger, now, f"A/B: keep: {report.reason}", numbers)
    seen = numbers["outcomes"]
    if seen != state.ab_outcomes:
        ctl._record(ep, now, "ab", challenger=challenger, champion=old, numbers=numbers, outcomes=seen,
                    verdict=report.decision, reason=report.reason)  # fmt: skip
    return {"decision": "ab", "reason": f"need more data: {report.reason}"}


def _back(ctl: LoopController, policy: LoopPolicy, old: int, challenger: int, now: datetime, reason: str,
          numbers: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    deploy(ctl.project, policy.endpoint, policy.model, version=old)
    ctl._drop_alias(policy, "challenger")
    ctl._record(policy.endpoint, now, "rollback", reason=reason, restored=old, challenger=challenger,
                numbers=numbers)  # fmt: skip
    return {"decision": "rollback", "reason": reason}


def _numbers(report: ABReport) -> dict[str, Any]:
    """The report as the event records it: the test's figures and each arm's."""
    found = report.to_dict()
    found["outcomes"] = sum(a.n for a in report.arms if a.version in (report.control, report.treatment))
    return found
