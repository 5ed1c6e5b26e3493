"""The alert sinks: the log, a JSON webhook, a Prometheus Alertmanager (chosen by ``kind`` from
:data:`mloop.monitoring.alerts.SINKS`).

>>> WebhookSink("https://hooks.example.com/mloop").send([alert])   # doctest: +SKIP
>>> AlertmanagerSink("http://alertmanager:9093").send([alert])     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.monitoring.alerts import Alert


class AlertDeliveryError(MloopError):
    """A sink could not deliver alerts: the receiver refused them (4xx), kept failing (5xx) or was down.

    ``url`` is where they went and ``status`` the last HTTP status (``None`` when no answer came).
    """

    def __init__(self, message: str, url: str, status: int | None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class LogSink:
    """Writes one log record per alert to ``logger_name``: WARNING for a firing ticket or page, INFO
    for info alerts and resolutions. The record's ``alert`` attribute holds :meth:`Alert.to_dict`."""

    def __init__(self, logger_name: str = "mloop.alerts", name: str = "log") -> None:
        self.logger_name = logger_name
        self.name = name

    def send(self, alerts: Sequence[Alert]) -> None:
        logger = logging.getLogger(self.logger_name)
        for alert in alerts:
            urgent = alert.status == "firing" and alert.severity != "info"
            logger.log(
                logging.WARNING if urgent else logging.INFO,
                "[%s] %s %s: %s", alert.status, alert.severity, alert.key, alert.summary,
                extra={"alert": alert.to_dict()},
            )  # fmt: skip


class WebhookSink:
    """POSTs ``{"version": "1", "source": "mloop", "alerts": [Alert.to_dict(), ...]}`` as JSON to ``url``.

    Connection errors and 5xx answers are retried ``retries`` times (after 0.2 s, 0.4 s, ...); a 4xx
    answer or the last failure raises :class:`AlertDeliveryError`. An empty batch sends nothing.

    >>> WebhookSink("https://hooks.example.com/mloop", headers={"Authorization": "Bearer …"}).send(alerts)
    ... # doctest: +SKIP
    """

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0,
                 retries: int = 2, name: str = "webhook") -> None:  # fmt: skip
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = retries
        self.name = name

    def send(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            body = {"version": "1", "source": "mloop", "alerts": [alert.to_dict() for alert in alerts]}
            _post_json(self.url, body, self.headers, self.timeout, self.retries)


class AlertmanagerSink:
    """POSTs alerts to a Prometheus Alertmanager (API v2) at ``url`` (``http://alertmanager:9093``).

    Alertmanager resolves an alert that is not sent again within its ``resolve_timeout`` (5 min by
    default), so send firing alerts on every evaluation, and resolved ones once. Retries and errors are
    those of :class:`WebhookSink`; ``generator_url`` is the link Alertmanager shows back to mloop.
    """

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 2, generator_url: str | None = None,
                 name: str = "alertmanager") -> None:  # fmt: skip
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.generator_url = generator_url
        self.name = name

    def send(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            target = f"{self.url.rstrip('/')}/api/v2/alerts"
            _post_json(target, payload_for_alertmanager(alerts, self.generator_url), {}, self.timeout,
                       self.retries)  # fmt: skip


def payload_for_alertmanager(
    alerts: Sequence[Alert], generator_url: str | None = None
) -> list[dict[str, Any]]:
    """The Alertmanager API v2 body for ``alerts``: string labels and annotations, RFC 3339 times.

    Labels are ``alertname`` (the rule), ``severity``, ``endpoint``, ``mloop_key`` (the fingerprint)
    and the alert's own labels, which cannot override those four. ``endsAt`` is set only on resolved
    alerts.
    """
    payload = []
    for alert in alerts:
        labels = {**alert.labels, "alertname": alert.name, "severity": alert.severity,
                  "endpoint": alert.endpoint, "mloop_key": alert.key}  # fmt: skip
        annotations = {"summary": alert.summary, "description": alert.description}
        for name in ("value", "threshold"):
            if getattr(alert, name) is not None:
                annotations[name] = str(getattr(alert, name))
        entry: dict[str, Any] = {"labels": labels, "annotations": annotations,
                                 "startsAt": alert.started_at.isoformat()}  # fmt: skip
        if alert.resolved_at is not None:
            entry["endsAt"] = alert.resolved_at.isoformat()
        if generator_url:
            entry["generatorURL"] = generator_url
        payload.append(entry)
    return payload


def _post_json(url: str, body: Any, headers: Mapping[str, str], timeout: float, retries: int) -> None:
    """POST ``body``; retry connection errors and 5xx with doubling backoff from 0.2 s; raise otherwise."""
    attempts = retries + 1
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.2 * 2 ** (attempt - 1))
        try:
            response = httpx.post(url, json=body, headers=dict(headers), timeout=timeout)
        except httpx.TransportError as exc:
            status, problem = None, f"no answer ({type(exc).__name__}: {exc})"
        else:
            if response.is_success:
                return
            status, problem = response.status_code, f"HTTP {response.status_code}: {response.text[:200]!r}"
            if response.status_code < 500:
                raise AlertDeliveryError(
                    f"Alert delivery to {url} was refused with {problem}; check the sink's url and "
                    "headers under monitoring.sinks in mloop.yaml.",
                    url, status,
                )  # fmt: skip
    raise AlertDeliveryError(
        f"Alert delivery to {url} failed after {attempts} attempt(s), last with {problem}; check that "
        "the receiver is up and reachable, and the sink's url under monitoring.sinks in mloop.yaml.",
        url, status,
    )  # fmt: skip
