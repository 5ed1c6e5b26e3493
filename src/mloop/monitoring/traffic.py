"""Live traffic per version of an endpoint from the prediction log: requests, p99 latency and the share of
requests that failed, the figures a person watches during a canary.

A request counts once per version that saw it (its row 0): the answer callers got (``ok``), a server error
(``error``) or a shadow version's copy (``shadow``, reported as such: callers never saw it). Latency is of
the answered requests only; a failure's latency says nothing about the model's speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_STATUSES = ("ok", "error", "shadow")


def per_version(first: pd.DataFrame) -> list[dict[str, Any]]:
    """``[{version, requests, errors, error_share, p99_ms, shadow}]`` by version (none: an empty list),
    from each request's first row per version (``version``, ``status``, ``latency_s``: what
    :func:`~mloop.predictions.summary.request_rows` reads)."""
    if first.empty:
        return []
    first = first[first["status"].isin(_STATUSES)]
    out = []
    for _, part in first.groupby("version", sort=True):
        answered = part[part["status"] != "error"]
        errors = int((part["status"] == "error").sum())
        latency = answered["latency_s"].dropna().to_numpy(dtype=np.float64)
        out.append({
            "version": int(part["version"].iloc[0]),
            "requests": len(part), "errors": errors, "error_share": errors / len(part),
            "p99_ms": float(np.quantile(latency, 0.99) * 1000.0) if len(latency) else None,
            "shadow": bool(len(part)) and bool((part["status"] == "shadow").all()),
        })  # fmt: skip
    return out
