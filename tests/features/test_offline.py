"""The offline store against a brute-force oracle: point-in-time joins (Feast's semantics) and window
aggregations (the same values the online side computes with :func:`mloop.features.aggregate.aggregate`)."""

from __future__ import annotations

import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop.errors import MalformedInput, SchemaError
from mloop.features.aggregate import aggregate, to_micros
from mloop.features.offline import Table, historical

BASE = pd.Timestamp("2026-01-01", tz="UTC")
MINUTE = 60_000_000
FNS = ("count", "sum", "mean", "min", "max", "last", "distinct_count")
examples = settings(max_examples=60, deadline=None)


# A tiny world: keys 0..2 (3 never has data), minutes 0..40 for the entity rows and 5..30 for the
# events, created times on a coarse grid so that ties on event time and complete ties both occur.
keys = st.integers(0, 3)
minutes = st.integers(0, 40)
values = st.one_of(st.none(), st.integers(-8, 8).map(lambda v: v / 4))
labels = st.one_of(st.none(), st.sampled_from("abc"))
created = st.one_of(st.none(), st.integers(0, 3))
source_rows = st.lists(st.tuples(st.integers(0, 2), st.integers(5, 30), created, values, labels), max_size=30)
entity_rows = st.lists(st.tuples(keys, minutes), min_size=1, max_size=25)
ttls = st.sampled_from([None, 0, 1, 5, 20])


def stamp(micros: int) -> pd.Timestamp:
    return BASE + pd.Timedelta(microseconds=micros)


def write(folder: Path, name: str, columns: dict[str, pa.Array]) -> Table:
    path = folder / f"{name}.parquet"
    pq.write_table(pa.table(columns), path)
    return Table(f"read_parquet(['{path}'])", "ts", "created")


def times(micros: list[int | None]) -> pa.Array:
    """Microseconds after BASE, as a Parquet-ready UTC timestamp column."""
    since_epoch = [None if m is None else m + to_micros(BASE) for m in micros]
    return pa.array(since_epoch, pa.int64()).cast(pa.timestamp("us", "UTC"))


def view(name: str, folder: Path, keys: list[str], *, ttl: Any = None, two_entities: bool = False, **kw: Any):
    entities = (
        [ml.Entity(f"{name}_{k}", join_keys=[k]) for k in keys]
        if two_entities
        else [ml.Entity(name + "_entity", join_keys=keys)]
    )
    source = ml.ParquetSource(folder / f"{name}.parquet", timestamp="ts", created_timestamp="created")
    return ml.FeatureView(name, entities=entities, source=source, ttl=ttl, **kw)


def entity_frame(rows: list[tuple[Any, ...]], key_names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {name: [row[i] for row in rows] for i, name in enumerate(key_names)}
        | {"t": [stamp(row[-1] * MINUTE) for row in rows], "label": range(len(rows))}
    )
    frame["t"] = frame["t"].astype("datetime64[us, UTC]")
    return frame


def latest(
    rows: list[tuple[Any, ...]], key: tuple[Any, ...], t: int, ttl: int | None
) -> tuple[Any, ...] | None:
    """Oracle: the row (key..., ts, created, values...) with the same key and the largest (ts, created)
    with t - ttl <= ts <= t; a missing created time sorts first; on a complete tie the largest values
    win, a null value counting as the largest."""
    n = len(key)
    seen = [r for r in rows if r[:n] == key and r[n] <= t and (ttl is None or r[n] >= t - ttl)]
    if not seen:
        return None
    return max(
        seen,
        key=lambda r: (
            r[n],
            -math.inf if r[n + 1] is None else r[n + 1],
            [(v is None, v) for v in r[n + 2 :]],
        ),
    )


def same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def cell(value: Any) -> Any:
    return (
        None if value is pd.NA or value is None or (isinstance(value, float) and math.isnan(value)) else value
    )


# ---- plain features --------------------------------------------------------------------------


