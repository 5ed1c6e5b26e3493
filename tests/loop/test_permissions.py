"""Who may drive the loop: ``loop.operate`` is checked before the controller takes its lease and before
``approve`` says where the loop stands (both were found by the permission matrix, tests/security)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop import Project
from mloop.errors import PermissionDenied
from mloop.loop import lease
from mloop.loop.controller import LEASE, LoopController
from mloop.security import Actor, Grant

POLICY = [
    {"endpoint": "fraud", "pipeline": "tests.loop.pipelines:fraud", "triggers": [{"schedule": "0 3 1 1 *"}]}
]


@pytest.mark.parametrize("policies", [[], POLICY])
def test_a_controller_needs_loop_operate_before_it_takes_the_lease(tmp_path: Path, policies: list) -> None:  # type: ignore[type-arg]
    auditor = Actor("erin", grants=(Grant("auditor"),))
    project = Project.open(tmp_path, env={}, actor=auditor, loop={"policies": policies})
    try:
        with pytest.raises(PermissionDenied, match="erin .* may not loop.operate"):
            LoopController.for_project(project)  # it was: "No loop policies", or a tick holding the lease
        assert lease.current(project.store, LEASE) is None
    finally:
        project.close()


def test_approve_refuses_before_telling_the_loop_phase(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={}, actor=Actor("erin", grants=(Grant("auditor"),)))
    try:
        with pytest.raises(PermissionDenied, match="loop.operate on endpoint:fraud"):
            project.loop.approve("fraud")  # it was: "fraud: nothing waits for approval (the loop is idle)"
    finally:
        project.close()
