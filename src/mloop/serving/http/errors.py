"""Errors as JSON: a client mistake is a 4xx with a message that says how to fix it; anything else is a
500 with a request id and no stack trace (the trace goes to the log)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mloop.errors import (
    AlreadyExists,
    AuthenticationError,
    DiskFull,
    MalformedInput,
    MloopError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    PredictionTimeout,
    SchemaError,
    StorageUnavailable,
    TooManyRequests,
)
from mloop.explain import ExplainError
from mloop.serving.http.protection import retry_after

log = logging.getLogger("mloop.serving")
STATUS = [
    (AuthenticationError, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (Overloaded, 503),
    (StorageUnavailable, 503),  # S3 down: the same request succeeds once it is back
    (DiskFull, 503),  # likewise once there is room: a prediction is not answered without its log line
    (PredictionTimeout, 504),  # the model ran past the endpoint's timeout_ms: the message names both
    (SchemaError, 422),
    (MalformedInput, 422),
    (ExplainError, 422),  # no explainer for the flavour, no budget for the fallback: the message says which
    (MloopError, 400),
]


_UNPARSED = "There was an error parsing the body"

# The body of every error, for the OpenAPI document: {"error": kind, "message": ...} on /v1 (with
# "problems": one per field, on a 422), {"error": message} on /v2 (the Open Inference Protocol's shape).
ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "The kind of error (on /v2: the message)."},
        "message": {"type": "string", "description": "What is wrong and how to fix it."},
        "problems": {"type": ["array", "object"], "description": "One entry per field at fault."},
        "request_id": {"type": "string", "description": "Of a 500: the log's entry for it."},
    },
}
_MEANING = {
    400: "The request cannot be done as asked (on /v2: also an invalid body).",
    401: "No API key where one is needed, or a key that is malformed, unknown, revoked or expired.",
    403: "The key's roles do not allow this here (or a cross-origin body without a key).",
    404: "No such endpoint, model, version or resource.",
    409: "It exists already.",
    413: "The body is over serving.max_body_bytes (or a route's row limit, which the message names).",
    422: "The body or a parameter is invalid: problems says which field and why.",
    429: "Over the key's rate limit: retry after Retry-After seconds.",
    503: "Overloaded (retry after Retry-After seconds), not ready, or a disk is full (the message says which).",
    504: "The model ran past the endpoint's timeout_ms deployment option (the message names both).",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of routes that may answer ``statuses``, each with the error body above."""
    return {
        status: {"description": _MEANING[status], "content": {"application/json": {"schema": ERROR_BODY}}}
        for status in statuses
    }


GUARDED = (413, 429, 503)  # any route: the guard in front of the app (protection.py) answers these
V1 = responses(400, 401, 403, 404, 409, 422, *GUARDED)
TIMED = responses(504)  # the routes that call a model: an endpoint with timeout_ms answers 504 past it
# /v2 answers an invalid body 400, never 422; "4XX" also keeps FastAPI from adding its 422 {"detail": ...}
V2 = responses(400, 401, 403, 404, *GUARDED) | {"4XX": {
    "description": "Another client error (405, say), in the same shape.",
    "content": {"application/json": {"schema": ERROR_BODY}}}}  # fmt: skip


def render(exc: BaseException, path: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, JSON body and headers that answer ``exc`` raised for a request to ``path``."""
    if isinstance(exc, MloopError):
        return _user_error(exc, path)
    if isinstance(exc, RequestValidationError):
        return _invalid(exc, path)
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 400 and exc.detail == _UNPARSED:
        # FastAPI's answer to a body its JSON decoder gave up on (nested too deep): 400 {"detail": ...}
        why = "nested too deeply, or not readable"
        if isinstance(exc.__cause__, RecursionError):
            why = "nested too deeply (arrays or objects inside each other)"
        return _not_json({"msg": why, "loc": ("body",)}, path)
    if isinstance(exc, StarletteHTTPException):
        return (
            exc.status_code,
            {"error": "HTTPError", "message": str(exc.detail)},
            dict(exc.headers or {}) or None,
        )
    request_id = uuid.uuid4().hex
    log.error("internal error", exc_info=exc, extra={"request_id": request_id, "path": path})
    body = {"error": "InternalError", "message": "The server failed; the log has the details.",
            "request_id": request_id}  # fmt: skip
    return 500, body, None


def install(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status, body, headers = render(exc, request.url.path)
        return JSONResponse(body, status_code=status, headers=headers)

    for kind in (MloopError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


def _user_error(exc: MloopError, path: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooManyRequests | Overloaded):
        headers = {"Retry-After": retry_after(exc.retry_after)}
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if path.startswith("/v2/"):
        body = {"error": str(exc)}  # the Open Inference Protocol's error shape
        status = 400 if status == 422 else status
    elif hasattr(exc, "to_dict") and hasattr(exc, "problems"):
        body["problems"] = exc.to_dict()  # a signature mismatch: one entry per field
    return status, body, headers


def _invalid(exc: RequestValidationError, path: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    undecodable = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if undecodable is not None:
        return _not_json(undecodable, path)
    problems = [
        {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
        for e in exc.errors()
    ]
    what = "request body" if all(e["loc"][:1] == ("body",) for e in exc.errors()) else "request"
    if path.startswith("/v2/"):
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return 400, {"error": f"The {what} is invalid: {text}"}, None
    return 422, {"error": "ValidationError", "message": f"The {what} is invalid.", "problems": problems}, None


def _not_json(error: dict[str, Any], path: str) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    # FastAPI's decoder says why in ctx["error"] and where in loc; pydantic's says both in msg
    why = error.get("ctx", {}).get("error")
    if why is not None and len(error["loc"]) > 1:
        why = f"{why} at character {error['loc'][1]}"
    why = why or str(error["msg"]).removeprefix("Invalid JSON: ")
    if why.startswith("recursion limit exceeded"):  # pydantic's parser (routes that read bytes themselves)
        why = "nested too deeply (arrays or objects inside each other)"
    message = f"The body is not JSON: {why}; send a JSON object."
    if path.startswith("/v2/"):
        return 400, {"error": message}, None
    return 422, {"error": "ValidationError", "message": message,
                 "problems": [{"field": "", "message": message}]}, None  # fmt: skip
