"""The ``review:`` block of mloop.yaml: what the platform must deliver per endpoint, the prices and the
energy model that turn measured use into money and CO2e, the thresholds of the review's checks, and the
manual evidence recorded for the ML Test Score.

.. code-block:: yaml

    review:
      requirements:
        fraud: {mode: real-time, p99_ms: 50, throughput_rps: 500, availability: 0.999,
                budget_per_1k: 0.01, latency_critical: true}
      prices: {core_hour: 0.04, gb_hour: 0.005, gpu_hour: 2.50, storage_gb_month: 0.023}
      energy: {watts_per_core: 12, watts_per_gb: 0.4, gpu_watts: 300, pue: 1.4, grams_co2e_per_kwh: 400}
      evidence:
        model-1: "every model change is reviewed in a merge request (see CONTRIBUTING.md)"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Requirement(_Strict):
    """What one endpoint must deliver; the review checks each stated figure against measurements."""

    mode: Literal["real-time", "batch"] = Field(
        "real-time", description="real-time: answered per request; batch: scored in bulk (`mloop score`)."
    )
    p99_ms: float | None = Field(None, gt=0, description="Latency the 99th percentile must stay under.")
    throughput_rps: float | None = Field(None, gt=0, description="Requests per second it must sustain.")
    availability: float | None = Field(
        None, gt=0, lt=1, description="Share of requests answered without error."
    )
    budget_per_1k: float | None = Field(None, ge=0, description="Most it may cost per 1,000 predictions.")
    latency_critical: bool = Field(False, description="A stall or a lost server hurts: wants 2+ replicas.")


class Prices(_Strict):
    """What a unit of compute and storage costs, in the currency of your choice (the review says 'units')."""

    currency: str = "USD"
    core_hour: float = Field(0.04, ge=0, description="One CPU core for an hour.")
    gb_hour: float = Field(0.005, ge=0, description="One GB of memory for an hour.")
    gpu_hour: float = Field(2.5, ge=0, description="One GPU for an hour.")
    storage_gb_month: float = Field(0.023, ge=0, description="One GB stored for a month.")


class Energy(_Strict):
    """A TDP model of energy: watts drawn per busy core, per GB of memory held and per busy GPU, times the
    data centre's PUE; CO2e from the grid's carbon intensity."""

    watts_per_core: float = Field(12.0, ge=0, description="Average draw of one busy core (TDP / cores).")
    watts_per_gb: float = Field(0.375, ge=0, description="Draw of one GB of DRAM held.")
    gpu_watts: float = Field(300.0, ge=0, description="Average draw of one busy GPU.")
    pue: float = Field(1.4, ge=1, description="Power usage effectiveness of the site (1.0: none lost).")
    grams_co2e_per_kwh: float = Field(400.0, ge=0, description="Grid carbon intensity.")


class Thresholds(_Strict):
    """Where the review's checks draw the line; each is named in the check that uses it."""

    quarantine_share: float = Field(
        0.05, ge=0, le=1, description="Rejected rows a training dataset may have."
    )
    key_age_days: int = Field(90, ge=1, description="Oldest an API key may get before it should be rotated.")
    idle_days: int = Field(7, ge=1, description="A live endpoint without traffic for this long is idle.")
    stale_model_days: int = Field(90, ge=1, description="Oldest a serving model's training data may get.")
    sqlite_writes_per_second: float = Field(
        50.0, gt=0, description="Metadata writes per second past which SQLite's single writer queues them."
    )
    local_log_rows_per_second: float = Field(
        2_000.0, gt=0, description="Prediction-log rows per second past which one local disk is the limit."
    )


class ReviewSettings(_Strict):
    requirements: dict[str, Requirement] = Field(default_factory=dict, description="Per endpoint.")
    prices: Prices = Field(default_factory=Prices)
    energy: Energy = Field(default_factory=Energy)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    evidence: dict[str, str] = Field(
        default_factory=dict,
        description="ML Test Score tests done by hand (test id: where the evidence is): they score 0.5.",
    )
