"""PII tags: on columns, fields and entities; old specs keep their hashes; reasons and the log hide values."""

from __future__ import annotations

import pandas as pd

import mloop as ml
from mloop import Project
from mloop.features.definitions import spec_hash


def test_an_untagged_definition_keeps_its_stored_spec_and_hash() -> None:
    field = ml.Field("amount", "float64")
    assert field.spec() == {"name": "amount", "dtype": "float64"}
    assert ml.Field("email", "string", pii=True).spec()["pii"] is True
    entity = ml.Entity("customer", join_keys=["customer_id"])
    assert "pii" not in entity.spec()
    assert spec_hash(entity.spec()) != spec_hash(
        ml.Entity("customer", join_keys=["customer_id"], pii=True).spec()
    )
    column = ml.Dataset("t", columns=[ml.Column("a", "int64")]).to_dict()["columns"][0]
    assert column == {"name": "a", "dtype": "int64"}


def test_pii_inputs_gather_every_tag_of_the_project(sqlite_project: Project) -> None:
    schema = ml.Dataset("people", columns=[ml.Column("email", "string", pii=True), ml.Column("age", "int64")])
    sqlite_project.data.ingest(pd.DataFrame({"email": ["a@b.c"], "age": [3]}), schema)
    customer = ml.Entity("customer", join_keys=["customer_id"], pii=True)
    clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                             ml.Field("phone", "string", pii=True)])  # fmt: skip
    view = ml.FeatureView(
        "last", entities=[customer], source=clicks, features=[ml.Field("phone", "string", pii=True)]
    )
    sqlite_project.apply([customer, clicks, view])
    assert sqlite_project.privacy.pii_inputs() == {"email", "customer_id", "phone"}
    assert sqlite_project.data.schema("people").pii == ["email"]
    assert sqlite_project.features.get("last").features[0].pii  # type: ignore[union-attr]


def test_a_quarantine_reason_of_a_pii_column_shows_no_value(sqlite_project: Project) -> None:
    schema = ml.Dataset("people", columns=[
        ml.Column("id", "int64"),
        ml.Column("email", "string", pii=True, allowed=["alice@example.com"]),
        ml.Column("city", "string", allowed=["Paris"]),
    ])  # fmt: skip
    frame = pd.DataFrame(
        {"id": [1, 2], "email": ["bob@example.com", "alice@example.com"], "city": ["Paris", "Rome"]}
    )
    sqlite_project.data.ingest(frame, schema)
    reasons = " ".join(sqlite_project.data.quarantine("people")["_reasons"])
    assert "email: not one of the allowed values (***)" in reasons
    assert "alice@example.com" not in reasons
    assert "city: not one of the allowed values (Paris)" in reasons  # untagged columns are as before
