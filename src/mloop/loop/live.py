"""What each model version did in production since a moment: requests, failures, latency and, once
labels arrive, its live ROC AUC; read from the prediction log and the feedback labels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mloop._time import CLOCK_SKEW
from mloop.crypto import PLAIN, ParquetFiles
from mloop.metrics import evaluation
from mloop.monitoring.performance import coerce_labels, scores
from mloop.predictions.feedback import read_feedback
from mloop.predictions.files import read_predictions
from mloop.predictions.place import LogFolder

FAILED = ("error", "timeout")  # the statuses of requests the caller got no answer for (a 5xx)


def step_window(since: datetime, revision: int | None) -> datetime:
    """From when to read the log for a loop step begun at ``since`` (controller's clock) that made
    ``revision``: ``since`` less :data:`~mloop._time.CLOCK_SKEW`, or ``since`` for a step recorded without
    its revision (by a version of mloop before it recorded one)."""
    # The log is stamped by each server's clock and the step's start by the controller's: a server 5
    # minutes behind logged every request of the step "before" it began. The step's own requests are told
    # by its revision (a number from the metadata store, no clock); this only has to reach back to them.
    return since if revision is None else since - CLOCK_SKEW


def version_stats(folder: Path | LogFolder, endpoint: str, since: datetime, until: datetime | None = None, *,
                  revision: int | None = None, min_labels: int = 200,
                  parquet: ParquetFiles = PLAIN) -> dict[int, dict[str, Any]]:  # fmt: skip
    """``{version: {"requests", "errors", "error_rate", "p99_ms", "labelled", "live_auc"}}`` for the
    requests answered (or failed) from ``since``; ``errors`` counts those past the endpoint's timeout_ms
    too (status ``timeout``): a canary that times out fails; ``live_auc`` is None below ``min_labels``
    labels or with one class only. With ``revision`` (a loop step's), the requests served by that
    deployment revision or a later one, logged from :func:`step_window` on: the step's own, whatever the
    serving hosts' clocks (within :data:`CLOCK_SKEW`)."""
    frame = read_predictions(folder, endpoint, step_window(since, revision), until, parquet)
    if revision is not None and not frame.empty:
        frame = frame[frame["revision"] >= revision]
    if frame.empty:
        return {}
    requests = frame[(frame["row"] == 0) & frame["status"].isin((*FAILED, "ok"))].drop_duplicates(
        "request_id"
    )
    answered = frame[frame["status"] == "ok"]
    labels = read_feedback(folder, endpoint, parquet=parquet).drop_duplicates(
        ["request_id", "row"], keep="last"
    )
    if len(labels):
        labels = labels[["request_id", "row", "label"]].astype({"row": answered["row"].dtype})
        answered = answered.merge(labels, on=["request_id", "row"], how="left")
    out: dict[int, dict[str, Any]] = {}
    for key, group in requests.groupby("version"):
        version = int(key)  # type: ignore[arg-type]  # pandas-stubs: a group key is any scalar
        ok = group[group["status"] == "ok"]
        errors = int(group["status"].isin(FAILED).sum())
        latency = ok["latency_s"].to_numpy() * 1000.0
        out[version] = {
            "requests": len(group), "errors": errors, "error_rate": errors / len(group),
            "p99_ms": float(np.percentile(latency, 99)) if len(latency) else None,
            "labelled": 0, "live_auc": None,
        }  # fmt: skip
    if "label" in answered:
        for key, group in answered.groupby("version"):
            version = int(key)  # type: ignore[arg-type]  # pandas-stubs: a group key is any scalar
            y, _, _ = coerce_labels(group["label"], "binary")
            s = scores(group["prediction"])
            keep = np.isfinite(y) & np.isfinite(s)
            entry = out.setdefault(version, {"requests": 0, "errors": 0, "error_rate": 0.0, "p99_ms": None})
            entry["labelled"] = int(keep.sum())
            if keep.sum() >= min_labels and len(np.unique(y[keep])) == 2:
                entry["live_auc"] = evaluation.classification_metrics(y[keep], s[keep])["roc_auc"]
    return out
