"""The continuous-training controller: trigger → retrain → gate → canary → promote or roll back.

:meth:`LoopController.tick` is one evaluation of every policy (``mloop loop tick``, cron, tests);
:meth:`LoopController.run` ticks until stopped (``mloop loop run``, ``mloop serve --loop``). A tick
acts only while this controller holds the lease, so two controllers never both deploy. Per endpoint:

- **paused**: nothing;
- **canary**: the challenger's requests since its step began are measured (failures, p99 latency,
  live ROC AUC against the champion's once labels arrive, SLO pages). A breach rolls back at once, in
  the same tick as the measurement; ``min_requests`` healthy answers advance to the next share; after
  the last share the challenger is promoted (alias ``champion`` moves, ``previous`` keeps the old one).
  With ``approval`` the final share waits for ``mloop loop approve``;
- **ab** (a gate with ``ab_metric``): the challenger shares the traffic with the champion in a sticky
  A/B split; the canary's safety checks run, then the sequential test on live outcomes ships, keeps
  or waits (:mod:`mloop.loop.ab_step`);
- **idle**: the triggers are checked; the first that fires retrains (in a child process), the gate
  decides, and a challenger that passes starts its canary. Within ``rollback.after`` of a promotion an
  SLO page restores the previous champion.

A failed training run, a failed gate or a breach leaves production on the last good version, and the
loop waits ``cooldown`` before it retrains again. After the policies, each scheduled job that is due runs
once (``jobs=``, :mod:`mloop.loop.jobs`: daily batch scoring, for one).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from mloop._time import utcnow
from mloop.errors import MloopError, NotFound
from mloop.loop import ab_step, lease
from mloop.loop.deploying import deploy
from mloop.loop.jobs import Job, run_due
from mloop.loop.live import version_stats
from mloop.loop.platform import Platform
from mloop.loop.policy import LoopPolicy
from mloop.loop.retrain import decide, retrain, retrain_in_process
from mloop.loop.state import LoopState
from mloop.loop.triggers import check
from mloop.predictions.log import predictions_folder

log = logging.getLogger("mloop.loop")
LEASE = "loop-controller"
_ZERO = {"requests": 0, "errors": 0, "error_rate": 0.0, "p99_ms": None, "labelled": 0, "live_auc": None}


class LoopController:
    def __init__(self, project: Platform, policies: list[LoopPolicy], *, holder: str | None = None,
                 lease_ttl: timedelta = timedelta(seconds=30), train: str = "process",
                 jobs: list[Job] | None = None) -> None:  # fmt: skip
        if train not in ("process", "inprocess"):
            raise MloopError(f"train must be 'process' or 'inprocess'; got {train!r}.")
        self.project, self.policies, self.train = project, list(policies), train
        self.jobs = list(jobs or [])
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise MloopError(f"Scheduled jobs need distinct names (each has its own record); got {names}.")
        self.holder, self.lease_ttl = holder or lease.holder_id(), lease_ttl
        self.loop = project.loop

    # ---- running ----------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One evaluation of every policy; the decisions taken (also recorded as events)."""
        # The lease on the database's clock (hosts' clocks may disagree), unless a time is given (tests).
        store = self.project.store
        leased = lease.acquire(store, LEASE, self.holder, self.lease_ttl, now)
        now = now or utcnow()
        if not leased:
            holder = lease.current(store, LEASE)
            return [{"endpoint": "*", "decision": "standby",
                     "reason": f"another controller ({holder[0] if holder else '?'}) holds the lease"}]  # fmt: skip
        out = []
        # Every write of the tick checks the lease in its own transaction: a tick that outlives the lease
        # (a slow retrain, a database restart) cannot act after another controller took over.
        with store.fenced(lease.fence(store, LEASE, self.holder)):
            try:
                for policy in self.policies:
                    try:
                        out.append({"endpoint": policy.endpoint, **self._one(policy, now)})
                    except lease.LeaseLost:
                        raise
                    except MloopError as exc:  # one endpoint's problem must not stop the others
                        log.warning("loop %s: %s", policy.endpoint, exc)
                        out.append({"endpoint": policy.endpoint, "decision": "error", "reason": str(exc)})
                out += run_due(self.project, self.jobs, now)
            except lease.LeaseLost as exc:
                log.warning("loop: %s", exc)
                out.append({"endpoint": "*", "decision": "standby", "reason": str(exc)})
        return out

    def release(self) -> None:
        """Give the lease up now (after a one-off tick), so the next controller need not wait for it."""
        lease.release(self.project.store, LEASE, self.holder)

    def run(self, interval: float = 5.0, stop: threading.Event | None = None) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; the lease is given up on the way out."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # the database restarting, a bug in one tick: the next tick tries again
                    log.exception("loop tick failed; the next one runs in %g s", interval)
                stop.wait(interval)
        finally:
            try:
                self.release()
            except Exception:  # the lease then expires on its own after lease_seconds
                log.exception("could not give the loop's lease up")

    def start(self, interval: float | None = None) -> threading.Event:
        """:meth:`run` on a daemon thread (``mloop serve --loop``); set the returned event to stop it."""
        stop = threading.Event()
        every = interval if interval is not None else self.project.settings.loop.interval_seconds
        threading.Thread(target=self.run, args=(every, stop), name="mloop-loop", daemon=True).start()
        return stop

    @classmethod
    def for_project(cls, project: Platform, **options: Any) -> LoopController:
        """A controller for the ``loop.policies`` of the project's mloop.yaml."""
        from mloop.loop.policy import policies_from_settings

        settings = project.settings.loop
        if str(project.root) not in sys.path:  # pipelines are import paths relative to the project folder
            sys.path.insert(0, str(project.root))
        policies = policies_from_settings(settings.policies)
        project.loop.require_operator([policy.endpoint for policy in policies])
        if not policies and not options.get("jobs"):
            raise MloopError(
                "No loop policies or jobs: declare them under loop.policies or loop.jobs in mloop.yaml (see "
                "docs/loop.md and docs/agriculture.md)."
            )
        options.setdefault("lease_ttl", timedelta(seconds=settings.lease_seconds))
        return cls(project, policies, **options)

    # ---- one endpoint -----------------------------------------------------------------------------------

    def _one(self, policy: LoopPolicy, now: datetime) -> dict[str, Any]:
        state = self.loop.state(policy.endpoint)
        if state.paused:
            return {
                "decision": "paused",
                "reason": "paused by a person: mloop loop resume " + policy.endpoint,
            }
        self.project.monitoring.update(policy.endpoint, now=now)
        champion = self._champion(policy)
        if state.phase == "canary":
            return self._canary(policy, state, champion, now)
        if state.phase == "ab":
            return ab_step.tick(self, policy, state, champion, now)
        if state.phase == "awaiting":
            if not state.approved:
                return {"decision": "awaiting", "reason": f"v{state.challenger} waits for mloop loop approve"}
            assert state.challenger is not None  # awaiting approval is always for a challenger
            return self._step(policy, state.challenger, champion.version, len(policy.rollout.steps) - 1, now)
        reverted = self._after_promotion(policy, state, champion, now)
        if reverted is not None:
            return reverted
        if state.last_failure and now - state.last_failure < policy.pause_after_failure:
            return {"decision": "cooldown", "reason": f"last attempt failed at {state.last_failure:%H:%M:%S}"}
        if state.last_promotion and now - state.last_promotion < policy.pause_after_failure:
            return {
                "decision": "cooldown",
                "reason": f"v{state.champion} promoted at {state.last_promotion:%H:%M:%S}",
            }
        for trigger in policy.triggers:
            fired = check(trigger, self.project, policy, champion, state.last_trigger, now)
            if fired is not None:
                self._record(policy.endpoint, now, "trigger", **asdict(fired))
                return self._retrain(policy, champion, now)
        return {"decision": "quiet", "reason": "no trigger fired"}

    def _champion(self, policy: LoopPolicy) -> Any:
        try:
            return self.project.models.get(policy.model, alias="champion")
        except NotFound:
            raise MloopError(
                f"{policy.endpoint}: model {policy.model!r} has no 'champion' alias; set it to the version in "
                f"production: mloop models alias {policy.model} champion VERSION"
            ) from None

    def _retrain(self, policy: LoopPolicy, champion: Any, now: datetime) -> dict[str, Any]:
        pipeline, ep = policy.resolved_pipeline(), policy.endpoint
        args = (type(self.project).open, str(self.project.root), _overrides(self.project), pipeline,
                (champion.name, champion.version), policy.gate)  # fmt: skip
        report = retrain_in_process(*args) if self.train == "process" else _guarded(retrain, *args)
        if report["stage"] == "failed":
            self._record(ep, now, "train_failed", reason=report["error"], champion=champion.version)
            return {"decision": "train_failed", "reason": report["error"]}
        passed, checks = decide(policy.gate, report)
        numbers = {k: report.get(k) for k in ("challenger_value", "champion_value", "latency_p99_ms",
                                               "fairness_gap", "holdout_rows", "run_id", "importance_shift")}  # fmt: skip
        reason = (
            "passed every check"
            if passed
            else "failed " + "; ".join(_explain(c) for c in checks if not c["passed"])
        )
        largest = (report.get("importance_shift") or {}).get("largest")
        if passed and largest:  # the reliance that moved most, in words, wherever the reason is shown
            reason += f"; {largest['sentence']}"
        self._record(ep, now, "gate", passed=passed, checks=checks, challenger=report.get("challenger"),
                         champion=champion.version, metric=report.get("metric"), reason=reason, **numbers)  # fmt: skip
        if not passed:
            return {"decision": "gate_failed", "reason": reason}
        self.project.models.set_alias(policy.model, "challenger", report["challenger"])
        if policy.gate.ab_metric is not None:  # the online gate: an A/B test instead of the canary steps
            return ab_step.start(self, policy, report["challenger"], champion.version, now)
        return self._step(policy, report["challenger"], champion.version, 0, now)

    def _step(
        self, policy: LoopPolicy, challenger: int, champion: int, step: int, now: datetime
    ) -> dict[str, Any]:
        share = float(policy.rollout.steps[step])
        if share >= 1.0:
            made = deploy(self.project, policy.endpoint, policy.model, version=challenger)
        else:
            made = deploy(self.project, policy.endpoint, policy.model, version=challenger, canary=share)
        reason = (
            f"v{challenger} takes {share:.0%} of the traffic (step {step + 1} of {len(policy.rollout.steps)})"
        )
        # The revision tells the step's requests in the log apart, whatever the serving hosts' clocks.
        self._record(policy.endpoint, now, "canary", challenger=challenger, champion=champion, step=step,
                     share=share, revision=int(made.revision), reason=reason)  # fmt: skip
        return {"decision": "canary", "reason": reason}

    def _canary(self, policy: LoopPolicy, state: LoopState, champion: Any, now: datetime) -> dict[str, Any]:
        rollout, challenger, old = policy.rollout, state.challenger, state.champion or champion.version
        assert challenger is not None and state.step_started is not None
        stats = version_stats(predictions_folder(self.project.settings), policy.endpoint, state.step_started, None,
                              revision=state.step_revision, min_labels=rollout.min_labels,
                              parquet=self.project.parquet)  # fmt: skip
        measured, measured_at = time.monotonic(), time.time()
        mine, theirs = stats.get(challenger, dict(_ZERO)), stats.get(old, dict(_ZERO))
        numbers = {"challenger": mine, "champion": theirs, "step": state.step}
        breach = self._breach(policy, mine, theirs, now)
        if breach:
            deploy(self.project, policy.endpoint, policy.model, version=old)
            self._drop_alias(policy, "challenger")
            seconds = round(time.monotonic() - measured, 4)  # the breach measured -> the old version deployed
            self._record(policy.endpoint, now, "rollback", reason=breach, restored=old, challenger=challenger,
                             numbers=numbers, measured_at=measured_at, seconds=seconds)  # fmt: skip
            return {"decision": "rollback", "reason": breach}
        if mine["requests"] < rollout.min_requests:
            return {"decision": "canary", "reason": f"v{challenger}: {mine['requests']} of {rollout.min_requests} "
                                                    "requests at this step"}  # fmt: skip
        nxt = state.step + 1
        if nxt < len(rollout.steps):
            if nxt == len(rollout.steps) - 1 and policy.approval:
                self._record(policy.endpoint, now, "awaiting", challenger=challenger, numbers=numbers,
                                 reason=f"v{challenger} is healthy; the final step waits for approval")  # fmt: skip
                return {"decision": "awaiting", "reason": "waiting for approval"}
            return self._step(policy, challenger, old, nxt, now)
        self.project.models.set_alias(policy.model, "champion", challenger)
        self.project.models.set_alias(policy.model, "previous", old)
        self._drop_alias(policy, "challenger")
        reason = f"v{challenger} served {mine['requests']} requests at 100% within its limits"
        self._record(policy.endpoint, now, "promote", champion=challenger, previous=old, numbers=numbers,
                         reason=reason)  # fmt: skip
        return {"decision": "promote", "reason": reason}

    def _breach(self, policy: LoopPolicy, mine: dict[str, Any], theirs: dict[str, Any], now: datetime) -> str:
        rollout = policy.rollout
        allowed = rollout.max_error_rate * max(mine["requests"], rollout.min_requests)
        if mine["errors"] > allowed:
            return (f"{mine['errors']} failed requests of {mine['requests']} (at most {rollout.max_error_rate:.1%} "
                    f"of {max(mine['requests'], rollout.min_requests)})")  # fmt: skip
        p99 = mine.get("p99_ms")
        if (
            rollout.max_p99_ms is not None
            and p99 is not None
            and mine["requests"] >= min(100, rollout.min_requests)
        ) and p99 > rollout.max_p99_ms:
            return f"p99 latency {p99:.1f} ms above {rollout.max_p99_ms} ms"
        if (
            rollout.compare == "live_auc"
            and mine.get("live_auc") is not None
            and theirs.get("live_auc") is not None
        ) and mine["live_auc"] < theirs["live_auc"] - rollout.tolerance:
            return f"live ROC AUC {mine['live_auc']:.4f} below the champion's {theirs['live_auc']:.4f}"
        if policy.rollback is not None:
            return self._slo_page(policy)
        return ""

    def _slo_page(self, policy: LoopPolicy) -> str:
        pages = [a for a in self.project.monitoring.alerts(policy.endpoint, open_only=True)
                 if a["name"] == "slo_burn" and a["severity"] == "page"]  # fmt: skip
        return f"SLO page: {pages[0]['summary']}" if pages else ""

    def _after_promotion(
        self, policy: LoopPolicy, state: LoopState, champion: Any, now: datetime
    ) -> dict[str, Any] | None:
        if policy.rollback is None or state.last_promotion is None or state.previous is None:
            return None
        if now - state.last_promotion > policy.rollback.span or champion.version != state.champion:
            return None
        page = self._slo_page(policy)
        if not page:
            return None
        deploy(self.project, policy.endpoint, policy.model, version=state.previous)
        self.project.models.set_alias(policy.model, "champion", state.previous)
        self._record(policy.endpoint, now, "rollback", reason=page, restored=state.previous,
                     challenger=champion.version)  # fmt: skip
        return {"decision": "rollback", "reason": page}

    def _record(self, endpoint: str, now: datetime, decision: str, **payload: Any) -> None:
        """The decision as an event; ``at`` is the controller's clock (the one its timing rules read)."""
        self.loop.record(endpoint, decision, at=now.isoformat(), **payload)

    def _drop_alias(self, policy: LoopPolicy, alias: str) -> None:
        with contextlib.suppress(NotFound):
            self.project.models.delete_alias(policy.model, alias)


