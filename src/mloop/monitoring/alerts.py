"""Alerts, and delivering them to sinks: the log, a JSON webhook, a Prometheus Alertmanager.

An :class:`Alert` is one incident of one rule on one endpoint. Its ``key`` is the de-duplication
fingerprint, built by the caller (``"fraud/drift/amount"``, ``"fraud/slo/latency"``): the same incident
keeps the same key while it fires, and a receiver groups and silences by it. An alert stays firing
until a copy made with :meth:`Alert.resolved` is sent. An alert about one model version (a ``version``
label) also ends when that version stops serving its endpoint (promoted away, rolled back, undeployed):
:func:`no_longer_serving` gives the reason it is resolved with, ``"v1 no longer serves fraud"``.

Sinks are chosen in ``mloop.yaml`` (no entry means the log only)::

    monitoring:
      sinks:
        - kind: log
        - kind: webhook
          url: https://hooks.example.com/mloop
          headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
        - kind: alertmanager
          url: http://alertmanager:9093

>>> alert = Alert(key="fraud/drift/amount", name="drift", severity="ticket", endpoint="fraud",
...               summary="amount drifted (PSI 0.31 > 0.2)", value=0.31, threshold=0.2,
...               labels={"column": "amount"}, started_at=now)    # doctest: +SKIP
>>> deliver(sinks_from_settings(settings.monitoring.sinks), [alert])   # doctest: +SKIP
{}
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mloop._time import as_utc
from mloop.errors import ConfigError, MalformedInput, NotFound
from mloop.plugins import Plugins

if TYPE_CHECKING:
    from mloop._service import Context

SEVERITIES = ("info", "ticket", "page")
"""Alert severities, least urgent first: ``info`` is logged, ``ticket`` waits for working hours,
``page`` wakes someone up."""

SETTLED_ELSEWHERE = ("/cost/budget", "/deploy/load-failed", "/online-store/down")
"""Key endings of incidents whose rule runs outside :meth:`MonitoringService.check` (the cost review, a
server that cannot load a deployed version, a server whose lookups cannot reach the online store): each
keeps its own incident in step with :meth:`MonitoringService.settle`, and ``check`` leaves them open."""

ONLINE_STORE_DOWN = "online-store-down"
"""The rule name of ``<endpoint>/online-store/down`` (opened by the serving process): its incidents are
also the minutes a freshness SLO counts bad, whatever the watermark says."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One incident of one rule on one endpoint; firing until ``resolved_at`` is set.

    ``labels`` are extra string labels (version, column, window); values are turned into strings.
    Times are stored in UTC (a naive datetime is taken to be UTC).
    """

    key: str
    name: str
    severity: str
    endpoint: str
    summary: str
    description: str = ""
    value: float | None = None
    threshold: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    started_at: datetime
    resolved_at: datetime | None = None
    resolution: str = ""  # why it ended, when not because its rule stopped firing

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise MalformedInput(
                f"Alert {self.key!r} has severity {self.severity!r}; use one of {', '.join(SEVERITIES)}."
            )
        # Frozen: normalise through object.__setattr__, once, so every sink sees the same values.
        object.__setattr__(self, "labels", {str(k): str(v) for k, v in self.labels.items()})
        object.__setattr__(self, "started_at", as_utc(self.started_at))
        if self.resolved_at is not None:
            object.__setattr__(self, "resolved_at", as_utc(self.resolved_at))
            if self.resolved_at < self.started_at:
                raise MalformedInput(
                    f"Alert {self.key!r} resolved at {self.resolved_at.isoformat()}, before it started at "
                    f"{self.started_at.isoformat()}; pass a resolution time at or after started_at."
                )

    @property
    def status(self) -> str:
        """``"firing"`` or ``"resolved"``."""
        return "firing" if self.resolved_at is None else "resolved"

    def resolved(self, at: datetime, reason: str = "") -> Alert:
        """A copy of this alert, resolved at ``at`` (for ``reason``, if not because its rule stopped
        firing): send it to end the incident."""
        return dataclasses.replace(self, resolved_at=at, resolution=reason)

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON dict: ISO-8601 times, ``status``, and ``"inf"``/``"-inf"``/``"nan"`` as strings
        for non-finite numbers (JSON has none)."""
        return {
            "key": self.key,
            "name": self.name,
            "severity": self.severity,
            "status": self.status,
            "endpoint": self.endpoint,
            "summary": self.summary,
            "description": self.description,
            "value": _json_number(self.value),
            "threshold": _json_number(self.threshold),
            "labels": dict(self.labels),
            "started_at": self.started_at.isoformat(),
            "resolved_at": None if self.resolved_at is None else self.resolved_at.isoformat(),
            "resolution": self.resolution,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_dict` wrote (``status`` is derived, so it is ignored)."""
        required = ("key", "name", "severity", "endpoint", "summary", "started_at")
        missing = [name for name in required if data.get(name) is None]
        if missing:
            raise MalformedInput(f"An alert dict lacks {', '.join(missing)}; write it with Alert.to_dict().")
        try:
            return cls(
                key=data["key"],
                name=data["name"],
                severity=data["severity"],
                endpoint=data["endpoint"],
                summary=data["summary"],
                description=data.get("description") or "",
                value=_parsed(float, data.get("value")),
                threshold=_parsed(float, data.get("threshold")),
                labels=dict(data.get("labels") or {}),
                started_at=datetime.fromisoformat(data["started_at"]),
                resolved_at=_parsed(datetime.fromisoformat, data.get("resolved_at")),
                resolution=data.get("resolution") or "",
            )
        except (TypeError, ValueError) as exc:
            raise MalformedInput(
                f"Alert dict {data.get('key')!r} does not parse ({exc}); times must be ISO-8601 and "
                "value and threshold numbers: write it with Alert.to_dict()."
            ) from exc


def serving_versions(ctx: Context, endpoint: str) -> set[int] | None:
    """The versions the live revision of ``endpoint`` serves: its routes with a share of the traffic and
    its shadows; none once undeployed; None when it was never deployed (predictions logged without a
    deployment, by batch scoring or a test, are monitored whatever their version)."""
    from mloop.deployments.service import DeploymentService

    try:
        live = DeploymentService(ctx).get(endpoint)
    except NotFound:
        return None
    if not live.active:
        return set()
    return {r.version for r in live.routes if r.weight > 0} | set(live.shadow)


def no_longer_serving(alert: Alert, serving: Collection[int] | None) -> str:
    """Why ``alert`` ends whatever its rule says: ``"v1 no longer serves fraud"`` when it is about a model
    version (its ``version`` label) that ``serving`` (:func:`serving_versions`) does not hold; ``""``
    when its version still serves, when it is about the endpoint as a whole (an SLO) or when ``serving``
    is None. A retired version's last windows stay in the rules' range for a while; this keeps them from
    holding its incidents open (or opening new ones) after it stopped answering.

    >>> no_longer_serving(drift_alert_of_v1, {2})      # doctest: +SKIP
    'v1 no longer serves fraud'
    """
    version = alert.labels.get("version", "")
    if serving is None or not version.isdigit() or int(version) in serving:
        return ""
    return f"v{version} no longer serves {alert.endpoint}"


def _parsed(parse: Any, value: Any) -> Any:
    return None if value is None or value == "" else parse(value)


def _json_number(number: float | None) -> float | str | None:
    if number is None or math.isfinite(number):
        return number
    return str(number)  # "inf", "-inf", "nan": float() reads them back


class AlertSink(Protocol):
    """Where alerts go (:data:`SINKS` names them). ``send`` delivers a batch or raises
    (:class:`~mloop.monitoring.sinks.AlertDeliveryError` for HTTP sinks); :func:`deliver` keeps one
    failing sink from stopping the others."""

    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...


def deliver(sinks: Sequence[AlertSink], alerts: Sequence[Alert]) -> dict[str, str]:
    """Send ``alerts`` to every sink; return ``{sink.name: error message}`` for those that failed.

    Never raises for a failing sink: each failure is logged at WARNING and the next sink still gets
    the alerts, so one broken webhook does not silence the pager.
    """
    failures: dict[str, str] = {}
    for sink in sinks:
        try:
            sink.send(alerts)
        except Exception as exc:  # any sink bug, not only delivery errors, must spare the other sinks
            failures[sink.name] = str(exc) or type(exc).__name__
            _log.warning("Alert sink %r failed: %s", sink.name, failures[sink.name])
    return failures


SINKS = Plugins(
    "alert sink",
    {
        "log": "mloop.monitoring.sinks:LogSink",
        "webhook": "mloop.monitoring.sinks:WebhookSink",
        "alertmanager": "mloop.monitoring.sinks:AlertmanagerSink",
    },
    unknown="{where} has kind {name!r}; use one of {choices}.",
)


def sinks_from_settings(specs: Sequence[Mapping[str, Any]]) -> list[AlertSink]:
    """Build the sinks of ``monitoring.sinks`` in mloop.yaml; an empty list means ``[LogSink()]``.

    Each entry has a ``kind`` (log, webhook, alertmanager) and that sink's arguments (``url``,
    ``headers``, ``timeout``, ``retries``, ``generator_url``, ``logger_name``), plus an optional
    ``name`` that must be unique (it keys :func:`deliver`'s failures; it defaults to the kind).

    >>> sinks_from_settings([{"kind": "alertmanager", "url": "http://am:9093"}])   # doctest: +SKIP
    [<mloop.monitoring.sinks.AlertmanagerSink object at ...>]
    """
    if not specs:
        return [SINKS.load("log")()]
    sinks: list[AlertSink] = []
    for index, spec in enumerate(specs):
        sink = _sink_from_spec(spec, f"Entry {index} of monitoring.sinks in mloop.yaml")
        taken = [i for i, other in enumerate(sinks) if other.name == sink.name]
        if taken:
            raise ConfigError(
                f"Entries {taken[0]} and {index} of monitoring.sinks in mloop.yaml are both named "
                f"{sink.name!r}; give each sink of the same kind a distinct `name:`."
            )
        sinks.append(sink)
    return sinks


def _sink_from_spec(spec: Mapping[str, Any], where: str) -> AlertSink:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} is {spec!r}; write a mapping with a `kind:` ({', '.join(SINKS)}).")
    kind: Any = spec.get("kind")  # from YAML: anything; an unknown kind lists the choices
    sink_class = SINKS.load(kind, where=where)
    parameters = inspect.signature(sink_class).parameters
    arguments = {key: value for key, value in spec.items() if key != "kind"}
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        raise ConfigError(
            f"{where} (kind {kind!r}) has unknown key(s) {', '.join(unknown)}; "
            f"valid keys are kind, {', '.join(parameters)}."
        )
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in arguments]
    if missing:
        raise ConfigError(f"{where} (kind {kind!r}) needs `{missing[0]}:`, {_CHECKS[missing[0]][1]}.")
    for key, value in arguments.items():
        check, wanted = _CHECKS.get(key, (lambda _: True, ""))
        if not check(value):
            raise ConfigError(f"{where} (kind {kind!r}) has {key}: {value!r}; write {wanted}.")
    return sink_class(**arguments)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_CHECKS: dict[str, tuple[Any, str]] = {
    "url": (lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
            "a URL starting with http:// or https://"),
    "headers": (lambda v: v is None or (isinstance(v, Mapping) and all(isinstance(x, str) for x in v.values())),
                "a mapping of header names to string values"),
    "timeout": (lambda v: _is_number(v) and v > 0, "a positive number of seconds"),
    "retries": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number, 0 or more"),
    "generator_url": (lambda v: v is None or isinstance(v, str), "a URL string"),
    "name": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "logger_name": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
}  # fmt: skip
