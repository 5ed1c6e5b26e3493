"""Security and compliance: the audit chain and its key, API key ages, how servers listen (from their
``serving.start`` announcements), secrets written in mloop.yaml, personal data at rest, and admins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mloop.access.servers import ACTION, Announcement
from mloop.config.settings import CONFIG_FILE
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed
from mloop.security import audit_chain
from mloop.security.audit_anchor import Keying

SERVERS_WINDOW = timedelta(days=1)  # servers announced within this window count as running
ADMINS_AT_MOST = 3
#: Settings that hold a secret wherever they appear in mloop.yaml (the loader refuses them at the top level
#: only; nested, such as ui.session_secret, they load).
SECRET_KEYS = frozenset({"api_key", "audit_key", "data_key", "session_secret", "password", "secret", "token"})


def servers(facts: Facts) -> list[Announcement]:
    """Every server announced in the last day, oldest first, on every host that shares the metadata store.
    Each start counts, not only a host:port's latest: a later announcement cannot hide an earlier one."""
    return facts.memo(
        "servers", lambda: [Announcement.from_event(e) for e in facts.events(ACTION, since=SERVERS_WINDOW)]
    )


@check(
    "security.audit-chain",
    concern="security",
    severity="high",
    title="The audit chain verifies: no event edited, reordered or removed",
    fix="`mloop audit verify` names the broken events; restore the event table from a backup, and find who "
    "could write the database directly",
    maturity=2,
)
def audit_chain_verifies(facts: Facts) -> Outcome:
    settings = facts.settings
    keying = None
    if settings.audit_key is not None:
        keying = Keying(settings.audit_key.get_secret_value().encode(), Path(settings.audit_anchor))
    report = facts.memo("audit_verify", lambda: audit_chain.verify(facts.platform.store, keying))
    if report.checked == 0:
        return not_applicable("the audit log holds no event yet")
    head = f"{report.checked} events checked, head event {report.head_seq}" + (
        ", keyed" if report.keyed else ""
    )
    if report.problems:
        shown = report.problems[:10]
        more = [f"... and {len(report.problems) - 10} more"] if len(report.problems) > 10 else []
        return failed(f"the audit chain is broken: {len(report.problems)} problem(s)", [head, *shown, *more],
                      [f"event:{report.head_seq}"], problems=len(report.problems))  # fmt: skip
    return passed("the audit chain verifies", [head], [f"event:{report.head_seq}"], checked=report.checked)


@check(
    "security.audit-key",
    concern="security",
    severity="low",
    title="MLOOP_AUDIT_KEY is set: events are HMAC-keyed and anchored outside the database",
    fix="export MLOOP_AUDIT_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))') on every process "
    "of the project, and keep audit_anchor on storage the database's writer cannot truncate",
)
def audit_key(facts: Facts) -> Outcome:
    anchor = f"audit_anchor: {facts.settings.audit_anchor}"
    if facts.settings.audit_key is None:
        return failed("the audit chain is a plain hash chain: whoever can write the database can rewrite it",
                      ["MLOOP_AUDIT_KEY is not set", anchor], ["setting:audit_key"])  # fmt: skip
    return passed("the audit chain is keyed and anchored", ["MLOOP_AUDIT_KEY is set", anchor],
                  ["setting:audit_key", "setting:audit_anchor"])  # fmt: skip


@check(
    "security.key-rotation",
    concern="security",
    severity="medium",
    title="No active API key is older than review.thresholds.key_age_days",
    fix="`mloop keys issue USER --expires-in 90d`, move the caller to the new key, then "
    "`mloop keys revoke KEY_ID` the old one",
)
def key_rotation(facts: Facts) -> Outcome:
    limit = facts.settings.review.thresholds.key_age_days
    active = [k for k in facts.platform.keys.list() if k.revoked_at is None
              and (k.expires_at is None or k.expires_at > facts.now)]  # fmt: skip
    if not active:
        return not_applicable("no active API key")
    ages = {k.key_id: (facts.now - k.created_at).days for k in active}
    old = [k for k in active if ages[k.key_id] > limit]
    evidence = [f"key {k.key_id} of {k.user}: {ages[k.key_id]} days old"
                + (f", expires {k.expires_at:%Y-%m-%d}" if k.expires_at else ", never expires")
                for k in sorted(active, key=lambda k: -ages[k.key_id])]  # fmt: skip
    evidence.append(f"review.thresholds.key_age_days = {limit}")
    if old:
        return failed(f"{len(old)} of {len(active)} active key(s) older than {limit} days", evidence,
                      [f"key:{k.key_id}" for k in old] + ["setting:review.thresholds.key_age_days"],
                      oldest_days=max(ages.values()))  # fmt: skip
    return passed(f"all {len(active)} active key(s) younger than {limit} days", evidence,
                  oldest_days=max(ages.values()))  # fmt: skip


