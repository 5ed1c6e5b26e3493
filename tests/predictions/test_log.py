"""The prediction log: nothing lost on close, recovered after kill -9 (a torn line tolerated), never
blocking the request path, safe with several writer processes in one folder."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import DiskFull, MloopError
from mloop.predictions import Answer, files, metrics, tensors
from mloop.predictions.log import PredictionLog

FORK = multiprocessing.get_context("fork")  # the child inherits the imported package: no 5 s start


def answer(rid: str, rows: int = 1, endpoint: str = "fraud", version: int = 1, **inputs: list[Any]) -> Answer:
    inputs = inputs or {"customer_id": list(range(rows)), "amount": [1.5 * i for i in range(rows)]}
    return Answer(rid, endpoint, "fraud", version, 7, [0.25 + i for i in range(rows)], inputs, 0.002)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "_predictions"


@pytest.fixture
def log(folder: Path) -> Iterator[PredictionLog]:
    with PredictionLog(folder) as opened:
        yield opened


def parquet_rows(folder: Path) -> list[tuple[str, int]]:
    """Every (request_id, row) in the compacted Parquet, duplicates kept."""
    parts = files.parquet_parts(folder)
    frames = [pd.read_parquet(p, columns=["request_id", "row"]) for p in parts]
    return [tuple(r) for f in frames for r in f.itertuples(index=False)]  # type: ignore[misc]


def orphan(folder: Path, writer: str, records: list[tuple[Answer, float]]) -> Path:
    """A segment left behind by a writer that died (no lock held)."""
    segments = folder / files.SEGMENTS
    segments.mkdir(parents=True, exist_ok=True)
    path = segments / f"{writer}-000001.jsonl"
    path.write_bytes(b"".join(files.encode(a, ts, "ok") for a, ts in records))
    return path


def test_every_row_survives_a_graceful_close(folder: Path) -> None:
    with PredictionLog(folder) as log:
        for i in range(50):
            assert log.record(answer(f"r{i}", rows=3))
    assert list((folder / files.SEGMENTS).iterdir()) == []  # compacted, lock released
    frame = files.read_predictions(folder)
    assert len(frame) == 150 and frame["request_id"].nunique() == 50
    assert sorted(parquet_rows(folder)) == sorted((f"r{i}", j) for i in range(50) for j in range(3))
    first = frame[frame.request_id == "r4"].sort_values("row")
    assert first["prediction"].tolist() == [0.25, 1.25, 2.25]
    assert first["amount"].tolist() == [0.0, 1.5, 3.0] and first["customer_id"].tolist() == [0, 1, 2]
    assert (
        set(first["endpoint"]) == {"fraud"} and set(first["version"]) == {1} and set(first["revision"]) == {7}
    )
    parts = list(folder.glob("endpoint=fraud/date=*/part-*.parquet"))
    assert len(parts) == 1 and parts[0].parent.name == f"date={datetime.now(UTC).date().isoformat()}"


def test_read_sees_rows_not_compacted_yet(log: PredictionLog, folder: Path) -> None:
    log.record(answer("live", rows=2))
    assert log.flush()
    assert files.parquet_parts(folder) == []  # still only in this writer's segment
    frame = files.read_predictions(folder)  # a reader in another process sees it too
    assert frame["request_id"].tolist() == ["live", "live"] and frame["row"].tolist() == [0, 1]


def test_defaulted_inputs_are_recorded_per_row_live_and_compacted(folder: Path) -> None:
    import dataclasses

    fallback = dataclasses.replace(answer("fell", rows=2), defaulted={"amount": "online_store_unavailable"})
    with PredictionLog(folder) as log:
        log.record(fallback)
        log.record(answer("read"))
        live = files.read_predictions(folder)  # from the live segment
        assert live.set_index(["request_id", "row"])["defaulted"].to_dict() == {
            ("fell", 0): {"amount": "online_store_unavailable"},
            ("fell", 1): {"amount": "online_store_unavailable"},
            ("read", 0): None,
        }
    frame = files.read_predictions(folder)  # from Parquet
    assert frame["defaulted"].tolist() == [{"amount": "online_store_unavailable"}] * 2 + [None]
    assert "defaulted" in files.FIXED  # not an input: drift and probes leave it out


@pytest.mark.slow
def test_rotated_segments_are_compacted_while_running(folder: Path) -> None:
    with PredictionLog(folder, segment_bytes=1) as log:  # every batch rotates
        for i in range(5):
            log.record(answer(f"r{i}"))
            assert log.flush()
        deadline = time.monotonic() + 30  # compaction runs in a child process: it takes its start-up time
        while len(files.parquet_parts(folder)) < 5 and time.monotonic() < deadline:
            log.record(answer(f"x{time.monotonic()}"))
            log.flush()
            time.sleep(0.05)
        assert len(files.parquet_parts(folder)) >= 5
        assert {f"r{i}" for i in range(5)} <= set(log.read()["request_id"])


def _log_until_killed(folder: Path, recorded: Any) -> None:
    log = PredictionLog(folder, flush_seconds=0.01)
    i = 0
    while True:
        assert log.record(answer(f"c{i}", rows=2))
        i += 1
        recorded.value = i  # only after record() returned: the caller could have answered c0 .. c{i-1}
        time.sleep(0.0002)


def test_kill_9_mid_stream_loses_no_recorded_answer(folder: Path) -> None:
    folder.mkdir(parents=True)
    recorded = FORK.Value("q", 0, lock=False)
    child = FORK.Process(target=_log_until_killed, args=(folder, recorded))
    child.start()
    deadline = time.monotonic() + 30
    while recorded.value < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    answered = recorded.value
    assert answered >= 300
    segments = sorted((folder / files.SEGMENTS).glob("*.jsonl"))
    assert segments, "the killed writer left its segment behind"
    written, _ = files.parse(b"".join(s.read_bytes() for s in segments))
    with segments[-1].open("ab") as handle:  # as if it died in the middle of a line
        handle.write(b'{"request_id": "torn", "ts": 17')
    reopened = PredictionLog(folder)
    try:
        assert reopened.skipped == 1  # the torn line
        assert list((folder / files.SEGMENTS).glob("*.jsonl")) == [reopened._next.path]  # type: ignore[union-attr]
        assert list((folder / files.SEGMENTS).glob("*.lock")) == [
            folder / files.SEGMENTS / f"{reopened.writer}.lock"
        ]
        frame = reopened.read()
    finally:
        reopened.close()
    got = set(zip(frame.request_id, frame.row, strict=True))
    assert {(f"c{i}", j) for i in range(answered) for j in (0, 1)} <= got  # every answered one: 0 lost
    assert {(r["request_id"], j) for r in written for j in (0, 1)} == got  # and nothing else
    assert "torn" not in set(frame.request_id)
    assert len(parquet_rows(folder)) == len(got)  # each recovered row once


def test_a_recorded_line_is_in_the_segment_before_record_returns(log: PredictionLog, folder: Path) -> None:
    for i in range(3):
        assert log.record(answer(f"w{i}"))
        data = b"".join(p.read_bytes() for p in (folder / files.SEGMENTS).glob("*.jsonl"))
        assert [r["request_id"] for r in files.parse(data)[0]] == [f"w{j}" for j in range(i + 1)]


def test_a_failing_disk_drops_and_counts_without_failing_or_blocking(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = metrics.PREDLOG_DROPPED.labels("full")._value.get()
    log = PredictionLog(folder)
    try:
        assert log.record(answer("before", endpoint="full"))
        real = os.write
        calls = {"n": 0}

        def full_disk(fd: int, data: Any) -> int:
            calls["n"] += 1
            if calls["n"] == 1:  # half a line, then the disk is full
                return real(fd, bytes(data)[: len(data) // 2])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", full_disk)
        kept = [log.record(answer(f"q{i}", endpoint="full")) for i in range(20)]
        assert kept == [False] * 20 and log.dropped == 20
        assert metrics.PREDLOG_DROPPED.labels("full")._value.get() - before == 20
        monkeypatch.setattr(os, "write", real)  # space again: the next line starts a fresh segment
        assert log.record(answer("after", endpoint="full"))
    finally:
        log.close()
    frame = files.read_predictions(folder)
    assert frame["request_id"].tolist() == ["before", "after"]  # the torn half-line skipped, never merged
    assert log.skipped == 1


def test_a_required_line_the_disk_refuses_fails_naming_the_disk_and_the_next_one_retries(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(folder)
    try:
        real = os.write

        def full_disk(fd: int, data: Any) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(DiskFull, match=r"no space left on .*segments \(data_url\)"):
            log.record(answer("refused", endpoint="full"), required=True)
        monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(5, "I/O error")))
        with pytest.raises(MloopError, match="not given without its log line"):
            log.record(answer("io", endpoint="full"), required=True)
        monkeypatch.setattr(os, "write", real)  # space again: the same segment takes the next line
        assert log.record(answer("after", endpoint="full"), required=True)
    finally:
        log.close()
    assert files.read_predictions(folder)["request_id"].tolist() == ["after"]


def test_records_after_close_are_dropped(folder: Path) -> None:
    log = PredictionLog(folder)
    log.close()
    assert log.record(answer("late")) is False and log.dropped == 1
    assert log.flush() is False


def _write_and_close(folder: Path, prefix: str, n: int) -> None:
    with PredictionLog(folder, segment_bytes=4096) as log:
        for i in range(n):
            log.record(answer(f"{prefix}{i}", rows=2))
            if i % 50 == 0:
                time.sleep(0.002)


def _run_all(children: list[Any], go: Any = None) -> None:
    """Start the processes (then release ``go``), wait for them, and require that each exited cleanly."""
    for child in children:
        child.start()
    if go is not None:
        go.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0


@pytest.mark.slow
def test_two_writer_processes_share_one_folder(folder: Path) -> None:
    folder.mkdir(parents=True)
    _run_all([FORK.Process(target=_write_and_close, args=(folder, p, 300)) for p in ("a", "b")])
    rows = parquet_rows(folder)
    assert len(rows) == len(set(rows)) == 2 * 300 * 2
    assert {r[0][0] for r in rows} == {"a", "b"}
    assert list((folder / files.SEGMENTS).iterdir()) == []


def _open_and_close(folder: Path, go: Any) -> None:
    go.wait(10)
    PredictionLog(folder).close()


def test_orphans_are_compacted_once_when_processes_recover_together(folder: Path) -> None:
    now = time.time()
    for w in range(6):
        orphan(folder, f"99999{w}-dead{w:04d}", [(answer(f"o{w}-{i}", rows=2), now) for i in range(100)])
    go = FORK.Event()
    _run_all([FORK.Process(target=_open_and_close, args=(folder, go)) for _ in range(3)], go)
    rows = parquet_rows(folder)
    assert len(rows) == len(set(rows)) == 6 * 100 * 2
    assert list((folder / files.SEGMENTS).iterdir()) == []


def test_a_segment_compacted_twice_is_read_once(folder: Path) -> None:
    path = orphan(folder, "1-crashed0", [(answer(f"d{i}", rows=2), time.time()) for i in range(10)])
    saved = path.read_bytes()
    files.recover(folder)
    path.write_bytes(saved)  # as if the compactor died after the Parquet, before deleting the segment
    assert len(files.read_table(folder)) == 40  # seen in the segment and in Parquet ...
    assert len(files.read_predictions(folder)) == 20  # ... and deduplicated on read
    files.recover(folder)
    assert len(parquet_rows(folder)) == 20  # compacting again replaced the same part


def test_read_filters_by_endpoint_and_time(folder: Path) -> None:
    base = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    stamps = [base + timedelta(minutes=30 * i) for i in range(6)]  # across midnight: two date partitions
    records = [
        (answer(f"t{i}", endpoint="fraud" if i % 2 else "recs"), s.timestamp()) for i, s in enumerate(stamps)
    ]
    orphan(folder, "2-old00000", records)
    files.recover(folder)
    assert {Path(p).parent.name for p in files.parquet_parts(folder)} == {
        "date=2026-03-01",
        "date=2026-03-02",
    }
    with PredictionLog(folder) as log:
        log.record(answer("now", endpoint="fraud"))
        every = log.read()
        assert len(every) == 7
        window = log.read(since=stamps[1], until=stamps[4])  # since inclusive, until exclusive
        assert window["request_id"].tolist() == ["t1", "t2", "t3"]
        assert log.read("fraud", since=stamps[2])["request_id"].tolist() == ["t3", "t5", "now"]
        naive = log.read(since=stamps[5].replace(tzinfo=None))  # a naive time is UTC
        assert naive["request_id"].tolist() == ["t5", "now"]
        assert log.read("nobody").empty
    assert pd.api.types.is_datetime64_any_dtype(every["ts"]) and str(every["ts"].dt.tz) == "UTC"


def test_endpoints_with_different_inputs_share_the_log(log: PredictionLog) -> None:
    log.record(answer("a", endpoint="fraud", amount=[3.5]))
    log.record(
        Answer("b", "recs", "recs", 1, 7, [0.5], {"user": ["u1"], "version": [2]}, 0.001)
    )  # a fixed name
    frame = log.read().set_index("request_id")
    assert frame.loc["a", "amount"] == 3.5 and pd.isna(frame.loc["a", "user"])
    assert frame.loc["b", "user"] == "u1" and frame.loc["b", "input.version"] == 2
    assert frame.loc["b", "version"] == 1


def test_inputs_the_model_saw_are_written_as_plain_json(log: PredictionLog) -> None:
    import numpy as np

    log.record(answer("np", when=[pd.Timestamp("2026-01-02", tz="UTC")], n=[np.int32(4)], x=[float("nan")],
                      flag=[np.bool_(True)]))  # fmt: skip
    row = log.read().iloc[0]
    assert row["when"] == "2026-01-02T00:00:00+00:00" and row["n"] == 4 and bool(row["flag"]) is True
    assert pd.isna(row["x"])


_scalars = {
    "ints": st.integers(-(2**62), 2**62),
    "floats": st.floats(allow_nan=False, allow_infinity=False),
    "text": st.text(max_size=20),
    "bools": st.booleans(),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_inputs_and_predictions_round_trip(tmp_path: Path, data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 4))
    kinds = data.draw(st.lists(st.sampled_from(sorted(_scalars)), min_size=1, max_size=4))
    inputs = {
        f"c{i}_{k}": data.draw(st.lists(_scalars[k], min_size=rows, max_size=rows))
        for i, k in enumerate(kinds)
    }
    predictions = data.draw(st.lists(st.one_of(st.floats(0, 1), st.integers(0, 9), st.text(max_size=5)),
                                     min_size=rows, max_size=rows))  # fmt: skip
    folder = tmp_path / f"h{time.monotonic_ns()}"
    with PredictionLog(folder) as log:
        log.record(Answer("h", "ep", "m", 1, 1, predictions, inputs, 0.001))
    frame = files.read_predictions(folder).sort_values("row")
    assert frame["prediction"].tolist() == predictions
    for name, values in inputs.items():
        assert frame[name].tolist() == values


def test_tensor_inputs_are_logged_as_arrays_of_their_shape(log: PredictionLog, folder: Path) -> None:
    import numpy as np

    images = np.random.default_rng(0).random((3, 1, 2, 2)).astype(np.float32)
    log.record(Answer("t", "digits", "cnn", 1, 1, [[0.1, 0.9]] * 3, {"image": list(images), "age": [1, 2, 3]},
                      0.001))  # fmt: skip
    log.record(Answer("s", "digits", "cnn", 1, 1, [[0.5, 0.5]], {"image": [[[0.0, 1.0]]], "age": [4]}, 0.001))
    live = log.read().set_index(["request_id", "row"])
    log.close()
    compacted = files.read_predictions(folder).set_index(["request_id", "row"])
    for frame in (live, compacted):  # in the segment and once compacted into Parquet
        got = frame.loc[("t", 1), "image"]
        assert got.shape == (1, 2, 2) and got.dtype == np.float32 and np.array_equal(got, images[1])
        assert frame.loc[("s", 0), "image"].tolist() == [[0.0, 1.0]] and frame.loc[("t", 2), "age"] == 3
        assert frame.loc[("t", 0), "prediction"] == [0.1, 0.9]
    table = pq.read_table(files.parquet_parts(folder)[0])
    assert "image" not in table["inputs"][0].as_py()  # a Parquet list column, not JSON text
    rows, present = tensors.matrix(table["tensors"], "image")
    assert rows.shape == (3, 4) and present.tolist() == [True, True, True, False]  # "s" has 2 components


def test_lists_that_are_not_tensors_stay_json(log: PredictionLog) -> None:
    log.record(answer("j", tags=[["a", "b"]], ragged=[[[1, 2], [3]]], empty=[[]], holes=[[1.0, None]]))
    row = log.read().iloc[0]
    assert row["tags"] == ["a", "b"] and row["ragged"] == [[1, 2], [3]] and row["empty"] == []
    assert row["holes"] == [1.0, None]


def test_parts_written_before_the_tensor_column_still_read(folder: Path) -> None:
    old = files.to_table([orjson_record("old")]).drop_columns(["tensors"])
    target = files.partition(folder, "fraud", datetime.now(UTC).date()) / "part-old-000001.parquet"
    target.parent.mkdir(parents=True)
    pq.write_table(old, target)
    frame = files.read_predictions(folder)
    assert frame["request_id"].tolist() == ["old"] and frame["amount"].tolist() == [0.0]


def orjson_record(rid: str) -> dict[str, Any]:
    import orjson

    return dict(orjson.loads(files.encode(answer(rid), time.time(), "ok")))


def test_a_running_writer_takes_over_a_killed_siblings_segments(folder: Path) -> None:
    """Two replicas share the folder; one is killed and never restarted: the survivor compacts what the
    dead one left within ``recover_seconds``, each of its answered rows once, while it keeps logging."""
    folder.mkdir(parents=True)
    with PredictionLog(folder, recover_seconds=0.2, compact_in_child=False) as survivor:
        recorded = FORK.Value("q", 0, lock=False)
        sibling = FORK.Process(target=_log_until_killed, args=(folder, recorded))
        sibling.start()
        deadline = time.monotonic() + 30
        while recorded.value < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(sibling.pid, signal.SIGKILL)  # type: ignore[arg-type]
        sibling.join()
        answered = recorded.value
        assert survivor.record(answer("mine"))
        deadline = time.monotonic() + 10
        while [p for p in (folder / files.SEGMENTS).glob("*.jsonl") if survivor.writer not in p.name]:
            assert time.monotonic() < deadline, "the survivor did not compact the dead writer's segments"
            time.sleep(0.05)
        compacted = parquet_rows(folder)
    assert len(compacted) == len(set(compacted))  # each row once
    assert {(f"c{i}", j) for i in range(answered) for j in (0, 1)} <= set(compacted)  # none lost
    assert ("mine", 0) in set(parquet_rows(folder))