@pytest.mark.slow
@examples
@given(rows=source_rows, wanted=entity_rows, ttl=ttls)
def test_point_in_time_join_matches_oracle(rows, wanted, ttl) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = write(folder, "v", {
            "cid": pa.array([r[0] for r in rows], pa.int64()),
            "ts": times([r[1] * MINUTE for r in rows]),
            "created": times([None if r[2] is None else r[2] * MINUTE for r in rows]),
            "x": pa.array([r[3] for r in rows], pa.float64()),
            "s": pa.array([r[4] for r in rows], pa.string()),
        })  # fmt: skip
        fv = view("v", folder, ["cid"], ttl=timedelta(minutes=ttl) if ttl else ttl,
                  features=[ml.Field("x"), ml.Field("s", "string")])  # fmt: skip
        entity_df = entity_frame(wanted, ["cid"])
        out = historical(entity_df, [(fv, ["s", "x"])], {"v": table}, timestamp="t")

    assert list(out.columns) == ["cid", "t", "label", "s", "x"]
    pd.testing.assert_frame_equal(out[["cid", "t", "label"]], entity_df)
    oracle_rows = [(r[0], r[1] * MINUTE, None if r[2] is None else r[2] * MINUTE, r[3], r[4]) for r in rows]
    for (key, minute), x, s in zip(wanted, out["x"], out["s"], strict=True):
        hit = latest(oracle_rows, (key,), minute * MINUTE, ttl * MINUTE if ttl else None)
        assert same(cell(x), hit and hit[3]), (key, minute, hit)
        assert cell(s) == (hit and hit[4]), (key, minute, hit)


@pytest.mark.slow
@examples
@given(
    rows=st.lists(st.tuples(st.integers(0, 1), st.sampled_from("pq"), st.integers(5, 30), created, values),
                  max_size=30),
    wanted=st.lists(st.tuples(st.integers(0, 2), st.sampled_from("pqr"), minutes), min_size=1, max_size=20),
    two_entities=st.booleans(),
    ttl=ttls,
)  # fmt: skip
def test_several_join_keys(rows, wanted, two_entities, ttl) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = write(folder, "v", {
            "store": pa.array([r[0] for r in rows], pa.int32()),  # int32 here, int64 in entity_df
            "region": pa.array([r[1] for r in rows], pa.string()),
            "ts": times([r[2] * MINUTE for r in rows]),
            "created": times([None if r[3] is None else r[3] * MINUTE for r in rows]),
            "x": pa.array([r[4] for r in rows], pa.float64()),
        })  # fmt: skip
        fv = view("v", folder, ["store", "region"], ttl=f"{ttl}m" if ttl else None,
                  two_entities=two_entities, features=[ml.Field("x")])  # fmt: skip
        entity_df = entity_frame(wanted, ["store", "region"])
        out = historical(entity_df, [(fv, ["x"])], {"v": table}, timestamp="t")

    oracle_rows = [(r[0], r[1], r[2] * MINUTE, None if r[3] is None else r[3] * MINUTE, r[4]) for r in rows]
    for (store, region, minute), x in zip(wanted, out["x"], strict=True):
        hit = latest(oracle_rows, (store, region), minute * MINUTE, ttl * MINUTE if ttl else None)
        assert same(cell(x), hit and hit[4]), (store, region, minute, hit)


