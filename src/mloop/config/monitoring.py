"""The ``monitoring:`` block of mloop.yaml: windows, alert sinks, and per endpoint its drift options,
performance slices and SLOs.

.. code-block:: yaml

    monitoring:
      window: 1h                      # tumbling windows over the prediction log
      sinks:
        - {kind: log}
        - {kind: alertmanager, url: "http://alertmanager:9093"}
      endpoints:
        fraud:
          drift: {methods: {amount: wasserstein}, thresholds: {psi: 0.2}, severity: ticket}
          attribution: {threshold: 0.1, rows: 500}   # attribution drift (default on)
          performance: {slices: [channel], sensitive: [region], metrics: {roc_auc: 0.85}}
          slos:
            - {kind: latency, target: 0.99, threshold_ms: 50}
            - {kind: availability, target: 0.999}
            - {kind: freshness, feature_view: customer_stats, max_age: 1h, target: 0.99}
            - {kind: quality, metric: roc_auc, min: 0.85, window: 1d}
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mloop._time import parse_duration
from mloop.errors import MloopError


def _duration(value: Any) -> timedelta:
    # A ValueError (not mloop's own error) lets pydantic add the key, so the message names file and key.
    try:
        parsed = parse_duration(value)
    except MloopError:
        raise ValueError(f"{value!r} is not a duration; use e.g. 5m, 1h or 7d") from None
    if parsed is None or parsed <= timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration such as '5m', '1h' or '1d'")
    return parsed


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftOptions(_Strict):
    methods: dict[str, str] = Field(
        default_factory=dict, description="Method per column (or __prediction__)."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Threshold per method or column.")
    columns: list[str] | None = Field(None, description="Columns to watch; default: every profiled input.")
    correction: Literal["none", "bonferroni"] = Field(
        "bonferroni", description="Divide the p-value tests' threshold by the number of columns tested."
    )
    min_rows: int = Field(
        200,
        ge=1,
        description="Rows a window needs before its drift raises an alert (small windows are noise).",
    )
    severity: Literal["info", "ticket", "page"] = "ticket"


class AttributionOptions(_Strict):
    """Attribution drift (:mod:`mloop.monitoring.attribution_drift`): each feature's share of the total
    |attribution| in a window against the shares on the version's holdout (its model card)."""

    enabled: bool = Field(True, description="Explain a sample of each window (needs the card's importance).")
    threshold: float = Field(
        0.1, gt=0, le=1, description="Alert when the total variation distance of the shares is at least this."
    )
    rows: int = Field(500, ge=20, description="Rows of a window explained: a seeded sample of at most this.")
    min_rows: int = Field(200, ge=1, description="Rows a window needs before its attribution drift alerts.")
    severity: Literal["info", "ticket", "page"] = "ticket"


class PerformanceOptions(_Strict):
    slices: list[str] = Field(default_factory=list, description="Input columns to break metrics down by.")
    sensitive: list[str] = Field(
        default_factory=list, description="Input columns to compute fairness gaps on."
    )
    threshold: float | None = Field(None, description="Decision threshold; default the model card's.")
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Alert when a window's realised (or, before labels, estimated) metric falls below this.",
    )
    max_fairness_gap: float | None = Field(None, gt=0, description="Alert above this demographic parity gap.")
    min_labels: int = Field(50, ge=1, description="Labelled rows a window needs before its metrics count.")
    severity: Literal["info", "ticket", "page"] = "ticket"


class _SLO(_Strict):
    name: str | None = None
    target: float = Field(0.99, gt=0, lt=1, description="Share of good events, e.g. 0.99.")
    period: timedelta = timedelta(days=30)

    check_period = field_validator("period", mode="before")(_duration)


class LatencySLO(_SLO):
    kind: Literal["latency"]
    threshold_ms: float = Field(gt=0, description="A prediction answered within this many ms is good.")


class AvailabilitySLO(_SLO):
    kind: Literal["availability"]
    target: float = Field(0.999, gt=0, lt=1)


class FreshnessSLO(_SLO):
    kind: Literal["freshness"]
    feature_view: str
    max_age: timedelta = Field(description="Good while the view's newest materialized data is this recent.")

    check_age = field_validator("max_age", mode="before")(_duration)


class QualitySLO(_SLO):
    kind: Literal["quality"]
    metric: str = "roc_auc"
    min: float | None = None
    max: float | None = None  # for error metrics such as rmse
    window: timedelta = timedelta(days=1)

    check_window = field_validator("window", mode="before")(_duration)


SLOSpec = Annotated[LatencySLO | AvailabilitySLO | FreshnessSLO | QualitySLO, Field(discriminator="kind")]


class EndpointMonitoring(_Strict):
    drift: DriftOptions = Field(default_factory=DriftOptions)
    attribution: AttributionOptions = Field(default_factory=AttributionOptions)
    performance: PerformanceOptions = Field(default_factory=PerformanceOptions)
    slos: list[SLOSpec] = Field(default_factory=list)


class MonitoringSettings(_Strict):
    window: timedelta = Field(timedelta(hours=1), description="Tumbling window over the prediction log.")
    label_horizon: timedelta = Field(
        timedelta(days=7),
        description="How long after a window its performance is recomputed as labels arrive.",
    )
    sinks: list[dict[str, Any]] = Field(default_factory=list, description="Alert sinks; default: the log.")
    endpoints: dict[str, EndpointMonitoring] = Field(default_factory=dict)

    check_window = field_validator("window", "label_horizon", mode="before")(_duration)

    def endpoint(self, name: str) -> EndpointMonitoring:
        return self.endpoints.get(name) or EndpointMonitoring()


def slo_name(spec: Any) -> str:
    """``name`` if given, else the kind (``freshness:<view>`` and ``quality:<metric>`` to stay unique)."""
    if spec.name:
        return str(spec.name)
    if spec.kind == "freshness":
        return f"freshness:{spec.feature_view}"
    if spec.kind == "quality":
        return f"quality:{spec.metric}"
    return str(spec.kind)
