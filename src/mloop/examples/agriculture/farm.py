"""The agriculture case's datasets, features and yield models, on the platform's public API.

- **Datasets**: ``fields`` (location, crop, soil), ``weather`` (daily), ``soil_sensors`` (hourly, with the
  sensor rules that quarantine stuck, spiking and impossible readings and open an incident per sensor), ``ndvi`` (daily, clouds as
  nulls), ``tiles`` (4-band 16x16 images with a disease label) and ``yields`` (t/ha per field and
  season, a row per forecast date).
- **Feature views** of the ``field`` entity: ``field_info`` (crop as numbers, soil capacity), ``weather``
  (season rain and growing degree days since 1 March, 7-day mean heat), ``soil`` (the day's mean
  moisture on an hourly grid, null with fewer than 18 hours; its 14-day trend) and ``canopy`` (NDVI's
  30-day mean and slope, null under a month of clouds).
- **Yield models**, compared on the same held-out season: the mean of each crop (the naive floor), a
  LightGBM on the features at the forecast date (the pipeline the loop retrains) and a 1-D CNN on 120
  days of daily features (:class:`~mloop.examples.agriculture.models.YieldNet`).

>>> define(project)                                          # doctest: +SKIP
>>> pipeline("labels.parquet").run(project)                  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import lightgbm
import numpy as np
import pandas as pd

import mloop as ml
from mloop.data.schema import Column, Dataset
from mloop.examples.agriculture.generate import CROPS, GDD_BASE, SOILS
from mloop.project import Project

field = ml.Entity("field", join_keys=["field_id"])
FORECAST_DAYS = ((6, 1), (7, 1), (8, 1), (9, 1))  # a yield forecast on the first of each summer month
FEATURES = ["field_info:*", "weather:*", "soil:*", "canopy:*"]
SEQUENCE = ["field_info:*", "weather:*", "soil:*", "canopy:*"]
FIELDS_SINCE = datetime(2000, 1, 1, tzinfo=UTC)  # a field's facts hold from long before any season


def _num(name: str, low: float | None = None, high: float | None = None, nullable: bool = False) -> Column:
    return Column(name=name, dtype="float64", min=low, max=high, nullable=nullable)


def _key(name: str = "field_id") -> Column:
    return Column(name=name, dtype="int64", nullable=False, min=1)


def _time(name: str) -> Column:
    return Column(name=name, dtype="timestamp", nullable=False)


SCHEMAS = {
    "fields": Dataset("fields", key="field_id", timestamp="since", columns=(
        _key(), _num("lon", -180, 180), _num("lat", -90, 90),
        Column(name="crop", allowed=tuple(CROPS), nullable=False), Column(name="soil", allowed=tuple(SOILS)),
        Column(name="region", dtype="int64"), *(_num(f"crop_{c}", 0, 1) for c in CROPS),
        _num("capacity_mm", 0, 400), _time("since"),
    )),
    "weather": Dataset("weather", key=("field_id", "day"), timestamp="day", columns=(
        _key(), _time("day"), _num("tmax", -40, 55), _num("tmin", -50, 45), _num("rain_mm", 0, 400),
        _num("gdd", 0, 60),
    )),
    "soil_sensors": Dataset("soil_sensors", key=("sensor_id", "ts"), timestamp="ts", columns=(
        _key(), _key("sensor_id"), _time("ts"), _num("moisture"), _num("soil_temp"),
    ), sensors=[
        # Hourly probes: stuck for half a day, a spike against the last two days, silent for six hours;
        # a probe is taken out after harvest (a new one each season), so a month without readings is retired.
        ml.SensorChecks(key=["field_id", "sensor_id"], value="moisture", range=(0, 100), stuck=12, spike_z=6,
                        silence="6h", retired="30d"),
        ml.SensorChecks(key=["field_id", "sensor_id"], value="soil_temp", range=(-30, 60)),
    ]),
    "ndvi": Dataset("ndvi", key=("field_id", "day"), timestamp="day", columns=(
        _key(), _time("day"), _num("ndvi", -1, 1, nullable=True),
    )),
    "yields": Dataset("yields", key=("field_id", "ts"), timestamp="ts", columns=(
        _key(), Column(name="season", dtype="int64"), _time("ts"), _num("yield_t_ha", 0, 120),
    )),
    "tiles": Dataset("tiles", key="tile_id", columns=(
        _key("tile_id"), Column(name="image", dtype="tensor", element="float32", shape=(4, 16, 16)),
        Column(name="diseased", dtype="int64", allowed=(0, 1), nullable=False),
    )),
}  # fmt: skip


def field_rows(fields: pd.DataFrame) -> pd.DataFrame:
    """The ``fields`` dataset's rows: the generator's fields with the crop one-hot and the soil's capacity."""
    capacity = dict(zip(SOILS, (160.0, 120.0, 70.0), strict=True))
    out = fields.assign(since=FIELDS_SINCE, capacity_mm=fields["soil"].map(capacity))
    for crop in CROPS:
        out[f"crop_{crop}"] = (fields["crop"] == crop).astype("float64")
    return out


