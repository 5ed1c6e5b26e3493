"""Pages of deployments for the dashboard's tables, and which live endpoints serve a model version."""

from __future__ import annotations

import pytest

from mloop import Project
from mloop.errors import NotFound
from tests.models.cases import Case, case


@pytest.fixture
def clf() -> Case:
    return case("lgbm-classifier")


def test_revisions_and_endpoints_page_in_the_database(project: Project, clf: Case) -> None:
    for _ in range(2):
        project.models.register("m", clf.model)
    for endpoint in ("c", "a", "b"):
        project.deploy(endpoint, "m", version=1)
    project.deploy("a", "m", version=2, canary=0.2)
    project.deploy("a", "m", version=2)
    project.deployments.undeploy("b")
    assert project.deployments.count() == 3
    assert [d.endpoint for d in project.deployments.list(include_inactive=True, offset=1, limit=2)] == [
        "b",
        "c",
    ]
    assert [d.endpoint for d in project.deployments.list()] == ["a", "c"]  # b undeployed
    newest = project.deployments.history("a", offset=0, limit=2, newest_first=True)
    assert [d.revision for d in newest] == [3, 2]
    assert project.deployments.history("a", offset=5, limit=2) == []
    with pytest.raises(NotFound):
        project.deployments.history("nowhere", limit=2)
    assert [d.endpoint for d in project.deployments.serving("m", 2)] == ["a"]
    assert [d.endpoint for d in project.deployments.serving("m", 1)] == ["c"]  # b serves nothing now
    assert [d.endpoint for d in project.deployments.serving("m")] == ["a", "c"]
