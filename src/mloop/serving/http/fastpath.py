"""``POST /v1/endpoints/{name}/predict`` and ``POST /v2/models/{name}/infer`` served as plain ASGI, ahead of
FastAPI's router.

FastAPI's routing, dependency solving and body and response models cost about half a millisecond per
request here, as much as the feature lookup and the model call together. The prediction route is the one
requests that must be cheap, so this middleware answers them directly: the path is matched by string
operations, the caller admitted by the same :class:`~mloop.serving.http.auth.Authenticator`, the body parsed by
the same pydantic model (from bytes, in Rust), the answer computed by the same
:class:`~mloop.serving.inference.Inference` and errors rendered by :func:`mloop.serving.http.errors.render`,
so the answers are the ones the FastAPI route gives; that route stays declared for the OpenAPI document
and serves any request this one passes on.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from mloop.serving.http import errors
from mloop.serving.http.auth import Authenticator
from mloop.serving.http.bodies import check_foreign_body
from mloop.serving.http.routes import oip as oip_route
from mloop.serving.http.routes import pipeline as pipeline_route
from mloop.serving.http.routes.predict import parse
from mloop.serving.inference import Inference
from mloop.serving.pipeline import Pipelines

Scope = dict[str, Any]

_PREFIX, _SUFFIX = "/v1/endpoints/", "/predict"
_OIP_PREFIX, _OIP_SUFFIX = "/v2/models/", "/infer"


class PredictFastPath:
    def __init__(
        self, app: Any, *, caller: Authenticator, inference: Inference, pipelines: Pipelines | None = None
    ) -> None:
        self.app = app
        self.caller = caller
        self.inference = inference
        self.pipelines = pipelines

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if path.startswith(_OIP_PREFIX) and path.endswith(_OIP_SUFFIX):
            name = path[len(_OIP_PREFIX) : -len(_OIP_SUFFIX)]
            if name and "/" not in name:
                await self._infer(scope, receive, send, name, path)
                return
        if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
            await self.app(scope, receive, send)
            return
        name = path[len(_PREFIX) : -len(_SUFFIX)]
        if not name or "/" in name:
            await self.app(scope, receive, send)
            return
        try:
            header, content_type = "", None
            for key, value in scope.get("headers", ()):
                if key == b"authorization":
                    header = value.decode("latin-1")
                elif key == b"content-type":
                    content_type = value.decode("latin-1")
            if content_type is None or not content_type.startswith("application/json"):
                _browser_check(scope, content_type, bool(header))
            project = self.caller.admit(header)
            if self.pipelines is not None and name in self.pipelines:
                payload = pipeline_route.answer(self.pipelines, project, name, await _body(receive))
                await _send(send, 200, _json(payload), {"content-type": "application/json"})
                return
            body = parse(await _body(receive))
            answer = await self.inference.predict_async(
                project, name, body.as_rows(), version=body.version, at=body.at
            )
            status, payload, headers = 200, answer.to_dict(), None
        except Exception as exc:  # rendered exactly as the app's exception handlers would
            status, payload, headers = errors.render(exc, path)
        await _send(send, status, _json(payload), {"content-type": "application/json", **(headers or {})})

    async def _infer(self, scope: Scope, receive: Any, send: Any, name: str, path: str) -> None:
        """An OIP ``infer`` without a version in the path: the route's own :func:`oip_route.answer`."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        try:
            project = self.caller.admit(headers.get("authorization", ""))
            content, extra = await oip_route.answer(self.inference, project, name, None, headers,
                                                    await _body(receive))  # fmt: skip
            status = 200
        except Exception as exc:  # rendered exactly as the app's exception handlers would
            status, payload, failed = errors.render(exc, path)
            content, extra = _json(payload), failed or {}
        await _send(send, status, content, {"content-type": "application/json", **extra})


async def _send(send: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
    """One whole response; ``headers`` by any case (Content-Length is set here)."""
    raw = [(b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items() if k.lower() != "content-length"]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _browser_check(scope: Scope, content_type: str | None, authorized: bool) -> None:
    """The cross-origin rule of every other route (:func:`~mloop.serving.http.bodies.check_foreign_body`):
    only for a body not declared JSON, which is rare on this path."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
    check_foreign_body(content_type, headers, authorized)


def _json(payload: Any) -> bytes:
    """The answer's JSON: orjson (a tenth of the standard library's time; strict JSON: a non-finite float
    is null), the standard library for what orjson cannot encode (an int over 64 bits)."""
    try:
        return orjson.dumps(payload)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def _body(receive: Any) -> bytes:
    """The whole request body (the guard in front has bounded its size)."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)
