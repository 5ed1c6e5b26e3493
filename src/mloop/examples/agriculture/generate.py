"""A seeded generator of farm data: fields, daily weather, hourly soil sensors, image tiles and yields.

The world is small but causal, so that each model of the case has something real to learn:

- **Fields** have a location (points in the Dutch polder: lon 4.8-6.2, lat 51.8-52.8), a crop and a soil;
  the soil's water capacity sets how fast moisture falls between rains.
- **Weather** is daily per region (tmax, tmin, rain): a seasonal curve plus weather systems shared by
  nearby fields; a drought season has less and rarer rain and warmer days.
- **Soil sensors** report hourly per field (moisture, temperature) from a bucket model of the soil
  water; some sensors break the way real ones do: stuck at one value, spiking, or silent for days.
- **Vegetation index** (NDVI) per field and day follows the crop's greening curve, slowed by water
  stress and lowered by disease; clouds hide about a third of the days (missing values, not zeros).
- **Tiles** are 4-band images (blue, green, red, near infrared) of 16x16 pixels from a field on a day;
  diseased tissue reflects less near infrared and more red, in a blob: the label of the disease model.
- **Yield** (t/ha) per field and season follows growing degree days, the water the crop got, its
  NDVI in mid-season, its soil and disease, plus noise.

>>> world = World.make(fields=20, seed=3)
>>> weather = world.weather(2025)
>>> sensors = world.sensors(2025, weather)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

CROPS = ["wheat", "maize", "potato"]
SOILS = ["clay", "loam", "sand"]
_CAPACITY = np.array([160.0, 120.0, 70.0])  # mm of plant-available water per soil
_POTENTIAL = np.array([9.0, 11.0, 45.0])  # t/ha in a good season, per crop
BANDS = ["blue", "green", "red", "nir"]
TILE = 16
SEASON_START = (3, 1)  # 1 March: the season's sums start here
SEASON_DAYS = 214  # to the end of September
GDD_BASE = 5.0  # degrees C below which a crop does not grow


@dataclass(frozen=True)
class World:
    """The fields of a region and the seed of everything drawn about them."""

    fields: pd.DataFrame  # field_id, lon, lat, crop, soil, region
    seed: int

    @classmethod
    def make(cls, fields: int = 60, *, seed: int = 0, regions: int = 4) -> World:
        rng = np.random.default_rng(seed)
        lon = rng.uniform(4.8, 6.2, fields)
        lat = rng.uniform(51.8, 52.8, fields)
        frame = pd.DataFrame({
            "field_id": np.arange(1, fields + 1, dtype="int64"),
            "lon": lon.round(5), "lat": lat.round(5),
            "crop": rng.choice(CROPS, fields), "soil": rng.choice(SOILS, fields, p=[0.35, 0.4, 0.25]),
            "region": (np.floor((lon - 4.8) / 1.4 * regions)).clip(0, regions - 1).astype("int64"),
        })  # fmt: skip
        return cls(frame, seed)

    def _of(self, column: str) -> dict[int, str]:
        return dict(zip(self.fields["field_id"].tolist(), self.fields[column].tolist(), strict=True))

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def days(self, year: int) -> pd.DatetimeIndex:
        start = datetime(year, *SEASON_START, tzinfo=UTC)
        return pd.date_range(start, periods=SEASON_DAYS, freq="D")

    def weather(self, year: int, *, drought: bool = False) -> pd.DataFrame:
        """Daily tmax, tmin (deg C) and rain (mm) per field: the region's weather plus a little local."""
        days = self.days(year)
        n, regions = len(days), int(self.fields["region"].max()) + 1
        rng = self._rng(year, 1)
        season = np.sin(np.pi * np.arange(n) / n)  # cool in March, warm in July, cooling in September
        heat = 2.0 if drought else 0.0
        systems = rng.normal(0, 2.5, (regions, n)).cumsum(axis=1) * 0.15  # slow warm and cold spells
        wet = rng.random((regions, n)) < (0.3 if drought else 0.45)
        amount = rng.gamma(1.6, 3.6 if drought else 4.5, (regions, n))
        out = []
        for key, group in self.fields.groupby("region"):
            k, region = len(group), int(key)  # type: ignore[arg-type]
            tmax = 9 + 15 * season + heat + systems[region] + rng.normal(0, 1.0, (k, n))
            tmin = tmax - 8 - rng.gamma(2.0, 1.0, (k, n))
            rain = np.where(wet[region], amount[region] * rng.lognormal(0, 0.3, (k, n)), 0.0)
            out.append(pd.DataFrame({
                "field_id": np.repeat(group["field_id"].to_numpy(), n), "day": np.tile(days, k),
                "tmax": tmax.ravel().round(2), "tmin": tmin.ravel().round(2), "rain_mm": rain.ravel().round(2),
            }))  # fmt: skip
        return pd.concat(out, ignore_index=True).sort_values(["field_id", "day"], ignore_index=True)

    def water(self, weather: pd.DataFrame) -> pd.DataFrame:
        """The soil water of each field and day (a bucket: rain fills it, heat empties it), 0..1 of capacity."""
        out = []
        for field_id, group in weather.groupby("field_id", sort=True):
            soil = SOILS.index(self._of("soil")[int(field_id)])  # type: ignore[arg-type]
            capacity, level = _CAPACITY[soil], 0.8 * _CAPACITY[soil]
            share = np.empty(len(group))
            for i, (tmax, rain) in enumerate(
                zip(group["tmax"].to_numpy(), group["rain_mm"].to_numpy(), strict=True)
            ):
                level = min(capacity, level + rain) - max(0.0, 0.15 * tmax)
                level = max(level, 0.0)
                share[i] = level / capacity
            out.append(pd.DataFrame({"field_id": field_id, "day": group["day"].to_numpy(), "water": share}))
        return pd.concat(out, ignore_index=True)

    def sensors(self, year: int, weather: pd.DataFrame, *, faults: bool = True) -> pd.DataFrame:
        """Hourly soil moisture (%) and temperature (deg C) per field from a probe installed for the season
        (``sensor_id``: the field's id and the year's last two digits), with the usual broken sensors: one
        in ten stuck for two days, one in ten spiking, one in ten silent for three days (``faults``)."""
        water = self.water(weather)
        rng = self._rng(year, 2)
        hours = np.arange(24)
        frames = []
        for field_id, group in water.groupby("field_id", sort=True):
            days = pd.DatetimeIndex(group["day"])
            ts = days.repeat(24) + pd.to_timedelta(np.tile(hours, len(days)), unit="h")
            daily = weather[weather["field_id"] == field_id]
            moisture = np.repeat(10 + 35 * group["water"].to_numpy(), 24) + rng.normal(0, 0.6, len(ts))
            swing = 4 * np.sin((np.tile(hours, len(days)) - 9) / 24 * 2 * np.pi)
            temperature = np.repeat((daily["tmax"].to_numpy() + daily["tmin"].to_numpy()) / 2, 24) + swing
            frame = pd.DataFrame({
                "field_id": field_id, "sensor_id": int(field_id) * 100 + year % 100, "ts": ts,  # type: ignore[arg-type]
                "moisture": moisture.round(2), "soil_temp": (temperature + rng.normal(0, 0.3, len(ts))).round(2),
            })  # fmt: skip
            frames.append(_broken(frame, rng) if faults else frame)
        return pd.concat(frames, ignore_index=True)

    def ndvi(self, year: int, weather: pd.DataFrame, disease: pd.DataFrame | None = None) -> pd.DataFrame:
        """The vegetation index per field and day (NaN under clouds), after water stress and disease."""
        water = self.water(weather)
        rng = self._rng(year, 3)
        n = SEASON_DAYS
        t = np.arange(n)
        out = []
        for field_id, group in water.groupby("field_id", sort=True):
            crop = CROPS.index(self._of("crop")[int(field_id)])  # type: ignore[arg-type]
            peak_day = 95 + 15 * crop
            curve = 0.2 + 0.65 * np.exp(-(((t - peak_day) / 45.0) ** 2))
            stress = np.clip((0.35 - group["water"].to_numpy()) / 0.35, 0, 1)
            value = curve * (1 - 0.35 * pd.Series(stress).rolling(10, min_periods=1).mean().to_numpy())
            if disease is not None:
                sick = disease[disease["field_id"] == field_id]
                for onset in sick["onset_day"]:
                    value = value - np.where(t >= onset, 0.15 * np.minimum(1, (t - onset) / 20), 0)
            value = value + rng.normal(0, 0.02, n)
            value[rng.random(n) < 0.33] = np.nan  # clouds
            out.append(
                pd.DataFrame({"field_id": field_id, "day": group["day"].to_numpy(), "ndvi": value.round(4)})
            )
        return pd.concat(out, ignore_index=True)

    def disease(self, year: int, share: float = 0.3) -> pd.DataFrame:
        """Which fields fall ill in ``year`` and on which day of the season."""
        rng = self._rng(year, 4)
        sick = rng.random(len(self.fields)) < share
        return pd.DataFrame({
            "field_id": self.fields["field_id"][sick].to_numpy(),
            "onset_day": rng.integers(60, 150, int(sick.sum())),
        })  # fmt: skip

    def tiles(self, count: int, *, seed: int = 0, diseased: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
        """``count`` tiles of shape (4, 16, 16), float32 reflectances in [0, 1], and their labels (1 =
        diseased): healthy leaves reflect near infrared and absorb red; a disease blob does the reverse."""
        rng = self._rng(seed, 5)
        labels = (rng.random(count) < diseased).astype("int64")
        base = np.array([0.04, 0.08, 0.05, 0.45], dtype="float32")[None, :, None, None]
        tiles = base * rng.lognormal(0, 0.15, (count, 4, 1, 1)) + rng.normal(0, 0.02, (count, 4, TILE, TILE))
        yy, xx = np.mgrid[0:TILE, 0:TILE]
        for i in np.flatnonzero(labels):
            cy, cx, r = rng.uniform(3, 13), rng.uniform(3, 13), rng.uniform(2.5, 5.0)
            blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2)))
            tiles[i, 2] += 0.12 * blob  # red up
            tiles[i, 3] -= 0.25 * blob  # near infrared down
        return tiles.clip(0, 1).astype("float32"), labels

    def yields(
        self, year: int, weather: pd.DataFrame, ndvi: pd.DataFrame, disease: pd.DataFrame
    ) -> pd.DataFrame:
        """Yield (t/ha) per field at the season's end, from the season's heat, water, canopy and disease."""
        rng = self._rng(year, 6)
        w = weather.assign(gdd=((weather["tmax"] + weather["tmin"]) / 2 - GDD_BASE).clip(lower=0))
        per = w.groupby("field_id").agg(gdd=("gdd", "sum"), rain=("rain_mm", "sum"))
        mid = (
            ndvi[(ndvi["day"].dt.month >= 6) & (ndvi["day"].dt.month <= 7)].groupby("field_id")["ndvi"].mean()
        )
        water = self.water(weather).groupby("field_id")["water"].mean()
        fields = self.fields.set_index("field_id")
        potential = _POTENTIAL[[CROPS.index(c) for c in fields["crop"]]]
        factor = (
            np.clip(per["gdd"].to_numpy() / 2400, 0.6, 1.1)
            * np.clip(0.75 + 0.4 * water.to_numpy(), 0.75, 1.1)
            * np.clip(mid.reindex(fields.index).fillna(0.5).to_numpy() / 0.7, 0.4, 1.15)
            * np.where(fields.index.isin(disease["field_id"]), 0.85, 1.0)
        )
        value = potential * factor * rng.lognormal(0, 0.05, len(fields))
        cut = datetime(year, 9, 30, tzinfo=UTC)
        return pd.DataFrame({"field_id": fields.index.to_numpy(), "season": year, "ts": cut,
                             "yield_t_ha": value.round(3)})  # fmt: skip


def _broken(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Break one sensor the way real ones break, or leave it (seven in ten are fine)."""
    draw = rng.random()
    n = len(frame)
    start = int(rng.integers(24 * 20, n - 24 * 10))
    if draw < 0.1:  # stuck: the last value repeats for two days
        values = frame["moisture"].to_numpy().copy()
        values[start : start + 48] = values[start]
        frame["moisture"] = values
    elif draw < 0.2:  # spiking: a few readings far off
        spikes = rng.choice(n, 6, replace=False)
        frame.loc[spikes, "moisture"] = frame.loc[spikes, "moisture"] + rng.choice([-1, 1], 6) * 40
    elif draw < 0.3:  # silent for three days
        frame = frame.drop(frame.index[start : start + 72]).reset_index(drop=True)
    return frame


__all__ = ["BANDS", "CROPS", "SOILS", "World"]
