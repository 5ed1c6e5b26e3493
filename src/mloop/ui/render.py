"""Pages from Jinja2 templates (``ui/templates``), autoescaped, with what every page shows: the viewer,
the navigation, the CSRF token for its forms and the CLI command that prints the same thing.

>>> return render(request, "overview.html", viewer, title="Overview", cli="mloop deployments list", rows=rows)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop._version import __version__
from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.project import Project
from mloop.review.render import ticks
from mloop.ui.session import Sessions

NAV = (("overview", "Overview", "/ui/"), ("runs", "Runs", "/ui/runs"), ("models", "Models", "/ui/models"),
       ("features", "Features", "/ui/features"), ("data", "Data", "/ui/data"),
       ("deployments", "Deployments", "/ui/deployments"), ("monitoring", "Monitoring", "/ui/monitoring"),
       ("loop", "Loop", "/ui/loop"), ("review", "Review", "/ui/review"), ("audit", "Audit", "/ui/audit"))  # fmt: skip

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_ENV.filters["when"] = _when
_ENV.filters["number"] = _number
_ENV.filters["ticks"] = ticks  # a review's fix: its `commands` as <code>


# A page whose reading needs more than every role's reads: its link is left out for those who lack it.
_NEEDS = {"audit": "audit.read", "review": "review.read"}


def _nav(viewer: Project) -> list[tuple[str, str, str]]:
    return [entry for entry in NAV if entry[0] not in _NEEDS or viewer.actor.can_somewhere(_NEEDS[entry[0]])]


def render(
    request: Request, template: str, viewer: Project, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered for ``viewer``; ``context`` names ``title``, ``page`` (the nav entry),
    ``cli`` (the command that shows the same) and the page's own values."""
    context.setdefault("page", "")
    html = _ENV.get_template(template).render(
        request=request, viewer=viewer.actor, csrf=Sessions.csrf_token(request), nav=_nav(viewer), version=__version__,
        project=viewer.name, local=viewer.settings.local_admin, **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status)
    Sessions.keep_csrf(request, response)
    return response


def error_page(request: Request, viewer: Project, exc: MloopError) -> HTMLResponse:
    """A service error as a page: 404 for an unknown name, 403 for a missing permission, else 400."""
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, PermissionDenied) else 400
    return render(request, "error.html", viewer, status=status, title="Error", message=str(exc))
