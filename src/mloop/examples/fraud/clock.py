"""The demo's clock: simulated days of payments, each split in rounds, and the loop controller ticked
once per round by the demo rather than every second by a timer.

A simulated day passes in seconds of wall time, and how many seconds depends on the machine. With a
timer, a slow machine gave the controller more ticks per simulated day than a fast one, so the same
story could unfold differently. Ticked by the rounds, the controller takes one decision per round (four
simulated hours in the full demo) whatever the speed; a tick that retrains, in a child process, runs
on while the traffic goes on, and the rounds that end meanwhile ask for one more tick, not one each.

The platform's own clocks (monitoring windows, label horizons, cooldowns, the prediction log) stay on
wall time, as in production: :class:`SimClock` maps the simulated dates the demo narrates onto the
wall-clock times the CLI and the report show.

>>> ticker = RoundTicker(controller)       # doctest: +SKIP
>>> ticker.round_ended()                    # after each round of traffic
>>> ticker.close()                          # waits for the tick in progress; no tick after it
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mloop.loop.controller import LoopController

_log = logging.getLogger("mloop.examples.demo")


class RoundTicker:
    """Ticks ``controller`` on a worker thread each time a round of traffic ends."""

    def __init__(self, controller: LoopController) -> None:
        self.controller = controller
        self.ticks = 0
        self.decisions: list[dict[str, Any]] = []  # the last tick's, one per policy
        self.busy_since: float | None = None  # monotonic time the tick in progress began
        self._due = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="mloop-demo-loop", daemon=True)
        self._thread.start()

    def round_ended(self) -> None:
        """Ask for a tick; one is pending at most, so a long tick (a retrain) is not followed by a burst."""
        self._due.set()

    def close(self, timeout: float = 120.0) -> None:
        """No tick after this; wait for the one in progress (a retrain ends within ``timeout``) and give
        the controller's lease up, so nothing writes to the project or its logs once the demo closes it."""
        self._closing = True
        self._due.set()
        self._thread.join(timeout)
        self.controller.release()

    def _work(self) -> None:
        while True:
            self._due.wait()
            if self._closing:
                return
            self._due.clear()
            self.busy_since = time.monotonic()
            try:
                self.decisions = self.controller.tick()
            except Exception:  # the demo goes on, as a controller process would after a failed tick
                _log.exception("the loop controller's tick failed")
            finally:
                self.busy_since = None
                self.ticks += 1


@dataclass
class SimClock:
    """Which simulated time each round ended at, and at which wall-clock time: the mapping between the
    dates the demo narrates and the times the CLI and the report show."""

    first_sim: datetime
    first_wall: float = field(default_factory=time.time)
    rounds: list[tuple[float, datetime]] = field(default_factory=list)  # (wall time it ended, simulated)

    def ended(self, sim: datetime) -> None:
        self.rounds.append((time.time(), sim))

    def at(self, wall: float) -> datetime | None:
        """The simulated time of the round in progress at wall time ``wall``."""
        for ended, sim in self.rounds:
            if ended >= wall:
                return sim
        return self.rounds[-1][1] if self.rounds else None

    @property
    def speed(self) -> float | None:
        """How many simulated seconds passed per wall-clock second (None before the first round)."""
        if not self.rounds:
            return None
        wall = self.rounds[-1][0] - self.first_wall
        return (self.rounds[-1][1] - self.first_sim).total_seconds() / wall if wall > 0 else None

    def mapping(self) -> str:
        """``simulated Jan 31 00:00 = 16:40:05 UTC wall clock, ×9,200`` (the speed once a round has passed)."""
        text = f"simulated {self.first_sim:%b %d %H:%M} = {wall_time(self.first_wall)} UTC wall clock"
        return text + (f", ×{self.speed:,.0f}" if self.speed else "")

    def span(self) -> dict[str, Any]:
        """The simulated and wall-clock span of the rounds so far."""
        last_wall, last_sim = self.rounds[-1] if self.rounds else (self.first_wall, self.first_sim)
        return {"sim": (self.first_sim, last_sim), "wall": (self.first_wall, last_wall), "speed": self.speed}


def wall_time(timestamp: float) -> str:
    """``16:40:05``: a wall-clock time in UTC, as the event log, the CLI and the report show it."""
    return f"{datetime.fromtimestamp(timestamp, UTC):%H:%M:%S}"
