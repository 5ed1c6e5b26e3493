from __future__ import annotations

import pytest

from mloop import Project
from tests.cli.conftest import Run
from tests.models.cases import case


@pytest.fixture
def registered(cli: Run) -> Run:
    clf = case("lgbm-classifier")
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        for _ in range(3):
            project.models.register("fraud", clf.model, input_example=clf.frame)
        project.models.set_alias("fraud", "champion", 2)
    return cli


def test_deploy_canary_ab_rollback_undeploy(registered: Run) -> None:
    first = registered("deploy", "fraud", "fraud", "--alias", "champion")
    assert first.code == 0 and "revision 1" in first.out and "v2 100%" in first.out
    canary = registered("deploy", "fraud", "fraud", "--version", "3", "--canary", "0.1", "--json").json()
    assert canary["routes"] == [{"version": 2, "weight": 0.9}, {"version": 3, "weight": 0.1}]
    ab = registered("deploy", "fraud", "fraud", "--ab", "v1=0.5", "--ab", "v3=0.5", "--shadow", "2", "--json")
    assert [r["version"] for r in ab.json()["routes"]] == [1, 3] and ab.json()["shadow"] == [2]
    back = registered("rollback", "fraud", "--json").json()
    assert (back["revision"], back["kind"], len(back["routes"])) == (4, "rollback", 2)
    listed = registered("deployments", "list", "--json").json()
    assert [(d["endpoint"], d["revision"]) for d in listed] == [("fraud", 4)]
    history = registered("deployments", "history", "fraud")
    assert history.code == 0 and "rollback" in history.out
    shown = registered("deployments", "show", "fraud", "1")
    assert shown.code == 0 and "champion" in shown.out
    assert registered("undeploy", "fraud").code == 0
    assert registered("deployments", "list", "--json").json() == []
    assert len(registered("deployments", "list", "--all", "--json").json()) == 1


def test_bad_deploys_say_how_to_fix_them(registered: Run) -> None:
    bad = registered("deploy", "fraud", "fraud", "--ab", "v1")
    assert bad.code == 1 and "VERSION=SHARE" in bad.err
    none = registered("deploy", "fraud", "fraud")
    assert none.code == 1 and "version=N or alias" in none.err
    missing = registered("deployments", "show", "nowhere")
    assert missing.code != 0 and "mloop deploy nowhere" in missing.err


def test_deploy_with_a_timeout(registered: Run) -> None:
    deployed = registered("deploy", "fraud", "fraud", "-v", "2", "--timeout-ms", "250", "--json").json()
    assert deployed["options"] == {"timeout_ms": 250.0}
    bad = registered("deploy", "fraud", "fraud", "-v", "2", "--timeout-ms", "0")
    assert bad.code != 0 and "timeout_ms must be a number from 1 to 600000" in bad.err
