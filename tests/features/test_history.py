"""The history of feature definitions (versions paged in SQL, diffs between any two) and the row counts
read from the metadata alone, on each metadata backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import mloop as ml
from mloop import Actor, Grant, NotFound, PermissionDenied, Project

customer = ml.Entity("customer", join_keys=["customer_id"])
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _view(ttl: str = "2d", *extra: ml.Field) -> ml.FeatureView:
    return ml.FeatureView("amounts", entities=[customer], source=ml.DatasetSource("txns"), ttl=ttl,
                          features=[ml.Field("amount", "float64"), *extra])  # fmt: skip


@pytest.fixture
def applied(project: Project) -> Project:
    txns = pd.DataFrame({"txn_id": range(40), "customer_id": [i % 4 for i in range(40)],
                         "ts": [T0 + timedelta(hours=i) for i in range(40)],
                         "amount": [float(i) for i in range(40)], "channel": ["web"] * 40})  # fmt: skip
    project.data.ingest(txns, "txns")
    project.apply([_view()])
    project.apply([_view("7d")])
    project.apply([_view("7d", ml.Field("channel", "string"))])
    return project


def test_versions_are_paged_newest_first_and_diffed(applied: Project) -> None:
    newest, total = applied.features.versions("amounts", limit=2)
    older, _ = applied.features.versions("amounts", offset=2, limit=2)
    assert total == 3 and [v.version for v in newest + older] == [3, 2, 1]
    assert newest[0].spec["ttl"] == "7d" and older[0].spec["ttl"] == "2d"
    assert newest[0].created_by == applied.actor.name and newest[0].deleted_at is None
    assert applied.features.diff("amounts", 1, 2) == ["ttl: '2d' -> '7d'"]
    assert applied.features.diff("amounts", 2, 3) == ["features: + channel"]
    assert applied.features.versions("customer", kind="entity")[1] == 1
    with pytest.raises(NotFound, match="has no version 9"):
        applied.features.diff("amounts", 1, 9)
    with pytest.raises(NotFound, match="No feature view named 'nope'"):
        applied.features.versions("nope")


def test_the_view_page_and_row_counts_come_from_the_metadata(applied: Project) -> None:
    other = ml.FeatureView("zz_unmaterialized", entities=[customer], source=ml.DatasetSource("txns"),
                           features=[ml.Field("channel", "string")])  # fmt: skip
    applied.apply([other])
    page, total = applied.features.view_page(limit=1)
    rest, _ = applied.features.view_page(offset=1, limit=5)
    assert total == 2 and [(v.name, v.version) for v in page + rest] == [
        ("amounts", 3),
        ("zz_unmaterialized", 1),
    ]
    before = applied.features.row_counts()
    assert (before["amounts"].online, before["amounts"].offline) == (None, 40)
    applied.features.materialize(T0 - timedelta(hours=1), T0 + timedelta(days=2), views=["amounts"])
    counts = applied.features.row_counts(views=["amounts"])
    # Two daily chunks (the events span 40 hours), each writing the newest row of each of the 4 customers.
    assert list(counts) == ["amounts"] and counts["amounts"].online == 8
    assert [f.view for f in applied.features.freshness(views=["amounts"])] == ["amounts"]
    applied.features.delete("zz_unmaterialized")
    assert applied.features.view_page()[1] == 1
    assert applied.features.versions("zz_unmaterialized")[0][0].deleted_at is not None


def test_reading_the_history_needs_features_read(applied: Project) -> None:
    stranger = applied.as_actor(Actor("sam", grants=(Grant("data_engineer", "dataset:*"),)))
    for call in (lambda: stranger.features.versions("amounts"), stranger.features.view_page,
                 stranger.features.row_counts):  # fmt: skip
        with pytest.raises(PermissionDenied, match="features.read"):
            call()
