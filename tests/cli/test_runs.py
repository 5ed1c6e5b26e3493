from __future__ import annotations

from mloop import Project
from tests.cli.conftest import Run


def make_runs(cli: Run) -> dict[str, str]:
    ids = {}
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        for name, leaves, auc in [("small", 15, 0.81), ("medium", 31, 0.93), ("large", 63, 0.91)]:
            with project.run(
                "fraud", params={"num_leaves": leaves, "lr": 0.05}, tags={"team": "risk"}, name=name
            ) as run:
                for step in range(3):
                    run.log_metric("loss", 1.0 / (step + 1))
                run.log_metric("auc", auc)
            ids[name] = run.id
    return ids


def test_list_filter_and_order(cli: Run) -> None:
    ids = make_runs(cli)
    listed = cli("runs", "list", "--json").json()
    assert [r["name"] for r in listed] == ["large", "medium", "small"]  # newest first
    found = cli("runs", "list", "--experiment", "fraud", "--filter", "metrics.auc > 0.9", "--order-by", "metrics.auc desc",
                "--json").json()  # fmt: skip
    assert [(r["id"], r["metrics"]["auc"]) for r in found] == [(ids["medium"], 0.93), (ids["large"], 0.91)]
    assert (
        cli("runs", "list", "--filter", "params.num_leaves >= 31", "-n", "1", "--json").json()[0]["name"]
        == "large"
    )

    table = cli("runs", "list", "--order-by", "metrics.auc desc")
    assert table.code == 0
    short = {name: run_id[:8] for name, run_id in ids.items()}  # names show only in wide terminals
    assert (
        table.out.index(short["medium"]) < table.out.index(short["large"]) < table.out.index(short["small"])
    )
    assert "0.930" in table.out

    experiments = cli("runs", "experiments", "--json").json()
    assert [(e["name"], e["runs"]) for e in experiments] == [("fraud", 3)]


def test_show_and_compare(cli: Run) -> None:
    ids = make_runs(cli)
    shown = cli("runs", "show", ids["medium"][:8], "--json").json()
    assert shown["id"] == ids["medium"] and shown["params"] == {"lr": "0.05", "num_leaves": "31"}
    assert shown["status"] == "finished" and shown["metrics"] == {"auc": 0.93, "loss": 1 / 3}
    text = cli("runs", "show", ids["medium"]).out
    assert "num_leaves" in text and "finished" in text and "fraud" in text

    compared = cli("runs", "compare", ids["small"], ids["large"], "--json").json()
    assert compared["params"]["num_leaves"] == ["15", "63"]
    assert compared["differs"]["params"] == ["num_leaves"] and compared["differs"]["metrics"] == ["auc"]
    table = cli("runs", "compare", ids["small"], ids["large"]).out
    assert "* param.num_leaves" in table and "  param.lr" in table


def test_errors_are_user_errors(cli: Run) -> None:
    make_runs(cli)
    bad = cli("runs", "list", "--filter", "metrics.auc >> 1")
    assert bad.code == 1 and "Cannot read the filter at position 13" in bad.err
    missing = cli("runs", "show", "0123456789abcdef")
    assert missing.code == 1 and "No run '0123456789abcdef'" in missing.err
    unknown = cli("runs", "list", "--experiment", "nope")
    assert unknown.code == 1 and "No experiment 'nope'" in unknown.err
