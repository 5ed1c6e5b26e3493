"""A real ``mloop serve`` for tests that need one: a subprocess on a free loopback port, stopped after."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)  # the lines printed up to "ready"


@contextmanager
def mloop_serve(root: Path, *args: str, timeout: float = 120, command: str = "serve") -> Iterator[Server]:
    """``mloop -C root serve --port P ARGS`` (or another serving ``command``: ``ui``), once it has printed
    that it is ready."""
    port = free_port()
    mloop = Path(sys.executable).parent / "mloop"
    env = {k: v for k, v in os.environ.items() if k != "MLOOP_PROJECT_DIR"} | {"NO_COLOR": "1"}
    argv = [str(mloop), "-C", str(root), command, "--port", str(port), *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_forward, args=(process, lines), daemon=True).start()
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + timeout
        while not any(line.startswith("✓ ready") for line in server.stdout):
            assert process.poll() is None or not lines.empty(), "mloop serve exited:\n" + "".join(
                server.stdout
            )
            assert time.monotonic() < deadline, "mloop serve did not say ready:\n" + "".join(server.stdout)
            with suppress(queue.Empty):
                server.stdout.append(lines.get(timeout=0.5))
        yield server
    finally:
        process.terminate()
        process.wait(20)


def _forward(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    for line in process.stdout or ():
        lines.put(line)
