"""``mloop cost``: the figures of ``project.reviews.cost()`` as tables or JSON; a bad window says how to
write one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mloop import Project
from mloop._time import utcnow
from mloop.predictions.usage import Sample, UsageFile, usage_folder
from tests.cli.conftest import Run

GiB = 1024**3


def _served(root: Path) -> None:
    """One serving process's samples: 3,600 CPU s and 1 GiB for 2 h, 1,000 requests on ``fraud``."""
    project = Project.open(root, env={})
    try:
        now = utcnow()
        started = now - timedelta(hours=2)
        writer = UsageFile(usage_folder(project.settings), started)
        writer.append(Sample(writer.process, started, started, 0.0, GiB, GiB, {}))
        writer.append(Sample(writer.process, started, now, 3600.0, GiB, GiB, {"fraud": 1000}))
        writer.close()
    finally:
        project.close()


def test_cost_prints_per_1k_runs_and_storage_and_json(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    (root / "mloop.yaml").write_text(
        "review:\n  prices: {core_hour: 1.0, gb_hour: 0.5}\n  requirements:\n    fraud: {budget_per_1k: 0.5}\n"
    )
    _served(root)
    shown = cli("cost")
    assert shown.code == 0, shown.err
    assert "per 1,000 predictions" in shown.out and "storage" in shown.out and "prediction_log" in shown.out
    # 1 core-hour x 1.0 + 1 GiB x 2 h x 0.5 = 2.0 for 1,000 requests: 2.0 per 1k, over the 0.5 budget.
    assert "fraud" in shown.out and "0.5 ✗" in shown.out
    data = cli("cost", "--json").json()
    fraud = data["endpoints"]["fraud"]
    assert fraud["requests"] == 1000 and abs(fraud["per_1k"] - 2.0) < 1e-9 and fraud["over_budget"] is True
    # Energy, default model: (1 core-h x 12 W + 2 GB-h x 0.375 W) x PUE 1.4 / 1000 = 0.01785 kWh per 1k.
    assert (
        abs(fraud["kwh_per_1k"] - 0.01785) < 1e-12 and abs(fraud["grams_co2e_per_1k"] - 0.01785 * 400) < 1e-9
    )
    assert data["currency"] == "USD" and data["runs"] == []


def test_cost_alert_opens_the_budget_incident(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    (root / "mloop.yaml").write_text("review:\n  requirements:\n    fraud: {budget_per_1k: 0.0}\n")
    _served(root)
    result = cli("cost", "--alert")
    assert result.code == 0, result.err
    assert "alert firing" in result.err and "over its budget" in result.err


def test_a_bad_window_is_one_line_saying_how_to_write_it(cli: Run) -> None:
    result = cli("cost", "--since", "week")
    assert result.code == 1 and "7d, 24h, 90m" in result.err
