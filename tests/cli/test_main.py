from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Run


def test_init_writes_a_config_that_opens(cli: Run) -> None:
    result = cli("init")
    assert result.code == 0
    config = yaml.safe_load((cli.root / "mloop.yaml").read_text())  # type: ignore[attr-defined]
    assert config["metadata_url"] == "sqlite:///.mloop/mloop.db"
    again = cli("init")
    assert again.code == 1 and "--force" in again.err
    assert cli("init", "--force").code == 0


def test_info_json_names_the_stores_and_the_actor(cli: Run) -> None:
    info = cli("info", "--json").json()
    assert info["actor"] == "local-admin" and info["roles"] == ["admin"]
    assert info["metadata"].startswith("sqlite:///") and info["metadata"].endswith(".mloop/mloop.db")


def test_user_errors_exit_1_with_a_message_and_no_traceback(cli: Run) -> None:
    result = cli("data", "schema", "nope")
    assert result.code == 1
    assert "No dataset named 'nope'" in result.err and "mloop data ingest" in result.err
    assert "Traceback" not in result.err


def test_usage_errors_exit_1(cli: Run) -> None:
    result = cli("data", "ingest")
    assert result.code == 1
    assert "Missing argument" in result.err


def test_bad_config_is_a_user_error(cli: Run) -> None:
    (cli.root / "mloop.yaml").write_text("metadata_uri: x\n")  # type: ignore[attr-defined]
    result = cli("info")
    assert result.code == 1
    assert "unknown setting(s) metadata_uri" in result.err


def test_internal_errors_exit_2(cli: Run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mloop.data.service import DataService

    def boom(self, name):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(DataService, "schema", boom)
    result = cli("data", "schema", "x")
    assert result.code == 2
    assert "internal error" in result.err


@pytest.mark.parametrize(
    "command",
    [
        ("data", "list"),
        ("loop", "timeline", "fraud"),
        ("runs", "list"),
        ("info",),
        ("data", "validate", "x.csv", "-d", "x"),
    ],
)
def test_read_commands_refuse_outside_a_project_and_create_nothing(
    cli: Run, command: tuple[str, ...]
) -> None:
    empty = cli.outside  # type: ignore[attr-defined]
    result = cli(*command, where=empty)
    assert result.code == 1 and result.out == ""
    assert f"no mloop project here (looked for mloop.yaml / .mloop in {empty} and its parents)" in result.err
    assert "run `mloop init` or pass -C DIR" in result.err
    assert list(empty.iterdir()) == []


def test_a_write_command_that_says_so_creates_the_project(cli: Run) -> None:
    empty = cli.outside  # type: ignore[attr-defined]
    (empty / "t.csv").write_text("id,ts,v\n1,2026-01-01T00:00:00Z,1.5\n")
    assert cli("data", "ingest", str(empty / "t.csv"), "-d", "t", where=empty).code == 0
    assert (empty / ".mloop").is_dir()
    assert [d["name"] for d in cli("data", "list", "--json", where=empty).json()] == ["t"]


def test_commands_find_the_project_from_a_subfolder(cli: Run) -> None:
    root = cli.root  # type: ignore[attr-defined]
    (root / "t.csv").write_text("id,ts,v\n1,2026-01-01T00:00:00Z,1.5\n")
    assert cli("data", "ingest", str(root / "t.csv"), "-d", "t").code == 0
    (root / "src" / "pipelines").mkdir(parents=True)
    listed = cli("data", "list", "--json", where=root / "src" / "pipelines")
    assert [d["name"] for d in listed.json()] == ["t"]
    assert not (root / "src" / "pipelines" / ".mloop").exists()


def test_no_log_lines_on_stderr_unless_asked(cli: Run) -> None:
    root = cli.root  # type: ignore[attr-defined]
    (root / "t.csv").write_text("id,ts,v\n1,2026-01-01T00:00:00Z,1.5\n")
    quiet = cli("data", "ingest", str(root / "t.csv"), "-d", "t", "--json")
    assert quiet.code == 0 and quiet.err == ""
    (root / "u.csv").write_text("id,ts,v\n1,2026-01-01T00:00:00Z,2.5\n")
    loud = cli("--verbose", "data", "ingest", str(root / "u.csv"), "-d", "t", "--json")
    assert loud.code == 0 and "data.ingest" in loud.err


@pytest.mark.slow
def test_console_script_logs_json_lines_when_not_a_terminal(tmp_path: Path) -> None:
    """Piped output with --verbose: no colours, and the mutation log line is JSON with the actor."""
    mloop = Path(sys.executable).parent / "mloop"
    csv = tmp_path / "t.csv"
    csv.write_text("id,ts,v\n1,2026-01-01T00:00:00Z,1.5\n")
    done = subprocess.run(
        [str(mloop), "-C", str(tmp_path), "--verbose", "data", "ingest", str(csv), "--dataset", "t", "--json"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_pythonpath()},
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["rows_accepted"] == 1
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    ingest = [line for line in lines if line.get("msg", "").startswith("data.ingest")]
    assert ingest and ingest[0]["actor"] == "local-admin" and ingest[0]["level"] == "info"
    assert "\x1b[" not in done.stdout + done.stderr


@pytest.mark.slow
def test_serve_answers_health_and_metrics(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mloop = Path(sys.executable).parent / "mloop"
    (tmp_path / ".mloop").mkdir()  # a project: serve, like every read command, refuses outside one
    server = subprocess.Popen([str(mloop), "-C", str(tmp_path), "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v2/health/ready", timeout=2
                ) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "mloop serve did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"mloop_online_stale_values_total" in response.read()
    finally:
        server.terminate()
        server.wait(15)


def _pythonpath() -> dict[str, str]:
    """The PYTHONPATH the tests run with (a worktree's src/ ahead of the installed package), if any."""
    import os

    value = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.path.abspath(value)} if value else {}


def test_demo_names_its_cases_when_given_an_unknown_one(cli: Run, tmp_path: Path) -> None:
    result = cli("demo", "--case", "retail", "--dir", str(tmp_path / "demo"))
    assert result.code == 1 and "Traceback" not in result.err
    assert "'retail'" in result.err and all(case in result.err for case in ("fraud", "recsys", "agriculture"))
    assert not (tmp_path / "demo").exists()  # nothing made for a case that does not exist
