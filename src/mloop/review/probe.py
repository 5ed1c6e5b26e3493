"""``mloop review --probe ENDPOINT``: a short, bounded open-loop load test of a server the user names, to
show that an endpoint meets its requirement (``review.requirements``: ``throughput_rps``, ``p99_ms``).

Open loop: request ``i`` is due at ``start + i / rps`` and is sent then, whether or not earlier ones were
answered, as real traffic arrives; its latency is measured from when it was *due*, so a server (or client)
that falls behind shows it in the latency instead of quietly sending less (coordinated omission). The load
is bounded: at most :data:`MAX_SECONDS` seconds at :data:`MAX_RPS` requests a second, each request
timed out after ``timeout`` seconds. The target must be on this machine (loopback: ``127.0.0.0/8``,
``::1``, ``localhost``) unless the caller passes ``allow_remote=True``, which the CLI does only for a
``--url`` the user typed: a probe never picks a target of its own.

Bodies are real rows of the endpoint: the inputs of its recent answered requests in the prediction log, or
the ``rows`` given. The result is recorded as the audit event ``review.probe`` on ``endpoint:<name>``, where
the requirements checks find it (:func:`latest`).

>>> result = probe(project, "fraud", url="http://127.0.0.1:8000", rps=200, seconds=10)   # doctest: +SKIP
>>> result.p99_ms, result.achieved_rps, result.errors                                   # doctest: +SKIP
(12.4, 199.8, {})
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mloop._service import Context, Service
from mloop._time import utcnow
from mloop.errors import MloopError
from mloop.predictions.files import FIXED, read_predictions
from mloop.predictions.log import predictions_folder
from mloop.review.platform import Reviewed
from mloop.security import audit_chain
from mloop.security.audit_chain import Event

MAX_SECONDS = 60.0  # a probe is a check, not a soak test
MAX_RPS = 5_000.0  # about what one Python client process can send; past it the client is measured
MAX_CONNECTIONS = 256  # keep-alive connections the client opens at most
ROWS = 200  # recent rows of the log used as bodies, in turn
PERMISSION = "predict"  # a probe is nothing but predictions, which the server authorizes the same way
ACTION = "review.probe"
_NOT_INPUTS = {*FIXED, "label", "labelled_at", "keys"}


class ProbeRefused(MloopError):
    """The probe's target or load is outside what a probe may do."""


@dataclass(frozen=True)
class ProbeResult:
    """What one probe measured. Latencies are of the answered (2xx) requests, in ms from when each was due."""

    endpoint: str
    url: str
    at: datetime
    target_rps: float
    seconds: float
    sent: int
    answered: int
    achieved_rps: float  # answered requests per second over the probe's span (first due to last answer)
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: Mapping[str, int] = field(default_factory=dict)  # by status code, or "timeout" / "connection"
    client_lag_ms: float = 0.0  # how late the client sent its latest request: a busy client shows here
    event: int | None = None  # the audit event that records it

    @property
    def error_share(self) -> float:
        return (self.sent - self.answered) / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"], out["errors"] = self.at.isoformat(), dict(self.errors)
        return out


def latest(events: Sequence[Event], endpoint: str) -> Event | None:
    """The newest ``review.probe`` event of ``endpoint`` among ``events`` (oldest first)."""
    mine = [e for e in events if e.action == ACTION and e.resource == f"endpoint:{endpoint}"]
    return mine[-1] if mine else None


