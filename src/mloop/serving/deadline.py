"""Per-endpoint timeouts: the deployment option ``timeout_ms`` (default: ``serving.timeout_ms`` in
mloop.yaml, none) bounds how long a model call may take.

Without it a model is called on the event loop (the fastest path, see :mod:`mloop.serving.batching`), so a
model that stalls stalls every endpoint of that worker. With it the call runs on a small pool of threads
that belongs to the endpoint, and the request waits at most ``timeout_ms`` (queueing for a thread
included): past it the caller gets :class:`~mloop.errors.PredictionTimeout` (HTTP 504), which names the
endpoint and the setting, and the prediction log records the request with status ``timeout``.

Python cannot stop a thread, so a call that overran keeps its thread until the model returns; its answer
is dropped. The pool is what bounds the damage: a stuck model holds at most :data:`THREADS` threads of its
own endpoint, the event loop and the other endpoints never wait on it, and a request still queued for a
thread when its time is up is cancelled before it starts (it never adds work to the pile).

>>> deadlines = Deadlines()
>>> await deadlines.call("fraud", 250.0, predictor.predict, project, rows)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from mloop.errors import PredictionTimeout

THREADS = 4  # model calls in flight per endpoint with a timeout, per worker process
T = TypeVar("T")


class Deadlines:
    """The thread pools of the endpoints that have ``timeout_ms``, one per endpoint; one per process."""

    def __init__(self, threads: int = THREADS) -> None:
        self.threads = threads
        self._pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    async def call(
        self, endpoint: str, timeout_ms: float, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """``fn(*args, **kwargs)`` on ``endpoint``'s threads; its result, or :class:`PredictionTimeout`
        once ``timeout_ms`` has passed (the call itself is left to finish on its thread, unseen)."""
        future = asyncio.get_running_loop().run_in_executor(
            self._pool(endpoint), functools.partial(fn, *args, **kwargs)
        )
        try:
            return await asyncio.wait_for(future, timeout_ms / 1000.0)
        except TimeoutError:
            raise PredictionTimeout(
                f"Endpoint {endpoint!r} did not answer within its timeout_ms of {timeout_ms:g} ms: the model is "
                "slower than that now. Retry later; raise the limit (`mloop deploy ... --timeout-ms N`, or "
                "project.deploy(..., options={'timeout_ms': N})); or roll the endpoint back to a faster version."
            ) from None

    def _pool(self, endpoint: str) -> concurrent.futures.ThreadPoolExecutor:
        pool = self._pools.get(endpoint)
        if pool is None:
            with self._lock:
                pool = self._pools.get(endpoint)
                if pool is None:
                    pool = self._pools[endpoint] = concurrent.futures.ThreadPoolExecutor(
                        self.threads, thread_name_prefix=f"mloop-deadline-{endpoint}"
                    )
        return pool

    def close(self) -> None:
        """Stop the pools without waiting for calls that overran (their threads end when the model does)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
