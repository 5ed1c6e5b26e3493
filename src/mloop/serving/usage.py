"""``mloop serve`` records its own use: process CPU seconds, resident memory and requests answered per
endpoint, every :data:`INTERVAL` seconds and at shutdown, in the file of
:mod:`mloop.predictions.usage` that the review prices (``mloop cost``).

A daemon thread does it, never the event loop: each sample is two ``/proc`` reads, one pass over the
request counter's few label sets and one small ``write`` (issue 18: bounded work, off the hot path). The
request counts come from the Prometheus counter the server keeps anyway, so a request costs nothing more.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

from mloop._time import utcnow
from mloop.predictions.usage import Sample, UsageFile
from mloop.serving.metrics import REQUESTS
from mloop.training import resources

INTERVAL = 60.0  # seconds between two samples
log = logging.getLogger("mloop.serving")


def requests_by_endpoint() -> dict[str, int]:
    """Requests this process answered since it started (every status), by endpoint."""
    counts: Counter[str] = Counter()
    for metric in REQUESTS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counts[sample.labels["endpoint"]] += int(sample.value)
    return dict(counts)


class UsageMeter:
    """Samples this process into ``folder`` until :meth:`close` (which writes the last sample)."""

    def __init__(self, folder: Path, interval: float = INTERVAL) -> None:
        self.started = utcnow()
        self._file = UsageFile(folder, self.started)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mloop-usage", daemon=True)

    @property
    def path(self) -> Path:
        return self._file.path

    def start(self) -> UsageMeter:
        self.sample()  # a first line at start: the process's baseline (its memory once loaded)
        self._thread.start()
        return self

    def sample(self) -> Sample:
        taken = Sample(self._file.process, self.started, utcnow(), resources.cpu_seconds(),
                       resources.rss_bytes(), resources.peak_rss_bytes(), requests_by_endpoint())  # fmt: skip
        self._file.append(taken)
        return taken

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception as exc:  # a full disk must not stop the server answering
                log.warning("could not record this server's resource use: %s", exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.sample()
        finally:
            self._file.close()
