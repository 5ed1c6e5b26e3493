"""Batch scoring with Ray Data on a real Ray cluster: the same file as the local path, atomically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop import Project
from mloop.models.signature import SignatureError
from mloop.serving.scoring.job import score
from tests.ray_cluster import RayCluster
from tests.serving import pit
from tests.serving.pit import T0

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("ray-batch")
    project = Project.open(root, env={})
    pit.build(project, root)
    yield project
    project.close()


def many_rows(path: Path, count: int = 3_000) -> pd.DataFrame:
    """Rows of both customers at random times (features looked up point in time), in several row groups,
    so that Ray Data reads them as several blocks."""
    rng = np.random.default_rng(3)
    times = T0 + pd.to_timedelta(rng.integers(86_400, 5 * 86_400, count), unit="s")
    frame = pd.DataFrame({
        "row": np.arange(count), "customer_id": rng.integers(1, 3, count).astype("int64"),
        "ts": pd.Series(times, dtype="datetime64[us, UTC]"),
    })  # fmt: skip
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=400)
    return frame


def test_ray_data_writes_the_same_rows_order_and_predictions_as_the_local_path(
    small: Project, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    many_rows(tmp_path / "in.parquet")
    local = score(
        small, "pit:1", tmp_path / "in.parquet", tmp_path / "local.parquet", chunk_rows=500, workers=1
    )
    remote = score(small, "pit:1", tmp_path / "in.parquet", tmp_path / "ray.parquet", chunk_rows=500,
                   executor=ray_cluster.executor)  # fmt: skip
    assert remote.rows == local.rows == 3_000 and remote.columns == local.columns
    assert remote.workers == 2  # the cluster's two CPUs, one actor each at most
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "local.parquet", "ray.parquet"]


def test_a_failing_batch_stops_the_job_and_leaves_the_old_output(
    small: Project, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"value": [1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0]})  # row 4 holds a null
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "out.parquet").write_bytes(b"the previous output")
    with pytest.raises(SignatureError, match="does not match the signature") as caught:
        score(small, "pit:1", tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=3,
              executor=ray_cluster.executor)  # fmt: skip
    assert [p.name for p in caught.value.problems] == ["value"]
    assert (tmp_path / "out.parquet").read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]
