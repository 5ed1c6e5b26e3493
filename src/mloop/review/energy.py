"""Resource use turned into money and energy: the prices and the TDP model of mloop.yaml's ``review:``.

The energy model is a TDP model, written out so a reader can redo it by hand::

    watts  = cores busy x watts_per_core + GB held x watts_per_gb + GPUs busy x gpu_watts
    kWh    = (core-hours x watts_per_core + GB-hours x watts_per_gb + GPU-hours x gpu_watts) x PUE / 1000
    g CO2e = kWh x grams_co2e_per_kwh

Core-hours are CPU seconds / 3600 (a core busy for that long, whatever the machine has), GB-hours the
memory held times the hours it was held. It leaves out idle cores, disks and the network: a floor, not
a metered figure (docs/decisions.md says why not CodeCarbon).

>>> use = Use(core_hours=2.0, gb_hours=8.0, gpu_hours=0.0)
>>> round(money(use, Prices(core_hour=0.04, gb_hour=0.005, gpu_hour=2.5)), 4)
0.12
"""

from __future__ import annotations

from dataclasses import dataclass

from mloop.config.review import Energy, Prices

GB = 1024**3  # bytes in the GB that prices and the energy model count (a GiB: what the kernel reports)


@dataclass(frozen=True)
class Use:
    """Compute used: core-hours, GB-hours of memory, GPU-hours."""

    core_hours: float = 0.0
    gb_hours: float = 0.0
    gpu_hours: float = 0.0

    def __add__(self, other: Use) -> Use:
        return Use(self.core_hours + other.core_hours, self.gb_hours + other.gb_hours,
                   self.gpu_hours + other.gpu_hours)  # fmt: skip

    def scaled(self, factor: float) -> Use:
        return Use(self.core_hours * factor, self.gb_hours * factor, self.gpu_hours * factor)

    def to_dict(self) -> dict[str, float]:
        return {"core_hours": self.core_hours, "gb_hours": self.gb_hours, "gpu_hours": self.gpu_hours}


def money(use: Use, prices: Prices) -> float:
    """What ``use`` costs: core-hours x core price + GB-hours x GB price + GPU-hours x GPU price."""
    return use.core_hours * prices.core_hour + use.gb_hours * prices.gb_hour + use.gpu_hours * prices.gpu_hour


def kwh(use: Use, energy: Energy) -> float:
    """The energy ``use`` drew at the wall, PUE included."""
    watt_hours = (use.core_hours * energy.watts_per_core + use.gb_hours * energy.watts_per_gb
                  + use.gpu_hours * energy.gpu_watts)  # fmt: skip
    return watt_hours * energy.pue / 1000


def grams_co2e(use: Use, energy: Energy) -> float:
    return kwh(use, energy) * energy.grams_co2e_per_kwh


def storage_money(size_bytes: int, prices: Prices) -> float:
    """A month of keeping ``size_bytes``."""
    return size_bytes / GB * prices.storage_gb_month
