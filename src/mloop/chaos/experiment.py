"""``mloop chaos run``: one fault injected into the user's own deployment on this machine, under steady
open-loop load, with what the clients saw measured before, during and after it.

The load is :func:`mloop.review.probe.load` (requests on schedule, latency from when each was due), with
the endpoint's recent logged rows as bodies and the probe's target check: the URL must be this machine.
After :func:`lead_in` seconds of baseline the fault is injected for ``seconds`` (at most
:data:`~mloop.chaos.faults.MAX_SECONDS`, by a mechanism that ends by itself); the load goes on until the
clients are back to the baseline's latency and the fault's own recovery was seen (a killed worker's
replacement started), at least :data:`MIN_AFTER` s, or :data:`AFTER_BOUND` s.
Whatever happens (an error, Ctrl-C), the injection is called off and the fault released in a ``finally``;
the fault itself ends at its deadline whatever happens to this process.

>>> result = run(project, "worker-kill", endpoint="fraud", url="http://127.0.0.1:8700", seconds=5)  # doctest: +SKIP
>>> result.failed, result.baseline_s, result.lost                                                 # doctest: +SKIP
({'connection': 2}, 0.04, 0)
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mloop._time import utcnow
from mloop.chaos import faults, result
from mloop.chaos.faults import MAX_SECONDS, ChaosRefused, Fault
from mloop.chaos.result import ChaosResult
from mloop.errors import MloopError
from mloop.predictions.files import read_predictions
from mloop.predictions.log import predictions_folder
from mloop.review.probe import MAX_RPS, Sample, load, target

if TYPE_CHECKING:
    from mloop.project import Project

MIN_AFTER = 2.0  # seconds of load after the fault, at least: the "after" latency needs samples
AFTER_BOUND = 30.0  # seconds of load after the fault, at most, waiting for the baseline's latency
TIMEOUT = 5.0  # seconds a request may take before it counts as a timeout
LOG_WAIT = 10.0  # seconds to wait for answered requests to reach the prediction log (it fsyncs each 1 s)


def lead_in(seconds: float) -> float:
    """Seconds of baseline load before the fault: as long as the fault, between 2 and 10."""
    return min(max(seconds, 2.0), 10.0)


@dataclass
class _Watch:
    """What the load's ``stop`` reads and the injector thread writes (plain attributes: one writer each)."""

    rps: float
    run: int
    samples: list[Sample] = field(default_factory=list)
    starts: float | None = None
    ends: float | None = None
    window: float | None = None
    followed: bool = False  # the fault's recovery (a replacement worker started, say) was seen
    failed: BaseException | None = None
    _checked: float = 0.0

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def stop(self) -> bool:
        """Whether the load may end: the fault failed, or it is over, its recovery was seen and the clients
        are back to baseline (or :data:`AFTER_BOUND` s have passed)."""
        if self.failed is not None:
            return True
        if self.window is None or self.starts is None or self.ends is None:
            return False
        now = time.monotonic()
        if now >= self.window + AFTER_BOUND:
            return True
        if not self.followed or now < self.window + MIN_AFTER or now - self._checked < 0.25:
            return False
        self._checked = now
        ordered = self._complete_prefix()
        limit = result.threshold_s([s for s in ordered if s.due < self.starts])
        return limit is not None and result.back_to_baseline(ordered, self.ends, limit, self.run) is not None

    def _complete_prefix(self) -> list[Sample]:
        """The samples by due time, up to the first request still in flight (a slow one may yet break a
        run of good ones)."""
        ordered = sorted(self.samples, key=lambda s: s.due)
        if not ordered:
            return []
        first = ordered[0].due  # request 0 is due when the load starts
        prefix = []
        for k, sample in enumerate(ordered):
            if round((sample.due - first) * self.rps) != k:
                break
            prefix.append(sample)
        return prefix


def _classify(answer: httpx.Response) -> tuple[str, str | None]:
    """The outcome (``200``, ``200 defaulted``, ``503``) and request id of an answer."""
    outcome = str(answer.status_code)
    if not answer.is_success:
        return outcome, None
    try:
        body = answer.json()
    except ValueError:
        return outcome, None
    if not isinstance(body, dict):
        return outcome, None
    if body.get("defaulted"):
        outcome = f"{outcome} {result.DEFAULTED}"
    request_id = body.get("request_id")
    return outcome, str(request_id) if request_id is not None else None