@pytest.mark.slow
@examples
@given(a_rows=source_rows, b_rows=source_rows, wanted=entity_rows, full=st.booleans())
def test_several_views_in_one_call(a_rows, b_rows, wanted, full) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables = {}
        for name, rows in (("a", a_rows), ("b", b_rows)):
            tables[name] = write(folder, name, {
                "cid": pa.array([r[0] for r in rows], pa.int64()),
                "ts": times([r[1] * MINUTE for r in rows]),
                "created": times([None if r[2] is None else r[2] * MINUTE for r in rows]),
                "x": pa.array([r[3] for r in rows], pa.float64()),
            })  # fmt: skip
        a = view("a", folder, ["cid"], ttl="10m", features=[ml.Field("x")])
        b = view("b", folder, ["cid"], features=[ml.Field("x")],
                 aggregations=[ml.Aggregation("x", "sum", "10m", name="x_sum")])  # fmt: skip
        entity_df = entity_frame(wanted, ["cid"])
        requests = [(a, ["x"]), (b, ["x_sum", "x"])] if full else [(a, ["x"]), (b, ["x_sum"])]
        out = historical(entity_df, requests, tables, timestamp="t", full_feature_names=full)

    expected = ["a__x", "b__x_sum", "b__x"] if full else ["x", "x_sum"]
    assert list(out.columns) == ["cid", "t", "label", *expected]
    for i, (key, minute) in enumerate(wanted):
        t = minute * MINUTE
        a_hit = latest([(r[0], r[1] * MINUTE, r[2], r[3]) for r in a_rows], (key,), t, 10 * MINUTE)
        assert same(cell(out[expected[0]].iloc[i]), a_hit and a_hit[3])
        events = [(r[1] * MINUTE, r[2], r[3]) for r in b_rows if r[0] == key]
        assert same(out[expected[1]].iloc[i], aggregate("sum", events, t - 10 * MINUTE, t))
        if full:
            b_hit = latest([(r[0], r[1] * MINUTE, r[2], r[3]) for r in b_rows], (key,), t, None)
            assert same(cell(out["b__x"].iloc[i]), b_hit and b_hit[3])


def test_rows_keep_order_index_and_duplicates(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {
        "cid": pa.array([1, 1, 2]), "ts": times([0, MINUTE, 0]), "created": times([0, 0, 0]),
        "x": pa.array([1.0, 2.0, 3.0]),
    })  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x")])
    entity_df = pd.DataFrame(
        {"t": [stamp(2 * MINUTE), stamp(0), stamp(2 * MINUTE), stamp(-MINUTE)], "cid": [1, 1, 1, 2]},
        index=[7, 7, 3, 1],
    )
    before = entity_df.copy()
    out = historical(entity_df, [(fv, ["x"])], {"v": table}, timestamp="t")
    pd.testing.assert_frame_equal(entity_df, before)  # the input is left alone
    assert list(out.index) == [7, 7, 3, 1]
    assert list(out.columns) == ["t", "cid", "x"]
    assert out["x"].tolist()[:3] == [2.0, 1.0, 2.0] and math.isnan(out["x"].iloc[3])  # before any data


def test_missing_keys_match_nothing_and_spilling_is_allowed(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {"cid": pa.array([1, None]), "ts": times([0, 0]), "created": times([0, 0]),
                                  "x": pa.array([1.0, 2.0])})  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x")],
              aggregations=[ml.Aggregation("x", "count", "1h", name="n")])  # fmt: skip
    entity_df = pd.DataFrame({"cid": [1, None], "t": [stamp(MINUTE)] * 2})
    out = historical(entity_df, [(fv, ["x", "n"])], {"v": table}, timestamp="t",
                     workdir=tmp_path / "spill", memory_limit="256MB")  # fmt: skip
    assert cell(out["x"].iloc[0]) == 1.0 and cell(out["x"].iloc[1]) is None
    assert out["n"].tolist() == [1, 0]


def test_ttl_and_window_bounds(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {"cid": pa.array([1, 1]), "ts": times([0, MINUTE]), "created": times([0, 0]),
                                  "x": pa.array([1.0, 2.0])})  # fmt: skip
    fv = view("v", tmp_path, ["cid"], ttl="2m", features=[ml.Field("x")],
              aggregations=[ml.Aggregation("x", "sum", "1m", name="s")])  # fmt: skip
    at = [MINUTE - 1, MINUTE, 2 * MINUTE, 2 * MINUTE + 1, 3 * MINUTE, 3 * MINUTE + 1]
    entity_df = pd.DataFrame({"cid": 1, "t": [stamp(m) for m in at]})
    out = historical(entity_df, [(fv, ["x", "s"])], {"v": table}, timestamp="t")
    # ttl: the row at 1m is seen up to 3m inclusive; window (t - 1m, t]: the 1m event until just before 2m.
    assert [cell(x) for x in out["x"]] == [1.0, 2.0, 2.0, 2.0, 2.0, None]
    assert out["s"].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]


