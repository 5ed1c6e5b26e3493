"""Tensor features (embeddings): materialized from a dataset or pushed, served online whole, joined offline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from mloop.features.definitions import MAX_TENSOR_ELEMENTS
from tests.features.fixtures import T0

customer = ml.Entity("customer", join_keys=["customer_id"])
AT = T0 + timedelta(days=2)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """A project whose online store is SQLite, then Redis."""
    env: dict[str, str] = {}
    if request.param == "redis":
        try:
            import redis  # noqa: F401
        except ImportError:
            from tests.services import unavailable

            unavailable("the redis client is not installed (pip install 'mloop[redis]')")
        env["MLOOP_ONLINE_URL"] = request.getfixturevalue("redis_url")
    opened = Project.open(tmp_path, env=env)
    try:
        yield opened
    finally:
        opened.close()


def embeddings(n: int = 3, dim: int = 64) -> tuple[pd.DataFrame, np.ndarray]:
    vectors = np.random.default_rng(1).normal(size=(n, dim)).astype(np.float32)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "embedding": list(vectors),
        }
    )
    return frame, vectors


def ingest(project: Project, frame: pd.DataFrame, shape: tuple[int, ...]) -> None:
    schema = ml.Dataset(
        "profiles",
        columns=[
            ml.Column("customer_id", "int64"),
            ml.Column("ts", "timestamp"),
            ml.Column("embedding", "tensor", shape=shape, dtype="float32"),
        ],
        timestamp="ts",
    )
    project.data.ingest(frame, schema)


def test_an_embedding_materialized_from_a_dataset_is_served_online_whole(project: Project) -> None:
    frame, vectors = embeddings()
    ingest(project, frame, (64,))
    view = ml.FeatureView(
        "profile", entities=[customer], source=ml.DatasetSource(dataset="profiles"),
        features=[ml.Field("embedding", "float32", shape=(64,))],
    )  # fmt: skip
    project.apply([customer, view])
    project.features.materialize(T0 - timedelta(days=1), AT)
    online = project.features.online({"customer_id": [1, 3, 99]}, ["profile:embedding"], at=AT)
    got = online["embedding"]
    assert got[2] is None
    assert isinstance(got[0], list) and len(got[0]) == 64
    np.testing.assert_array_equal(np.asarray(got[0], np.float32), vectors[0])  # float32 exactly
    np.testing.assert_array_equal(np.asarray(got[1], np.float32), vectors[2])
    entity_df = pd.DataFrame({"customer_id": [2, 1], "event_timestamp": [AT, T0 - timedelta(hours=1)]})
    offline = project.features.historical(entity_df, ["profile:embedding"])
    np.testing.assert_array_equal(np.asarray(offline["embedding"][0], np.float32), vectors[1])
    assert offline["embedding"][1] is None  # no value before the first event: point in time


def test_a_multi_dimensional_tensor_feature_keeps_its_shape_online_and_offline(project: Project) -> None:
    frame, vectors = embeddings(2, 6)
    frame["embedding"] = [v.reshape(2, 3) for v in vectors]
    ingest(project, frame, (2, 3))
    view = ml.FeatureView(
        "profile", entities=[customer], source=ml.DatasetSource(dataset="profiles"),
        features=[ml.Field("embedding", "float32", shape=(2, 3))],
    )  # fmt: skip
    project.apply([customer, view])
    project.features.materialize(T0 - timedelta(days=1), AT)
    online = project.features.online({"customer_id": [2]}, ["profile:embedding"], at=AT)["embedding"][0]
    np.testing.assert_array_equal(np.asarray(online, np.float32), vectors[1].reshape(2, 3))
    entity_df = pd.DataFrame({"customer_id": [1], "event_timestamp": [AT]})
    offline = project.features.historical(entity_df, ["profile:embedding"])["embedding"][0]
    assert offline.shape == (2, 3)
    np.testing.assert_array_equal(offline, vectors[0].reshape(2, 3))


def test_a_pushed_embedding_is_readable_at_once_and_a_wrong_shape_is_refused(project: Project) -> None:
    source = ml.PushSource(
        "live_profiles",
        schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"), ml.Field("vec", "float32", shape=(4,))],
    )  # fmt: skip
    view = ml.FeatureView(
        "live", entities=[customer], source=source, features=[ml.Field("vec", "float32", shape=(4,))]
    )
    project.apply([customer, source, view])
    project.features.push("live_profiles", [{"customer_id": 7, "ts": T0, "vec": [0.5, 1, 2, 3]}])
    assert project.features.online({"customer_id": [7]}, ["live:vec"], at=AT)["vec"] == [[0.5, 1.0, 2.0, 3.0]]
    with pytest.raises(SchemaError, match=r"row 0: vec: shape \(3,\), expected shape \(4,\) of float32"):
        project.features.push("live_profiles", [{"customer_id": 8, "ts": T0, "vec": [1.0, 2.0, 3.0]}])


def test_a_tensor_feature_larger_than_the_limit_is_refused_with_the_limit() -> None:
    with pytest.raises(
        SchemaError, match=f"more than the {MAX_TENSOR_ELEMENTS} an online feature value may hold"
    ):
        ml.Field("embedding", "float32", shape=(MAX_TENSOR_ELEMENTS + 1,))
    with pytest.raises(SchemaError, match="no -1"):
        ml.Field("embedding", "float32", shape=(-1,))
    assert ml.Field("amount", "float64").spec() == {"name": "amount", "dtype": "float64"}  # hashes unchanged


def test_materializing_source_rows_of_another_size_is_refused_before_writing(
    project: Project, tmp_path: Path
) -> None:
    frame, _ = embeddings(2, 5)
    path = tmp_path / "profiles.parquet"
    frame.assign(embedding=[v.tolist() for v in frame["embedding"]]).to_parquet(path)
    view = ml.FeatureView(
        "profile", entities=[customer], source=ml.ParquetSource(str(path), timestamp="ts"),
        features=[ml.Field("embedding", "float32", shape=(4,))],
    )  # fmt: skip
    project.apply([customer, view])
    with pytest.raises(
        SchemaError, match=r"holds 4 values per row .* 2 source row\(s\) hold another number \(up to 5\)"
    ):
        project.features.materialize(T0 - timedelta(days=1), AT)
    assert project.features.online({"customer_id": [1]}, ["profile:embedding"], at=AT)["embedding"] == [None]
