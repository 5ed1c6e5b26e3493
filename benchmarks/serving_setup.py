"""The project, model and request bodies of benchmarks/serving.py, and starting and stopping servers.

One LightGBM model (100 trees, 31 leaves, binary) on 20 features: 10 from the online store (a feature view
``customer_profile`` over 10,000 customers, materialized to the embedded SQLite online store) and 10 sent
in the request. Registered twice: ``bench`` (the 10 stored features looked up by ``customer_id``) and
``bench_sent`` (all 20 in the request, as the floor and MLflow get them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd

import mloop as ml

HERE = Path(__file__).parent
WORK = HERE / ".work" / "serving"
PEER = HERE / ".peers" / "mlflow" / "bin"
CUSTOMERS = 10_000
STORED = [f"c{i}" for i in range(10)]
SENT = [f"r{i}" for i in range(10)]
BODIES = 500


def build(root: Path, versions: int = 1) -> tuple[dict[str, list[dict[str, Any]]], Path]:
    """The project with both endpoints deployed; request bodies per server; the booster's model file.
    ``versions``: how many versions of ``bench`` (the same booster each time; v1 is deployed)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC).replace(microsecond=0)
    profile = pd.DataFrame(
        {"customer_id": np.arange(CUSTOMERS, dtype=np.int64), "ts": now - timedelta(hours=1)}
    )
    for name in STORED:
        profile[name] = rng.normal(size=CUSTOMERS)
    profile["ts"] = profile["ts"].astype("datetime64[us, UTC]")
    profile.to_parquet(root / "profile.parquet", index=False)
    project = ml.Project.open(root, env={})
    customer = ml.Entity("customer", join_keys=["customer_id"])
    view = ml.FeatureView("customer_profile", entities=[customer], ttl="3650d",
                          source=ml.ParquetSource(str(root / "profile.parquet"), timestamp="ts"),
                          features=[ml.Field(n, "float64") for n in STORED])  # fmt: skip
    project.apply([view])
    project.features.materialize(now - timedelta(days=1), now)
    n = 20_000
    ids = rng.integers(0, CUSTOMERS, n)
    frame = profile.iloc[ids][STORED].reset_index(drop=True)
    for name in SENT:
        frame[name] = rng.normal(size=n)
    score = frame[STORED[:5]].sum(axis=1) - frame[SENT[:5]].sum(axis=1) + rng.normal(size=n)
    label = (score > 1.0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1).fit(frame, label)
    with project.run("serving-bench") as run:
        for _ in range(versions):
            run.register(model, "bench", input_example=frame.head(1000),
                         lineage={"features": [f"customer_profile:{c}" for c in STORED]})  # fmt: skip
        # The same booster with every input in the request: the like-for-like comparison with the floor.
        run.register(model, "bench_sent", input_example=frame.head(1000))
    project.deploy("bench", "bench", version=1)
    project.deploy("bench_sent", "bench_sent", version=1)
    project.deploy("bench_batched", "bench_sent", version=1, options={"max_batch_size": 32, "max_wait_ms": 1})
    model_file = root / "model.txt"
    model.booster_.save_model(str(model_file))
    # Request bodies: the same rows for every server, each in its own format.
    chosen = rng.integers(0, CUSTOMERS, BODIES)
    sent = rng.normal(size=(BODIES, len(SENT))).round(6)
    bodies: dict[str, list[dict[str, Any]]] = {"lookup": [], "sent": [], "mlflow": []}
    for k, values in zip(chosen, sent, strict=True):
        request = dict(zip(SENT, values.tolist(), strict=True))
        stored = {c: float(profile.at[int(k), c]) for c in STORED}
        bodies["lookup"].append({"rows": [{"customer_id": int(k), **request}]})
        bodies["sent"].append({"rows": [{**stored, **request}]})
        columns = STORED + SENT
        row = {**stored, **request}
        bodies["mlflow"].append(
            {"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns]]}}
        )
    check(project, bodies, model)
    project.close()
    return bodies, model_file


def check(project: ml.Project, bodies: dict[str, list[dict[str, Any]]], model: Any) -> None:
    """mloop's answers for the first bodies equal the booster's on the floor's rows: same model, same inputs."""
    from fastapi.testclient import TestClient

    from mloop.serving.http.app import create_app

    with TestClient(create_app(project)) as client:
        for mine, floor in zip(bodies["lookup"][:20], bodies["sent"][:20], strict=True):
            row = pd.DataFrame(floor["rows"])[STORED + SENT]
            want = float(model.booster_.predict(row.to_numpy())[0])
            for path, body in (("bench", mine), ("bench_sent", floor)):
                got = client.post(f"/v1/endpoints/{path}/predict", json=body).json()["predictions"][0]
                assert abs(got - want) < 1e-12, (path, got, want)


def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], at: int, cwd: Path, seconds: float = 90,
          env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    """``command`` in its own session, once it listens on ``at``; ``env`` adds to this process's. Its stderr
    goes to the file ``log`` when given (a long run: a pipe nobody reads would fill and block the server's
    logging), else to a pipe read if it fails to start."""
    # The command's own bin folder first on PATH: mlflow models serve runs `uvicorn` from its venv.
    env = {
        **os.environ,
        "PATH": f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    with open(log, "wb") if log is not None else contextlib.nullcontext(subprocess.PIPE) as stderr:
        server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr,
                                  start_new_session=True, env=env)  # fmt: skip
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = log.read_bytes() if log is not None else server.stderr.read() if server.stderr else b""
            raise RuntimeError(said.decode(errors="replace")[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", at), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"{command[0]} did not listen on {at} within {seconds} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)
