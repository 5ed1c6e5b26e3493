"""Loop decisions as a person reads them: each ``loop.*`` (or ``monitoring.*``) event becomes an
:class:`Entry` with its outcome, its reason and its numbers (a gate's checks against their limits, a
canary step's share, the live measurements of both versions), so the timeline never shows raw JSON.
The payloads are those listed in :mod:`mloop.loop.state`; a key this module does not know is still shown,
as a plain fact, so a new payload field is never hidden."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mloop.security.audit_chain import Event

# What a tag on the timeline looks like: good news, bad news, a person's hand, or neutral.
_TONE = {"promote": "ok", "approve": "ok", "resume": "ok", "rollback": "bad", "train_failed": "bad",
         "pause": "warn", "awaiting": "warn", "alert": "bad", "resolve": "ok"}  # fmt: skip
_SHOWN = {"reason", "at", "checks", "numbers"}  # rendered on their own, never as plain facts
_LABELS = {"challenger": "challenger", "champion": "champion", "previous": "previous champion",
           "restored": "restored", "trigger": "trigger", "metric": "metric", "challenger_value": "challenger's metric",
           "champion_value": "champion's metric", "latency_p99_ms": "p99 latency (ms)", "fairness_gap": "fairness gap",
           "holdout_rows": "holdout rows", "run_id": "run", "seconds": "seconds to roll back",
           "measured_at": "measured at", "passed": "passed"}  # fmt: skip
_VERSIONS = {"challenger", "champion", "previous", "restored"}
# The live measurements of a canary step, in the order a person compares them.
STATS = (("requests", "requests"), ("errors", "errors"), ("error_rate", "error rate"), ("p99_ms", "p99 ms"),
         ("labelled", "labelled"), ("live_auc", "live ROC AUC"))  # fmt: skip


@dataclass
class Entry:
    seq: int
    ts: datetime  # when the decision was taken: the controller's clock, as `mloop loop timeline` shows it
    actor: str
    action: str
    decision: str  # the action without its family: gate, canary, alert...
    outcome: str = ""  # passed / failed for a gate; the alert's severity
    tone: str = ""  # ok / bad / warn: how the tag reads
    reason: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    checks: list[dict[str, str]] = field(default_factory=list)  # a gate's: name, value, limit, result, note
    stats: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (version label, measurements)


def entry(event: Event) -> Entry:
    data = event.payload
    family, _, decision = event.action.partition(".")
    # The controller's clock decides its timing rules (and a test may set it), so it is the time shown.
    when = _time(data.get("at")) or event.ts
    out = Entry(event.seq, when, event.actor, event.action, decision, tone=_TONE.get(decision, ""),
                reason=str(data.get("reason", "")))  # fmt: skip
    if family == "monitoring":
        _alert(out, data.get("alert") or {})
        return out
    if decision == "gate":
        out.outcome, out.tone = ("passed", "ok") if data.get("passed") else ("failed", "bad")
        out.checks = [_check(c) for c in data.get("checks") or []]
    if decision == "canary" and data.get("share") is not None:
        out.facts.append(("share", f"{float(data['share']):.0%}"))
        out.facts.append(("step", str(int(data.get("step", 0)) + 1)))
    out.facts += [(_LABELS.get(k, k.replace("_", " ")), _value(k, v)) for k, v in data.items()
                  if k not in _SHOWN and k not in ("share", "step", "passed") and v is not None]  # fmt: skip
    numbers = data.get("numbers")
    if isinstance(numbers, dict):
        # A promotion names the challenger its new champion and the old one "previous"; a rollback restores it.
        new, old = ("champion", "previous") if decision == "promote" else ("challenger", "restored")
        _numbers(out, numbers, {"challenger": data.get(new), "champion": data.get(old)})
    return out


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:  # recorded by hand (`project.loop.record`) rather than by the controller
        return None


def _alert(out: Entry, alert: dict[str, Any]) -> None:
    out.outcome = str(alert.get("severity", ""))
    out.reason = str(alert.get("summary", "")) or out.reason
    for key in ("name", "value", "threshold", "started_at", "resolved_at", "resolution"):
        if alert.get(key) not in (None, ""):
            out.facts.append((key.replace("_", " "), _value(key, alert[key])))


def _numbers(out: Entry, numbers: dict[str, Any], versions: dict[str, Any]) -> None:
    """A trigger's figures become facts; a canary's live measurements of both versions become a table."""
    sides = [k for k in ("challenger", "champion") if isinstance(numbers.get(k), dict)]
    for side in sides:
        label = f"{side} v{versions[side]}" if versions.get(side) is not None else side
        out.stats.append((label, {key: _value(key, numbers[side].get(key)) for key, _ in STATS}))
    for key, value in numbers.items():
        if key == "step" and isinstance(value, int):
            out.facts.append(("step", str(value + 1)))  # counted from 1, as the canary's reason counts
        elif key not in sides and value is not None:
            out.facts.append((key.replace("_", " "), _value(key, value)))


def _check(check: dict[str, Any]) -> dict[str, str]:
    note = []
    if check.get("challenger") is not None and check.get("champion") is not None:
        note.append(f"challenger {_value('', check['challenger'])}, champion {_value('', check['champion'])}")
    if check.get("confidence") is not None:
        note.append(f"lower bound of the {float(check['confidence']):.0%} interval of the gain")
    return {"name": str(check.get("name", "")), "value": _value("", check.get("value")),
            "limit": _value("", check.get("limit")), "result": "passed" if check.get("passed") else "failed",
            "note": "; ".join(note)}  # fmt: skip


def _value(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in _VERSIONS and isinstance(value, int) and not isinstance(value, bool):
        return f"v{value}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "error_rate" and isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(k, v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(key, v) for v in value)
    return str(value)
