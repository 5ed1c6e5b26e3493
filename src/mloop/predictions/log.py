"""The prediction log: every answered prediction, written off the request path, compacted into Parquet.

``record(answer)`` only puts the answer on a bounded queue (``put_nowait``); when the queue is full the
prediction is dropped, counted (``mloop_prediction_log_dropped_total``) and warned about, and the request
never waits. A background thread appends one JSON line per request to this writer's own segment file,
waking at most every ``gather_seconds`` (so the request path is not interrupted once per prediction),
writes each batch through to the OS at once (a killed process loses nothing written) and fsyncs at most
every ``flush_seconds``. A segment is rotated by size or age and compacted into Parquet partitioned by
endpoint and date, by a child process (so that parsing does not hold the server's GIL); it is deleted
only after its Parquet is durable, and compacting it twice writes the same file. At least once:
``close()`` drains, flushes and compacts; after a crash the next writer to open the folder (any process;
the writer locks make it safe) compacts the segments of the dead writer, skipping and counting a torn last line.

Schema choice: one Parquet schema for every endpoint and model version (:data:`files.SCHEMA`),
with the prediction and the row's inputs as JSON strings, so endpoints whose models take different inputs
share one dataset and a model change never breaks a file. :meth:`PredictionLog.read` flattens the inputs
into one column each and removes duplicates of at-least-once recovery (same request id and row).

>>> log = PredictionLog(predictions_folder(project.settings))                 # doctest: +SKIP
>>> log.record(answer)                                                         # doctest: +SKIP
>>> log.read("fraud", since=datetime(2026, 12, 1, tzinfo=UTC))                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.errors import ConfigError
from mloop.predictions import files, metrics
from mloop.predictions.answer import Answer

if TYPE_CHECKING:
    from mloop.config import Settings

log = logging.getLogger("mloop.predictions")

FOLDER = "_predictions"
QUEUE_SIZE = 10_000
RECENT = 100_000  # request ids remembered in memory, so feedback right after a prediction finds it


def predictions_folder(settings: Settings) -> Path:
    """``<data_url>/_predictions``: where the project's prediction log lives."""
    if "://" in settings.data_url:
        raise ConfigError(
            f"The prediction log needs a local folder, but data_url is {settings.data_url!r}. Set data_url "
            "to a folder (the default is .mloop/data), or mount the bucket as one."
        )
    return Path(settings.data_url) / FOLDER


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


@dataclass
class _Segment:
    path: Path
    fd: int
    opened: float
    size: int = 0