class Probes(Service):
    """Probes of a project's endpoints, as its actor may run them."""

    def __init__(self, ctx: Context, platform: Reviewed) -> None:
        super().__init__(ctx)
        self._platform = platform

    def run(
        self,
        endpoint: str,
        *,
        url: str,
        rps: float,
        seconds: float,
        rows: Sequence[Mapping[str, Any]] | None = None,
        allow_remote: bool = False,
        timeout: float = 5.0,
        api_key: str | None = None,
    ) -> ProbeResult:
        """Send ``rps`` requests a second for ``seconds`` to ``url``'s ``/v1/endpoints/<endpoint>/predict``,
        measure, and record the result (``review.probe`` on ``endpoint:<endpoint>``; needs ``predict`` on
        it). ``api_key`` defaults to the settings' (``MLOOP_API_KEY``), sent as ``Authorization: Bearer``."""
        if api_key is None and self._ctx.settings.api_key is not None:
            api_key = self._ctx.settings.api_key.get_secret_value()
        base = target(url, allow_remote=allow_remote)
        _check_load(rps, seconds, timeout)
        self._authorize(PERMISSION, f"endpoint:{endpoint}")
        self._platform.deployments.get(endpoint)  # NotFound, with the names there are, before any load
        bodies = [dict(r) for r in rows] if rows is not None else self.recent_rows(endpoint)
        if not bodies:
            raise MloopError(
                f"No rows to send to {endpoint!r}: its prediction log has no answered request yet. "
                "Pass rows (one dict of inputs per row), or send a few predictions first."
            )
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        at = utcnow()
        samples, span, lag = asyncio.run(
            load(str(base), f"/v1/endpoints/{endpoint}/predict", bodies, rps, seconds, timeout, headers)
        )
        result = _summarize(endpoint, str(base), at, rps, seconds, samples, span, lag)
        payload = {k: v for k, v in result.to_dict().items() if k not in ("endpoint", "event")}
        with self._mutate(PERMISSION, f"endpoint:{endpoint}", action=ACTION, **payload):
            pass
        # the event just written, found without audit.read (which a probe does not need)
        newest = audit_chain.page_events(self._ctx.store, actions=[ACTION], resource=f"endpoint:{endpoint}",
                                         actor=self.actor.name, limit=1).events  # fmt: skip
        return dataclasses.replace(result, event=newest[0].seq if newest else None)

    def bodies(self, endpoint: str) -> list[dict[str, Any]]:
        """The rows a load of ``endpoint`` sends (:meth:`recent_rows`), after checking that the actor may
        predict on it and that it exists (:class:`~mloop.errors.NotFound` with the names there are)."""
        self._authorize(PERMISSION, f"endpoint:{endpoint}")
        self._platform.deployments.get(endpoint)
        return self.recent_rows(endpoint)

    def recent_rows(self, endpoint: str) -> list[dict[str, Any]]:
        """The inputs of the newest answered requests in the log (the last hour, else day, else month):
        the bodies a probe sends. The features the endpoint's models look up online are left out, as a
        caller leaves them out: a row carrying every input would skip the lookup and measure less than the
        endpoint does. Needs ``monitoring.read`` on the endpoint."""
        self._authorize("monitoring.read", f"endpoint:{endpoint}")
        now = utcnow()
        for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=30)):
            frame = read_predictions(predictions_folder(self._ctx.settings), endpoint, now - back, now,
                                     self._ctx.parquet, keys=True)  # fmt: skip
            if len(frame):
                frame = frame[frame["status"] == "ok"].tail(ROWS)
            if len(frame):
                looked_up = self._looked_up(endpoint)
                return [{k: v for k, v in row.items() if k not in looked_up} for row in _inputs(frame)]
        return []

    def _looked_up(self, endpoint: str) -> set[str]:
        """The names of the features the endpoint's deployed versions look up (their ``lineage.features``)."""
        names: set[str] = set()
        try:
            deployment = self._platform.deployments.get(endpoint)
        except MloopError:  # not deployed now: its logged rows are all there is
            return names
        for version in deployment.versions:
            try:
                lineage = self._platform.models.get(deployment.model, version).lineage
                for ref in lineage.get("features", []):
                    view, _, feature = str(ref).partition(":")
                    if feature and feature != "*":
                        names.add(feature)
                    else:
                        names.update(self._platform.features.get(view).feature_names)
            except MloopError:  # a version or view gone since: keep what the log holds
                continue
        return names


