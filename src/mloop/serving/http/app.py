"""The ASGI app of ``mloop serve``: feature server, health, Prometheus metrics."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import Receive, Scope, Send

from mloop import ui
from mloop._version import __version__
from mloop.predictions.feedback import Feedback
from mloop.predictions.log import PredictionLog, predictions_folder
from mloop.predictions.usage import usage_folder
from mloop.privacy.schedule import RetentionSchedule
from mloop.project import Project
from mloop.serving import metrics as metrics_module
from mloop.serving.counterfactuals import CounterfactualService
from mloop.serving.endpoints import EndpointTable, settle_heap
from mloop.serving.explaining import Explaining
from mloop.serving.http import docs, errors
from mloop.serving.http.auth import Authenticator, MetricsGate
from mloop.serving.http.fastpath import PredictFastPath
from mloop.serving.http.protection import Guard
from mloop.serving.http.routes import counterfactual as counterfactual_routes
from mloop.serving.http.routes import explain as explain_routes
from mloop.serving.http.routes import features as features_routes
from mloop.serving.http.routes import feedback as feedback_routes
from mloop.serving.http.routes import monitoring as monitoring_routes
from mloop.serving.http.routes import oip as oip_routes
from mloop.serving.http.routes import predict as predict_routes
from mloop.serving.http.routes import review as review_routes
from mloop.serving.inference import Inference
from mloop.serving.load_alerts import LoadAlerts
from mloop.serving.pipeline import Pipelines
from mloop.serving.usage import UsageMeter

_NOT_READY: dict[int | str, dict[str, Any]] = {503: {
    "description": "Not ready: a deployed version does not load (failures names each) or overloaded.",
    "content": {"application/json": {"schema": {"type": "object", "properties": {
        "ready": {"type": "boolean"}, "failures": {"type": "array", "items": {"type": "string"}},
        "error": {"type": "string"}, "message": {"type": "string"}}}}}}}  # fmt: skip
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits (CPython's default: 0.005)


def create_app(project: Project, *, serving_process: bool = False) -> FastAPI:
    """One app for the whole project; requests act as the owner of their API key. The live endpoints are
    loaded before the app is returned and followed from then on (see :mod:`mloop.serving.endpoints`).
    ``serving_process``: this is a long-lived server (``mloop serve``), which starts its prediction log's
    compactor before the first request instead of under load at the first rotation."""
    table = EndpointTable(project).start()
    table.listeners.append(LoadAlerts(project, table))  # a deployed version that does not load: an alert
    prediction_log = PredictionLog(predictions_folder(project.settings), parquet=project.parquet,
                                   segment_seconds=project.settings.serving.log_segment_seconds)  # fmt: skip
    inference = Inference(table, prediction_log=prediction_log)
    pipelines = Pipelines(inference)  # pipelines: in mloop.yaml, answered on the predict route

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Background threads (the prediction log's writer and compaction, loading a new version) would
        # otherwise hold the GIL up to 5 ms at a time while the event loop waits to answer requests.
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        retention = project.settings.retention
        schedule = None
        meter: UsageMeter | None = None
        if serving_process:
            prediction_log.start_compactor()
            meter = UsageMeter(usage_folder(project.settings)).start()
            if retention.prediction_log_days is not None or retention.quarantine_days is not None:
                schedule = RetentionSchedule(project.privacy.purge).start()
        settle_heap()  # before the first request: a full collection here, never while answering
        try:
            yield
        finally:
            sys.setswitchinterval(previous)
            if schedule is not None:
                schedule.close()
        inference.drain()
        if meter is not None:
            meter.close()  # after the last answer: the final line counts every request
        inference.close()
        prediction_log.close()  # after the last answer: fsyncs, compacts into Parquet
        table.close()

    app = ServingApp(title="mloop", version=__version__, description="mloop platform API", lifespan=lifespan,
                     docs_url=None, redoc_url=None)  # fmt: skip
    docs.install(app)  # /docs and /redoc from the package's own assets: they render offline
    app.state.endpoints, app.state.inference, app.state.pipelines = table, inference, pipelines
    app.state.prediction_log, app.state.feedback = prediction_log, Feedback(prediction_log)
    errors.install(app)
    serving = project.settings.serving
    caller = Authenticator(project)
    app.front = Guard(PredictFastPath(app.routed, caller=caller, inference=inference, pipelines=pipelines),
                      max_concurrency=serving.max_concurrency, max_body_bytes=serving.max_body_bytes,
                      max_queue_ms=serving.max_queue_ms)  # fmt: skip
    # The errors each route may answer, in the OpenAPI document (tests/serving/http/test_schema_fuzz.py)
    app.include_router(features_routes.router(caller), responses=errors.V1)
    app.include_router(
        predict_routes.router(caller, inference, pipelines), responses=errors.V1 | errors.TIMED
    )
    app.include_router(explain_routes.router(caller, Explaining.of(inference)), responses=errors.V1)
    app.include_router(
        counterfactual_routes.router(caller, CounterfactualService.of(inference)), responses=errors.V1
    )
    app.include_router(oip_routes.router(caller, inference), responses=errors.V2 | errors.TIMED)
    app.include_router(feedback_routes.router(caller, app.state.feedback), responses=errors.V1)
    app.include_router(monitoring_routes.router(caller), responses=errors.V1)
    app.include_router(review_routes.router(caller), responses=errors.V1)
    ui.mount(app, project)  # the dashboard at /ui

    @app.get("/v2/health/live", tags=["health"], responses=errors.responses(*errors.GUARDED))
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"], responses=errors.responses(413, 429) | _NOT_READY)
    def ready() -> Response:
        # The metadata store is not checked: a server keeps answering from its loaded endpoints while the
        # database restarts, and taking every replica out of rotation for that would make it an outage.
        if table.failures:  # a deployed version does not load: this server is not what was deployed
            failed = [f"{model} version {version}: {why}" for (model, version), why in table.failures.items()]
            return JSONResponse({"ready": False, "failures": failed}, status_code=503)
        return JSONResponse({"ready": True})

    @app.get("/metrics", tags=["health"], dependencies=[Depends(MetricsGate(caller))],
             response_class=PlainTextResponse, responses=errors.responses(401, 403, *errors.GUARDED))  # fmt: skip
    def metrics() -> Response:
        _refresh_gauges(project)
        return Response(metrics_module.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


class ServingApp(FastAPI):
    """The FastAPI app with the guard and the prediction fast path in front of it: both run before
    FastAPI's own per-request work (its telemetry check and its middleware stack cost about 5% of a
    prediction, measured with py-spy at 16 connections); every other request, and every request the
    two pass on, goes through FastAPI as usual."""

    front: Any = None  # the ASGI app a request meets first; set by create_app

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _path_parameters_not_null(super().openapi())
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.front or self.routed)(scope, receive, send)

    async def routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request through FastAPI: its middleware stack, routing and exception handlers."""
        await super().__call__(scope, receive, send)


def _path_parameters_not_null(spec: dict[str, Any]) -> dict[str, Any]:
    """A path segment is never null: FastAPI documents the optional parameter of a route served with and
    without it (``/v2/models/{name}/versions/{version}``, ``version: int | None``) as "integer or null",
    and ``.../versions/null`` then reads as valid. Here it is what the path holds."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                kept = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
                if parameter.get("in") == "path" and len(kept) == 1:
                    parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept[0]}
    return spec


def _refresh_gauges(project: Project) -> None:
    from mloop.features.metrics import FRESHNESS, LAG

    for info in project.features.freshness():
        if info.age_seconds is not None:
            FRESHNESS.labels(project.name, info.view).set(info.age_seconds)
        if info.lag_seconds is not None:
            LAG.labels(project.name, info.view).set(info.lag_seconds)
