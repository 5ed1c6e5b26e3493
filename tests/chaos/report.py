"""Each chaos scenario reports its row of docs/reliability.md's table on one line (``CHAOS {...}``, JSON),
printed with ``pytest -s``; ``benchmarks/chaos.py`` collects the lines into the table."""

from __future__ import annotations

import json


def row(fault: str, *, sees: str, recovery_s: float | None, failed: dict[str, int], lost: int,
        **measured: object) -> None:  # fmt: skip
    """``failed``: requests that failed, by cause (``{"503": 3}``; empty when none did); ``lost``: answered
    predictions or accepted writes missing afterwards; ``measured``: the scenario's own figures."""
    print("\nCHAOS " + json.dumps({"fault": fault, "sees": sees, "recovery_s": recovery_s, "failed": failed,
                                  "lost": lost, **measured}, default=str))  # fmt: skip
