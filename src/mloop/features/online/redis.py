"""The scale-out online store: a Redis server shared by every serving replica (needs ``mloop[redis]``).

Key layout, under a prefix (default ``mloop:``) so several projects can share one server; ``{v}`` is the
view name with ``%`` and ``:`` percent-escaped, ``{k}`` the entity key:

- ``{prefix}{v}:r:{k}`` — string ``"<event_ts> <created_ts> <values as JSON>"``: the latest row. A Lua
  script compares timestamps server-side, so concurrent writers never move a key backwards.
- ``{prefix}{v}:e:{k}`` — sorted set of events scored by ``event_ts``; a member is
  ``<event_id> NUL <values as JSON>`` (JSON never holds a raw NUL), so a range read is one
  ``ZRANGEBYSCORE`` and ties come out ordered by event id, as in SQLite.
- ``{prefix}{v}:i:{k}`` — set of the event ids stored, which makes adding idempotent.
- ``{prefix}{v}:k`` — set of the entity keys that have events, so ``trim`` visits only those.

``read`` sends one ``MGET`` for all rows and one ``ZRANGEBYSCORE`` per event range in one pipeline: one
round trip. Times travel as Lua numbers and sorted-set scores (doubles): exact within ±2**53 µs of 1970,
that is for any date between the years 1685 and 2255. Single Redis server (not Redis Cluster).

Timeouts (an outage must not hang a request): ``read``, the serving path, waits at most ``timeout``
(setting ``online_timeout_ms``, 200 ms) to connect and again for the answer; writes (materialization,
push) connect within ``timeout`` and wait up to :data:`WRITE_TIMEOUT` for the answer, as a big batch
takes longer. A command that meets a dropped connection (Redis restarted: every pooled connection is
dead) reconnects and is sent once more at once, so reads recover at the first request after Redis
returns; a timeout is never retried. Either failure is :class:`~mloop.errors.OnlineStoreUnavailable`
(a 503, or the defaults of views that declare ``on_missing="default"``).

After a read fails, reads fail at once (no wait) until a background ``PING`` every :data:`PROBE_SECONDS`
gets an answer: a Redis that accepts connections but does not answer (paused, a black-holed host) would
otherwise hold every request ``timeout`` long on the server's event loop, stalling its other endpoints
too (found by ``mloop chaos run online-store-pause``). Reads resume within a probe of Redis answering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mloop._redis import redact, split_prefix
from mloop.errors import BackendNotInstalled, OnlineStoreUnavailable
from mloop.features.online.base import OnlineEvent, OnlineRead, OnlineRow, decode, encode, newest_rows

_WRITE_ROWS = """
local written = 0
for i, key in ipairs(KEYS) do
    local event_ts = tonumber(ARGV[3 * i - 2])
    local created_ts = tonumber(ARGV[3 * i - 1])
    local stored = redis.call('GET', key)
    local newer = true
    if stored then
        local e, c = string.match(stored, '^(%S+) (%S+) ')
        e, c = tonumber(e), tonumber(c)
        newer = event_ts > e or (event_ts == e and created_ts >= c)
    end
    if newer then
        redis.call('SET', key, ARGV[3 * i - 2] .. ' ' .. ARGV[3 * i - 1] .. ' ' .. ARGV[3 * i])
        written = written + 1
    end
end
return written
"""
# KEYS: events zset, ids set, the view's set of keys with events. ARGV: entity key, then (id, ts, member)*.
_ADD_EVENTS = """
local added = 0
for i = 2, #ARGV, 3 do
    if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
        redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i + 2])
        added = added + 1
    end
end
if added > 0 then redis.call('SADD', KEYS[3], ARGV[1]) end
return added
"""
# Same KEYS; ARGV: entity key, before. In Redis's Lua 5.1, %z is NUL: the id is everything before the last.
_TRIM = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for i = 1, #gone do
    redis.call('SREM', KEYS[2], string.match(gone[i], '^(.*)%z'))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[2])
    redis.call('SREM', KEYS[3], ARGV[1])
end
return #gone
"""
_ROWS_PER_CALL = 500  # rows per script call: keeps each call short, so the server stays responsive
_CALLS_PER_ROUND_TRIP = 40
DEFAULT_TIMEOUT = 0.2  # seconds: the default of the setting online_timeout_ms
PROBE_SECONDS = 0.25  # while reads fail fast, how often a background PING checks whether Redis answers
WRITE_TIMEOUT = 30.0  # seconds an answer to a write may take (a materialization batch of 20,000 rows)


