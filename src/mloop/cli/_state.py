"""The project the CLI acts on, opened once per command from the global --project option."""

from __future__ import annotations

from pathlib import Path

from mloop.project import Project

_state: dict[str, object] = {"path": Path("."), "project": None}


def set_path(path: Path) -> None:
    _state["path"] = path


def path() -> Path:
    return _state["path"]  # type: ignore[return-value]


def project() -> Project:
    if _state["project"] is None:
        _state["project"] = Project.open(path(), configure_logging=True)
    return _state["project"]  # type: ignore[return-value]


def close() -> None:
    opened = _state["project"]
    if opened is not None:
        opened.close()  # type: ignore[attr-defined]
        _state["project"] = None
