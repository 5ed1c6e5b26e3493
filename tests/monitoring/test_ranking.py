"""Live ranking metrics: served lists from the prediction log joined with clicks, per version and day."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mloop import Project
from mloop.errors import SchemaError
from mloop.metrics import ranking
from mloop.monitoring import ranking as live
from mloop.monitoring.ranking import live_metrics, live_ranking
from mloop.predictions import Answer, PredictionLog, impressions, predictions_folder
from mloop.predictions.impressions import explode

T0 = pd.Timestamp("2026-12-01 10:00", tz="UTC")


def _shown(rows: list[tuple[str, int, list[str], int, pd.Timestamp]]) -> pd.DataFrame:
    answers = pd.DataFrame(rows, columns=["request_id", "user_id", "prediction", "version", "ts"])
    return explode(answers)


def test_metrics_per_version_and_day_match_the_offline_definitions() -> None:
    day2 = T0 + timedelta(days=1)
    shown = _shown([("r1", 1, ["a", "b", "c"], 1, T0), ("r2", 2, ["b", "a", "d"], 1, T0),
                    ("r3", 1, ["c", "a", "b"], 2, T0), ("r4", 3, ["a", "d", "c"], 2, day2)])  # fmt: skip
    clicks = pd.DataFrame({"user_id": [1, 2, 1, 1], "item_id": ["b", "b", "a", "z"],
                           "ts": [T0 + timedelta(minutes=m) for m in (1, 2, 3, 4)],
                           "request_id": ["r1", "r2", "r3", None]})  # fmt: skip
    got = live_metrics(shown, clicks, k=[1, 3], catalogue=4)
    assert list(zip(got["version"], got["day"], strict=True)) == [(1, "2026-12-01"), (2, "2026-12-01"),
                                                                  (2, "2026-12-02")]  # fmt: skip
    v1 = got.iloc[0]
    assert (v1["requests"], v1["impressions"], v1["clicks"]) == (2, 6, 2)
    assert v1["ctr"] == 1.0 and v1["item_ctr"] == pytest.approx(2 / 6)
    want = ranking.of_lists([["a", "b", "c"], ["b", "a", "d"]], [{"b"}, {"b"}], k=[1, 3], catalogue=4)
    for name in ("mrr", "ndcg@3", "recall@1", "hit_rate@1", "coverage@3"):
        assert v1[name] == pytest.approx(want[name]), name
    v2 = got.iloc[1]  # r3: the click on "a" has r3's request id; r1's user clicked "z", never shown
    assert v2["ctr"] == 1.0 and v2["mrr"] == 0.5
    assert got.iloc[2]["ctr"] == 0.0 and pd.isna(got.iloc[2]["mrr"])
    overall = live_metrics(shown, clicks, k=[3], by=())
    assert len(overall) == 1 and overall.iloc[0]["ctr"] == pytest.approx(3 / 4)
    with pytest.raises(SchemaError, match="group"):
        live_metrics(shown, clicks, by=["country"])


def test_from_the_prediction_log_of_an_endpoint(sqlite_project: Project) -> None:
    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(30)]
    with PredictionLog(predictions_folder(sqlite_project.settings)) as log:
        for r in range(40):
            served = [str(i) for i in rng.choice(items, 10, replace=False)]
            user = {"user_id": [r % 7]}
            # the user reaches the log as a model input on some answers, as a request key on others
            log.record(Answer(f"req{r}", "recs", "ranker", 1 + r % 2, 1, [served],
                              user if r % 2 else {"n": [10]}, 0.003, keys={} if r % 2 else user))  # fmt: skip
    shown = sqlite_project.predictions.impressions("recs", since="1h")
    assert len(shown) == 400 and shown["user_id"].tolist() == [r % 7 for r in range(40) for _ in range(10)]
    assert shown.groupby("request_id")["position"].apply(list).map(lambda p: p == list(range(10))).all()
    first = shown[shown["position"] == 0].iloc[0]
    clicks = pd.DataFrame({"user_id": [first["user_id"]], "item_id": [first["item_id"]],
                           "ts": [first["ts"] + timedelta(seconds=5)]})  # fmt: skip
    now = datetime.now(UTC)
    report = live_ranking(
        sqlite_project, "recs", clicks, since=now - timedelta(hours=1), k=[10], by=["version"]
    )
    assert list(report["version"]) == [1, 2] and report["requests"].sum() == 40
    assert report["clicks"].sum() >= 1 and report["mrr"].max() == 1.0
    assert sqlite_project.predictions.impressions("other", since="1h").empty


def test_doctests() -> None:
    assert doctest.testmod(live).failed == 0 and doctest.testmod(impressions).failed == 0
