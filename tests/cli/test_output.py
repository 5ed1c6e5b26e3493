"""What the read commands print: the useful columns first, nothing internal, long lists cut, times whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop import Project
from tests.cli.conftest import Run

HEADER = "txn_id,ts,amount\n"


def _ingest(cli: Run, tmp_path: Path, name: str, body: str, *args: str) -> object:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return cli("data", "ingest", str(path), "-d", "txns", *args)


def test_ingest_accepting_nothing_exits_3_and_names_the_column(cli: Run, tmp_path: Path) -> None:
    assert _ingest(cli, tmp_path, "ok.csv", "1,2026-01-01T10:00:00Z,5.0\n").code == 0  # type: ignore[attr-defined]
    bad = _ingest(cli, tmp_path, "bad.csv", "2,2026-01-02T10:00:00Z,abc\n3,2026-01-02T11:00:00Z,x\n")
    assert bad.code == 3  # type: ignore[attr-defined]
    assert "column 'amount' (not a valid float64) was rejected in every row" in bad.err  # type: ignore[attr-defined]
    assert "accepted     0" in bad.out  # type: ignore[attr-defined]


def test_ingest_with_one_whole_column_rejected_exits_3_even_if_rows_pass_otherwise(
    cli: Run, tmp_path: Path
) -> None:
    assert _ingest(cli, tmp_path, "ok.csv", "1,2026-01-01T10:00:00Z,5.0\n").code == 0  # type: ignore[attr-defined]
    bad = _ingest(cli, tmp_path, "ts.csv", "2,yesterday,1.0\n3,today,2.0\n", "--json")
    assert bad.code == 3 and "column 'ts'" in bad.err  # type: ignore[attr-defined]


def test_ingest_with_some_rows_rejected_exits_0_unless_strict(cli: Run, tmp_path: Path) -> None:
    _ingest(cli, tmp_path, "ok.csv", "1,2026-01-01T10:00:00Z,5.0\n")  # the schema: amount is a number
    body = "1,2026-01-01T10:00:00Z,5.0\n2,2026-01-02T10:00:00Z,abc\n"
    assert _ingest(cli, tmp_path, "mixed.csv", body).code == 0  # type: ignore[attr-defined]
    assert _ingest(cli, tmp_path, "mixed2.csv", body.replace("1,", "7,"), "--strict").code == 3  # type: ignore[attr-defined]


def test_quarantine_shows_row_reasons_and_values_without_internals(cli: Run, tmp_path: Path) -> None:
    _ingest(cli, tmp_path, "ok.csv", "0,2026-01-01T09:00:00Z,1.0\n")  # the schema: amount is a number
    body = "1,2026-01-01T10:00:00Z,5.0\n2,2026-01-02T10:00:00Z,abc\n3,2026-01-02T11:00:00Z,x\n"
    _ingest(cli, tmp_path, "mixed.csv", body)
    shown = cli("data", "quarantine", "txns").out
    assert "_row" not in shown and "_reason" not in shown and "_line" not in shown and "nan" not in shown
    header = next(line for line in shown.splitlines() if "reasons" in line)
    assert header.index("row") < header.index("reasons") < header.index("values")
    row2 = next(line for line in shown.splitlines() if "amount='abc'" in line)
    assert row2.split()[1] == "2" and "amount: not a valid float64" in row2  # the 2nd data row, as an int
    full = cli("data", "quarantine", "txns", "--json").json()
    assert {"_row", "_reason", "_reasons", "amount"} <= set(full[0])


def test_data_show_lists_the_last_ingestions_and_json_all(cli: Run, tmp_path: Path) -> None:
    for i in range(12):
        _ingest(cli, tmp_path, f"b{i}.csv", f"{i},2026-01-01T10:00:{i:02d}Z,{i}.0\n")
    wide = {"COLUMNS": "250"}  # the sources are absolute paths: on a narrow terminal a name would wrap
    shown = cli("data", "show", "txns", env=wide).out
    assert "… 2 older; --all lists them" in shown and "b0.csv" not in shown and "b11.csv" in shown
    assert "b0.csv" in cli("data", "show", "txns", "--all", env=wide).out
    assert len(cli("data", "show", "txns", "--json").json()["ingestions"]) == 12


def test_timeline_times_never_wrap_on_a_narrow_terminal(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli import _output

    monkeypatch.setattr(_output.console, "width", 80)
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        project.loop.pause("fraud", reason="a long reason " * 8)
        project.loop.resume("fraud")
    (cli.root / "mloop.yaml").write_text("loop: {policies: [{endpoint: fraud, pipeline: 'x:y'}]}\n")  # type: ignore[attr-defined]
    shown = cli("loop", "timeline", "fraud").out
    stamps = [line for line in shown.splitlines() if "20" in line and ":" in line and "│" in line]
    assert stamps and all(len(line) <= 80 for line in shown.splitlines())
    import re

    assert all(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in stamps[:2])


def test_unknown_endpoint_in_a_loop_read_is_an_error_naming_the_known(cli: Run) -> None:
    (cli.root / "mloop.yaml").write_text("loop: {policies: [{endpoint: fraud, pipeline: 'x:y'}]}\n")  # type: ignore[attr-defined]
    for command in (("loop", "timeline", "frod"), ("loop", "status", "frod"), ("loop", "pause", "frod")):
        result = cli(*command)
        assert result.code == 1 and "No endpoint 'frod' (endpoints: fraud)" in result.err and result.out == ""


def test_unknown_user_in_keys_list_is_an_error(cli: Run) -> None:
    result = cli("keys", "list", "--user", "nobody")
    assert result.code == 1 and "nobody" in result.err and result.out == ""


def test_loop_tick_exits_1_naming_the_failed_policy(cli: Run) -> None:
    policy = "{endpoint: fraud, pipeline: 'nope.mod:x', triggers: [{new_data: {rows: 1}}]}"
    (cli.root / "mloop.yaml").write_text(f"loop: {{policies: [{policy}]}}\n")  # type: ignore[attr-defined]
    result = cli("loop", "tick")
    assert result.code == 1
    # The endpoint was never deployed: the policy fails on that first, and says so.
    assert "the loop policy of fraud failed" in result.err and "No endpoint 'fraud'" in result.err


def test_a_bad_setting_names_the_file_and_the_key(cli: Run) -> None:
    (cli.root / "mloop.yaml").write_text("monitoring: {window: soon}\n")  # type: ignore[attr-defined]
    result = cli("data", "list")
    assert result.code == 1
    assert "mloop.yaml: monitoring.window: 'soon' is not a duration; use e.g. 5m, 1h" in result.err


def test_runs_list_shows_the_pipelines_primary_metric_first(cli: Run) -> None:
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        for auc in (0.8, 0.9):
            with project.run("fraud", tags={"task": "binary", "pipeline": "fraud"}) as run:
                run.log_metrics({"test_accuracy": 0.9, "test_brier": 0.1, "test_ece": 0.02, "test_roc_auc": auc,
                                 "valid_roc_auc": auc, "test_rows": 100.0, "best_iteration": 3.0})  # fmt: skip
    header = next(line for line in cli("runs", "list").out.splitlines() if "status" in line)
    assert "test_roc_auc" in header.replace("\u2026", "") or "test_roc" in header
    assert "test_brier" not in header and "best_iteration" not in header
