"""Metric points, buffered in memory and written in batches by a background thread.

The cost that matters is the training loop's, and with one GIL, Python run by the writer thread is
time taken from the loop too. So:

- Logging a point is one ``list.extend`` with four numbers (key id, step, time, value): a single C call,
  atomic under the GIL without a lock, leaving no container for the garbage collector to walk (a deque
  of tuples leaves one per point). A point without a step carries NaN; the writer numbers those per key
  in logging order, so the hot path keeps no counter.
- The writer takes the points with two C calls (copy the prefix, delete it; producers only append after
  it), makes one NumPy array of them and turns it into JSON text with Arrow's compute kernels, which run
  without the GIL (``json.dumps`` holds it, and a float's repr costs most of a microsecond). The database
  unpacks the batch itself (``json_each`` on SQLite, ``json_array_elements`` on PostgreSQL) in one
  statement, so the GIL is released once per batch. An ``executemany`` releases and retakes it per row,
  and a writer that must retake it behind a busy training loop waits out the 5 ms switch interval each
  time: a few hundred rows a second.
- The latest value of each metric (highest step, then newest, then last logged) is picked with NumPy and
  upserted as one row per metric.

Nothing is dropped: a batch that fails to write stays queued and is tried again. If more than
``max_pending`` points wait (the database is down or slower than the loop), ``on_backlog`` is called;
the run then makes its producers write the backlog themselves before logging more (back-pressure).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text

from mloop.store.base import MetadataStore

log = logging.getLogger("mloop.training")

FIELDS = 4  # key id, step (NaN: the key's next), unix time in seconds, value
STEP_LIMIT = 2**53  # steps travel as floats: every whole number up to here is exact
AUTO = float("nan")

# A point arrives as ["key", step, "YYYY-MM-DD HH:MM:SS.ffffff", value]: NaN as null, ±inf as ±9e999
# (SQLite's JSON reads 9e999 as infinity; PostgreSQL is told).
_SQLITE_POINTS = """
INSERT INTO run_metrics (run_id, key, step, ts, value)
SELECT :run_id, p.value ->> 0, p.value ->> 1, p.value ->> 2, p.value ->> 3 FROM json_each(:points) AS p
"""
_SQLITE_LATEST = """
INSERT INTO run_latest_metrics (run_id, key, step, value)
SELECT :run_id, p.value ->> 0, p.value ->> 1, p.value ->> 2 FROM json_each(:latest) AS p WHERE true
ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value
WHERE excluded.step >= run_latest_metrics.step
"""
_PG_VALUE = """CASE {v} WHEN '9e999' THEN CAST('Infinity' AS double precision)
  WHEN '-9e999' THEN CAST('-Infinity' AS double precision) ELSE CAST({v} AS double precision) END"""
_POSTGRES_POINTS = f"""
INSERT INTO run_metrics (run_id, key, step, ts, value)
SELECT :run_id, e.v ->> 0, CAST(e.v ->> 1 AS bigint), CAST(e.v ->> 2 AS timestamp),
       {_PG_VALUE.format(v="e.v ->> 3")}
