from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mloop.cli import _state
from mloop.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``mloop -C <tmp project> ARGS`` in-process and return its exit code, stdout and stderr.

    The folder is a project (it holds ``.mloop/``, as after a first ``mloop data ingest``) with no
    ``mloop.yaml`` yet, so ``init`` can still be tested; ``cli.outside`` is an empty folder next to it.
    """
    root = tmp_path / "proj"
    (root / ".mloop").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for name in ("MLOOP_API_KEY", "MLOOP_PROJECT_DIR", "MLOOP_METADATA_URL", "MLOOP_LOCAL_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str, env: dict[str, str] | None = None, where: Path = root) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["-C", str(where), *args])
        _state.close()
        captured = capsys.readouterr()
        for key in env or {}:
            monkeypatch.delenv(key)
        return Result(int(exit_info.value.code or 0), captured.out, captured.err)

    run.root = root  # type: ignore[attr-defined]
    run.outside = tmp_path / "empty"  # type: ignore[attr-defined]
    return run
