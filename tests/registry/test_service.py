"""The model registry, on every metadata backend: register, read, load, aliases, stages, delete."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from mloop import Project
from mloop.errors import AlreadyExists, IntegrityError, MloopError, NotFound, PermissionDenied
from mloop.models import SignatureError
from mloop.store.schema import EventRow, ModelVersionRow, RegisteredModelRow
from tests.models.cases import Case
from tests.registry.conftest import as_user, make_run


def events(project: Project, action: str = "models.*") -> list:
    return project.audit.events(action=action)


def count(project: Project, table: type) -> int:
    with project.store.read() as session:
        return session.scalar(select(func.count()).select_from(table))


# ---- register -------------------------------------------------------------------------------------------


def test_registering_numbers_versions_and_writes_one_event_each(
    project: Project, clf: Case, pipe: Case
) -> None:
    first = project.models.register("fraud", clf.model, input_example=clf.frame, description="Fraud scores")
    second = project.models.register("fraud", pipe.model, input_example=pipe.frame)
    other = project.models.register("churn", clf.model)
    assert [first.version, second.version, other.version] == [1, 2, 1]
    assert (first.flavour, second.flavour) == ("lightgbm", "sklearn")
    assert (first.stage, first.aliases, first.created_by) == ("none", [], "local-admin")
    assert first.signature is not None and first.signature.names == list(clf.frame.columns)
    assert first.description == "Fraud scores"
    assert first.lineage["model"]["type"] == "lightgbm.sklearn.LGBMClassifier"
    assert project.artifacts.exists(first.artifact)
    registered = events(project, "models.register")
    assert [(e.resource, e.payload["version"]) for e in registered] == [
        ("model:fraud", 1),
        ("model:fraud", 2),
        ("model:churn", 1),
    ]
    assert registered[0].payload["artifact"] == first.artifact and registered[0].actor == "local-admin"


def test_the_same_model_twice_is_stored_once(project: Project, clf: Case) -> None:
    a = project.models.register("fraud", clf.model)
    b = project.models.register("fraud", clf.model)
    assert (a.version, b.version) == (1, 2) and a.artifact == b.artifact


def test_metrics_and_lineage_come_from_the_run_merged_with_what_is_given(project: Project, clf: Case) -> None:
    run_id = make_run(
        project, metrics={"auc": 0.93, "logloss": 0.2}, params={"num_leaves": "7"},
        info={"git_commit": "abc123", "fingerprint": "f" * 16},
    )  # fmt: skip
    given = {"feature_views": {"customer_txn_stats": 3}, "data_time_range": ["2024-01-01", "2024-03-31"]}
    version = project.models.register("fraud", clf.model, run_id=run_id, lineage=given)
    assert version.run_id == run_id
    assert version.metrics == {"auc": 0.93, "logloss": 0.2}
    lineage = version.lineage
    assert (lineage["run_id"], lineage["git_commit"], lineage["training_set_fingerprint"]) == (
        run_id,
        "abc123",
        "f" * 16,
    )
    assert lineage["params"] == {"num_leaves": "7"} and lineage["feature_views"] == {"customer_txn_stats": 3}
    assert lineage["run"]["experiment"].startswith("exp-")
    explicit = project.models.register("fraud", clf.model, run_id=run_id, metrics={"auc": 0.5})
    assert explicit.metrics == {"auc": 0.5}


def test_an_unknown_run_is_refused(project: Project, clf: Case) -> None:
    with pytest.raises(NotFound, match="No run 'nope'"):
        project.models.register("fraud", clf.model, run_id="nope")
    assert count(project, ModelVersionRow) == 0


def test_an_example_that_does_not_fit_the_given_signature_is_refused(
    project: Project, clf: Case, pipe: Case
) -> None:
    signature = project.models.register("fraud", clf.model, input_example=clf.frame).signature
    with pytest.raises(SignatureError, match="input example does not match"):
        project.models.register(
            "fraud", clf.model, signature=signature, input_example=clf.frame.drop(columns="amount")
        )


@pytest.mark.parametrize("name", ["", "has space", "-lead", "x" * 201, "a/b"])
def test_bad_model_names_are_refused(sqlite_project: Project, clf: Case, name: str) -> None:
    with pytest.raises(MloopError, match="is not allowed"):
        sqlite_project.models.register(name, clf.model)


def test_registering_needs_models_register(project: Project, clf: Case) -> None:
    auditor = as_user(project, "eve", "auditor")
    with pytest.raises(PermissionDenied, match=r"may not models.register on model:fraud"):
        auditor.models.register("fraud", clf.model)


# ---- nothing half-registered ---------------------------------------------------------------------------


def test_a_failing_artifact_store_registers_nothing(
    project: Project, clf: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(project.artifacts, "put_file", broken)
    with pytest.raises(OSError, match="disk full"):
        project.models.register("fraud", clf.model)
    assert (count(project, RegisteredModelRow), count(project, ModelVersionRow)) == (0, 0)
    assert events(project) == []


def test_a_failing_database_write_registers_nothing(
    project: Project, clf: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.security import audit_chain

    real = audit_chain.append

    def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(audit_chain, "append", failing)
    with pytest.raises(RuntimeError, match="connection lost"):
        project.models.register("fraud", clf.model)
    monkeypatch.setattr(audit_chain, "append", real)
    assert (count(project, RegisteredModelRow), count(project, ModelVersionRow)) == (0, 0)
    assert count(project, EventRow) == len(project.audit.events())  # no event without its change
    assert project.models.register("fraud", clf.model).version == 1
    assert project.audit.verify().ok


# ---- read and load --------------------------------------------------------------------------------------


def test_get_latest_by_version_and_by_alias(project: Project, clf: Case) -> None:
    for _ in range(3):
        project.models.register("fraud", clf.model)
    project.models.set_alias("fraud", "champion", 2)
    assert project.models.get("fraud").version == 3
    assert project.models.get("fraud", alias="latest").version == 3
    assert project.models.get("fraud", 1).version == 1
    champion = project.models.get("fraud", alias="champion")
    assert (champion.version, champion.aliases) == (2, ["champion"])
    with pytest.raises(MloopError, match="not both"):
        project.models.get("fraud", 1, alias="champion")


def test_unknown_names_versions_and_aliases_list_what_exists(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model)
    project.models.register("fraud", clf.model)
    project.models.set_alias("fraud", "challenger", 2)
    with pytest.raises(NotFound, match=r"No model named 'frod'.*models: fraud"):
        project.models.get("frod")
    with pytest.raises(NotFound, match="has no version 7; versions: 1, 2"):
        project.models.get("fraud", 7)
    with pytest.raises(
        NotFound, match=r"has no alias 'champion'; aliases: challenger -> 2\..*alias fraud champion"
    ):
        project.models.load("fraud", alias="champion")


def test_list_summarises_every_model(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model, description="card fraud")
    project.models.register("fraud", clf.model)
    project.models.register("churn", clf.model)
    project.models.set_alias("fraud", "champion", 1)
    project.models.promote("fraud", 2, to="production")
    summary = {m.name: m for m in project.models.list()}
    assert list(summary) == ["churn", "fraud"]
    fraud = summary["fraud"]
    assert (fraud.latest_version, fraud.versions, fraud.production, fraud.aliases) == (
        2,
        2,
        2,
        {"champion": 1},
    )
    assert fraud.description == "card fraud"
    assert [v.version for v in project.models.list_versions("fraud")] == [1, 2]


def test_load_predicts_like_the_model_and_checks_inputs(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model, input_example=clf.frame)
    loaded = project.models.load("fraud")
    assert (loaded.name, loaded.version, type(loaded.model)) == ("fraud", 1, type(clf.model))
    assert np.array_equal(loaded.predict(clf.frame), clf.expected)
    assert np.array_equal(loaded.predict(clf.frame.iloc[0].to_dict()), clf.expected[:1])
    bad = clf.frame.drop(columns="amount").assign(score="high")
    with pytest.raises(SignatureError) as exc:
        loaded.predict(bad)
    assert (
        str(exc.value).splitlines()[0]
        == "The input does not match the signature of model 'fraud' version 1 (2 fields):"
    )
    assert {p.name for p in exc.value.problems} == {"amount", "score"}


@pytest.mark.slow
def test_a_fresh_process_loads_the_same_predictions(project: Project, pipe: Case, tmp_path) -> None:
    project.models.register("fraud", pipe.model, input_example=pipe.frame)
    pipe.frame.to_parquet(tmp_path / "x.parquet")
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd
        from mloop import Project
        with Project.open({str(project.root)!r}, env={{}}, metadata_url={project.settings.metadata_url!r}) as p:
            np.save({str(tmp_path / "y.npy")!r}, p.models.load("fraud").predict(pd.read_parquet({str(tmp_path / "x.parquet")!r})))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), pipe.expected)


def test_a_corrupted_model_blob_is_refused_naming_it(project: Project, clf: Case) -> None:
    version = project.models.register("fraud", clf.model)
    blob = project.root / ".mloop" / "artifacts" / project.artifacts.key(version.artifact)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as exc:
        project.models.load("fraud", 1)
    message = str(exc.value)
    assert "Model 'fraud' version 1 cannot be loaded" in message
    assert f"sha256:{version.artifact}" in message and "is corrupt" in message
    assert "register the model again" in message


# ---- aliases --------------------------------------------------------------------------------------------


def test_aliases_set_move_and_delete_each_one_event(project: Project, clf: Case) -> None:
    for _ in range(2):
        project.models.register("fraud", clf.model)
    project.models.set_alias("fraud", "champion", 1)
    project.models.set_alias("fraud", "champion", 1)  # already so: no change, no event
    project.models.set_alias("fraud", "champion", 2)
    project.models.set_alias("fraud", "challenger", 1)
    assert project.models.get("fraud", 1).aliases == ["challenger"]
    project.models.delete_alias("fraud", "challenger")
    assert [e.payload for e in events(project, "models.alias")] == [
        {"alias": "champion", "version": 1, "previous": None},
        {"alias": "champion", "version": 2, "previous": 1},
        {"alias": "challenger", "version": 1, "previous": None},
        {"alias": "challenger", "version": None, "previous": 1},
    ]
    with pytest.raises(NotFound, match="no alias 'challenger'; aliases: champion -> 2"):
        project.models.delete_alias("fraud", "challenger")


@pytest.mark.parametrize(
    ("alias", "message"),
    [("Champion", "not allowed"), ("9lives", "not allowed"), ("latest", "newest version")],
)
def test_bad_aliases_are_refused(sqlite_project: Project, clf: Case, alias: str, message: str) -> None:
    sqlite_project.models.register("fraud", clf.model)
    with pytest.raises(MloopError, match=message):
        sqlite_project.models.set_alias("fraud", alias, 1)


def test_an_alias_must_point_at_an_existing_version(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model)
    with pytest.raises(NotFound, match="no version 5; versions: 1"):
        project.models.set_alias("fraud", "champion", 5)
    assert events(project, "models.alias") == []


def test_alias_history_answers_for_any_instant(project: Project, clf: Case) -> None:
    for _ in range(3):
        project.models.register("fraud", clf.model)
    models = project.models
    models.set_alias("fraud", "champion", 1)
    models.set_alias("fraud", "challenger", 2)
    models.set_alias("fraud", "champion", 2)
    models.delete_alias("fraud", "champion")
    models.set_alias("fraud", "champion", 3)
    models.set_alias("fraud", "champion", 1)
    ts = [e.ts for e in events(project, "models.alias")]
    at = lambda t: models.alias_at("fraud", "champion", t)  # noqa: E731
    second = pd.Timedelta(microseconds=1)
    assert at(ts[0] - second) is None  # before it was ever set
    assert (at(ts[0]), at(ts[1])) == (1, 1)  # the challenger's change does not move the champion
    assert (at(ts[2] - second), at(ts[2])) == (1, 2)  # at the very instant of a change the new holder counts
    assert at(ts[3]) is None and at(ts[4] - second) is None  # deleted in between
    assert (at(ts[4]), at(ts[5] - second), at(ts[5])) == (3, 3, 1)
    assert at(ts[5] + pd.Timedelta(days=365)) == 1
    assert models.alias_at("fraud", "challenger", ts[0]) is None
    assert models.alias_at("fraud", "challenger", ts[5]) == 2
    spans = [(s.version, s.start, s.end, s.set_by) for s in models.history("fraud", "champion")]
    assert spans == [
        (1, ts[0], ts[2], "local-admin"),
        (2, ts[2], ts[3], "local-admin"),
        (3, ts[4], ts[5], "local-admin"),
        (1, ts[5], None, "local-admin"),
    ]


def test_alias_history_records_who_moved_it(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model)
    project.models.register("fraud", clf.model)
    as_user(project, "mia", "mlops").models.set_alias("fraud", "champion", 1)
    as_user(project, "sam", "data_scientist").models.set_alias("fraud", "champion", 2)
    assert [(s.version, s.set_by) for s in project.models.history("fraud")] == [(1, "mia"), (2, "sam")]
    with pytest.raises(PermissionDenied):
        as_user(project, "aud", "auditor").models.set_alias("fraud", "champion", 1)


# ---- stages ---------------------------------------------------------------------------------------------


def test_promoting_to_production_archives_the_previous_one(project: Project, clf: Case) -> None:
    for _ in range(3):
        project.models.register("fraud", clf.model)
    models = project.models
    first = models.promote("fraud", 1, to="production", comment="first launch")
    assert (first.status, first.requested_by, first.decided_by, first.comment) == (
        "done",
        "local-admin",
        "local-admin",
        "first launch",
    )
    models.promote("fraud", 2, to="staging")
    models.promote("fraud", 2, to="production")
    assert [v.stage for v in models.list_versions("fraud")] == ["archived", "production", "none"]
    with pytest.raises(MloopError, match="in production already"):
        models.promote("fraud", 2, to="production")
    with pytest.raises(MloopError, match="Stage 'prod' is not one of: staging, production, archived"):
        models.promote("fraud", 3, to="prod")
    payloads = [e.payload for e in events(project, "models.promote")]
    assert payloads[-1] == {
        "version": 2,
        "stage": "production",
        "status": "done",
        "from": "staging",
        "archived": [1],
        "request": 3,
    }
    ts = [e.ts for e in events(project, "models.promote")]
    assert models.production_at("fraud", ts[0]) == 1
    assert models.production_at("fraud", ts[1]) == 1  # staging 2 does not change production
    assert models.production_at("fraud", ts[2]) == 2
    assert models.production_at("fraud", ts[0] - pd.Timedelta(seconds=1)) is None
    spans = [(s.stage, s.version, s.end is None) for s in models.stage_history("fraud")]
    assert spans == [
        ("production", 1, False),
        ("staging", 2, False),
        ("archived", 1, True),
        ("production", 2, True),
    ]


def test_production_needs_a_second_person_when_approval_is_required(
    project: Project, approving: Project, clf: Case
) -> None:
    project.models.register("fraud", clf.model)
    project.models.register("fraud", clf.model)
    engineer = as_user(approving, "alice", "ml_engineer")
    bob = as_user(approving, "bob", "mlops")
    dave = as_user(approving, "dave", "mlops")
    scientist = as_user(approving, "carol", "data_scientist")

    request = engineer.models.promote("fraud", 1, to="production", comment="beats v0 on auc")
    assert (request.status, request.requested_by, request.decided_by) == ("pending", "alice", None)
    assert approving.models.get("fraud", 1).stage == "none"  # nothing moves until approved
    assert [p.version for p in approving.models.promotions("fraud", status="pending")] == [1]
    with pytest.raises(AlreadyExists, match="waits for approval"):
        engineer.models.promote("fraud", 1, to="production")
    with pytest.raises(PermissionDenied, match=r"may not models.approve.*Roles that may: admin, mlops"):
        engineer.models.approve("fraud", 1)
    with pytest.raises(PermissionDenied, match=r"may not models.approve"):
        scientist.models.approve("fraud", 1)
    with pytest.raises(PermissionDenied, match=r"may not models.promote"):
        scientist.models.promote("fraud", 2, to="production")

    done = bob.models.approve("fraud", 1, comment="ok")
    assert (done.status, done.requested_by, done.decided_by) == ("done", "alice", "bob")
    assert approving.models.get("fraud", 1).stage == "production"

    own = bob.models.promote("fraud", 2, to="production")
    with pytest.raises(PermissionDenied, match="bob requested this promotion and cannot also approve it"):
        bob.models.approve("fraud", 2)
    assert approving.models.get("fraud", 2).stage == "none"
    dave.models.approve("fraud", 2)
    assert [v.stage for v in approving.models.list_versions("fraud")] == ["archived", "production"]
    assert own.status == "pending"

    spans = approving.models.stage_history("fraud")
    assert [(s.stage, s.version, s.set_by, s.approved_by) for s in spans if s.stage == "production"] == [
        ("production", 1, "alice", "bob"),
        ("production", 2, "bob", "dave"),
    ]
    with pytest.raises(NotFound, match="No promotion of 'fraud' version 2 to production is waiting"):
        dave.models.approve("fraud", 2)
    # staging needs no approval
    assert engineer.models.promote("fraud", 1, to="staging").status == "done"


def test_a_rejected_request_changes_nothing(project: Project, approving: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model)
    as_user(approving, "alice", "ml_engineer").models.promote("fraud", 1, to="production")
    rejected = as_user(approving, "bob", "mlops").models.reject("fraud", 1, comment="drift on DE")
    assert (rejected.status, rejected.decided_by) == ("rejected", "bob")
    assert "bob: drift on DE" in rejected.comment
    assert approving.models.get("fraud", 1).stage == "none"
    assert approving.models.promotions("fraud", status="pending") == []
    assert approving.models.production_at("fraud", rejected.decided_at) is None
    assert [e.action for e in events(project)][-2:] == ["models.promote", "models.reject"]


# ---- delete ---------------------------------------------------------------------------------------------


def test_deleting_a_version_is_refused_while_an_alias_points_at_it(project: Project, clf: Case) -> None:
    for _ in range(3):
        project.models.register("fraud", clf.model)
    models = project.models
    models.set_alias("fraud", "champion", 2)
    models.set_alias("fraud", "shadow", 2)
    with pytest.raises(
        MloopError, match="is what champion, shadow point at; move or delete those aliases first"
    ):
        models.delete_version("fraud", 2)
    models.promote("fraud", 3, to="production")
    with pytest.raises(MloopError, match="is in production"):
        models.delete_version("fraud", 3)
    with pytest.raises(PermissionDenied):
        as_user(project, "sam", "data_scientist").models.delete_version("fraud", 1)

    models.delete_version("fraud", 1)
    assert [v.version for v in models.list_versions("fraud")] == [2, 3]
    assert [v.version for v in models.list_versions("fraud", include_deleted=True)] == [1, 2, 3]
    with pytest.raises(NotFound, match=r"no version 1 \(it was deleted\); versions: 2, 3"):
        models.load("fraud", 1)
    models.delete_alias("fraud", "champion")
    models.delete_alias("fraud", "shadow")
    models.delete_version("fraud", 2)
    assert models.register("fraud", clf.model).version == 4  # numbers are never reused
    assert [(s.stage, s.version) for s in models.stage_history("fraud") if s.stage == "deleted"] == [
        ("deleted", 1),
        ("deleted", 2),
    ]
