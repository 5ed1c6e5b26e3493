"""Open Inference Protocol (KServe v2) routes: server and model metadata, readiness, ``infer``. Parse,
call the inference service, answer; the tensor conversions live in :mod:`mloop.serving.http.oip` and the
binary tensor data extension in :mod:`mloop.serving.http.binary`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mloop._version import __version__
from mloop.errors import NotFound
from mloop.project import Project
from mloop.serving.http import binary, oip
from mloop.serving.http.bodies import JSONBodyRoute, check_foreign_body
from mloop.serving.inference import Inference


class InferTensor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1)
    shape: list[int]
    datatype: str
    data: list[Any] | None = Field(None, description="Row-major, flat or nested; or binary data instead.")
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(..., min_length=1)
    outputs: list[RequestedOutput] | None = None


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions (an ``openapi_extra`` body
    cannot add them to the document's components)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    inlined: dict[str, Any] = walk(schema)
    return inlined


_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _inlined(InferRequest.model_json_schema())},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description":
        "Binary tensor data extension: the JSON request (its length in the Inference-Header-Content-Length "
        "header) followed by the inputs' bytes."}}}}}  # fmt: skip


def parse(headers: Mapping[str, str], body: bytes) -> tuple[InferRequest, list[Any]]:
    """The JSON request and each input's binary data (None where it came as JSON), or the 400 FastAPI
    would give for the JSON part; ``headers`` by lower-case name."""
    check_foreign_body(headers.get("content-type"), headers, "authorization" in headers)
    header, buffer = binary.split(body, headers.get(binary.HEADER))
    try:
        parsed = InferRequest.model_validate_json(header or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    return parsed, binary.take([t.model_dump() for t in parsed.inputs], buffer)


def router(caller: Any, inference: Inference) -> APIRouter:
    api = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JSONBodyRoute)

    @api.get("")
    def server_metadata() -> dict[str, Any]:
        return {"name": "mloop", "version": __version__, "extensions": ["binary_tensor_data"]}

    @api.get("/models/{name}")
    @api.get("/models/{name}/versions/{version}")
    def model_metadata(
        name: str, version: int | None = None, project: Project = Depends(caller)
    ) -> dict[str, Any]:
        return oip.metadata(name, inference.describe(project, name, version))

    @api.get("/models/{name}/ready")
    @api.get("/models/{name}/versions/{version}/ready")
    def model_ready(
        name: str, version: int | None = None, project: Project = Depends(caller)
    ) -> dict[str, Any]:
        try:
            inference.describe(project, name, version)
        except NotFound:
            return {"name": name, "ready": False}
        return {"name": name, "ready": True}

    @api.post("/models/{name}/infer", openapi_extra=_BODY)
    @api.post("/models/{name}/versions/{version}/infer", openapi_extra=_BODY)
    async def infer(
        name: str, request: Request, version: int | None = None, project: Project = Depends(caller)
    ) -> Response:
        content, headers = await answer(
            inference, project, name, version, request.headers, await request.body()
        )
        return Response(content, headers=headers)

    return api


async def answer(inference: Inference, project: Project, name: str, version: int | None,
                 headers: Mapping[str, str], raw: bytes) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """The body and headers of the answer to one ``infer`` request (also served by the fast path)."""
    body, arrays = parse(headers, raw)
    specs = inference.input_specs(project, name, version)
    rows = oip.request_rows([t.model_dump() for t in body.inputs], specs, arrays)
    answered = await inference.predict_async(project, name, rows, version=version, request_id=body.id)
    asked = [(o.name, o.parameters or {}) for o in body.outputs or []] or None
    return oip.respond(name, answered, inference.output_names(name, answered.version), asked,
                       bool((body.parameters or {}).get("binary_data_output")))  # fmt: skip
