"""A real local Ray cluster for the tests: a head node and one worker node, separate processes on 127.0.0.1.

Each node is a ``ray start --block`` process in a session of its own, with its own temp folder, so
stopping it kills exactly its processes (raylet, workers, the head's GCS) and never another session's
Ray (no ``ray stop``). Both nodes import this checkout's ``src`` and tests (``PYTHONPATH``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.services import free_port, unavailable

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 90
FATAL = re.compile(r"\[\S+ \S+ [CF] ")  # a Ray log line of level Critical or Fatal
OBJECT_STORE = 300 * 2**20  # per node; Ray's default is 30% of the memory of a shared machine


class RayCluster:
    """``start()`` the head and the worker; ``address`` is the GCS address, ``executor`` the
    ``compute.executor`` value that joins it; ``kill_worker()`` / ``start_worker()`` for fault tests."""

    def __init__(self, object_store: int = OBJECT_STORE) -> None:
        ray_bin = Path(sys.executable).with_name("ray")
        if not ray_bin.exists():
            unavailable("ray is not installed (pip install 'mloop[ray]')")
        self.ray_bin = str(ray_bin)
        self.root = Path(tempfile.mkdtemp(prefix="mloop-ray-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.object_store = object_store
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
            # Loopback only: no token, whatever ~/.ray/auth_token a local ray.init() left behind.
            "RAY_AUTH_MODE": "disabled",
            # A killed node refuses the GCS's health check at once, so it is declared dead after five
            # checks a second apart (~5 s instead of ~30 s) and its tasks are retried sooner. A live node
            # slowed by a busy machine gets 10 s per answer: with a 1 s timeout, a CI run lost its head
            # node under load, and the driver (this pytest process) exited with it, mid-suite.
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "10000",
            "RAY_health_check_failure_threshold": "5",
        }

    @property
    def executor(self) -> str:
        return f"ray:{self.address}"

    def start(self) -> RayCluster:
        """Start the head, then the worker as soon as the head's GCS port answers; :meth:`wait_for_nodes`
        (from a connected driver) waits until both have joined."""
        self.head = self._node(
            "head", "--head", f"--port={self.port}", "--num-cpus=1", "--include-dashboard=false",
            "--disable-usage-stats", f"--temp-dir={self.root / 'head'}", "--node-ip-address=127.0.0.1",
            f"--dashboard-agent-listen-port={free_port()}", f"--object-store-memory={self.object_store}",
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while not _listening(self.port):
            if self.head.poll() is not None or time.monotonic() > deadline:
                self._fail("the head did not start")
            time.sleep(0.2)
        self.start_worker(wait=False)
        return self

    def start_worker(self, *, wait: bool = True) -> None:
        self.worker = self._node(
            "worker", f"--address={self.address}", "--num-cpus=1", "--node-ip-address=127.0.0.1",
            "--disable-usage-stats", f"--dashboard-agent-listen-port={free_port()}",
            f"--object-store-memory={self.object_store}",
        )  # fmt: skip
        if wait:
            self.wait_for_nodes(2)

    def wait_for_nodes(self, count: int) -> None:
        """Wait until ``count`` nodes are alive; this process must be connected (ray.init) to the head."""
        import ray

        deadline = time.monotonic() + START_SECONDS
        while sum(1 for node in ray.nodes() if node["Alive"]) < count:
            for node in (self.head, self.worker):
                if node is not None and node.poll() is not None:
                    self._fail("a Ray node exited at start")
            if time.monotonic() > deadline:
                self._fail(f"the cluster did not reach {count} node(s) in {START_SECONDS} s")
            time.sleep(0.5)

    def kill_worker(self) -> None:
        """Kill the worker node at once (SIGKILL to its raylet and every worker process), as a lost host."""
        if self.worker is not None:
            _kill(self.worker)
            self.worker = None

    def stop(self) -> None:
        for node in (self.worker, self.head):
            if node is not None:
                _kill(node)
        self.worker = self.head = None
        shutil.rmtree(self.root, ignore_errors=True)

    def _node(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the node's lifetime, closed by the OS
        return subprocess.Popen(
            [self.ray_bin, "start", "--block", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def _fail(self, what: str) -> None:
        logs = {p.name: p.read_text(errors="replace")[-2000:] for p in self.root.glob("*.log")}
        self.stop()
        raise RuntimeError(f"{what}; the nodes' logs: {logs}")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _kill(node: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # its own session: the raylet and the workers it started
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=30)


def report(since_seconds: float = 3600) -> None:
    """Print why a Ray driver died: a driver that Ray aborts (a failed internal check, a lost raylet) exits
    at once, with no pytest report and no fixture teardown, so its cluster's folder is left behind. Run by
    ``make test`` when the Ray tests fail."""
    for folder in Path(tempfile.gettempdir()).glob("mloop-ray-*"):
        if time.time() - folder.stat().st_mtime > since_seconds:
            continue
        for log in sorted(folder.glob("head/session_2*/logs/python-core-driver-*.log")):
            fatal = [line for line in log.read_text(errors="replace").splitlines() if FATAL.match(line)]
            if fatal:
                print(f"{log}:", *fatal[-5:], sep="\n  ")
        for name in ("head.log", "worker.log"):
            lines = (
                (folder / name).read_text(errors="replace").splitlines() if (folder / name).exists() else []
            )
            print(f"{folder / name} (last lines):", *lines[-5:], sep="\n  ")


if __name__ == "__main__":
    report()
