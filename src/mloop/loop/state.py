"""An endpoint's loop state, folded from its ``loop.*`` events: the event log is the only record, so
the timeline and what the controller does next can never disagree.

======================  ===================================================  ==========================
event                   payload                                              state after
======================  ===================================================  ==========================
``loop.trigger``        trigger, reason, numbers                             (unchanged)
``loop.train_failed``   reason                                               idle, cooling down
``loop.gate``           passed, checks, challenger, champion                 idle unless passed
``loop.canary``         challenger, champion, step, share                    canary at that step
``loop.ab``             challenger, champion, share, report (the A/B         A/B test (the first one,
                        numbers), verdict; ``started`` on the first one      ``started``, begins it)
``loop.awaiting``       challenger                                           waiting for approval
``loop.approve``        challenger                                           approved: final step next
``loop.promote``        champion, previous, numbers                          idle, new champion
``loop.rollback``       reason, numbers, restored                            idle, cooling down
``loop.pause``          (by whom)                                            paused
``loop.resume``                                                              not paused
======================  ===================================================  ==========================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mloop.security.audit_chain import Event

ACTIONS = ("trigger", "train_failed", "gate", "canary", "ab", "awaiting", "approve", "promote", "rollback",
           "pause", "resume")  # fmt: skip


@dataclass
class LoopState:
    phase: str = "idle"  # idle | canary | ab | awaiting
    paused: bool = False
    challenger: int | None = None
    champion: int | None = None  # as the loop last set it (the registry alias is the truth)
    previous: int | None = None  # the champion before the last promotion
    step: int = 0
    step_started: datetime | None = None  # on the controller's clock
    step_revision: int | None = None  # the deployment revision the step made (None: recorded without it)
    approved: bool = False
    last_trigger: datetime | None = None
    last_failure: datetime | None = None
    last_promotion: datetime | None = None
    last_seq: int = 0
    ab_outcomes: int = 0  # outcomes the last loop.ab event counted (a tick with no new one records nothing)

    def to_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.__dict__.items()}


def fold(events: Iterable[Event]) -> LoopState:
    state = LoopState()
    for event in events:
        name, data = event.action.removeprefix("loop."), event.payload
        at = datetime.fromisoformat(data["at"]) if data.get("at") else event.ts  # the controller's clock
        state.last_seq = event.seq
        if name == "trigger":
            state.last_trigger = at
        elif name == "train_failed" or (name == "gate" and not data.get("passed")):
            state.phase, state.challenger, state.last_failure = "idle", None, at
        elif name == "canary":
            state.phase, state.challenger, state.champion = "canary", data["challenger"], data.get("champion")
            state.step, state.step_started, state.step_revision = int(data["step"]), at, data.get("revision")
        elif name == "ab":
            if data.get("started"):
                state.phase, state.challenger, state.champion = "ab", data["challenger"], data.get("champion")
                state.step, state.step_started, state.step_revision = 0, at, data.get("revision")
            state.ab_outcomes = int(data.get("outcomes", 0))
        elif name == "awaiting":
            state.phase, state.approved = "awaiting", False
        elif name == "approve":
            state.approved = True
        elif name == "promote":
            state.phase, state.champion, state.previous = "idle", data["champion"], data.get("previous")
            state.challenger, state.approved, state.last_promotion = None, False, at
        elif name == "rollback":
            state.phase, state.challenger, state.approved, state.last_failure = "idle", None, False, at
            if data.get("restored") is not None:
                state.champion = data["restored"]
        elif name == "pause":
            state.paused = True
        elif name == "resume":
            state.paused = False
    return state