def test_empty_entity_df_and_no_requests(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {"cid": pa.array([1]), "ts": times([0]), "created": times([0]),
                                  "x": pa.array([1.0])})  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x")],
              aggregations=[ml.Aggregation("x", "count", "1h")])  # fmt: skip
    empty = pd.DataFrame(
        {"cid": pd.Series([], dtype="int64"), "t": pd.Series([], dtype="datetime64[us, UTC]")}
    )
    out = historical(empty, [(fv, ["x", "x_count_1h"])], {"v": table}, timestamp="t")
    assert list(out.columns) == ["cid", "t", "x", "x_count_1h"] and len(out) == 0
    one = pd.DataFrame({"cid": [1], "t": [stamp(0)]})
    pd.testing.assert_frame_equal(historical(one, [], {}, timestamp="t"), one)


def test_times_in_any_zone_and_precision(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {
        "cid": pa.array([1, 1]),
        "ts": pa.array([0, 1_000_001_500], pa.int64()).cast(pa.timestamp("ns", "UTC")),  # 1970  # ns in the source
        "created": times([None, None]), "x": pa.array([1.0, 2.0]),
    })  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x")],
              aggregations=[ml.Aggregation("x", "count", "1s", name="n")])  # fmt: skip
    epoch = pd.Timestamp(0, tz="UTC")
    berlin = pd.Series([epoch, epoch + pd.Timedelta(nanoseconds=1_000_001_999)]).dt.tz_convert(
        "Europe/Berlin"
    )
    entity_df = pd.DataFrame({"cid": [1, 1], "t": berlin.astype("datetime64[ns, Europe/Berlin]")})
    out = historical(entity_df, [(fv, ["x", "n"])], {"v": table}, timestamp="t")
    # Both sides truncate to the microsecond: the second event (1.0000015 s) is seen at 1.000001999 s.
    assert out["x"].tolist() == [1.0, 2.0]
    assert out["n"].tolist() == [1, 1]  # (t - 1 s, t] holds the second event only
    assert out["t"].dtype == entity_df["t"].dtype


# ---- aggregations: offline equals online -----------------------------------------------------

