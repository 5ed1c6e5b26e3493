"""``mloop serve`` says where it listens, what it serves and when it is ready; a port in use is one line."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from mloop import Project
from tests.cli.conftest import Run
from tests.serving.http.running import free_port, mloop_serve


def test_a_port_in_use_is_one_line_and_exit_code_1(cli: Run) -> None:
    port = free_port()
    with socket.socket() as other:  # another server on all interfaces holds the port
        other.bind(("0.0.0.0", port))
        other.listen()
        result = cli("serve", "--port", str(port))
    assert result.code == 1
    assert result.err.strip() == f"error: port {port} is in use; pick another with --port"
    assert "Traceback" not in result.out + result.err


def test_a_host_that_is_not_this_machine_says_so(cli: Run) -> None:
    result = cli("serve", "--host", "192.0.2.1", "--port", str(free_port()))  # TEST-NET-1: never local
    assert result.code == 1 and "cannot listen on 192.0.2.1" in result.err and "--host" in result.err


@pytest.mark.slow
def test_serve_prints_its_url_routes_and_links_then_ready(sqlite_project: Project) -> None:
    with mloop_serve(Path(sqlite_project.root)) as server:
        printed = "".join(server.stdout)
        assert server.url in printed
        for shown in ("/v1/endpoints", "/v2/models/ENDPOINT/infer", "/v1/features/online", "/v1/feedback",
                      f"{server.url}/docs", f"{server.url}/metrics", f"{server.url}/v2/health/ready"):  # fmt: skip
            assert shown in printed
        assert "✓ ready: answering on " + server.url in printed.splitlines()[-1], printed
        # ready means answering, and the links printed answer
        assert httpx.get(f"{server.url}/docs").status_code == 200
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert f"{server.url}/ui" in printed and httpx.get(f"{server.url}/ui/").status_code == 200


@pytest.mark.slow
def test_mloop_ui_serves_the_dashboard_alone(sqlite_project: Project) -> None:
    with mloop_serve(Path(sqlite_project.root), command="ui") as server:
        assert f"{server.url}/ui" in "".join(server.stdout)
        page = httpx.get(f"{server.url}/ui/")
        assert page.status_code == 200 and "Endpoints" in page.text
        assert httpx.get(f"{server.url}/ui/static/htmx.min.js").status_code == 200
        assert httpx.get(f"{server.url}/v1/endpoints/x/predict").status_code == 404  # no inference here
