"""``mloop serve``: the API on uvicorn, one process or ``--workers N``."""

from __future__ import annotations

from pathlib import Path

import typer

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
    import uvicorn

    root = str(_state.path().resolve())
    options = {"host": host, "port": port, "log_level": "warning",
               "ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
               "ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None}  # fmt: skip
    if loop:
        from mloop.loop.controller import LoopController
        from mloop.project import Project

        # Its own connections; it trains in a child process, so serving keeps its latency.
        LoopController.for_project(Project.open(root, configure_logging=True)).start()
    if workers > 1:
        import os
        import shutil

        os.environ["MLOOP_PROJECT_DIR"] = root
        # Workers share their Prometheus samples through files; stale ones from a last run would add up.
        metrics_dir = Path(root) / ".mloop" / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run("mloop.serving.http.factory:app", workers=workers, factory=True, **options)  # type: ignore[arg-type]
    else:
        from mloop.serving.http.app import create_app

        uvicorn.run(create_app(_state.project()), **options)  # type: ignore[arg-type]