FROM json_array_elements(CAST(:points AS json)) WITH ORDINALITY AS e(v, i) ORDER BY e.i
"""
_POSTGRES_LATEST = f"""
INSERT INTO run_latest_metrics (run_id, key, step, value)
SELECT :run_id, e.v ->> 0, CAST(e.v ->> 1 AS bigint), {_PG_VALUE.format(v="e.v ->> 2")}
FROM json_array_elements(CAST(:latest AS json)) AS e(v)
ON CONFLICT (run_id, key) DO UPDATE SET step = EXCLUDED.step, value = EXCLUDED.value
WHERE EXCLUDED.step >= run_latest_metrics.step
"""


def _number_text(value: float) -> str:
    if value != value:
        return "null"
    if value in (float("inf"), float("-inf")):
        return "9e999" if value > 0 else "-9e999"
    return repr(value)


def encode(table: np.ndarray, keys: list[str]) -> tuple[str, str]:
    """``table`` (rows of key id, step, time, value; steps assigned) as the JSON the inserts above read:
    every point, and the newest point of each key (highest step, then newest, then last logged)."""
    kid = table[:, 0].astype(np.intp)
    step = table[:, 1].astype(np.int64)
    micros = np.rint(table[:, 2] * 1e6).astype(np.int64)
    value = table[:, 3]
    # A batch spans a second or two: format each distinct second once, then append the microseconds.
    seconds, fraction = np.divmod(micros, 1_000_000)
    distinct, which = np.unique(seconds, return_inverse=True)
    stamps = pa.array([f',"{datetime.fromtimestamp(int(s), UTC):%Y-%m-%d %H:%M:%S}.' for s in distinct])
    # Keys are checked to hold no quote or backslash, so quoting them is all JSON needs.
    names = pa.array([f'["{k}",' for k in keys], pa.string())
    values = pa.array(value)
    texts = pc.cast(values, pa.string())
    if not np.isfinite(value).all():
        special = pc.if_else(pc.is_nan(values), "null", pc.if_else(pc.greater(values, 0), "9e999", "-9e999"))
        texts = pc.if_else(pc.is_finite(values), texts, special)
    rows = pc.binary_join_element_wise(
        pc.take(names, pa.array(kid)),
        pc.cast(pa.array(step), pa.string()),
        pc.take(stamps, pa.array(which.ravel())),
        pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 6, "0"),
        '",',
        texts,
        "]",
        "",  # the separator
    )
    listed = pa.ListArray.from_arrays(pa.array([0, len(rows)], pa.int32()), rows)
    points = "[" + pc.binary_join(listed, ",")[0].as_py() + "]"
    order = np.lexsort((np.arange(len(kid)), micros, step, kid))
    last = order[np.r_[kid[order][1:] != kid[order][:-1], True]]
    latest = ",".join(f'["{keys[kid[i]]}",{int(step[i])},{_number_text(float(value[i]))}]' for i in last)
    return points, f"[{latest}]"


def write_points(store: MetadataStore, run_id: str, table: np.ndarray, keys: list[str]) -> None:
    """Append the points of ``table`` to the run's history and update its latest values, in one
    transaction (a bookkeeping write: it does not queue behind mutations)."""
    points, latest = encode(table, keys)
    postgres = store.engine.dialect.name == "postgresql"
    with store.write(serialize=False) as session:
        params = {"run_id": run_id, "points": points, "latest": latest}
        session.execute(text(_POSTGRES_POINTS if postgres else _SQLITE_POINTS), params)
        session.execute(text(_POSTGRES_LATEST if postgres else _SQLITE_LATEST), params)


class MetricBuffer:
    """The points a run logged and has not written yet, and the thread that writes them.

    Producers call ``points.extend((key_id, step, time, value))`` with numbers only (checked before; a
    step of NaN means "the key's next"); ``keys[key_id]`` names the key.
    """

    def __init__(
        self,
        store: MetadataStore,
        run_id: str,
        *,
        interval: float = 0.5,
        max_pending: int = 5_000_000,
        on_backlog: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self.max_pending = max_pending
        self.on_backlog = on_backlog
        self.points: list[float] = []
        self.keys: list[str] = []
        self.written = 0
        self._next_step = np.zeros(0, np.int64)  # per key id: the step its next point without one gets
        self._failed = np.zeros((0, FIELDS))  # points (steps assigned) whose write failed
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (once; a run that logs no metric never starts one)."""
        with self._flush_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name=f"mloop-metrics-{self.run_id[:8]}", daemon=True
                )
                self._thread.start()

    def flush(self) -> int:
        """Write every point logged so far; returns how many were written. Raises if the write fails
        (the points stay queued)."""
        with self._flush_lock:
            live = self.points
            size = len(live)
            # Two C calls, each atomic under the GIL; producers only ever append after this prefix.
            taken = live[:size]
            del live[:size]
            table = self._number(np.fromiter(taken, np.float64, size).reshape(-1, FIELDS))
            del taken
            if len(self._failed):
                table = np.concatenate([self._failed, table])
            if not len(table):
                return 0
            try:
                write_points(self.store, self.run_id, table, list(self.keys))
            except BaseException:
                self._failed = table
                raise
            self._failed = np.zeros((0, FIELDS))
            self.written += len(table)
            return len(table)

    def _number(self, table: np.ndarray) -> np.ndarray:
        """Give the points logged without a step their key's next steps, in logging order."""
        auto = np.isnan(table[:, 1])
        if not auto.any():
            return table
        kid = table[auto, 0].astype(np.intp)
        if len(self._next_step) < len(self.keys):
            self._next_step = np.concatenate(
                [self._next_step, np.zeros(len(self.keys) - len(self._next_step), np.int64)]
            )
        order = np.argsort(kid, kind="stable")
        ranked = kid[order]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        rank = np.empty(len(kid), np.int64)
        rank[order] = np.arange(len(kid)) - np.repeat(starts, np.diff(np.r_[starts, len(kid)]))
        table[auto, 1] = self._next_step[kid] + rank
        self._next_step += np.bincount(kid, minlength=len(self._next_step))
        return table

    def pending(self) -> int:
        return len(self.points) // FIELDS + len(self._failed)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer thread, then write what is left (raising if that fails)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush()
        # A thread that was inside log_metric when the run began to end may append just after that
        # flush: give it the GIL once, then write what it added.
        time.sleep(0)
        if self.points:
            self.flush()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(min(30.0, self.interval * 2**failures))
            if self._stop.is_set():
                return  # close() writes the rest in its caller's thread, where an error can be raised
            try:
                self.flush()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning(
                    "could not write %d metric points of run %s (will retry): %s",
                    self.pending(),
                    self.run_id,
                    exc,
                )
            if self.pending() > self.max_pending and self.on_backlog is not None:
                self.on_backlog()
