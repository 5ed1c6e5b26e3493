"""How late the event loop runs: the measurement behind load shedding and the loop-lag metrics.

A request is answered on the event loop, so anything that holds the loop (a long computation, a garbage
collection, a background thread holding the GIL) delays every request that arrives meanwhile. A timer
due every :data:`TICK` seconds measures it: how late the timer runs is how long a callback queued when it
was due waited. Each measurement goes to two Prometheus histograms:

- ``mloop_event_loop_lag_seconds``: the lateness itself, what requests felt (whatever the cause);
- ``mloop_event_loop_blocked_seconds``: the lateness less the time the loop's thread sat runnable in
  the kernel's run queue, waiting for a CPU that other processes had (Linux's per-thread
  ``schedstat``). What is left is what the server did to itself: its own computation on the loop, a
  blocking call, a wait for the GIL held by one of its threads; a busy machine shows lag but not
  blocking (to within one tick), which is what a regression test can count. Where ``schedstat`` is
  missing (not Linux) the process's CPU time over the tick and the lateness, capped by the lateness,
  stands in: it also counts the work of other turns in the same window.

>>> monitor = LoopMonitor()
>>> monitor.ensure_started()      # on the running loop; idempotent         # doctest: +SKIP
>>> monitor.lag, monitor.worst    # the last measurement, the longest since start  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import math
import os
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
    "Each event-loop lag less the time the loop's thread waited for a CPU that other processes held: "
    "stalls caused by the server itself, not by a busy machine.",
    buckets=_BUCKETS,
)


class LoopMonitor:
    """The timer of one event loop. ``on_measure(lag, now)`` runs after each measurement (the guard's
    shedding rule); touched only on the loop's thread."""

    def __init__(self, on_measure: Callable[[float, float], None] | None = None) -> None:
        self.on_measure = on_measure
        self.lag = 0.0  # seconds late, the last measurement
        self.blocked = 0.0  # the part of the last lag the server caused itself (not a busy machine)
        self.worst = 0.0  # the longest lag since start
        self._waited: _RunQueueWait | None = None
        self._waited_at = 0.0  # the loop thread's run-queue wait when the timer was last set
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
        self._waited = waited = _RunQueueWait.open()  # on the loop's own thread: it describes this thread
        cpu = time.process_time
        try:
            while True:
                self.due = loop.time() + TICK
                self._waited_at = before = waited.seconds() if waited is not None else cpu()
                await asyncio.sleep(TICK)
                now = loop.time()
                self.lag = late = max(0.0, now - self.due)
                lag(late)
                if late <= 0:
                    own = 0.0
                elif waited is not None:  # the lateness less the wait for a CPU (what other processes took)
                    own = max(0.0, late - (waited.seconds() - before))
                else:  # CPU time over the tick and the lateness, capped by the lateness
                    own = min(late, cpu() - before)
                self.blocked = own
                blocked(own)
                if late > self.worst:
                    self.worst = late
                if self.on_measure is not None:
                    self.on_measure(late, now)
        finally:
            self._waited = None
            if waited is not None:
                waited.close()

    def waited_since_timer(self) -> float:
        """Seconds the loop's thread has waited for a CPU since the timer was last set (0 where the kernel
        does not say): of a stretch without the timer running, the part a busy machine took. Call it on
        the loop's thread."""
        waited = self._waited
        return max(0.0, waited.seconds() - self._waited_at) if waited is not None else 0.0


class _RunQueueWait:
    """How long the calling thread has waited in the kernel's run queue (runnable, not running), from
    ``/proc/thread-self/schedstat``'s second field (nanoseconds), read with one ``pread`` (about 1 µs)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls) -> _RunQueueWait | None:
        """The reader of this thread's wait, or None where the kernel does not keep it."""
        try:
            reader = cls(os.open("/proc/thread-self/schedstat", os.O_RDONLY))
            reader.seconds()
        except (OSError, ValueError, IndexError):
            return None
        return reader

    def seconds(self) -> float:
        return int(os.pread(self.fd, 128, 0).split()[1]) / 1e9

    def close(self) -> None:
        os.close(self.fd)
