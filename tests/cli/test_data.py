from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run

CSV = "txn_id,ts,amount\n1,2026-01-01T10:00:00Z,5.0\n2,2026-01-02T10:00:00Z,-1\n3,2026-01-02T11:00:00Z,abc\n"
SCHEMA = """
name: txns
key: [txn_id]
timestamp: ts
columns:
  - {name: txn_id, dtype: int64}
  - {name: ts, dtype: timestamp}
  - {name: amount, dtype: float64, min: 0}
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    csv, schema = tmp_path / "txns.csv", tmp_path / "txns.yaml"
    csv.write_text(CSV)
    schema.write_text(SCHEMA)
    return csv, schema


def test_ingest_prints_the_report_and_reasons(cli: Run, tmp_path: Path) -> None:
    csv, schema = _files(tmp_path)
    result = cli("data", "ingest", str(csv), "--dataset", "txns", "--schema", str(schema))
    assert result.code == 0, result.err
    assert (
        "Ingested" in result.out
        and "amount: below min 0" in result.out
        and "amount: not a valid float64" in result.out
    )
    report = cli("data", "ingest", str(csv), "-d", "txns", "--json").json()
    assert report["skipped"] is True and report["rows_read"] == 3


def test_ingest_strict_exits_3_when_rows_are_quarantined(cli: Run, tmp_path: Path) -> None:
    csv, schema = _files(tmp_path)
    result = cli("data", "ingest", str(csv), "-d", "txns", "--schema", str(schema), "--strict", "--json")
    assert result.code == 3
    assert result.json()["rows_quarantined"] == 2


def test_validate_writes_nothing_and_exits_3_on_bad_rows(cli: Run, tmp_path: Path) -> None:
    csv, schema = _files(tmp_path)
    result = cli("data", "validate", str(csv), "-d", "txns", "--schema", str(schema), "--json")
    assert result.code == 3
    assert result.json()["dry_run"] is True and result.json()["rows_accepted"] == 1
    assert cli("data", "list", "--json").json() == []


def test_list_show_schema_quarantine(cli: Run, tmp_path: Path) -> None:
    csv, schema = _files(tmp_path)
    assert cli("data", "ingest", str(csv), "-d", "txns", "--schema", str(schema)).code == 0
    listed = cli("data", "list", "--json").json()
    assert [(d["name"], d["rows"], d["quarantined"]) for d in listed] == [("txns", 1, 2)]
    shown = cli("data", "show", "txns", "--json").json()
    assert shown["info"]["rows"] == 1 and shown["head"][0]["txn_id"] == "1"
    assert "key:\n- txn_id" in cli("data", "schema", "txns").out
    bad = cli("data", "quarantine", "txns", "--json").json()
    assert sorted(row["_reason"] for row in bad) == ["amount: below min 0", "amount: not a valid float64"]


def test_schema_set_records_a_new_version(cli: Run, tmp_path: Path) -> None:
    csv, schema = _files(tmp_path)
    cli("data", "ingest", str(csv), "-d", "txns", "--schema", str(schema))
    stricter = tmp_path / "v2.yaml"
    stricter.write_text(SCHEMA.replace("min: 0", "min: 1"))
    result = cli("data", "schema", "txns", "--set", str(stricter))
    assert result.code == 0 and "version 2" in result.out
    assert cli("data", "schema", "txns", "--json").json()["columns"][2]["min"] == 1


def test_malformed_file_is_a_user_error_naming_the_file(cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "semi.csv"
    bad.write_text("txn_id;ts;amount\n1;2026-01-01;1\n")
    result = cli("data", "ingest", str(bad), "-d", "txns")
    assert result.code == 1
    assert "semi.csv" in result.err and "--delimiter" in result.err
    fixed = cli("data", "ingest", str(bad), "-d", "txns", "--delimiter", ";", "--json")
    assert fixed.code == 0 and fixed.json()["rows_accepted"] == 1
