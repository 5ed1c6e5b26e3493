"""On-demand views: the features they read are worked out once, for training sets and serving alike."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mloop import Project
from mloop.features import on_demand
from mloop.features.refs import resolve
from tests.features.fixtures import T0, at, ratio, transactions, views, write


@pytest.fixture
def ready(sqlite_project: Project, tmp_path: Path) -> Project:
    last, stats = views(write(transactions(), tmp_path / "txns.parquet"))
    sqlite_project.apply([last, stats, ratio])
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    return sqlite_project


def test_inputs_not_asked_for_are_read_and_hidden_and_the_request_is_left_alone(tmp_path: Path) -> None:
    last, stats = views(tmp_path / "txns.parquet")
    objects = {view.name: view for view in (last, stats, ratio)}
    resolved = resolve(["customer_stats:amount_count_24h", "amount_ratio:amount_vs_mean"], objects)
    wanted, hidden = on_demand.inputs_needed(resolved)
    assert wanted == {"customer_stats": ["amount_count_24h", "amount_mean_1h"]}
    assert hidden == [("customer_stats", "amount_mean_1h")]
    assert resolved.views == {"customer_stats": ["amount_count_24h"]}  # the request is not changed

    asked = resolve(["customer_stats:amount_mean_1h", "amount_ratio:amount_vs_mean"], objects)
    assert on_demand.inputs_needed(asked) == ({"customer_stats": ["amount_mean_1h"]}, [])


def test_training_and_serving_both_expand_the_inputs_with_the_one_function(
    ready: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = on_demand.inputs_needed

    def spy(resolved: Any) -> Any:
        calls.append(",".join(odv.name for odv, _ in resolved.on_demand))
        return real(resolved)

    monkeypatch.setattr(on_demand, "inputs_needed", spy)
    entity_df = pd.DataFrame({"customer_id": [1], "event_timestamp": [at], "request_amount": [10.0]})
    ready.features.historical(entity_df, ["amount_ratio:*"])
    ready.features.online({"customer_id": [1], "request_amount": [10.0]}, ["amount_ratio:*"], at=at)
    assert calls == ["amount_ratio", "amount_ratio"]


def test_an_input_of_a_view_also_asked_for_stays_hidden_offline_and_online(ready: Project) -> None:
    features = ["customer_stats:amount_count_24h", "amount_ratio:amount_vs_mean"]
    entity_df = pd.DataFrame(
        {"customer_id": [1, 2, 3], "event_timestamp": [at] * 3, "request_amount": [10.0, 20.0, 30.0]}
    )
    offline = ready.features.historical(entity_df, features)
    online = ready.features.online(entity_df.drop(columns="event_timestamp"), features, at=at)

    assert list(online) == ["customer_id", "amount_count_24h", "amount_vs_mean"]
    assert list(offline.columns) == [*entity_df.columns, "amount_count_24h", "amount_vs_mean"]
    assert online["amount_count_24h"] == offline["amount_count_24h"].tolist()
    assert online["amount_vs_mean"] == pytest.approx(offline["amount_vs_mean"].tolist())
