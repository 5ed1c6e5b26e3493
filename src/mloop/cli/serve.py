"""``mloop serve``: the API on uvicorn, one process or ``--workers N``; says where and what it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from mloop.cli import _output as out
from mloop.cli import _state


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8700, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    loop: bool = typer.Option(
        False, "--loop", help="Also run the continuous-training controller (loop.policies)."
    ),
) -> None:
    """Serve the HTTP API: deployed endpoints (/v1/endpoints/NAME/predict, the Open Inference Protocol under
    /v2), the feature server (/v1/features/*), /metrics, health, /docs.

    Examples:

      $ mloop serve --port 8700
      $ mloop serve --workers 4 --loop
    """
    import contextlib
    import faulthandler
    import os

    from mloop.serving.announce import announce
    from mloop.serving.http import server

    # A crash in native code (a segfault in a model's library) leaves its Python traceback on stderr
    # instead of a silent exit; the workers inherit the variable below.
    with contextlib.suppress(AttributeError, ValueError, OSError):  # a stderr without a file descriptor
        faulthandler.enable()
    sock = server.bind(host, port)  # first: a port in use fails here, before anything starts
    project = _state.project()
    announce(project, sock, tls=ssl_certfile is not None, workers=workers)
    root = str(project.root)
    _banner(project, server.urls(host, port, tls=ssl_certfile is not None), workers, loop)
    if loop:
        from mloop.loop.controller import LoopController
        from mloop.project import Project

        # Its own connections; it trains in a child process, so serving keeps its latency.
        LoopController.for_project(Project.open(root, configure_logging=True)).start()
    app = None
    if workers > 1:
        import shutil

        os.environ["MLOOP_PROJECT_DIR"] = root
        os.environ["PYTHONFAULTHANDLER"] = "1"
        # Workers share their Prometheus samples through files; stale ones from a last run would add up.
        metrics_dir = Path(root) / ".mloop" / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    else:
        from mloop.serving.http.app import create_app

        app = create_app(project, serving_process=True)
    url = server.urls(host, port, tls=ssl_certfile is not None)[0]
    server.run(app, sock, workers=workers, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
               on_ready=lambda: out.success(f"ready: answering on {url} (Ctrl+C stops)"))  # fmt: skip


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8701, "--port", help="TCP port."),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
) -> None:
    """Serve only the web dashboard at /ui (no endpoints, no prediction log); `mloop serve` serves it too.

    Examples:

      $ mloop ui                       # http://127.0.0.1:8701/ui
      $ mloop ui --host 0.0.0.0 --port 8080
    """
    from mloop.serving.announce import announce
    from mloop.serving.http import server
    from mloop.ui import create_ui_app
    from mloop.ui.app import warm

    sock = server.bind(host, port)
    project = _state.project()
    warm(project)
    announce(project, sock, tls=ssl_certfile is not None, kind="ui")
    url = server.urls(host, port, tls=ssl_certfile is not None)[0]
    out.fields(f"mloop ui · project {escape(project.name)}", {"dashboard": f"{url}/ui"})
    server.run(create_ui_app(project), sock, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
               on_ready=lambda: out.success(f"ready: the dashboard answers on {url}/ui (Ctrl+C stops)"))  # fmt: skip


def _banner(project: Any, urls: list[str], workers: int, loop: bool) -> None:
    base = urls[0]
    deployed = project.deployments.list()
    endpoints = [
        f"{escape(d.endpoint)}: {escape(d.model)} "
        + ", ".join(f"v{r.version} {r.weight:.0%}" for r in d.routes)
        for d in deployed
    ] or ["none yet: mloop deploy ENDPOINT MODEL (served once deployed)"]
    endpoints += [  # pipelines: in mloop.yaml, answered on the same predict route
        f"{escape(name)}: pipeline " + " → ".join(escape(s.endpoint or s.name) for s in pipeline.stages)
        for name, pipeline in project.settings.pipelines.items()
    ]
    items = {
        "url": " · ".join(urls),
        "endpoints": "\n".join(endpoints),
        "predict": "POST /v1/endpoints/ENDPOINT/predict",
        "open inference": "POST /v2/models/ENDPOINT/infer (KServe v2)",
        "features": "POST /v1/features/online · POST /v1/features/push",
        "feedback": "POST /v1/feedback",
        "monitoring": "GET /v1/monitoring/ENDPOINT/drift, …/report, … (see the docs)",
        "dashboard": f"{base}/ui",
        "docs": f"{base}/docs · /redoc",
        "metrics": f"{base}/metrics",
        "health": f"{base}/v2/health/ready",
    }
    if loop:
        items["loop"] = "the continuous-training controller runs in this process (loop.policies)"
    plural = "es" if workers > 1 else ""
    out.fields(f"mloop serve · project {escape(project.name)} · {workers} process{plural}", items)
