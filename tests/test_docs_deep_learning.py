"""docs/deep-learning.md's worked example, run as written: its Python blocks in order, as one script, in
an empty folder, with the venv's bin first on PATH (its ``mloop serve``); the port is a free one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import free_port

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "deep-learning.md"
EXAMPLE = "## Worked example"


def script() -> str:
    text = PAGE.read_text(encoding="utf-8")
    example = text[text.index(EXAMPLE) :].split("\n## ", 1)[0]
    return "\n\n".join(m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", example, re.S | re.M))


@pytest.mark.slow
def test_the_worked_example_runs_as_written_and_finds_the_noisy_window(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    port = str(free_port())
    code = script().replace('"8000"', f'"{port}"').replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "1797 accepted, 2 quarantined" in out
    assert "image: shape (8, 8), expected shape (1, 8, 8) of float32" in out
    accuracy = float(re.search(r"test accuracy (\S+),", out).group(1))  # type: ignore[union-attr]
    assert accuracy > 0.9
    windows = re.findall(r"(\d+) rows: image domain_classifier (\S+) (quiet|drifted)", out)
    assert [(rows, verdict) for rows, _, verdict in windows] == [("300", "quiet"), ("300", "drifted")]
