"""Polling a condition of a running scenario until it holds: one helper for every chaos test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(
    what: str, check: Callable[[], Any], timeout: float, seen: Callable[[], object] | None = None
) -> Any:
    """``check()``'s first truthy answer, polled every 50 ms; an assertion naming ``what`` (and ``seen()``,
    what was seen instead) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        shown = f"; {seen()}" if seen is not None else ""
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}{shown}"
        time.sleep(0.05)
    return found
