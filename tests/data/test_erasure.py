"""Erasure in a Parquet file: exactly the rows holding the value go; the file is replaced whole."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mloop.crypto import PLAIN
from mloop.data.erasure import column_equals, equals, filter_file

keys = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "3", " 3"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ints=st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=0, max_size=20),
    value=keys,
    as_text=st.booleans(),
)
@example(ints=[3, 3, None], value=" 3", as_text=False)
@example(ints=[3, -3], value="3", as_text=True)
def test_only_the_rows_holding_the_value_go(
    tmp_path: Path, ints: list[int | None], value: object, as_text: bool
) -> None:
    path = tmp_path / "part.parquet"
    column = (
        pa.array([None if i is None else str(i) for i in ints]) if as_text else pa.array(ints, pa.int64())
    )
    table = pa.table({"customer_id": column, "position": list(range(len(ints)))})
    pq.write_table(table, path)
    removed, left = filter_file(path, column_equals("customer_id", value), dry_run=False, parquet=PLAIN)
    after = pq.read_table(path)
    wanted = str(value)
    kept = [p for p, i in zip(range(len(ints)), ints, strict=True) if i is None or str(i) != wanted]
    assert after["position"].to_pylist() == kept
    assert removed == len(ints) - len(kept) and left == len(kept)
    assert after.schema == table.schema
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_dry_run_and_a_file_without_the_value_are_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"customer_id": [1, 2, 3]}), path)
    stamp = path.stat().st_mtime_ns
    assert filter_file(path, column_equals("customer_id", 2), dry_run=True, parquet=PLAIN) == (1, 2)
    assert filter_file(path, column_equals("customer_id", 9), dry_run=False, parquet=PLAIN) == (0, 3)
    assert filter_file(path, column_equals("absent", 2), dry_run=False, parquet=PLAIN) == (0, 3)
    assert path.stat().st_mtime_ns == stamp


def test_text_that_is_no_number_matches_no_integer() -> None:
    assert equals(pa.array([1, 2], pa.int64()), "abc").to_pylist() == [False, False]
    assert equals(pa.array([1.0, 2.5]), "2.5").to_pylist() == [False, True]
    assert equals(pa.array([1, 2], pa.int64()), "2.0").to_pylist() == [False, True]
