"""A deployed version that does not load opens one alert per endpoint (and its event), naming the version
and the reason; it ends once a revision that loads is served, or the endpoint is undeployed."""

from __future__ import annotations

from typing import Any

from mloop import Project
from mloop.errors import IntegrityError, StorageUnavailable
from mloop.serving.endpoints import EndpointTable
from mloop.serving.load_alerts import LoadAlerts, alert_key
from mloop.serving.predictor import Predictor

BROKEN = {3}


def _loader(project: Any, name: str, version: int, runtime: str) -> Predictor:
    if version in BROKEN:  # as the artifact store answers a blob whose bytes changed
        raise IntegrityError(
            f"The artifact of {name} v{version} is corrupt: its content hashes to sha256:00."
        )
    return Predictor.load(project, name, version, runtime)


def _incidents(project: Project) -> list[dict[str, Any]]:
    return [a for a in project.monitoring.alerts("alerted") if a["key"] == alert_key("alerted")]


def test_a_version_that_does_not_load_raises_an_alert_until_a_good_one_serves(trained: Project) -> None:
    trained.deploy("alerted", "fraud", version=1)
    table = EndpointTable(trained, loader=_loader)
    alerts = LoadAlerts(trained, table)
    table.refresh()
    alerts()
    assert _incidents(trained) == []  # v1 loads: nothing to say

    BROKEN.add(trained.models.register("fraud", trained.models.load("fraud", 1).model,
                                       signature=trained.models.get("fraud", 1).signature).version)  # fmt: skip
    broken = max(BROKEN)
    trained.deploy("alerted", "fraud", version=broken)
    table.refresh()
    alerts()
    assert table.get("alerted").predictors.keys() == {1}  # still the previous revision
    (fired,) = _incidents(trained)
    assert fired["status"] == "firing" and fired["labels"]["version"] == str(broken)
    assert (
        fired["summary"].startswith(f"fraud v{broken} (revision 2) does not load")
        and "corrupt" in fired["description"]
    )
    events = [
        e
        for e in trained.audit.events(action="monitoring.alert")
        if e.payload["alert"]["key"] == fired["key"]
    ]
    assert len(events) == 1 and "corrupt" in events[0].payload["alert"]["description"]

    table.refresh()  # retried at every poll: still broken, still one incident, no second event
    alerts()
    trained.monitoring.check("alerted")  # the monitoring rules leave an incident they do not own open
    assert [a["status"] for a in _incidents(trained)] == ["firing"]

    trained.deploy("alerted", "fraud", version=2)
    table.refresh()
    alerts()
    (ended,) = _incidents(trained)
    assert ended["status"] == "resolved" and "loads and serves" in ended["resolution"]
    assert table.get("alerted").predictors.keys() == {2}


def test_a_new_server_ends_an_incident_an_old_one_left_open(trained: Project) -> None:
    trained.deploy("alerted", "fraud", version=max(BROKEN))
    table = EndpointTable(trained, loader=_loader)
    table.refresh()
    LoadAlerts(trained, table)()
    assert _incidents(trained)[0]["status"] == "firing"
    trained.deploy("alerted", "fraud", version=1)
    fresh = EndpointTable(trained, loader=_loader)  # a restarted server: it never saw the failure
    fresh.refresh()
    LoadAlerts(trained, fresh)()
    assert _incidents(trained)[0]["status"] == "resolved"


def test_a_version_whose_store_cannot_be_reached_is_retried_and_the_alert_says_so(trained: Project) -> None:
    down = [False]

    def loader(project: Any, name: str, version: int, runtime: str) -> Predictor:
        if down[0]:  # as the artifact store answers while S3 is down
            raise StorageUnavailable("The artifact store s3://b/m cannot be used: cannot connect (...).")
        return Predictor.load(project, name, version, runtime)

    trained.deploy("unreached", "fraud", version=1)
    table = EndpointTable(trained, loader=loader)
    alerts = LoadAlerts(trained, table)
    table.refresh()
    alerts()
    down[0] = True
    trained.deploy("unreached", "fraud", version=2)
    table.refresh()
    alerts()
    assert table.get("unreached").predictors.keys() == {1} and table.refused["unreached"].unreachable
    (fired,) = [a for a in trained.monitoring.alerts("unreached") if a["key"] == alert_key("unreached")]
    assert (
        "StorageUnavailable" in fired["description"] and "tries again at every poll" in fired["description"]
    )
    assert "re-register" not in fired["description"]  # the artifact is fine: nothing to fix there
    down[0] = False
    table.refresh()  # the next poll, once the store answers
    alerts()
    assert table.get("unreached").predictors.keys() == {2}
    (ended,) = [a for a in trained.monitoring.alerts("unreached") if a["key"] == alert_key("unreached")]
    assert ended["status"] == "resolved"
