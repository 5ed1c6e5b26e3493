"""A process's clock set ``MLOOP_CHAOS_CLOCK_SKEW_S`` seconds off, for the clock-skew chaos test.

Python imports ``sitecustomize`` at start-up from its path, so a ``mloop serve`` started with this folder
first on ``PYTHONPATH`` runs with a skewed wall clock before any of its modules reads one: ``time.time``
and ``time.time_ns`` (the prediction log's timestamps, the online lookup's "now") and
``mloop._time.utcnow`` (every timestamp mloop stores). Monotonic clocks are left alone, as a real skewed
host's are: they measure durations, not dates. libfaketime would do the same from outside, but it broke
``time.sleep(0)`` in an earlier session.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

SKEW_S = float(os.environ.get("MLOOP_CHAOS_CLOCK_SKEW_S") or 0)

if SKEW_S:
    _time, _time_ns, _skew_ns = time.time, time.time_ns, int(SKEW_S * 1e9)

    def _skewed() -> float:
        return _time() + SKEW_S

    def _skewed_ns() -> int:
        return _time_ns() + _skew_ns

    time.time, time.time_ns = _skewed, _skewed_ns

    import mloop._time as clock

    _utcnow = clock.utcnow

    def _skewed_utcnow() -> datetime:
        return _utcnow() + timedelta(seconds=SKEW_S)

    clock.utcnow = _skewed_utcnow