def target(url: str, *, allow_remote: bool = False) -> httpx.URL:
    """``url`` as the probe's target, or :class:`ProbeRefused` when it is not a loopback HTTP(S) address
    (and ``allow_remote`` is off). The name is not resolved: only ``localhost`` and loopback IPs pass."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ProbeRefused(
            f"Cannot probe {url!r}: not a URL ({exc}); give one like http://127.0.0.1:8000."
        ) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProbeRefused(
            f"Cannot probe {url!r}: give an http:// or https:// URL with a host, like http://127.0.0.1:8000."
        )
    if not allow_remote and not loopback(parsed.host):
        raise ProbeRefused(
            f"Refusing to probe {url!r}: {parsed.host} is not this machine (127.0.0.0/8, ::1, localhost). A probe "
            "sends real load; point it at a server you own with `mloop review --probe ENDPOINT --url URL`."
        )
    return parsed.copy_with(path="/", query=None, fragment=None)


def loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback IP (a name is not resolved)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: resolving it could point anywhere
        return False


def _check_load(rps: float, seconds: float, timeout: float) -> None:
    if not (isinstance(rps, int | float) and 0 < rps <= MAX_RPS):
        raise ProbeRefused(f"rps must be in (0, {MAX_RPS:.0f}], got {rps!r}.")
    if not (isinstance(seconds, int | float) and 0 < seconds <= MAX_SECONDS):
        raise ProbeRefused(f"seconds must be in (0, {MAX_SECONDS:.0f}], got {seconds!r}.")
    if not (isinstance(timeout, int | float) and 0 < timeout <= MAX_SECONDS):
        raise ProbeRefused(f"timeout must be in (0, {MAX_SECONDS:.0f}] seconds, got {timeout!r}.")


def _inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each logged row as the request row that was sent: its inputs (``input.x`` back to ``x``; missing
    values as null) and the fields the model did not take (its join keys, the ``keys`` column if read)."""
    columns = [str(c) for c in frame.columns if c not in _NOT_INPUTS]
    named = [c.removeprefix("input.") for c in columns]
    keys = frame["keys"] if "keys" in frame.columns else [None] * len(frame)
    return [
        {**dict(zip(named, map(_plain, values), strict=True)), **(extra or {})}
        for values, extra in zip(frame[columns].itertuples(index=False), keys, strict=True)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class Sample:
    """One request of an open-loop load: its outcome, its latency (from when it was due) and when it ended."""

    outcome: str  # "200", "503", "timeout", "connection" (or what the caller's ``classify`` says)
    latency_s: float
    done: float  # loop time it finished (``time.monotonic()``: asyncio's clock)
    request_id: str | None = None  # the answer's, when the caller's ``classify`` reads it

    @property
    def due(self) -> float:
        return self.done - self.latency_s


Classify = Callable[[httpx.Response], tuple[str, str | None]]


def _status(answer: httpx.Response) -> tuple[str, str | None]:
    return str(answer.status_code), None


async def load(url: str, path: str, bodies: Sequence[dict[str, Any]], rps: float, seconds: float,
               timeout: float, headers: dict[str, str], *, classify: Classify = _status,
               on_sample: Callable[[Sample], None] | None = None,
               stop: Callable[[], bool] | None = None) -> tuple[list[Sample], float, float]:  # fmt: skip
    """Send ``ceil(rps * seconds)`` requests on schedule (fewer when ``stop()`` turns true, checked before
    each send); their samples, the span (first due to last answer, seconds) and the client's worst lateness
    in sending (seconds). ``classify`` turns an HTTP answer into (outcome, request id); ``on_sample`` sees
    each sample as its request ends (on the event loop: keep it short)."""
    loop = asyncio.get_running_loop()
    total = max(1, math.ceil(rps * seconds))
    limits = httpx.Limits(
        max_connections=min(total, MAX_CONNECTIONS), max_keepalive_connections=MAX_CONNECTIONS
    )
    # trust_env off: no proxy from the environment stands between the probe and the server named
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, trust_env=False) as client:

        async def one(i: int, due: float) -> Sample:
            request_id = None
            try:
                async with asyncio.timeout(timeout):
                    answer = await client.post(path, json={"rows": [bodies[i % len(bodies)]]})
                outcome, request_id = classify(answer)
            except TimeoutError:
                outcome = "timeout"
            except httpx.TransportError:
                outcome = "connection"
            now = loop.time()
            sample = Sample(outcome, now - due, now, request_id)
            if on_sample is not None:
                on_sample(sample)
            return sample

        start, lag, tasks = loop.time(), 0.0, []
        for i in range(total):
            if stop is not None and i and stop():
                break
            due = start + i / rps
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            lag = max(lag, loop.time() - due)
            tasks.append(asyncio.create_task(one(i, due)))
        samples = list(await asyncio.gather(*tasks))
    return samples, max(max(s.done for s in samples) - start, len(samples) / rps), lag


def _summarize(endpoint: str, url: str, at: datetime, rps: float, seconds: float, samples: list[Sample],
               span: float, lag: float) -> ProbeResult:  # fmt: skip
    ok = np.array([s.latency_s for s in samples if s.outcome.startswith("2")], dtype=np.float64) * 1000.0
    errors = Counter(s.outcome for s in samples if not s.outcome.startswith("2"))

    def ms(q: float) -> float | None:
        return round(float(np.quantile(ok, q)), 3) if len(ok) else None

    return ProbeResult(
        endpoint, url, at, float(rps), float(seconds), len(samples), len(ok), round(len(ok) / span, 3),
        ms(0.5), ms(0.99), ms(1.0), dict(sorted(errors.items())), round(lag * 1000.0, 3),
    )  # fmt: skip
