"""Alert rules: which alerts fire now, from an endpoint's newest monitoring results.

Each alert's key names its incident, so evaluating the rules again while the problem lasts finds the
same key and raises nothing new (:meth:`MonitoringService.check` de-duplicates on it):

==========================  =====================================  ==========================================
rule                        fires when                             key
==========================  =====================================  ==========================================
``drift``                   the newest complete window of a        ``<endpoint>/drift/v<version>``
                            version has a drifted column (and at
                            least ``drift.min_rows`` rows)
``attribution_drift``       the newest window of a version has     ``<endpoint>/attribution``
                            attribution shares at least
                            ``attribution.threshold`` away from
                            its card's (:mod:`.attribution_drift`)
``performance``             a realised metric is below its         ``<endpoint>/performance/<metric>/v<n>``
                            ``performance.metrics`` minimum
``estimated_performance``   no labels yet, and the estimate is     ``<endpoint>/estimated/<metric>/v<n>``
                            below the minimum
``fairness``                a demographic parity gap is above      ``<endpoint>/fairness/<column>/v<n>``
                            ``performance.max_fairness_gap``
``slo_burn``                an SLO's burn-rate rule fires          ``<endpoint>/slo/<name>``
                            (severity page or ticket)
==========================  =====================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mloop.config.monitoring import EndpointMonitoring
from mloop.monitoring.alerts import Alert

_ERROR_METRICS = {"rmse", "mae", "log_loss", "brier", "ece"}  # lower is better: the bound is a maximum


def newest(entries: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """The newest entry per model version (entries oldest first)."""
    out: dict[int, Mapping[str, Any]] = {}
    for entry in entries:
        if entry.get("version"):
            out[int(entry["version"])] = entry
    return out


def drift_alerts(endpoint: str, entries: Iterable[Mapping[str, Any]], options: EndpointMonitoring,
                 now: datetime) -> list[Alert]:  # fmt: skip
    out = []
    for version, entry in newest(entries).items():
        drifted = [c for c in entry.get("columns", []) if c.get("drifted")]
        too_few = (entry.get("rows") or 0) < options.drift.min_rows  # PSI of n rows is ~bins/n by chance
        if not drifted or too_few:
            continue
        drifted.sort(key=lambda c: -_severity(c))
        shown = ", ".join(_describe(c) for c in drifted[:5]) + (" ..." if len(drifted) > 5 else "")
        out.append(Alert(
            key=f"{endpoint}/drift/v{version}", name="drift", severity=options.drift.severity,
            endpoint=endpoint, started_at=now, value=float(len(drifted)), threshold=0.0,
            summary=f"{endpoint} v{version}: {len(drifted)} of {len(entry['columns'])} columns drifted "
                    f"in the window from {entry['start']}",
            description=shown,
            labels={"version": str(version), "window_start": str(entry["start"]),
                    "columns": ",".join(c["column"] for c in drifted)},
        ))  # fmt: skip
    return out


def performance_alerts(endpoint: str, entries: Iterable[Mapping[str, Any]], options: EndpointMonitoring,
                       now: datetime) -> list[Alert]:  # fmt: skip
    perf = options.performance
    out = []
    for version, entry in newest(entries).items():
        realised, estimated = entry.get("realised") or {}, entry.get("estimated") or {}
        for metric, bound in perf.metrics.items():
            value, name = realised.get(metric), "performance"
            if value is None and not realised:  # no labels yet: alert on the estimate
                value, name = estimated.get(metric), "estimated_performance"
            if value is None or not _breached(metric, float(value), bound):
                continue
            what = "estimated " if name == "estimated_performance" else ""
            word = "above" if metric in _ERROR_METRICS else "below"
            out.append(Alert(
                key=f"{endpoint}/{'estimated' if what else 'performance'}/{metric}/v{version}", name=name,
                severity=perf.severity, endpoint=endpoint, started_at=now, value=float(value),
                threshold=float(bound),
                summary=f"{endpoint} v{version}: {what}{metric} {float(value):.4g} is {word} {bound:g} in the "
                        f"window from {entry['start']} ({entry.get('labelled', 0)} labels)",
                labels={"version": str(version), "metric": metric, "window_start": str(entry["start"])},
            ))  # fmt: skip
        gap_limit = perf.max_fairness_gap
        for column, gaps in (entry.get("fairness") or {}).items():
            gap = gaps.get("demographic_parity_difference")
            if gap_limit is None or gap is None or gap <= gap_limit:
                continue
            out.append(Alert(
                key=f"{endpoint}/fairness/{column}/v{version}", name="fairness", severity=perf.severity,
                endpoint=endpoint, started_at=now, value=float(gap), threshold=float(gap_limit),
                summary=f"{endpoint} v{version}: demographic parity gap over {column} is {gap:.3f} "
                        f"(at most {gap_limit:g})",
                labels={"version": str(version), "column": column, "window_start": str(entry["start"])},
            ))  # fmt: skip
    return out


def slo_alerts(endpoint: str, statuses: Iterable[Mapping[str, Any]], now: datetime) -> list[Alert]:
    out = []
    for status in statuses:
        firing = status.get("alerts") or []
        if not firing:
            continue
        worst = max(firing, key=lambda a: (a["severity"] == "page", a["threshold"]))
        out.append(Alert(
            key=f"{endpoint}/slo/{status['name']}", name="slo_burn", severity=worst["severity"],
            endpoint=endpoint, started_at=now, value=float(worst["long_rate"]),
            threshold=float(worst["threshold"]),
            summary=f"{endpoint} SLO {status['name']}: burning its error budget {worst['long_rate']:.1f}x "
                    f"over {worst['long']} and {worst['short_rate']:.1f}x over {worst['short']} "
                    f"(alert above {worst['threshold']:g}x)",
            description=f"target {status['target']}, budget left {_share(status.get('remaining'))}",
            labels={"slo": str(status["name"]), "kind": str(status["kind"]), "long": worst["long"],
                    "short": worst["short"]},
        ))  # fmt: skip
    return out


def _breached(metric: str, value: float, bound: float) -> bool:
    return value > bound if metric in _ERROR_METRICS else value < bound


def _severity(column: Mapping[str, Any]) -> float:
    statistic, threshold = column.get("statistic"), column.get("threshold")
    if column.get("p_value") is not None:
        return 1.0 - float(column["p_value"])
    return float(statistic) / float(threshold) if statistic is not None and threshold else 0.0


def _describe(column: Mapping[str, Any]) -> str:
    if column.get("p_value") is not None:
        return f"{column['column']} ({column['method']} p={column['p_value']:.2g})"
    return f"{column['column']} ({column['method']} {column['statistic']:.3g} >= {column['threshold']:g})"


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.0f}%"
