"""Tensor columns: declared, checked row by row on ingestion, stored as Arrow tensors/lists, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import mloop as ml
from mloop import Column, Dataset, Project
from mloop.data import tensors
from mloop.errors import SchemaError
from tests.data.helpers import fresh_name, ingesting

ELEMENTS = ["float32", "float64", "int32", "int64", "uint8", "bool"]


def images(
    name: str, shape: tuple[int, ...] = (1, 4, 4), dtype: str = "float32", **options: object
) -> Dataset:
    return Dataset(
        name,
        columns=[Column("id", "int64"), Column("image", "tensor", shape=shape, dtype=dtype, **options)],
        key="id",
    )


def batch(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, n: int) -> np.ndarray:
    if dtype == "bool":
        return rng.random((n, *shape)) > 0.5
    if dtype.startswith("float"):
        return rng.normal(size=(n, *shape)).astype(dtype)
    return rng.integers(0, 100, size=(n, *shape)).astype(dtype)


# ---- the schema ----------------------------------------------------------------------------------------


def test_the_issue_spelling_declares_a_tensor_with_its_element_type() -> None:
    column = ml.Column("image", "tensor", shape=(1, 28, 28), dtype="float32")
    assert (column.dtype, column.element, column.shape, column.fixed) == (
        "tensor",
        "float32",
        (1, 28, 28),
        True,
    )
    sequence = ml.Column("readings", "tensor", shape=(-1, 3), dtype="float64")
    assert sequence.shape == (-1, 3) and not sequence.fixed


@given(
    shape=st.one_of(
        st.lists(st.integers(1, 64), min_size=1, max_size=4),
        st.lists(st.integers(1, 8), min_size=0, max_size=2).map(lambda rest: [-1, *rest]),
    ),
    element=st.sampled_from(ELEMENTS),
    nullable=st.booleans(),
    finite=st.booleans(),
)
def test_a_tensor_schema_survives_yaml(
    tmp_path_factory: pytest.TempPathFactory, shape: list[int], element: str, nullable: bool, finite: bool
) -> None:
    dataset = Dataset(
        "t",
        columns=[
            Column("id", "int64"),
            Column(
                "x", "tensor", shape=tuple(shape), dtype=element, nullable=nullable, allow_non_finite=finite
            ),
        ],
        key="id",
    )
    path = tmp_path_factory.mktemp("yaml") / "schema.yaml"
    path.write_text(dataset.to_yaml())
    assert Dataset.from_yaml(path) == dataset
    assert Dataset.from_dict(dataset.to_dict()) == dataset


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs shape="),
        ({"shape": ()}, "needs shape="),
        ({"shape": (0, 3)}, "positive sizes"),
        ({"shape": (3, -1)}, "first dimension only"),
        ({"shape": (-2,)}, "positive sizes"),
        ({"shape": (3,), "min": 0}, "min do not apply to tensor"),
        ({"shape": (3,), "regex": "a"}, "regex do not apply to tensor"),
        ({"shape": (3,), "dtype": "string"}, "unknown tensor element type"),
    ],
)
def test_a_wrong_tensor_declaration_says_what_to_write(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Column("x", "tensor", **options)  # type: ignore[arg-type]


def test_a_shape_on_a_scalar_column_points_to_the_tensor_spelling() -> None:
    with pytest.raises(ValidationError, match=r"shape applies to tensor columns.*'tensor', shape=\(64,\)"):
        Column("embedding", "float32", shape=(64,))


def test_a_key_cannot_be_a_tensor() -> None:
    with pytest.raises(ValidationError, match="key must be a scalar column"):
        Dataset("t", columns=[Column("x", "tensor", shape=(2,))], key="x")


# ---- ingest and read back ------------------------------------------------------------------------------


@ingesting
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    element=st.sampled_from(ELEMENTS),
    n=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_fixed_shape_tensors_round_trip_exactly(
    sqlite_project: Project, shape: tuple[int, ...], element: str, n: int, seed: int
) -> None:
    values = batch(np.random.default_rng(seed), shape, element, n)
    name = fresh_name("img")
    report = sqlite_project.data.ingest(
        pd.DataFrame({"id": np.arange(n), "image": list(values)}), images(name, shape, element)
    )
    assert (report.rows_accepted, report.rows_quarantined) == (n, 0)
    back = sqlite_project.data.tensor(name, "image")
    assert back.dtype == np.dtype(element) and back.shape == (n, *shape)
    np.testing.assert_array_equal(back, values)
    frame = sqlite_project.data.read(name)
    np.testing.assert_array_equal(np.stack(frame["image"].to_numpy()), values)


@ingesting
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=20),
    width=st.integers(1, 4),
    element=st.sampled_from(["float32", "int64"]),
)
def test_variable_length_sequences_round_trip_row_by_row(
    sqlite_project: Project, lengths: list[int], width: int, element: str
) -> None:
    rng = np.random.default_rng(len(lengths))
    rows = [batch(rng, (width,), element, k) for k in lengths]
    name = fresh_name("seq")
    dataset = Dataset(
        name,
        columns=[Column("id", "int64"), Column("s", "tensor", shape=(-1, width), dtype=element)],
        key="id",
    )
    report = sqlite_project.data.ingest(pd.DataFrame({"id": range(len(rows)), "s": rows}), dataset)
    assert report.rows_accepted == len(rows)
    back = sqlite_project.data.read(name)["s"].tolist()
    for got, want in zip(back, rows, strict=True):
        assert got.dtype == np.dtype(element) and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_stored_as_the_arrow_fixed_shape_tensor_type_and_read_zero_copy(sqlite_project: Project) -> None:
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    report = sqlite_project.data.ingest(
        pd.DataFrame({"id": [0, 1], "image": list(values)}), images("stored", (3, 4))
    )
    stored = pq.read_table(report.files[0])["image"]
    assert stored.type == pa.fixed_shape_tensor(pa.float32(), (3, 4))
    assert stored.chunk(0).to_numpy_ndarray().shape == (2, 3, 4)
    out = tensors.to_numpy(images("x", (3, 4)).column("image"), stored)
    assert not out.flags.owndata  # a view of Arrow's buffer, not a copy
    sequences = Dataset(
        "seqs", columns=[Column("id", "int64"), Column("s", "tensor", shape=(-1, 2))], key="id"
    )
    report = sqlite_project.data.ingest(pd.DataFrame({"id": [0], "s": [np.ones((3, 2))]}), sequences)
    assert pq.read_table(report.files[0])["s"].type == pa.list_(pa.list_(pa.float32(), 2))


def test_bad_rows_are_quarantined_with_the_column_and_the_expected_and_got_shapes(
    sqlite_project: Project,
) -> None:
    good = np.zeros((1, 4, 4), np.float32)
    nan = good.copy()
    nan[0, 1, 1] = np.nan
    cells = [good, good.reshape(4, 4), None, nan, [[[1.0] * 4] * 4], [[[1.0] * 4] * 3 + [[1.0] * 3]], "text"]
    frame = pd.DataFrame({"id": range(len(cells)), "image": cells})
    report = sqlite_project.data.ingest(frame, images("bad", nullable=False))
    assert (report.rows_accepted, report.rows_quarantined) == (2, 5)
    reasons = dict(zip(*[sqlite_project.data.quarantine("bad")[c] for c in ("id", "_reason")], strict=True))
    expected = "expected shape (1, 4, 4) of float32"
    assert reasons == {
        1: f"image: shape (4, 4), {expected}",
        2: "image: missing value (column may not be null)",
        3: "image: not finite (NaN or infinity), set allow_non_finite to keep them",
        5: f"image: ragged nested list, {expected}",
        6: f"image: not a nested list of numbers, {expected}",
    }
    assert sum(report.by_reason.values()) == 5
    read = sqlite_project.data.tensor("bad", "image")
    assert read.shape == (2, 1, 4, 4)


def test_values_that_do_not_fit_the_element_type_are_quarantined(sqlite_project: Project) -> None:
    cells = [np.array([1.0, 2.0]), np.array([1.5, 2.0]), np.array([300, 1]), np.array([True, False])]
    frame = pd.DataFrame({"id": range(4), "x": [np.asarray(c, dtype=np.float64) for c in cells]})
    dataset = Dataset(
        "bytes", columns=[Column("id", "int64"), Column("x", "tensor", shape=(2,), dtype="uint8")], key="id"
    )
    report = sqlite_project.data.ingest(frame, dataset)
    assert report.rows_accepted == 2
    assert report.by_reason == {"x: float64 values not whole numbers within uint8": 2}
    flags = Dataset(
        "flags", columns=[Column("id", "int64"), Column("x", "tensor", shape=(2,), dtype="bool")], key="id"
    )
    report = sqlite_project.data.ingest(pd.DataFrame({"id": [0], "x": [np.array([1, 0])]}), flags)
    assert report.by_reason == {"x: int64 values, expected bool": 1}


def test_non_finite_values_pass_where_the_column_allows_them(sqlite_project: Project) -> None:
    frame = pd.DataFrame({"id": [0], "image": [np.full((1, 4, 4), np.inf, np.float32)]})
    report = sqlite_project.data.ingest(frame, images("inf", allow_non_finite=True))
    assert report.rows_accepted == 1 and np.isinf(sqlite_project.data.tensor("inf", "image")).all()


def test_a_parquet_file_with_a_tensor_column_and_a_list_column_ingests(
    sqlite_project: Project, tmp_path: Path
) -> None:
    values = np.random.default_rng(0).random((5, 2, 3)).astype(np.float32)
    path = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(range(5), pa.int64()),
                "image": pa.FixedShapeTensorArray.from_numpy_ndarray(values),
                "seq": pa.array([[1, 2], [3], [], [4, 5, 6], None], pa.list_(pa.int64())),
            }
        ),
        path,
    )
    dataset = Dataset(
        "pq",
        columns=[
            Column("id", "int64"),
            Column("image", "tensor", shape=(2, 3)),
            Column("seq", "tensor", shape=(-1,), dtype="int32"),
        ],
        key="id",
    )
    report = sqlite_project.data.ingest(path, dataset)
    assert report.rows_accepted == 5
    np.testing.assert_array_equal(sqlite_project.data.tensor("pq", "image"), values)
    sequences = sqlite_project.data.read("pq")["seq"].tolist()
    assert [None if s is None else s.tolist() for s in sequences] == [[1, 2], [3], [], [4, 5, 6], None]


def test_tensors_in_csv_cells_are_json_lists(sqlite_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,x\n0,"[1, 2, 3]"\n1,"[1, 2]"\n2,"[1, oops]"\n')
    dataset = Dataset("csv", columns=[Column("id", "int64"), Column("x", "tensor", shape=(3,))], key="id")
    report = sqlite_project.data.ingest(path, dataset)
    assert report.rows_accepted == 1
    assert set(report.by_reason) == {
        "x: shape (2,), expected shape (3,) of float32",
        "x: not a nested list of numbers, expected shape (3,) of float32",
    }


def test_a_first_ingestion_infers_tensor_columns(sqlite_project: Project) -> None:
    frame = pd.DataFrame(
        {
            "id": [0, 1],
            "image": list(np.ones((2, 2, 2), np.float32)),
            "seq": [np.ones((1, 3)), np.ones((4, 3))],
        }
    )
    sqlite_project.data.ingest(frame, "inferred")
    schema = sqlite_project.data.schema("inferred")
    assert schema.column("image") == Column("image", "tensor", shape=(2, 2), dtype="float32")
    assert schema.column("seq").shape == (-1, 3) and schema.column("seq").element == "float64"


def test_tensor_refuses_a_variable_length_column_and_null_rows(sqlite_project: Project) -> None:
    dataset = Dataset(
        "mixed",
        columns=[
            Column("id", "int64"),
            Column("s", "tensor", shape=(-1,)),
            Column("v", "tensor", shape=(2,)),
        ],
        key="id",
    )
    sqlite_project.data.ingest(
        pd.DataFrame({"id": [0, 1], "s": [[1.0], [2.0]], "v": [[1.0, 2.0], None]}), dataset
    )
    with pytest.raises(SchemaError, match="not a fixed-shape tensor.*project.data.read"):
        sqlite_project.data.tensor("mixed", "s")
    with pytest.raises(SchemaError, match="1 null row"):
        sqlite_project.data.tensor("mixed", "v")
    assert sqlite_project.data.tensor("mixed", "v", limit=1).shape == (1, 2)


def test_tensor_rows_land_in_their_date_partitions(sqlite_project: Project) -> None:
    ts = pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-02"], utc=True)
    dataset = Dataset(
        "dated",
        columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("x", "tensor", shape=(2,))],
        key="id",
        timestamp="ts",
    )
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    report = sqlite_project.data.ingest(pd.DataFrame({"id": [0, 1, 2], "ts": ts, "x": list(values)}), dataset)
    assert sorted(Path(f).parent.name for f in report.files) == ["_date=2024-01-01", "_date=2024-01-02"]
    assert report.min_ts is not None and report.min_ts.isoformat().startswith("2024-01-01")
    frame = sqlite_project.data.read("dated", start=ts[0].to_pydatetime())
    assert sorted(frame["id"]) == [0, 2]
    by_id = {i: x.tolist() for i, x in zip(frame["id"], frame["x"], strict=True)}
    assert by_id == {0: [0.0, 1.0], 2: [4.0, 5.0]}