def _server_check(facts: Facts, bad: Any, what: str) -> Outcome:
    found = servers(facts)
    if not found:
        return not_applicable("no server announced itself in the last day (mloop serve / mloop ui)")
    wrong = [s for s in found if bad(s)]
    evidence = [s.describe() for s in (wrong or found)]
    if wrong:
        return failed(f"{len(wrong)} of {len(found)} server start(s) {what}", evidence,
                      [f"event:{s.seq}" for s in wrong], servers=len(wrong))  # fmt: skip
    return passed(f"none of {len(found)} server start(s) in the last day {what}", evidence)


@check(
    "security.local-admin-network",
    concern="security",
    severity="high",
    title="No server with local_admin on listens on a non-loopback address",
    fix="local_admin: false in mloop.yaml, and an API key per caller (`mloop keys issue USER`); or serve on "
    "127.0.0.1 only",
)
def local_admin_network(facts: Facts) -> Outcome:
    outcome = _server_check(facts, lambda s: s.local_admin and not s.loopback,
                            "listened on the network with local_admin on (anyone reaching it is admin)")  # fmt: skip
    if outcome.status == "fail":
        return Outcome(outcome.status, outcome.summary, outcome.evidence, (*outcome.refs, "setting:local_admin"),
                       outcome.numbers)  # fmt: skip
    return outcome


@check(
    "security.tls",
    concern="security",
    severity="high",
    title="Every server on a non-loopback address serves TLS",
    fix="mloop serve --ssl-certfile CERT --ssl-keyfile KEY (or bind to 127.0.0.1 behind a TLS proxy)",
)
def tls(facts: Facts) -> Outcome:
    return _server_check(facts, lambda s: not s.tls and not s.loopback, "listened on the network without TLS")


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted key, last key, value) of every leaf of a YAML mapping."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key)) if isinstance(value, dict | list) \
                else [(f"{path}.{key}" if path else str(key), str(key), value)]  # fmt: skip
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from (
                _walk(value, f"{path}[{i}]")
                if isinstance(value, dict | list)
                else [(f"{path}[{i}]", "", value)]
            )


def _url_password(value: str) -> bool:
    """Whether ``value`` is a URL carrying a password written out (``${VAR}`` is read from the environment)."""
    if "://" not in value:
        return False
    try:
        password = urlsplit(value).password
    except ValueError:
        return False
    if not password:
        return False
    return not (password.startswith("${") and password.endswith("}"))


def _secret_in(key: str, value: Any) -> str | None:
    """Why ``value`` at ``key`` is a secret written in the file, or None. Never returns the value."""
    if value in (None, "") or (isinstance(value, str) and value.startswith("${") and value.endswith("}")):
        return None  # unset, or taken from the environment
    name = key.lower()
    if name in SECRET_KEYS or name.endswith(("_password", "_secret", "_token")):
        return "holds a secret"
    if isinstance(value, str) and _url_password(value):
        return "holds a password in its URL"
    return None


