"""Applying, versioning, diffing and deleting feature definitions (``project.features``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mloop as ml
from mloop import Project
from mloop._time import utcnow
from mloop.errors import PermissionDenied, SchemaError
from mloop.security import Actor, Grant
from mloop.store.schema import ModelVersionRow, RegisteredModelRow
from tests.features.fixtures import customer, ratio, transactions, views, write


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return write(transactions(), tmp_path / "txns.parquet")


def test_apply_records_versions_and_brings_entities_along(project: Project, path: Path) -> None:
    last, stats = views(path)
    result = project.apply([last, stats])
    assert [(c.kind, c.name, c.action, c.version) for c in result.changes] == [
        ("entity", "customer", "create", 1),
        ("feature_view", "customer_last", "create", 1),
        ("feature_view", "customer_stats", "create", 1),
    ]
    again = project.apply([last, stats])
    assert {c.action for c in again.changes} == {"unchanged"}
    stored = project.features.definitions()
    assert stored[("feature_view", "customer_stats")].spec["aggregations"][0]["name"] == "amount_mean_1h"
    events = project.audit.events(action="features.apply")
    assert len(events) == 1 and events[0].payload["changes"][0]["name"] == "customer"


def test_a_change_is_a_new_version_with_a_readable_diff(project: Project, path: Path) -> None:
    last, _ = views(path)
    project.apply([last])
    changed = ml.FeatureView(
        "customer_last", entities=[customer], source=last.source, ttl="1d",
        features=[ml.Field("amount", "float64"), ml.Field("merchant", "string")],
    )  # fmt: skip
    planned = project.features.plan([changed])
    change = next(c for c in planned.changes if c.name == "customer_last")
    assert change.action == "update" and change.version == 2
    assert "ttl: '2d' -> '1d'" in change.diff and "features: - country" in change.diff
    assert (
        project.features.definitions()[("feature_view", "customer_last")].version == 1
    )  # plan changes nothing
    project.apply([changed])
    assert project.features.definitions()[("feature_view", "customer_last")].version == 2
    assert project.features.get("customer_last").feature_names == ["amount", "merchant"]


def test_on_demand_views_are_checked_against_the_views_they_read(project: Project, path: Path) -> None:
    _, stats = views(path)
    project.apply([stats, ratio])
    loaded = project.features.get("amount_ratio")
    assert isinstance(loaded, ml.OnDemandView) and loaded.fn is not None  # rebuilt from its stored source
    bad = ml.OnDemandView("bad", inputs=["customer_stats:nope"], fn=ratio.fn, outputs=[ml.Field("x")])
    with pytest.raises(SchemaError, match="has no feature 'nope'"):
        project.apply([bad])


def test_deleting_what_others_depend_on_is_refused_with_the_list(project: Project, path: Path) -> None:
    _, stats = views(path)
    project.apply([stats, ratio])
    with pytest.raises(SchemaError, match="on-demand view amount_ratio"):
        project.features.delete("customer_stats")
    with pytest.raises(SchemaError, match="feature view customer_stats"):
        project.features.delete("customer", kind="entity")
    project.features.delete("amount_ratio", kind="on_demand_view")
    with project.store.write() as session:
        model = RegisteredModelRow(
            project_id=project._ctx.project_id, name="fraud", description="", created_at=utcnow()
        )
        session.add(model)
        session.flush()
        session.add(ModelVersionRow(
            model_id=model.id, version=3, run_id=None, artifact="0" * 64, flavour="lightgbm", signature={},
            metrics={}, lineage={"feature_views": [{"name": "customer_stats", "version": 1}]}, card={},
            stage="none", created_at=utcnow(), created_by="t",
        ))  # fmt: skip
    with pytest.raises(SchemaError, match="model fraud v3"):
        project.features.delete("customer_stats")


def test_a_view_applied_again_after_its_deletion_continues_its_versions(project: Project, path: Path) -> None:
    _, stats = views(path)
    project.apply([stats])
    project.features.delete("customer_stats")
    plan = project.apply([stats])  # it raised an IntegrityError: version 1 was taken by the deleted one
    assert [(c.name, c.action, c.version) for c in plan.changes if c.name == "customer_stats"] == [
        ("customer_stats", "create", 2)
    ]
    assert project.features.definitions()[("feature_view", "customer_stats")].version == 2


def test_applying_needs_features_write(sqlite_project: Project, path: Path) -> None:
    last, _ = views(path)
    auditor = sqlite_project.as_actor(Actor("eve", grants=(Grant("auditor"),)))
    with pytest.raises(PermissionDenied, match=r"features\.write"):
        auditor.apply([last])
    assert auditor.features.definitions() == {}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: ml.FeatureView("v", entities=[customer], source=ml.ParquetSource(p), features=[ml.Field("amount")]),
         "needs timestamp"),
        (lambda p: ml.FeatureView("v", entities=[], source=ml.ParquetSource(p, timestamp="ts"), features=[ml.Field("a")]),
         "needs entities"),
        (lambda p: ml.Aggregation("amount", "median", "1h"), "unknown function 'median'"),
        (lambda p: ml.Aggregation("amount", "sum", "1 fortnight"), "does not parse"),
        (lambda p: ml.FeatureView("Bad-Name", entities=[customer], source=ml.ParquetSource(p, timestamp="ts"),
                                  features=[ml.Field("amount")]), "not allowed"),
        (lambda p: ml.FeatureView("v", entities=[customer], source=ml.ParquetSource(p, timestamp="ts")),
         "defines no features"),
        (lambda p: ml.FeatureView("v", entities=[customer], source=ml.CsvSource(p, timestamp="ts"),
                                  features=[ml.Field("amount")]), "cannot read from CsvSource"),
    ],
)  # fmt: skip
def test_bad_definitions_say_what_to_fix(path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=message):
        make(str(path))
