"""The fraud case study's features and training pipelines, on the ingested ``transactions`` dataset.

- ``customer_stats``: window aggregations of each customer's payments (mean amount over 7 days, count
  over 1 h and 24 h, largest amount and distinct merchants over 24 h), materialized to the online store;
- ``payment``: request-time features of the payment being scored (its amount, against the customer's
  mean too, whether the IP is abroad, the merchant category, device and distance from home), named
  ``pay_*`` because a feature may not share its name with a request field;
- ``payment_currency``: the payment's currency, read only by the currency-aware model of the demo's
  v3 (:class:`mloop.examples.fraud.models.CurrencyAwareClassifier`).
"""

from __future__ import annotations

from typing import Any

import lightgbm
import pandas as pd

import mloop as ml
from mloop.examples.fraud.models import CurrencyAwareClassifier
from mloop.project import Project

customer = ml.Entity("customer", join_keys=["customer_id"])
REQUEST = ["amount", "merchant_category", "device", "distance_km", "ip_country", "card_country", "currency"]
FEATURES = ["customer_stats:*", "payment:*"]


def payment_features(frame: pd.DataFrame) -> pd.DataFrame:
    amount = frame["amount"].astype("float64")
    mean = frame["amount_mean_7d"].astype("float64")
    return pd.DataFrame({
        "pay_amount": amount,
        "amount_ratio": amount / mean.where(mean > 0),
        "foreign_ip": (frame["ip_country"].astype(str) != frame["card_country"].astype(str)).astype("float64"),
        "pay_category": frame["merchant_category"].astype(str),
        "pay_device": frame["device"].astype(str),
        "pay_distance_km": frame["distance_km"].astype("float64"),
    })  # fmt: skip


def payment_currency(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"pay_currency": frame["currency"].astype(str)})


def define(project: Project) -> None:
    """Apply the entity and the three views (idempotent)."""
    source = ml.DatasetSource(dataset="transactions")
    stats = ml.FeatureView(
        "customer_stats", entities=[customer], source=source, ttl="30d",
        aggregations=[ml.Aggregation("amount", "mean", "7d"), ml.Aggregation("amount", "count", "1h"),
                      ml.Aggregation("amount", "count", "24h"), ml.Aggregation("amount", "max", "24h"),
                      ml.Aggregation("merchant_id", "distinct_count", "24h")],
    )  # fmt: skip
    fields = {"amount": "float64", "distance_km": "float64"}
    request = [ml.Field(n, fields.get(n, "string")) for n in REQUEST if n != "currency"]
    payment = ml.OnDemandView(
        "payment", inputs=["customer_stats:amount_mean_7d"], request=request, fn=payment_features,
        outputs=[ml.Field("pay_amount", "float64"), ml.Field("amount_ratio", "float64"),
                 ml.Field("foreign_ip", "float64"), ml.Field("pay_category", "string"),
                 ml.Field("pay_device", "string"), ml.Field("pay_distance_km", "float64")],
    )  # fmt: skip
    currency = ml.OnDemandView("payment_currency", inputs=[], request=[ml.Field("currency", "string")],
                               fn=payment_currency, outputs=[ml.Field("pay_currency", "string")])  # fmt: skip
    project.apply([customer, stats, payment, currency])


def pipeline(labels: str, *, currency: bool = False, seed: int = 0, rounds: int = 300,
             split: ml.TimeSplit | None = None) -> ml.TrainingPipeline:  # fmt: skip
    """The fraud pipeline over the labelled payments in the Parquet file ``labels`` (validated on the
    two days before the last two, tested on those, unless ``split`` says otherwise); with ``currency``
    the v3 of the demo: the same model that also converts amounts to euros."""
    features = [*FEATURES, "payment_currency:pay_currency"] if currency else FEATURES
    booster: dict[str, Any] = dict(
        n_estimators=rounds, learning_rate=0.08, num_leaves=31, min_child_samples=20, verbose=-1
    )
    model = CurrencyAwareClassifier(**booster) if currency else lightgbm.LGBMClassifier(**booster)
    return ml.TrainingPipeline(
        "fraud", features=features, label=ml.Label(labels, column="is_fraud", timestamp="asof"), model=model,
        split=split or ml.TimeSplit(valid="2d", test="2d"), slices=["device"], sensitive=["card_country"],
        description="Scores card payments for fraud before authorisation.", seed=seed,
    )  # fmt: skip


def request_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One predict-request row per payment: the customer's key and the request-time fields."""
    columns = ["customer_id", *REQUEST]
    records = frame[columns].astype(object).where(frame[columns].notna(), None).to_dict("records")
    out = [{str(k): v for k, v in record.items()} for record in records]
    for row in out:
        row["customer_id"] = int(row["customer_id"])
        for name in ("amount", "distance_km"):
            if row[name] is not None:
                row[name] = float(row[name])
    return out


__all__ = ["FEATURES", "REQUEST", "define", "payment_features", "pipeline", "request_rows"]
