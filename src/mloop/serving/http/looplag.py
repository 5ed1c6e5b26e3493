"""How late the event loop runs: the measurement behind load shedding and the loop-lag metrics.

A request is answered on the event loop, so anything that holds the loop (a long computation, a garbage
collection, a background thread holding the GIL) delays every request that arrives meanwhile. A timer
due every :data:`TICK` seconds measures it: how late the timer runs is how long a callback queued when it
was due waited. Each measurement goes to two Prometheus histograms:

- ``mloop_event_loop_lag_seconds``: the lateness itself, what requests felt (whatever the cause);
- ``mloop_event_loop_blocked_seconds``: the part of it this process spent on a CPU (its own threads'
  CPU time over the tick and the lateness, capped by the lateness). A stretch when the operating system
  ran other processes instead (a busy machine) is lag but not blocking, beyond at most one tick: this
  series counts what the server did to itself, whatever else runs on the machine, which is what a
  regression test can count.

>>> monitor = LoopMonitor()
>>> monitor.ensure_started()      # on the running loop; idempotent         # doctest: +SKIP
>>> monitor.lag, monitor.worst    # the last measurement, the longest since start  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from prometheus_client import Histogram

TICK = 0.002  # seconds between measurements
_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5)  # fmt: skip

LAG = Histogram(
    "mloop_event_loop_lag_seconds",
    f"How late the worker's event loop ran a timer due every {TICK * 1000:g} ms: how long a request arriving "
    "then waited before the loop could look at it.",
    buckets=_BUCKETS,
)
BLOCKED = Histogram(
    "mloop_event_loop_blocked_seconds",
    "The part of each event-loop lag the worker process itself spent on a CPU (not waiting for one): "
    "stalls caused by the server, not by other processes on the machine.",
    buckets=_BUCKETS,
)


class LoopMonitor:
    """The timer of one event loop. ``on_measure(lag, now)`` runs after each measurement (the guard's
    shedding rule); touched only on the loop's thread."""

    def __init__(self, on_measure: Callable[[float, float], None] | None = None) -> None:
        self.on_measure = on_measure
        self.lag = 0.0  # seconds late, the last measurement
        self.worst = 0.0  # the longest lag since start
        self.due = math.inf  # when the timer is due (loop time)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def ensure_started(self) -> bool:
        """Start measuring on the running loop unless already measuring there; True when it just started."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._task.get_loop() is loop:
            return False
        self.lag, self.due = 0.0, math.inf
        self._task = loop.create_task(self._watch(), name="mloop-loop-monitor")
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        lag, blocked = LAG.observe, BLOCKED.observe
        cpu = time.process_time
        while True:
            self.due = loop.time() + TICK
            before = cpu()
            await asyncio.sleep(TICK)
            now = loop.time()
            self.lag = late = max(0.0, now - self.due)
            lag(late)
            # The process's CPU time over the tick and the lateness, capped by the lateness: a lateness the
            # process spent waiting for a CPU counts here only for what it ran during the tick (< TICK).
            blocked(min(late, cpu() - before) if late > 0 else 0.0)
            if late > self.worst:
                self.worst = late
            if self.on_measure is not None:
                self.on_measure(late, now)
