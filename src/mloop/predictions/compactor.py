"""The compactor: one long-lived child process per prediction-log writer that turns sealed segments into
Parquet, so that the server's own process never parses them.

Why a process, and why one that lives: parsing a segment holds a GIL for as long as it takes (about a
second for 8 MB), which in the server's process is a second of event loop not answering; and starting a
fresh interpreter per segment cost more than the compaction itself (0.5 s of CPU importing pyarrow and
pandas, against 0.2 s compacting 8 MB). Measured on a 2-core machine at saturation, a compactor started
per segment at normal priority took a quarter of a core from the server and stretched its p99 at one
connection from 0.5 ms to 1.7 ms.

So the child starts once (when the server starts, or at the first sealed segment), lowers its own scheduling priority before it
imports anything heavy (``SCHED_IDLE``: it runs only on CPU time nothing else wants; ``nice 19`` where
that is refused), turns off the automatic garbage collector (a segment's records are tens of thousands of
small containers that each collection would walk again; it collects once after each segment instead) and
reads segment paths from its stdin, one per line. It exits at end of input: when the writer closes it,
or when the server dies. Compaction is idempotent (:func:`~mloop.predictions.files.compact`), so a
segment handed to a child that died is simply handed again, or compacted by the next writer.

While the data store cannot be reached (``data_url`` on S3, the server down) the child keeps the segment
in the spool and tries again (:func:`compact_retrying`: 0.5 s doubling to 5 s), so compaction resumes
within seconds of the store's return and no answered prediction is lost; exiting instead would leave the
segment until the next rotation, a minute later.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mloop.crypto import PLAIN, ParquetFiles
from mloop.crypto.child import to_line
from mloop.errors import StorageUnavailable
from mloop.predictions import files
from mloop.predictions.place import LogFolder

log = logging.getLogger("mloop.predictions")

CLOSE_WAIT = 2.0  # seconds the prediction log's writer gives the child at close before compacting itself
RETRY_FIRST, RETRY_MOST = 0.5, 5.0  # seconds between tries while the data store cannot be reached

_CHILD = """import os, sys
try:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
except (AttributeError, OSError):
    os.nice(19)
import gc
gc.disable()
from pathlib import Path
from mloop.crypto import ParquetFiles
from mloop.crypto.child import from_line
from mloop.predictions.compactor import compact_retrying
from mloop.predictions.place import LogFolder
from mloop.storage import open_data_storage, remote_files
folder = Path(sys.argv[1])
parquet = from_line(sys.stdin.readline())
if len(sys.argv) > 3:  # the Parquet parts on S3: spool folder, parts location, data_url
    storage = open_data_storage(sys.argv[3])
    folder = LogFolder(folder, sys.argv[2], storage)
    parquet = ParquetFiles(parquet.keyring, remote_files(storage))
gc.collect()
gc.freeze()
for line in sys.stdin:
    if line.strip():
        compact_retrying(folder, Path(line.strip()), parquet)
        gc.collect()
