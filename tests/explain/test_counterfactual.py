"""Counterfactuals: every answer crosses the threshold when the model scores it again and respects every
constraint; answers differ in what they change; a clear answer when there is none; contradictions are
refused naming the feature."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.config import load_settings
from mloop.errors import ConfigError
from mloop.explain import ConstraintError, Counterfactuals, Goal, counterfactuals
from mloop.explain.constraints import resolve
from tests.explain import fraudlike

GOAL = {"threshold": 0.5, "want": "below"}


@pytest.fixture(scope="module")
def fitted() -> Any:
    return fraudlike.model()


@pytest.fixture(scope="module")
def rows(fitted: Any) -> list[dict[str, Any]]:
    return fraudlike.risky_rows(fitted, 8)


def find(fitted: Any, row: dict[str, Any], constraints: dict[str, Any], **options: Any) -> Counterfactuals:
    return counterfactuals(fraudlike.scorer(fitted), row, constraints, GOAL, specs=fraudlike.SPECS, **options)


def assert_respected(found: Counterfactuals, fitted: Any, row: dict[str, Any], constraints: dict[str, Any],
                     max_changes: int | None = None) -> None:  # fmt: skip
    """What a user relies on for each answer, checked independently of the search."""
    import pandas as pd

    for answer in found.answers:
        again = float(fraudlike.scorer(fitted)(pd.DataFrame([answer.row]))[0])
        assert again < 0.5 and again == pytest.approx(answer.prediction)
        assert answer.changes and (max_changes is None or len(answer.changes) <= max_changes)
        assert {k: v for k, v in answer.row.items() if k not in answer.changes} == {
            k: v for k, v in row.items() if k not in answer.changes
        }
        for name, (before, after) in answer.changes.items():
            c = constraints.get(name)
            assert c is not None and not c.get("immutable"), f"{name} is immutable"
            assert before == row[name] and after != before
            if name in ("country", "device"):
                assert after in (c.get("categories") or fraudlike.DEVICES)
                continue
            assert c.get("min", -math.inf) <= after <= c.get("max", math.inf)
            assert {"up": after > before, "down": after < before}.get(c.get("direction", "any"), True)
            step = c.get("step", 1 if name == "hour" else None)
            if step is not None:
                assert (after - before) / step == pytest.approx(round((after - before) / step), abs=1e-6)
            if name == "hour":
                assert isinstance(after, int)


def test_blocked_payments_get_answers_that_the_model_lets_through(
    fitted: Any, rows: list[dict[str, Any]]
) -> None:
    for row in rows[:3]:
        found = find(fitted, row, fraudlike.SETTINGS["features"], k=3)
        assert found.prediction > 0.5 and found.answers, found.reason
        assert found.reason is None and "country" not in found.actionable
        assert_respected(found, fitted, row, fraudlike.SETTINGS["features"])
        distances = [a.distance for a in found.answers]
        assert distances[0] == min(distances)


def _numeric(current: float, span: float, integer: bool) -> st.SearchStrategy[dict[str, Any]]:
    below = st.none() | st.floats(0, 2).map(lambda a: current - a * span)
    above = st.none() | st.floats(0, 2).map(lambda b: current + b * span)
    step = st.sampled_from([None, 1, 5]) if integer else st.sampled_from([None, 0.5, 10])

    def build(low: float | None, high: float | None, direction: str, step: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {"direction": direction}
        if low is not None:
            out["min"] = math.floor(low) if integer else low
        if high is not None:
            out["max"] = math.ceil(high) if integer else high
        if step is not None:
            out["step"] = step
        return out

    free = st.builds(build, below, above, st.sampled_from(["up", "down", "any"]), step)
    return st.just({"immutable": True}) | free


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_answer_respects_every_constraint(fitted: Any, rows: list[dict[str, Any]], data: Any) -> None:
    row = data.draw(st.sampled_from(rows))
    constraints = {
        "amount": data.draw(_numeric(row["amount"], 500, integer=False)),
        "hour": data.draw(_numeric(row["hour"], 6, integer=True)),
        "distance_km": data.draw(_numeric(row["distance_km"], 50, integer=False)),
        "device": data.draw(st.sampled_from([{"immutable": True}, {}, {"categories": ["desktop"]}])),
    }
    max_changes = data.draw(st.sampled_from([None, 1, 2]))
    found = find(fitted, row, constraints, k=2, max_changes=max_changes)
    assert_respected(found, fitted, row, constraints, max_changes)
    assert found.answers or found.reason


def test_answers_differ_in_the_features_they_change(fitted: Any, rows: list[dict[str, Any]]) -> None:
    found = find(fitted, rows[0], fraudlike.SETTINGS["features"], k=3)
    sets = [frozenset(a.changes) for a in found.answers]
    assert len(sets) >= 2 and len(set(sets)) == len(sets)
    assert not any(later > earlier for i, earlier in enumerate(sets) for later in sets[i + 1 :])


def test_no_answer_within_the_constraints_says_so(fitted: Any, rows: list[dict[str, Any]]) -> None:
    row = rows[0]
    tight = {"distance_km": {"min": row["distance_km"], "max": row["distance_km"] + 0.5}}
    found = find(fitted, row, tight)
    assert found.answers == [] and found.evaluations > 0
    assert found.reason is not None and "No change within the constraints" in found.reason
    assert "distance_km" in found.reason


def test_nothing_to_do_or_nothing_allowed_is_an_answer_not_an_error(
    fitted: Any, rows: list[dict[str, Any]]
) -> None:
    nothing = find(fitted, rows[0], {})
    assert nothing.answers == [] and "No feature may change" in (nothing.reason or "")
    fine = {**rows[0], "amount": 5.0, "hour": 12, "distance_km": 1.0, "device": "desktop"}
    already = find(fitted, fine, fraudlike.SETTINGS["features"])
    assert already.answers == [] and "already below 0.5" in (already.reason or "")


def test_a_missing_value_is_never_changed(fitted: Any, rows: list[dict[str, Any]]) -> None:
    row = {**rows[0], "distance_km": float("nan")}
    bounds = resolve(row, {"distance_km": _constraint({"min": 0})}, specs=fraudlike.SPECS)
    assert bounds == []
    row = {**rows[1], "device": None}
    assert all("device" not in a.changes for a in find(fitted, row, fraudlike.SETTINGS["features"]).answers)


@pytest.mark.parametrize(
    ("constraints", "feature", "needle"),
    [
        ({"balance": {"min": 0}}, "balance", "not an input of the model"),
        ({"amount": {"direction": "up", "max": 1.0}}, "amount", "below the current value"),
        ({"amount": {"direction": "down", "min": 1e6}}, "amount", "above the current value"),
        ({"hour": {"step": 0.5}}, "hour", "whole steps"),
        ({"hour": {"categories": [1, 2]}}, "hour", "not categories"),
        ({"device": {"categories": ["phone"]}}, "device", "not categories of the model"),
        ({"device": {"min": 0}}, "device", "categorical feature takes no min"),
    ],
)
def test_contradictory_constraints_name_the_feature(
    fitted: Any, rows: list[dict[str, Any]], constraints: dict[str, Any], feature: str, needle: str
) -> None:
    with pytest.raises(ConstraintError) as caught:
        find(fitted, rows[0], constraints)
    assert caught.value.to_dict()[0]["field"] == feature
    assert needle in caught.value.to_dict()[0]["message"]


def test_a_request_narrows_but_never_frees_an_immutable_feature(rows: list[dict[str, Any]]) -> None:
    declared = {n: _constraint(c) for n, c in fraudlike.SETTINGS["features"].items()}
    narrowed = resolve(rows[0], declared, specs=fraudlike.SPECS,
                       request={"amount": _constraint({"min": 100, "max": 9e9}), "hour": _constraint({"immutable": True})})  # fmt: skip
    amount = next(b for b in narrowed if b.name == "amount")
    assert (amount.low, amount.high) == (100, rows[0]["amount"]) and "hour" not in [b.name for b in narrowed]
    with pytest.raises(ConstraintError, match="country: is immutable"):
        resolve(rows[0], declared, specs=fraudlike.SPECS, request={"country": _constraint({})})
    with pytest.raises(ConstraintError, match="amount: direction up contradicts"):
        resolve(
            rows[0], declared, specs=fraudlike.SPECS, request={"amount": _constraint({"direction": "up"})}
        )


def test_unlisted_features_are_immutable_unless_declared_free(rows: list[dict[str, Any]]) -> None:
    assert resolve(rows[0], {}, specs=fraudlike.SPECS) == []
    free = {b.name for b in resolve(rows[0], {}, specs=fraudlike.SPECS, unlisted="free")}
    assert free == {"amount", "hour", "distance_km", "country", "device"}


def test_the_settings_block_is_checked_once_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text(
        "explain:\n  counterfactuals:\n    fraud:\n      want: below\n      features:\n"
        "        amount: {min: 10, max: 1}\n"
    )
    with pytest.raises(
        ConfigError, match=r"explain\.counterfactuals\.fraud\.features\.amount: min \(10\) is above"
    ):
        load_settings(tmp_path, {})
    (tmp_path / "mloop.yaml").write_text("explain:\n  counterfactuals:\n    fraud: {threshold: 0.7}\n")
    with pytest.raises(ConfigError, match=r"explain\.counterfactuals\.fraud\.want"):
        load_settings(tmp_path, {})


def test_without_specs_the_row_s_own_types_decide(fitted: Any, rows: list[dict[str, Any]]) -> None:
    row = {**rows[0], "hour": np.int64(rows[0]["hour"]), "amount": np.float64(rows[0]["amount"])}
    kinds = {b.name: b.kind for b in resolve(row, {n: _constraint({}) for n in ("amount", "hour")})}
    assert kinds == {"amount": "float", "hour": "int"}
    with pytest.raises(ConstraintError, match="device: a text feature needs its categories"):
        resolve(row, {"device": _constraint({})})


def test_goal_sides() -> None:
    assert Goal(0.5, "below").reached(np.array([0.5])).tolist() == [False]
    assert Goal(0.5, "above").reached(np.array([0.5])).tolist() == [True]


def _constraint(data: dict[str, Any]) -> Any:
    from mloop.config.explain import FeatureConstraint

    return FeatureConstraint.model_validate(data)
