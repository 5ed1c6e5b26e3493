"""The sensor rules of a dataset's schema (``Dataset(sensors=SensorChecks(...))``): what a user declares.

How they are evaluated at ingestion is :mod:`mloop.data.sensors`; this module holds only the declaration,
so the schema can import it without importing the evaluation (which reads the schema).

>>> SensorChecks(key=["field_id", "sensor_id"], value="moisture", range=(0, 100), stuck=12)
SensorChecks(key=('field_id', 'sensor_id'), value='moisture', ...)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from mloop._time import parse_duration
from mloop.errors import MloopError

RULES = ("range", "stuck", "spike", "silence")
"""The sensor rules, in the order a reading is judged (a reading fails at most one of the first three)."""


class SensorChecks(BaseModel):
    """The sensor rules of one value column, per sensor (``key``: the columns naming a sensor).

    ``range`` (low, high) is the physical range; ``stuck`` the run length of identical readings that
    makes a stuck sensor (at least 2); ``spike_z`` the robust z-score above which a reading is a spike,
    against the median and MAD of the sensor's previous ``spike_window`` clean readings and against its
    neighbours (no decision before ``spike_window`` of them, nor on a sensor's last reading of a batch;
    the scale is at least the noise seen in the steps between readings; ``resolution``, the smallest change the sensor reports, floors
    the MAD so a flat series does not make every change a spike); ``silence`` how long without any
    reading makes a sensor silent (``"6h"``), and ``retired`` how long without one makes it removed rather
    than silent (``"30d"``: a probe taken out after harvest raises no incident for the winter; a gap between
    its readings still does). Omitted rules are off; at least one must be on.
    ``severity`` is the severity of the alerts the rules raise.

    >>> SensorChecks(key=["field_id", "sensor_id"], value="moisture", range=(0, 100), stuck=12)
    SensorChecks(key=('field_id', 'sensor_id'), value='moisture', ...)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: tuple[str, ...]
    value: str
    range: tuple[float, float] | None = None
    stuck: int | None = None
    spike_z: float | None = None
    spike_window: int = 48
    resolution: float = 0.0
    silence: str | None = None
    retired: str | None = None
    severity: str = "ticket"

    def __init__(self, **data: Any) -> None:
        if isinstance(data.get("key"), str):
            data["key"] = (data["key"],)
        super().__init__(**data)

    def __repr_args__(self) -> Any:  # short repr: the rules only
        return [(k, v) for k, v in super().__repr_args__() if v is not None]

    @field_validator("silence", "retired")
    @classmethod
    def _duration(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            try:
                if (parse_duration(value) or timedelta(0)) <= timedelta(0):
                    raise ValueError
            except (ValueError, MloopError):
                raise ValueError(
                    f"{info.field_name} {value!r} is not a positive duration; write one like '6h' or '2d'"
                ) from None
        return value

    @model_validator(mode="after")
    def _rules(self) -> SensorChecks:
        where = f"sensor checks of {self.value!r}"
        if not self.key:
            raise ValueError(
                f"{where}: key names no column; give the columns naming a sensor, e.g. ['sensor_id']"
            )
        if all(getattr(self, r if r != "spike" else "spike_z") is None for r in RULES):
            raise ValueError(f"{where} turn no rule on; give range=, stuck=, spike_z= or silence=")
        quiet, gone = self.silence_after, self.retired_after
        if gone is not None and (quiet is None or gone <= quiet):
            raise ValueError(f"{where}: retired={self.retired!r} needs silence= and must be longer than it")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"{where}: range {list(self.range)} must be (low, high) with low < high")
        if self.stuck is not None and self.stuck < 2:
            raise ValueError(f"{where}: stuck={self.stuck} must be at least 2 (readings in a run)")
        if self.spike_z is not None and self.spike_z <= 0:
            raise ValueError(f"{where}: spike_z={self.spike_z} must be a positive robust z-score, e.g. 6")
        if self.spike_window < 4:
            raise ValueError(f"{where}: spike_window={self.spike_window} must be at least 4 readings")
        if self.resolution < 0:
            raise ValueError(f"{where}: resolution={self.resolution} must be 0 or more")
        if self.severity not in ("info", "ticket", "page"):
            raise ValueError(f"{where}: severity {self.severity!r} must be info, ticket or page")
        return self

    @property
    def silence_after(self) -> timedelta | None:
        return parse_duration(self.silence)

    @property
    def retired_after(self) -> timedelta | None:
        return parse_duration(self.retired)

    @property
    def history(self) -> int:
        """How many readings before a batch its windows need."""
        return max(self.stuck or 0, 4 * self.spike_window if self.spike_z is not None else 0)

    def reason(self, rule: str) -> str:
        """The quarantine reason of ``rule`` (range, stuck or spike): fixed text, so reports count it."""
        if rule == "range" and self.range is not None:
            return f"{self.value}: outside physical range [{self.range[0]:g}, {self.range[1]:g}]"
        if rule == "stuck":
            return f"{self.value}: stuck (the same value for {self.stuck} or more readings)"
        if rule == "spike":
            return f"{self.value}: spike (robust z above {self.spike_z:g} over the previous {self.spike_window} readings)"
        raise ValueError(f"{rule!r} is not a per-reading rule of {self.value!r}; use range, stuck or spike")

    @property
    def reading_rules(self) -> list[str]:
        """The rules on, among range, stuck and spike."""
        on = {
            "range": self.range is not None,
            "stuck": self.stuck is not None,
            "spike": self.spike_z is not None,
        }
        return [rule for rule, yes in on.items() if yes]
