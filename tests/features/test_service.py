"""The feature store end to end through ``project.features``: training sets, materialization, the
online store, push, TTLs, on-demand features — and the same values offline and online."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from tests.features.fixtures import T0, at, customer, ratio, transactions, views, write


@pytest.fixture
def txns() -> pd.DataFrame:
    return transactions()


@pytest.fixture
def ready(sqlite_project: Project, tmp_path: Path, txns: pd.DataFrame) -> Project:
    path = write(txns, tmp_path / "txns.parquet")
    last, stats = views(path)
    sqlite_project.apply([last, stats, ratio])
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    return sqlite_project


def _close(a: object, b: object) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]
    return a == b


def test_online_equals_offline_for_every_aggregation(ready: Project) -> None:
    """The acceptance test of rule 3: one definition, the same value offline and online."""
    customers = list(range(1, 13))
    names = [a.feature for a in ready.features.get("customer_stats").aggregations]  # type: ignore[union-attr]
    online = ready.features.online({"customer_id": customers}, ["customer_stats:*"], at=at)
    entity_df = pd.DataFrame({"customer_id": customers, "event_timestamp": [at] * len(customers)})
    offline = ready.features.historical(entity_df, ["customer_stats:*"])
    for name in names:
        for i, value in enumerate(online[name]):
            expected = offline[name].iloc[i]
            expected = (
                None if pd.isna(expected) else expected.item() if hasattr(expected, "item") else expected
            )
            assert _close(value, expected), (name, customers[i], value, expected)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.sampled_from([1, 3, 5, 99]), min_size=1, max_size=30))
def test_a_repeated_entity_gets_the_same_values_on_every_row(ready: Project, keys: list[int]) -> None:
    # A ranker's request repeats its user on each of its candidates: each distinct entity is read and
    # aggregated once, and every row still gets its own (equal) values, the unknown 99 its nulls.
    refs = ["customer_stats:*", "customer_last:amount"]
    once = {k: ready.features.online({"customer_id": [k]}, refs, at=at) for k in set(keys)}
    got = ready.features.online({"customer_id": keys}, refs, at=at)
    assert got["customer_id"] == keys
    for name, values in got.items():
        assert all(_close(v, once[k][name][0]) for v, k in zip(values, keys, strict=True)), name


def test_online_plain_features_are_the_latest_row_within_ttl(ready: Project, txns: pd.DataFrame) -> None:
    result = ready.features.online(
        [{"customer_id": 3}, {"customer_id": 99}], ["customer_last:amount", "customer_last:merchant"]
    )
    latest = txns[txns.customer_id == 3].sort_values("ts").iloc[-1]
    # "now" is 2026 real time, far past the 2-day TTL of data from March 2026? Only if now is later.
    if (pd.Timestamp.now(tz="UTC") - latest.ts) > pd.Timedelta(days=2):
        assert result["amount"] == [None, None]  # stale: older than the TTL
    result = ready.features.online([{"customer_id": 3}, {"customer_id": 99}], ["customer_last:amount"], at=at)
    assert result == {"customer_id": [3, 99], "amount": [latest.amount, None]}


def test_historical_with_on_demand_features_matches_online(ready: Project) -> None:
    entity_df = pd.DataFrame(
        {"customer_id": [1, 2, 3], "event_timestamp": [at] * 3, "request_amount": [10.0, 20.0, 30.0]}
    )
    offline = ready.features.historical(entity_df, ["amount_ratio:amount_vs_mean"])
    assert list(offline.columns) == ["customer_id", "event_timestamp", "request_amount", "amount_vs_mean"]
    online = ready.features.online(
        entity_df.drop(columns="event_timestamp").to_dict("records"), ["amount_ratio:*"], at=at
    )
    for a, b in zip(online["amount_vs_mean"], offline["amount_vs_mean"], strict=True):
        assert _close(a, None if pd.isna(b) else float(b))


def test_push_is_online_at_once_and_in_later_training_sets(data_project: Project) -> None:
    source = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                             ml.Field("page", "string")])  # fmt: skip
    view = ml.FeatureView("customer_clicks", entities=[customer], source=source, ttl="1h",
                          features=[ml.Field("page", "string")],
                          aggregations=[ml.Aggregation("page", "count", "1h")])  # fmt: skip
    data_project.apply([view])
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rows = [{"customer_id": 7, "ts": now - pd.Timedelta(minutes=5), "page": "home"},
            {"customer_id": 7, "ts": now - pd.Timedelta(minutes=1), "page": "cart"}]  # fmt: skip
    report = data_project.features.push("clicks", rows)
    assert report.rows == 2 and report.views == ["customer_clicks"]
    online = data_project.features.online({"customer_id": [7]}, ["customer_clicks:*"])
    assert online == {"customer_id": [7], "page": ["cart"], "page_count_1h": [2]}
    data_project.features.push("clicks", rows)  # a retry: the same events, counted once
    assert data_project.features.online({"customer_id": [7]}, ["customer_clicks:page_count_1h"])[
        "page_count_1h"
    ] == [2]
    later = pd.DataFrame({"customer_id": [7], "event_timestamp": [now]})
    offline = data_project.features.historical(later, ["customer_clicks:*"])
    assert offline["page"].tolist() == ["cart"] and offline["page_count_1h"].tolist() == [2]


def test_push_rejects_rows_that_do_not_fit(sqlite_project: Project) -> None:
    source = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp")])
    sqlite_project.apply(
        [ml.FeatureView("c", entities=[customer], source=source, features=[ml.Field("ts", "timestamp")])]
    )
    with pytest.raises(SchemaError, match="missing \\['ts'\\]"):
        sqlite_project.features.push("clicks", [{"customer_id": 1}])
    with pytest.raises(SchemaError, match="naive timestamps"):
        sqlite_project.features.push("clicks", [{"customer_id": 1, "ts": pd.Timestamp("2026-01-01")}])
    with pytest.raises(SchemaError, match="No push source named 'nope'"):
        sqlite_project.features.push("nope", [{"customer_id": 1}])


def test_push_refuses_an_out_of_range_integer_and_an_empty_join_key(sqlite_project: Project) -> None:
    """Issue 17, item 6: an integer above int64 was a 500 (OverflowError) and a null join key was written
    to the online store, where no lookup finds it. Both are a SchemaError (422) and nothing is written."""
    source = ml.PushSource("taps", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                           ml.Field("n", "int64")])  # fmt: skip
    sqlite_project.apply([ml.FeatureView("customer_taps", entities=[customer], source=source, ttl="1h",
                                         features=[ml.Field("n", "int64")])])  # fmt: skip
    now = pd.Timestamp.now(tz="UTC").floor("s")
    with pytest.raises(SchemaError, match="'n' holds a number out of the range of int64"):
        sqlite_project.features.push("taps", [{"customer_id": 1, "ts": now, "n": 2**70}])
    rows = [{"customer_id": 1, "ts": now, "n": 1}, {"customer_id": None, "ts": now, "n": 2}]
    with pytest.raises(
        SchemaError,
        match=r"'customer_id', the join key of feature view 'customer_taps', is empty in row\(s\) 1",
    ):
        sqlite_project.features.push("taps", rows)
    assert sqlite_project.features.online({"customer_id": [1]}, ["customer_taps:n"]) == {
        "customer_id": [1], "n": [None]}  # fmt: skip
    logged = lambda: list((Path(sqlite_project.root) / ".mloop").rglob("_push/taps/**/*.parquet"))  # noqa: E731
    assert not logged()  # nothing in the offline log either
    sqlite_project.features.push("taps", rows[:1])
    assert sqlite_project.features.online({"customer_id": [1]}, ["customer_taps:n"])["n"] == [1]
    assert len(logged()) == 1


def test_incremental_materialization_resumes_from_the_watermark(
    sqlite_project: Project, tmp_path: Path, txns: pd.DataFrame
) -> None:
    path = write(txns, tmp_path / "txns.parquet")
    last, _ = views(path)
    sqlite_project.apply([last])
    first = sqlite_project.features.materialize_incremental(T0 + timedelta(days=2))
    assert first.views["customer_last"]["chunks"] >= 2
    second = sqlite_project.features.materialize_incremental(at)
    assert second.views["customer_last"]["chunks"] == 2  # only (day 2, day 4]
    fresh = {f.view: f for f in sqlite_project.features.freshness()}["customer_last"]
    assert fresh.watermark == at and fresh.last_event_ts <= at
    assert sqlite_project.audit.events(action="features.materialize")


def test_every_committed_chunk_has_its_audit_event_even_when_a_run_dies(
    sqlite_project: Project, tmp_path: Path, txns: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17, item 8: after a kill, 21 committed chunks had no audit event (one event was written at
    the end of the run). A chunk and its event are one transaction."""
    from mloop.features import materialize_run as run_module

    path = write(txns, tmp_path / "txns.parquet")
    last, _ = views(path)
    sqlite_project.apply([last])
    real, calls = run_module.materialize_chunk, {"n": 0}

    def dies_on_the_third(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a kill would stop it: between two chunks' writes
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "materialize_chunk", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        sqlite_project.features.materialize_incremental(at, chunk="12h")
    events = sqlite_project.audit.events(action="features.materialize_chunk")
    assert len(events) == 2  # the two chunks committed before the stop, each with its event
    assert {e.resource for e in events} == {"feature_view:customer_last"}
    monkeypatch.setattr(run_module, "materialize_chunk", real)
    resumed = sqlite_project.features.materialize_incremental(at, chunk="12h")
    chunks = resumed.views["customer_last"]["chunks"]
    assert len(sqlite_project.audit.events(action="features.materialize_chunk")) == 2 + chunks


def test_unknown_features_and_missing_keys_are_clear_errors(ready: Project) -> None:
    with pytest.raises(SchemaError, match="Unknown feature view 'nope'"):
        ready.features.online({"customer_id": [1]}, ["nope:x"])
    with pytest.raises(SchemaError, match="has no feature 'x'"):
        ready.features.online({"customer_id": [1]}, ["customer_stats:x"])
    with pytest.raises(SchemaError, match="lack \\['customer_id'\\]"):
        ready.features.online({"client": [1]}, ["customer_stats:*"])


def test_a_dataset_source_reads_only_committed_ingestions(data_project: Project, txns: pd.DataFrame) -> None:
    schema = ml.Dataset("txns", key=["txn_id"], timestamp="ts", columns=[
        ml.Column("txn_id", "int64"), ml.Column("customer_id", "int64"), ml.Column("ts", "timestamp"),
        ml.Column("amount", "float64", min=0), ml.Column("merchant", "string"), ml.Column("country", "string"),
    ])  # fmt: skip
    data_project.data.ingest(txns, schema)
    view = ml.FeatureView("customer_amounts", entities=[customer], source=ml.DatasetSource("txns"), ttl="2d",
                          features=[ml.Field("amount", "float64")],
                          aggregations=[ml.Aggregation("amount", "count", "24h")])  # fmt: skip
    data_project.apply([view])
    stored = data_project.features.definitions()[("feature_view", "customer_amounts")].spec
    assert stored["source"] == {
        "type": "dataset",
        "dataset": "txns",
        "timestamp": "ts",
        "created_timestamp": None,
    }
    entity_df = pd.DataFrame({"customer_id": [3], "event_timestamp": [at]})
    offline = data_project.features.historical(entity_df, ["customer_amounts:*"])
    latest = txns[(txns.customer_id == 3) & (txns.ts <= at)].sort_values("ts").iloc[-1]
    assert offline["amount"].tolist() == [latest.amount]
    data_project.features.materialize(T0 - timedelta(days=1), at)
    online = data_project.features.online({"customer_id": [3]}, ["customer_amounts:*"], at=at)
    assert online["amount"] == [latest.amount]
    assert online["amount_count_24h"] == offline["amount_count_24h"].tolist()


def test_a_dataset_source_needs_an_ingested_dataset(sqlite_project: Project) -> None:
    view = ml.FeatureView(
        "v", entities=[customer], source=ml.DatasetSource("nothing"), features=[ml.Field("a")]
    )
    with pytest.raises(ml.NotFound, match="No dataset named 'nothing'"):
        sqlite_project.apply([view])


def request_only(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"currency_upper": frame["currency"].astype(str).str.upper()})


def test_an_on_demand_view_of_request_fields_only_answers_every_row(ready: Project) -> None:
    view = ml.OnDemandView("currency", request=[ml.Field("currency", "string")], fn=request_only,
                           outputs=[ml.Field("currency_upper", "string")])  # fmt: skip
    ready.apply([view])
    rows = [{"customer_id": 1, "currency": "eur"}, {"customer_id": 2, "currency": "chf"}]
    online = ready.features.online(rows, ["currency:currency_upper"], at=at)
    assert online["currency_upper"] == ["EUR", "CHF"]
    entity_df = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at] * 2, "currency": ["eur", "chf"]})
    assert ready.features.historical(entity_df, ["currency:currency_upper"])["currency_upper"].tolist() == [
        "EUR",
        "CHF",
    ]