def _overrides(project: Platform) -> dict[str, Any]:
    """The settings a child process needs to open the same project as this one."""
    dump = project.settings.model_dump(exclude={"api_key", "project"})
    return {k: dump[k] for k in ("metadata_url", "artifact_url", "data_url", "online_url")}


def _guarded(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        return fn(*args)
    except Exception as exc:  # as in the child process: a failed run leaves production as it is
        return {"stage": "failed", "error": f"{type(exc).__name__}: {exc}", "challenger": None}


def _explain(check: dict[str, Any]) -> str:
    """A failed gate check with its numbers: ``roc_auc_gain -0.0412 vs limit 0 (challenger 0.8120, champion 0.8532)``."""
    text = check["name"]
    if check.get("value") is not None and check.get("limit") is not None and not text.startswith("constant:"):
        text += f" {check['value']:.4g} vs limit {check['limit']:.4g}"
    if "confidence" in check:
        text += f" (lower bound of the {check['confidence']:.0%} interval of the gain)"
    if "challenger" in check and "champion" in check:
        text += f" (challenger {check['challenger']:.4f}, champion {check['champion']:.4f})"
    if "sentence" in check:  # an importance shift: "v2 relies 38% more on `amount` (share ...)"
        text += f": {check['sentence']}"
    return text
