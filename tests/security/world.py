"""A small project with one of everything a permission can be asked about, and a key for every identity
the permission matrix tries: a user per role, a scoped grant on the endpoint the requests name and one on
another endpoint, and keys that must not work (malformed, unknown, revoked, expired, a disabled user's)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

import mloop as ml
from mloop import Project
from mloop.security import ROLES
from tests.training.fraud import customer, setup

SCOPED = "ml_engineer@endpoint:fraud"  # the requests name endpoint fraud: this grant covers them
ELSEWHERE = "ml_engineer@endpoint:other"  # ... and this one does not
IDENTITIES = (*ROLES, SCOPED, ELSEWHERE, "no key", "bad key")
BAD_KEYS = ("malformed", "unknown", "revoked", "expired", "disabled user")

SPARE_VIEW = """
import mloop as ml

customer = ml.Entity("customer", join_keys=["customer_id"])
spare = ml.FeatureView("spare", entities=[customer], ttl="7d",
                       source=ml.ParquetSource(PATH, timestamp="ts"), features=[ml.Field("amount", "float64")])
"""
SPARES = 10  # views that `features delete` may delete, one per identity (a deleted view is not re-applied)


@dataclass
class World:
    root: Path
    keys: dict[str, str]  # identity -> API key (no entry for "no key")
    bad_keys: dict[str, str]  # BAD_KEYS -> a key refused for that reason
    run_ids: list[str]
    spare_key: str  # the id of a key that commands may revoke
    files: dict[str, Path] = field(default_factory=dict)

    def open(self, identity: str = "admin", **overrides: object) -> Project:
        """The project as ``identity`` (``admin`` by default), keys required (``local_admin: false``)."""
        return Project.open(self.root, env={"MLOOP_API_KEY": self.keys[identity]}, **overrides)


def build(root: Path) -> World:
    """Everything the routes and commands act on; takes a few seconds (one small model, trained twice)."""
    (root / "mloop.yaml").write_text("local_admin: false\n")
    project = Project.open(root, env={}, local_admin=True)
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        pipeline, frame = setup(project, root, rows=1_500, start=start)
        clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                                 ml.Field("page", "string")])  # fmt: skip
        project.apply([ml.FeatureView("customer_clicks", entities=[customer], source=clicks,
                                      features=[ml.Field("page", "string")])])  # fmt: skip
        runs = [pipeline.run(project).id for _ in range(3)]  # versions 1 and 2 stay, 3 is deleted
        project.features.materialize(datetime.now(UTC) - timedelta(days=8), datetime.now(UTC))
        for endpoint in ("fraud", "other", "spare"):
            project.deploy(endpoint, "fraud", version=1)
        files = _files(root, frame)
        project.data.ingest(files["csv"], "txns")
        source = ml.ParquetSource(str(root / "txns.parquet"), timestamp="ts")
        project.apply([ml.FeatureView(f"spare_{i}", entities=[customer], source=source, ttl="7d",
                                      features=[ml.Field("amount", "float64")]) for i in range(SPARES)])  # fmt: skip
        _predict(project, frame)
        keys, bad = _keys(project)
        project.users.add("u_target")  # role-less: what users and keys commands act on
        spare_key = project.keys.issue("u_target").key_id
    finally:
        project.close()
    time.sleep(0.05)  # the expired key's lifetime
    return World(root, keys, bad, runs, spare_key, files)


def _predict(project: Project, frame: pd.DataFrame) -> None:
    """A few logged predictions on fraud: what monitoring reads (it reads the model's profile then)."""
    from fastapi.testclient import TestClient

    from mloop.serving.http.app import create_app

    rows = [
        {"customer_id": int(r.customer_id), "amount": float(r.amount)} for r in frame.head(5).itertuples()
    ]
    with TestClient(create_app(project)) as client:  # its exit writes the prediction log out
        response = client.post("/v1/endpoints/fraud/predict", json={"rows": rows})
        assert response.status_code == 200, response.text


def _files(root: Path, frame: pd.DataFrame) -> dict[str, Path]:
    txns = pd.read_parquet(root / "txns.parquet")
    rows = txns[["customer_id", "ts", "amount"]].head(20)
    files = {"csv": root / "txns.csv", "rows": root / "rows.parquet", "push": root / "push.csv",
             "views": root / "spare_view.py"}  # fmt: skip
    txns.head(50).to_csv(files["csv"], index=False)
    rows.to_parquet(files["rows"], index=False)
    now = pd.Timestamp.now(tz="UTC").isoformat()
    pd.DataFrame({"customer_id": [5], "ts": [now], "page": ["home"]}).to_csv(files["push"], index=False)
    (root / "out").mkdir()
    files["views"].write_text(SPARE_VIEW.replace("PATH", repr(str(root / "txns.parquet"))))
    return files


def _keys(project: Project) -> tuple[dict[str, str], dict[str, str]]:
    keys = {}
    for identity in (*ROLES, SCOPED, ELSEWHERE):
        name = "u_" + identity.replace("@", "_at_").replace(":", "_")
        project.users.add(name, [identity])
        keys[identity] = project.keys.issue(name).token
    project.users.add("u_gone", ["admin"])
    revoked = project.keys.issue("u_gone")
    project.keys.revoke(revoked.key_id)
    expired = project.keys.issue("u_gone", expires_in=timedelta(milliseconds=1)).token
    project.users.add("u_disabled", ["admin"])
    disabled = project.keys.issue("u_disabled").token
    project.users.disable("u_disabled")
    unknown = "mlk_" + "0" * 12 + "_" + "x" * 43
    bad = {"malformed": "not-a-key", "unknown": unknown, "revoked": revoked.token, "expired": expired,
           "disabled user": disabled}  # fmt: skip
    return keys, bad
