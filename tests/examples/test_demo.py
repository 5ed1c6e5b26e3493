from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from mloop.errors import MloopError
from mloop.examples.demo import run


def test_demo_ingests_the_bundled_sample_and_reports(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    project = run(tmp_path / "demo", fast=True, console=console)
    text = console.export_text()
    try:
        reports = project.data.ingestions("transactions")
        first, second = reports
        assert first.rows_read == first.rows_accepted + first.rows_quarantined
        assert first.rows_quarantined > 50  # the sample carries every kind of defect
        reasons = set(first.by_reason)
        for expected in ("csv: row does not parse", "not a valid float64", "not a valid timestamp", "below min",
                         "not one of the allowed values", "does not match", "duplicate within the source"):  # fmt: skip
            assert any(expected in reason for reason in reasons), expected
        assert second.by_reason == {"key (txn_id): already ingested": 25}
        assert project.audit.verify().ok
    finally:
        project.close()
    assert "skipped=True" in text and "refused" in text and "intact" in text


def test_demo_refuses_to_wipe_a_folder_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(MloopError, match="not a demo folder"):
        run(tmp_path / "mine", fast=True, console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
    assert (tmp_path / "mine" / "thesis.tex").exists()
