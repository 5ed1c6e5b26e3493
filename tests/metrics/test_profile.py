"""Reference profiles: bins that cover every future value, shares, samples, strict JSON round trip."""

from __future__ import annotations

import doctest
import json
import math
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import MalformedInput, SchemaError
from mloop.metrics import profile as profiles
from mloop.metrics.profile import (
    OTHER,
    bin_frequencies,
    build_profile,
    category_frequencies,
    profile_from_json,
    profile_to_json,
)


def column(frame: pd.DataFrame, name: str, **options: Any) -> dict[str, Any]:
    return build_profile(frame[[name]], **options)["columns"][name]


def assert_strict_json(value: Any) -> None:
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for v in value.values():
            assert_strict_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_strict_json(v)
    else:
        assert value is None or type(value) in (bool, int, float, str), (value, type(value))
        assert not isinstance(value, float) or math.isfinite(value)


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 10_000
    amount = rng.lognormal(3, 1, n)
    amount[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "country": rng.choice(["fr", "de", "es", "it"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "ts": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
        }
    )


def test_numeric_column(reference: pd.DataFrame) -> None:
    p = column(reference, "amount")
    values = reference["amount"].dropna().to_numpy()
    assert p["kind"] == "numeric" and p["dtype"] == "float64"
    assert (p["rows"], p["nulls"], p["count"]) == (10_000, 10_000 - len(values), len(values))
    assert p["null_share"] == pytest.approx(1 - len(values) / 10_000)
    assert (p["min"], p["max"]) == (values.min(), values.max())
    assert p["mean"] == pytest.approx(values.mean()) and p["std"] == pytest.approx(values.std())
    for q, v in p["quantiles"].items():
        assert v == pytest.approx(np.quantile(values, float(q)))
    assert [float(q) for q in p["quantiles"]] == list(profiles.QUANTILES)


def test_edges_are_the_reference_deciles_and_cover_every_value(reference: pd.DataFrame) -> None:
    p = column(reference, "amount")
    values = reference["amount"].dropna().to_numpy()
    edges = p["edges"]
    assert edges[0] is None and edges[-1] is None and len(edges) == 11
    assert edges[1:-1] == pytest.approx(np.quantile(values, np.arange(1, 10) / 10, method="inverted_cdf"))
    assert sum(p["frequencies"]) == pytest.approx(1.0)
    assert p["frequencies"] == pytest.approx([0.1] * 10, abs=1e-3)
    # the same binning on the reference gives the reference frequencies, exactly
    assert bin_frequencies(reference["amount"], edges) == p["frequencies"]
    # values outside the reference range fall in the end bins; infinities count as nulls
    outside = bin_frequencies([-1e300, p["min"] - 1, p["max"] + 1, 1e300, 1e299, float("inf")], edges)
    assert outside == [0.4] + [0.0] * 8 + [0.6]


def test_bins_are_right_closed_and_never_empty_in_the_reference() -> None:
    frame = pd.DataFrame(
        {"x": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "c": [5] * 10, "few": [1, 2, 2, 3, 3, 3, 4, 4, 4, 4]}
    )
    binary = column(frame, "x")
    assert binary["edges"] == [None, 0.0, None]  # bins {0} and {1}
    assert binary["frequencies"] == [0.9, 0.1]
    constant = column(frame, "c")
    assert constant["edges"] == [None, None] and constant["frequencies"] == [1.0]
    few = column(frame, "few")
    assert few["edges"] == [None, 1.0, 2.0, 3.0, None]
    assert few["frequencies"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert bin_frequencies([1.0, 1.5, 2.0, 4.5], few["edges"]) == [0.25, 0.5, 0.0, 0.25]


def test_bin_frequencies_keeps_every_bin() -> None:
    edges = [None, 1.0, 2.0, None]
    assert bin_frequencies([1.5, 1.7], edges) == [0.0, 1.0, 0.0]
    assert bin_frequencies([None, float("nan")], edges) == [0.0, 0.0, 0.0]
    assert bin_frequencies(pd.Series([3, None], dtype="Int64"), edges) == [0.0, 0.0, 1.0]
    assert bin_frequencies([], [None, None]) == [0.0]
    with pytest.raises(ValueError, match="at least two entries"):
        bin_frequencies([1.0], [None])


def test_categorical_column(reference: pd.DataFrame) -> None:
    p = column(reference, "country", top_k=2)
    counts = reference["country"].value_counts(normalize=True)
    assert p["kind"] == "categorical" and p["distinct"] == 4 and p["nulls"] == 0
    assert list(p["shares"]) == ["fr", "de", OTHER]
    assert p["shares"]["fr"] == pytest.approx(counts["fr"])
    assert p["shares"][OTHER] == pytest.approx(counts["es"] + counts["it"])
    assert sum(p["shares"].values()) == pytest.approx(1.0)
    assert category_frequencies(reference["country"], p["shares"]) == p["shares"]


def test_category_shares_ties_nulls_and_odd_values() -> None:
    frame = pd.DataFrame(
        {
            "c": pd.Series(["b", "a", None, "b", "a", "c", "__other__"], dtype=object),
            "flag": [True, False, True, None, True, True, False],
            "cat": pd.Categorical(["x", "x", "y", None, "x", "y", "x"], categories=["x", "y", "unused"]),
        }
    )
    c = column(frame, "c", top_k=2)
    assert c["shares"] == {"a": 2 / 6, "b": 2 / 6, OTHER: 2 / 6}  # ties by name; "__other__" is other
    assert (c["nulls"], c["count"], c["distinct"]) == (1, 6, 4)
    assert column(frame, "flag")["shares"] == {"True": 4 / 6, "False": 2 / 6, OTHER: 0.0}
    cat = column(frame, "cat")
    assert cat["shares"] == {"x": 4 / 6, "y": 2 / 6, OTHER: 0.0} and cat["distinct"] == 2


def test_category_frequencies_keeps_every_category() -> None:
    shares = {"fr": 0.5, "de": 0.5, OTHER: 0.0}
    assert category_frequencies(["fr", "fr", "pl", None], shares) == {"fr": 2 / 3, "de": 0.0, OTHER: 1 / 3}
    assert category_frequencies([], ["fr", "de"]) == {"fr": 0.0, "de": 0.0, OTHER: 0.0}
    assert category_frequencies(pd.Series([1, "1", "x"], dtype=object), ["1"]) == {"1": 2 / 3, OTHER: 1 / 3}


def test_timestamp_column(reference: pd.DataFrame) -> None:
    p = column(reference, "ts")
    assert p == {
        "kind": "timestamp",
        "dtype": str(reference["ts"].dtype),
        "rows": 10_000,
        "nulls": 0,
        "null_share": 0.0,
        "min": "2024-01-01T00:00:00+00:00",
        "max": "2024-01-07T22:39:00+00:00",  # 9,999 minutes later
    }
    empty = column(pd.DataFrame({"t": pd.Series([None, None], dtype="datetime64[ns]")}), "t")
    assert (empty["min"], empty["max"], empty["null_share"]) == (None, None, 1.0)


def test_sample_is_bounded_drawn_from_the_data_and_seeded(reference: pd.DataFrame) -> None:
    values = set(reference["amount"].dropna())
    p = column(reference, "amount", sample=100)
    assert len(p["sample"]) == 100 and set(p["sample"]) <= values
    assert len(set(p["sample"])) == 100  # without replacement
    assert column(reference, "amount", sample=100, seed=1)["sample"] != p["sample"]
    assert column(reference.iloc[:50], "amount", sample=100)["sample"] == sorted(
        reference["amount"].iloc[:50].dropna()
    )
    country = column(reference, "country", sample=30)
    assert len(country["sample"]) == 30 and set(country["sample"]) <= {"fr", "de", "es", "it"}
    assert column(reference, "amount", sample=0)["sample"] == []


def test_same_data_same_profile_whatever_the_row_order(reference: pd.DataFrame) -> None:
    first = build_profile(reference, prediction=reference["amount"].fillna(0) / 1000)
    assert build_profile(reference, prediction=reference["amount"].fillna(0) / 1000) == first
    shuffled = reference.sample(frac=1, random_state=3)
    assert column(shuffled, "amount") == first["columns"]["amount"]


def test_prediction_and_settings(reference: pd.DataFrame) -> None:
    scores = np.random.default_rng(0).random(len(reference))
    p = build_profile(reference, columns=["country"], prediction=scores, bins=4)
    assert list(p["columns"]) == ["country"]
    assert p["rows"] == 10_000 and p["settings"] == {"bins": 4, "top_k": 50, "sample": 5000, "seed": 0}
    assert p["prediction"]["kind"] == "numeric" and len(p["prediction"]["frequencies"]) == 4
    labels = build_profile(reference.iloc[:3], prediction=["fraud", "ok", "ok"])["prediction"]
    assert labels["kind"] == "categorical"
    assert build_profile(reference)["prediction"] is None
    with pytest.raises(ValueError, match=r"proba\[:, 1\]"):
        build_profile(reference, prediction=np.zeros((len(reference), 2, 2)))
    with pytest.raises(SchemaError, match=r"\['amont'\]"):
        build_profile(reference, columns=["amont"])
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        build_profile(reference, bins=0)


def test_empty_and_all_null_columns() -> None:
    frame = pd.DataFrame({"x": [np.nan, np.inf], "s": pd.Series([None, None], dtype=object)})
    p = build_profile(frame)
    x, s = p["columns"]["x"], p["columns"]["s"]
    assert (x["nulls"], x["count"], x["mean"], x["edges"], x["frequencies"]) == (
        2,
        0,
        None,
        [None, None],
        [0.0],
    )
    assert (s["nulls"], s["count"], s["distinct"], s["shares"]) == (2, 0, 0, {OTHER: 0.0})
    none = build_profile(frame.iloc[:0])
    assert none["rows"] == 0 and none["columns"]["x"]["null_share"] == 0.0
    assert_strict_json(p)
    assert_strict_json(none)


def test_json_round_trip(reference: pd.DataFrame) -> None:
    p = build_profile(reference, prediction=np.linspace(0, 1, len(reference)))
    text = profile_to_json(p)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert profile_from_json(text) == p
    assert profile_from_json(text.encode()) == p
    with pytest.raises(MalformedInput, match="must be JSON"):
        profile_from_json("{")
    with pytest.raises(MalformedInput, match="not a format-1 reference profile"):
        profile_from_json('{"format": 99, "columns": {}}')


def test_memory_is_one_copy_of_the_column() -> None:
    n = 4 * profiles._CHUNK
    frame = pd.DataFrame({"x": pd.array(np.arange(n) % 1000, dtype="Int64")})
    tracemalloc.start()
    try:
        build_profile(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the sorted float64 copy, plus temporaries of about one chunk (a second copy would be n * 8 more)
    assert peak < n * 8 + 2 * profiles._CHUNK * 8


frames = st.integers(0, 40).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "f": st.lists(
                st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
                min_size=n,
                max_size=n,
            ),
            "i": st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n),
            "s": st.lists(
                st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), min_size=n, max_size=n
            ),
        }
    )
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(frames, st.integers(1, 12), st.integers(0, 5), st.integers(0, 10))
def test_random_frames(data: dict[str, list[Any]], bins: int, top_k: int, sample: int) -> None:
    frame = pd.DataFrame(
        {
            "f": pd.Series(data["f"], dtype="float64"),
            "i": pd.Series(data["i"], dtype="Int64"),
            "s": pd.Series(data["s"], dtype=object),
        }
    )
    p = build_profile(frame, bins=bins, top_k=top_k, sample=sample)
    assert_strict_json(p)
    assert profile_from_json(profile_to_json(p)) == p
    for name in ("f", "i"):
        c = p["columns"][name]
        finite = pd.Series(data[name], dtype="float64").replace([np.inf, -np.inf], np.nan).dropna()
        assert c["count"] == len(finite) and c["nulls"] == len(frame) - len(finite)
        assert len(c["frequencies"]) == len(c["edges"]) - 1 <= bins
        assert c["frequencies"] == bin_frequencies(frame[name], c["edges"])
        if len(finite):
            assert sum(c["frequencies"]) == pytest.approx(1.0)
            assert all(share > 0 for share in c["frequencies"])
            assert c["min"] == finite.min() and c["max"] == finite.max()
        else:
            assert c["frequencies"] == [0.0]
        assert len(c["sample"]) == min(sample, len(finite)) and set(c["sample"]) <= set(finite)
    s = p["columns"]["s"]
    present = [v for v in data["s"] if v is not None]
    assert s["count"] == len(present) and s["distinct"] == len(set(present))
    assert len(s["shares"]) == min(top_k, len(set(present))) + 1
    if present:
        assert sum(s["shares"].values()) == pytest.approx(1.0)
    assert category_frequencies(frame["s"], s["shares"]) == pytest.approx(s["shares"])
    assert len(s["sample"]) == min(sample, len(present)) and set(s["sample"]) <= set(present)