class RedisOnlineStore:
    """Latest rows and events in Redis.

    >>> store = RedisOnlineStore("redis://127.0.0.1:6379/0")        # or ...?prefix=myproject:
    >>> store.write("customer_stats", [OnlineRow("42", event_ts=1, created_ts=1, values={"spend": 3.5})])
    1
    >>> store.read([("customer_stats", "42")]).rows[0].values
    {'spend': 3.5}
    """

    def __init__(self, url: str, *, prefix: str | None = None, timeout: float | None = None) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise BackendNotInstalled(
                f"online store {redact(url)!r} needs the redis client: pip install 'mloop[redis]', "
                "or use the default sqlite store (online_url: .mloop/online.db)."
            ) from None
        client_url, self.prefix = split_prefix(url, prefix)
        self.url = url
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self._unreachable = (redis.ConnectionError, redis.TimeoutError)
        self._failing: str | None = None  # why reads fail fast: set by a failed read, cleared by a probe
        self._probing = threading.Lock()

        def client(answer_within: float) -> redis.Redis:
            # One immediate retry, on a dropped connection only (redis-py's default: 10, with back-off).
            once = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            return redis.Redis.from_url(client_url, socket_connect_timeout=self.timeout,
                                        socket_timeout=answer_within, retry=once)  # fmt: skip

        self._reader, self._client = client(self.timeout), client(WRITE_TIMEOUT)
        try:
            with self._reaching():
                self._reader.ping()
        except OnlineStoreUnavailable:
            self.close()
            raise
        self._write_rows = self._client.register_script(_WRITE_ROWS)
        self._add_events = self._client.register_script(_ADD_EVENTS)
        self._trim = self._client.register_script(_TRIM)

    @classmethod
    def from_url(cls, url: str, *, timeout: float | None = None) -> RedisOnlineStore:
        return cls(url, timeout=timeout)

    def _base(self, view: str) -> str:
        return self.prefix + view.replace("%", "%25").replace(":", "%3A") + ":"

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Redis's connection errors and timeouts, as the error that names the store and the fix."""
        try:
            yield
        except self._unreachable as exc:
            raise OnlineStoreUnavailable(
                f"online store {redact(self.url)!r}: cannot reach Redis within {self.timeout * 1000:.0f} ms "
                f"({exc}). Start Redis or fix online_url (online_timeout_ms sets the wait); feature views "
                "with on_missing='default' answer with their defaults meanwhile."
            ) from None

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        with self._reaching():
            return self._write(view, rows)

    def _write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        base = self._base(view) + "r:"
        # Encode everything first: a value that cannot be stored refuses the batch before anything is sent.
        keys: list[str] = []
        args: list[Any] = []
        for row in newest_rows(rows):
            keys.append(base + row.key)
            args += (row.event_ts, row.created_ts, encode(row.values))
        written = 0
        per_trip = _ROWS_PER_CALL * _CALLS_PER_ROUND_TRIP
        for trip in range(0, len(keys), per_trip):
            pipe = self._client.pipeline(transaction=False)
            for start in range(trip, min(len(keys), trip + per_trip), _ROWS_PER_CALL):
                end = start + _ROWS_PER_CALL
                self._write_rows(keys=keys[start:end], args=args[3 * start : 3 * end], client=pipe)
            written += sum(pipe.execute())
        return written

    def add_events(self, view: str, events: Sequence[OnlineEvent]) -> int:
        with self._reaching():
            return self._add_events_now(view, events)

    def _add_events_now(self, view: str, events: Sequence[OnlineEvent]) -> int:
        if not events:
            return 0
        by_key: dict[str, list[Any]] = {}
        for event in events:
            args = by_key.setdefault(event.key, [event.key])
            args += (event.event_id, event.event_ts, f"{event.event_id}\0{encode(event.values)}")
        base = self._base(view)
        pipe = self._client.pipeline(transaction=False)
        for key, args in by_key.items():
            self._add_events(keys=[base + "e:" + key, base + "i:" + key, base + "k"], args=args, client=pipe)
        return sum(pipe.execute())

    def read(
        self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]] = ()
    ) -> OnlineRead:
        failing = self._failing
        if failing is not None:  # no wait on a request's path while Redis is known not to answer
            self._probe()
            raise OnlineStoreUnavailable(failing)
        try:
            with self._reaching():
                return self._read(rows, events)
        except OnlineStoreUnavailable as exc:
            self._failing = str(exc)
            raise

    def _probe(self) -> None:
        """One background PING at a time, at most every :data:`PROBE_SECONDS`; an answer ends fail-fast."""
        if not self._probing.acquire(blocking=False):
            return

        def ping() -> None:
            try:
                time.sleep(PROBE_SECONDS)
                self._reader.ping()
                self._failing = None
            except self._unreachable:
                pass
            finally:
                self._probing.release()

        threading.Thread(target=ping, name="mloop-online-probe", daemon=True).start()

    def _read(self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]]) -> OnlineRead:
        row_keys = [self._base(view) + "r:" + key for view, key in rows]
        if not events:  # the serving hot path: one command
            found = self._reader.execute_command("MGET", *row_keys) if row_keys else []  # type: ignore[no-untyped-call]
            return OnlineRead(rows=[_row(key, raw) for (_, key), raw in zip(rows, found, strict=True)])
        pipe = self._reader.pipeline(transaction=False)
        if row_keys:
            pipe.execute_command("MGET", *row_keys)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        for view, key, since in events:
            pipe.execute_command(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                "ZRANGEBYSCORE", self._base(view) + "e:" + key, f"({since}", "+inf", "WITHSCORES"
            )
        answers = pipe.execute()
        found = answers.pop(0) if row_keys else []
        return OnlineRead(
            rows=[_row(key, raw) for (_, key), raw in zip(rows, found, strict=True)],
            events=[_events(key, flat) for (_, key, _), flat in zip(events, answers, strict=True)],
        )

    def trim(self, view: str, before: int) -> int:
        base = self._base(view)
        trimmed = 0
        cursor: int | None = None
        while cursor != 0:
            cursor, keys = self._client.sscan(base + "k", cursor or 0, count=500)
            if keys:
                pipe = self._client.pipeline(transaction=False)
                for raw in keys:
                    key = raw.decode() if isinstance(raw, bytes) else raw  # bytes: no decode_responses
                    self._trim(
                        keys=[base + "e:" + key, base + "i:" + key, base + "k"],
                        args=[key, before],
                        client=pipe,
                    )
                trimmed += sum(pipe.execute())
        return trimmed

    def drop(self, view: str) -> None:
        pattern = _glob_escape(self._base(view)) + "*"
        batch: list[bytes] = []
        for name in self._client.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch = []
        if batch:
            self._client.unlink(*batch)

    def delete(self, view: str, keys: Sequence[str]) -> int:
        base = self._base(view)
        unique = list(dict.fromkeys(keys))
        if not unique:
            return 0
        pipe = self._client.pipeline(transaction=True)  # MULTI: a key's row, events and ids go together
        for key in unique:
            pipe.delete(base + "r:" + key, base + "e:" + key, base + "i:" + key)
            pipe.srem(base + "k", key)
        answers = pipe.execute()
        return sum(1 for deleted in answers[::2] if deleted)

    def close(self) -> None:
        for client in (self._reader, self._client):
            client.close()
            client.connection_pool.disconnect()

    def __repr__(self) -> str:
        return f"RedisOnlineStore({redact(self.url)!r}, prefix={self.prefix!r})"


def _row(key: str, raw: bytes | None) -> OnlineRow | None:
    if raw is None:
        return None
    event_ts, created_ts, values = raw.split(b" ", 2)
    return OnlineRow(key, int(event_ts), int(created_ts), decode(values))


def _events(key: str, answer: list[Any]) -> list[OnlineEvent]:
    # RESP2 answers a flat [member, score, ...] list of bytes; RESP3 (and redis-py's parsing) [member, score]
    # pairs with float scores.
    if answer and isinstance(answer[0], list | tuple):
        pairs = answer
    else:
        pairs = list(zip(answer[::2], answer[1::2], strict=True))
    out = []
    for member, score in pairs:
        event_id, _, values = member.rpartition(b"\0")
        out.append(OnlineEvent(key, int(float(score)), event_id.decode(), decode(values)))
    return out


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
