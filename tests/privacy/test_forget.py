"""``mloop forget``: a data subject's rows go from every place mloop keeps them, and nothing else changes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop import Project
from mloop.errors import PermissionDenied
from mloop.features.online.base import entity_key
from mloop.predictions import Answer, Feedback, Label, PredictionLog, predictions_folder, read_feedback
from mloop.predictions.files import read_predictions
from mloop.predictions.place import LogFolder
from mloop.security.actor import Actor
from mloop.security.roles import Grant

SUBJECT = 42
EMAIL = "subject@example.com"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


@dataclass
class World:
    project: Project
    log: Path | LogFolder  # the prediction log's folder (segments + Parquet on S3)
    request: str  # the request whose row 1 is the subject's (row 0 is someone else's)


def _txns(customers: list[int], offset: int) -> pd.DataFrame:
    n = len(customers)
    return pd.DataFrame({
        "txn_id": range(offset, offset + n),
        "customer_id": customers,
        "email": [f"c{c}@example.com" if c != SUBJECT else EMAIL for c in customers],
        "ts": [START + timedelta(minutes=i) for i in range(n)],
        "amount": [float(i) for i in range(n)],
    })  # fmt: skip


SCHEMA = ml.Dataset("txns", columns=[
    ml.Column("txn_id", "int64"), ml.Column("customer_id", "int64", pii=True),
    ml.Column("email", "string", pii=True), ml.Column("ts", "timestamp"), ml.Column("amount", "float64"),
], key="txn_id", timestamp="ts")  # fmt: skip


def build(project: Project) -> World:
    data = project.data
    data.ingest(_txns([1, SUBJECT, 2, SUBJECT, 3], 0), SCHEMA)
    data.ingest(_txns([4, 5, SUBJECT], 100), "txns")
    data.ingest(pd.DataFrame({"city": ["a", "b"], "ts": [START, START]}), "other")
    customer = ml.Entity("customer", join_keys=["customer_id"], pii=True)
    clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                             ml.Field("page", "string")])  # fmt: skip
    project.apply([
        customer, clicks,
        ml.FeatureView("spend", entities=[customer], source=ml.DatasetSource("txns"), ttl="30d",
                       features=[ml.Field("amount", "float64")]),
        ml.FeatureView("pages", entities=[customer], source=clicks, features=[ml.Field("page", "string")]),
    ])  # fmt: skip
    project.features.materialize(START - timedelta(days=1), datetime.now(UTC))
    now = datetime.now(UTC)
    project.features.push("clicks", pd.DataFrame({"customer_id": [SUBJECT, 7], "ts": [now, now],
                                                  "page": ["home", "cart"]}))  # fmt: skip
    x = pd.DataFrame({"amount": [0.0, 1.0, 2.0, 3.0]})
    for name, views in (("fraud", ["spend"]), ("unrelated", ["elsewhere"])):
        with project.run(name) as run:
            lineage = {"feature_views": [{"name": v, "kind": "feature_view", "version": 1} for v in views]}
            run.register(LogisticRegression().fit(x, [0, 1, 0, 1]), name, input_example=x, lineage=lineage)
    folder = predictions_folder(project.settings)
    keys = project.privacy.pseudonymizer
    with PredictionLog(folder, compact_in_child=False, parquet=project.parquet) as log:
        for rid, customers in (("r-mixed", [7, SUBJECT]), ("r-other", [8]), ("r-plain", [SUBJECT])):
            inputs = {"customer_id": customers, "amount": [1.5] * len(customers)}
            if rid != "r-plain":  # the server hashes PII inputs; a log written with `keep` holds the value
                inputs = keys.protect(inputs, {"customer_id"}, "hash")
            answer = Answer(rid, "fraud", "fraud", 1, 1, [0.1] * len(customers), inputs, 0.001)
            assert log.record(answer)
        log.flush()
        Feedback(log).attach(project, [Label("r-mixed", True, 0), Label("r-mixed", False, 1),
                                       Label("r-other", True), Label("r-plain", True)])  # fmt: skip
    return World(project, folder, "r-mixed")


@pytest.fixture
def world(data_project: Project) -> World:
    """The subject's rows everywhere, with data_url a folder and on S3 in turn."""
    return build(data_project)


def snapshot(world: World) -> dict[str, pd.DataFrame]:
    project = world.project
    predictions = read_predictions(world.log, parquet=project.parquet).drop(
        columns=["ts", "latency_s"], errors="ignore"
    )
    storage = project._ctx.data
    pushed = pd.concat(
        [project.parquet.read_table(p).to_pandas() for p in storage.list(storage.join(storage.root, "_push"))]
    )
    return {
        "txns": project.data.read("txns").sort_values("txn_id").reset_index(drop=True),
        "other": project.data.read("other"),
        "push": pushed[["customer_id", "page"]].sort_values("page").reset_index(drop=True),
        "predictions": predictions[["request_id", "row", "customer_id"]].reset_index(drop=True),
        "labels": read_feedback(world.log, parquet=project.parquet)[
            ["request_id", "row", "label"]
        ].reset_index(drop=True),
    }


