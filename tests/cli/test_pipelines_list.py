from __future__ import annotations

from tests.cli.conftest import Run


def test_deployments_list_shows_the_pipelines_beside_the_endpoints(cli: Run) -> None:
    (cli.root / "mloop.yaml").write_text(  # type: ignore[attr-defined]
        "pipelines:\n  recs:\n    stages:\n"
        "      - {name: retrieve, kind: retrieve, endpoint: recs-towers}\n"
        "      - {name: top, kind: top, n: 5}\n"
    )
    listed = cli("deployments", "list")
    assert listed.code == 0, listed.out
    assert "Pipelines" in listed.out and "recs" in listed.out and "retrieve (recs-towers)" in listed.out
