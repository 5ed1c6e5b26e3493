"""The prediction log: every answered prediction, written before the answer leaves, compacted into Parquet.

``record(answer)`` encodes the request as one JSON line (orjson: about a microsecond) and appends it to
this writer's own segment file with one ``write`` (a few microseconds, into the page cache) before it
returns, so the caller sends its answer only once the line is in the operating system: a process that
crashes or is killed loses no answered prediction. Durability against power loss is bounded instead: a
background thread fsyncs the segment every ``flush_seconds`` (1 s, as Redis's ``appendfsync everysec``),
so a power cut or kernel panic can lose at most the last second of answers. Not more often: an fsync
makes the next appends to the same file wait for the disk (ext4 on a virtual disk here), and every 0.1 s
that put p99 at 80% load from 3 ms to 9 ms, with requests shed. Nothing else runs on the request path: that
thread also rotates a segment by size or age and has it compacted into Parquet partitioned by endpoint
and date by a child process (parsing holds a GIL for a second or more, which in the server's own process
would stall the event loop that answers requests); a segment is deleted only after its Parquet is
durable, and compacting it twice writes the same file. At least once: ``close()`` compacts; after a
crash the next writer to open the folder (any process; the writer locks make it safe) compacts the
segments of the dead writer, skipping and counting a torn last line. When a line cannot be written (a
full disk) it is counted (``mloop_prediction_log_dropped_total``) and warned about; a caller that must not
answer without the line (serving, ``required=True``) gets :class:`~mloop.errors.DiskFull` (a 503 naming
the folder and its setting) and the next record tries the disk again, so answers resume once there is room.

Schema choice: one Parquet schema for every endpoint and model version (:data:`files.SCHEMA`),
with the prediction and the row's inputs as JSON strings, so endpoints whose models take different inputs
share one dataset and a model change never breaks a file. :meth:`PredictionLog.read` flattens the inputs
into one column each and removes duplicates of at-least-once recovery (same request id and row).

>>> log = PredictionLog(predictions_folder(project.settings))                 # doctest: +SKIP
>>> log.record(answer)                                                         # doctest: +SKIP
>>> log.read("fraud", since=datetime(2026, 12, 1, tzinfo=UTC))                 # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.crypto import PLAIN, ParquetFiles
from mloop.errors import MloopError, StorageUnavailable
from mloop.predictions import files, metrics
from mloop.predictions.answer import Answer
from mloop.predictions.compactor import CLOSE_WAIT, Compactor
from mloop.predictions.place import LogFolder
from mloop.storage import open_data_storage, space

if TYPE_CHECKING:
    from mloop.config import Settings

log = logging.getLogger("mloop.predictions")

FOLDER = "_predictions"
RECENT = 100_000  # request ids remembered in memory, so feedback right after a prediction finds it


def predictions_folder(settings: Settings) -> Path | LogFolder:
    """``<data_url>/_predictions``: where the project's prediction log lives. With data_url on S3: the
    segments in this server's ``prediction_spool`` folder, the Parquet under ``<data_url>/_predictions``
    on S3 (:class:`~mloop.predictions.place.LogFolder`)."""
    if "://" not in settings.data_url:
        return Path(settings.data_url) / FOLDER
    storage = open_data_storage(settings.data_url, settings.scratch_dir)
    return LogFolder(Path(settings.prediction_spool), storage.join(storage.root, FOLDER), storage)


@dataclass
class _Segment:
    path: Path
    fd: int
    opened: float
    size: int = 0
    dirty: bool = False  # written since its last fsync


class PredictionLog:
    """The prediction log of one server process, writing under ``folder`` (shared with other processes)."""

    def __init__(
        self,
        folder: Path | str | LogFolder,
        *,
        flush_seconds: float = 1.0,
        segment_bytes: int = 8 << 20,
        segment_seconds: float = 60.0,
        recover_seconds: float = 60.0,
        compact_in_child: bool = True,
        parquet: ParquetFiles = PLAIN,
    ) -> None:
        self.folder = folder if isinstance(folder, LogFolder) else Path(folder)
        self.parquet = parquet  # the compacted Parquet parts and feedback: encrypted when it encrypts
        self.segments = LogFolder.of(self.folder).segments
        self.segments.mkdir(parents=True, exist_ok=True)
        self.flush_seconds = flush_seconds
        self.segment_bytes, self.segment_seconds = segment_bytes, segment_seconds
        self.recover_seconds = recover_seconds
        self.compact_in_child = compact_in_child
        self._compactor = Compactor(self.folder, parquet)
        self._sealed: list[Path] = []  # rotated segments not handed to the compactor yet
        self.writer = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.dropped = self.logged = self.skipped = 0  # predictions dropped, rows written, lines skipped
        self._rows: dict[str, int] = {}  # rows written per endpoint, not yet added to the Prometheus counter
        self._recent: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()  # the current segment and the counters: held for one write at most
        self._io = threading.Lock()  # fsync, rotation and close: one at a time, never on the request path
        self._closed = False
        self._warned = 0.0
        self._seq = itertools.count(1)  # next() is atomic: a record and the thread may both create
        self._segment: _Segment | None = None
        self._retired: list[_Segment] = []  # left after a failed write: sealed by the next rotation
        self._wake = threading.Event()
        fd = files.try_lock(self.segments / f"{self.writer}.lock")
        assert fd is not None, "a fresh writer id is never locked"
        self._lock_fd = fd
        self.skipped += files.recover(self.folder, own=self.writer, parquet=self.parquet)[2]
        self._recovered = time.monotonic()
        # Opened ahead, so that the request path never creates a file.
        self._next: _Segment | None = self._create()
        self._thread = threading.Thread(target=self._run, name="mloop-prediction-log", daemon=True)
        self._thread.start()

    def start_compactor(self) -> None:
        """Start the compactor process now (a server does before it answers), not at the first rotation."""
        if self.compact_in_child:
            with self._io:
                self._compactor.start()

    # ---- the request path -----------------------------------------------------------------------------

    def record(
        self,
        answer: Answer,
        *,
        status: str = "ok",
        attributions: list[Any] | None = None,
        required: bool = False,
    ) -> bool:
        """Write ``answer``'s line to the OS before returning; False when it was dropped (the disk refused
        the write, or the log is closed). Thread-safe; never waits on a disk flush. ``attributions`` (one
        object per row) makes it the ``explained`` line of an answer logged before: not a prediction.
        ``required``: the answer is not given without its line, so a line the disk refused raises
        :class:`~mloop.errors.DiskFull` (or :class:`~mloop.errors.MloopError` for another disk error)
        instead of returning False."""
        if attributions is not None:
            status = files.EXPLAINED
        try:
            line = files.encode(answer, time.time(), status, attributions)
        except Exception:  # an answer that cannot be encoded is a bug; count it, never fail the request
            log.exception("prediction log: cannot encode request %s", getattr(answer, "request_id", "?"))
            self._drop(getattr(answer, "endpoint", "?"))
            return False
        endpoint = answer.endpoint
        with self._lock:
            if self._closed:
                failed: OSError | None = OSError("the log is closed")
            else:
                failed = self._append(line)
            if failed is None and status != files.EXPLAINED:  # its answer's line counted the rows
                rows = len(answer.predictions)
                self._rows[endpoint] = self._rows.get(endpoint, 0) + rows
                self.logged += rows
                self._recent[answer.request_id] = (endpoint, rows)
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
        if failed is not None:
            self._drop(endpoint, failed)
            if required and not self._closed:
                raise self._refusal(failed)
            return False
        return True

    def _refusal(self, failed: OSError) -> MloopError:
        """Why an answer that needs its line is refused: the disk, named with its setting."""
        setting = "data_url" if isinstance(self.folder, Path) else "prediction_spool"
        if space.is_full(failed):
            return space.disk_full(failed, [(str(self.segments), setting)])
        return MloopError(
            f"the prediction log cannot be written in {self.segments} ({failed}); the answer is not given "
            f"without its log line: check the disk behind {setting}"
        )

    def _append(self, line: bytes) -> OSError | None:
        """Append ``line`` to the current segment (the lock is held); the error when it could not be."""
        segment = self._segment
        if segment is None:
            try:  # the one opened ahead, unless its opening failed (a full disk) and it is made now
                segment, self._next = self._next or self._create(), None
            except OSError as exc:
                return exc
            self._segment = segment
        view, written = memoryview(line), 0
        try:
            while written < len(line):
                written += os.write(segment.fd, view[written:])
        except OSError as exc:
            if written:  # a partial line: later lines go to a fresh segment; the torn one is skipped
                segment.size += written
                self._segment = None
                self._retired.append(segment)
            return exc
        segment.size += written
        segment.dirty = True
        return None

    def _drop(self, endpoint: str, why: object = "the log is closed") -> None:
        with self._lock:
            self.dropped += 1
        metrics.PREDLOG_DROPPED.labels(endpoint).inc()
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning(
                "prediction log: dropped a prediction of %s (%d so far): %s", endpoint, self.dropped, why
            )

    # ---- reading --------------------------------------------------------------------------------------

    def read(
        self, endpoint: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Logged rows with ``since <= ts < until`` (UTC); see
        :func:`~mloop.predictions.files.read_predictions` for the columns."""
        return files.read_predictions(self.folder, endpoint, since, until, self.parquet)

    def find(self, request_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """``{request_id: (endpoint, rows)}`` of the ids logged by any writer (or recently by this one)."""
        wanted = set(request_ids)
        with self._lock:
            found = {rid: self._recent[rid] for rid in wanted if rid in self._recent}
        if len(found) < len(wanted):
            found.update(files.find_requests(self.folder, wanted - found.keys(), self.parquet))
        return found

    def flush(self, timeout: float = 5.0) -> bool:
        """Fsync everything recorded so far (it is already readable: each line is written when recorded);
        False when the log is closed or the disk did not answer within ``timeout``."""
        if self._closed or not self._io.acquire(timeout=timeout):
            return False
        try:
            self._sync()
        finally:
            self._io.release()
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Compact this writer's segments and release its lock: later records are dropped. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error(
                "prediction log: the writer did not finish within %ss; the next writer compacts", timeout
            )

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the background thread: fsync, rotation, compaction, recovery ---------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            if self._closed:
                break
            try:
                with self._io:
                    self._step()
            except StorageUnavailable as exc:  # S3 down: the segments wait in the spool; retried next turn
                self._warn_store(exc)
            except Exception:  # a disk error must not kill the thread; the next turn tries again
                log.exception("prediction log: fsync or rotation failed")
        try:
            with self._io:
                self._finish()
        finally:
            os.close(self._lock_fd)

    def _step(self) -> None:
        self._sync()
        segment = self._segment
        now = time.monotonic()
        if self._retired or (segment is not None and segment.size and (
            segment.size >= self.segment_bytes or now - segment.opened >= self.segment_seconds
        )):  # fmt: skip
            self._rotate()
        if self._sealed:
            self._compact_sealed()
        if now - self._recovered >= self.recover_seconds:  # a sibling worker died: take its segments over
            self._recovered = now
            self.skipped += files.recover(self.folder, own=self.writer, parquet=self.parquet)[2]

    def _warn_store(self, exc: StorageUnavailable) -> None:
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning(
                "prediction log: segments stay in %s until the data store answers: %s", self.segments, exc
            )

    def _finish(self) -> None:
        self._sync()
        self._rotate()
        if self._next is not None:
            os.close(self._next.fd)
            self._next.path.unlink(missing_ok=True)
            self._next = None
        self._compactor.close(timeout=CLOSE_WAIT)
        try:
            for segment in sorted(self.segments.glob(f"{self.writer}-*.jsonl")):
                self.skipped += files.compact(self.folder, segment, self.parquet)[1]
        except Exception:  # the store is down (S3): the segments stay, for the next writer to compact
            log.exception("prediction log: could not compact at close; the next writer will")
            return
        (self.segments / f"{self.writer}.lock").unlink(missing_ok=True)

    def _sync(self) -> None:
        """Fsync the segments written since the last call, and push the row counts to Prometheus."""
        with self._lock:
            current, rows, self._rows = self._segment, self._rows, {}
            dirty = [s for s in (*self._retired, current) if s is not None and s.dirty]
            for segment in dirty:
                segment.dirty = False
        for segment in dirty:
            os.fsync(segment.fd)  # outside the lock: records go on meanwhile
        for endpoint, n in rows.items():
            metrics.PREDLOG_ROWS.labels(endpoint).inc(n)

    def _rotate(self) -> None:
        """Seal the current segment (the next record goes to the one opened ahead) and queue it for
        compaction; an empty one stays."""
        fresh = self._create() if not self._closed else None
        with self._lock:
            sealed = [*self._retired, self._segment] if self._segment is not None else self._retired
            self._segment, self._retired = None, []
            if self._next is None:
                self._next, fresh = fresh, None
        if fresh is not None:
            os.close(fresh.fd)
            fresh.path.unlink(missing_ok=True)
        for segment in sealed:
            os.fsync(segment.fd)  # no record can reach it any more: it is ours alone
            os.close(segment.fd)
            self._sealed.append(segment.path)

    def _compact_sealed(self) -> None:
        """Hand the sealed segments to the compactor process (:mod:`~mloop.predictions.compactor`), or
        compact them here when ``compact_in_child`` is off (tests)."""
        paths, self._sealed = self._sealed, []
        if self.compact_in_child:
            self._compactor.submit(paths)
            return
        for i, path in enumerate(paths):
            try:
                self.skipped += files.compact(self.folder, path, self.parquet)[1]
            except Exception:
                self._sealed = [*paths[i:], *self._sealed]  # kept for the next turn (S3 down, say)
                raise

    def _create(self) -> _Segment:
        path = self.segments / f"{self.writer}-{next(self._seq):06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        files.fsync_dir(self.segments)
        return _Segment(path, fd, time.monotonic())
