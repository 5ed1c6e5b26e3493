from __future__ import annotations

import pytest

from mloop import Project
from tests.cli.conftest import Result, Run
from tests.models.cases import case


@pytest.fixture
def registered(cli: Run) -> Run:
    """Two versions of 'fraud' registered from Python, as a training script would."""
    clf = case("lgbm-classifier")
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        project.models.register("fraud", clf.model, input_example=clf.frame, description="Card fraud scores",
                                card={"slices": {"country=MT": {"rows": 12, "auc": 0.5}}})  # fmt: skip
        project.models.register("fraud", clf.model, input_example=clf.frame)
    return cli


def test_list_and_show(registered: Run) -> None:
    listed = registered("models", "list", "--json")
    assert listed.code == 0
    assert [(m["name"], m["latest_version"], m["versions"]) for m in listed.json()] == [("fraud", 2, 2)]
    table = registered("models", "list")
    assert "fraud" in table.out and "latest" in table.out
    versions = registered("models", "show", "fraud", "--json").json()
    assert [v["version"] for v in versions] == [1, 2]
    one = registered("models", "show", "fraud", "1", "--json").json()
    assert (one["version"], one["flavour"], one["description"]) == (1, "lightgbm", "Card fraud scores")
    assert [c["name"] for c in one["signature"]["inputs"]] == ["amount", "age_days", "score", "ratio"]
    detail = registered("models", "show", "fraud", "1")
    assert "lightgbm.sklearn.LGBMClassifier" in detail.out and "amount:float64" in detail.out


def test_card_prints_markdown_or_json(registered: Run) -> None:
    text = registered("models", "card", "fraud", "1")
    assert text.code == 0
    assert text.out.startswith("# Model card: fraud version 1")
    assert "## Limitations" in text.out and "Slice country=MT has only 12 rows" in text.out
    data = registered("models", "card", "fraud", "1", "--json").json()
    assert data["intended_use"] == "Card fraud scores"
    assert [item["kind"] for item in data["limitations"]] == ["metrics_missing", "small_slice"]


def test_alias_promote_and_history(registered: Run) -> None:
    assert registered("models", "alias", "fraud", "champion", "1").code == 0
    assert registered("models", "alias", "fraud", "champion", "2").code == 0
    promoted = registered("models", "promote", "fraud", "2", "--to", "production")
    assert promoted.code == 0 and "fraud version 2 is now in production" in promoted.out
    spans = registered("models", "history", "fraud", "--json").json()
    assert [(s["alias"], s["version"]) for s in spans["aliases"]] == [("champion", 1), ("champion", 2)]
    assert [(s["stage"], s["version"]) for s in spans["stages"]] == [("production", 2)]
    between = spans["aliases"][0]["start"]
    at = registered("models", "history", "fraud", "--at", between, "--json").json()
    assert at["aliases"] == {"champion": 1} and at["stages"] == {}
    table = registered("models", "history", "fraud")
    assert "champion" in table.out and "production" in table.out
    assert registered("models", "alias", "fraud", "champion", "--delete").code == 0
    assert registered("models", "show", "fraud", "2", "--json").json()["aliases"] == []


def said(result: Result) -> str:
    """stderr with Rich's line wrapping undone."""
    return " ".join(result.err.split())


def test_errors_exit_1_with_the_fix(registered: Run) -> None:
    missing = registered("models", "alias", "fraud", "champion", "--delete")
    assert missing.code == 1 and "has no alias 'champion'; aliases: none" in said(missing)
    no_version = registered("models", "alias", "fraud", "champion")
    assert no_version.code == 1 and "mloop models alias fraud champion VERSION" in said(no_version)
    bad_time = registered("models", "history", "fraud", "--at", "yesterday")
    assert bad_time.code == 1 and "is not a time" in said(bad_time)
    unknown = registered("models", "show", "nope")
    assert unknown.code == 1 and "models: fraud" in said(unknown)


def test_approval_needs_a_second_mlops_user(registered: Run) -> None:
    with Project.open(registered.root, env={}) as project:  # type: ignore[attr-defined]
        project.users.add("alice", ["mlops"])
        project.users.add("bob", ["mlops"])
        alice = project.keys.issue("alice").token
        bob = project.keys.issue("bob").token
    env_alice = {"MLOOP_API_KEY": alice, "MLOOP_REQUIRE_APPROVAL": "true"}
    env_bob = {"MLOOP_API_KEY": bob, "MLOOP_REQUIRE_APPROVAL": "true"}
    requested = registered(
        "models", "promote", "fraud", "1", "--to", "production", "-m", "ready", env=env_alice
    )
    assert requested.code == 0 and "waits for another user" in requested.out
    waiting = registered("models", "pending", "--json", env=env_bob).json()
    assert [(p["version"], p["requested_by"], p["comment"]) for p in waiting] == [(1, "alice", "ready")]
    own = registered("models", "approve", "fraud", "1", env=env_alice)
    assert own.code == 1 and "alice requested this promotion and cannot also approve it" in said(own)
    approved = registered("models", "approve", "fraud", "1", env=env_bob)
    assert approved.code == 0 and "is now in production" in approved.out
    spans = registered("models", "history", "fraud", "--json").json()["stages"]
    assert [(s["version"], s["set_by"], s["approved_by"]) for s in spans] == [(1, "alice", "bob")]
    later = registered("models", "history", "fraud", "--json").json()["stages"][0]["start"]
    assert registered("models", "history", "fraud", "--at", later, "--json").json()["stages"] == {
        "production": [1]
    }


def test_delete_a_version(registered: Run) -> None:
    assert registered("models", "delete", "fraud", "1").code == 0
    assert [v["version"] for v in registered("models", "show", "fraud", "--json").json()] == [2]


@pytest.mark.slow
def test_export_to_onnx_then_deploy_with_that_runtime(cli: Run) -> None:
    pytest.importorskip("onnxruntime")
    item = case("sklearn-regressor")
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        project.models.register("price", item.model, input_example=item.frame)
    made = cli("models", "export", "price:1", "--format", "onnx")
    assert made.code == 0 and "price version 1 exported to onnx" in made.out
    again = cli("models", "export", "price:1", "--json").json()
    assert again["format"] == "onnx" and again["details"]["parity"]["rtol"] == 0.001
    assert "onnx (sha256:" in cli("models", "show", "price", "1").out
    bad = cli("models", "export", "price", "--format", "onnx")
    assert bad.code != 0 and "NAME:VERSION" in bad.err
    deployed = cli("deploy", "price", "price", "-v", "1", "--runtime", "onnx", "--json")
    assert deployed.code == 0 and deployed.json()["runtime"] == "onnx"
    assert "onnx" in cli("deployments", "show", "price").out
