"""Request bodies are JSON, whatever the ``Content-Type`` says.

FastAPI parses a body as JSON only when the request says ``application/json``; anything else reaches the
body model as bytes and fails with "Input should be a valid dictionary". But ``curl -d`` sends
``application/x-www-form-urlencoded``, many clients send no content type, and the Open Inference
Protocol's own client (``tritonclient.http``) sends none: KServe and Triton read those bodies as JSON, and
so does mloop. Every router of the app uses :class:`JSONBodyRoute`, which presents such a request to FastAPI
as ``application/json``, so a body that is not JSON is answered "the body is not JSON" (see
:mod:`mloop.serving.http.errors`) rather than with a type error about a dictionary.

One exception keeps the protection FastAPI's strict content type gives: a browser page of another origin
can send ``text/plain`` or a form without asking the server first (no CORS preflight), so such a request
without an API key keeps its content type and is refused with a message; a request with a key, or from a
non-browser client, or from the server's own pages (``/docs``) is read as JSON.

>>> from fastapi import APIRouter
>>> api = APIRouter(prefix="/v1/things", route_class=JSONBodyRoute)
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute

from mloop.errors import PermissionDenied

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_JSON = b"application/json"


class JSONBodyRoute(APIRoute):
    """An API route whose JSON body is read as JSON whatever the request's ``Content-Type``."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, Form):
            return handler

        async def read_as_json(request: Request) -> Response:
            return await handler(as_json(request))

        return read_as_json


def as_json(request: Request) -> Request:
    """``request``, or the same request saying ``Content-Type: application/json`` if it says otherwise."""
    content_type = request.headers.get("content-type")
    if content_type and is_json(content_type):
        return request
    check_foreign_body(content_type, request.headers, "authorization" in request.headers)
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    scope["headers"].append((b"content-type", _JSON))
    return Request(scope, request.receive)


def check_foreign_body(content_type: str | None, headers: Mapping[str, str], authorized: bool) -> None:
    """Refuse a body that is not declared JSON when a page of another origin sent it without an API key:
    the request a browser sends without asking the server's CORS policy first (``text/plain``, a form).
    Also used by the ``/predict`` fast path, which reads bodies itself."""
    if content_type and is_json(content_type):
        return
    if authorized or not _cross_origin(headers):
        return
    sent = content_type.split(";")[0] if content_type else "no content type"
    raise PermissionDenied(
        f"A page of another origin ({headers.get('origin', 'a browser')}) sent this body with "
        f"{sent} and no API key; mloop reads such a body only as "
        "Content-Type: application/json (which the browser asks the server's CORS policy about first) "
        "or with Authorization: Bearer mlk_..."
    )


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` value is JSON as FastAPI reads it (``application/json``, ``…+json``)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _cross_origin(headers: Mapping[str, str]) -> bool:
    """Whether a browser sent this request from a page of another origin (another host or port)."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != headers.get("host")
