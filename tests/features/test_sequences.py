"""Sequence training sets: each step is the point-in-time value as of its time, padded and masked where
there is none, never a reading after the row's time; bad specs and unsupported features are clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop.features import sequences
from mloop.project import Project

T0 = datetime(2026, 4, 1, tzinfo=UTC)
plot = ml.Entity("plot", join_keys=["plot_id"])


def _day(d: float) -> pd.Timestamp:
    return pd.Timestamp(T0 + timedelta(days=d))


def _readings() -> pd.DataFrame:
    # plot 1: a reading on days 0 and 2 (ndvi 0.1, 0.3), a NaN rain on day 2 and one on day 9 (the future
    # of every label row below); plot 2: nothing before day 3.
    return pd.DataFrame(
        {
            "plot_id": np.array([1, 1, 1, 2], dtype=np.int64),
            "ts": [_day(0), _day(2), _day(9), _day(3.5)],
            "ndvi": [0.1, 0.3, 0.9, 0.5],
            "rain": np.array([4.0, np.nan, 7.0, 1.0], dtype=np.float32),
            "wet": [True, False, True, True],
            "crop": ["wheat", "wheat", "wheat", "maize"],
            "emb": [[0.0, 1.0]] * 4,
        }
    )


def _scaled(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"ndvi10": frame["ndvi"] * 10})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("sequences")
    _readings().to_parquet(root / "plots.parquet", index=False)
    source = ml.ParquetSource(str(root / "plots.parquet"), timestamp="ts")
    daily = ml.FeatureView(
        "plot_daily", entities=[plot], source=source,
        features=[ml.Field("ndvi", "float64"), ml.Field("rain", "float32"), ml.Field("wet", "bool"),
                  ml.Field("crop", "string"), ml.Field("emb", "float32", shape=(2,))],
        aggregations=[ml.Aggregation("ndvi", "count", "2d"), ml.Aggregation("crop", "last", "30d")],
    )  # fmt: skip
    fresh = ml.FeatureView(
        "plot_fresh", entities=[plot], source=source, ttl="1d", features=[ml.Field("ndvi")]
    )
    odv = ml.OnDemandView("ndvi_scaled", inputs=["plot_daily:ndvi"], fn=_scaled, outputs=[ml.Field("ndvi10")])
    (root / "p").mkdir()
    with Project.open(root / "p", env={}) as opened:
        opened.apply([plot, daily, fresh, odv])
        yield opened


def _labels(*rows: tuple[int, float]) -> pd.DataFrame:
    frame = pd.DataFrame({"plot_id": [p for p, _ in rows], "event_timestamp": [_day(d) for _, d in rows]})
    frame["yield_t"] = np.arange(len(rows), dtype=float)
    frame.index = pd.Index([10 * (i + 1) for i in range(len(rows))])
    return frame


def test_each_step_holds_the_value_as_of_its_time_padded_and_masked_before_the_first(
    project: Project,
) -> None:
    labels = _labels((1, 4), (2, 4))
    spec = ml.SequenceSpec(length=5, step="1d")
    train = project.features.historical(
        labels, ["plot_daily:ndvi", "plot_daily:rain", "plot_daily:wet"], sequence=spec
    )

    assert list(train.columns) == ["plot_id", "event_timestamp", "yield_t", "sequence", "sequence_mask"]
    assert list(train.index) == [10, 20] and train.attrs["sequence_features"] == ["ndvi", "rain", "wet"]
    X, mask = spec.arrays(train)
    assert X.shape == (2, 5, 3) and X.dtype == np.float32 and mask.shape == (2, 5) and mask.dtype == bool
    # Steps are days 0..4 for both rows. Plot 1: day 0 and 1 see day 0's reading; from day 2 its rain is
    # NaN (missing: padded with 0, step masked), ndvi 0.3; day 9's reading never appears.
    np.testing.assert_allclose(X[0, :, 0], [0.1, 0.1, 0.3, 0.3, 0.3], rtol=1e-6)
    np.testing.assert_allclose(X[0, :, 1], [4.0, 4.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(X[0, :, 2], [1, 1, 0, 0, 0])
    assert mask[0].tolist() == [True, True, False, False, False]
    # Plot 2: nothing before day 3.5, so days 0..3 are padding; day 4 sees the reading.
    np.testing.assert_allclose(X[1, :, 0], [0, 0, 0, 0, 0.5])
    assert mask[1].tolist() == [False, False, False, False, True]


def test_a_row_time_in_another_zone_is_the_same_instant_and_no_rows_give_no_sequences(
    project: Project,
) -> None:
    spec = ml.SequenceSpec(length=4, step="6h")
    labels = _labels((1, 2.1), (2, 4))
    utc = spec.arrays(project.features.historical(labels, ["plot_daily:ndvi"], sequence=spec))
    berlin = labels.assign(event_timestamp=labels["event_timestamp"].dt.tz_convert("Europe/Berlin"))
    zoned = spec.arrays(project.features.historical(berlin, ["plot_daily:ndvi"], sequence=spec))
    np.testing.assert_array_equal(utc[0], zoned[0])
    assert utc[0][0, :, 0].tolist() == pytest.approx(
        [0.1, 0.1, 0.1, 0.3]
    )  # day 2 is 0.1 days before the last
    empty = project.features.historical(labels.iloc[:0], ["plot_daily:ndvi"], sequence=spec)
    assert len(empty) == 0 and list(empty.columns)[-2:] == ["sequence", "sequence_mask"]


def test_pad_and_name_are_the_users_and_ttl_counts_as_missing(project: Project) -> None:
    spec = ml.SequenceSpec(length=3, step="1d", pad=float("nan"), name="history", mask="seen")
    train = project.features.historical(_labels((1, 2)), ["plot_fresh:ndvi"], sequence=spec)
    assert list(train.columns)[-2:] == ["history", "seen"]
    X, mask = spec.arrays(train)
    # Days 0, 1, 2 with a 1-day ttl: day 1 sees day 0's reading at exactly the ttl's edge.
    np.testing.assert_allclose(X[0, :, 0], [0.1, 0.1, 0.3])
    train = project.features.historical(_labels((1, 1.5)), ["plot_fresh:ndvi"], sequence=spec)
    X, mask = spec.arrays(train)
    assert np.isnan(X[0, 0, 0]) and mask[0].tolist() == [False, True, False]  # before day 0; ttl passed


def test_every_step_equals_a_plain_historical_lookup_at_that_time(project: Project) -> None:
    """Aggregations included: the sequence is the offline store's own point-in-time join on a grid."""
    labels = _labels((1, 3.25), (2, 5), (3, 4), (1, 12))
    refs = ["plot_daily:ndvi", "plot_daily:ndvi_count_2d", "plot_fresh:ndvi"]
    spec = ml.SequenceSpec(length=4, step="18h")
    X, mask = sequences.sequence_arrays(
        project.features.historical(labels, refs, sequence=spec, full_feature_names=True)
    )
    for k in range(4):
        at = labels.assign(event_timestamp=labels["event_timestamp"] - (3 - k) * timedelta(hours=18))
        plain = project.features.historical(at, refs, full_feature_names=True)
        expected = plain[["plot_daily__ndvi", "plot_daily__ndvi_count_2d", "plot_fresh__ndvi"]].to_numpy(
            float
        )
        np.testing.assert_allclose(X[:, k, :], np.nan_to_num(expected, nan=0.0), rtol=1e-6)
        assert mask[:, k].tolist() == (~np.isnan(expected)).all(axis=1).tolist()


