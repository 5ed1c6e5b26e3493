"""Projects and clients for the dashboard's tests.

``ui_project``: a fraud project with two trained versions and the endpoint ``fraud`` deployed, read by
the page tests (module scope: tests that change it undo what they change or use ``strict``). ``strict``:
the same project with ``local_admin`` off, the way a shared server runs, and a key per role in
``strict.keys``; ``login(client, key)`` gives a client the session cookie a browser would get.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.ui import create_ui_app
from tests.training.fraud import setup

ROLES = ("admin", "data_engineer", "data_scientist", "ml_engineer", "mlops", "auditor")


@pytest.fixture(scope="session")
def ui_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the project ``ui_project`` copies, built once per session (training two versions took
    each of the dozen page modules a few seconds). Read it, don't change it."""
    root = tmp_path_factory.mktemp("ui-template") / "ui"
    root.mkdir()
    with Project.open(root, env={}) as project:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        pipeline, _ = setup(project, root, rows=3_000, start=start)
        pipeline.run(project)
        pipeline.run(project, params={"num_leaves": 7})
        project.deploy("fraud", "fraud", version=1)
    return root


@pytest.fixture(scope="module")
def ui_project(ui_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A module's own copy of ``ui_template`` (the same folder name, so the same project name)."""
    root = tmp_path_factory.mktemp("ui") / ui_template.name
    shutil.copytree(ui_template, root)
    project = Project.open(root, env={})
    yield project
    project.close()


@pytest.fixture
def ui(ui_project: Project) -> Iterator[TestClient]:
    """The dashboard alone (``mloop ui``) on ``ui_project``, as the local admin."""
    with TestClient(create_ui_app(ui_project), raise_server_exceptions=True) as client:
        yield client


@dataclass
class Strict:
    project: Project  # opened as the server opens it: local_admin off
    keys: dict[str, str] = field(default_factory=dict)  # role -> token of a user with only that role

    def client(self, role: str | None = None) -> TestClient:
        """A dashboard client, logged in as the user holding ``role`` (None: not logged in)."""
        client = TestClient(create_ui_app(self.project), raise_server_exceptions=True, follow_redirects=False)
        if role is not None:
            login(client, self.keys[role])
        return client


@pytest.fixture(scope="module")
def strict(ui_project: Project) -> Iterator[Strict]:
    keys = {}
    for role in ROLES:
        name = f"ui-{role}"
        ui_project.users.add(name, [role])
        keys[role] = ui_project.keys.issue(name).token
    opened = Project.open(ui_project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=ui_project.actor)
    try:
        yield Strict(opened, keys)
    finally:
        opened.close()


def csrf(client: TestClient, path: str = "/ui/login") -> str:
    """The CSRF token of the form on ``path`` (the page also sets the matching cookie)."""
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
    return found.group(1)


def login(client: TestClient, key: str) -> None:
    answer = client.post("/ui/login", data={"api_key": key, "csrf": csrf(client), "next": "/ui/"},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text[:500]