"""


class Compactor:
    """The compacting child of one writer; used from the writer's background thread only."""

    def __init__(self, folder: Path | LogFolder, parquet: ParquetFiles = PLAIN) -> None:
        self.folder = folder
        self.parquet = parquet
        self._process: subprocess.Popen[str] | None = None
        self._handed: list[Path] = []  # given to the child, not compacted yet (as far as we know)

    def start(self) -> None:
        """Start the child now rather than at the first sealed segment (a server does, before it answers:
        a child starting under load took CPU from the server for half a second)."""
        if self._process is None or self._process.poll() is not None:
            self.submit([])

    def submit(self, segments: list[Path]) -> None:
        """Hand ``segments`` to the child (started, or restarted if it died, with what it had left)."""
        self._handed = [p for p in self._handed if p.exists()]
        process = self._process
        if process is not None and process.poll() is not None:
            if process.returncode:
                log.warning("prediction log: the compactor exited with %s; its segments are handed to a "
                            "new one", process.returncode)  # fmt: skip
            process, segments = None, [*self._handed, *segments]
        if process is None:
            where = [str(self.folder)]
            if isinstance(self.folder, LogFolder):
                where = [str(self.folder.spool), self.folder.parts, self.folder.storage.url]
            process = self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, *where], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            assert process.stdin is not None
            # The first line: the data keys, through the pipe (never the command line or the environment).
            with contextlib.suppress(OSError):
                process.stdin.write(to_line(self.parquet))
        assert process.stdin is not None
        if not segments:
            return
        try:
            process.stdin.write("".join(f"{p}\n" for p in segments))
            process.stdin.flush()
        except (BrokenPipeError, OSError):  # it died meanwhile: the next call starts another
            log.warning("prediction log: the compactor is gone; its segments go to the next one")
        self._handed += [p for p in segments if p not in self._handed]

    def close(self, timeout: float = 60.0) -> None:
        """Let the child finish what it was handed and exit; a child still busy after ``timeout`` is
        killed and the caller compacts what remains (compaction is idempotent and each Parquet file is
        published whole, so a kill mid-segment leaves that segment to compact again, nothing torn). Left
        to finish on its own, a starved child at idle priority kept its memory (160 MB) for minutes. The prediction
        log's writer waits only :data:`CLOSE_WAIT` (it compacts the rest itself): the child runs at
        ``SCHED_IDLE``, so on a machine busy with other work it may get no CPU for a long time (``mloop
        serve`` took 24 s to stop beside two busy processes on 2 cores with a 60 s wait, 0.4 s alone), while
        a server that closes its log answers nothing any more, so compacting in its own process delays no one."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("prediction log: the compactor is slow; compacting the rest here")
            process.kill()
            process.wait()


def backoff(first: float = RETRY_FIRST, most: float = RETRY_MOST) -> Iterator[float]:
    """``first``, doubling up to ``most``, for ever: the waits between tries of a store that is down."""
    wait = first
    while True:
        yield wait
        wait = min(wait * 2, most)


def compact_retrying(
    folder: Path | LogFolder,
    segment: Path,
    parquet: ParquetFiles = PLAIN,
    waits: Iterable[float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """:func:`~mloop.predictions.files.compact` ``segment``, waiting out a data store that cannot be
    reached: the segment stays in the spool and, after each of ``waits`` (default :func:`backoff`, for as
    long as it takes), the store is probed with one cheap request; the segment is parsed and uploaded again
    only once it answers. Raises :class:`~mloop.errors.StorageUnavailable` when ``waits`` run out.

    >>> compact_retrying(log_folder, Path("spool/segments/w-000001.jsonl"))   # doctest: +SKIP
    (1200, 0)
    """
    place = LogFolder.of(folder)
    pending = iter(backoff() if waits is None else waits)
    failed_at: float | None = None
    while True:
        try:
            done = files.compact(folder, segment, parquet)
        except StorageUnavailable as exc:
            if failed_at is None:
                failed_at = time.monotonic()
                log.warning("prediction log: %s stays in the spool until the data store answers: %s",
                            segment.name, exc)  # fmt: skip
            _wait_for_store(place, pending, sleep)
            continue
        if failed_at is not None:
            log.warning("prediction log: the data store answers again; %s compacted after %.1f s",
                        segment.name, time.monotonic() - failed_at)  # fmt: skip
        return done


def _wait_for_store(place: LogFolder, waits: Iterator[float], sleep: Callable[[float], None]) -> None:
    """Sleep the next of ``waits``, then probe the store; again until it answers (StorageUnavailable once
    ``waits`` run out)."""
    while True:
        wait = next(waits, None)
        if wait is None:
            raise StorageUnavailable(
                f"the data store of the prediction log ({place.parts}) still cannot be reached; the segments "
                f"stay in {place.segments} and the next writer compacts them"
            )
        sleep(wait)
        try:
            place.storage.exists(place.join("_probe"))  # one HEAD request; its answer does not matter
        except StorageUnavailable:
            continue
        return
