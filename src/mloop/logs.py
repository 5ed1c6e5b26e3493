"""Structured logs: JSON lines when not on a terminal, Rich output on one.

Each record carries the actor and the request or run id that apply, taken from context variables, so a
log line can always be traced back to who did what::

    with log_context(actor="alice", request_id="r-1"):
        log.info("ingested", extra={"rows": 10})
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("mloop_log_context", default={})  # noqa: B039
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` (actor, request_id, run_id, ...) to every record logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _ContextFilter(logging.Filter):
    """Appends the context fields to console messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {**_context.get()}
        fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if fields:
            record.msg = f"{record.msg} " + " ".join(f"{k}={v}" for k, v in fields.items())
        return True


def configure(level: str = "INFO", fmt: str = "auto", stream: Any = None, *, quiet: bool = False) -> None:
    """Set up the ``mloop`` logger once per process; later calls replace the handler. ``quiet`` shows only
    errors on the stream, leaving the logger's level (what other handlers and alert sinks see) as is."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    logger = logging.getLogger("mloop")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    if use_json:
        handler: logging.Handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=stream), show_path=False, markup=False)
        handler.addFilter(_ContextFilter())
    if quiet:
        handler.setLevel(logging.ERROR)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
