"""``mloop explain ENDPOINT --row '{...}'``: the endpoint's attributions in a table, as JSON or Markdown,
the same numbers as the HTTP route; a bad row or format is a user error that says how to fix it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from mloop.cli import _state
from mloop.cli.main import main
from tests.serving.explained import Explained, explained_fixture  # noqa: F401  (the shared project)

Mloop = Callable[..., tuple[int, str, str]]


@pytest.fixture
def mloop(explained: Explained, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Mloop]:  # fmt: skip
    """``mloop -C <the shared project> ARGS``: (exit code, stdout, stderr)."""
    for name in ("MLOOP_API_KEY", "MLOOP_PROJECT_DIR", "MLOOP_METADATA_URL", "MLOOP_LOCAL_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["-C", str(explained.project.root), *args])
        _state.close()
        captured = capsys.readouterr()
        return int(exit_info.value.code or 0), captured.out, captured.err

    yield run


def test_json_is_the_http_answer(explained: Explained, mloop: Mloop) -> None:
    row = explained.row(5)
    code, out, err = mloop("explain", "fraud", "--row", json.dumps(row), "--top-k", "3", "--format", "json")
    assert code == 0, err
    with explained.client() as client:
        http = client.post("/v1/endpoints/fraud/explain", json={"rows": [row], "top_k": 3}).json()
    assert json.loads(out) == http


def test_a_table_and_markdown_name_the_features_and_the_prediction(
    explained: Explained, mloop: Mloop
) -> None:
    row = json.dumps(explained.row(5))
    code, table, err = mloop("explain", "fraud", "--row", row, "--top-k", "2")
    assert code == 0, err
    _, markdown, _ = mloop(
        "explain", "fraud", "--row", row, "--row", row, "--top-k", "2", "--format", "markdown"
    )
    assert "fraud v1 predicts" in table and "tree_shap in log_odds" in table
    assert markdown.count("| feature | attribution |") == 2 and markdown.count("| `") == 4


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--row", "{customer_id: 1}"], "is not JSON"),
        (["--row", "[1, 2]"], "JSON list"),
        (["--row", '{"customer_id": 1, "amount": 1.0}', "--format", "yaml"], "use table, json, markdown"),
        (["--row", '{"customer_id": 1, "amount": 1.0}', "--version", "7"], "does not serve version 7"),
    ],
)
def test_bad_input_is_a_user_error_that_says_how_to_fix_it(
    mloop: Mloop, args: list[str], needle: str
) -> None:
    code, out, err = mloop("explain", "fraud", *args)
    assert code in (1, 2) and needle in out + err
    assert "Traceback" not in out + err


def test_counterfactual_answers_cross_the_threshold_and_change_only_actionable_features(
    explained: Explained, mloop: Mloop
) -> None:
    config = explained.project.root / "mloop.yaml"
    before = config.read_text(encoding="utf-8") if config.exists() else None
    block = ("explain:\n  counterfactuals:\n    fraud:\n      threshold: 0.7\n      want: below\n"
             "      features:\n        amount_ratio: {min: 0, direction: down}\n"
             "        distance_km: {min: 0, direction: down}\n        device: {}\n")  # fmt: skip
    config.write_text((before or "") + "\n" + block, encoding="utf-8")
    try:
        rows = [explained.row(i) for i in range(min(len(explained.frame), 1_000))]
        with explained.client() as client:
            scores = client.post("/v1/endpoints/fraud/predict", json={"rows": rows}).json()["predictions"]
        blocked = None
        for row in [r for r, score in zip(rows, scores, strict=True) if score >= 0.7][:40]:
            code, out, err = mloop("explain", "fraud", "--row", json.dumps(row), "--counterfactual",
                                   "--format", "json")  # fmt: skip
            assert code == 0, err
            answer = json.loads(out)
            if answer["prediction"] >= 0.7 and answer["counterfactuals"]:
                blocked = (row, answer)
                break
        assert blocked is not None, "no blocked row with a counterfactual in the fixture"
        row, answer = blocked
        assert set(answer["actionable"]) <= {"amount_ratio", "distance_km", "device"}
        for found in answer["counterfactuals"]:
            assert found["prediction"] < 0.7 and set(found["changes"]) <= set(answer["actionable"])
            moved = [c for name, c in found["changes"].items() if name != "device"]
            assert all(c["to"] < c["from"] for c in moved)  # direction: down
        code, markdown, err = mloop("explain", "fraud", "--row", json.dumps(row), "--counterfactual")
        assert code == 0, err
        assert "wanted: under 0.700" in markdown and "→" in markdown
        code, _, err = mloop("explain", "fraud", "--row", json.dumps(row), "--row", json.dumps(row),
                             "--counterfactual")  # fmt: skip
        assert code != 0 and "1 row" in err
    finally:
        if before is None:
            config.unlink()
        else:
            config.write_text(before, encoding="utf-8")
