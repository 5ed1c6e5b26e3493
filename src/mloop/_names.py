"""Whole-string checks of names and other identifiers.

``re.match(r"^[a-z]+$", "ok\n")`` matches: ``$`` also matches just before a trailing newline. So a
dataset named ``ok\n`` became a folder ``ok\n/``, and a user ``u_admin\n`` looked exactly like ``u_admin``
in every list and log line. Every check of a name goes through :func:`valid`, a full match.

>>> valid(re.compile(r"[a-z]+"), "ok\n")
False
"""

from __future__ import annotations

import re


def valid(pattern: re.Pattern[str], value: object) -> bool:
    """``value`` is a string that ``pattern`` matches from its first character to its last."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None
