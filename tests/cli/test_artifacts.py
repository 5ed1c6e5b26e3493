"""``mloop artifacts verify`` reports the temp file a killed upload leaves; ``clean`` removes old ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Run

# Starts an upload into the project's artifact store that hangs after its first chunk, says so, waits.
UPLOAD = """
import sys, time
from mloop import Project

class Hanging:
    sent = False
    def read(self, size=-1):
        if not self.sent:
            self.sent = True
            return b"x" * (1 << 20)
        print("uploading", flush=True)
        time.sleep(600)

project = Project.open(sys.argv[1], env={})
project.artifacts.backend.put("sha256/ab/" + "ab" * 32, Hanging())
"""


@pytest.mark.slow
def test_a_killed_upload_leaves_a_temp_file_that_verify_reports_and_clean_removes(cli: Run) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-c", UPLOAD, str(cli.root)], stdout=subprocess.PIPE, env=env,  # type: ignore[attr-defined]
                          text=True) as upload:  # fmt: skip
        assert upload.stdout is not None and upload.stdout.readline() == "uploading\n"
        upload.send_signal(signal.SIGKILL)
    assert upload.returncode == -signal.SIGKILL

    report = cli("artifacts", "verify", "--json")
    assert report.code == 0  # a temp file is not a corrupt blob
    (temp,) = report.json()["temp_files"]
    assert temp["path"].startswith("sha256/ab/.") and temp["path"].endswith(".tmp")
    assert temp["size"] == 1 << 20 and 0 <= temp["age_seconds"] < 600
    shown = cli("artifacts", "verify")
    assert temp["path"] in shown.err and "mloop artifacts clean" in shown.err

    path = cli.root / ".mloop" / "artifacts" / temp["path"]  # type: ignore[attr-defined]
    assert cli("artifacts", "clean", "--json").json() == {"removed": [], "bytes": 0}  # young: left alone
    assert path.exists()
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    assert cli("artifacts", "clean", "--json").json() == {"removed": [temp["path"]], "bytes": 1 << 20}
    assert not path.exists()
    assert cli("artifacts", "verify", "--json").json()["temp_files"] == []


def test_clean_refuses_a_bad_age(cli: Run, tmp_path: Path) -> None:
    result = cli("artifacts", "clean", "--older-than", "soon")
    assert result.code != 0 and "--older-than 'soon' does not parse" in result.err
