"""The explained lines of the prediction log: written beside the answers they explain, compacted with them,
left out of the predictions, read back by read_explanations; logs written before the field still read."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mloop.predictions import Answer, PredictionLog, files, read_predictions
from mloop.predictions.explanations import read_explanations

WHY = [{"base_value": -2.0, "attributions": {"x": 1.5}, "output": "log_odds", "method": "tree_shap"}]


def _answer(rid: str) -> Answer:
    return Answer(rid, "fraud", "fraud", 1, 1, [0.38], {"x": [3.0]}, 0.001, {"customer_id": [7]})


def test_explained_lines_survive_compaction_and_are_not_predictions(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, compact_in_child=False) as log:
        log.record(_answer("a"))
        log.record(_answer("b"))
        log.record(_answer("a"), attributions=WHY)
        live = read_explanations(tmp_path, "fraud")
    compacted = read_explanations(tmp_path, "fraud")  # closed: everything is in Parquet now
    for found in (live, compacted):
        assert found["request_id"].tolist() == ["a"]
        (entry,) = found.to_dict("records")
        assert entry["attributions"] == {"x": 1.5} and entry["base_value"] == -2.0
        assert (entry["prediction"], entry["method"], entry["output"], entry["label"]) == (0.38, "tree_shap",
                                                                                         "log_odds", None)  # fmt: skip
    predictions = read_predictions(tmp_path, "fraud")
    assert sorted(predictions["request_id"]) == ["a", "b"] and "attributions" not in predictions
    assert log.logged == 2  # the explained line counts no prediction rows


def test_a_log_written_before_attributions_existed_still_reads(tmp_path: Path) -> None:
    old = pa.schema([f for f in files.SCHEMA if f.name != "attributions"])
    table = files.to_table([{"request_id": "old", "ts": time.time(), "endpoint": "fraud", "model": "fraud",
                             "version": 1, "revision": 1, "latency_s": 0.001, "status": "ok",
                             "predictions": [0.2], "inputs": {"x": [1.0]}}]).select(old.names)  # fmt: skip
    day = files.partition(tmp_path, "fraud", datetime.now(UTC).date())
    day.mkdir(parents=True)
    pq.write_table(table.cast(old), day / "part-old-000001.parquet")
    assert read_predictions(tmp_path, "fraud")["request_id"].tolist() == ["old"]
    assert read_explanations(tmp_path, "fraud").empty
