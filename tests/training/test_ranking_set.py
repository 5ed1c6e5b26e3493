"""Ranking training sets: impressions labelled by clicks within a window, negatives sampled per query,
features joined as of the impression's time."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop.errors import SchemaError
from mloop.training import ranking
from mloop.training.ranking import label_impressions, ranking_set, sample_negatives
from tests.training import recs

T0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")


def _impressions(*rows: tuple[str, int, int, int, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["request_id", "user_id", "item_id", "position", "ts"])


def _clicks(*rows: tuple[int, int, pd.Timestamp, str | None, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "request_id", "event"])


def test_a_click_labels_the_impression_it_followed_within_the_window() -> None:
    shown = _impressions(("r1", 1, 10, 0, T0), ("r1", 1, 11, 1, T0), ("r1", 1, 12, 2, T0),
                         ("r2", 2, 10, 0, T0))  # fmt: skip
    clicks = _clicks(
        (1, 11, T0 + timedelta(minutes=5), None, "click"),  # r1/11: clicked in time
        (1, 12, T0 + timedelta(hours=2), None, "click"),  # r1/12: too late for within="1h"
        (1, 10, T0 - timedelta(minutes=1), None, "click"),  # r1/10: before it was shown
        (2, 10, T0 + timedelta(minutes=1), "r9", "click"),  # r2/10: a click on another answer's list
    )
    assert label_impressions(shown, clicks, within="1h")["label"].tolist() == [0, 1, 0, 0]
    assert label_impressions(shown, clicks, within="3h")["label"].tolist() == [0, 1, 1, 0]


def test_grades_take_the_best_interaction_and_ignore_unknown_events() -> None:
    shown = _impressions(("r1", 1, 10, 0, T0), ("r1", 1, 11, 1, T0))
    clicks = _clicks((1, 10, T0 + timedelta(minutes=1), "r1", "click"),
                     (1, 10, T0 + timedelta(minutes=2), "r1", "purchase"),
                     (1, 11, T0 + timedelta(minutes=2), "r1", "hover"))  # fmt: skip
    labelled = label_impressions(shown, clicks, grades={"click": 1, "purchase": 2})
    assert labelled["label"].tolist() == [2, 0]
    assert labelled["label"].dtype == np.int64


def test_bad_input_says_how_to_fix_it() -> None:
    shown = _impressions(("r1", 1, 10, 0, T0))
    with pytest.raises(SchemaError, match="lack column"):
        label_impressions(shown.drop(columns="position"), _clicks())
    with pytest.raises(SchemaError, match="positive duration"):
        label_impressions(shown, _clicks(), within=timedelta(0))
    with pytest.raises(SchemaError, match="timezone-aware"):
        label_impressions(shown.assign(ts=T0.tz_localize(None)), _clicks())
    with pytest.raises(SchemaError, match="event="):
        label_impressions(
            shown, _clicks((1, 10, T0, None, "click")).drop(columns="event"), grades={"click": 1}
        )
    assert label_impressions(shown, _clicks())["label"].tolist() == [0]  # no clicks yet
    with pytest.raises(SchemaError, match="whole number"):
        sample_negatives(shown.assign(label=0), -1)


def test_negative_sampling_keeps_every_positive_and_k_negatives_per_query() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"request_id": np.repeat([f"r{i}" for i in range(20)], 10),
                          "label": (rng.random(200) < 0.2).astype(int)})  # fmt: skip
    kept = sample_negatives(frame, 3, seed=1)
    assert (kept["label"] > 0).sum() == (frame["label"] > 0).sum()
    negatives = kept[kept["label"] == 0].groupby("request_id").size()
    assert negatives.max() == 3 and list(kept.index) == sorted(kept.index)
    assert sample_negatives(frame, 3, seed=1).equals(kept)
    assert not sample_negatives(frame, 3, seed=2).equals(kept)


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ml.Project, pd.DataFrame, pd.DataFrame]]:
    folder = tmp_path_factory.mktemp("ranking_set")
    (folder / "project").mkdir()
    project = ml.Project.open(folder / "project", env={})
    users, items, impressions, clicks = recs.world()
    recs.apply(project, folder, users, items)
    try:
        yield project, impressions, clicks
    finally:
        project.close()


def test_features_are_those_known_when_the_list_was_shown(store) -> None:  # type: ignore[no-untyped-def]
    project, impressions, clicks = store
    _, items, _, _ = recs.world()
    frame = ranking_set(project, impressions, clicks, features=["user_profile:*", "item_stats:*"])
    assert len(frame) == len(impressions) and {"favourite", "category", "quality", "label"} <= set(
        frame.columns
    )
    first, second = (
        items.iloc[: recs.ITEMS].set_index("item_id"),
        items.iloc[recs.ITEMS :].set_index("item_id"),
    )
    changed = second["ts"].iloc[0]  # every item's quality is re-drawn then
    before, after = frame[frame["ts"] < changed], frame[frame["ts"] >= changed]
    assert len(before) and len(after)
    # before the change the old quality is used, never the value that arrived later
    np.testing.assert_allclose(before["quality"], first.loc[before["item_id"], "quality"])
    np.testing.assert_allclose(after["quality"], second.loc[after["item_id"], "quality"])
    assert frame["label"].sum() > 0 and frame["ts"].is_monotonic_increasing


def test_ranking_set_with_sampled_negatives(store) -> None:  # type: ignore[no-untyped-def]
    project, impressions, clicks = store
    frame = ranking_set(project, impressions, clicks, features=["item_stats:quality"], negatives=2,
                        grades={"click": 1, "purchase": 2})  # fmt: skip
    assert frame.groupby("request_id")["label"].apply(lambda s: (s == 0).sum()).max() <= 2
    assert set(frame["label"].unique()) <= {0, 1, 2} and (frame["label"] == 2).any()


def test_doctests() -> None:
    assert doctest.testmod(ranking).failed == 0
