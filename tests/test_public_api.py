"""The public API is ``mloop.__all__``: every name resolves, and what the services hand back are those
exported types, so users can annotate and check them without importing internal modules."""

from __future__ import annotations

from pathlib import Path

import mloop as ml


def test_every_exported_name_resolves_once() -> None:
    assert len(set(ml.__all__)) == len(ml.__all__)
    missing = [name for name in ml.__all__ if not hasattr(ml, name)]
    assert missing == []


def test_the_services_hand_back_the_exported_records(tmp_path: Path) -> None:
    with ml.Project.open(tmp_path, env={}) as project:
        with project.run("exp", params={"a": 1}) as run:
            assert isinstance(run, ml.Run)
            run.log_metric("auc", 0.5)
        assert isinstance(project.runs.get(run.id), ml.RunInfo)
        assert all(isinstance(e, ml.Experiment) for e in project.runs.experiments())
        assert isinstance(project.audit.verify(), ml.AuditReport)
        assert all(isinstance(e, ml.Event) for e in project.audit.events())
        issued = project.keys.issue(project.actor.name)
        assert isinstance(issued, ml.IssuedKey)
        assert all(isinstance(u, ml.User) for u in project.users.list())
        assert isinstance(project.apply([]), ml.Plan)