def _inject(fault: Fault, watch: _Watch, lead: float, seconds: float, stop: threading.Event) -> None:
    if stop.wait(lead):
        return  # interrupted before the fault
    try:
        starts = time.monotonic()
        ends = fault.inject(seconds)
        watch.starts, watch.ends, watch.window = starts, ends, max(ends, starts + seconds)
        fault.watch(stop)
        watch.followed = True
    except BaseException as exc:  # handed to the caller, which raises it
        watch.failed = exc


def run(project: Project, fault: str, *, endpoint: str, url: str = "http://127.0.0.1:8700",
        seconds: float = 10.0, rps: float = 50.0, allow_outage: bool = False,
        api_key: str | None = None) -> ChaosResult:  # fmt: skip
    """Inject ``fault`` (one of :data:`~mloop.chaos.faults.FAULTS`) for ``seconds`` into the deployment
    serving ``endpoint`` at ``url`` (this machine only) under ``rps`` requests a second; what the clients
    saw. Refused (:class:`~mloop.chaos.faults.ChaosRefused`) before any load when the target is not here."""
    base = target(url)  # never allow_remote: faults are for a deployment on this machine
    if not (isinstance(seconds, int | float) and 0 < seconds <= MAX_SECONDS):
        raise ChaosRefused(
            f"--seconds must be in (0, {MAX_SECONDS:.0f}], got {seconds!r}: a fault is bounded."
        )
    if not (isinstance(rps, int | float) and 0 < rps <= MAX_RPS):
        raise ChaosRefused(f"--rps must be in (0, {MAX_RPS:.0f}], got {rps!r}.")
    faults.known(fault)  # before anything else is asked of the user's setup
    bodies = project.reviews.probe_rows(endpoint)
    if not bodies:
        raise MloopError(
            f"No rows to send to {endpoint!r}: its prediction log has no answered request yet. "
            "Send a few predictions first (the load replays their inputs)."
        )
    if api_key is None and project.settings.api_key is not None:
        api_key = project.settings.api_key.get_secret_value()
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    port = base.port or (443 if base.scheme == "https" else 80)
    prepared = faults.prepare(fault, project.settings, port, allow_outage=allow_outage)
    lead = lead_in(seconds)
    watch = _Watch(float(rps), result.streak(rps))
    stop = threading.Event()
    injector = threading.Thread(target=_inject, args=(prepared, watch, lead, seconds, stop), daemon=True)
    at = utcnow()
    try:
        injector.start()
        samples, _, lag = asyncio.run(load(
            str(base), f"/v1/endpoints/{endpoint}/predict", bodies, rps, lead + seconds + AFTER_BOUND, TIMEOUT,
            headers, classify=_classify, on_sample=watch.add, stop=watch.stop,
        ))  # fmt: skip
    finally:
        stop.set()
        injector.join(10)
        prepared.undo()
    if watch.failed is not None:
        raise watch.failed
    if watch.starts is None or watch.ends is None:
        raise MloopError(f"The fault {fault!r} was not injected (the load ended first); run it again.")
    fields = result.summarize(fault, endpoint, str(base), at, rps, seconds, samples, watch.starts, watch.ends,
                              lag)  # fmt: skip
    ids = [s.request_id for s in samples if s.request_id is not None]
    lost, note = missing_from_log(project, endpoint, ids, at - timedelta(minutes=1))
    return ChaosResult(**fields, lost=lost, lost_note=note, target=prepared.figures())


def missing_from_log(project: Project, endpoint: str, ids: list[str], since: Any) -> tuple[int | None, str]:
    """How many of the answered request ``ids`` are not (yet, after :data:`LOG_WAIT` s) in ``endpoint``'s
    prediction log, with how that was checked; None when the log cannot be read from here."""
    folder = predictions_folder(project.settings)
    if not isinstance(folder, Path):
        return None, "not checked: the prediction log's segments are in the server's spool, not here"
    if not ids:
        return 0, "no request was answered"
    wanted = set(ids)
    deadline = time.monotonic() + LOG_WAIT
    while True:
        frame = read_predictions(folder, endpoint, since, None, project.parquet)
        logged = set(frame.loc[frame["status"] == "ok", "request_id"]) if len(frame) else set()
        missing = wanted - logged
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(missing) == len(wanted):
        return None, (f"not checked: none of the {len(wanted)} answered ids is in {folder}: is the server at "
                      "the URL serving this project (-C)?")  # fmt: skip
    return len(missing), f"{len(wanted) - len(missing)} of {len(wanted)} answered ids found in {folder}"
