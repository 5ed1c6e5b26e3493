"""``mloop chaos run``'s output (the measurement itself is tests/chaos/test_chaos_cli.py's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import mloop.chaos
from mloop.chaos import ChaosResult, Phase
from tests.cli.conftest import Run


def _result(**asked: Any) -> ChaosResult:
    phases = (Phase("before", 100, 100, 0, {}, 8.1, 12.0), Phase("during", 100, 90, 40, {"503": 10}, 201.0, 230.0),
              Phase("after", 150, 150, 0, {}, 8.3, 13.5))  # fmt: skip
    return ChaosResult(asked["fault"], asked["endpoint"], asked["url"], datetime.now(UTC), asked["seconds"],
                       asked["rps"], phases, 0.004, 0.12, 0, "250 of 250 answered ids found",
                       0.1, {"online_store": "redis://127.0.0.1:6379/0"})  # fmt: skip


def test_the_table_shows_each_phase_and_the_recovery(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def run(project: Any, fault: str, **how: Any) -> ChaosResult:
        asked.update(how, fault=fault)
        return _result(**asked)

    monkeypatch.setattr(mloop.chaos, "run", run)
    done = cli("chaos", "run", "online-store-pause", "--endpoint", "fraud", "--seconds", "5")
    assert done.code == 0, done.err
    assert asked == {"fault": "online-store-pause", "endpoint": "fraud", "url": "http://127.0.0.1:8700",
                     "seconds": 5.0, "rps": 50.0, "allow_outage": False}  # fmt: skip
    assert "during" in done.out and "503: 10" in done.out and "201" in done.out
    assert "0.120 s after the fault's end" in done.out and "250 of 250" in done.out
    as_json = cli("chaos", "run", "online-store-pause", "--endpoint", "fraud", "--json").json()
    assert as_json["failed"] == {"503": 10} and as_json["baseline_s"] == 0.12
    assert [p["name"] for p in as_json["phases"]] == ["before", "during", "after"]


def test_a_remote_server_is_refused_before_anything_is_sent(cli: Run) -> None:
    done = cli("chaos", "run", "worker-kill", "--endpoint", "fraud", "--url", "http://203.0.113.7:8700")
    assert done.code == 1 and "203.0.113.7 is not this machine" in done.err, done.err
