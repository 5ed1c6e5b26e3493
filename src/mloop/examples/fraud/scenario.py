"""The demo's world: one population of customers and merchants, a history to train on, then live days
with a scheduled shift.

- **data shift** (``shifted=True``): prices rise by 60% and a third of in-store payments move to
  mobile, so the amounts and devices the model sees leave its training distribution;
- **concept shift** (same day): a new fraud pattern, money mules cashing out through gaming merchants on
  mobile from abroad at ordinary amounts, which the champion never saw;
- **a new market** (``swiss=True``): a fifth of the payments in Swiss francs, which the feed's schema does not
  accept yet (they are quarantined at ingestion, so no model trains on one).

Time is simulated: a day of payments is sent in seconds, each request asking for its features as of
the payment's own time (the predict API's ``at``), so the served time windows match the training
set's. Labels arrive 0.05 to 0.6 of a simulated day after the payment (compressed from weeks).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from mloop.examples.fraud.generate import generate

WORLD = {"customers": 800, "merchants": 150, "fraud_rate": 0.03, "seed": 42}


def history(days: int, per_day: int, start: datetime) -> pd.DataFrame:
    """``days`` of payments from ``start``, with their labels (``is_fraud``, ``label_ts``)."""
    txns, labels = generate(days * per_day, start=start, days=days, batch=0, **WORLD)  # type: ignore[arg-type]
    return _labelled(txns, labels, np.random.default_rng(0))


def live_day(
    index: int, start: datetime, per_day: int, *, shifted: bool, swiss: bool = False
) -> pd.DataFrame:
    """Live day ``index``: the payments of the day from ``start``, in time order."""
    txns, labels = generate(per_day, start=start, days=1, batch=index + 1, **WORLD)  # type: ignore[arg-type]
    rng = np.random.default_rng([7, index])
    frame = _labelled(txns, labels, rng)
    if shifted:
        frame = _shift(frame, rng)
    if swiss:
        frame.loc[rng.random(len(frame)) < 0.2, "currency"] = "CHF"
    return frame.sort_values("ts", kind="stable", ignore_index=True)


def _labelled(txns: pd.DataFrame, labels: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frame = txns.merge(labels[["txn_id", "is_fraud"]], on="txn_id")
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    frame["asof"] = frame["ts"] - pd.Timedelta(seconds=1)  # features as of just before the payment
    frame["label_ts"] = frame["ts"] + pd.to_timedelta(rng.uniform(0.05, 0.6, len(frame)), unit="D")
    return frame


def _shift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frame = frame.copy()
    frame["amount"] = (frame["amount"] * 1.6).round(2)
    moved = (frame["device"] == "pos") & (rng.random(len(frame)) < 0.33)
    frame.loc[moved, "device"] = "mobile"
    # Mules look like their customer (home IP, usual distance, ordinary amounts) but cash out at gaming
    # merchants on the web: the champion learned that gaming fraud is tiny card tests, so it misses them.
    mules = (rng.random(len(frame)) < 0.05) & (frame["is_fraud"] == 0)
    frame.loc[mules, "is_fraud"] = 1
    frame.loc[mules, "merchant_category"] = "gaming"
    frame.loc[mules, "device"] = "web"
    frame.loc[mules, "ip_country"] = frame.loc[mules, "card_country"]
    frame.loc[mules, "amount"] = rng.uniform(40, 120, mules.sum()).round(2)
    return frame


def arrived(frame: pd.DataFrame, now: datetime | pd.Timestamp) -> pd.DataFrame:
    """The rows of ``frame`` whose label has arrived by ``now``."""
    return frame[frame["label_ts"] <= pd.Timestamp(now)]
