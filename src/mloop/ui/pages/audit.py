"""``/ui/audit``: the hash-chained event log, newest first, filtered (action, actor, resource, time range)
and paged in the database; ``/ui/audit/{seq}``: one event with its whole payload; the chain's verification
runs on demand (``/ui/audit/verify``, an htmx fragment) since it walks every event. Needs ``audit.read``.
The same from the CLI: ``mloop audit log``, ``mloop audit verify``."""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop.errors import MloopError
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

FILTERS = ("action", "actor", "resource", "since", "until")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/audit")
    def audit_page(request: Request, action: str = "", actor: str = "", resource: str = "", since: str = "",
                   until: str = "", before: int | None = None, after: int | None = None,
                   per: int = 50) -> HTMLResponse:  # fmt: skip
        viewer = sessions.viewer(request)
        filters = {"action": action.strip(), "actor": actor.strip(), "resource": resource.strip(),
                   "since": since.strip(), "until": until.strip()}  # fmt: skip
        try:
            found = viewer.audit.page(
                action=filters["action"] or None, actor=filters["actor"] or None,
                resource=filters["resource"] or None, since=_time("since", filters["since"]),
                until=_time("until", filters["until"]), before=before, after=after, limit=per,
            )  # fmt: skip
        except MloopError as exc:
            return error_page(request, viewer, exc)
        kept = {k: v for k, v in filters.items() if v} | {"per": per}
        return render(request, "audit.html", viewer, title="Audit log", page="audit", filters=filters,
                      events=found.events, brief=_brief, older=found.older, newer=found.newer, kept=kept,
                      per=per, cli=_cli(filters, per))  # fmt: skip

    @r.get("/audit/verify")
    def verify(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            report = viewer.audit.verify()
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "fragments/audit_verify.html", viewer, report=report)

    @r.get("/audit/{seq}")
    def event_page(request: Request, seq: int) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            event = viewer.audit.event(seq)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        fields = [(key, _shown(value)) for key, value in event.payload.items()]
        return render(request, "audit_event.html", viewer, title=f"Audit event {seq}", page="audit", event=event,
                      fields=fields, canonical=json.dumps(event.payload, indent=2, sort_keys=True, default=str),
                      cli=f"mloop audit log --after {seq - 1} -n 1 --json")  # fmt: skip

    return r


def _time(name: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MloopError(
            f"{name} {text!r} is not a time: write it as 2025-01-31T14:00 (UTC), or leave it empty."
        ) from None


def _brief(payload: dict[str, Any]) -> str:
    """A line of the payload for the list (the event's own page shows all of it)."""
    text = ", ".join(f"{k}={_compact(v)}" for k, v in payload.items() if k not in ("fingerprint", "source"))
    return text if len(text) <= 120 else text[:119] + "…"


def _compact(value: Any) -> str:
    return (
        json.dumps(value, separators=(",", ":"), default=str)
        if isinstance(value, dict | list)
        else str(value)
    )


def _shown(value: Any) -> tuple[bool, str]:
    """(is it structured, its text): a nested value is shown indented, a scalar as it is."""
    if isinstance(value, dict | list):
        return True, json.dumps(value, indent=2, sort_keys=True, default=str)
    return False, "—" if value is None else str(value)


def _cli(filters: dict[str, str], per: int) -> str:
    words = ["mloop", "audit", "log"]
    for name in ("action", "actor", "resource"):
        if filters[name]:
            words += [f"--{name}", filters[name]]
    return " ".join(shlex.quote(w) for w in [*words, "-n", str(per)])
