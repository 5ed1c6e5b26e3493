"""The case's story holds on a seeded --fast world: the towers beat popularity offline, the taste shift
costs v1 its clicks, a v2 trained after the shift wins them back, and an A/B test of that fits a demo."""

from __future__ import annotations

import math

import pytest

from mloop.examples.recsys.evidence import sample_size, story
from mloop.examples.recsys.generate import World


@pytest.mark.slow
def test_the_story_holds_on_the_fast_world() -> None:
    figures = story(World.make(users=500, items=1000, seed=0), requests=1500)
    recall, ctr = figures["recall_at_100"], figures["ctr"]
    assert recall["v1"] > 1.5 * recall["popularity"]
    assert ctr["v1_pre"] > 1.5 * ctr["popularity_pre"]
    assert ctr["v1_post"] < 0.6 * ctr["v1_pre"]  # the shift costs v1 about half its clicks
    assert ctr["v2_post"] > 1.5 * ctr["v1_post"]  # and the retrained model wins most of them back
    assert figures["sample_size_per_arm"] <= 1000  # a few hundred requests per arm decide it


def test_sample_size_follows_the_two_proportion_formula() -> None:
    assert sample_size(0.10, 0.15) == 686  # the textbook figure for alpha 0.05, power 0.8
    assert sample_size(0.10, 0.15, power=0.9) > 686 and sample_size(0.10, 0.20) < 686
    assert sample_size(0.2, 0.2) == math.inf
