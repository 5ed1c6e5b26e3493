"""App factory for multi-worker uvicorn: each worker opens the project named by MLOOP_PROJECT_DIR."""

from __future__ import annotations

import os

from fastapi import FastAPI

from mloop.project import Project
from mloop.serving.http.app import create_app


def app() -> FastAPI:
    return create_app(
        Project.open(os.environ.get("MLOOP_PROJECT_DIR", "."), configure_logging=True), serving_process=True
    )
