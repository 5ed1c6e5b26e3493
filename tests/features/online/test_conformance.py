"""The online store contract, run against every backend (SQLite and Redis)."""

from __future__ import annotations

import math
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import BackendNotInstalled, ConfigError, OnlineStoreUnavailable
from mloop.features.online import OnlineEvent, OnlineRow, OnlineStore, entity_key, open_online_store
from mloop.features.online.sqlite import SqliteOnlineStore

# Hypothesis reuses the function's store across examples; each example writes to a view of its own.
examples = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty online store, once for each backend: the conformance parameter."""
    if request.param == "sqlite":
        return str(tmp_path / "online.db")
    try:
        import redis  # noqa: F401
    except ImportError:
        from tests.services import unavailable

        unavailable("the redis client is not installed (pip install 'mloop[redis]')")
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def online_store(online_url: str) -> Iterator[OnlineStore]:
    store = open_online_store(online_url)
    try:
        yield store
    finally:
        store.close()


def fresh_view() -> str:
    return f"v_{uuid.uuid4().hex[:10]}"


def row(key: str, event_ts: int, created_ts: int = 0, **values: Any) -> OnlineRow:
    return OnlineRow(key, event_ts, created_ts, values)


def event(key: str, event_ts: int, event_id: str, **values: Any) -> OnlineEvent:
    return OnlineEvent(key, event_ts, event_id, values)


def latest(store: OnlineStore, view: str, key: str) -> OnlineRow | None:
    return store.read([(view, key)]).rows[0]


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and the type kept (True is not 1, 1.0 is not 1)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- rows: forward-only upsert ---------------------------------------------------------------------------


def test_a_written_row_reads_back(online_store: OnlineStore) -> None:
    assert online_store.write("stats", [row("42", 100, 5, spend=3.5, n=2)]) == 1
    assert latest(online_store, "stats", "42") == OnlineRow("42", 100, 5, {"spend": 3.5, "n": 2})


def test_an_older_row_never_overwrites_a_newer_one(online_store: OnlineStore) -> None:
    online_store.write("stats", [row("k", 200, 1, x=2)])
    assert online_store.write("stats", [row("k", 100, 9, x=1)]) == 0
    assert latest(online_store, "stats", "k") == row("k", 200, 1, x=2)


def test_a_newer_row_replaces_the_stored_one(online_store: OnlineStore) -> None:
    online_store.write("stats", [row("k", 100, 9, x=1, gone=True)])
    assert online_store.write("stats", [row("k", 200, 1, x=2)]) == 1
    assert latest(online_store, "stats", "k") == row("k", 200, 1, x=2)


def test_equal_event_times_are_decided_by_created_time(online_store: OnlineStore) -> None:
    online_store.write("stats", [row("k", 100, 5, x="first")])
    assert online_store.write("stats", [row("k", 100, 4, x="older correction")]) == 0
    assert latest(online_store, "stats", "k") == row("k", 100, 5, x="first")
    assert online_store.write("stats", [row("k", 100, 6, x="newer correction")]) == 1
    assert latest(online_store, "stats", "k") == row("k", 100, 6, x="newer correction")
    # A full tie is a rewrite of the same record: the later write wins.
    assert online_store.write("stats", [row("k", 100, 6, x="rewrite")]) == 1
    assert latest(online_store, "stats", "k") == row("k", 100, 6, x="rewrite")


def test_a_batch_mixing_keys_and_out_of_order_rows_keeps_each_keys_newest(online_store: OnlineStore) -> None:
    batch = [row("a", 3, x=3), row("b", 1, x=1), row("a", 1, x=1), row("b", 5, x=5), row("a", 2, x=2)]
    assert online_store.write("stats", batch) == 2  # one write per key that moved forward
    got = online_store.read([("stats", "a"), ("stats", "b")]).rows
    assert got == [row("a", 3, x=3), row("b", 5, x=5)]


def test_an_empty_batch_writes_nothing(online_store: OnlineStore) -> None:
    assert online_store.write("stats", []) == 0
    assert online_store.add_events("stats", []) == 0


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.integers(0, 3)), max_size=20
)


@examples
@given(batches=st.lists(rows_strategy, min_size=1, max_size=4))
def test_after_any_sequence_of_batches_each_key_holds_its_newest_row(
    online_store: OnlineStore, batches: list[list[tuple[str, int, int]]]
) -> None:
    view, expected, serial = fresh_view(), {}, 0
    for batch in batches:
        rows = []
        for key, event_ts, created_ts in batch:
            serial += 1
            rows.append(row(key, event_ts, created_ts, serial=serial))
            seen = expected.get(key)
            if seen is None or (event_ts, created_ts) >= (seen.event_ts, seen.created_ts):
                expected[key] = rows[-1]
        online_store.write(view, rows)
    got = online_store.read([(view, k) for k in "abc"]).rows
    assert got == [expected.get(k) for k in "abc"]


def test_a_large_batch_is_written_whole(online_store: OnlineStore) -> None:
    rows = [row(str(i % 15_000), i, 0, i=i) for i in range(30_000)]
    assert online_store.write("big", rows) == 15_000
    got = online_store.read([("big", str(k)) for k in range(0, 15_000, 7)]).rows
    assert [r.values["i"] if r else None for r in got] == [k + 15_000 for k in range(0, 15_000, 7)]


# --- values ------------------------------------------------------------------------------------------------

EVERY_KIND = {
    "zero": 0,
    "negative": -7,
    "int64_max": 2**63 - 1,
    "beyond_int64": 2**64 + 1,
    "very_negative": -(2**70),
    "float": 0.1,
    "negative_zero": -0.0,
    "huge_float": 1.7976931348623157e308,
    "tiny_float": 5e-324,
    "integral_float": 3.0,
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "true": True,
    "false": False,
    "none": None,
    "empty": "",
    "unicode": "héllo wörld 日本 🚀",
    "escapes": 'quote " backslash \\ newline \n tab \t nul \x00 space end ',
    "embedding": [0.25, -1.5, 3.0],
}


def test_values_of_every_kind_round_trip(online_store: OnlineStore) -> None:
    online_store.write("kinds", [OnlineRow("k", 1, 1, EVERY_KIND)])
    online_store.add_events("kinds", [OnlineEvent("k", 1, "e1", EVERY_KIND)])
    answer = online_store.read([("kinds", "k")], [("kinds", "k", 0)])
    for values in (answer.rows[0].values, answer.events[0][0].values):  # type: ignore[union-attr]
        assert values.keys() == EVERY_KIND.keys()
        for name, value in EVERY_KIND.items():
            assert same(values[name], value), name
        assert math.copysign(1, values["negative_zero"]) == -1


def test_numpy_scalars_are_stored_as_python_values(online_store: OnlineStore) -> None:
    values = {
        "i": np.int64(-3),
        "i32": np.int32(7),
        "f": np.float64(0.5),
        "f32": np.float32(0.25),
        "b": np.bool_(True),
    }
    online_store.write("np", [OnlineRow("k", 1, 1, values)])
    got = latest(online_store, "np", "k").values  # type: ignore[union-attr]
    assert [(type(v), v) for v in got.values()] == [
        (int, -3),
        (int, 7),
        (float, 0.5),
        (float, 0.25),
        (bool, True),
    ]


def test_a_value_that_cannot_be_stored_refuses_the_whole_batch(online_store: OnlineStore) -> None:
    with pytest.raises(TypeError, match="bytes is not a feature value"):
        online_store.write("bad", [row("ok", 1, x=1), row("bad", 1, x=b"raw bytes")])
    assert online_store.read([("bad", "ok"), ("bad", "bad")]).rows == [None, None]


feature_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)


@examples
@given(values=st.dictionaries(st.text(max_size=12), feature_value, max_size=8), key=st.text(min_size=1))
def test_any_values_and_any_key_round_trip(
    online_store: OnlineStore, values: dict[str, Any], key: str
) -> None:
    view = fresh_view()
    online_store.write(view, [OnlineRow(key, 1, 1, values)])
    online_store.add_events(view, [OnlineEvent(key, 1, key, values)])
    answer = online_store.read([(view, key)], [(view, key, 0)])
    assert answer.rows[0] is not None and answer.rows[0].key == key
    assert answer.events[0][0].event_id == key
    for got in (answer.rows[0].values, answer.events[0][0].values):
        assert got.keys() == values.keys()
        assert all(same(got[name], value) for name, value in values.items())


# --- events ------------------------------------------------------------------------------------------------


def test_an_event_added_twice_is_stored_once(online_store: OnlineStore) -> None:
    assert (
        online_store.add_events(
            "txns", [event("c1", 10, "t1", amount=5.0), event("c1", 10, "t1", amount=5.0)]
        )
        == 1
    )
    assert (
        online_store.add_events(
            "txns", [event("c1", 10, "t1", amount=5.0), event("c1", 20, "t2", amount=1.0)]
        )
        == 1
    )
    assert online_store.read([], [("txns", "c1", 0)]).events == [
        [event("c1", 10, "t1", amount=5.0), event("c1", 20, "t2", amount=1.0)]
    ]


def test_the_same_event_id_under_another_key_or_view_is_another_event(online_store: OnlineStore) -> None:
    assert online_store.add_events("txns", [event("c1", 10, "t1"), event("c2", 10, "t1")]) == 2
    assert online_store.add_events("refunds", [event("c1", 10, "t1")]) == 1


def test_a_range_read_is_exclusive_of_since_and_oldest_first(online_store: OnlineStore) -> None:
    online_store.add_events(
        "txns", [event("c", 30, "x", n=3), event("c", 10, "y", n=1), event("c", 20, "z", n=2)]
    )
    answer = online_store.read(
        [], [("txns", "c", 9), ("txns", "c", 10), ("txns", "c", 20), ("txns", "c", 30)]
    )
    assert [[e.values["n"] for e in found] for found in answer.events] == [[1, 2, 3], [2, 3], [3], []]
    assert answer.rows == []


def test_events_at_the_same_time_come_in_event_id_order(online_store: OnlineStore) -> None:
    ids = ["b", "a", "ab", "a b", "é", "Z", "10", "9"]
    online_store.add_events("txns", [event("c", 5, i) for i in ids])
    (found,) = online_store.read([], [("txns", "c", 0)]).events
    assert [e.event_id for e in found] == sorted(ids)


def test_trim_deletes_the_views_events_up_to_and_including_before(online_store: OnlineStore) -> None:
    online_store.add_events("txns", [event(k, ts, f"{k}{ts}") for k in ("a", "b") for ts in (10, 20, 30)])
    online_store.add_events("other", [event("a", 10, "o")])
    assert online_store.trim("txns", 20) == 4
    answer = online_store.read([], [("txns", "a", 0), ("txns", "b", 0), ("other", "a", 0)])
    assert [[e.event_id for e in found] for found in answer.events] == [["a30"], ["b30"], ["o"]]
    assert online_store.trim("txns", 20) == 0
    assert online_store.trim("txns", 100) == 2
    assert online_store.read([], [("txns", "a", 0)]).events == [[]]
    # A trimmed key takes events again.
    assert online_store.add_events("txns", [event("a", 40, "a40")]) == 1
    assert [e.event_id for e in online_store.read([], [("txns", "a", 0)]).events[0]] == ["a40"]


# --- reads -------------------------------------------------------------------------------------------------


def test_missing_keys_read_as_none_and_empty(online_store: OnlineStore) -> None:
    online_store.write("stats", [row("here", 1, x=1)])
    answer = online_store.read(
        [("stats", "nope"), ("stats", "here"), ("stats", "nope"), ("no_view", "here")],
        [("stats", "here", 0), ("no_view", "x", 0)],
    )
    assert answer.rows == [None, row("here", 1, x=1), None, None]
    assert answer.events == [[], []]
    assert online_store.read([]).rows == []


def test_one_call_reads_rows_and_events_of_several_views(online_store: OnlineStore) -> None:
    online_store.write("profile", [row("c1", 1, age=30), row("c2", 1, age=40)])
    online_store.write("stats", [row("c1", 2, spend=9.5)])
    online_store.add_events("txns", [event("c1", 5, "t1", amount=1.0), event("c2", 6, "t2", amount=2.0)])
    answer = online_store.read(
        [("profile", "c2"), ("stats", "c1"), ("profile", "c1"), ("stats", "c2")],
        [("txns", "c2", 0), ("txns", "c1", 0), ("txns", "c1", 5)],
    )
    assert answer.rows == [row("c2", 1, age=40), row("c1", 2, spend=9.5), row("c1", 1, age=30), None]
    assert answer.events == [[event("c2", 6, "t2", amount=2.0)], [event("c1", 5, "t1", amount=1.0)], []]


def test_many_lookups_in_one_read_keep_their_order(online_store: OnlineStore) -> None:
    online_store.write("stats", [row(str(i), i, x=i) for i in range(0, 2000, 2)])
    online_store.add_events("txns", [event(str(i), i, "e") for i in range(0, 2000, 3)])
    keys = [str(i) for i in reversed(range(2000))]
    answer = online_store.read([("stats", k) for k in keys], [("txns", k, 0) for k in keys])
    assert [r.values["x"] if r else None for r in answer.rows] == [
        int(k) if int(k) % 2 == 0 else None for k in keys
    ]
    assert [[e.event_ts for e in found] for found in answer.events] == [
        [int(k)] if int(k) % 3 == 0 and k != "0" else [] for k in keys
    ]


def test_a_second_store_on_the_same_url_sees_the_data(online_store: OnlineStore) -> None:
    online_store.write("stats", [row("k", 1, x=1)])
    online_store.add_events("txns", [event("k", 1, "e")])
    other = open_online_store(online_store.url)
    try:
        answer = other.read([("stats", "k")], [("txns", "k", 0)])
        assert answer.rows == [row("k", 1, x=1)] and answer.events == [[event("k", 1, "e")]]
    finally:
        other.close()


# --- drop --------------------------------------------------------------------------------------------------


def test_drop_deletes_one_view_and_nothing_else(online_store: OnlineStore) -> None:
    views = ["stats", "stats_v2", "stats:x", "st*", "st", "s%3A"]
    for view in views:
        online_store.write(view, [row("k", 1, view=view), row("k:2", 1, view=view)])
        online_store.add_events(view, [event("k", 1, "e", view=view)])
    online_store.drop("st*")
    online_store.drop("stats")
    answer = online_store.read([(v, "k") for v in views], [(v, "k", 0) for v in views])
    assert [r.values["view"] if r else None for r in answer.rows] == [
        None,
        "stats_v2",
        "stats:x",
        None,
        "st",
        "s%3A",
    ]
    assert [len(found) for found in answer.events] == [0, 1, 1, 0, 1, 1]
    assert online_store.read([("stats:x", "k:2")]).rows[0] == row("k:2", 1, view="stats:x")
    online_store.write("stats", [row("k", 0, x=0)])  # a dropped view starts afresh, at any time
    assert latest(online_store, "stats", "k") == row("k", 0, x=0)


# --- concurrency -------------------------------------------------------------------------------------------


def run_threads(targets: list[Any]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def call(target: Any) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


writer_batches = st.lists(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 50), st.integers(0, 2)), min_size=1, max_size=8
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writers=st.lists(writer_batches, min_size=2, max_size=4))
def test_concurrent_writers_leave_each_key_at_its_newest_row(
    online_store: OnlineStore, writers: list[list[list[tuple[str, int, int]]]]
) -> None:
    view = fresh_view()
    written: dict[tuple[str, int, int], set[str]] = {}
    plans = []
    for w, batches in enumerate(writers):
        plan = []
        for b, batch in enumerate(batches):
            rows = [row(k, ts, cts, who=f"{w}.{b}.{i}") for i, (k, ts, cts) in enumerate(batch)]
            for r in rows:
                written.setdefault((r.key, r.event_ts, r.created_ts), set()).add(r.values["who"])
            plan.append(rows)
        plans.append(plan)

    def writer(plan: list[list[OnlineRow]]) -> Any:
        return lambda: [online_store.write(view, rows) for rows in plan]

    run_threads([writer(plan) for plan in plans])
    for key in "ab":
        stamps = [(ts, cts) for k, ts, cts in written if k == key]
        got = latest(online_store, view, key)
        if not stamps:
            assert got is None
            continue
        assert got is not None and (got.event_ts, got.created_ts) == max(stamps)
        assert got.values["who"] in written[key, got.event_ts, got.created_ts]


def test_concurrent_adders_store_each_event_once(online_store: OnlineStore) -> None:
    events = [event(f"c{i % 5}", i, f"e{i}", i=i) for i in range(300)]
    added: list[int] = []
    lock = threading.Lock()

    def adder(offset: int) -> Any:
        def run() -> None:
            for start in range(offset, 300, 25):
                count = online_store.add_events("txns", events[start : start + 40])
                with lock:
                    added.append(count)

        return run

    run_threads([adder(o) for o in (0, 5, 10, 15)])
    assert sum(added) == 300
    found = online_store.read([], [("txns", f"c{k}", -1) for k in range(5)]).events
    assert sorted(e.event_id for f in found for e in f) == sorted(e.event_id for e in events)


# --- entity keys -------------------------------------------------------------------------------------------


def test_entity_keys_are_fixed_strings() -> None:
    assert entity_key([42]) == "42"
    assert entity_key([-7]) == "-7"
    assert entity_key(["DE"]) == '"DE"'
    assert entity_key(["héllo"]) == '"h\\u00e9llo"'
    assert entity_key(["DE", 7]) == '["DE",7]'
    assert entity_key(("DE", 7)) == '["DE",7]'
    assert entity_key([True]) == "[true]"


def test_entity_keys_do_not_depend_on_the_scalar_type() -> None:
    assert entity_key([np.int64(42)]) == entity_key([np.int32(42)]) == entity_key([42])
    assert entity_key([np.str_("DE")]) == entity_key(["DE"])
    assert entity_key((np.str_("DE"), np.int64(7))) == entity_key(["DE", 7])
    assert entity_key([42]) != entity_key(["42"])


@given(
    a=st.lists(st.one_of(st.integers(), st.text()), min_size=1, max_size=3),
    b=st.lists(st.one_of(st.integers(), st.text()), min_size=1, max_size=3),
)
def test_distinct_join_key_values_give_distinct_entity_keys(a: list[Any], b: list[Any]) -> None:
    assert (entity_key(a) == entity_key(b)) == (a == b)
    assert entity_key(a) == entity_key(tuple(a))


# --- opening -----------------------------------------------------------------------------------------------


def test_a_path_or_a_sqlite_url_opens_the_sqlite_store(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a" / "online.db"), f"sqlite:///{tmp_path / 'b' / 'online.db'}"):
        store = open_online_store(url)
        try:
            assert isinstance(store, SqliteOnlineStore)
            assert store.path.exists()
        finally:
            store.close()


def test_an_unknown_scheme_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'memcached'.*sqlite:///.*redis://"):
        open_online_store("memcached://127.0.0.1:11211")


def test_a_missing_redis_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail
    with pytest.raises(BackendNotInstalled, match=r"pip install 'mloop\[redis\]', or use the default sqlite"):
        open_online_store("redis://127.0.0.1:1/0")


def test_an_unreachable_redis_says_so() -> None:
    pytest.importorskip("redis")
    from tests.services import free_port

    with pytest.raises(OnlineStoreUnavailable, match="cannot reach Redis") as caught:
        open_online_store(f"redis://:secret@127.0.0.1:{free_port()}/0")
    assert "secret" not in str(caught.value)


@pytest.mark.redis
def test_redis_prefixes_keep_projects_apart(redis_url: str) -> None:
    pytest.importorskip("redis")
    one = open_online_store(redis_url + "?prefix=one:")
    two = open_online_store(redis_url + "?prefix=two:")
    try:
        one.write("stats", [row("k", 1, who="one")])
        two.write("stats", [row("k", 1, who="two")])
        two.drop("stats")
        assert latest(one, "stats", "k") == row("k", 1, who="one")
        assert latest(two, "stats", "k") is None
    finally:
        one.close()
        two.close()


def test_a_closed_sqlite_store_says_so(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    store.close()
    with pytest.raises(RuntimeError, match="is closed"):
        store.read([("v", "k")])


def test_delete_removes_a_keys_row_and_events_and_nothing_else(online_store: OnlineStore) -> None:
    view = fresh_view()
    online_store.write(view, [row("42", 10, spend=1.0), row("7", 10, spend=2.0)])
    online_store.add_events(
        view, [event("42", 5, "a", x=1), event("42", 6, "b", x=2), event("7", 5, "c", x=3)]
    )
    assert online_store.delete(view, ["42", "42", "absent"]) == 1
    read = online_store.read([(view, "42"), (view, "7")], [(view, "42", -1), (view, "7", -1)])
    assert read.rows[0] is None and read.events[0] == []
    assert read.rows[1] is not None and read.rows[1].values == {"spend": 2.0}
    assert [e.event_id for e in read.events[1]] == ["c"]
    assert online_store.delete(view, ["42"]) == 0  # idempotent
    online_store.add_events(view, [event("42", 7, "a", x=1)])  # a deleted event id may come back
    assert [e.event_id for e in online_store.read([], [(view, "42", -1)]).events[0]] == ["a"]
