"""Open Inference Protocol (KServe v2) routes: server and model metadata, readiness, ``infer``. Parse,
call the inference service, answer; the tensor conversions live in :mod:`mloop.serving.http.oip`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from mloop._version import __version__
from mloop.errors import NotFound
from mloop.project import Project
from mloop.serving.http import oip
from mloop.serving.http.bodies import JSONBodyRoute
from mloop.serving.inference import Inference


class InferTensor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1)
    shape: list[int]
    datatype: str
    data: list[Any]
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


def router(caller: Any, inference: Inference) -> APIRouter:
    api = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JSONBodyRoute)

    @api.get("")
    def server_metadata() -> dict[str, Any]:
        return {"name": "mloop", "version": __version__, "extensions": []}

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

    @api.post("/models/{name}/infer")
    @api.post("/models/{name}/versions/{version}/infer")
    async def infer(
        name: str, body: InferRequest, version: int | None = None, project: Project = Depends(caller)
    ) -> dict[str, Any]:
        columns = inference.input_names(project, name, version)
        rows = oip.tensors_to_rows([t.model_dump() for t in body.inputs], columns)
        answer = await inference.predict_async(project, name, rows, version=version, request_id=body.id)
        return {
            "model_name": name,
            "model_version": str(answer.version),
            "id": answer.request_id,
            "outputs": oip.outputs(answer.predictions, inference.output_names(name, answer.version),
                                   [o.name for o in body.outputs or []]),
        }  # fmt: skip

    return api