def test_docstring_examples() -> None:
    assert doctest.testmod(profiles).failed == 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=40).map(sorted),
    st.lists(st.one_of(st.floats(-120, 120), st.sampled_from([0.0, 1.0, -1.0, float("nan"), float("inf")])),
             max_size=300),
)  # fmt: skip
def test_bin_counts_match_a_binary_search_with_few_or_many_edges(
    inner: list[float], values: list[float]
) -> None:
    edges = [None, *inner, None]
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    counts = np.bincount(np.searchsorted(np.asarray(inner), finite, side="left"), minlength=len(inner) + 1)
    expected = [c / len(finite) for c in counts] if len(finite) else [0.0] * (len(inner) + 1)
    assert bin_frequencies(values, edges) == pytest.approx(expected)


def test_a_class_probability_matrix_is_profiled_per_class() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    p = build_profile(pd.DataFrame({"x": range(4)}), prediction=proba, classes=["a", "b", "c"])["prediction"]
    assert p["kind"] == "categorical" and p["classes"] == ["a", "b", "c"]
    assert p["shares"] == {"a": 0.5, "b": 0.25, "c": 0.25, OTHER: 0.0}  # the predicted classes
    assert p["probabilities"]["b"]["kind"] == "numeric" and p["probabilities"]["b"]["max"] == 0.8
    unnamed = build_profile(pd.DataFrame({"x": range(4)}), prediction=proba)["prediction"]
    assert unnamed["classes"] == ["0", "1", "2"]
    assert_strict_json(
        json.loads(profile_to_json(build_profile(pd.DataFrame({"x": range(4)}), prediction=proba)))
    )
    with pytest.raises(ValueError, match="3 columns"):
        build_profile(pd.DataFrame({"x": range(4)}), prediction=proba, classes=["a", "b"])


def test_a_tensor_column_is_profiled_by_shape_not_by_value() -> None:
    images = [*np.zeros((3, 1, 2, 2), dtype=np.float32), None]
    frame = pd.DataFrame({"image": images, "tokens": [[1, 2], [3, 4], [5, 6], [7, 8]], "tags": [["a"]] * 4})
    p = build_profile(frame)["columns"]
    assert {k: p["image"][k] for k in ("kind", "shape", "components", "count", "nulls")} == {
        "kind": "tensor",
        "shape": [1, 2, 2],
        "components": 4,
        "count": 3,
        "nulls": 1,
    }
    assert p["tokens"]["kind"] == "tensor" and p["tags"]["kind"] == "categorical"
