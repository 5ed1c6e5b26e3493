"""The dashboard's forms: ``application/x-www-form-urlencoded`` bodies, read without python-multipart."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request


async def form(request: Request) -> dict[str, str]:
    """The body as ``{name: last value}``."""
    body = (await request.body()).decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}