def online(project: Project, view: str, key: int) -> bool:
    namespace = f"{view}.v1"
    read = project.features.online_store.read(
        [(namespace, entity_key([key]))], [(namespace, entity_key([key]), -1)]
    )
    return read.rows[0] is not None or bool(read.events[0])


@pytest.mark.slow
def test_forget_removes_the_subject_everywhere_and_nothing_else(world: World) -> None:
    project, keys = world.project, world.project.privacy.pseudonymizer
    before = snapshot(world)
    assert online(project, "spend", SUBJECT) and online(project, "pages", SUBJECT)

    report = project.forget("customer_id", str(SUBJECT))  # as the command line gives it: text

    after = snapshot(world)
    txns = before["txns"]
    pd.testing.assert_frame_equal(after["txns"], txns[txns.customer_id != SUBJECT].reset_index(drop=True))
    assert EMAIL not in after["txns"]["email"].tolist()
    pd.testing.assert_frame_equal(after["other"], before["other"])
    push = before["push"]
    pd.testing.assert_frame_equal(after["push"], push[push.customer_id != SUBJECT].reset_index(drop=True))
    subject_rows = before["predictions"]["customer_id"].map(lambda v: keys.matches(v, SUBJECT))
    assert subject_rows.sum() == 2  # the hashed row of r-mixed and the plain r-plain
    kept = before["predictions"][~subject_rows].reset_index(drop=True)
    pd.testing.assert_frame_equal(after["predictions"].astype(str), kept.astype(str))
    assert after["predictions"]["row"].tolist() == kept["row"].tolist()  # row numbers keep their labels
    labels = before["labels"]
    gone = ((labels.request_id == "r-mixed") & (labels.row == 1)) | (labels.request_id == "r-plain")
    pd.testing.assert_frame_equal(after["labels"], labels[~gone].reset_index(drop=True))
    assert not online(project, "spend", SUBJECT) and not online(project, "pages", SUBJECT)
    assert online(project, "spend", 1) and online(project, "pages", 7)

    counts = report.to_dict()
    assert counts["datasets"]["txns"]["rows"] == 3 and "other" not in counts["datasets"]
    assert counts["push_log"] == {"clicks": 1}
    assert counts["online_store"] == {"spend": 1, "pages": 1}
    assert counts["prediction_log"]["rows"] == 2 and counts["prediction_log"]["labels"] == 2
    assert report.models == ["fraud v1"]  # lineage: trained on the view that read txns
    info = project.data.info("txns")
    assert info.rows == len(after["txns"]) == 5  # the manifest's counts follow the files

    event = next(e for e in project.audit.events(action="privacy.forget") if e.action == "privacy.forget")
    text = json.dumps(event.payload)
    assert str(SUBJECT) not in json.dumps(event.payload["datasets"])
    assert EMAIL not in text and f'"{SUBJECT}"' not in text
    assert event.payload["key_hmac"] == keys.digest(SUBJECT)
    assert event.resource == "entity:customer_id"

    again = project.forget("customer_id", SUBJECT)
    assert again.removed == 0 and again.models == []
    assert snapshot(world)["txns"].equals(after["txns"])


@pytest.fixture
def local_world(sqlite_project: Project) -> World:
    return build(sqlite_project)


@pytest.mark.slow
def test_a_dry_run_counts_and_changes_nothing(local_world: World) -> None:
    world = local_world
    project = world.project
    before = snapshot(world)
    events = len(list(project.audit.events()))
    files = {p: p.stat().st_mtime_ns for p in Path(project.settings.data_url).rglob("*.parquet")}
    report = project.forget("customer_id", SUBJECT, dry_run=True)
    assert report.to_dict()["datasets"]["txns"]["rows"] == 3
    assert report.predictions.rows == 2 and report.predictions.labels == 2
    assert report.models == ["fraud v1"]
    after = snapshot(world)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame)
    assert {p: p.stat().st_mtime_ns for p in Path(project.settings.data_url).rglob("*.parquet")} == files
    assert online(project, "spend", SUBJECT)
    assert len(list(project.audit.events())) == events


def test_forget_needs_the_privacy_permission(sqlite_project: Project) -> None:
    as_analyst = sqlite_project.as_actor(Actor("analyst", grants=(Grant("data_scientist"),)))
    with pytest.raises(PermissionDenied):
        as_analyst.forget("customer_id", 1, dry_run=True)