@check(
    "security.secrets-in-settings",
    concern="security",
    severity="high",
    title="mloop.yaml holds no secret: keys and passwords come from the environment",
    fix="Remove the value from mloop.yaml and set it in the environment: MLOOP_API_KEY, MLOOP_AUDIT_KEY, "
    "MLOOP_DATA_KEY, or ${VARIABLE} inside a URL (postgresql+psycopg://mloop:${PGPASSWORD}@db/mloop)",
)
def secrets_in_settings(facts: Facts) -> Outcome:
    path = Path(facts.platform.root) / CONFIG_FILE
    if not path.is_file():
        return not_applicable(f"no {CONFIG_FILE}: every setting is a default or from the environment")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return not_applicable(f"{CONFIG_FILE} is not valid YAML (the project would not open with it)")
    found = [(dotted, why) for dotted, key, value in _walk(data) if (why := _secret_in(key, value))]
    if found:
        return failed(f"{len(found)} secret(s) written in {CONFIG_FILE}",
                      [f"{CONFIG_FILE}: {dotted} {why}" for dotted, why in found],
                      [f"setting:{dotted}" for dotted, _ in found])  # fmt: skip
    return passed(f"no secret in {CONFIG_FILE}", [f"{sum(1 for _ in _walk(data))} settings read from {path}"])


def _pii_declared(facts: Facts) -> list[tuple[str, str]]:
    """(ref, what) of every dataset column, feature and entity tagged ``pii``."""
    found = []
    for info in facts.platform.data.list():
        for column in facts.platform.data.schema(info.name).columns:
            if column.pii:
                found.append((f"dataset:{info.name}", f"dataset {info.name}: column {column.name}"))
    for (kind, name), stored in sorted(facts.platform.features.definitions().items()):
        ref = f"feature_view:{name}" if kind == "feature_view" else f"{kind}:{name}"
        if stored.spec.get("pii"):
            found.append((ref, f"{kind} {name}"))
        for field in stored.spec.get("features", []) + stored.spec.get("schema", []):
            if isinstance(field, dict) and field.get("pii"):
                found.append((ref, f"{kind} {name}: field {field.get('name')}"))
    return found


@check(
    "security.pii-encrypted",
    concern="security",
    severity="high",
    title="Where personal data is declared (columns, features, entities tagged pii), encryption at rest is on",
    fix="encryption: {enabled: true, key_file: .mloop/data.key} in mloop.yaml (or MLOOP_DATA_KEY), then "
    "`mloop keys rotate-data-key` re-encrypts what is already stored",
    mlts=("data-5",),
)
def pii_encrypted(facts: Facts) -> Outcome:
    declared = _pii_declared(facts)
    if not declared:
        return not_applicable("no dataset column, feature or entity is tagged pii")
    enabled = facts.settings.encryption.enabled
    evidence = [f"{what}: pii" for _, what in declared] + [f"encryption.enabled = {enabled}"]
    refs = sorted({ref for ref, _ in declared})
    if not enabled:
        return failed(f"{len(declared)} pii item(s) stored unencrypted", evidence,
                      [*refs, "setting:encryption.enabled"], pii=len(declared))  # fmt: skip
    return passed(f"{len(declared)} pii item(s), encryption at rest on", evidence, refs, pii=len(declared))


@check(
    "security.admins",
    concern="security",
    severity="low",
    title=f"Admins are few: at most {ADMINS_AT_MOST} users hold admin, and no service account does",
    fix="`mloop users revoke NAME admin`, then `mloop users grant NAME ROLE` with the least role that does "
    "the job (mlops, ml_engineer, auditor...)",
)
def admins(facts: Facts) -> Outcome:
    users = [u for u in facts.platform.users.list() if not u.disabled]
    holding = [u for u in users if any(g.role == "admin" for g in u.grants)]
    people = [u for u in holding if u.kind == "user"]
    services = [u for u in holding if u.kind == "service"]
    evidence = [f"{u.kind} {u.name}: {', '.join(str(g) for g in u.grants)}" for u in holding]
    evidence.append(
        f"{len(people)} of {len(users)} enabled user(s) hold admin; {len(services)} service account(s)"
    )
    too_many = len(people) > ADMINS_AT_MOST
    if too_many or services:
        why = [f"{len(people)} admins (more than {ADMINS_AT_MOST})"] if too_many else []
        why += [f"service account(s) {', '.join(u.name for u in services)} hold admin"] if services else []
        return failed("; ".join(why), evidence, [f"user:{u.name}" for u in (services + (people if too_many else []))],
                      admins=len(people), service_admins=len(services))  # fmt: skip
    return passed(f"{len(people)} admin(s), no service account among them", evidence,
                  [f"user:{u.name}" for u in people], admins=len(people))  # fmt: skip
