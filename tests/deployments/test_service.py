"""Deployment revisions: deploy, canary, A/B, shadow, rollback along the chain, undeploy, events."""

from __future__ import annotations

import pytest

from mloop import Project
from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.security.actor import Actor
from mloop.security.roles import Grant


@pytest.mark.slow
def test_every_change_is_a_new_revision_and_an_event(trained: Project) -> None:
    first = trained.deploy("dep-a", "fraud", version=1)
    second = trained.deploy("dep-a", "fraud", version=2, canary=0.25, sticky_key="customer_id")
    assert (first.revision, second.revision) == (1, 2)
    assert second.previous == 1
    assert [(r.version, r.weight) for r in second.routes] == [(1, 0.75), (2, 0.25)]
    assert second.primary == 1 and second.sticky_key == "customer_id"
    assert [d.revision for d in trained.deployments.history("dep-a")] == [1, 2]
    events = trained.audit.events(resource="endpoint:dep-a")
    assert [e.action for e in events] == ["deployments.write", "deployments.write"]
    assert events[-1].payload["routes"] == [{"version": 1, "weight": 0.75}, {"version": 2, "weight": 0.25}]


def test_an_alias_is_resolved_when_deploying(trained: Project) -> None:
    trained.models.set_alias("fraud", "champion", 2)
    live = trained.deploy("dep-b", "fraud", alias="champion")
    assert live.primary == 2 and live.alias == "champion"
    trained.models.set_alias("fraud", "champion", 1)
    assert trained.deployments.get("dep-b").primary == 2  # pinned until deployed again


def test_ab_and_shadow(trained: Project) -> None:
    live = trained.deploy("dep-c", "fraud", ab={"v1": 0.5, 2: 0.5})
    assert live.versions == (1, 2)
    shadowed = trained.deploy("dep-c", "fraud", version=1, shadow=2)
    assert shadowed.shadow == (2,) and shadowed.versions == (1, 2)


def test_rollback_follows_the_chain_and_undeploy_stops_serving(trained: Project) -> None:
    trained.deploy("dep-d", "fraud", version=1)
    trained.deploy("dep-d", "fraud", version=2)
    trained.deploy("dep-d", "fraud", version=2, canary=None, shadow=1)
    back = trained.rollback("dep-d")
    assert back.kind == "rollback" and back.primary == 2 and back.shadow == () and back.revision == 4
    again = trained.rollback("dep-d")
    assert again.primary == 1 and again.revision == 5
    with pytest.raises(MloopError, match="nothing to roll back"):
        trained.rollback("dep-d")
    gone = trained.deployments.undeploy("dep-d")
    assert not gone.active
    assert "dep-d" not in [d.endpoint for d in trained.deployments.list()]
    assert "dep-d" in [d.endpoint for d in trained.deployments.list(include_inactive=True)]
    assert trained.rollback("dep-d").active


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ({}, "Say which version"),
        ({"version": 1, "alias": "champion"}, "Say which version"),
        ({"version": 99}, "99"),
        ({"alias": "nobody"}, "nobody"),
        ({"ab": {"v1": 0.5, "v2": 0.4}}, "sum to 0.9"),
        ({"ab": {"x": 1.0}}, "not a version"),
        ({"ab": {"v1": 1.0}, "version": 1}, "either ab"),
        ({"version": 2, "canary": 1.5}, "at most 1"),
        ({"version": 2, "canary": float("nan")}, "number"),
        ({"version": 1, "shadow": 1}, "shadow must be another version"),
        ({"version": 1, "shadow": "2"}, "version numbers"),
        ({"version": 1, "runtime": "tensorrt"}, "Runtime 'tensorrt' is not one of: native, onnx"),
        (
            {"version": 1, "runtime": "onnx"},
            "'fraud' v1 has none: `mloop models export fraud:1 --format onnx`",
        ),
    ],
)
def test_bad_deployments_are_refused_and_write_nothing(trained: Project, how: dict, needle: str) -> None:
    before = trained.deployments.stamp()
    with pytest.raises((MloopError, NotFound), match=needle):
        trained.deploy("dep-bad", "fraud", **how)
    assert trained.deployments.stamp() == before


def test_a_canary_needs_a_live_primary_of_the_same_model(trained: Project) -> None:
    with pytest.raises(MloopError, match="needs a live version"):
        trained.deploy("dep-e", "fraud", version=2, canary=0.1)
    trained.deploy("dep-e", "fraud", version=2)
    with pytest.raises(MloopError, match="already the primary"):
        trained.deploy("dep-e", "fraud", version=2, canary=0.1)


def test_bad_names_and_unknown_endpoints(trained: Project) -> None:
    with pytest.raises(MloopError, match="not allowed"):
        trained.deploy("bad name!", "fraud", version=1)
    with pytest.raises(NotFound, match="mloop deploy nowhere"):
        trained.deployments.get("nowhere")
    with pytest.raises(NotFound, match="revision 9"):
        trained.deploy("dep-f", "fraud", version=1) and trained.deployments.get("dep-f", revision=9)


def test_deploying_needs_the_permission(trained: Project) -> None:
    trained.deploy("dep-g", "fraud", version=1)
    reader = trained.as_actor(Actor("ana", grants=(Grant("data_scientist"),)))
    with pytest.raises(PermissionDenied):
        reader.deploy("dep-g", "fraud", version=2)
    with pytest.raises(PermissionDenied):
        reader.rollback("dep-g")
    assert reader.deployments.get("dep-g").primary == 1


def test_the_stamp_grows_with_every_revision(trained: Project) -> None:
    before = trained.deployments.stamp()
    trained.deploy("dep-h", "fraud", version=1)
    assert trained.deployments.stamp() > before
