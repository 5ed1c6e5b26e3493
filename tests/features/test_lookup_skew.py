"""Online reads across hosts whose clocks disagree (docs/reliability.md, "Clock skew"): an event a writer
stamped a little in the reader's future counts in the windows now; a TTL is judged on the reader's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mloop as ml
from mloop._time import CLOCK_SKEW

CUSTOMER = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
TAPS = ml.PushSource(
    "taps",
    schema=[ml.Field("customer_id", "int64"), ml.Field("amount", "float64"), ml.Field("ts", "timestamp")],
)
VIEW = ml.FeatureView("taps", entities=[CUSTOMER], source=TAPS, ttl="2m",
                      features=[ml.Field("amount", "float64")],
                      aggregations=[ml.Aggregation("amount", "count", "1h")])  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ml.Project]:
    project = ml.Project.open(tmp_path, env={})
    project.apply([CUSTOMER, TAPS, VIEW])
    yield project
    project.close()


def test_an_event_stamped_in_the_readers_near_future_counts_now(project: ml.Project) -> None:
    now = datetime.now(UTC)
    project.features.push("taps", [
        {"customer_id": 1, "amount": 1.0, "ts": now - timedelta(minutes=10)},
        {"customer_id": 1, "amount": 2.0, "ts": now + timedelta(minutes=5)},  # a writer 5 minutes ahead
        {"customer_id": 2, "amount": 4.0, "ts": now + CLOCK_SKEW + timedelta(minutes=5)},  # beyond any skew
    ])  # fmt: skip
    got = project.features.online([{"customer_id": 1}, {"customer_id": 2}], ["taps:amount_count_1h"])
    assert got["amount_count_1h"] == [2, 0]
    # As of a given time (a replay), an event after it has not happened: the offline semantics.
    replayed = project.features.online([{"customer_id": 1}], ["taps:amount_count_1h"], at=now)
    assert replayed["amount_count_1h"] == [1]


def test_a_ttl_is_judged_on_the_readers_clock(project: ml.Project) -> None:
    now = datetime.now(UTC)
    project.features.push("taps", [
        {"customer_id": 1, "amount": 1.0, "ts": now + timedelta(minutes=5)},  # the writer 5 minutes ahead
        {"customer_id": 2, "amount": 2.0, "ts": now - timedelta(minutes=5)},  # or the reader 5 minutes ahead
    ])  # fmt: skip
    got = project.features.online([{"customer_id": 1}, {"customer_id": 2}], ["taps:amount"])
    assert got["amount"] == [1.0, None]  # 5 minutes old on the reader's clock: past the 2-minute TTL
