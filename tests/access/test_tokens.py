"""Single sign-on tokens: a JWT from the configured issuer acts as its user with the mapped roles; any
other token is refused with the reason. Keys are generated here; the JWKS is a file or a loopback URL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from mloop import Project
from mloop.errors import AuthenticationError, PermissionDenied
from mloop.security import Grant

ISSUER, AUDIENCE = "https://login.example.test/realms/ml", "mloop"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*keys: tuple[Any, str]) -> dict[str, Any]:
    out = []
    for private, kid in keys:
        algorithm = (
            jwt.algorithms.RSAAlgorithm
            if isinstance(private, rsa.RSAPrivateKey)
            else jwt.algorithms.ECAlgorithm
        )
        public = json.loads(algorithm.to_jwk(private.public_key()))
        out.append({**public, "kid": kid, "use": "sig"})
    return {"keys": out}


def token(key: Any = RSA_KEY, kid: str = "k1", algorithm: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now,
            "preferred_username": "alice", "realm_access": {"roles": ["analysts", "offline_access"]}}  # fmt: skip
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm, headers={"kid": kid}
    )


def configure(root: Path, source: str) -> Project:
    settings = {"oidc": {"issuer": ISSUER, "audience": AUDIENCE, "jwks": source,
                         "roles_claim": "realm_access.roles",
                         "role_map": {"analysts": ["data_scientist", "ml_engineer@endpoint:fraud"]}}}  # fmt: skip
    (root / "mloop.yaml").write_text(yaml.safe_dump(settings))
    return Project.open(root, env={"MLOOP_LOCAL_ADMIN": "false", "MLOOP_API_KEY": admin_key(root)})


def admin_key(root: Path) -> str:
    with Project.open(root, env={}) as project:
        if not any(u.name == "root" for u in project.users.list()):
            project.users.add("root", ["admin"])
        return project.keys.issue("root").token


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    (tmp_path / "jwks.json").write_text(json.dumps(jwks((RSA_KEY, "k1"))))
    opened = configure(tmp_path, str(tmp_path / "jwks.json"))
    yield opened
    opened.close()


def test_a_token_acts_as_its_user_with_the_mapped_grants(project: Project) -> None:
    alice = project.keys.authenticate(token())
    assert alice.name == "alice"
    assert alice.grants == (Grant("data_scientist"), Grant("ml_engineer", "endpoint:fraud"))
    assert alice.can("deployments.write", "endpoint:fraud") and not alice.can(
        "deployments.write", "endpoint:x"
    )
    with pytest.raises(PermissionDenied, match="alice"):
        project.as_actor(alice).users.add("mallory", ["admin"])


def test_a_group_named_like_a_role_maps_to_it(project: Project) -> None:
    assert project.keys.authenticate(token(realm_access={"roles": ["auditor"]})).grants == (Grant("auditor"),)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "another-app"}, "not for this service"),
        ({"iss": "https://evil.example.test"}, "not issued by"),
        ({"realm_access": {"roles": ["offline_access"]}}, "none maps to an mloop role"),
        ({"preferred_username": None, "sub": None}, "naming the user"),
        ({"exp": None}, "exp"),
    ],
)
def test_a_token_with_wrong_claims_is_refused_with_the_reason(
    project: Project, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message):
        project.keys.authenticate(token(**claims))


def test_a_forged_unsigned_or_unknown_key_token_is_refused(project: Project) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationError, match="Signature verification failed"):
        project.keys.authenticate(token(key=other))
    with pytest.raises(AuthenticationError, match="'k9', which the issuer's JWKS does not hold"):
        project.keys.authenticate(token(kid="k9"))
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60,
                           "preferred_username": "alice", "realm_access": {"roles": ["admin"]}}, None, algorithm="none")  # fmt: skip
    with pytest.raises(AuthenticationError):
        project.keys.authenticate(unsigned)
    hs = token(key="a-shared-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    with pytest.raises(AuthenticationError, match="algorithm"):
        project.keys.authenticate(hs)


def test_a_project_without_oidc_says_so(tmp_path: Path) -> None:
    with Project.open(tmp_path, env={}) as plain, pytest.raises(AuthenticationError, match="oidc: block"):
        plain.keys.authenticate(token())


def test_the_keys_come_from_the_issuers_url_and_a_rotated_key_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.access import tokens

    monkeypatch.setattr(tokens, "REFETCH_COOLDOWN_SECONDS", 0)  # an unknown kid refetches at once
    ec_key = ec.generate_private_key(ec.SECP256R1())
    served = {"body": jwks((RSA_KEY, "k1"))}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(served["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project = configure(tmp_path, f"http://127.0.0.1:{server.server_port}/jwks")
        assert project.keys.authenticate(token()).name == "alice"
        served["body"] = jwks((RSA_KEY, "k1"), (ec_key, "k2"))  # the issuer rotates in a new key
        rotated = token(key=ec_key, kid="k2", algorithm="ES256", preferred_username="bob")
        assert project.keys.authenticate(rotated).name == "bob"
        project.close()
    finally:
        server.shutdown()


def test_mloop_serve_takes_a_token_as_a_bearer(project: Project) -> None:
    from mloop.serving.http.app import create_app

    with TestClient(create_app(project)) as client:
        assert client.get("/metrics").status_code == 401  # local_admin is false: /metrics needs a caller
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token()}"}).status_code == 200
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {token(aud='x')}"})
        assert refused.status_code == 401 and "not for this service" in refused.text
