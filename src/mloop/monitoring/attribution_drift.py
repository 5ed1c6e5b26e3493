"""Attribution drift: the model's reasoning moved, even where no single input drifted enough to say so.

Per window and serving version, a seeded sample of the window's logged model inputs (at most
``attribution.rows``, default 500) is explained by that version, and each feature's **share** of the total
mean |attribution| (:mod:`mloop.explain.importance`) is compared with its share on the version's holdout,
which the training pipeline stored on the model card. The distance is the **total variation** between the
two share vectors, half the sum of the absolute share changes: the part of the model's reliance that moved
from some features to others, in [0, 1]. At or above ``attribution.threshold`` (default 0.1) the window is
flagged; a window of fewer than ``attribution.min_rows`` rows is not alerted on.

Why total variation, not the largest single move: a shift spread over many features (each a few points)
is a change of reasoning too, and the sum sees it; the largest moves are listed with the result anyway.
Why 0.1: on a random split of the holdout the distance of 500 explained rows is a few hundredths (the
shares of a sample of n rows wander by about 1/sqrt(n) of a share's spread), so 0.1 is quiet there.

A version whose card has no importance (registered outside a training pipeline, or a flavour with no
explainer), or whose logged inputs it cannot read (inputs masked as PII, a column missing), gets
``drifted=None`` and a note saying why; monitoring carries on.

>>> watch = AttributionWatch(lambda model, version: project.models.load(model, version))  # doctest: +SKIP
>>> watch.entry("fraud", 3, card["importance"], window_inputs, options)["attribution"]["distance"]  # doctest: +SKIP
0.23
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from mloop.config.monitoring import AttributionOptions, EndpointMonitoring
from mloop.errors import SchemaError
from mloop.explain.importance import measure, shift, total_variation
from mloop.monitoring.alerts import Alert

SEED = 0
SHOWN = 3  # moves listed per window


class AttributionWatch:
    """Attribution drift of windows, loading each version's model once (``load(model, version)``)."""

    def __init__(self, load: Callable[[str, int], Any]) -> None:
        self._load = load
        self._models: dict[tuple[str, int], Any] = {}

    def entry(self, model: str, version: int, importance: Mapping[str, Any] | None, inputs: pd.DataFrame,
              options: AttributionOptions) -> dict[str, Any]:  # fmt: skip
        """``{"attribution": ...}`` to add to the window's drift entry (``importance``: the version's card
        facts of that name); ``{}`` when switched off."""
        if not options.enabled:
            return {}
        reference = (importance or {}).get("shares")
        if not reference:
            why = (importance or {}).get("note") or "it was not registered by a training pipeline"
            return {"attribution": {"drifted": None, "note": f"v{version}'s card has no global importance "
                                                            f"({why}): attribution drift cannot be measured"}}  # fmt: skip
        key = (model, version)
        if key not in self._models:
            self._models[key] = self._load(model, version)
        try:
            found = measure(self._models[key].attributions, inputs, seed=SEED, rows=options.rows)
        except SchemaError as exc:  # logged inputs the model cannot read (masked PII, a renamed column)
            return {"attribution": {"drifted": None, "note": f"v{version}'s logged inputs cannot be explained: "
                                                            f"{exc}"}}  # fmt: skip
        if "shares" not in found:
            return {"attribution": {"drifted": None, "note": f"v{version}: {found.get('note')}"}}
        return {"attribution": compare(reference, found["shares"], found["rows"], options.threshold, version)}


def compare(reference: Mapping[str, float], current: Mapping[str, float], rows: int, threshold: float,
            version: int) -> dict[str, Any]:  # fmt: skip
    """The window's shares against the reference's: distance, verdict, and the largest moves."""
    distance = total_variation(reference, current)
    moves = [m.to_dict(f"v{version} in this window") for m in shift(reference, current)[:SHOWN]]
    return {"method": "total_variation", "distance": distance, "threshold": threshold,
            "drifted": distance >= threshold, "rows": rows, "shares": dict(current), "moved": moves,
            "note": ""}  # fmt: skip


def attribution_alerts(endpoint: str, entries: Iterable[Mapping[str, Any]], options: EndpointMonitoring,
                       now: datetime) -> list[Alert]:  # fmt: skip
    """One alert per endpoint (key ``<endpoint>/attribution``) while the newest window of a serving
    version (entries oldest first) has drifted attributions over at least ``min_rows`` rows; the worst
    version's numbers when several have."""
    newest: dict[int, Mapping[str, Any]] = {}
    for entry in entries:
        if entry.get("version"):
            newest[int(entry["version"])] = entry
    flagged = [(v, e) for v, e in newest.items() if (e.get("attribution") or {}).get("drifted")
               and (e.get("rows") or 0) >= options.attribution.min_rows]  # fmt: skip
    if not flagged:
        return []
    version, entry = max(flagged, key=lambda ve: ve[1]["attribution"]["distance"])
    found = entry["attribution"]
    moved = "; ".join(m["sentence"] for m in found.get("moved", []))
    return [Alert(
        key=f"{endpoint}/attribution", name="attribution_drift", severity=options.attribution.severity,
        endpoint=endpoint, started_at=now, value=float(found["distance"]), threshold=float(found["threshold"]),
        summary=f"{endpoint} v{version}: the model's reliance on its features moved by {found['distance']:.2f} "
                f"(total variation of the attribution shares, alert at {found['threshold']:g}) in the window "
                f"from {entry['start']}",
        description=moved,
        labels={"version": str(version), "window_start": str(entry["start"]),
                "features": ",".join(m["feature"] for m in found.get("moved", []))},
    )]  # fmt: skip
