"""Where a run ran: the code version (git), Python and key package versions, the host.

Collected once per run start and stored in ``runs.info``; everything here is cheap (one ``git``
subprocess, package metadata read without importing the packages) and never fails a run: what
cannot be found is ``None``.

>>> environment(Path("."))["python"]   # doctest: +SKIP
'3.11.7'
"""

from __future__ import annotations

import functools
import platform
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# The packages whose versions decide whether a model trains and loads the same way elsewhere.
PACKAGES = ("mloop", "numpy", "pandas", "scikit-learn", "lightgbm", "duckdb", "pyarrow", "torch")


def environment(root: Path) -> dict[str, Any]:
    """The run's environment: ``git`` (or None outside a repository), ``python``, ``packages``, ``host``."""
    return {"git": git_state(root), **_static()}


@functools.cache
def _static() -> dict[str, Any]:
    # Fixed for the life of the process: read once, not at every run start.
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "host": socket.gethostname(),
        "packages": package_versions(),
    }


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out), read without importing them."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_state(root: Path) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty"}`` of the git work tree holding ``root``; None without git or a repo.

    ``dirty`` counts changes to tracked files only: untracked files (the project's own ``.mloop/``
    state, scratch notebooks) do not change what the committed code computes.
    """
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # One call answers all three: porcelain v2 prints the head commit and branch as headers.
        done = subprocess.run(
            [git, "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    commit = branch = None
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "branch": branch, "dirty": dirty}
