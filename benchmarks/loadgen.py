"""An HTTP/1.1 load generator for loopback benchmarks: standard library only (uvloop when installed).

Run as its own process, so the server under test does not share an interpreter (or a GIL) with it:

    python benchmarks/loadgen.py '{"url": "http://127.0.0.1:8700/v1/endpoints/e/predict",
        "bodies": [...], "mode": "open", "rate": 500, "seconds": 10, "connections": 64}'

prints one JSON object (``-`` instead of the JSON reads it from stdin). Requests are raw bytes written on keep-alive connections (no per-request client
objects), so the client costs a few microseconds per request and the server is what is measured.

- ``mode: "open"``: the connections are opened first (as a proxy in front keeps them), then requests are scheduled at ``rate`` per second, independent of the answers (an open
  system, as real traffic is). Requests are released on a 1 ms timer (the generator sleeps between
  ticks rather than spinning on a core the server shares), all those due at a tick together. Latency is
  measured from the release, not from when a free connection let the request go, so a server that stalls
  is charged for every request that queued behind the stall (no coordinated omission). The figures of a rate the server cannot keep up with are marked by
  ``behind_s``, how late the last request left. ``late_ms`` is the generator's own worst lateness (it was
  descheduled, or collected garbage) and ``late_10ms`` the requests it released over 10 ms late: such
  requests leave together, a burst the server did not cause.
- ``mode: "closed"``: ``connections`` clients each send the next request when the last one is answered,
  for ``seconds``: the maximum throughput at that concurrency, latency measured from the send.

Both report per status: counts, p50/p90/p99/p99.9/max latency in milliseconds and how many took over
10 ms; status 0 is a connection error or a timeout.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0
TICK = 0.001  # the open loop's timer: requests due within a tick leave together


class Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight: a bare protocol (no streams), so a request
    costs the client a few tens of microseconds and the generator keeps its schedule at thousands a
    second on one core."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._waiting: asyncio.Future[int] | None = None
        self._closing = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self.host, self.port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            self._fail(ValueError("a response without Content-Length"))
            return
        stop = head.find(b"\r\n", at)
        length = int(head[at + 15 : stop if stop >= 0 else len(head)])
        if len(self._buffer) < end + 4 + length:
            return
        status = int(self._buffer[9:12])
        self._buffer = self._buffer[end + 4 + length :]
        self._closing = b"connection: close" in head
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(status)

    def _fail(self, exc: Exception) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(exc)

    async def call(self, request: bytes) -> int:
        if self.transport is None:
            await self.connect()
        assert self.transport is not None
        self._waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        status = await self._waiting
        if self._closing:
            self.close()
        return status

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.transport, self._buffer, self._closing = None, b"", False


def requests(config: dict[str, Any]) -> tuple[str, int, list[bytes]]:
    url = urlsplit(config["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    headers = "".join(f"{k}: {v}\r\n" for k, v in config.get("headers", {}).items())
    out = []
    for body in config["bodies"]:
        data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        head = (f"POST {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"{headers}Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
        out.append(head.encode() + data)
    return host, port, out


async def one(connection: Connection, request: bytes) -> int:
    try:
        async with asyncio.timeout(TIMEOUT):
            return await connection.call(request)
    except (TimeoutError, OSError, ValueError):
        connection.close()
        return 0


async def open_loop(config: dict[str, Any]) -> dict[str, Any]:
    host, port, payloads = requests(config)
    rate, seconds = float(config["rate"]), float(config["seconds"])
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    connections = [Connection(host, port) for _ in range(int(config.get("connections", 64)))]
    await asyncio.gather(
        *(c.connect() for c in connections)
    )  # open before the clock starts, as a proxy's are
    for connection in connections:
        pool.put_nowait(connection)
    results: list[tuple[float, float, int]] = []  # (from scheduled, from sent, status)
    asyncio.get_running_loop()

    async def fire(i: int, scheduled: float) -> None:
        connection = await pool.get()
        sent = time.perf_counter()
        status = await one(connection, payloads[i % len(payloads)])
        done = time.perf_counter()
        pool.put_nowait(connection)
        results.append((done - scheduled, done - sent, status))

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    i = 0
    late, late_10ms = 0.0, 0  # how late the generator itself released requests: a burst it then sent
    while i < total:
        now = time.perf_counter()
        late = max(late, now - (start + i / rate))
        while i < total and start + i / rate <= now:  # everything due now leaves now
            late_10ms += now - (start + i / rate) > 0.01
            # Counted from when the generator released it (its scheduled time, or this tick when the
            # generator woke up late): a wait for a free connection is the server's, the tick is not.
            tasks.append(asyncio.create_task(fire(i, max(start + i / rate, now))))
            i += 1
        if i < total:  # sleep to the next due request, one tick at least: never spin on a core
            await asyncio.sleep(max(TICK, start + i / rate - time.perf_counter()))
    behind = time.perf_counter() - (start + (total - 1) / rate)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    report = summary(results, elapsed)
    report.update(rate=rate, behind_s=round(max(0.0, behind), 4), late_ms=round(late * 1000, 1),
                  late_10ms=late_10ms)  # fmt: skip
    return report


async def closed_loop(config: dict[str, Any]) -> dict[str, Any]:
    host, port, payloads = requests(config)
    seconds = float(config["seconds"])
    asyncio.get_running_loop()
    results: list[tuple[float, float, int]] = []
    start = time.perf_counter()
    stop = start + seconds

    async def client(k: int) -> None:
        connection, j = Connection(host, port), k
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status = await one(connection, payloads[j % len(payloads)])
            done = time.perf_counter()
            results.append((done - sent, done - sent, status))
            j += 7
        connection.close()

    await asyncio.gather(*(client(k) for k in range(int(config["connections"]))))
    report = summary(results, time.perf_counter() - start)
    report["connections"] = int(config["connections"])
    return report


def summary(results: list[tuple[float, float, int]], elapsed: float) -> dict[str, Any]:
    by_status: dict[str, dict[str, Any]] = {}
    for status in sorted({s for _, _, s in results}):
        scheduled = sorted(r[0] for r in results if r[2] == status)
        sent = sorted(r[1] for r in results if r[2] == status)
        by_status[str(status)] = {"count": len(scheduled), **percentiles(scheduled, ""),
                                  **percentiles(sent, "sent_")}  # fmt: skip
    ok = by_status.get("200", {}).get("count", 0)
    return {"requests": len(results), "ok": ok, "seconds": round(elapsed, 3),
            "rps": round(ok / elapsed, 1) if elapsed else 0.0, "status": by_status}  # fmt: skip


def percentiles(values: list[float], prefix: str) -> dict[str, float]:
    if not values:
        return {}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 3)

    return {f"{prefix}p50_ms": at(0.5), f"{prefix}p90_ms": at(0.9), f"{prefix}p99_ms": at(0.99),
            f"{prefix}p999_ms": at(0.999), f"{prefix}max_ms": round(values[-1] * 1000, 3),
            f"{prefix}over_10ms": len(values) - bisect.bisect_right(values, 0.010)}  # fmt: skip


def main() -> None:
    config = json.loads(sys.stdin.read() if sys.argv[1] == "-" else sys.argv[1])
    gc.collect()
    gc.freeze()
    gc.disable()  # a collection in the generator would stall its loop and be charged to the server
    run = open_loop if config.get("mode", "open") == "open" else closed_loop
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    began = time.perf_counter()
    report = runner(run(config))
    report["wall_s"] = round(time.perf_counter() - began, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
