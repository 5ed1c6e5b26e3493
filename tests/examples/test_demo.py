"""``mloop demo --fast`` end to end, its outcome read from the event log and the prediction log.

The demo runs on a real server, a real controller and a child process that retrains, on a machine that may
be busy, so the test asserts what must hold however fast it ran: the loop promoted a retrained version
after the shift, the broken version failed only while it held a canary share (never 100%), it was rolled
back, and nothing was logged to a stream that had been closed.
"""

from __future__ import annotations

import io
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from mloop import Project
from mloop.errors import MloopError
from mloop.examples.demo import run
from mloop.examples.fraud.summary import explore
from mloop.predictions.files import read_predictions
from mloop.predictions.log import predictions_folder
from tests.demo_run import DemoRun


@pytest.mark.slow
def test_the_loop_promotes_after_the_shift_and_rolls_the_broken_version_back(fast_demo: DemoRun) -> None:
    summary = fast_demo.summary
    with Project.open(fast_demo.folder, env={}) as project:
        timeline = project.loop.timeline("fraud")
        frame = read_predictions(predictions_folder(project.settings), "fraud")
        champion = project.models.get("fraud", alias="champion").version
        ingestions = project.data.ingestions("transactions")
        assert project.audit.verify().ok
    drift = [e for e in timeline if e["action"] == "monitoring.alert" and e["alert"]["name"] == "drift"]
    promotes = [e for e in timeline if e["action"] == "loop.promote"]
    rollbacks = [e for e in timeline if e["action"] == "loop.rollback"]
    assert drift and promotes and rollbacks, [e["action"] for e in timeline]
    good = promotes[0]["champion"]
    # The first promoted version came from the shift: the retrain behind it was triggered by the inputs'
    # drift or by the live AUC's fall (whichever the loop saw first on a busy machine; monitoring's drift
    # alert may come before or after it), never by a schedule or new labels alone. On a slow machine the
    # shift is still under way after that promotion, so the loop may retrain and promote again (drift on
    # the new champion): the champion is then the last version promoted.
    (cause,) = [e for e in timeline if e["action"] == "loop.trigger" and e["seq"] < promotes[0]["seq"]][-1:]
    assert good > 1 and cause["trigger"] in ("drift", "performance"), cause
    assert champion == promotes[-1]["champion"], (champion, [e["champion"] for e in promotes])
    broken = rollbacks[-1]["challenger"]
    assert broken > good and "failed requests" in rollbacks[-1]["reason"]  # v3 caught by the canary
    shares = [e["share"] for e in timeline if e["action"] == "loop.canary" and e["challenger"] == broken]
    assert shares and max(shares) < 1.0  # production never gave the broken version all the traffic
    assert broken not in [e["champion"] for e in promotes]
    failed = frame[frame["status"] == "error"]
    assert len(failed) > 0 and set(failed["version"]) == {broken}  # no failed request outside the canary
    assert summary["errors_outside_canary"] == 0 and summary["errors"] == len(
        failed.drop_duplicates("request_id")
    )
    assert ingestions[1].rows_quarantined > 0  # the feed with defects
    assert any("currency" in " ".join(r.by_reason) for r in ingestions[2:])  # CHF payments, quarantined
    assert (fast_demo.folder / "report.html").stat().st_size > 1_000_000
    text = fast_demo.text
    assert "loop.promote" in text and "loop.rollback" in text and "versions" in text
    assert "UTC wall clock" in text and " -C " in text  # the simulated dates mapped; the commands to explore
    err = fast_demo.stderr
    assert "Logging error" not in err and "I/O operation on closed file" not in err, err[-2_000:]
    assert fast_demo.logs_left_alone  # the demo logged elsewhere while it ran, then put the handler back


def test_the_closing_box_names_the_mloop_the_user_can_run_and_maps_simulated_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "mloop").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    span = {"sim": (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 9, 12, tzinfo=UTC)),
            "wall": (datetime(2026, 12, 5, 16, 40, tzinfo=UTC).timestamp(),
                     datetime(2026, 12, 5, 16, 41, 22, tzinfo=UTC).timestamp()), "speed": 10_000.0}  # fmt: skip

    def shown(on_path: str | None) -> str:
        monkeypatch.setattr(shutil, "which", lambda name: on_path)
        console = Console(record=True, width=200, file=io.StringIO())
        console.print(explore(tmp_path / "mloop-demo", tmp_path / "mloop-demo" / "report.html", span, 80.0))
        return console.export_text()

    assert ".venv/bin/mloop -C mloop-demo loop timeline fraud" in shown(None)  # `make demo`: not on PATH
    assert "│   mloop -C mloop-demo models list" in shown(str(venv / "mloop"))  # the activated environment
    assert "simulated Jan 31 00:00 – Feb 09 12:00 ran 16:40:00 – 16:41:22 UTC (×10,000)" in shown(None)


def test_demo_refuses_to_wipe_a_folder_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(MloopError, match="not a demo folder"):
        run(tmp_path / "mine", fast=True, console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
    assert (tmp_path / "mine" / "thesis.tex").exists()
