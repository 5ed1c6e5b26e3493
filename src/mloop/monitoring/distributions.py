"""A version's prediction distribution against its reference profile's bins, for the report and the
dashboard: from the predictions read (:func:`from_frame`) or from the log's per-minute summaries
(:func:`from_summaries`, which decode no row twice across views). Only a numeric prediction has one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.crypto import ParquetFiles
from mloop.metrics.profile import bin_frequencies
from mloop.monitoring.performance import scores
from mloop.predictions import summary
from mloop.predictions.place import LogFolder

Reference = Callable[[str, int], "dict[str, Any] | None"]  # (model, version) -> its numeric reference


def numeric_reference(profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The prediction's part of a reference profile, when the prediction is numeric."""
    reference = (profile or {}).get("prediction")
    return dict(reference) if reference and reference.get("kind") == "numeric" else None


def from_frame(
    groups: Iterable[tuple[str, int, pd.DataFrame]], reference_of: Reference
) -> list[dict[str, Any]]:
    """Per ``(model, version, predictions)`` group: its distribution, when it has numeric predictions."""
    out = []
    for model, version, group in groups:
        reference = reference_of(model, version)
        values = scores(group["prediction"])
        if reference and np.isfinite(values).any():
            out.append(
                shown(
                    version, reference, bin_frequencies(values[np.isfinite(values)], list(reference["edges"]))
                )
            )
    return out


def from_summaries(folder: Path | LogFolder, endpoint: str, pairs: Iterable[tuple[str, int]], since: datetime,
                   until: datetime, parquet: ParquetFiles, reference_of: Reference) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`from_frame` of ``pairs`` (model, version) over ``[since, until)`` from the summaries."""
    references = {pair: r for pair in sorted(set(pairs)) if (r := reference_of(*pair))}
    edges = {pair: list(r["edges"]) for pair, r in references.items()}
    found = summary.prediction_histograms(folder, endpoint, since, until, parquet, edges)
    out = []
    for pair, reference in references.items():
        total = int(found[pair].sum())
        if total:
            out.append(shown(pair[1], reference, [int(c) / total for c in found[pair]]))
    return out


def shown(version: int, reference: Mapping[str, Any], current: list[float]) -> dict[str, Any]:
    """A version's distribution as the report draws it: open end edges at the reference's min and max."""
    edges, low, high = list(reference["edges"]), reference.get("min"), reference.get("max")
    drawn = [low if e is None and i == 0 else high if e is None else e for i, e in enumerate(edges)]
    return {"version": version, "edges": drawn, "reference": reference["frequencies"], "current": current}
