"""A real small disk for the chaos tests: a tmpfs mounted for the test, filled to the last byte on purpose,
and a project's settings merged into its ``mloop.yaml``."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.services import unavailable


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` (``64m``), unmounted after; skips (or fails under
    MLOOP_REQUIRE_SERVICES=1) where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its file system has no byte left; the file, to delete for room."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # then what a block-sized write leaves
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    stat = os.statvfs(folder)
    assert stat.f_bavail == 0, f"{stat.f_bavail} blocks still free on {folder}"
    return filler


def settle(path: Path, **sections: Any) -> None:
    """Merge ``sections`` (top-level settings, or dicts of a section's settings) into ``mloop.yaml``."""
    settings = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    for name, value in sections.items():
        settings[name] = {**settings.get(name, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(settings))
