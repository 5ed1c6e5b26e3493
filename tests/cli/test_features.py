from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run
from tests.features.fixtures import transactions, write

DEFINITIONS = """
import mloop as ml

customer = ml.Entity("customer", join_keys=["customer_id"])
source = ml.ParquetSource(PATH, timestamp="ts")
customer_stats = ml.FeatureView(
    "customer_stats", entities=[customer], source=source, ttl="7d",
    features=[ml.Field("amount", "float64")],
    aggregations=[ml.Aggregation("amount", "count", "24h")],
)
clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                         ml.Field("page", "string")])
customer_clicks = ml.FeatureView("customer_clicks", entities=[customer], source=clicks,
                                 features=[ml.Field("page", "string")])
"""


def _definitions(cli: Run, tmp_path: Path, ttl: str = "7d") -> Path:
    data = write(transactions(), tmp_path / "txns.parquet")
    path = cli.root / "features.py"  # type: ignore[attr-defined]
    path.write_text(DEFINITIONS.replace("PATH", repr(str(data))).replace('ttl="7d"', f'ttl="{ttl}"'))
    return path


def test_plan_apply_list_show(cli: Run, tmp_path: Path) -> None:
    path = _definitions(cli, tmp_path)
    planned = cli("features", "plan", str(path), "--json").json()
    assert {(c["name"], c["action"]) for c in planned["changes"]} == {
        ("customer", "create"),
        ("clicks", "create"),
        ("customer_stats", "create"),
        ("customer_clicks", "create"),
    }
    assert cli("features", "list", "--json").json() == []  # plan applied nothing
    applied = cli("features", "apply", str(path))
    assert applied.code == 0 and "customer_stats" in applied.out
    listed = {v["name"]: v for v in cli("features", "list", "--json").json()}
    assert listed["customer_stats"]["features"] == ["amount", "amount_count_24h"]
    shown = cli("features", "show", "customer_stats", "--json").json()
    assert shown[0]["spec"]["ttl"] == "7d"
    _definitions(cli, tmp_path, ttl="2d")
    diff = cli("features", "plan", str(path), "--json").json()
    change = next(c for c in diff["changes"] if c["name"] == "customer_stats")
    assert change["action"] == "update" and change["diff"] == ["ttl: '7d' -> '2d'"]


def test_materialize_get_push(cli: Run, tmp_path: Path) -> None:
    path = _definitions(cli, tmp_path)
    cli("features", "apply", str(path))
    report = cli("features", "materialize", "--start", "2026-02-28T00:00:00+00:00", "--end",
                 "2026-03-05T00:00:00+00:00", "--view", "customer_stats", "--json").json()  # fmt: skip
    assert report["views"]["customer_stats"]["rows"] > 0
    got = cli("features", "get", "-e", "customer_id=3", "-f", "customer_stats:amount", "--json").json()
    assert set(got) == {"customer_id", "amount"} and got["customer_id"] == 3
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"customer_id": 3, "ts": "2026-11-24T10:00:00Z", "page": "home"}]))
    pushed = cli("features", "push", "clicks", str(rows), "--json").json()
    assert pushed["views"] == ["customer_clicks"]
    bad = cli("features", "get", "-e", "customer_id", "-f", "customer_stats:amount")
    assert bad.code == 1 and "name=value" in bad.err
    typed = cli("features", "get", "-e", "customer_id=abc", "-f", "customer_stats:amount")
    assert (
        typed.code == 1 and "Join key 'customer_id' must be an integer (int64), got string 'abc'" in typed.err
    )


def test_apply_reports_a_broken_definitions_file(cli: Run) -> None:
    path = cli.root / "features.py"  # type: ignore[attr-defined]
    path.write_text("import mloop as ml\nml.Entity('Bad Name')\n")
    result = cli("features", "apply", str(path))
    assert result.code == 1 and "not allowed" in result.err
    missing = cli("features", "apply", str(cli.root / "nope.py"))  # type: ignore[attr-defined]
    assert missing.code == 1 and "No definitions file" in missing.err
