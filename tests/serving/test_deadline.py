"""Per-endpoint timeouts: a model call past ``timeout_ms`` fails with a 504-mapped error naming the endpoint
and the setting, without blocking the event loop, and a call still queued when its time is up never runs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mloop.errors import PredictionTimeout
from mloop.serving.deadline import Deadlines
from mloop.serving.http.errors import render


def test_a_call_within_its_timeout_answers() -> None:
    deadlines = Deadlines()
    try:
        assert asyncio.run(deadlines.call("fraud", 1_000, lambda a, b=0: a + b, 2, b=3)) == 5
    finally:
        deadlines.close()


def test_a_slow_call_times_out_with_a_504_naming_the_endpoint_and_the_setting() -> None:
    deadlines, release = Deadlines(), threading.Event()
    try:
        with pytest.raises(PredictionTimeout) as caught:
            asyncio.run(deadlines.call("slow", 50, release.wait, 5))
        message = str(caught.value)
        assert "'slow'" in message and "timeout_ms of 50 ms" in message and "--timeout-ms" in message
        status, body, _ = render(caught.value, "/v1/endpoints/slow/predict")
        assert status == 504 and body["message"] == message
    finally:
        release.set()
        deadlines.close()


def test_the_event_loop_keeps_running_while_a_call_overruns() -> None:
    deadlines, release = Deadlines(), threading.Event()

    async def both() -> int:
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.ensure_future(ticking())
        with pytest.raises(PredictionTimeout):
            await deadlines.call("slow", 200, release.wait, 5)
        ticker.cancel()
        return ticks

    try:
        assert asyncio.run(both()) >= 5  # about 40 on an idle machine: the loop was never held
    finally:
        release.set()
        deadlines.close()


def test_a_call_queued_past_its_time_never_runs_and_other_endpoints_have_their_own_threads() -> None:
    deadlines, release, ran = Deadlines(threads=1), threading.Event(), threading.Event()

    async def scenario() -> str:
        with pytest.raises(PredictionTimeout):  # holds slow's only thread until released
            await deadlines.call("slow", 30, release.wait, 5)
        with pytest.raises(PredictionTimeout):  # queued behind it: cancelled before it starts
            await deadlines.call("slow", 30, ran.set)
        return await deadlines.call("fast", 1_000, lambda: "answered")

    try:
        assert asyncio.run(scenario()) == "answered"
        release.set()
        time.sleep(0.2)
        assert not ran.is_set()
    finally:
        release.set()
        deadlines.close()
