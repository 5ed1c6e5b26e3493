"""Errors as JSON: a client mistake is a 4xx with a message that says how to fix it; anything else is a
500 with a request id and no stack trace (the trace goes to the log)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mloop.errors import (
    AlreadyExists,
    AuthenticationError,
    MalformedInput,
    MloopError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    SchemaError,
    TooManyRequests,
)
from mloop.serving.protection import retry_after

log = logging.getLogger("mloop.serving")
STATUS = [
    (AuthenticationError, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (Overloaded, 503),
    (SchemaError, 422),
    (MalformedInput, 422),
    (MloopError, 400),
]


def install(app: FastAPI) -> None:
    @app.exception_handler(MloopError)
    async def _user_error(request: Request, exc: MloopError) -> JSONResponse:
        status = next(code for kind, code in STATUS if isinstance(exc, kind))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, TooManyRequests | Overloaded):
            headers = {"Retry-After": retry_after(exc.retry_after)}
        body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        if request.url.path.startswith("/v2/"):
            body = {"error": str(exc)}  # the Open Inference Protocol's error shape
            status = 400 if status == 422 else status
        elif hasattr(exc, "to_dict") and hasattr(exc, "problems"):
            body["problems"] = exc.to_dict()  # a signature mismatch: one entry per field
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        if request.url.path.startswith("/v2/"):
            text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            return JSONResponse({"error": f"The request body is invalid: {text}"}, status_code=400)
        return JSONResponse({"error": "ValidationError", "message": "The request body is invalid.", "problems": problems},
                            status_code=422)  # fmt: skip

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.exception("internal error", extra={"request_id": request_id, "path": request.url.path})
        return JSONResponse(
            {
                "error": "InternalError",
                "message": "The server failed; the log has the details.",
                "request_id": request_id,
            },
            status_code=500,
        )
