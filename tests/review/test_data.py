"""The data checks, each made to fail and pass on a real project: a fraud model trained on features of an
ingested ``transactions`` dataset (a share of its rows quarantined), deployed on ``fraud``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm
import pytest

import mloop as ml
from mloop import Column, Dataset, Project
from mloop._time import utcnow
from mloop.examples import fraud
from mloop.examples.fraud.generate import generate
from tests.review.conftest import finding, fraud_project, reopen

BROKEN = 150  # of 3,000 rows: 5%, quarantined for an amount below the schema's min


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("data")
    project = Project.open(root, env={})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    txns, labels = generate(3_000, start=start, days=30, customers=300, merchants=60, fraud_rate=0.05, seed=3)
    txns["ts"] = txns["ts"].astype("datetime64[us, UTC]")
    txns.loc[txns.index[:BROKEN], "amount"] = -1.0
    txns.to_parquet(root / "txns.parquet", index=False)
    project.data.ingest(root / "txns.parquet", "transactions",
                        schema=Path(fraud.__file__).parent / "transactions.yaml")  # fmt: skip
    customer = ml.Entity("customer", join_keys=["customer_id"])
    stats = ml.FeatureView("customer_stats", entities=[customer], source=ml.DatasetSource(dataset="transactions"),
                           ttl="30d", aggregations=[ml.Aggregation("amount", "mean", "7d"),
                                                    ml.Aggregation("amount", "count", "24h")])  # fmt: skip
    project.apply([customer, stats])
    frame = txns[["txn_id", "customer_id", "ts"]].merge(labels[["txn_id", "is_fraud"]])
    ml.TrainingPipeline(
        "fraud", features=["customer_stats:*"], label=ml.Label(frame, column="is_fraud", timestamp="ts"),
        model=lightgbm.LGBMClassifier(n_estimators=20, verbose=-1), split=ml.TimeSplit(valid="5d", test="5d"),
    ).run(project)  # fmt: skip
    project.deploy("fraud", "fraud", version=1)
    yield project
    project.close()


def test_an_inferred_schema_fails_until_one_is_declared(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        assert finding(project, "data.schema").status == "n/a"
        source = tmp_path / "scores.csv"
        source.write_text("id,amount\n1,10.5\n2,3\n")
        project.data.ingest(source, "scores")  # no schema: inferred from the file
        inferred = finding(project, "data.schema")
        assert inferred.status == "fail" and inferred.check.mlts == ("data-1",)
        assert inferred.outcome.refs == ("dataset:scores",)
        assert "as inferred (no key, no constraint)" in inferred.outcome.evidence[0]
        project.data.set_schema(Dataset("scores", columns=[Column("id", "int64", nullable=False),
                                                           Column("amount", "float64", min=0)], key="id"))  # fmt: skip
        assert finding(project, "data.schema").status == "pass"
    finally:
        project.close()


def test_a_schema_declared_at_ingestion_passes(trained: Project) -> None:
    declared = finding(trained, "data.schema")
    assert declared.status == "pass"
    assert "declares key ['txn_id']" in declared.outcome.evidence[0]


def test_a_serving_model_trained_on_a_dataset_quarantining_too_much_fails(trained: Project) -> None:
    info = trained.data.info("transactions")
    assert info.quarantined == BROKEN
    at_limit = finding(trained, "data.quarantine")  # 5.0% against the default 5%: not over
    assert at_limit.status == "pass"
    assert at_limit.outcome.evidence[0] == (
        f"dataset transactions: {BROKEN} of 3000 rows quarantined (5.0%), trained on by fraud/1"
    )
    strict = reopen(trained, review={"thresholds": {"quarantine_share": 0.01}})
    try:
        over = finding(strict, "data.quarantine")
        assert over.status == "fail" and over.outcome.refs == ("dataset:transactions", "model:fraud/1")
    finally:
        strict.close()
        reopen(trained, review=None).close()


def test_a_model_on_parquet_features_is_not_applicable_to_quarantine(tmp_path: Path) -> None:
    project = fraud_project(tmp_path)
    try:
        assert finding(project, "data.quarantine").status == "n/a"
        assert finding(project, "data.unused-features").status == "pass"  # every view feeds fraud
    finally:
        project.close()


def test_online_features_older_than_their_ttl_fail(trained: Project) -> None:
    never = finding(trained, "data.freshness")
    assert never.status == "fail" and never.weight == "high" and never.check.mlts == ("monitor-3",)
    assert never.outcome.evidence == ("feature view customer_stats (read by fraud): never materialized",)
    trained.features.materialize(utcnow() - timedelta(days=31), utcnow())
    fresh = finding(trained, "data.freshness")
    assert fresh.status == "pass" and "ttl 30d" in fresh.outcome.evidence[0]
    later = finding(trained, "data.freshness", now=utcnow() + timedelta(days=31))
    assert later.status == "fail" and later.outcome.refs == ("feature_view:customer_stats",)


def test_a_feature_view_no_model_uses_fails_until_it_is_deleted(trained: Project) -> None:
    assert finding(trained, "data.unused-features").status == "pass"
    customer = ml.Entity("customer", join_keys=["customer_id"])
    spare = ml.FeatureView("customer_spare", entities=[customer], source=ml.DatasetSource(dataset="transactions"),
                           ttl="7d", aggregations=[ml.Aggregation("amount", "max", "24h")])  # fmt: skip
    trained.apply([spare])
    try:
        unused = finding(trained, "data.unused-features")
        assert unused.status == "fail" and unused.outcome.refs == ("feature_view:customer_spare",)
        assert "feature view customer_stats: used by fraud/1" in unused.outcome.evidence
    finally:
        trained.features.delete("customer_spare")
    assert finding(trained, "data.unused-features").status == "pass"
