"""Running the app for ``mloop serve``: bind the port, serve on uvicorn, say when it answers.

The listening socket is bound here, before uvicorn starts, and handed to it: a port in use is one clear
error instead of uvicorn's log line and exit, and no other process can take the port between that check
and the server starting. With ``workers`` above one, uvicorn's supervisor passes the same socket to each
worker process. ``on_ready`` is called once the server answers its liveness check, from a thread, so the
same signal works for one process and for several.

>>> sock = bind("127.0.0.1", 8700)        # raises PortInUse if another server holds it
>>> run(app, sock, on_ready=lambda: print("ready"))
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mloop.errors import MloopError

LIVE = "/v2/health/live"
FACTORY = "mloop.serving.http.factory:app"  # what each worker process imports (see factory.py)
READY_TIMEOUT = 300.0  # seconds to wait for the first answer (workers load every deployed model first)


class PortInUse(MloopError):
    """Another process listens on the port ``mloop serve`` was asked to use."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, not yet listening; uvicorn listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is in use; pick another with --port") from None
        raise MloopError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --host or --port"
        ) from None
    sock.set_inheritable(True)  # worker processes receive it
    return sock


def urls(host: str, port: int, *, tls: bool = False) -> list[str]:
    """Where clients reach a server listening on ``host:port``: the address itself, or loopback for a
    wildcard address (then also this machine's name)."""
    scheme = "https" if tls else "http"
    if host in ("0.0.0.0", "::", ""):
        return [f"{scheme}://{_loopback(host)}:{port}", f"{scheme}://{socket.gethostname()}:{port}"]
    return [f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"]


def run(
    app: Any,
    sock: socket.socket,
    *,
    workers: int = 1,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` (with ``workers`` > 1: :data:`FACTORY` in each worker) on ``sock`` until stopped."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(FACTORY if workers > 1 else app, factory=workers > 1, workers=workers,
                            log_level="warning", ssl_certfile=_str(ssl_certfile),
                            ssl_keyfile=_str(ssl_keyfile))  # fmt: skip
    if on_ready is not None:
        host, port = sock.getsockname()[:2]
        watch = threading.Thread(target=_when_live, args=(host, port, ssl_certfile is not None, on_ready),
                                 name="mloop-serve-ready", daemon=True)  # fmt: skip
        watch.start()
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise RuntimeError("the server did not start; the log above says why")


def _when_live(host: str, port: int, tls: bool, on_ready: Callable[[], None]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(_loopback(host), port, tls):
            on_ready()
            return
        time.sleep(0.1)


def _answers(host: str, port: int, tls: bool) -> bool:
    if tls:  # our own certificate, checked by whoever gave it; here only "does it answer"
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=5, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", LIVE)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _loopback(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
