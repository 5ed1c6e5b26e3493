"""Encryption at rest through a project: datasets, quarantine, the push log, the prediction log, feedback
and artifacts are unreadable on disk and read back the same; a wrong or missing key is a clear error;
rotation moves everything to a new key without stopping readers and finishes after a kill."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.crypto import DataKeyError, Keyring, ParquetFiles
from mloop.crypto.parquet import key_id_of
from mloop.data.schema import Column, Dataset
from mloop.errors import ConfigError
from mloop.predictions import Answer
from mloop.predictions.feedback import Feedback, Label
from mloop.predictions.log import PredictionLog, predictions_folder
from tests.features.fixtures import T0, customer, transactions

MARKER = "zz-secret-merchant-zz"
KEY = bytes(range(32)).hex()
ENC = {"encryption": {"enabled": True}}


def open_project(root: Path, key: str = KEY, **overrides: Any) -> Project:
    return Project.open(root, env={"MLOOP_DATA_KEY": key}, **{**ENC, **overrides})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "p").mkdir()
    return tmp_path / "p"


@pytest.fixture
def project(root: Path) -> Iterator[Project]:
    with open_project(root) as opened:
        yield opened


def ingest(project: Project, tmp_path: Path, name: str = "txns") -> pd.DataFrame:
    frame = transactions(60)
    frame.loc[0, "merchant"] = MARKER
    csv = tmp_path / f"{name}.csv"
    frame.assign(amount=frame["amount"].astype(str)).to_csv(csv, index=False)
    schema = Dataset(
        name,
        columns=[Column("txn_id", "int64"), Column("customer_id", "int64"), Column("ts", "timestamp"),
                 Column("amount", "float64", max=100), Column("merchant", "string"),
                 Column("country", "string")],
        key="txn_id",
        timestamp="ts",
    )  # fmt: skip  # amounts above 100 go to quarantine
    project.data.ingest(csv, schema)
    return frame


def kept_files(root: Path) -> list[Path]:
    return sorted((root / ".mloop" / "data").rglob("*.parquet"))


def blobs(root: Path) -> list[Path]:
    return [
        p for p in (root / ".mloop" / "artifacts").rglob("*") if p.is_file() and not p.name.startswith(".")
    ]


def answer(rid: str) -> Answer:
    return Answer(rid, "fraud", "fraud", 1, 1, [0.5], {"merchant": [MARKER]}, 0.001)


def test_every_kind_of_file_is_encrypted_and_reads_back(project: Project, root: Path, tmp_path: Path) -> None:
    frame = ingest(project, tmp_path)
    # the dataset and its quarantine
    assert sorted(project.data.read("txns")["txn_id"]) == sorted(frame.loc[frame["amount"] <= 100, "txn_id"])
    assert len(project.data.quarantine("txns")) == int((frame["amount"] > 100).sum())
    # a feature view over the dataset (a training set) and the push log
    view = ml.FeatureView("last_merchant", entities=[customer], source=ml.DatasetSource("txns"), ttl="30d",
                          features=[ml.Field("merchant", "string")])  # fmt: skip
    clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                             ml.Field("page", "string")])  # fmt: skip
    pushed = ml.FeatureView(
        "pages", entities=[customer], source=clicks, ttl="30d", features=[ml.Field("page", "string")]
    )
    project.apply([view, pushed])
    project.features.push("clicks", [{"customer_id": 1, "ts": T0, "page": MARKER}])
    entity = pd.DataFrame({"customer_id": [int(frame.loc[0, "customer_id"]), 1],
                           "event_timestamp": [frame.loc[0, "ts"] + timedelta(seconds=1), T0 + timedelta(hours=1)]})  # fmt: skip
    training = project.features.historical(entity, ["last_merchant:merchant", "pages:page"])
    assert training.loc[0, "merchant"] == MARKER and training.loc[1, "page"] == MARKER
    # the prediction log and feedback, written by a log as a server does and read by monitoring
    folder = predictions_folder(project.settings)
    with PredictionLog(folder, parquet=project.parquet, compact_in_child=False) as log:
        log.record(answer("r1"))
        log.flush()
        Feedback(log).attach(_Caller(), [Label("r1", 1)])
    read = project.monitoring._read(project.monitoring.range("fraud", since="30d"), "fraud", partial=True)[1]
    assert list(read["merchant"]) == [MARKER]
    # an artifact
    with project.run("exp") as run:
        digest = run.log_artifact(MARKER.encode() * 3, "notes.txt")
    assert project.artifacts.get_bytes(digest) == MARKER.encode() * 3
    assert project.artifacts.verify(digest)

    files = kept_files(root)
    kinds = {p.relative_to(root / ".mloop" / "data").parts[0] for p in files}
    assert {"txns", "_push", "_predictions"} <= kinds
    for path in [*files, *blobs(root)]:
        assert MARKER.encode() not in path.read_bytes(), path
    assert all(key_id_of(p) is not None for p in files)


def test_a_wrong_master_key_is_refused_at_open(project: Project, root: Path) -> None:
    with pytest.raises(DataKeyError, match="MLOOP_DATA_KEY"):
        open_project(root, key=bytes(32).hex())


def test_encryption_without_a_key_is_refused_at_open(root: Path) -> None:
    with pytest.raises(ConfigError, match="MLOOP_DATA_KEY"):
        Project.open(root, env={}, **ENC)


def test_a_key_in_mloop_yaml_is_refused(root: Path) -> None:
    (root / "mloop.yaml").write_text(f"encryption:\n  enabled: true\n  key: {KEY}\n")
    with pytest.raises(ConfigError, match="never goes in mloop.yaml"):
        Project.open(root, env={"MLOOP_DATA_KEY": KEY})
    (root / "mloop.yaml").write_text(f"data_key: {KEY}\n")
    with pytest.raises(ConfigError, match="MLOOP_DATA_KEY"):
        Project.open(root, env={})


def test_a_tampered_blob_is_an_integrity_error(project: Project, root: Path) -> None:
    digest = project.artifacts.put_bytes(b"model weights" * 100)
    [path] = blobs(root)
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    assert project.artifacts.corrupt() == [digest]


def test_a_plaintext_project_keeps_working_once_encryption_is_on(root: Path, tmp_path: Path) -> None:
    with Project.open(root, env={}) as plain:
        frame = ingest(plain, tmp_path)
        digest = plain.artifacts.put_bytes(b"old model")
    with open_project(root) as project:
        assert len(project.data.read("txns")) == int((frame["amount"] <= 100).sum())
        assert project.artifacts.get_bytes(digest) == b"old model"
        ingest(project, tmp_path, "more")  # new files are encrypted, old ones stay readable
        assert all(key_id_of(p) for p in kept_files(root) if "more" in p.parts)
        assert not any(key_id_of(p) for p in kept_files(root) if "txns" in p.parts)
        report = project.encryption.rotate()  # converts the old files and blobs
        assert report.files >= 1 and report.blobs == 1
        assert all(key_id_of(p) == report.new_key for p in kept_files(root))
        assert project.artifacts.key_id(digest) == report.new_key


def test_rotation_moves_everything_to_the_new_key(project: Project, root: Path, tmp_path: Path) -> None:
    ingest(project, tmp_path)
    digest = project.artifacts.put_bytes(b"weights")
    old = project.encryption.data_keys()[0].key_id
    seen_mid_rotation: list[int] = []

    def progress(what: str, done: int, total: int) -> None:  # a reader between two rewrites
        seen_mid_rotation.append(len(project.data.read("txns")))

    report = project.encryption.rotate(progress)
    assert report.retired == [old] and report.new_key != old
    assert len(set(seen_mid_rotation)) == 1 and seen_mid_rotation[0] > 0
    keys = project.encryption.data_keys()
    assert [k.active for k in keys] == [False, True] and keys[0].retired_at is not None
    ring = project.parquet.keyring
    assert ring is not None
    only_new = Keyring.fixed({report.new_key: ring.key(report.new_key)}, report.new_key)
    for path in kept_files(root):
        ParquetFiles(only_new).read_table(path)
    assert project.artifacts.key_id(digest) == report.new_key
    events = [e.action for e in project.audit.events()][-2:]
    assert events == ["encryption.rotate.start", "encryption.rotate"]


def test_a_killed_rotation_is_finished_by_running_it_again(
    project: Project, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(project, tmp_path)
    project.artifacts.put_bytes(b"weights")
    old = project.encryption.data_keys()[0].key_id
    calls = 0
    real = ParquetFiles.rewrite

    def dies_after_one(self: ParquetFiles, path: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise KeyboardInterrupt  # killed between two files
        real(self, path)

    monkeypatch.setattr(ParquetFiles, "rewrite", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        project.encryption.rotate()
    monkeypatch.setattr(ParquetFiles, "rewrite", real)
    assert len(project.data.read("txns")) > 0  # half rotated: still readable
    with open_project(root) as again:  # a fresh process
        report = again.encryption.rotate()
        assert report.resumed and report.retired == [old]
        assert all(key_id_of(p) == report.new_key for p in kept_files(root))
        assert len([k for k in again.encryption.data_keys() if k.retired_at is None]) == 1


def test_rotating_without_encryption_says_how_to_turn_it_on(root: Path) -> None:
    with Project.open(root, env={}) as plain, pytest.raises(ConfigError, match="encryption.enabled"):
        plain.encryption.rotate()


class _Caller:
    class actor:
        @staticmethod
        def can(action: str, resource: str) -> bool:
            return True

        @staticmethod
        def require_somewhere(action: str, kind: str) -> None:
            return None


@pytest.mark.slow
def test_the_compactor_child_writes_encrypted_parts(tmp_path: Path) -> None:
    parquet = ParquetFiles(Keyring.fixed({"dk-a": bytes(range(32))}, "dk-a"))
    folder = tmp_path / "_predictions"
    with PredictionLog(folder, parquet=parquet, segment_bytes=1, segment_seconds=0.05) as log:
        log.start_compactor()
        for i in range(3):
            log.record(answer(f"r{i}"))
    parts = sorted(folder.rglob("*.parquet"))
    assert parts and all(key_id_of(p) == "dk-a" for p in parts)
    assert all(MARKER.encode() not in p.read_bytes() for p in parts)
    assert sorted(log.read("fraud")["request_id"]) == ["r0", "r1", "r2"]


@pytest.mark.s3
def test_files_on_s3_are_encrypted_read_back_and_rotated(root: Path, tmp_path: Path, s3_url: str) -> None:
    with open_project(root, data_url=s3_url) as project:
        frame = ingest(project, tmp_path)
        storage = project._ctx.data
        objects = storage.list(storage.root)
        assert objects and all(o.startswith(s3_url) for o in objects)  # the data, its quarantine: on S3
        for location in objects:
            with storage.filesystem.open_input_stream(storage.path(location)) as stream:
                assert MARKER.encode() not in stream.read()
        assert len(project.data.read("txns")) + len(project.data.quarantine("txns")) == len(frame)
        report = project.encryption.rotate()
        assert report.files == len(objects)
        ring = project.parquet.keyring
        assert ring is not None
        only_new = ParquetFiles(Keyring.fixed({report.new_key: ring.key(report.new_key)}, report.new_key),
                                project.parquet.remote)  # fmt: skip
        for location in objects:
            only_new.read_table(location)
        assert len(project.data.read("txns")) + len(project.data.quarantine("txns")) == len(frame)