class PredictionLog:
    """The prediction log of one server process, writing under ``folder`` (shared with other processes)."""

    def __init__(
        self,
        folder: Path | str,
        *,
        queue_size: int = QUEUE_SIZE,
        flush_seconds: float = 0.1,
        gather_seconds: float = 0.02,
        batch_records: int = 1_000,
        segment_bytes: int = 8 << 20,
        segment_seconds: float = 60.0,
        recover_seconds: float = 60.0,
        compact_in_process: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.segments = self.folder / files.SEGMENTS
        self.segments.mkdir(parents=True, exist_ok=True)
        self.flush_seconds, self.batch_records = flush_seconds, batch_records
        self.gather_seconds = gather_seconds
        self.segment_bytes, self.segment_seconds = segment_bytes, segment_seconds
        self.recover_seconds = recover_seconds
        self.compact_in_process = compact_in_process
        self._compactor: subprocess.Popen[bytes] | None = None
        self._sealed: list[Path] = []  # rotated segments not handed to a compactor yet
        self.writer = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.dropped = self.logged = self.skipped = 0  # predictions dropped, rows written, lines skipped
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._recent: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self._warned = 0.0
        self._segment: _Segment | None = None
        self._seq = 0
        self._synced = time.monotonic()
        self._dirty = False
        fd = files.try_lock(self.segments / f"{self.writer}.lock")
        assert fd is not None, "a fresh writer id is never locked"
        self._lock_fd = fd
        self.skipped += files.recover(self.folder, own=self.writer)[2]
        self._recovered = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="mloop-prediction-log", daemon=True)
        self._thread.start()

    # ---- the request path -----------------------------------------------------------------------------

    def record(self, answer: Answer, *, status: str = "ok") -> bool:
        """Queue ``answer`` for the log without waiting; False when it was dropped (queue full, closed)."""
        try:
            if self._closed:
                raise queue.Full
            self._queue.put_nowait((answer, time.time(), status))
        except queue.Full:
            self._drop(answer.endpoint)
            return False
        with self._lock:
            self._recent[answer.request_id] = (answer.endpoint, len(answer.predictions))
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        return True

    def _drop(self, endpoint: str) -> None:
        with self._lock:
            self.dropped += 1
        metrics.PREDLOG_DROPPED.labels(endpoint).inc()
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning(
                "prediction log: dropped a prediction of %s (%d so far): the queue of %d is full because the "
                "disk is slower than the traffic, or the log is closed",
                endpoint, self.dropped, self._queue.maxsize,
            )  # fmt: skip

    # ---- reading --------------------------------------------------------------------------------------

    def read(
        self, endpoint: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Logged rows with ``since <= ts < until`` (UTC), this writer's queue flushed first; see
        :func:`~mloop.predictions.files.read_predictions` for the columns."""
        self.flush()
        return files.read_predictions(self.folder, endpoint, since, until)

    def find(self, request_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """``{request_id: (endpoint, rows)}`` of the ids logged by any writer (or queued by this one)."""
        wanted = set(request_ids)
        with self._lock:
            found = {rid: self._recent[rid] for rid in wanted if rid in self._recent}
        if len(found) < len(wanted):
            found.update(files.find_requests(self.folder, wanted - found.keys()))
        return found

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is written and fsynced; False on timeout or when closed."""
        if self._closed or not self._thread.is_alive():
            return False
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, compact this writer's segments and release its lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("prediction log: the writer did not drain its queue within %ss", timeout)
        self._thread.join(timeout)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                stop = self._step()
            except Exception:  # a disk error must not kill the writer; the next batch tries again
                log.exception("prediction log: writing a batch failed")
                time.sleep(self.flush_seconds)
        try:
            self._seal()
            if self._compactor is not None:
                try:
                    self._compactor.wait(60)
                except subprocess.TimeoutExpired:
                    log.warning("prediction log: the compactor process is slow; compacting here as well")
            for segment in sorted(self.segments.glob(f"{self.writer}-*.jsonl")):
                self.skipped += files.compact(self.folder, segment)[1]
            (self.segments / f"{self.writer}.lock").unlink(missing_ok=True)
        finally:
            os.close(self._lock_fd)

    def _step(self) -> bool:
        items: list[Any] = []
        try:
            items.append(self._queue.get(timeout=self.flush_seconds))
            if isinstance(items[0], tuple) and self.gather_seconds > 0:
                # Let a batch build up: one wake-up (and one GIL hand-over) per batch, not per prediction.
                time.sleep(self.gather_seconds)
            while len(items) < self.batch_records:
                items.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        metrics.PREDLOG_QUEUE.set(self._queue.qsize())
        entries = [item for item in items if isinstance(item, tuple)]
        if entries:
            self._write(entries)
        controls = [item for item in items if not isinstance(item, tuple)]
        now = time.monotonic()
        if self._dirty and (controls or now - self._synced >= self.flush_seconds):
            self._sync()
        for item in controls:
            if isinstance(item, _Flush):
                item.done.set()
        if _STOP in controls:
            return True
        segment = self._segment
        if segment is not None and (
            segment.size >= self.segment_bytes or now - segment.opened >= self.segment_seconds
        ):
            path = self._seal()
            if path is not None:
                self._sealed.append(path)
        if self._sealed:
            self._compact_sealed()
        if now - self._recovered >= self.recover_seconds:  # a sibling worker died: take its segments over
            self._recovered = now
            self.skipped += files.recover(self.folder, own=self.writer)[2]
        return False

    def _compact_sealed(self) -> None:
        """Compact the sealed segments: in a child process (one at a time) unless ``compact_in_process``
        is off. Parsing a minute of JSON lines holds the GIL for a second or more, which in the server's
        own process would stall the event loop that answers requests."""
        if not self.compact_in_process:
            for path in self._sealed:
                self.skipped += files.compact(self.folder, path)[1]
            self._sealed = []
            return
        if self._compactor is not None:
            if self._compactor.poll() is None:
                return  # the next one starts when this one is done
            if self._compactor.returncode:
                log.warning("prediction log: the compactor exited with %s; its segments are compacted at "
                            "shutdown or by the next writer", self._compactor.returncode)  # fmt: skip
        paths, self._sealed = self._sealed, []
        self._compactor = subprocess.Popen(
            [sys.executable, "-m", "mloop.predictions.files", str(self.folder), *map(str, paths)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def _write(self, entries: list[tuple[Answer, float, str]]) -> None:
        lines: list[bytes] = []
        rows: dict[str, int] = {}
        for answer, ts, status in entries:
            try:
                lines.append(files.encode(answer, ts, status))
            except Exception:  # an answer that cannot be written is a bug; count it, keep the rest
                log.exception("prediction log: cannot encode request %s", getattr(answer, "request_id", "?"))
                self._drop(getattr(answer, "endpoint", "?"))
                continue
            rows[answer.endpoint] = rows.get(answer.endpoint, 0) + len(answer.predictions)
        data = b"".join(lines)
        segment = self._segment or self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(segment.fd, view) :]
        segment.size += len(data)
        self._dirty = True
        for endpoint, n in rows.items():
            metrics.PREDLOG_ROWS.labels(endpoint).inc(n)
            self.logged += n

    def _open(self) -> _Segment:
        self._seq += 1
        path = self.segments / f"{self.writer}-{self._seq:06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        files.fsync_dir(self.segments)
        self._segment = _Segment(path, fd, time.monotonic())
        return self._segment

    def _sync(self) -> None:
        if self._segment is not None:
            os.fsync(self._segment.fd)
        self._synced, self._dirty = time.monotonic(), False

    def _seal(self) -> Path | None:
        segment, self._segment = self._segment, None
        if segment is None:
            return None
        os.fsync(segment.fd)
        os.close(segment.fd)
        self._dirty = False
        return segment.path