events = st.lists(
    st.tuples(
        st.integers(0, 2),  # key
        st.integers(5, 30).flatmap(lambda m: st.sampled_from([m * MINUTE - 1, m * MINUTE, m * MINUTE + 1])),
        created,
        st.one_of(values, st.just(math.nan)),  # NaN counts as null
        st.one_of(st.none(), st.integers(-3, 3)),
    ),
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(
    rows=events,
    wanted=entity_rows,
    windows=st.lists(st.sampled_from(["1m", "5m", "1h"]), min_size=1, max_size=2),
)
def test_aggregations_equal_the_online_computation(rows, wanted, windows) -> None:
    aggregations = [
        ml.Aggregation(column, fn, window, name=f"{column}_{fn}_{window}")
        for window in dict.fromkeys(windows)
        for column in ("x", "n")
        for fn in FNS
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = write(folder, "v", {
            "cid": pa.array([r[0] for r in rows], pa.int64()),
            "ts": times([r[1] for r in rows]),
            "created": times([None if r[2] is None else r[2] * MINUTE for r in rows]),
            "x": pa.array([r[3] for r in rows], pa.float64()),
            "n": pa.array([r[4] for r in rows], pa.int64()),
        })  # fmt: skip
        fv = view("v", folder, ["cid"], ttl="1m", aggregations=aggregations)  # ttl does not apply
        entity_df = entity_frame(wanted, ["cid"])
        out = historical(entity_df, [(fv, fv.feature_names)], {"v": table}, timestamp="t")

    for a in aggregations:
        column = out[a.feature]
        if a.fn in ("count", "distinct_count") or (a.column == "n" and a.fn == "sum"):
            assert column.dtype == "int64", (a.feature, column.dtype)
        for (key, minute), got in zip(wanted, column, strict=True):
            index = 3 if a.column == "x" else 4
            online = [(to_micros(stamp(r[1])), None if r[2] is None else r[2] * MINUTE, r[index])
                      for r in rows if r[0] == key]  # fmt: skip
            t = to_micros(stamp(minute * MINUTE))
            want = aggregate(a.fn, online, t - a.window // timedelta(microseconds=1), t)
            assert same(want, cell(got)), (a.feature, key, minute, want, got)


def test_nan_counts_as_null_in_aggregations(tmp_path: Path) -> None:
    # pyarrow writes Parquet min/max statistics without the NaN: they must not hide it from the check.
    table = write(tmp_path, "v", {"cid": pa.array([1, 1]), "ts": times([0, 0]), "created": times([0, 1]),
                                  "x": pa.array([math.nan, 0.0])})  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x")],
              aggregations=[ml.Aggregation("x", fn, "1h") for fn in ("count", "max", "last")])  # fmt: skip
    out = historical(pd.DataFrame({"cid": [1], "t": [stamp(0)]}), [(fv, fv.feature_names)], {"v": table},
                     timestamp="t")  # fmt: skip
    assert out.iloc[0][["x_count_1h", "x_max_1h", "x_last_1h"]].tolist() == [1, 0.0, 0.0]
    assert out.iloc[0]["x"] == 0.0  # created 1 beats created 0


def test_aggregations_of_strings_and_timestamps(tmp_path: Path) -> None:
    table = write(tmp_path, "v", {
        "cid": pa.array([1, 1, 1]), "ts": times([0, MINUTE, MINUTE]), "created": times([None, None, None]),
        "s": pa.array(["b", "c", "a"]),
    })  # fmt: skip
    fv = view("v", tmp_path, ["cid"], aggregations=[ml.Aggregation("s", fn, "1h") for fn in ("min", "last", "distinct_count")]
              + [ml.Aggregation("ts", "max", "1h")])  # fmt: skip
    entity_df = pd.DataFrame({"cid": [1, 1], "t": [stamp(MINUTE), stamp(2 * 60 * MINUTE)]})
    out = historical(entity_df, [(fv, fv.feature_names)], {"v": table}, timestamp="t")
    assert out.iloc[0][fv.feature_names].tolist() == [
        "a",
        "c",
        3,
        stamp(MINUTE),
    ]  # complete tie: largest value
    assert out.iloc[1][["s_distinct_count_1h"]].tolist() == [0]
    assert pd.isna(out.iloc[1]["s_last_1h"]) and pd.isna(out.iloc[1]["ts_max_1h"])


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path):
    table = write(tmp_path, "v", {"cid": pa.array([1]), "ts": times([0]), "created": times([0]),
                                  "x": pa.array([1.0]), "s": pa.array(["a"])})  # fmt: skip
    fv = view("v", tmp_path, ["cid"], features=[ml.Field("x"), ml.Field("s", "string")])
    entity_df = pd.DataFrame({"cid": [1], "t": [stamp(0)]})
    return fv, {"v": table}, entity_df, tmp_path


def raises(match: str, *args: Any, **kw: Any) -> None:
    with pytest.raises(SchemaError, match=match):
        historical(*args, timestamp=kw.pop("timestamp", "t"), **kw)


def test_naive_entity_timestamps_are_refused(setup) -> None:
    fv, tables, entity_df, _ = setup
    entity_df["t"] = entity_df["t"].dt.tz_localize(None)
    raises(r"'t' holds naive timestamps.*df\['t'\] = df\['t'\]\.dt\.tz_localize\(\"UTC\"\)",
           entity_df, [(fv, ["x"])], tables)  # fmt: skip


def test_naive_source_timestamps_are_refused(setup) -> None:
    fv, _, entity_df, tmp_path = setup
    table = write(tmp_path, "naive", {"cid": pa.array([1]), "ts": pa.array([0], pa.timestamp("us")),
                                      "created": times([0]), "x": pa.array([1.0]), "s": pa.array(["a"])})  # fmt: skip
    raises(r"Column 'ts' of the source of feature view 'v' .*naive.*tz_localize\(\"UTC\"\)",
           entity_df, [(fv, ["x"])], {"v": table})  # fmt: skip


def test_entity_timestamp_problems(setup) -> None:
    fv, tables, entity_df, _ = setup
    raises(r"no column 'when' \(the timestamp column\)", entity_df, [(fv, ["x"])], tables, timestamp="when")
    raises(
        r"'cid' must hold UTC timestamps.*pd\.to_datetime", entity_df, [(fv, ["x"])], tables, timestamp="cid"
    )
    gaps = pd.DataFrame({"cid": [1, 1], "t": [stamp(0), pd.NaT]})
    raises(r"1 empty value.*dropna", gaps, [(fv, ["x"])], tables)


def test_missing_join_key_in_entity_df(setup) -> None:
    fv, tables, entity_df, _ = setup
    raises(r"no column 'cid' \(a join key of a requested view\).*rename", entity_df.drop(columns="cid"),
           [(fv, ["x"])], tables)  # fmt: skip


def test_unknown_feature(setup) -> None:
    fv, tables, entity_df, _ = setup
    raises(r"view 'v' has no feature 'y'; it has \['x', 's'\]", entity_df, [(fv, ["y"])], tables)
    raises(r"must be a list of names, like \['x'\]", entity_df, [(fv, "x")], tables)
    raises(r"No table for feature view 'v'", entity_df, [(fv, ["x"])], {})


def test_source_missing_a_declared_column(setup) -> None:
    fv, _, entity_df, tmp_path = setup
    table = write(tmp_path, "short", {"cid": pa.array([1]), "ts": times([0]), "created": times([0]),
                                      "x": pa.array([1.0])})  # fmt: skip
    raises(r"source of feature view 'v' .* has no column\(s\) \['s'\].*fix the feature view",
           entity_df, [(fv, ["x"])], {"v": table})  # fmt: skip
    unreadable = Table(f"read_parquet(['{tmp_path / 'nowhere.parquet'}'])", "ts")
    with pytest.raises(MalformedInput, match=r"source of feature view 'v'.*cannot be read"):
        historical(entity_df, [(fv, ["x"])], {"v": unreadable}, timestamp="t")


def test_names_that_clash(setup) -> None:
    fv, tables, entity_df, _ = setup
    raises(r"'x' of view 'v' clashes with a column of entity_df\. Pass full_feature_names=True",
           entity_df.assign(x=0), [(fv, ["x"])], tables)  # fmt: skip
    raises(r"clashes with a feature of view 'v'", entity_df, [(fv, ["x"]), (fv, ["x"])], tables)


def test_join_key_types_must_agree(setup) -> None:
    fv, tables, entity_df, _ = setup
    raises(r"Join key 'cid' is BIGINT in the source .* but VARCHAR in entity_df",
           entity_df.assign(cid=["1"]), [(fv, ["x"])], tables)  # fmt: skip


def test_sum_of_text_is_refused(tmp_path: Path) -> None:
    table = write(
        tmp_path, "v", {"cid": pa.array([1]), "ts": times([0]), "created": times([0]), "s": pa.array(["a"])}
    )
    fv = view("v", tmp_path, ["cid"], aggregations=[ml.Aggregation("s", "sum", "1h")])
    raises(r"sum needs numbers, but column 's' is VARCHAR", pd.DataFrame({"cid": [1], "t": [stamp(0)]}),
           [(fv, ["s_sum_1h"])], {"v": table})  # fmt: skip
