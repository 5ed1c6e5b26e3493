"""The project the CLI acts on, opened once per command from the global --project option.

Read commands open an existing project only (the nearest folder, from --project up, with ``mloop.yaml``
or ``.mloop/``) and refuse elsewhere; ``mloop init`` and the write commands that say so in their help
create one. The project's log lines (below errors) go to stderr only with ``--verbose`` (and for
``mloop serve``): a command reports its result and its problems itself, not as log lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.project import Project

_state: dict[str, Any] = {"path": Path("."), "project": None, "verbose": False}


def set_path(path: Path) -> None:
    _state["path"] = path


def path() -> Path:
    return _state["path"]


def set_verbose(verbose: bool) -> None:
    _state["verbose"] = verbose


def project(*, create: bool = False) -> Project:
    """The project at --project or above it; with ``create``, a new one at --project if there is none."""
    if _state["project"] is None:
        from mloop.config import existing_project_root, find_project_root

        # Refuse before loading the services: a mistyped folder gets its answer at once.
        found = existing_project_root(path()) if not create else find_project_root(path())
        from mloop import logs
        from mloop.project import Project

        opened = Project.open(found or path(), create=create)
        settings = opened.settings
        logs.configure(settings.log_level, settings.log_format, quiet=not _state["verbose"])
        _state["project"] = opened
    return _state["project"]


def close() -> None:
    opened = _state["project"]
    if opened is not None:
        opened.close()
        _state["project"] = None
