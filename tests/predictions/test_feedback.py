"""Feedback: labels attached to logged predictions by request id, checked, stored, joined for monitoring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import PermissionDenied
from mloop.predictions import Answer
from mloop.predictions.feedback import Feedback, Label, LabelError, labelled, read_feedback
from mloop.predictions.log import PredictionLog


@dataclass
class Actor:
    allowed: set[str] | None = None  # None: everything
    asked: list[str] = field(default_factory=list)

    def can(self, action: str, resource: str) -> bool:
        self.asked.append(f"{action} {resource}")
        return self.allowed is None or resource in self.allowed

    def require_somewhere(self, action: str, kind: str) -> None:
        self.asked.append(f"{action} any {kind}")
        if self.allowed is not None and not self.allowed:
            raise PermissionDenied(f"may not {action} on any {kind}")


@dataclass
class Caller:
    actor: Actor = field(default_factory=Actor)


def answer(rid: str, rows: int = 1, endpoint: str = "fraud") -> Answer:
    return Answer(
        rid, endpoint, "fraud", 1, 1, [0.1 * i for i in range(rows)], {"x": list(range(rows))}, 0.001
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[PredictionLog]:
    with PredictionLog(tmp_path / "_predictions") as opened:
        yield opened


def test_labels_of_logged_requests_are_stored_and_unknown_ids_reported(log: PredictionLog) -> None:
    log.record(answer("a", rows=3))
    log.record(answer("b", endpoint="recs"))
    caller = Caller()
    result = Feedback(log).attach(caller, [Label("a", True, row=2), Label("nope", 1), Label("b", "click"),
                                           Label("nope", 0)])  # fmt: skip
    assert result.to_dict() == {"accepted": 2, "unknown": ["nope"]}
    assert caller.actor.asked[0] == "predict any endpoint"  # before the lookup
    assert sorted(caller.actor.asked[1:]) == ["predict endpoint:fraud", "predict endpoint:recs"]
    stored = read_feedback(log.folder)
    assert list(zip(stored.request_id, stored.row, stored.endpoint, stored.label, strict=True)) == [
        ("a", 2, "fraud", True),
        ("b", 0, "recs", "click"),
    ]
    assert (datetime.now(UTC) - stored.received_at.iloc[0]).total_seconds() < 60
    assert read_feedback(log.folder, endpoint="recs").request_id.tolist() == ["b"]
    assert read_feedback(log.folder, since=datetime.now(UTC) + timedelta(seconds=5)).empty


def test_a_label_for_a_prediction_of_another_worker_is_found_in_its_live_segment(log: PredictionLog) -> None:
    with PredictionLog(log.folder) as other:  # a second server process writing to the same folder
        other.record(answer("elsewhere", rows=2))
        assert other.flush()
        assert Feedback(log).attach(Caller(), [Label("elsewhere", 0.0, row=1)]).accepted == 1
    # compacted now: found in Parquet
    assert Feedback(log).attach(Caller(), [Label("elsewhere", 1.0)]).accepted == 1


def test_bad_labels_are_a_422_per_item_and_nothing_is_stored(log: PredictionLog) -> None:
    log.record(answer("a", rows=2))
    items = [Label("a", 1), Label("a", float("nan")), Label("a", {"y": 1}), Label("a", [1]), Label("a", None),
             Label("a", float("inf"), row=1), Label("a", 1, row=-1)]  # fmt: skip
    with pytest.raises(LabelError) as caught:
        Feedback(log).attach(Caller(), items)
    fields = [p["field"] for p in caught.value.to_dict()]
    assert fields == ["items.1.label", "items.2.label", "items.3.label", "items.4.label", "items.5.label",
                      "items.6.row"]  # fmt: skip
    assert "nan (not a finite number)" in str(caught.value) and "an object" in str(caught.value)
    with pytest.raises(LabelError, match="0 to 1"):
        Feedback(log).attach(Caller(), [Label("a", 1, row=2)])  # the request has rows 0 and 1
    assert read_feedback(log.folder).empty


def test_a_request_of_an_endpoint_the_caller_may_not_predict_on_is_unknown_to_it(log: PredictionLog) -> None:
    log.record(answer("a"))
    log.record(answer("b", rows=2, endpoint="secret"))
    caller = Caller(Actor(allowed={"endpoint:fraud"}))
    result = Feedback(log).attach(caller, [Label("a", 1), Label("b", 1, row=7)])  # row 7 of a 2-row request
    assert result.to_dict() == {"accepted": 1, "unknown": ["b"]}  # no 403, no row range: nothing told
    assert read_feedback(log.folder).request_id.tolist() == ["a"]
    with pytest.raises(PermissionDenied, match="any endpoint"):
        Feedback(log).attach(Caller(Actor(allowed=set())), [Label("a", 1)])


def test_labelled_joins_the_newest_label_of_each_row(log: PredictionLog) -> None:
    log.record(answer("a", rows=2))
    log.record(answer("b"))
    log.record(answer("c", endpoint="recs"))
    feedback = Feedback(log)
    feedback.attach(Caller(), [Label("a", 0, row=1), Label("c", 1)])
    feedback.attach(Caller(), [Label("a", 1, row=1)])  # a correction
    joined = feedback.labelled("fraud")
    assert joined[["request_id", "row", "label"]].values.tolist() == [["a", 1, 1]]
    assert joined["prediction"].tolist() == [pytest.approx(0.1)] and joined["x"].tolist() == [1]
    log.close()
    assert labelled(log.folder)["request_id"].tolist() == ["a", "c"]  # from Parquet, after the close
    assert labelled(log.folder, since=datetime.now(UTC) + timedelta(seconds=5)).empty


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=50)))  # fmt: skip
def test_labels_keep_their_value_and_type(log: PredictionLog, value: Any) -> None:
    rid = f"h{len(read_feedback(log.folder))}"
    log.record(answer(rid))
    Feedback(log).attach(Caller(), [Label(rid, value)])
    stored = read_feedback(log.folder)
    got = stored.loc[stored.request_id == rid, "label"].tolist()[0]
    assert got == value and type(got) is type(value)


# ---- over HTTP --------------------------------------------------------------------------------------
