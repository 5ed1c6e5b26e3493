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


def test_import_mloop_is_lazy_and_from_imports_still_work() -> None:
    """`import mloop` loads the names on first use (the CLI starts fast); `from mloop import X` and dir() work."""
    import subprocess
    import sys

    code = (
        "import sys, mloop; assert 'pandas' not in sys.modules and 'sqlalchemy' not in sys.modules; "
        "from mloop import Project, FeatureView; import mloop as ml; "
        "assert ml.Project is Project and set(ml.__all__) <= set(dir(ml)); print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
    try:
        ml.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'NoSuchName'" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