def weather_rows(weather: pd.DataFrame) -> pd.DataFrame:
    gdd = ((weather["tmax"] + weather["tmin"]) / 2 - GDD_BASE).clip(lower=0)
    return weather.assign(gdd=gdd.round(3))


def label_rows(yields: pd.DataFrame) -> pd.DataFrame:
    """One label row per field, season and forecast date: the season's yield, forecast from the season
    so far (so a forecast on any summer day is a question the model was trained on)."""
    rows = [yields.assign(ts=[datetime(int(s), m, d, tzinfo=UTC) for s in yields["season"]])
            for m, d in FORECAST_DAYS]  # fmt: skip
    return pd.concat(rows, ignore_index=True).sort_values(["ts", "field_id"], ignore_index=True)


def define(project: Project) -> None:
    """Apply the entity and the four views (idempotent)."""

    def view(
        name: str, dataset: str, aggregations: list[ml.Aggregation], ttl: str, **kw: Any
    ) -> ml.FeatureView:
        return ml.FeatureView(name, entities=[field], source=ml.DatasetSource(dataset=dataset), ttl=ttl,
                              aggregations=aggregations, **kw)  # fmt: skip

    info = ml.FeatureView(
        "field_info", entities=[field], source=ml.DatasetSource(dataset="fields"),
        features=[ml.Field(f"crop_{c}", "float64") for c in CROPS] + [ml.Field("capacity_mm", "float64")],
    )  # fmt: skip
    weather = view("weather", "weather", [
        ml.Aggregation("rain_mm", "sum", since="03-01", name="season_rain_mm"),
        ml.Aggregation("gdd", "sum", since="03-01", name="season_gdd"),
        ml.Aggregation("tmax", "mean", window="7d", name="tmax_7d"),
        ml.Aggregation("rain_mm", "sum", window="14d", name="rain_14d"),
    ], ttl="30d")  # fmt: skip
    soil = view("soil", "soil_sensors", [
        ml.Aggregation("moisture", "mean", window="1d", resample="1h", min_count=18, name="moisture_1d"),
        ml.Aggregation("moisture", "slope", window="14d", resample="1d", min_count=7, name="moisture_trend_14d"),
    ], ttl="30d")  # fmt: skip
    canopy = view("canopy", "ndvi", [
        ml.Aggregation("ndvi", "mean", window="30d", min_count=3, name="ndvi_30d"),
        ml.Aggregation("ndvi", "slope", window="30d", min_count=5, name="ndvi_trend_30d"),
    ], ttl="60d")  # fmt: skip
    project.apply([field, info, weather, soil, canopy])


def pipeline(labels: str, *, seed: int = 0, rounds: int = 200) -> ml.TrainingPipeline:
    """The yield model the loop retrains: LightGBM on the features at each forecast date. The newest
    forecast date is the test set, the one before it the validation set."""
    model = lightgbm.LGBMRegressor(n_estimators=rounds, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                                   verbose=-1, random_state=seed)  # fmt: skip
    return ml.TrainingPipeline(
        "yield", features=FEATURES, label=ml.Label(labels, column="yield_t_ha", timestamp="ts"), model=model,
        split=ml.TimeSplit(valid="31d", test="31d"), seed=seed,
        description="Forecasts each field's yield (t/ha) at harvest from the season so far.",
    )  # fmt: skip


def naive(train: pd.DataFrame, test: pd.DataFrame, crops: pd.Series) -> np.ndarray:
    """The floor any model must beat: each crop's mean yield in the training seasons."""
    means = train.groupby(crops.reindex(train["field_id"]).to_numpy())["yield_t_ha"].mean()
    return crops.reindex(test["field_id"]).map(means).to_numpy(dtype=float)


def rmse(truth: Any, predicted: Any) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth, float) - np.asarray(predicted, float)) ** 2)))


__all__ = ["FEATURES", "SCHEMAS", "define", "field", "label_rows", "naive", "pipeline", "rmse"]
