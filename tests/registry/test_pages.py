"""Pages of the registry for lists that grow (the dashboard's tables) and a version's lineage graph."""

from __future__ import annotations

from mloop import Project
from mloop._time import utcnow
from mloop.store.schema import FeatureDefinitionRow
from tests.models.cases import Case


def test_models_and_versions_page_in_the_database_and_count(project: Project, clf: Case) -> None:
    for name in ("gamma", "alpha", "beta"):
        project.models.register(name, clf.model)
    for _ in range(3):
        project.models.register("alpha", clf.model)
    assert project.models.count() == 3
    assert [m.name for m in project.models.list(offset=1, limit=1)] == ["beta"]
    assert [m.name for m in project.models.list(offset=2, limit=5)] == ["gamma"]
    assert project.models.list(offset=0, limit=1)[0].latest_version == 4
    newest = project.models.list_versions("alpha", offset=1, limit=2, newest_first=True)
    assert [v.version for v in newest] == [3, 2]
    assert [v.version for v in project.models.list_versions("alpha", limit=2)] == [1, 2]
    project.models.delete_version("alpha", 4)
    assert project.models.count_versions("alpha") == 3
    assert project.models.count_versions("alpha", include_deleted=True) == 4


def test_lineage_reads_the_views_at_the_versions_the_model_trained_on(project: Project, clf: Case) -> None:
    with project.store.write() as session:  # view v1 read dataset txn; v2 (applied later) reads txn_v2
        for number, dataset in ((1, "txn"), (2, "txn_v2")):
            session.add(FeatureDefinitionRow(
                project_id=project._ctx.project_id, kind="feature_view", name="stats", version=number,
                spec={"source": {"type": "dataset", "dataset": dataset, "timestamp": "ts"}}, spec_hash=str(number),
                created_at=utcnow(), created_by="t", deleted_at=None,
            ))  # fmt: skip
    run = "r" * 32
    v = project.models.register("fraud", clf.model, lineage={
        "run_id": run, "run": {"experiment": "fraud"},
        "feature_views": [{"name": "stats", "kind": "feature_view", "version": 1}],
        "training_set_fingerprint": "abc123", "data_time_range": ["2026-01-01T00:00", "2026-02-01T00:00"],
    })  # fmt: skip
    graph = project.models.lineage("fraud", v.version)
    assert [n.label for n in graph.column("dataset")] == ["txn"]
    assert [n.label for n in graph.column("feature_view")] == ["stats v1"]
    assert graph.column("training_set")[0].detail == "2026-01-01 to 2026-02-01"
    assert set(graph.edges) == {("dataset:txn", "feature_view:stats"), ("feature_view:stats", "training_set"),
                                ("training_set", f"run:{run}"), (f"run:{run}", "version:1")}  # fmt: skip
    bare = project.models.register("fraud", clf.model)
    assert [n.kind for n in project.models.lineage("fraud", bare.version).nodes] == ["version"]
