"""The security checks, each made to fail and pass on a real project; servers announce themselves through
the same call `mloop serve` makes, and once through a real `mloop serve` / `mloop ui`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from mloop import Column, Dataset, Project
from mloop._time import utcnow
from mloop.access.servers import ACTION, Announcement
from mloop.serving.announce import announce
from mloop.store.schema import EventRow
from tests.review.conftest import finding, reopen
from tests.serving.http.running import mloop_serve


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project.open(tmp_path_factory.mktemp("security"), env={})
    yield project
    project.close()


def _bound(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock


def test_a_tampered_event_breaks_the_audit_chain(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        project.users.add("carol", ["data_scientist"])
        intact = finding(project, "security.audit-chain")
        assert intact.status == "pass" and intact.check.maturity == 2
        with project.store.write() as session:  # what someone with the database's password could do
            session.execute(update(EventRow).where(EventRow.seq == 1).values(actor="mallory"))
        broken = finding(project, "security.audit-chain")
        assert broken.status == "fail" and broken.weight == "high"
        assert any(
            line.startswith("event 1 (") and line.endswith("was edited") for line in broken.outcome.evidence
        )
    finally:
        project.close()


def test_the_audit_key_is_set_only_through_the_environment(tmp_path: Path) -> None:
    plain = Project.open(tmp_path, env={})
    try:
        unkeyed = finding(plain, "security.audit-key")
        assert unkeyed.status == "fail" and unkeyed.outcome.evidence[0] == "MLOOP_AUDIT_KEY is not set"
    finally:
        plain.close()
    keyed = Project.open(tmp_path, env={"MLOOP_AUDIT_KEY": "k" * 32})
    try:
        keyed.users.add("dave", ["auditor"])  # a keyed event, anchored
        assert finding(keyed, "security.audit-key").status == "pass"
        chain = finding(keyed, "security.audit-chain")
        assert chain.status == "pass" and "keyed" in chain.outcome.evidence[0]
    finally:
        keyed.close()


def test_an_api_key_older_than_key_age_days_fails_until_it_is_rotated(bare: Project) -> None:
    assert finding(bare, "security.key-rotation").status == "n/a"
    bare.users.add("svc-scorer", ["ml_engineer"], kind="service")
    issued = bare.keys.issue("svc-scorer")
    try:
        assert finding(bare, "security.key-rotation").status == "pass"
        later = finding(bare, "security.key-rotation", now=utcnow() + timedelta(days=91))  # default 90
        assert later.status == "fail" and f"key:{issued.key_id}" in later.outcome.refs
        assert later.outcome.evidence[0].startswith(f"key {issued.key_id} of svc-scorer: 91 days old")
        strict = reopen(bare, review={"thresholds": {"key_age_days": 200}})
        try:
            assert (
                finding(strict, "security.key-rotation", now=utcnow() + timedelta(days=91)).status == "pass"
            )
        finally:
            strict.close()
            reopen(bare, review=None).close()
    finally:
        bare.keys.revoke(issued.key_id)
    assert finding(bare, "security.key-rotation").status == "n/a"  # revoked keys do not count


def test_servers_on_the_network_need_tls_and_local_admin_off(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        assert finding(project, "security.tls").status == "n/a"
        assert finding(project, "security.local-admin-network").status == "n/a"
        with _bound("127.0.0.1") as sock:
            here = announce(project, sock, tls=False)  # loopback: neither TLS nor local_admin matter
        assert here is not None and here.loopback and here.local_admin
        assert finding(project, "security.tls").status == "pass"
        assert finding(project, "security.local-admin-network").status == "pass"
        # A replica on another host, with TLS and local_admin off (what its own start records).
        project.servers.announce(Announcement("0.0.0.0", 8700, True, 4, False, "web2", 4242, "x"))
        assert finding(project, "security.tls").status == "pass"
        assert finding(project, "security.local-admin-network").status == "pass"
        with _bound("0.0.0.0") as sock:
            exposed = announce(project, sock, tls=False, workers=2)
        assert exposed is not None and not exposed.loopback
        plain = finding(project, "security.tls")
        assert plain.status == "fail" and plain.weight == "high"
        assert plain.outcome.refs == (f"event:{_seq(project, exposed)}",)
        assert "on 0.0.0.0 (network), no TLS, local_admin on, 2 worker(s)" in plain.outcome.evidence[0]
        admin = finding(project, "security.local-admin-network")
        assert admin.status == "fail" and "setting:local_admin" in admin.outcome.refs
        # The TLS start of web2 did not hide the plain one; a day later both have aged out.
        assert finding(project, "security.tls", now=utcnow() + timedelta(days=1, minutes=1)).status == "n/a"
    finally:
        project.close()


def _seq(project: Project, announced: Announcement) -> int:
    events = project.audit.events(action=ACTION, resource=announced.resource)
    return events[-1].seq


def test_mloop_serve_and_mloop_ui_announce_themselves(tmp_path: Path) -> None:
    Project.open(tmp_path, env={}).close()
    for command in ("serve", "ui"):
        with mloop_serve(tmp_path, command=command) as server:
            pid, port = server.process.pid, int(server.url.rsplit(":", 1)[1])
    project = Project.open(tmp_path, env={})
    try:
        started = [Announcement.from_event(e) for e in project.audit.events(action=ACTION)]
        assert [(s.kind, s.host, s.tls, s.workers, s.local_admin) for s in started] == [
            ("serve", "127.0.0.1", False, 1, True),
            ("ui", "127.0.0.1", False, 1, True),
        ]
        assert (
            started[1].pid == pid and started[1].port == port and started[1].hostname == socket.gethostname()
        )
        assert started[1].resource == f"server:{socket.gethostname()}:{port}"
        tls = finding(project, "security.tls")
        assert tls.status == "pass" and len(tls.outcome.evidence) == 2
    finally:
        project.close()


def _write_settings(project: Project, **blocks: object) -> None:
    (project.root / "mloop.yaml").write_text(yaml.safe_dump(blocks))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    password=st.text(st.characters(min_codepoint=48, max_codepoint=122, categories=["L", "N"]), min_size=4),
    where=st.sampled_from(["rate_limit_url", "session_secret"]),
)
def test_a_secret_in_mloop_yaml_fails_and_its_value_is_never_shown(
    bare: Project, password: str, where: str
) -> None:
    if where == "rate_limit_url":
        _write_settings(bare, serving={"rate_limit_url": f"redis://mloop:{password}@cache:6379/0"})
        key, why = "serving.rate_limit_url", "holds a password in its URL"
    else:
        _write_settings(bare, ui={"session_secret": password})
        key, why = "ui.session_secret", "holds a secret"
    try:
        found = finding(bare, "security.secrets-in-settings")
        assert found.status == "fail" and found.weight == "high"
        assert found.outcome.evidence == (f"mloop.yaml: {key} {why}",)
        assert found.outcome.refs == (f"setting:{key}",)
        assert password not in repr(found.to_dict())
    finally:
        _write_settings(bare, serving={"rate_limit_url": "redis://cache:6379/0"})
    assert finding(bare, "security.secrets-in-settings").status == "pass"


def test_pii_columns_need_encryption_at_rest(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        assert finding(project, "security.pii-encrypted").status == "n/a"
        source = tmp_path / "people.csv"
        source.write_text("id,email\n1,a@example.com\n2,b@example.com\n")
        project.data.ingest(source, Dataset("people", columns=[Column("id", "int64"),
                                                               Column("email", "string", pii=True)]))  # fmt: skip
        plain = finding(project, "security.pii-encrypted")
        assert plain.status == "fail" and plain.check.mlts == ("data-5",)
        assert plain.outcome.evidence == ("dataset people: column email: pii", "encryption.enabled = False")
        assert plain.outcome.refs == ("dataset:people", "setting:encryption.enabled")
        (tmp_path / "data.key").write_text("ab" * 32)
        (tmp_path / "data.key").chmod(0o600)
        encrypted = reopen(project, encryption={"enabled": True, "key_file": "data.key"})
        try:
            assert finding(encrypted, "security.pii-encrypted").status == "pass"
        finally:
            encrypted.close()
    finally:
        project.close()


def test_more_than_three_admins_or_an_admin_service_account_fails(bare: Project) -> None:
    assert finding(bare, "security.admins").status == "pass"  # the local admin alone
    for name in ("ann", "bob", "cy"):
        bare.users.add(name, ["admin"])
    try:
        many = finding(bare, "security.admins")
        assert many.status == "fail" and "4 admins (more than 3)" in many.outcome.summary
    finally:
        for name in ("ann", "bob", "cy"):
            bare.users.disable(name)
    assert finding(bare, "security.admins").status == "pass"
    bare.users.add("deployer", ["admin"], kind="service")
    try:
        robot = finding(bare, "security.admins")
        assert robot.status == "fail" and robot.outcome.refs == ("user:deployer",)
    finally:
        bare.users.disable("deployer")
    assert finding(bare, "security.admins").status == "pass"


def test_an_identity_scoped_away_from_servers_still_serves_but_is_not_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = Project.open(tmp_path, env={})
    try:
        admin.users.add("fraud-only", ["ml_engineer@endpoint:fraud"], kind="service")
        token = admin.keys.issue("fraud-only").token
    finally:
        admin.close()
    _write_settings_at(tmp_path, local_admin=False)
    scoped = Project.open(tmp_path, env={"MLOOP_API_KEY": token})
    try:
        with _bound("127.0.0.1") as sock:
            assert announce(scoped, sock, tls=False) is None
        assert "not announced" in caplog.text and "fraud-only" in caplog.text
    finally:
        scoped.close()
    admin = Project.open(tmp_path, env={}, local_admin=True)
    try:
        assert admin.audit.events(action=ACTION) == []
    finally:
        admin.close()


def _write_settings_at(root: Path, **settings: object) -> None:
    (root / "mloop.yaml").write_text(yaml.safe_dump(settings))
