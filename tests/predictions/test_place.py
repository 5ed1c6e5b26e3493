"""The prediction log with data_url on a real S3 server: segments in each server's local spool, compacted
Parquet and feedback on S3; nothing lost or duplicated, and logging goes on while S3 is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop import Project
from mloop.crypto import ParquetFiles
from mloop.errors import StorageUnavailable
from mloop.predictions import files
from mloop.predictions.compactor import Compactor, backoff, compact_retrying
from mloop.predictions.feedback import Feedback, Label
from mloop.predictions.log import PredictionLog, predictions_folder
from mloop.predictions.place import LogFolder
from mloop.storage import remote_files
from mloop.storage.s3 import S3DataStorage
from tests.predictions.test_log import answer
from tests.services import free_port

pytestmark = pytest.mark.s3


def place(project: Project) -> LogFolder:
    folder = predictions_folder(project.settings)
    assert isinstance(folder, LogFolder) and folder.storage.remote
    return folder


def test_two_writers_compact_to_s3_without_loss_or_duplicates_and_feedback_lands_there(
    s3_project: Project,
) -> None:
    folder = place(s3_project)
    assert folder.parts.startswith(s3_project.settings.data_url) and folder.spool.is_relative_to(
        s3_project.root
    )
    with (PredictionLog(folder, compact_in_child=False, parquet=s3_project.parquet) as one,
          PredictionLog(folder, compact_in_child=False, parquet=s3_project.parquet) as two):  # fmt: skip
        for i in range(30):
            assert (one if i % 2 else two).record(answer(f"r{i}", rows=2))
        Feedback(one).attach(s3_project, [Label("r3", True)])
    assert list(folder.segments.glob("*.jsonl")) == []  # every segment compacted, none left in the spool
    parts = files.parquet_parts(folder)
    assert parts and all(p.startswith("s3://") for p in parts)
    frame = files.read_predictions(folder, parquet=s3_project.parquet)
    assert len(frame) == 60 and not frame.duplicated(["request_id", "row"]).any()
    labelled = Feedback(PredictionLog(folder, compact_in_child=False, parquet=s3_project.parquet))
    try:
        assert labelled.labelled()[["request_id", "row"]].values.tolist() == [["r3", 0]]
        assert folder.storage.list(labelled.folder)  # the label's file is on S3
    finally:
        labelled.log.close()


def test_the_compactor_child_publishes_to_s3(s3_project: Project, tmp_path: Path) -> None:
    folder = place(s3_project)
    segment = folder.segments / "dead-000001.jsonl"
    segment.parent.mkdir(parents=True, exist_ok=True)
    segment.write_bytes(b"".join(files.encode(answer(f"c{i}"), 1.8e9, "ok") for i in range(5)))
    compactor = Compactor(folder, s3_project.parquet)
    compactor.submit([segment])
    compactor.close()
    assert not segment.exists()
    assert sorted(files.read_predictions(folder, parquet=s3_project.parquet)["request_id"]) == [
        f"c{i}" for i in range(5)
    ]


def test_logging_goes_on_while_s3_is_down_and_the_next_writer_compacts_once_it_is_back(
    s3_project: Project, s3_url: str
) -> None:
    good = place(s3_project)
    down, down_storage = _unreachable(good, s3_url)
    with PredictionLog(
        down, compact_in_child=False, parquet=ParquetFiles(None, remote_files(down_storage))
    ) as log:
        for i in range(20):
            assert log.record(answer(f"d{i}"))  # answered and logged locally, S3 or not
    assert list(good.segments.glob("*.jsonl"))  # kept in the spool: nothing lost
    assert files.parquet_parts(good) == []
    with PredictionLog(good, compact_in_child=False, parquet=s3_project.parquet):
        pass  # opening recovers the stopped writer's segments
    assert list(good.segments.glob("*.jsonl")) == []
    frame = files.read_predictions(good, parquet=s3_project.parquet)
    assert sorted(frame["request_id"]) == sorted(f"d{i}" for i in range(20))


def test_compaction_keeps_a_segment_while_s3_is_down_probing_it_after_each_wait(
    s3_project: Project, s3_url: str
) -> None:
    good = place(s3_project)
    down, down_storage = _unreachable(good, s3_url)
    segment = down.segments / "w-000001.jsonl"
    segment.parent.mkdir(parents=True, exist_ok=True)
    segment.write_bytes(b"".join(files.encode(answer(f"k{i}"), 1.8e9, "ok") for i in range(3)))
    slept: list[float] = []
    with pytest.raises(StorageUnavailable, match="segments stay in"):
        compact_retrying(down, segment, ParquetFiles(None, remote_files(down_storage)), waits=[0.0, 0.0],
                         sleep=slept.append)  # fmt: skip
    assert slept == [0.0, 0.0] and segment.exists()  # waited twice, kept it
    assert compact_retrying(good, segment, s3_project.parquet, sleep=slept.append) == (3, 0)
    assert slept == [0.0, 0.0] and not segment.exists()  # a store that answers: at once, no wait
    assert [w for _, w in zip(range(7), backoff(), strict=False)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def _unreachable(good: LogFolder, s3_url: str) -> tuple[LogFolder, S3DataStorage]:
    """``good``'s spool and parts, its parts on an S3 endpoint where nothing listens: S3 down."""
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s"}  # fmt: skip
    storage = S3DataStorage(s3_url, env=env)
    return LogFolder(good.spool, good.parts.replace(s3_url, storage.root), storage), storage
