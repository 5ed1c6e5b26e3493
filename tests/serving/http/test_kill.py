"""``kill -9`` of ``mloop serve`` under load loses no answered prediction: every request id a client got a
200 answer for is in the prediction log right after the crash, and again after the next writer has
compacted the dead server's segments, where each (request id, row) is read once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from mloop import Project
from mloop.predictions import PredictionLog, files, predictions_folder, read_predictions
from tests.serving.http.load import Clients, fraud_rows
from tests.serving.http.running import mloop_serve

ROUNDS = 2  # kill, restart (which recovers the dead server's segments), load again, kill again
ANSWERS = 1_200  # answered requests per round before the kill
CLIENTS = 6  # concurrent keep-alive connections; each has at most one request in flight at the kill


def _logged(folder: Path) -> pd.DataFrame:
    frame = read_predictions(folder, "killed")
    return frame[frame["status"] == "ok"]


@pytest.mark.slow
def test_kill_9_under_load_loses_no_answered_prediction(trained: Project) -> None:
    trained.deploy("killed", "fraud", version=1)
    rows = fraud_rows(trained.root)
    folder = predictions_folder(trained.settings)
    answered: list[str] = []
    for round_ in range(1, ROUNDS + 1):
        # `mloop serve` with one worker is one process; a new one recovers the killed one's segments.
        with mloop_serve(Path(trained.root)) as server, Clients(server.url, "killed", rows, clients=CLIENTS,
                                                                requests=100 * ANSWERS) as load:  # fmt: skip
            load.wait_answers(ANSWERS)
            os.kill(server.process.pid, signal.SIGKILL)  # while the clients keep sending
            assert server.process.wait(20) == -signal.SIGKILL
        assert load.errors, "the clients were still sending when the server was killed"
        answered += load.ids
        logged = set(_logged(folder)["request_id"])
        missing = set(answered) - logged
        assert not missing, f"round {round_}: {len(missing)} of {len(answered)} answered requests not logged"
        # What the server logged but could not send before it died: one request per connection at most.
        assert len(logged - set(answered)) <= CLIENTS * round_

    # As if the last server had died while compacting its segment, between writing the Parquet and
    # deleting the segment: both are there, and a reader must see each row once.
    segment = max((folder / "segments").glob("*.jsonl"), key=lambda path: path.stat().st_size)
    lines = segment.read_bytes()
    files.compact(folder, segment)
    segment.write_bytes(lines)
    for when in ("before recovery", "after recovery"):
        logged_rows = _logged(folder)
        missing = set(answered) - set(logged_rows["request_id"])
        assert not missing, f"{when}: {len(missing)} of {len(answered)} answered requests not logged"
        twice = int(logged_rows.duplicated(["request_id", "row"]).sum())
        assert twice == 0, f"{when}: {twice} rows read twice"
        PredictionLog(folder, compact_in_child=False).close()  # the next writer compacts dead ones' segments
    assert not list((folder / "segments").glob("*.jsonl"))
