"""SLIs: good and total events per minute, the input of :mod:`mloop.monitoring.slo`.

- **latency**: requests answered (status ``ok``) within the threshold, of all answered requests;
- **availability**: requests not failed with a server error, of all requests that reached the model
  (the prediction log records a failed request with status ``error``, one past its endpoint's
  ``timeout_ms`` with ``timeout``; shed 503s are counted by the
  ``mloop_shed_requests_total`` Prometheus counter instead);
- **freshness**: minutes in which a feature view's newest materialized data (its watermark) was at
  most ``max_age`` old and the endpoint's lookups reached the online store, of all minutes since its
  first materialization (a minute of an ``<endpoint>/online-store/down`` incident is bad: its requests
  were answered with the declared defaults or refused, not with the view's data);
- **quality**: one event per ``window`` (for example a day) with enough labels: good when the
  window's realised metric meets the objective.

A request with several rows is one event (its row 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mloop._time import as_utc

BUCKET = timedelta(minutes=1)
REACHED = ("ok", "error", "timeout")  # the statuses of requests that reached the model: answered or failed
_EMPTY = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "good": [], "total": []})


def _per_bucket(ts: pd.Series, good: np.ndarray) -> pd.DataFrame:
    if not len(ts):
        return _EMPTY.copy()
    frame = pd.DataFrame({"ts": pd.to_datetime(ts, utc=True).dt.floor(BUCKET), "good": good, "total": 1})
    # A bucket's events are stamped at its end, so a window ending now counts the bucket it has seen whole.
    out = frame.groupby("ts", as_index=False)[["good", "total"]].sum()
    out["ts"] = out["ts"] + BUCKET
    return out


def _requests(predictions: pd.DataFrame) -> pd.DataFrame:
    if predictions.empty:
        return predictions
    first = predictions[(predictions["row"] == 0) & predictions["status"].isin(REACHED)]
    return first.drop_duplicates("request_id")


def latency_events(predictions: pd.DataFrame, threshold_ms: float) -> pd.DataFrame:
    """Per minute: requests answered within ``threshold_ms`` (good) of those answered (total)."""
    requests = _requests(predictions)
    if requests.empty:
        return _EMPTY.copy()
    answered = requests[requests["status"] == "ok"]
    good = (answered["latency_s"].to_numpy() * 1000.0 <= threshold_ms).astype(np.int64)
    return _per_bucket(answered["ts"], good)


def availability_events(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per minute: requests answered (good) of those answered or failed with a server error (total)."""
    requests = _requests(predictions)
    if requests.empty:
        return _EMPTY.copy()
    return _per_bucket(requests["ts"], (requests["status"] == "ok").to_numpy().astype(np.int64))


def latency_from_counts(counts: pd.DataFrame | None, within: str) -> pd.DataFrame:
    """:func:`latency_events` from :func:`~mloop.predictions.summary.minute_counts` (column ``within``
    counted the answers within the threshold)."""
    if counts is None or counts.empty:
        return _EMPTY.copy()
    answered = counts[counts["status"] == "ok"]
    return _summed(answered["minute"], answered[within], answered["requests"])


def availability_from_counts(counts: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`availability_events` from :func:`~mloop.predictions.summary.minute_counts`."""
    if counts is None or counts.empty:
        return _EMPTY.copy()
    reached = counts[counts["status"].isin(REACHED)]
    good = reached["requests"].where(reached["status"] == "ok", 0)
    return _summed(reached["minute"], good, reached["requests"])


def _summed(minute: pd.Series, good: pd.Series, total: pd.Series) -> pd.DataFrame:
    if not len(minute):
        return _EMPTY.copy()
    frame = pd.DataFrame({"ts": minute.reset_index(drop=True), "good": good.to_numpy(np.int64),
                          "total": total.to_numpy(np.int64)})  # fmt: skip
    out = frame.groupby("ts", as_index=False)[["good", "total"]].sum()
    out["ts"] = out["ts"] + BUCKET  # stamped at the bucket's end, as _per_bucket
    return out


def freshness_events(
    watermarks: Sequence[tuple[datetime, datetime]], max_age: timedelta, until: datetime,
    outages: Sequence[tuple[datetime, datetime | None]] = (),
) -> pd.DataFrame:  # fmt: skip
    """Per minute from the first materialization to ``until``: 1 event, good when the newest data
    materialized by then (``(finished_at, end_ts)`` pairs) was at most ``max_age`` old and no outage of
    the online store (``(started, ended or None while ongoing)``) overlapped the minute."""
    if not watermarks:
        return _EMPTY.copy()
    done = np.array([pd.Timestamp(as_utc(f)).value for f, _ in watermarks], dtype=np.int64)
    ends = np.array([pd.Timestamp(as_utc(e)).value for _, e in watermarks], dtype=np.int64)
    order = np.argsort(done, kind="stable")
    done, ends = done[order], np.maximum.accumulate(ends[order])
    step = int(BUCKET.total_seconds() * 1e9)
    first = (done[0] // step + 1) * step
    last = pd.Timestamp(as_utc(until)).value // step * step
    if last < first:
        return _EMPTY.copy()
    ticks = np.arange(first, last + 1, step, dtype=np.int64)
    known = np.searchsorted(done, ticks, side="right") - 1  # the newest materialization finished by then
    age = ticks - ends[known]
    good = age <= int(max_age.total_seconds() * 1e9)
    for started, ended in outages:  # bad where the minute (tick - 1 min, tick] meets [started, ended]
        begin = pd.Timestamp(as_utc(started)).value
        end = pd.Timestamp(as_utc(ended)).value if ended is not None else np.iinfo(np.int64).max
        good &= ~((ticks >= begin) & (ticks - step < end))
    return pd.DataFrame({"ts": pd.to_datetime(ticks, utc=True), "good": good.astype(np.int64), "total": 1})


def quality_events(windows: Sequence[tuple[datetime, float | None]], low: float | None,
                   high: float | None) -> pd.DataFrame:  # fmt: skip
    """One event per window end with a metric: good when ``low <= value <= high`` (either bound optional)."""
    rows = [(end, value) for end, value in windows if value is not None]
    if not rows:
        return _EMPTY.copy()
    values = np.array([v for _, v in rows], dtype=np.float64)
    good = np.ones(len(values), dtype=bool)
    if low is not None:
        good &= values >= low
    if high is not None:
        good &= values <= high
    return pd.DataFrame({"ts": pd.to_datetime([as_utc(e) for e, _ in rows], utc=True),
                         "good": good.astype(np.int64), "total": 1})  # fmt: skip
