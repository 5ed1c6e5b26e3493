"""``mloop metrics``: DORA's four and the ML team metrics of a real project, as tables and as JSON."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run
from tests.review.conftest import fraud_project


def test_metrics_prints_the_changes_as_tables_and_json(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    project = fraud_project(root)  # v1 then v2 on fraud
    project.rollback("fraud")  # v2's change is undone
    project.close()
    found = cli("metrics", "--json")
    assert found.code == 0, found.err
    figures = found.json()
    assert figures["overall"]["change_failure"] == {"changes": 2, "failed": 1, "rate": 0.5}
    assert [(c["version"], c["failed"] is not None) for c in figures["changes"]] == [(1, False), (2, True)]
    assert figures["ml"]["experiments"]["runs"] >= 2
    table = cli("metrics", "--since", "30d", "--endpoint", "fraud")
    assert table.code == 0, table.err
    assert "50% (1/2)" in table.out and "Per week" in table.out and "served by a gated model" in table.out
    elsewhere = cli("metrics", "--endpoint", "nowhere", "--json").json()
    assert elsewhere["overall"]["deployments"]["changes"] == 0
    bad = cli("metrics", "--since", "soon")
    assert bad.code != 0 and "--since" in bad.err
