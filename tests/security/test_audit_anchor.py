"""The keyed audit chain: someone who can write the database, but has not the audit key, cannot rewrite or
cut the log unseen: events carry HMACs, and the anchor outside the database vouches for the newest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mloop import Project
from mloop.errors import ConfigError
from mloop.security import audit_chain
from mloop.store.schema import AuditHeadRow, EventRow

KEY = "k" * 40


def open_project(root: Path, metadata_url: str, key: str | None = KEY) -> Project:
    env = {"MLOOP_AUDIT_KEY": key} if key else {}
    return Project.open(root, env=env, metadata_url=metadata_url)


@pytest.fixture
def keyed(tmp_path: Path, metadata_url: str) -> Iterator[Project]:
    """A project with an audit key whose log holds five keyed events."""
    root = tmp_path / "project"
    root.mkdir()
    project = open_project(root, metadata_url)
    for name in ("alice", "bob", "carol", "dan"):
        project.users.add(name, ["data_scientist"])
    try:
        yield project
    finally:
        project.close()


def rewrite_from(project: Project, first: int) -> None:
    """What a database writer without the key can do: change an event, then recompute every hash after it
    (plain SHA-256, the only kind it can compute) and the head, so the plain chain is whole again."""
    with project.store.engine.begin() as conn:
        rows = conn.execute(sa.select(EventRow).order_by(EventRow.seq)).all()
        prev = rows[first - 2].hash
        for row in rows[first - 1 :]:
            payload = '{"forged":true}' if row.seq == first else row.payload
            fields = {c: getattr(row, c) for c in ("seq", "ts", "project", "actor", "action", "resource")}
            digest = audit_chain.event_hash(**fields, payload=payload, prev_hash=prev)
            conn.execute(sa.update(EventRow).where(EventRow.seq == row.seq)
                         .values(payload=payload, prev_hash=prev, hash=digest))  # fmt: skip
            prev = digest
        conn.execute(sa.update(AuditHeadRow).values(hash=prev))


def test_a_keyed_log_verifies_and_says_how_far_it_is_anchored(keyed: Project) -> None:
    report = keyed.audit.verify()
    assert report.ok, report.problems
    assert (report.keyed, report.head_seq, report.anchored_seq) == (True, 5, 5)
    assert (Path(keyed.settings.audit_anchor).stat().st_mode & 0o777) == 0o600


def test_recomputing_every_hash_after_an_edit_is_found_with_a_key(keyed: Project) -> None:
    rewrite_from(keyed, 3)
    problems = keyed.audit.verify().problems
    assert any("event 3" in p and "rewritten by someone without the audit key" in p for p in problems)


def test_the_same_rewrite_fools_a_chain_without_key(tmp_path: Path, metadata_url: str) -> None:
    """Why the key exists: this is the boundary of the plain chain (docs/security.md)."""
    root = tmp_path / "plain"
    root.mkdir()
    project = open_project(root, metadata_url, key=None)
    for name in ("alice", "bob", "carol"):
        project.users.add(name, ["data_scientist"])
    rewrite_from(project, 3)
    assert project.audit.verify().ok
    project.close()


def test_cutting_the_newest_events_and_the_head_is_found_through_the_anchor(keyed: Project) -> None:
    with keyed.store.engine.begin() as conn:
        kept = conn.execute(sa.select(EventRow.hash).where(EventRow.seq == 3)).scalar_one()
        conn.execute(sa.delete(EventRow).where(EventRow.seq > 3))
        conn.execute(sa.update(AuditHeadRow).values(seq=3, hash=kept))
    problems = keyed.audit.verify().problems
    assert problems == [
        f"the newest event(s) were deleted: the anchor {keyed.settings.audit_anchor} vouches for event 5, "
        "the log ends at 3"
    ]


def test_deleting_or_editing_the_anchor_is_found(keyed: Project) -> None:
    anchor = Path(keyed.settings.audit_anchor)
    lines = anchor.read_text().splitlines()
    anchor.write_text("\n".join([lines[0].replace('"seq": 1', '"seq": 9'), *lines[1:]]) + "\n")
    assert any("line 1 of the anchor" in p for p in keyed.audit.verify().problems)
    anchor.unlink()
    assert any("anchor" in p and "missing" in p for p in keyed.audit.verify().problems)


def test_history_from_before_the_key_still_verifies(tmp_path: Path, metadata_url: str) -> None:
    root = tmp_path / "later"
    root.mkdir()
    plain = open_project(root, metadata_url, key=None)
    plain.users.add("alice", ["data_scientist"])
    plain.close()
    keyed = open_project(root, metadata_url)
    keyed.users.add("bob", ["data_scientist"])
    report = keyed.audit.verify()
    assert report.ok, report.problems
    assert report.anchored_seq == 3
    keyed.close()


def test_a_wrong_or_short_key_is_a_clear_error(keyed: Project, tmp_path: Path, metadata_url: str) -> None:
    other = open_project(tmp_path / "project", metadata_url, key="x" * 40)
    with pytest.raises(ConfigError, match="not the one the log was written with"):
        other.audit.verify()
    other.close()
    with pytest.raises(ConfigError, match="at least 32"):
        open_project(tmp_path / "project", metadata_url, key="short")


def test_the_key_is_refused_in_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text(f"audit_key: {KEY}\n")
    with pytest.raises(ConfigError, match="MLOOP_AUDIT_KEY"):
        Project.open(tmp_path, env={})
