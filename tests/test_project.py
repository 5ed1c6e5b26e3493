"""``Project``: opening a folder, deciding who acts, and writing a fresh ``mloop.yaml``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mloop import Project
from mloop.config import CONFIG_FILE
from mloop.errors import AlreadyExists, AuthenticationError, ConfigError, PermissionDenied
from mloop.security import Actor, Grant
from mloop.store import MetadataStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "fraud"
    folder.mkdir()
    return folder


@pytest.fixture
def closed_stores(monkeypatch: pytest.MonkeyPatch) -> list[MetadataStore]:
    """Every metadata store closed during the test, in order."""
    closed: list[MetadataStore] = []
    close = MetadataStore.close

    def recording_close(store: MetadataStore) -> None:
        closed.append(store)
        close(store)

    monkeypatch.setattr(MetadataStore, "close", recording_close)
    return closed


def issue_key(root: Path, user: str, role: str) -> str:
    with Project.open(root, env={}) as admin:
        admin.users.add(user, [role])
        return admin.keys.issue(user).token


def test_open_makes_the_state_folder_and_acts_as_the_local_admin(root: Path) -> None:
    with Project.open(root, env={}) as project:
        assert (project.name, project.actor) == ("fraud", Actor.local_admin("local-admin"))
        assert (root / ".mloop" / "mloop.db").is_file()
        assert project.settings.artifact_url == str(root / ".mloop" / "artifacts")
        assert project.artifacts.url == str(root / ".mloop" / "artifacts")
        assert [u.name for u in project.users.list()] == ["local-admin"]
        assert repr(project) == f"Project({str(root)!r}, name='fraud', actor='local-admin')"


def test_the_local_admin_is_created_once(root: Path) -> None:
    for _ in range(3):
        Project.open(root, env={"MLOOP_LOCAL_USER": "ops"}).close()
    with Project.open(root, env={"MLOOP_LOCAL_USER": "ops"}) as project:
        assert project.actor.name == "ops"
        assert project.users.get("ops").grants == (Grant("admin"),)
        assert [(e.action, e.resource) for e in project.audit.events()] == [("users.add", "user:ops")]


def test_open_uses_the_metadata_url_given(root: Path, metadata_url: str) -> None:
    with Project.open(root, env={}, metadata_url=metadata_url) as project:
        assert project.store.backend == ("sqlite" if metadata_url.startswith("sqlite") else "postgresql")
        assert not (root / ".mloop" / "mloop.db").exists()


def test_open_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; create it, or run `mloop init` in it"):
        Project.open(tmp_path / "missing", env={})


# ---- who acts ------------------------------------------------------------------------------------------


def test_an_api_key_in_the_environment_acts_as_its_owner(root: Path) -> None:
    token = issue_key(root, "alice", "data_scientist")
    with Project.open(root, env={"MLOOP_API_KEY": token, "MLOOP_LOCAL_ADMIN": "false"}) as project:
        assert project.actor.name == "alice"
        assert project.actor.grants == (Grant("data_scientist"),)
        with pytest.raises(PermissionDenied, match="alice"):
            project.users.add("mallory", ["admin"])


def test_the_api_key_beats_the_local_admin(root: Path) -> None:
    token = issue_key(root, "alice", "auditor")
    with Project.open(root, env={"MLOOP_API_KEY": token}) as project:
        assert project.actor.name == "alice"


def test_an_explicit_actor_beats_the_api_key(root: Path) -> None:
    token = issue_key(root, "alice", "auditor")
    bob = Actor("bob", grants=(Grant("mlops"),))
    with Project.open(root, actor=bob, env={"MLOOP_API_KEY": token}) as project:
        assert project.actor == bob


def test_without_local_admin_an_actor_must_be_a_user_holding_what_it_claims(
    root: Path, closed_stores: list[MetadataStore]
) -> None:
    issue_key(root, "alice", "data_scientist")
    strict = {"MLOOP_LOCAL_ADMIN": "false"}
    alice = Actor("alice", grants=(Grant("data_scientist"),))
    with Project.open(root, actor=alice, env=strict) as project:
        assert project.actor == alice
    for claimed, message in (
        (Actor("alice", grants=(Grant("admin"),)), "claims admin but holds data_scientist"),
        (Actor("mallory", grants=(Grant("admin"),)), "'mallory' is not a user of this project"),
    ):
        with pytest.raises(PermissionDenied, match=message):
            Project.open(root, actor=claimed, env=strict)
    with Project.open(root, env={}) as admin:
        admin.users.disable("alice")
    with pytest.raises(PermissionDenied, match="'alice' is disabled"):
        Project.open(root, actor=alice, env=strict)


def test_a_refused_key_raises_and_closes_the_store(root: Path, closed_stores: list[MetadataStore]) -> None:
    token = issue_key(root, "alice", "data_scientist")
    with Project.open(root, env={}) as admin:
        admin.users.disable("alice")
    closed_before = len(closed_stores)
    with pytest.raises(AuthenticationError, match="belongs to disabled user 'alice'"):
        Project.open(root, env={"MLOOP_API_KEY": token})
    assert len(closed_stores) == closed_before + 1


def test_no_key_and_no_local_admin_is_a_config_error(root: Path, closed_stores: list[MetadataStore]) -> None:
    with pytest.raises(ConfigError, match="No identity: local_admin is false and MLOOP_API_KEY is not set"):
        Project.open(root, env={"MLOOP_LOCAL_ADMIN": "false"})
    assert len(closed_stores) == 1


def test_as_actor_shares_the_store_but_not_the_actor(root: Path) -> None:
    with Project.open(root, env={}) as admin:
        auditor = admin.as_actor(Actor("carol", grants=(Grant("auditor"),)))
        assert auditor.store is admin.store
        assert (auditor.actor.name, admin.actor.name) == ("carol", "local-admin")
        with pytest.raises(PermissionDenied):
            auditor.users.add("mallory")
        assert admin.users.add("bob").name == "bob"


# ---- init ----------------------------------------------------------------------------------------------


def test_init_writes_a_config_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    path = Project.init(tmp_path / "new" / "project")
    assert path == tmp_path / "new" / "project" / CONFIG_FILE
    assert "project: project\n" in path.read_text()
    path.write_text("log_level: DEBUG\n")
    with pytest.raises(AlreadyExists, match="exists already; pass --force"):
        Project.init(path.parent)
    assert path.read_text() == "log_level: DEBUG\n"
    Project.init(path.parent, force=True)
    assert "log_level: INFO" in path.read_text()


def test_the_state_folder_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Issue 17, item 9: mloop.db, online.db, their WAL files, datasets and the prediction log were
    world-readable (0644 files in a 0755 folder). .mloop is 0700, and an older one is tightened."""
    Project.open(tmp_path, env={}).close()
    state = tmp_path / ".mloop"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert (state / "mloop.db").exists()
    state.chmod(0o755)  # a project made by an older mloop
    Project.open(tmp_path, env={}).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_reopening_a_project_loads_no_statistics_training_or_migration_library(tmp_path: Path) -> None:
    # every CLI command opens the project: scipy.stats alone added ~0.7 s to each of them, alembic ~0.15 s
    import subprocess
    import sys

    Project.open(tmp_path, env={}).close()  # the first open migrates (alembic); later ones need not
    heavy = ("scipy", "sklearn", "torch", "ray", "lightgbm", "shap", "onnxruntime", "alembic")
    code = (
        f"import sys; from mloop import Project; Project.open({str(tmp_path)!r}, env={{}}).close(); "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
