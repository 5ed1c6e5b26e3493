"""Global importance: mean |attribution| per feature and its shares on a bounded seeded sample, the
shift between two versions in words, and the model card's section (from a training pipeline's holdout)."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.explain import explain
from mloop.explain.importance import (
    Importance,
    card_lines,
    measure,
    on_holdout,
    sample,
    shares,
    shift,
    total_variation,
)
from mloop.registry import card as cards
from tests.training.fraud import setup


@pytest.fixture(scope="module")
def model_and_rows() -> tuple[lightgbm.LGBMRegressor, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.normal(size=600), "hour": rng.normal(size=600),
                          "noise": rng.normal(size=600)})  # fmt: skip
    target = 3 * frame["amount"] + frame["hour"]
    model = lightgbm.LGBMRegressor(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1).fit(frame, target)
    return model, frame


def test_the_feature_the_model_uses_most_comes_first_with_shares_adding_to_one(model_and_rows) -> None:  # type: ignore[no-untyped-def]
    model, frame = model_and_rows
    found = on_holdout("lightgbm", model, frame, rows=250, seed=3)
    assert list(found["mean_abs"])[:2] == ["amount", "hour"]
    assert sum(found["shares"].values()) == pytest.approx(1.0)
    assert found["shares"]["amount"] > 0.6 and found["shares"]["noise"] < 0.05
    assert found["rows"] == 250 and found["sample"] == {"rows": 250, "of": 600, "seed": 3}
    assert found["method"] == "tree_shap" and found["output"] == "value"
    again = on_holdout("lightgbm", model, frame, rows=250, seed=3)
    assert again == found  # seeded: the same sample, the same numbers


def test_a_flavour_without_an_explainer_gets_a_note_not_an_error(model_and_rows) -> None:  # type: ignore[no-untyped-def]
    model, frame = model_and_rows
    found = on_holdout("no_such_flavour", model, frame)
    assert set(found) == {"note"} and "No explainer for the 'no_such_flavour' flavour" in found["note"]
    assert measure(lambda f: pytest.fail("nothing to explain"), frame.head(0)) == {
        "note": "no rows to explain"
    }


def test_a_sample_is_bounded_seeded_and_keeps_the_order() -> None:
    frame = pd.DataFrame({"x": np.arange(5_000)})
    taken = sample(frame, rows=2_000, seed=1)
    assert len(taken) == 2_000 and taken["x"].is_monotonic_increasing
    assert taken.equals(sample(frame, rows=2_000, seed=1)) and not taken.equals(
        sample(frame, rows=2_000, seed=2)
    )
    assert sample(frame.head(10), rows=2_000).equals(frame.head(10))


def test_the_shift_is_worded_as_the_change_in_share() -> None:
    moves = shift({"amount": 0.21, "hour": 0.79}, {"amount": 0.29, "hour": 0.71})
    assert sorted(m.feature for m in moves) == ["amount", "hour"]
    by_name = {m.feature: m for m in moves}
    assert by_name["amount"].sentence("v2") == "v2 relies 38% more on `amount` (share 21.0% -> 29.0%)"
    assert by_name["hour"].sentence("v2").startswith("v2 relies 10% less on `hour`")
    assert by_name["amount"].change == pytest.approx(0.08)
    new = {m.feature: m for m in shift({"amount": 1.0}, {"amount": 0.6, "merchant": 0.4})}
    assert new["merchant"].relative is None and new["merchant"].before == 0
    assert "did not use" in new["merchant"].sentence("v3")


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=1, max_size=6), st.lists(st.floats(0, 10), min_size=1, max_size=6))
def test_the_distance_is_between_zero_and_one_and_zero_only_for_equal_shares(
    a: list[float], b: list[float]
) -> None:
    before = shares({f"f{i}": v for i, v in enumerate(a)})
    after = shares({f"f{i}": v for i, v in enumerate(b)})
    distance = total_variation(before, after)
    assert -1e-12 <= distance <= 1 + 1e-12
    assert total_variation(before, before) == 0
    moves = shift(before, after)
    assert [abs(m.change) for m in moves] == sorted((abs(m.change) for m in moves), reverse=True)


def test_importance_is_sorted_largest_first(model_and_rows) -> None:  # type: ignore[no-untyped-def]
    model, frame = model_and_rows
    found = Importance.of(explain("lightgbm", model, frame.head(100)))
    assert list(found.mean_abs.values()) == sorted(found.mean_abs.values(), reverse=True)


def test_the_card_shows_importance_sorted_with_shares_or_says_why_not() -> None:
    facts = {"mean_abs": {"hour": 0.1, "amount": 0.3}, "method": "tree_shap", "output": "log_odds", "rows": 2000,
             "sample": {"rows": 2000, "of": 9000, "seed": 0}}  # fmt: skip
    text = "\n".join(card_lines(facts))
    assert text.index("| amount | 0.3 | 75.0% |") < text.index("| hour | 0.1 | 25.0% |")
    assert "2,000 holdout rows (a seeded sample of 9,000, seed 0)" in text
    assert card_lines({"note": "not computed: No explainer for 'pytorch'"}) == [
        "not recorded (not computed: No explainer for 'pytorch')"
    ]
    built = cards.build({"importance": facts})
    assert built["importance"] == facts and "other" not in built


def test_a_pipeline_registers_the_holdout_importance_on_the_card(tmp_path: Path) -> None:
    with Project.open(tmp_path, env={}) as project:
        pipeline, _ = setup(project, tmp_path, rows=2_000)
        small = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1)
        ml.TrainingPipeline(**{**pipeline.__dict__, "model": small}).run(project)
        facts = project.models.card("fraud", 1, format="json")
        text = project.models.card("fraud", 1)
    assert isinstance(facts, dict) and isinstance(text, str)
    importance = facts["importance"]
    assert importance["method"] == "tree_shap" and importance["output"] == "log_odds"
    assert importance["rows"] == importance["sample"]["of"] <= 2_000  # the whole (small) test split
    assert set(importance["mean_abs"]) >= {"amount_ratio", "device"}
    section = text.split("## Global importance")[1].split("##")[0]
    top = max(importance["mean_abs"], key=importance["mean_abs"].get)
    assert section.index(f"| {top} |") < min(
        section.index(f"| {f} |") for f in importance["mean_abs"] if f != top
    )
