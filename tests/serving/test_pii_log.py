"""The server writes inputs tagged PII to the prediction log as keyed hashes; feedback and erasure still work."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import mloop as ml
from mloop.predictions import predictions_folder
from tests.serving.conftest import Served


@pytest.mark.slow
def test_a_pii_input_is_hashed_in_the_log_and_still_found(served: Served) -> None:
    project = served.project
    # Tagging a column pii anywhere in the project makes that name PII in every endpoint's log.
    tagged = ml.Dataset("devices", columns=[ml.Column("device", "string", pii=True), ml.Column("ts", "timestamp")],
                        timestamp="ts")  # fmt: skip
    project.data.ingest(pd.DataFrame({"device": ["x"], "ts": [datetime.now(UTC)]}), tagged)
    project.deploy("fraud", "fraud", version=2)  # a new snapshot reads the tags
    served.refresh()
    row = served.row(3)
    devices = set(pd.read_parquet(Path(project.root) / "txns.parquet", columns=["device"])["device"])
    rid = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [row]}).json()["request_id"]
    assert served.client.post("/v1/feedback", json={"request_id": rid, "label": True}).status_code == 200

    log = served.client.app.state.prediction_log  # type: ignore[attr-defined]
    log.flush()
    keys = project.privacy.pseudonymizer
    logged = log.read("fraud")
    mine = logged[logged.request_id == rid]
    tokens = {keys.token(d): d for d in devices}
    logged_device = mine["device"].iloc[0]
    assert logged_device in tokens  # the keyed hash of the looked-up device, never the device
    assert mine["distance_km"].notna().all()  # untagged inputs are kept as they were
    segments = b"".join(
        p.read_bytes() for p in (predictions_folder(project.settings) / "segments").glob("*.jsonl")
    )
    assert (
        f'"device":"{tokens[logged_device]}"'.encode() not in segments and logged_device.encode() in segments
    )
    joined = served.client.app.state.feedback.labelled("fraud")  # type: ignore[attr-defined]
    assert joined[joined.request_id == rid]["label"].tolist() == [True]

    found = project.forget("device", tokens[logged_device], dry_run=True)
    assert found.predictions.rows >= 1  # the hashed row is found by the value
    assert Path(project.settings.pii.key_file).exists()


@pytest.mark.slow
def test_the_join_key_is_logged_beside_the_inputs_and_erasure_finds_it(served: Served) -> None:
    """The fraud model does not take ``customer_id`` (it looks the customer's features up by it), yet the
    log keeps it with the request, so a subject's served predictions can be found and erased."""
    project = served.project
    row = served.row(5)
    rid = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [row]}).json()["request_id"]
    log = served.client.app.state.prediction_log  # type: ignore[attr-defined]
    log.flush()
    logged = log.read("fraud")
    assert "customer_id" not in logged.columns and "keys" not in logged.columns  # not a model input
    assert rid in set(logged.request_id)
    found = project.forget("customer_id", row["customer_id"], dry_run=True)
    assert found.predictions.rows >= 1
