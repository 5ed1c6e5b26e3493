"""``mloop models package NAME:VERSION --edge``: the archive, its runner on JSON rows, refusals with the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from mloop import Project
from tests.cli.conftest import Run
from tests.models.cases import case


@pytest.mark.slow
def test_package_a_classifier_for_the_edge(cli: Run) -> None:
    pytest.importorskip("onnxruntime")
    item = case("sklearn-pipeline")
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        project.models.register("churn", item.model, input_example=item.frame)
        served = project.models.load("churn", version=1).predict(item.frame.head(5))
    out = cli.root / "churn.tar.gz"  # type: ignore[attr-defined]
    refused = cli("models", "package", "churn:1", "--out", str(out))
    assert refused.code != 0 and "add --edge" in refused.err
    pointless = cli("models", "package", "churn:1", "--edge", "--out", str(out), "--quantize", "int8")
    assert pointless.code != 0 and "no operator dynamic int8 quantization applies to" in pointless.err
    assert "package it without --quantize" in pointless.err and not out.exists()
    made = cli("models", "package", "churn:1", "--edge", "--out", str(out))
    assert made.code == 0, made.err
    assert (
        "churn version 1 packaged for the edge" in made.out and "python churn-1/runner.py --check" in made.out
    )
    assert "onnx (sha256:" in cli("models", "show", "churn", "1").out  # the export it made and checked
    with tarfile.open(out) as tar:
        tar.extractall(cli.root, filter="data")  # type: ignore[attr-defined]
    rows = cli.root / "rows.json"  # type: ignore[attr-defined]
    rows.write_text(json.dumps(item.frame.head(5).to_dict(orient="records")))
    folder = cli.root / "churn-1"  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-I", "-B", str(folder / "runner.py"), str(rows)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout)["predictions"], served, rtol=0, atol=1e-5)
