"""What a server process is serving: one immutable snapshot of every live endpoint, swapped atomically.

A background thread polls the deployments' change stamp (one cheap query) every ``poll`` seconds. On a
change it loads every model version the new revisions need *before* switching, reusing the versions it
holds already, and then replaces the snapshot with one assignment: a request in flight keeps the
snapshot it started with, the next one sees the new one, and none fails in between. A version that fails
to load leaves that endpoint on its previous revision (logged, retried on the next poll), so a broken
artifact never takes an endpoint down; :attr:`EndpointTable.refused` says which endpoint and why
(:mod:`mloop.serving.load_alerts` raises an alert from it).
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import NotFound, StorageUnavailable
from mloop.project import Project
from mloop.serving.predictor import NATIVE, Predictor
from mloop.serving.router import TrafficRouter

log = logging.getLogger("mloop.serving")

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class LiveEndpoint:
    """One endpoint's live revision, its router and a predictor for every version it routes or shadows."""

    deployment: Any
    router: TrafficRouter
    predictors: Mapping[int, Predictor]
    pii: frozenset[str] = frozenset()  # inputs the prediction log hashes (names tagged pii in the project)

    @property
    def name(self) -> str:
        return str(self.deployment.endpoint)

    @functools.cached_property
    def tensors(self) -> frozenset[str]:
        """The inputs that are tensors in any version served (they may be nested lists in a request)."""
        return frozenset().union(*(p.tensors for p in self.predictors.values()))

    @property
    def revision(self) -> int:
        return int(self.deployment.revision)


@dataclass(frozen=True)
class Refusal:
    """A revision this process does not serve: one of its versions does not load, or a guard refused it."""

    endpoint: str
    revision: int
    model: str
    version: int
    reason: str
    # A store it is read from could not be reached (S3 down): retried at every poll, served once it answers
    unreachable: bool = False


@dataclass(frozen=True)
class Snapshot:
    stamp: int
    endpoints: Mapping[str, LiveEndpoint] = field(default_factory=dict)


class EndpointTable:
    """The live endpoints of one project in this process; :meth:`get` is lock-free."""

    def __init__(
        self,
        project: Project,
        *,
        poll: float = POLL_SECONDS,
        loader: Callable[[Any, str, int, str], Predictor] = Predictor.load,
    ) -> None:
        self.project = project
        self.poll = poll
        self._load = loader
        self._snapshot = Snapshot(stamp=-1)
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures: dict[tuple[str, int], str] = {}  # (model, version) -> why it would not load
        self.refused: dict[str, Refusal] = {}  # endpoint -> the live revision it is not serving, and why
        # Checks a new revision must pass before it is swapped in (each raises with the reason), and work
        # to do after every poll, off the request path (pipelines refresh their vector indexes there).
        self.guards: list[Callable[[Any], None]] = []
        self.listeners: list[Callable[[], None]] = []

    # ---- reading (hot path) ---------------------------------------------------------------------------

    def get(self, endpoint: str) -> LiveEndpoint:
        live = self._snapshot.endpoints.get(endpoint)
        if live is None:
            names = ", ".join(sorted(self._snapshot.endpoints)) or "none"
            raise NotFound(
                f"No endpoint {endpoint!r} is deployed on this server; live endpoints: {names}. Deploy one "
                f"with project.deploy({endpoint!r}, MODEL, version=N) or `mloop deploy {endpoint} MODEL "
                "--version N`."
            )
        return live

    def endpoints(self) -> Mapping[str, LiveEndpoint]:
        return self._snapshot.endpoints

    # ---- refreshing -----------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Load what changed since the last refresh and swap it in; True if the snapshot changed."""
        with self._refresh_lock:
            stamp = int(self.project.deployments.stamp())
            current = self._snapshot
            if stamp == current.stamp and not self.failures:
                return False
            held = {
                (p.name, p.version, p.runtime): p
                for live in current.endpoints.values()
                for p in live.predictors.values()
            }
            endpoints: dict[str, LiveEndpoint] = {}
            failures: dict[tuple[str, int], str] = {}
            refused: dict[str, Refusal] = {}
            loaded = False
            pii = self._pii(current)
            for deployment in self.project.deployments.list():
                if not deployment.active:
                    continue
                predictors: dict[int, Predictor] = {}
                runtime = str(deployment.runtime)
                why = self._refused(deployment)
                if why is not None:
                    failures[(deployment.model, deployment.primary)] = why
                    refused[deployment.endpoint] = Refusal(deployment.endpoint, int(deployment.revision),
                                                           deployment.model, deployment.primary, why)  # fmt: skip
                    previous = current.endpoints.get(deployment.endpoint)
                    if previous is not None:
                        endpoints[deployment.endpoint] = previous
                    continue
                for version in deployment.versions:
                    key = (deployment.model, version)
                    predictor = held.get((*key, runtime))
                    if predictor is None:
                        try:
                            predictor = self._load(self.project, deployment.model, version, runtime)
                        except Exception as exc:
                            shown = "" if runtime == NATIVE else f" (runtime {runtime})"
                            failures[key] = f"{type(exc).__name__}: {exc}{shown}"
                            refused[deployment.endpoint] = Refusal(deployment.endpoint, int(deployment.revision),
                                                                   *key, failures[key],
                                                                   isinstance(exc, StorageUnavailable))  # fmt: skip
                            log.error("endpoint %s revision %s: %s version %s does not load%s: %s",
                                      deployment.endpoint, deployment.revision, *key, shown, exc)  # fmt: skip
                            break
                        held[(*key, runtime)] = predictor
                        loaded = True
                    predictors[version] = predictor
                else:
                    endpoints[deployment.endpoint] = LiveEndpoint(
                        deployment, TrafficRouter(deployment), predictors, pii
                    )
                    continue
                previous = current.endpoints.get(deployment.endpoint)
                if previous is not None:  # keep serving the revision that worked
                    endpoints[deployment.endpoint] = previous
            self.failures, self.refused = failures, refused
            self._snapshot = Snapshot(stamp, endpoints)  # the one atomic switch
            if loaded:
                gc.freeze()  # a new model's objects join the frozen heap: full collections never walk them
            return True

    def _refused(self, deployment: Any) -> str | None:
        """Why a guard refuses to serve ``deployment`` (logged; the endpoint keeps its previous revision)."""
        for guard in self.guards:
            try:
                guard(deployment)
            except Exception as exc:
                log.error(
                    "endpoint %s revision %s refused: %s", deployment.endpoint, deployment.revision, exc
                )
                return f"{type(exc).__name__}: {exc}"
        return None

    def _pii(self, current: Snapshot) -> frozenset[str]:
        """The PII input names, read once per snapshot; the previous ones if they cannot be read now."""
        try:
            return self.project.privacy.pii_inputs()
        except Exception:
            log.exception("could not read the PII tags; hashing the inputs tagged before")
            return frozenset().union(*(live.pii for live in current.endpoints.values()))

    def start(self) -> EndpointTable:
        """Refresh now, then every ``poll`` seconds in a daemon thread."""
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mloop-endpoints", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.refresh()
            except Exception:
                log.exception("could not refresh the live endpoints; serving the previous ones")
            for listener in self.listeners:
                try:
                    listener()
                except Exception:
                    log.exception("a refresh listener failed; it runs again on the next poll")


def settle_heap() -> None:
    """Collect once, then freeze what is alive (the libraries, the project, the loaded models) out of the
    garbage collector's reach: its full collections then walk only what requests allocated since. Before
    serving only: the collection itself is the stall it prevents (see docs/decisions.md, 2026-12-05)."""
    gc.collect()
    gc.freeze()
