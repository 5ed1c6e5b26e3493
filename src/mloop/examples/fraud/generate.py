"""A generator of synthetic card transactions with realistic fraud patterns.

Customers have a home country, a usual device and a typical spend; merchants a category and a country.
Fraud comes in three patterns seen in practice: card testing (bursts of tiny online payments), account
takeover (a new device and a foreign IP buying electronics or jewellery) and skimmed cards used far from
home. Labels arrive late, as chargebacks do (1 to 30 days after the payment).

>>> txns, labels = generate(10_000, seed=7)
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

CATEGORIES = ["grocery", "fuel", "restaurants", "online_retail", "electronics", "travel", "jewelry", "gaming"]
_CATEGORY_SCALE = np.array([0.6, 0.8, 0.7, 1.0, 3.0, 4.0, 5.0, 0.5])
COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "GB", "US", "PL"]
_COUNTRY_WEIGHTS = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.08, 0.07, 0.05])
CURRENCIES = {"GB": "GBP", "US": "USD"}
DEVICES = ["mobile", "web", "pos"]


def generate(
    n: int,
    *,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    days: int = 30,
    customers: int = 2_000,
    merchants: int = 300,
    fraud_rate: float = 0.02,
    seed: int = 0,
    batch: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` transactions over ``days`` from ``start``, and their (late) fraud labels. The customers and
    merchants follow from ``seed``; ``batch`` draws a different set of their payments (ids do not clash)."""
    rng = np.random.default_rng(seed)
    home = rng.choice(len(COUNTRIES), customers, p=_COUNTRY_WEIGHTS)
    spend = rng.lognormal(3.2, 0.6, customers)
    usual_device = rng.choice(3, customers, p=[0.55, 0.25, 0.20])
    m_category = rng.choice(len(CATEGORIES), merchants, p=[0.25, 0.1, 0.2, 0.2, 0.08, 0.05, 0.04, 0.08])
    m_country = np.where(
        rng.random(merchants) < 0.8, rng.choice(len(COUNTRIES), merchants, p=_COUNTRY_WEIGHTS), 6
    )

    if batch is not None:
        rng = np.random.default_rng([seed, batch])
    cust = rng.integers(0, customers, n)
    merch = rng.integers(0, merchants, n)
    # Card payments follow the day: few at night, a peak in the early evening.
    day = rng.integers(0, days, n)
    hour = np.clip(rng.normal(15, 4.5, n), 0, 23.99)
    ts = pd.Timestamp(start) + pd.to_timedelta(day * 86400 + hour * 3600, unit="s")
    amount = spend[cust] * _CATEGORY_SCALE[m_category[merch]] * rng.lognormal(0, 0.5, n)
    device = usual_device[cust].copy()
    ip_country = home[cust].copy()
    distance = rng.exponential(8.0, n)

    fraud = np.zeros(n, dtype=bool)
    pattern = rng.random(n)
    is_fraud = rng.random(n) < fraud_rate
    testing = is_fraud & (pattern < 0.35)
    takeover = is_fraud & (pattern >= 0.35) & (pattern < 0.75)
    skimmed = is_fraud & (pattern >= 0.75)
    online = np.flatnonzero(np.isin(m_category, [3, 7]))
    luxury = np.flatnonzero(np.isin(m_category, [4, 6]))
    merch[testing] = rng.choice(online, testing.sum())
    amount[testing] = rng.uniform(0.5, 3.0, testing.sum())
    merch[takeover] = rng.choice(luxury, takeover.sum())
    amount[takeover] *= rng.uniform(3, 8, takeover.sum())
    device[takeover] = 1
    ip_country[takeover] = rng.choice(len(COUNTRIES), takeover.sum())
    distance[skimmed] = rng.uniform(300, 6000, skimmed.sum())
    hour_night = skimmed & (rng.random(n) < 0.6)
    ts = ts.where(~hour_night, ts.normalize() + pd.to_timedelta(rng.uniform(1, 5, n), unit="h"))
    fraud |= testing | takeover | skimmed

    country = np.array(COUNTRIES)
    delay = pd.to_timedelta(rng.uniform(1, 30, n), unit="D")
    txns = pd.DataFrame(
        {
            "txn_id": np.arange(1, n + 1, dtype=np.int64)
            + (seed if batch is None else 1 + seed + batch) * 10_000_000,
            "ts": ts.floor("s"),
            "customer_id": cust.astype(np.int64) + 1,
            "merchant_id": merch.astype(np.int64) + 1,
            "amount": np.round(amount, 2),
            "currency": [CURRENCIES.get(c, "EUR") for c in country[m_country[merch]]],
            "merchant_category": np.array(CATEGORIES)[m_category[merch]],
            "card_country": country[home[cust]],
            "ip_country": country[ip_country],
            "device": np.array(DEVICES)[device],
            "distance_km": np.round(distance, 1),
            "is_fraud": fraud.astype(np.int8),
            "label_delay": delay,
        }
    ).sort_values("ts", kind="stable", ignore_index=True)
    labels = pd.DataFrame({"txn_id": txns["txn_id"], "label_ts": txns["ts"] + txns["label_delay"],
                           "is_fraud": txns["is_fraud"]})  # fmt: skip
    txns = txns.drop(columns=["is_fraud", "label_delay"])
    return txns, labels


def corrupt(txns: pd.DataFrame, *, rate: float = 0.04, seed: int = 1) -> list[list[str]]:
    """The transactions as CSV rows (strings), with a share of them broken the ways real feeds break."""
    rng = np.random.default_rng(seed)
    rows = txns.astype(object).map(_text).values.tolist()
    columns = list(txns.columns)
    col = {name: i for i, name in enumerate(columns)}
    breakers = [
        lambda r: r.__setitem__(col["amount"], f"-{r[col['amount']]}"),  # a refund sent as a payment
        lambda r: r.__setitem__(col["amount"], r[col["amount"]].replace(".", ",")),  # a decimal comma
        lambda r: r.__setitem__(col["amount"], ""),  # missing
        lambda r: r.__setitem__(col["currency"], "EURO"),  # not an ISO code
        lambda r: r.__setitem__(col["card_country"], "germany"),  # not an ISO country
        lambda r: r.__setitem__(col["ts"], "31/02/2026 10:00"),  # an impossible, local-format date
        lambda r: r.__setitem__(col["distance_km"], "-1.0"),  # a sensor glitch
        lambda r: r.__setitem__(col["device"], "smart-fridge"),  # an unknown channel
        lambda r: r.append("unexpected"),  # a field too many (an unquoted comma upstream)
    ]
    broken = rng.random(len(rows)) < rate
    for index in np.flatnonzero(broken):
        breakers[rng.integers(len(breakers))](rows[index])
    # Replayed messages: the same transaction id twice.
    for index in rng.choice(len(rows), max(1, int(len(rows) * rate / 4)), replace=False):
        rows.append(list(rows[index][: len(columns)]))
    return [columns, *rows]


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def write_sample(path: str, n: int = 3_000) -> None:
    """Regenerate the bundled sample: ``python -m mloop.examples.fraud.generate``."""
    import csv

    txns, _ = generate(n, days=7, customers=400, merchants=80, seed=42)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(corrupt(txns))


if __name__ == "__main__":
    from mloop.examples.fraud import SAMPLE_CSV

    write_sample(str(SAMPLE_CSV))
