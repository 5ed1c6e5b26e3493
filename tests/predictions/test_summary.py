"""The log's per-minute summaries give the figures a row-by-row read gives, count a segment compacted
meanwhile once, and see a rewritten part (erasure) although parts are memoized."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.metrics.profile import bin_frequencies
from mloop.monitoring import sli, traffic
from mloop.monitoring.performance import scores
from mloop.predictions import Answer, files, summary

T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # the records run past midnight: two date partitions
EDGES = [None, 0.2, 0.5, 0.8, None]

record = st.tuples(
    st.integers(0, 120 * 60 - 1),  # second after T0
    st.sampled_from(["fraud", "recs"]),
    st.integers(1, 3),  # version
    st.sampled_from(["ok", "ok", "ok", "error", "shadow"]),
    st.integers(1, 3),  # rows
    st.floats(0.0005, 0.2),  # latency in seconds
    st.sampled_from([0.1, 0.2, 0.35, 0.5, 0.9, "yes"]),  # a score (an edge exactly, too) or a label
)


def write(folder: Path, records: list[tuple], compacted: int) -> None:
    """The records in segments of 7, the first ``compacted`` segments compacted, the rest live."""
    segments = folder / files.SEGMENTS
    segments.mkdir(parents=True, exist_ok=True)
    for n, start in enumerate(range(0, len(records), 7)):
        lines = []
        for i, (second, endpoint, version, status, rows, latency, score) in enumerate(
            records[start : start + 7]
        ):
            answer = Answer(f"r{start + i}", endpoint, endpoint, version, 1, [score] * rows,
                            {"x": list(range(rows))}, latency)  # fmt: skip
            lines.append(files.encode(answer, (T0 + timedelta(seconds=second)).timestamp(), status))
        (segments / f"{n + 1}-dead{n:05d}-000001.jsonl").write_bytes(b"".join(lines))
        if n < compacted:
            files.recover(folder)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record, max_size=60), compacted=st.integers(0, 9), start=st.integers(0, 90),
       length=st.integers(1, 120))  # fmt: skip
def test_the_summaries_equal_a_row_by_row_read(tmp_path_factory, records, compacted, start, length) -> None:
    folder = tmp_path_factory.mktemp("log") / "_predictions"
    write(folder, records, compacted)
    since, until = T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length)
    rows = files.read_predictions(folder, "fraud", since, until)

    counts = summary.minute_counts(folder, "fraud", since, until, thresholds_ms=(50.0, 10.0))
    for within, threshold in (("within_0", 50.0), ("within_1", 10.0)):
        expected = sli.latency_events(rows, threshold) if len(rows) else sli._EMPTY
        assert_events(sli.latency_from_counts(counts, within), expected)
    expected = sli.availability_events(rows) if len(rows) else sli._EMPTY
    assert_events(sli.availability_from_counts(counts), expected)

    first = rows[(rows["row"] == 0)] if len(rows) else rows
    assert traffic.per_version(summary.request_rows(folder, "fraud", since, until)) == traffic.per_version(
        first[["version", "status", "latency_s"]] if len(first) else first
    )

    histograms = summary.prediction_histograms(
        folder, "fraud", since, until, files.PLAIN, {("fraud", v): EDGES for v in (1, 2, 3)}
    )
    for version in (1, 2, 3):
        ok = rows[(rows["status"] == "ok") & (rows["version"] == version)] if len(rows) else rows
        values = scores(ok["prediction"]) if len(ok) else np.array([])
        found = histograms[("fraud", version)]
        total = int(found.sum())
        assert total == int(np.isfinite(values).sum())
        if total:
            assert [c / total for c in found] == bin_frequencies(values[np.isfinite(values)], EDGES)


def assert_events(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    found = found.sort_values("ts").reset_index(drop=True)
    expected = expected.sort_values("ts").reset_index(drop=True)
    assert found["ts"].tolist() == [pd.Timestamp(t) for t in expected["ts"]]
    assert found["good"].tolist() == expected["good"].tolist()
    assert found["total"].tolist() == expected["total"].tolist()


def test_a_segment_compacted_meanwhile_counts_once_and_a_rewritten_part_is_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "_predictions"
    write(folder, [(60 * i, "fraud", 1, "ok", 1, 0.002, 0.5) for i in range(7)], compacted=1)
    segment = next((folder / files.SEGMENTS).glob("*.jsonl"), None)
    assert segment is None  # compacted: only the part
    part = files.parquet_parts(folder, "fraud")[0]
    since, until = T0, T0 + timedelta(hours=2)
    assert summary.minute_counts(folder, "fraud", since, until)["requests"].sum() == 7
    # the compactor died after writing the part, before deleting its segment: both are listed
    name = Path(part).name.removeprefix("part-").removesuffix(".parquet")
    lines = [
        files.encode(Answer(f"r{i}", "fraud", "fraud", 1, 1, [0.5], {"x": [0]}, 0.002),
                     (T0 + timedelta(minutes=i)).timestamp(), "ok")
        for i in range(7)
    ]  # fmt: skip
    (folder / files.SEGMENTS / f"{name}.jsonl").write_bytes(b"".join(lines))
    assert summary.minute_counts(folder, "fraud", since, until)["requests"].sum() == 7
    (folder / files.SEGMENTS / f"{name}.jsonl").unlink()
    # erasure rewrites the part under its name without some rows: the memo sees the new size
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 4), part)
    assert summary.minute_counts(folder, "fraud", since, until)["requests"].sum() == 4
    assert summary.request_rows(folder, "fraud", since, until)["minute"].is_monotonic_increasing


def test_no_version_to_bin_reads_no_histogram(tmp_path: Path) -> None:
    folder = tmp_path / "_predictions"
    write(folder, [(60, "fraud", 1, "ok", 1, 0.01, 0.35), (120, "fraud", 2, "ok", 2, 0.02, 0.9)], compacted=1)
    until = T0 + timedelta(hours=2)
    assert summary.prediction_histograms(folder, "fraud", T0, until, files.PLAIN, {}) == {}
