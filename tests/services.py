"""Real servers for the tests, started from Debian's packages on free loopback ports.

Where a server cannot be found the tests that need it skip with the reason, except under
``MLOOP_REQUIRE_SERVICES=1`` (set by CI), where they fail instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def required() -> bool:
    return os.environ.get("MLOOP_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"{reason} (MLOOP_REQUIRE_SERVICES=1, so this may not skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A throwaway PostgreSQL cluster; ``database()`` hands out a fresh, empty database."""

    def __init__(self) -> None:
        bindir = _postgres_bin()
        if bindir is None:
            unavailable("PostgreSQL is not installed (apt-get install postgresql)")
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="mloop-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None  # postgres refuses to run as root
        if self.user:
            shutil.chown(self.root, self.user, self.user)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, user=self.user, cwd=self.root, capture_output=True, check=True)

    def start(self) -> PostgresServer:
        data = self.root / "data"
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        except subprocess.CalledProcessError as exc:
            unavailable(f"initdb failed: {exc.stderr.decode(errors='replace')[-500:]}")
        return self.up()

    def up(self) -> PostgresServer:
        """Start the server on the cluster made by :meth:`start` (again, after :meth:`down`)."""
        data = self.root / "data"
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200",
            ],
            user=self.user, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                unavailable(f"postgres exited at start: {err[-500:]}")
            with contextlib.suppress(Exception), self.connect("postgres"):
                return self
            time.sleep(0.1)
        unavailable("postgres did not accept connections within 30 s")
        return self

    def down(self) -> None:
        """Stop the server (a fast shutdown: open connections are cut), keeping its data for :meth:`up`."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT
            self.process.wait(15)

    def connect(self, dbname: str):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
        finally:
            with self.connect("postgres") as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throwaway Redis server (no persistence) on a free loopback port; ``url(db)`` names a database."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("Redis is not installed (apt-get install redis-server)")
        assert binary is not None
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="mloop-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--databases", "16",
                "--logfile", str(self.root / "redis.log"),
            ],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.root / "redis.log"
                err = log.read_text(errors="replace") if log.exists() else ""
                unavailable(f"redis-server exited at start: {err[-500:]}")
            with contextlib.suppress(OSError):
                if self.command("PING") == b"+PONG\r\n":
                    return self
            time.sleep(0.05)
        unavailable("redis-server did not answer PING within 30 s")
        return self

    def command(self, *args: str, db: int = 0) -> bytes:
        """Send one command (in database ``db``) without a client library; returns the raw reply."""

        def encode(parts: tuple[str, ...]) -> bytes:
            out = f"*{len(parts)}\r\n".encode()
            for part in parts:
                data = part.encode()
                out += b"$%d\r\n%s\r\n" % (len(data), data)
            return out

        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            if db:
                sock.sendall(encode(("SELECT", str(db))))
                sock.recv(64)
            sock.sendall(encode(args))
            return sock.recv(65536)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server; ``remove=False`` keeps its folder (and a ``SAVE``d dump), so that :meth:`start`
        runs it again on the same port with the same data: an outage, as chaos tests make one."""
        if self.process and self.process.poll() is None:
            terminate(self.process)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the server has not exited within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