def test_rows_go_through_in_blocks_with_the_same_result(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = _labels(*[(1 + i % 3, 1 + i / 2) for i in range(7)])
    spec = ml.SequenceSpec(length=4, step="12h")
    whole = sequences.sequence_arrays(project.features.historical(labels, ["plot_daily:ndvi"], sequence=spec))
    monkeypatch.setattr(sequences, "GRID_ROWS", 9)  # two entity rows per block
    blocks = sequences.sequence_arrays(
        project.features.historical(labels, ["plot_daily:ndvi"], sequence=spec)
    )
    np.testing.assert_array_equal(whole[0], blocks[0])
    np.testing.assert_array_equal(whole[1], blocks[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "between 1 and"),
        ({"length": 2.5}, "whole number of steps"),
        ({"length": 3, "step": "fortnight"}, "does not parse"),
        ({"length": 3, "step": "0d"}, "must be positive"),
        ({"length": 3, "pad": "zero"}, "pad must be a number"),
        ({"length": 100_000, "step": "5000d"}, "1000 years"),
        ({"length": 3, "mask": "sequence"}, "must differ"),
    ],
)
def test_a_bad_spec_says_what_to_write(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ml.SchemaError, match=message):
        ml.SequenceSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        (
            ["plot_daily:crop"],
            "plot_daily:crop is string, which a sequence cannot hold. A sequence holds numbers",
        ),
        (["plot_daily:emb"], r"is a tensor of shape \[2\]"),
        (["ndvi_scaled:ndvi10"], "request fields belong to the label row"),
        (["plot_daily:crop_last_30d"], "gives values like 'wheat'"),
        (["plot_daily:ndvi", "plot_fresh:ndvi"], "full_feature_names=True"),
    ],
)
def test_a_feature_a_sequence_cannot_hold_is_refused_with_what_is_supported(
    project: Project, refs: list[str], message: str
) -> None:
    with pytest.raises(ml.SchemaError, match=message):
        project.features.historical(_labels((1, 4)), refs, sequence=ml.SequenceSpec(3))


