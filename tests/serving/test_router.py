"""Traffic splitting: shares hold, sticky callers stay on one version as a canary grows."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mloop.deployments import Deployment, Route
from mloop.serving.router import TrafficRouter, bucket


def deployment(*routes: tuple[int, float], shadow: tuple[int, ...] = ()) -> Deployment:
    return Deployment("e", 1, "m", tuple(Route(v, w) for v, w in routes), shadow)


def test_one_route_always_answers_its_version() -> None:
    router = TrafficRouter(deployment((3, 1.0)))
    assert {router.pick(), router.pick("a"), router.pick(17)} == {3}


def test_random_picks_follow_the_shares() -> None:
    router = TrafficRouter(deployment((1, 0.9), (2, 0.1)))
    counts = Counter(router.pick() for _ in range(20_000))
    assert abs(counts[2] / 20_000 - 0.1) < 0.015


def test_sticky_picks_follow_the_shares_and_repeat() -> None:
    router = TrafficRouter(deployment((1, 0.5), (2, 0.3), (3, 0.2)))
    picks = {f"customer-{i}": router.pick(f"customer-{i}") for i in range(20_000)}
    counts = Counter(picks.values())
    assert abs(counts[2] / 20_000 - 0.3) < 0.02 and abs(counts[3] / 20_000 - 0.2) < 0.02
    assert all(router.pick(key) == version for key, version in list(picks.items())[:500])


@given(st.lists(st.text(max_size=20), min_size=1, max_size=200), st.floats(0.01, 0.5), st.floats(0.0, 0.49))
def test_a_growing_canary_keeps_every_caller_it_had(keys: list[str], small: float, grow: float) -> None:
    before = TrafficRouter(deployment((1, 1 - small), (2, small)))
    after = TrafficRouter(deployment((1, 1 - small - grow), (2, small + grow)))
    on_canary = [k for k in keys if before.pick(k) == 2]
    assert all(after.pick(k) == 2 for k in on_canary)


def test_buckets_are_stable_across_processes() -> None:
    assert (
        bucket("customer-42")
        == int.from_bytes(__import__("hashlib").blake2b(b"customer-42", digest_size=8).digest(), "big")
        / 2**64
    )
    assert 0 <= bucket(12345) < 1


def test_zero_weight_routes_are_never_picked_and_shadows_are_listed() -> None:
    router = TrafficRouter(deployment((1, 1.0), (2, 0.0), shadow=(5,)))
    assert {router.pick(str(i)) for i in range(500)} == {1}
    assert router.shadows == (5,)
