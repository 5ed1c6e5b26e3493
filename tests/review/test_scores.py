"""The ML Test Score and the maturity level, from findings."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from mloop.errors import ConfigError
from mloop.review.model import Check, Finding, Outcome
from mloop.review.scores import TESTS, maturity, ml_test_score

STATUSES = ("pass", "warn", "fail", "n/a")


def finding(id: str, status: str, mlts: tuple[str, ...] = (), level: int | None = None) -> Finding:
    check = Check(id, "lifecycle", "high", "t", "f", lambda facts: Outcome(status, ""), mlts, level)
    return Finding(check, Outcome(status, "s"))


def test_a_test_is_automated_when_every_applicable_check_passes_and_manual_when_evidence_is_recorded() -> (
    None
):
    found = [finding("a", "pass", ("data-1",)), finding("b", "n/a", ("data-1",)),
             finding("c", "pass", ("infra-7",)), finding("d", "fail", ("infra-7",)),
             finding("e", "n/a", ("model-6",))]  # fmt: skip
    score = ml_test_score(found, {"infra-7": "rollback drill every quarter", "model-1": "PR reviews"})
    by_id = {t.id: t for t in score.tests}
    assert (by_id["data-1"].score, by_id["data-1"].how) == (1.0, "automated")
    assert (by_id["infra-7"].score, by_id["infra-7"].how) == (0.5, "manual")  # a check fails: manual counts
    assert by_id["model-6"].score == 0.0  # nothing applicable: not automated
    assert (by_id["model-1"].score, by_id["model-1"].evidence) == (0.5, "PR reviews")
    assert score.sections == {"data": 1.0, "model": 0.5, "infra": 0.5, "monitor": 0.0}
    assert score.final == 0.0 and score.raw == 2.0
    assert (
        score.line() == "0 / 7 (minimum of Data 1, Model 0.5, Infrastructure 0.5, Monitoring 0) · raw 2 / 28"
    )


def test_evidence_for_a_test_that_does_not_exist_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown ML Test Score tests \['model-9'\]"):
        ml_test_score([], {"model-9": "x"})


@given(st.dictionaries(st.sampled_from(sorted(TESTS)), st.sampled_from(STATUSES)),
       st.sets(st.sampled_from(sorted(TESTS))))  # fmt: skip
def test_the_final_score_is_the_minimum_of_the_section_sums(
    statuses: dict[str, str], manual: set[str]
) -> None:
    found = [finding(f"c{i}", status, (test,)) for i, (test, status) in enumerate(statuses.items())]
    score = ml_test_score(found, {t: "by hand" for t in manual})
    for test in score.tests:
        automated = statuses.get(test.id) == "pass"
        assert test.score == (1.0 if automated else 0.5 if test.id in manual else 0.0)
    assert score.final == min(score.sections.values())
    assert score.raw == sum(score.sections.values()) <= 28


def test_the_maturity_level_is_the_highest_whose_conditions_and_those_below_all_hold() -> None:
    found = [finding("l1", "pass", level=1), finding("l2", "n/a", level=2), finding("l3a", "pass", level=3),
             finding("l3b", "warn", level=3), finding("l4", "pass", level=4)]  # fmt: skip
    got = maturity(found)
    assert got.level == 2 and got.next_failing == ("l3b",)  # level 4's pass does not skip level 3
    assert maturity([finding("l1", "fail", level=1)]).level == 0
    assert maturity([finding("l1", "pass", level=1)]).level == 1  # nothing checks level 2: not reached