def test_bad_entity_frames_are_clear_errors(project: Project) -> None:
    spec = ml.SequenceSpec(3)
    naive = _labels((1, 4)).assign(event_timestamp=lambda f: f["event_timestamp"].dt.tz_localize(None))
    with pytest.raises(ml.SchemaError, match="naive timestamps"):
        project.features.historical(naive, ["plot_daily:ndvi"], sequence=spec)
    with pytest.raises(ml.SchemaError, match="already has a column 'sequence'"):
        project.features.historical(_labels((1, 4)).assign(sequence=1), ["plot_daily:ndvi"], sequence=spec)
    with pytest.raises(ml.SchemaError, match=r"no column\(s\) \['plot_id'\]"):
        project.features.historical(
            _labels((1, 4)).drop(columns="plot_id"), ["plot_daily:ndvi"], sequence=spec
        )
    with pytest.raises(ml.SchemaError, match="takes a SequenceSpec"):
        project.features.historical(_labels((1, 4)), ["plot_daily:ndvi"], sequence=120)  # type: ignore[arg-type]
    with pytest.raises(ml.SchemaError, match="sequence=SequenceSpec"):
        sequences.sequence_arrays(_labels((1, 4)))


# ---- property: never the future, always the brute-force point-in-time value ------------------------------


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    """A project whose one source file each example rewrites: a view without ttl and one with 10 hours."""
    root = tmp_path_factory.mktemp("sequence_oracle")
    path = root / "readings.parquet"
    _write(path, [])
    source = ml.ParquetSource(str(path), timestamp="ts")
    views = [
        ml.FeatureView("s_all", entities=[plot], source=source, features=[ml.Field("hour")]),
        ml.FeatureView("s_ttl", entities=[plot], source=source, ttl="10h", features=[ml.Field("hour")]),
    ]
    (root / "p").mkdir()
    with Project.open(root / "p", env={}) as opened:
        opened.apply([plot, *views])
        yield opened, path


def _write(path: Path, readings: list[tuple[int, int]]) -> None:
    """Each reading's value is its own time in hours since T0: a leak is a value above the step's hour."""
    frame = pd.DataFrame(
        {
            "plot_id": np.array([k for k, _ in readings], dtype=np.int64),
            "ts": pd.to_datetime([T0 + timedelta(hours=h) for _, h in readings], utc=True),
            "hour": np.array([float(h) for _, h in readings], dtype=np.float64),
        }
    )
    frame.to_parquet(path, index=False)


def _oracle(readings: list[tuple[int, int]], key: int, at: float, ttl: float | None) -> float:
    seen = [h for k, h in readings if k == key and h <= at and (ttl is None or h >= at - ttl)]
    return float(max(seen)) if seen else np.nan


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    readings=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 120)), max_size=30, unique=True),
    rows=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 150)), min_size=1, max_size=6),
    length=st.integers(1, 6),
    step_hours=st.sampled_from([1, 5, 24]),
)
def test_a_sequence_never_leaks_the_future_and_matches_a_brute_force_oracle(
    sensor: tuple[Project, Path], readings: list[tuple[int, int]], rows: list[tuple[int, int]],
    length: int, step_hours: int,
) -> None:  # fmt: skip
    project, path = sensor
    _write(path, readings)
    labels = pd.DataFrame(
        {"plot_id": [k for k, _ in rows], "event_timestamp": [T0 + timedelta(hours=h) for _, h in rows]}
    )
    spec = ml.SequenceSpec(length, f"{step_hours}h")
    train = project.features.historical(
        labels, ["s_all:hour", "s_ttl:hour"], sequence=spec, full_feature_names=True
    )
    X, mask = sequences.sequence_arrays(train)
    for i, (key, hour) in enumerate(rows):
        steps = [hour - (length - 1 - k) * step_hours for k in range(length)]
        expected = np.array([[_oracle(readings, key, s, None), _oracle(readings, key, s, 10)] for s in steps])
        assert mask[i].tolist() == (~np.isnan(expected)).all(axis=1).tolist()
        np.testing.assert_array_equal(X[i], np.nan_to_num(expected, nan=0.0).astype(np.float32))
        # No reading after the row's cut-off, nor after the step's own time, ever enters.
        observed = np.where(mask[i][:, None], X[i], -np.inf)
        assert (observed <= np.array(steps, dtype=np.float32)[:, None]).all()
