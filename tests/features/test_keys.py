"""Typed join keys (issue 17, item 6): an online read with a key of the wrong type is refused, naming the
key, its type and the value's, before the store is asked; it used to answer as if the entity had no
features."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from mloop.features import keys
from mloop.features.definitions import spec_hash
from tests.features.fixtures import T0, at, customer, transactions, views, write


@pytest.fixture
def ready(sqlite_project: Project, tmp_path: Path) -> Project:
    last, stats = views(write(transactions(), tmp_path / "txns.parquet"))
    sqlite_project.apply([last, stats])
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    return sqlite_project


def test_an_integer_key_read_with_a_string_is_refused_before_the_lookup(ready: Project) -> None:
    # customer declares no dtype: the key's type comes from the Parquet source (int64).
    found = ready.features.online({"customer_id": [3]}, ["customer_last:amount"], at=at)
    assert found["amount"][0] is not None
    with pytest.raises(
        SchemaError, match=r"Join key 'customer_id' must be an integer \(int64\), got string 'abc'"
    ):
        ready.features.online({"customer_id": ["abc"]}, ["customer_last:amount"], at=at)
    with pytest.raises(SchemaError, match=r"got string '3'"):  # the text of a number is not the number
        ready.features.online({"customer_id": ["3"]}, ["customer_last:amount"], at=at)
    with pytest.raises(SchemaError, match=r"got boolean True \(row 1\)"):
        ready.features.online({"customer_id": [3, True]}, ["customer_last:amount"], at=at)
    with pytest.raises(SchemaError, match="Join key 'customer_id' holds a number out of the range of int64"):
        ready.features.online({"customer_id": [2**63]}, ["customer_last:amount"], at=at)
    # A whole JSON number is that integer.
    assert (
        ready.features.online({"customer_id": [3.0]}, ["customer_last:amount"], at=at)["amount"]
        == found["amount"]
    )


def test_a_declared_string_key_refuses_numbers(sqlite_project: Project, tmp_path: Path) -> None:
    frame = transactions().assign(customer_id=lambda f: "c" + f.customer_id.astype(str))
    source = ml.ParquetSource(str(write(frame, tmp_path / "t.parquet")), timestamp="ts")
    account = ml.Entity("account", join_keys=["customer_id"], dtype="str")
    view = ml.FeatureView("accounts", entities=[account], source=source, ttl="30d",
                          features=[ml.Field("amount", "float64")])  # fmt: skip
    sqlite_project.apply([view])
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    assert (
        sqlite_project.features.online({"customer_id": ["c3"]}, ["accounts:amount"], at=at)["amount"][0]
        is not None
    )
    with pytest.raises(SchemaError, match=r"Join key 'customer_id' must be a string, got integer 3"):
        sqlite_project.features.online({"customer_id": [3]}, ["accounts:amount"], at=at)


def test_a_push_source_gives_its_key_type(sqlite_project: Project) -> None:
    source = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int32"), ml.Field("ts", "timestamp"),
                                             ml.Field("page", "string")])  # fmt: skip
    sqlite_project.apply(
        [ml.FeatureView("clicks", entities=[customer], source=source, features=[ml.Field("page", "string")])]
    )
    sqlite_project.features.push(
        "clicks", [{"customer_id": 7, "ts": pd.Timestamp.now(tz="UTC"), "page": "home"}]
    )
    assert sqlite_project.features.online({"customer_id": [7]}, ["clicks:page"]) == {
        "customer_id": [7],
        "page": ["home"],
    }
    with pytest.raises(
        SchemaError, match=r"Join key .customer_id. (holds a number out of the range of|does not hold) int32"
    ):
        sqlite_project.features.online({"customer_id": [2**40]}, ["clicks:page"])


def test_entity_dtype_forms_and_errors() -> None:
    assert ml.Entity("c", ["c_id"], dtype="int").key_types == {"c_id": "int64"}
    both = ml.Entity("store", ["country", "store_id"], dtype={"country": "string", "store_id": "int64"})
    assert both.key_types == {"country": "string", "store_id": "int64"}
    assert ml.Entity("c", ["c_id"]).key_types == {}
    with pytest.raises(
        SchemaError,
        match="join key 'c_id' cannot be of type 'float64'; a join key is one of int32, int64, string",
    ):
        ml.Entity("c", ["c_id"], dtype="float64")
    with pytest.raises(SchemaError, match="one type for its join key"):
        ml.Entity("store", ["country", "store_id"], dtype={"country": "string"})


def test_an_entity_without_dtype_keeps_its_spec_and_hash() -> None:
    """Definitions applied before typed keys existed are unchanged: re-applying them records nothing."""
    before = {"name": "customer", "join_keys": ["customer_id"], "description": ""}
    assert customer.spec() == before and spec_hash(customer.spec()) == spec_hash(before)
    typed = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
    assert typed.spec() == {**before, "dtypes": {"customer_id": "int64"}}


def test_reapplying_a_typed_entity_records_no_new_version(sqlite_project: Project, tmp_path: Path) -> None:
    typed = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
    source = ml.ParquetSource(str(write(transactions(), tmp_path / "t.parquet")), timestamp="ts")
    view = ml.FeatureView("v", entities=[typed], source=source, features=[ml.Field("amount", "float64")])
    assert [c.action for c in sqlite_project.apply([view]).changes] == ["create", "create"]
    assert [c.action for c in sqlite_project.apply([view]).changes] == ["unchanged", "unchanged"]
    stored = sqlite_project.features.get("v")
    assert stored.entities[0].key_types == {"customer_id": "int64"}  # type: ignore[union-attr]


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**40), 2**40).map(float)))
def test_integers_and_whole_numbers_pass_an_int64_key(value: int | float) -> None:
    keys.check({"k": [value]}, {"k": "int64"})


@given(st.one_of(st.text(), st.booleans(), st.floats().filter(lambda f: not f.is_integer()),
                 st.integers().filter(lambda i: not -(2**63) <= i < 2**63)))  # fmt: skip
def test_anything_else_is_refused_by_an_int64_key(value: object) -> None:
    with pytest.raises(SchemaError, match="Join key 'k'"):
        keys.check({"k": [value]}, {"k": "int64"})


@given(st.one_of(st.integers(), st.floats(), st.booleans()))
def test_a_string_key_takes_only_strings(value: object) -> None:
    keys.check({"k": ["abc", None]}, {"k": "string"})
    with pytest.raises(SchemaError, match="must be a string"):
        keys.check({"k": [value]}, {"k": "string"})
