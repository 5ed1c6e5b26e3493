from __future__ import annotations

import sqlite3

from tests.cli.conftest import Run


def test_audit_log_verify_and_tamper_detection(cli: Run) -> None:
    cli("users", "add", "alice")
    cli("users", "add", "bob")
    events = cli("audit", "log", "--json").json()
    assert [e["action"] for e in events] == ["users.add", "users.add", "users.add"]
    assert [e["resource"] for e in events] == ["user:local-admin", "user:alice", "user:bob"]
    assert cli("audit", "verify").code == 0
    head = cli("audit", "head", "--json").json()
    assert head["seq"] == 3 and head["ok"] is True

    db = sqlite3.connect(cli.root / ".mloop" / "mloop.db")  # type: ignore[attr-defined]
    db.execute("UPDATE events SET actor = 'someone-else' WHERE seq = 2")
    db.commit()
    db.close()
    result = cli("audit", "verify")
    assert result.code == 1
    assert "event 2 (users.add on user:alice) was edited" in result.err
    assert cli("audit", "verify", "--json").json()["ok"] is False


def test_artifacts_verify_lists_corrupt_blobs(cli: Run) -> None:
    from mloop import Project

    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        good = project.artifacts.put_bytes(b"good")
        bad = project.artifacts.put_bytes(b"bad")
        path = project.root / ".mloop" / "artifacts" / project.artifacts.key(bad)
    assert cli("artifacts", "verify").code == 0
    path.write_bytes(b"tampered")
    result = cli("artifacts", "verify", "--json")
    assert result.code == 1 and result.json() == {"checked": 2, "corrupt": [bad], "temp_files": []}
    assert good != bad
