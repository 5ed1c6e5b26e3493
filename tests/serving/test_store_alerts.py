"""The alert ``<endpoint>/online-store/down``: one incident per outage, opened at the first failed lookup,
resolved at the first lookup that reads the store again, recorded in the event log."""

from __future__ import annotations

from pathlib import Path

import mloop as ml
from mloop.serving.store_alerts import OnlineStoreAlerts


def test_an_outage_opens_one_incident_and_the_first_read_resolves_it(tmp_path: Path) -> None:
    with ml.Project.open(tmp_path, env={}) as project:
        alerts = OnlineStoreAlerts(project)
        try:
            alerts.reached("fraud")  # no outage: nothing to resolve, nothing recorded
            for _ in range(50):  # every request of the outage fails; one incident
                alerts.failed("fraud", "predictions are answered with the declared defaults")
            alerts.drain()
            (opened,) = project.monitoring.alerts(open_only=True)
            assert opened["key"] == "fraud/online-store/down" and opened["severity"] == "page"
            assert (
                "cannot be reached; predictions are answered with the declared defaults" in opened["summary"]
            )
            assert alerts.down() == {"fraud"}
            alerts.reached("fraud")
            alerts.reached("fraud")
            alerts.drain()
            assert project.monitoring.alerts(open_only=True) == []
            (closed,) = project.monitoring.alerts()
            assert (
                closed["resolved_at"] is not None and closed["resolution"] == "the online store answers again"
            )
            actions = [e.action for e in project.audit.events(action="monitoring.*")]
            assert actions == ["monitoring.alert", "monitoring.resolve"]
        finally:
            alerts.close()
