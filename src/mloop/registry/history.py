"""What held each alias and stage, when: rebuilt from the audit log rather than kept in a table of its own.

The audit log already holds every change, in commit order, hash-chained, so a second history table could
only drift from it. Each ``models.alias`` event carries ``{alias, version, previous}`` (``version`` null
when the alias is deleted); each effective stage change (``models.promote`` with status ``done``,
``models.approve``, ``models.delete``) carries ``{version, stage, archived}``. A span runs from the event
that starts it to the event that ends it; at the very instant of a change the new holder counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mloop._time import as_utc
from mloop.security.audit_chain import Event

ALIAS_ACTIONS = ("models.alias",)
STAGE_ACTIONS = ("models.promote", "models.approve", "models.delete")


@dataclass(frozen=True)
class AliasSpan:
    """``alias`` pointed at ``version`` from ``start`` until ``end`` (None: still does)."""

    alias: str
    version: int
    start: datetime
    end: datetime | None
    set_by: str

    def holds_at(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "start": self.start.isoformat(), "end": _iso(self.end)}


@dataclass(frozen=True)
class StageSpan:
    """``version`` was in ``stage`` from ``start`` until ``end``; ``approved_by`` is the second person when
    the change needed approval (``set_by`` then is who asked for it)."""

    stage: str
    version: int
    start: datetime
    end: datetime | None
    set_by: str
    approved_by: str | None = None

    def holds_at(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "start": self.start.isoformat(), "end": _iso(self.end)}


def alias_spans(events: Iterable[Event]) -> list[AliasSpan]:
    """Spans in the order they started."""
    open_: dict[str, AliasSpan] = {}
    done: list[AliasSpan] = []
    for event in events:
        if event.action not in ALIAS_ACTIONS:
            continue
        alias, version = event.payload["alias"], event.payload.get("version")
        current = open_.pop(alias, None)
        if current is not None:
            done.append(_closed(current, event.ts))
        if version is not None:
            open_[alias] = AliasSpan(alias, int(version), event.ts, None, event.actor)
    return sorted([*done, *open_.values()], key=lambda s: (s.start, s.alias))


def stage_spans(events: Iterable[Event]) -> list[StageSpan]:
    """Spans of every version in every stage it went through, in the order they started."""
    open_: dict[int, StageSpan] = {}
    done: list[StageSpan] = []

    def move(version: int, stage: str, event: Event, set_by: str, approved_by: str | None) -> None:
        current = open_.pop(version, None)
        if current is not None:
            done.append(_closed(current, event.ts))
        open_[version] = StageSpan(stage, version, event.ts, None, set_by, approved_by)

    for event in events:
        payload = event.payload
        if event.action not in STAGE_ACTIONS:
            continue
        if event.action == "models.promote" and payload.get("status") != "done":
            continue  # a request waiting for approval changes nothing yet
        if event.action == "models.approve":
            set_by, approved_by = payload.get("requested_by", event.actor), event.actor
        else:
            set_by, approved_by = event.actor, None
        stage = "deleted" if event.action == "models.delete" else payload["stage"]
        for archived in payload.get("archived", []):
            move(int(archived), "archived", event, set_by, approved_by)
        move(int(payload["version"]), stage, event, set_by, approved_by)
    return sorted([*done, *open_.values()], key=lambda s: (s.start, s.version))


def holder_at(spans: Iterable[AliasSpan | StageSpan], t: datetime) -> list[int]:
    t = as_utc(t)
    return sorted({span.version for span in spans if span.holds_at(t)})


def _closed(span: Any, end: datetime) -> Any:
    return type(span)(**{**span.__dict__, "end": end})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
