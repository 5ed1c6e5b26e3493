"""Which version answers a request: weighted routes, sticky by a request field when the deployment names one.

A sticky value is hashed (BLAKE2b, 8 bytes) to a point in [0, 1) and the routes own consecutive slices of
that interval in the order the deployment lists them. The slices are cumulative and the order stable, so
when a canary grows from 5% to 25% every caller already on the canary stays on it: a customer does not
flip between versions as the rollout advances. Without a sticky value the point is random.

>>> router = TrafficRouter(deployment)        # doctest: +SKIP
>>> router.pick("customer-42")                # doctest: +SKIP
3
"""

from __future__ import annotations

import bisect
import hashlib
import random
from typing import Any

_SCALE = float(2**64)


def bucket(value: Any) -> float:
    """A stable point in [0, 1) for ``value`` (the same in every process and on every run)."""
    digest = hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class TrafficRouter:
    """Picks a route's version for each request of one deployment revision."""

    def __init__(self, deployment: Any) -> None:
        routes = [(int(r.version), float(r.weight)) for r in deployment.routes if r.weight > 0]
        self.versions = [version for version, _ in routes]
        total = sum(weight for _, weight in routes)
        edges, acc = [], 0.0
        for _, weight in routes:
            acc += weight / total
            edges.append(acc)
        edges[-1] = 1.0  # no gap at the top from rounding
        self._edges = edges
        self._single = self.versions[0] if len(self.versions) == 1 else None
        self.shadows: tuple[int, ...] = tuple(int(v) for v in deployment.shadow)

    def pick(self, sticky: Any = None) -> int:
        if self._single is not None:
            return self._single
        point = random.random() if sticky is None else bucket(sticky)
        return self.versions[min(bisect.bisect_right(self._edges, point), len(self.versions) - 1)]
