"""A run in progress (:class:`Run`): the hot path of metric logging, and the validation of what is
logged. The service that starts, reads and searches runs is :mod:`mloop.training.tracking`."""

from __future__ import annotations

import atexit
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from datetime import datetime
from pathlib import Path
from time import time as _now
from types import TracebackType
from typing import Any, Protocol

from mloop._service import Context
from mloop.errors import MloopError
from mloop.store.schema import (
    RunRow,
)
from mloop.training import resources
from mloop.training.metric_log import AUTO, STEP_LIMIT, MetricBuffer

log = logging.getLogger("mloop.training")

MAX_KEY = 250
MAX_VALUE = 1000
MAX_NAME = 200
MAX_SEARCH = 100_000
# Letters, digits and _ - . / : and space. No ',' or ']': the metric batch encoding relies on it.
_KEY = re.compile(r"[A-Za-z0-9_\-./: ]+")


def check_key(kind: str, key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _KEY.fullmatch(key):
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        raise MloopError(
            f"The {kind} name {shown} is not valid: use 1 to {MAX_KEY} letters, digits, spaces "
            "and _ - . / : (for example 'val_auc' or 'loss/train')."
        )
    return key


def as_text(kind: str, key: str, value: Any) -> str:
    """A param or tag value as the text that is stored and searched: strings as they are, everything
    else as JSON (``31``, ``0.1``, ``true``, ``null``, ``[1, 2]``)."""
    text = value if isinstance(value, str) else json.dumps(_plain(value), sort_keys=True, default=str)
    if len(text) > MAX_VALUE:
        raise MloopError(
            f"The {kind} {key!r} is {len(text):,} characters long; at most {MAX_VALUE:,} fit. "
            f"Log a shorter value, or log the full value as an artifact (run.log_artifact)."
        )
    return text


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and the like turned into plain Python (for JSON)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def _metric_value(key: str, value: Any) -> float:
    if not isinstance(value, str | bytes) and value is not None:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise MloopError(
        f"The value of metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}. "
        "Log numbers as metrics; record text with run.set_tag."
    )


def _metric_step(key: str, step: Any) -> int:
    try:
        number = step.__index__()  # int, numpy integers; not floats
    except (AttributeError, TypeError):
        number = None
    if number is None or isinstance(step, bool) or not -STEP_LIMIT <= number <= STEP_LIMIT:
        raise MloopError(
            f"The step of metric {key!r} must be a whole number within ±2**53, got {step!r:.60}. "
            "Pass step=epoch (an int), or leave it out to count steps per metric from 0."
        )
    return int(number)


class RunWriter(Protocol):
    """What a :class:`Run` asks of the service that started it (``project.runs``): each write is an
    audited mutation there."""

    def write_params(self, run: Run, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, run: Run | str, tags: Mapping[str, Any]) -> None: ...

    def write_artifact(self, run: Run, source: str | Path | bytes, name: str | None) -> str: ...

    def artifact(self, run_id: str, name: str) -> bytes: ...

    def finish(self, run: Run, status: str, error: BaseException | None) -> None:
        """Record the run's end (its timing, status and error) and forget it as open."""


class Run:
    """A run in progress. Use it as a context manager: it ends ``finished`` when the block ends, or
    ``failed`` (with the exception recorded) when the block raises, after writing every metric point.

    ``log_metric`` is thread-safe and cheap (an append to an in-memory buffer); the points reach the
    database within ``metrics_interval`` seconds, and all of them before the run counts as ended.
    """

    def __init__(
        self,
        service: RunWriter,
        ctx: Context,
        row: RunRow,
        experiment: str,
        *,
        metrics_interval: float = 0.5,
    ) -> None:
        self._service = service
        self._ctx = ctx
        self.id = row.id
        self.experiment = experiment
        self.name = row.name
        self.parent_id = row.parent_id
        self.started_at = row.started_at
        self.ended_at: datetime | None = None
        self.model_version: Any = None  # set by Run.register's callers (the training pipeline)
        self._status = "running"
        self._lock = threading.Lock()
        self._buffer = MetricBuffer(
            self._ctx.store, self.id, interval=metrics_interval, on_backlog=self._backlogged
        )
        # The hot path's state, bound once: key -> key id, and the buffer's extend.
        self._keys: dict[str, int] = {}
        self._key_ids: dict[str, int] = {}  # every key logged, also while _keys is cleared
        self._extend = self._buffer.points.extend
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._peak0 = resources.peak_rss_bytes()
        self._entered: list[Token[Run | None]] = []

    # ---- metrics: the hot path ------------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record ``value`` of metric ``key`` at ``step``. Without a step, each key numbers its own
        points logged without one: 0, 1, 2, ... NaN is kept (stored as NULL, read back as NaN); ±inf as
        they are.

        Thread-safe without a lock, and cheap: the point goes to an in-memory buffer."""
        if type(value) is not float:
            value = _metric_value(key, value)
        kid = self._keys.get(key)
        if kid is None:
            kid = self._first_point(key)
        at: float
        if step is None:
            at = AUTO
        elif type(step) is not int or not -STEP_LIMIT <= step <= STEP_LIMIT:
            at = _metric_step(key, step)
        else:
            at = step
        # One C call: atomic under the GIL, so points from several threads never interleave.
        self._extend((kid, at, _now(), value))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at once, all at ``step`` (or each at its own next step)."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def _first_point(self, key: str) -> int:
        # The checks the hot path skips after a key's first point; also where producers land while
        # the writer has fallen behind (see _backlogged).
        with self._lock:
            if self._status != "running":
                raise MloopError(
                    f"Run {self.id} is {self._status}; metrics can only be logged while it runs. "
                    "Start a new run (project.run(...)) for more."
                )
            if self._buffer.pending() > self._buffer.max_pending:
                self._buffer.flush()  # back-pressure: raises if the database is still unreachable
            kid = self._key_ids.get(key)
            if kid is None:
                check_key("metric", key)
                self._buffer.keys.append(key)
                kid = self._key_ids[key] = len(self._buffer.keys) - 1
                self._buffer.start()
            self._keys[key] = kid
            return kid

    def _backlogged(self) -> None:
        # Called by the writer thread when too many points wait: send producers through _first_point.
        self._keys = {}

    def flush(self) -> int:
        """Write the buffered metric points now; returns how many were written."""
        return self._buffer.flush()

    # ---- params, tags, artifacts ----------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params. A param is set once: logging it again with the same value is a no-op, with
        another value an error (start a new run to try other values)."""
        self._require_running("params")
        self._service.write_params(self, params)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (they may change, and may be set after the run ended)."""
        self._service.set_tags(self, tags)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(self, source: str | Path | bytes, name: str | None = None) -> str:
        """Store a file (``source`` a path; ``name`` defaults to its file name) or bytes (``name``
        required) in the artifact store, and record it on the run; returns its sha256 digest. Logging a
        name again points it at the new content."""
        self._require_running("artifacts")
        return self._service.write_artifact(self, source, name)

    def artifact(self, name: str) -> bytes:
        """The bytes of this run's artifact ``name``; :class:`~mloop.errors.NotFound` if it has none."""
        return self._service.artifact(self.id, name)

    def register(self, model: Any, name: str, **kwargs: Any) -> Any:
        """Register ``model`` as a new version of ``name`` in the model registry, linked to this run."""
        from mloop.registry.service import ModelRegistry

        self.flush()
        return ModelRegistry(self._ctx).register(name, model, run_id=self.id, **kwargs)

    # ---- lifecycle ------------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self._status

    def end(self, status: str = "finished", error: BaseException | None = None) -> None:
        """Write every buffered metric point, then mark the run ``finished`` or ``failed``. Ending an
        ended run does nothing."""
        if status not in ("finished", "failed"):
            raise MloopError(f"A run ends 'finished' or 'failed', not {status!r}.")
        with self._lock:
            if self._status != "running":
                return
            self._status = "ending"
            self._keys = {}  # the next log_metric takes the slow path, which refuses it
        try:
            self._buffer.close()
            self._service.finish(self, status, error)
        except BaseException:
            self._status = "running"
            raise
        self._status = status
        OPEN_RUNS.discard(self)

    def __enter__(self) -> Run:
        self._entered.append(_ACTIVE.set(self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._entered:
            # Entered in another thread or task: nothing of ours to undo here.
            with suppress(ValueError):
                _ACTIVE.reset(self._entered.pop())
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self.end("finished")
            return
        try:
            self.end("failed", exc)
        except Exception:
            # The body's exception is what the caller needs to see; this one goes to the log.
            log.exception("could not record the failure of run %s", self.id)

    def _require_running(self, what: str) -> None:
        if self._status != "running":
            raise MloopError(
                f"Run {self.id} is {self._status}; {what} can only be logged while it runs. "
                "Start a new run (project.run(...)) for more."
            )

    def timing(self) -> dict[str, Any]:
        """What the run used: wall and CPU seconds, the process's peak memory (and how much the run raised
        it), and GPU seconds (wall seconds times the CUDA devices that held memory) when torch used one."""
        wall = time.perf_counter() - self._wall0
        peak = resources.peak_rss_bytes()
        gpus = resources.cuda_devices()
        return {
            "wall_seconds": round(wall, 6),
            "cpu_seconds": round(time.process_time() - self._cpu0, 6),
            "peak_rss_bytes": peak,
            "rss_growth_bytes": max(0, peak - self._peak0),
            "gpu_devices": gpus,
            "gpu_seconds": round(wall * gpus, 6),
            "metric_points": self._buffer.written,
        }

    def __repr__(self) -> str:
        return (
            f"Run({self.id!r}, experiment={self.experiment!r}, name={self.name!r}, status={self._status!r})"
        )


class OpenRuns:
    """The runs a project opened and has not ended: flushed before its reads, ended when it closes."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs[run.id] = run

    def __contains__(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def discard(self, run: Run) -> None:
        with self._lock:
            self._runs.pop(run.id, None)

    def flush(self, ids: Sequence[str] | None = None) -> None:
        with self._lock:
            runs = (
                list(self._runs.values()) if ids is None else [self._runs[i] for i in ids if i in self._runs]
            )
        for run in runs:
            run.flush()

    def close(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                run.end("finished")
            except Exception:
                log.exception("could not end run %s when its project closed", run.id)


# Every run of this process not yet ended, for the exit hook.
OPEN_RUNS: set[Run] = set()

# The run whose ``with`` block the current thread (or task) is in: what a model fitted there logs to.
_ACTIVE: ContextVar[Run | None] = ContextVar("mloop_active_run", default=None)


def active_run() -> Run | None:
    """The innermost run whose ``with`` block this thread is in and that still runs, else None.

    >>> with project.run("digits") as run:          # doctest: +SKIP
    ...     assert active_run() is run
    """
    run = _ACTIVE.get()
    return run if run is not None and run.status == "running" else None


@contextmanager
def no_active_run() -> Iterator[None]:
    """No run is active inside the block (for fits that must not log to the enclosing run, such as
    the trials of a search, whose child runs are opened after they fit)."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@atexit.register
def _end_open_runs() -> None:
    """At exit, write the metric points of runs never ended and end them: ``failed`` if the process is
    dying of an uncaught exception, else ``finished``."""
    error = getattr(sys, "last_value", None)
    for run in list(OPEN_RUNS):
        try:
            run.end("failed" if error is not None else "finished", error)
        except Exception:
            log.exception("could not end run %s at exit", run.id)


def check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise MloopError(f"The {kind} name must be 1 to {MAX_NAME} characters, got {name!r:.80}.")


def checked_texts(kind: str, values: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise MloopError(
            f"{kind.capitalize()}s are a mapping of names to values, got {type(values).__name__}."
        )
    return {check_key(kind, key): as_text(kind, key, value) for key, value in values.items()}


def json_value(value: Any) -> Any:
    """``value`` if it survives JSON unchanged (NaN and infinities do not), else its text."""
    value = _plain(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return value if isinstance(value, str) else as_text("param", "", value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
