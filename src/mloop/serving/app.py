"""The ASGI app of ``mloop serve``: feature server, health, Prometheus metrics."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mloop import __version__
from mloop.project import Project
from mloop.serving import errors, features_routes
from mloop.serving.auth import Authenticator


def create_app(project: Project) -> FastAPI:
    """One app for the whole project; requests act as the owner of their API key."""
    app = FastAPI(title="mloop", version=__version__, description="mloop platform API")
    errors.install(app)
    caller = Authenticator(project)
    app.include_router(features_routes.router(caller))

    @app.get("/v2/health/live", tags=["health"])
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    def ready() -> dict[str, bool]:
        with project.store.read() as session:
            session.connection()
        return {"ready": True}

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        _refresh_gauges(project)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _refresh_gauges(project: Project) -> None:
    from mloop.features.metrics import FRESHNESS, LAG

    for info in project.features.freshness():
        if info.age_seconds is not None:
            FRESHNESS.labels(project.name, info.view).set(info.age_seconds)
        if info.lag_seconds is not None:
            LAG.labels(project.name, info.view).set(info.lag_seconds)
