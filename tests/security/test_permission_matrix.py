"""Every HTTP route and every CLI command that reads or changes state, tried by every identity, against
the permission tables of docs/security.md: a difference fails naming its cell, and so does a route or a
command the tables (or the requests below) do not know yet.

Identities: a user per role, ``ml_engineer`` scoped to the endpoint the requests name and to another
one, no key, and keys that must be refused (malformed, unknown, revoked, expired, a disabled user's: the
``bad key`` column, each of them tried). The project requires keys (``local_admin: false``)."""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.main import get_command

from mloop import Project
from mloop.cli import _state
from mloop.cli.main import app as cli_app
from mloop.errors import AuthenticationError, ConfigError, MloopError, PermissionDenied
from mloop.serving.http.app import create_app
from tests.security import matrix
from tests.security.world import BAD_KEYS, IDENTITIES, World, build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("permission-matrix"),
]  # the module's fixtures are built once, on one worker


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build(tmp_path_factory.mktemp("matrix"))


# ---- HTTP -------------------------------------------------------------------------------------------

NOW = pd.Timestamp.now(tz="UTC").isoformat()
ROW = {"customer_id": 7, "amount": 12.5}
INFER = {"inputs": [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [7]},
                    {"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]}]}  # fmt: skip

# One request per route: the URL (endpoint fraud, model version 1) and its JSON body, if any.
REQUESTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "POST /v1/features/online": (
        "/v1/features/online",
        {"features": ["customer_last:device"], "entities": {"customer_id": [7]}},
    ),
    "POST /v1/features/push": (
        "/v1/features/push",
        {"push_source": "clicks", "rows": [{"customer_id": 5, "ts": NOW, "page": "home"}]},
    ),
    "POST /v1/endpoints/{name}/predict": ("/v1/endpoints/fraud/predict", {"rows": [ROW]}),
    "POST /v1/endpoints/{name}/explain": ("/v1/endpoints/fraud/explain", {"rows": [ROW], "top_k": 2}),
    "POST /v1/endpoints/{name}/counterfactual": ("/v1/endpoints/fraud/counterfactual", {"rows": [ROW]}),
    "GET /v1/endpoints/{name}": ("/v1/endpoints/fraud", None),
    "GET /v2": ("/v2", None),
    "GET /v2/models/{name}": ("/v2/models/fraud", None),
    "GET /v2/models/{name}/versions/{version}": ("/v2/models/fraud/versions/1", None),
    "GET /v2/models/{name}/ready": ("/v2/models/fraud/ready", None),
    "GET /v2/models/{name}/versions/{version}/ready": ("/v2/models/fraud/versions/1/ready", None),
    "POST /v2/models/{name}/infer": ("/v2/models/fraud/infer", INFER),
    "POST /v2/models/{name}/versions/{version}/infer": ("/v2/models/fraud/versions/1/infer", INFER),
    "POST /v1/feedback": ("/v1/feedback", {"request_id": "r-1", "label": 1}),
    "GET /v1/monitoring/{endpoint}/drift": ("/v1/monitoring/fraud/drift?since=1h", None),
    "GET /v1/monitoring/{endpoint}/performance": ("/v1/monitoring/fraud/performance?since=1h", None),
    "GET /v1/monitoring/{endpoint}/slo": ("/v1/monitoring/fraud/slo", None),
    "GET /v1/monitoring/{endpoint}/alerts": ("/v1/monitoring/fraud/alerts", None),
    "GET /v1/monitoring/{endpoint}/report": ("/v1/monitoring/fraud/report?since=1h&format=json", None),
    "GET /v1/review": ("/v1/review?only=lifecycle.rollback-target", None),
    "GET /v2/health/live": ("/v2/health/live", None),
    "GET /v2/health/ready": ("/v2/health/ready", None),
    "GET /metrics": ("/metrics", None),
    "GET /openapi.json": ("/openapi.json", None),
    "GET /docs": ("/docs", None),
    "GET /docs/oauth2-redirect": ("/docs/oauth2-redirect", None),
    "GET /redoc": ("/redoc", None),
}


def routes(client: TestClient) -> list[str]:
    """``METHOD /path`` of every route the app answers: the OpenAPI document's and those outside it."""
    app: Any = client.app
    found = {f"{m.upper()} {path}" for path, ops in app.openapi()["paths"].items() for m in ops}
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add(f"{method} {route.path}")
    return sorted(found)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[TestClient]:
    """The server as ``mloop serve`` runs it when keys are required: as a service account that reads."""
    project = world.open("auditor", serving={"max_queue_ms": None})
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client
    project.close()


def _http_outcome(client: TestClient, route: str, key: str | None) -> bool:
    url, body = REQUESTS[route]
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    response = client.request(route.split()[0], url, json=body, headers=headers)
    assert response.status_code < 500, f"{route} with {key!r}: {response.status_code} {response.text[:300]}"
    return response.status_code not in (401, 403)


def observed_http(world: World, client: TestClient) -> dict[str, dict[str, bool]]:
    seen: dict[str, dict[str, bool]] = {}
    for route in routes(client):
        if route not in REQUESTS:
            continue
        row = {}
        for identity in IDENTITIES:
            if identity == "bad key":
                outcomes = {_http_outcome(client, route, world.bad_keys[why]) for why in BAD_KEYS}
                assert len(outcomes) == 1, f"{route}: the bad keys ({', '.join(BAD_KEYS)}) differ"
                row[identity] = outcomes.pop()
            else:
                row[identity] = _http_outcome(client, route, world.keys.get(identity))
        seen[route] = row
    return seen


def test_every_route_has_a_request_and_a_row(server: TestClient) -> None:
    documented = matrix.table("http")
    for route in routes(server):
        assert route in REQUESTS, f"{route} is new: add a request for it to REQUESTS in {__file__}"
        assert route in documented, (
            f"{route} is new: add its row to the permissions: http table in {matrix.DOC}"
        )
    stale = set(documented) - set(routes(server))
    assert not stale, f"the permissions: http table names routes the app does not have: {sorted(stale)}"


def test_http_matches_the_table(world: World, server: TestClient) -> None:
    _compare(observed_http(world, server), matrix.table("http"), "http")


def _compare(seen: dict[str, dict[str, bool]], documented: dict[str, dict[str, bool]], name: str) -> None:
    wrong = [
        f"{row} × {identity}: the table says {'allowed' if documented[row][identity] else 'refused'}, "
        f"it was {'allowed' if allowed else 'refused'}"
        for row, cells in seen.items()
        if row in documented
        for identity, allowed in cells.items()
        if documented[row].get(identity) != allowed
    ]
    assert not wrong, (
        f"{len(wrong)} cell(s) of permissions: {name} differ:\n"
        + "\n".join(wrong)
        + ("\n\nthe observed table:\n" + matrix.render(seen, "route" if name == "http" else "command"))
    )


# ---- CLI --------------------------------------------------------------------------------------------

# One invocation per command ({root}, {run1}, {run2}, {rows}, ... come from the world), and what an admin
# runs before each try where the previous try may have used the state up (a deleted view, say).
COMMANDS: dict[str, list[str]] = {
    "info": ["info", "--json"],
    "score": ["score", "fraud", "-i", "{rows}", "-o", "{out}", "--workers", "1", "--json"],
    "explain": ["explain", "fraud", "--row", '{{"customer_id": 7, "amount": 12.5}}', "--format", "json"],
    "deploy": ["deploy", "fraud", "fraud", "--version", "1", "--json"],
    "rollback": ["rollback", "fraud", "--json"],
    "undeploy": ["undeploy", "fraud", "--json"],
    "data ingest": ["data", "ingest", "{csv}", "--dataset", "txns", "--json"],
    "data validate": ["data", "validate", "{csv}", "--dataset", "txns", "--json"],
    "data list": ["data", "list", "--json"],
    "data show": ["data", "show", "txns", "-n", "2", "--json"],
    "data schema": ["data", "schema", "txns", "--json"],
    "data quarantine": ["data", "quarantine", "txns", "--json"],
    "features plan": ["features", "plan", "{views}", "--json"],
    "features apply": ["features", "apply", "{views}", "--json"],
    "features list": ["features", "list", "--json"],
    "features show": ["features", "show", "customer_last", "--json"],
    "features materialize": [
        "features",
        "materialize",
        "--start",
        "{hour_ago}",
        "--view",
        "customer_last",
        "--json",
    ],
    "features get": ["features", "get", "-e", "customer_id=7", "-f", "customer_last:device", "--json"],
    "features push": ["features", "push", "clicks", "{push}", "--json"],
    "features delete": ["features", "delete", "spare_{identity}"],
    "models list": ["models", "list", "--json"],
    "models show": ["models", "show", "fraud", "1", "--json"],
    "models card": ["models", "card", "fraud", "1", "--json"],
    "models alias": ["models", "alias", "fraud", "champion", "1"],
    "models promote": ["models", "promote", "fraud", "2", "--to", "staging"],
    "models approve": ["models", "approve", "fraud", "2"],
    "models reject": ["models", "reject", "fraud", "2"],
    "models pending": ["models", "pending", "--json"],
    "models history": ["models", "history", "fraud", "--json"],
    "models delete": ["models", "delete", "fraud", "3"],
    "models export": ["models", "export", "fraud:1", "--format", "onnx", "--json"],
    "models package": ["models", "package", "fraud:1", "--edge", "--out", "{out}", "--json"],
    "models index": ["models", "index", "fraud:1", "--json"],
    "users add": ["users", "add", "{new_user}", "--role", "auditor"],
    "users list": ["users", "list", "--json"],
    "users grant": ["users", "grant", "u_target", "auditor"],
    "users revoke": ["users", "revoke", "u_target", "auditor"],
    "users disable": ["users", "disable", "u_target"],
    "users enable": ["users", "enable", "u_target"],
    "keys issue": ["keys", "issue", "u_target", "--json"],
    "keys list": ["keys", "list", "--json"],
    "keys revoke": ["keys", "revoke", "{spare_key}"],
    "keys rotate-data-key": ["keys", "rotate-data-key", "--json"],
    "audit verify": ["audit", "verify", "--json"],
    "audit head": ["audit", "head", "--json"],
    "audit log": ["audit", "log", "-n", "3", "--json"],
    "artifacts verify": ["artifacts", "verify", "--json"],
    "artifacts clean": ["artifacts", "clean", "--json"],
    "runs list": ["runs", "list", "--json"],
    "runs show": ["runs", "show", "{run1}", "--json"],
    "runs compare": ["runs", "compare", "{run1}", "{run2}", "--json"],
    "runs experiments": ["runs", "experiments", "--json"],
    "deployments list": ["deployments", "list", "--json"],
    "deployments show": ["deployments", "show", "fraud", "--json"],
    "deployments history": ["deployments", "history", "fraud", "--json"],
    "monitor drift": ["monitor", "drift", "fraud", "--since", "1h", "--json"],
    "monitor performance": ["monitor", "performance", "fraud", "--since", "1h", "--json"],
    "monitor slo": ["monitor", "slo", "fraud", "--json"],
    "monitor check": ["monitor", "check", "fraud", "--json"],
    "monitor alerts": ["monitor", "alerts", "fraud", "--json"],
    "monitor sensors": ["monitor", "sensors", "--json"],
    "monitor report": ["monitor", "report", "fraud", "--since", "1h", "--out", "{out}", "--json"],
    "ab report": ["ab", "report", "fraud", "--since", "1h", "--json"],
    "forget": ["forget", "--entity", "customer_id=7", "--dry-run", "--json"],
    "retention purge": ["retention", "purge", "--dry-run", "--json"],
    "loop tick": ["loop", "tick", "--json"],
    "loop status": ["loop", "status", "fraud", "--json"],
    "loop timeline": ["loop", "timeline", "fraud", "--json"],
    "loop pause": ["loop", "pause", "fraud"],
    "loop resume": ["loop", "resume", "fraud"],
    "loop approve": ["loop", "approve", "fraud"],
    "review": ["review", "--only", "lifecycle.rollback-target", "--json"],
    "cost": ["cost", "--json"],
    "metrics": ["metrics", "--json"],
    "decisions add": [
        "decisions",
        "add",
        "--title",
        "T{identity}",
        "--context",
        "c",
        "--option",
        "A",
        "--option",
        "B",
        "--choice",
        "A",
        "--tradeoff",
        "t",
        "--owner",
        "u_target",
        "--review-by",
        "2099-01-01",
    ],
    "decisions list": ["decisions", "list", "--json"],
    "decisions show": ["decisions", "show", "ADR-1", "--json"],
    "decisions supersede": ["decisions", "supersede", "ADR-1", "--by", "ADR-2"],
}
# What the admin's try of these ends with, the world holding nothing for them to act on; every other
# command must succeed for the admin (else its invocation above is wrong and proves little). A LightGBM
# model over a string column has no ONNX export: the admin's export is refused for that, past the check;
# fraud:1 has no vector index, so the admin's ``models index`` is refused for that, past the check; the
# first role allowed to supersede ADR-1 did, so the admin's supersede is refused as a repeat, past the check.
ADMIN_ENDS = {"models approve": "NotFound", "models reject": "NotFound", "loop tick": "No loop policies",
              "loop approve": "nothing waits", "models export": "ExportError", "models package": "ExportError",
              "models index": "no vector index", "decisions supersede": "superseded by ADR-2 already"}  # fmt: skip
MLOOP = get_command(cli_app)  # built once: typer builds it anew on every call of the app
BEFORE: dict[str, list[str]] = {
    "rollback": ["deploy", "fraud", "fraud", "--version", "1"],
    "undeploy": ["deploy", "fraud", "fraud", "--version", "1"],
    "models promote": ["models", "promote", "fraud", "2", "--to", "archived"],
}


def commands() -> list[str]:
    """Every command of ``mloop``, as typed (``data ingest``), from the Typer app itself."""

    def walk(command: Any, prefix: list[str]) -> Iterator[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield " ".join(prefix)
        for name, sub in (subcommands or {}).items():
            yield from walk(sub, [*prefix, name])

    return list(walk(MLOOP, []))


@dataclass
class Cli:
    world: World
    monkeypatch: pytest.MonkeyPatch
    tries: itertools.count = field(default_factory=itertools.count)
    identity: int = 0  # the index of the identity trying, in IDENTITIES
    projects: dict[str, Project] = field(default_factory=dict)
    last: str = ""  # how the last command ended, when it was not refused

    def close(self) -> None:
        for project in self.projects.values():
            project.close()

    def args(self, template: list[str]) -> list[str]:
        n = next(self.tries)
        w = self.world
        values = {"rows": w.files["rows"], "csv": w.files["csv"], "views": w.files["views"],
                  "push": w.files["push"], "out": w.root / "out" / f"{n}.out", "run1": w.run_ids[0],
                  "run2": w.run_ids[1], "new_user": f"u_new_{n}", "identity": self.identity, "spare_key": w.spare_key,
                  "hour_ago": (pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h")).isoformat()}  # fmt: skip
        return [part.format(**values) for part in template]

    def __call__(self, template: list[str], identity: str, key: str | None = None) -> bool:
        """Run ``mloop -C ROOT ...`` as ``identity``; False if it was refused.

        A role's project is opened once with its key and handed to the command (opening one per command
        would take most of this test's time); ``no key`` and ``bad key`` go the whole way, through
        MLOOP_API_KEY (``key``) and the command's own opening of the project."""
        if identity in ("no key", "bad key"):
            if key is None:
                self.monkeypatch.delenv("MLOOP_API_KEY", raising=False)
            else:
                self.monkeypatch.setenv("MLOOP_API_KEY", key)
        else:
            if identity not in self.projects:
                self.projects[identity] = self.world.open(identity)
            _state._state["project"] = self.projects[identity]
        args = ["-C", str(self.world.root), *self.args(template)]
        self.last = "ok"
        try:
            MLOOP.main(args=args, standalone_mode=False, prog_name="mloop")
        except (AuthenticationError, PermissionDenied):
            return False
        except ConfigError as exc:
            return "No identity" not in str(exc)  # no key: refused before anything is read
        except MloopError as exc:
            self.last = f"{type(exc).__name__}: {exc}"
            return True  # past the permission check (a missing version, nothing pending, ...)
        except Exception as exc:
            # typer vendors click: its exceptions are told by shape (as mloop.cli.main does)
            if type(exc).__name__ == "Exit":
                return True
            if hasattr(exc, "format_message"):  # a usage error: the invocation above is wrong
                raise AssertionError(f"mloop {' '.join(args)}: {exc.format_message()}") from exc
            raise
        finally:
            if identity in ("no key", "bad key"):
                _state.close()
            _state._state["project"] = None  # kept open for the next command
        return True


@pytest.fixture(scope="module")
def cli(world: World) -> Iterator[Cli]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("MLOOP_API_KEY", "MLOOP_PROJECT_DIR", "MLOOP_METADATA_URL", "MLOOP_LOCAL_ADMIN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NO_COLOR", "1")
        cli = Cli(world, monkeypatch)
        yield cli
        cli.close()


def observed_cli(world: World, cli: Cli, names: list[str]) -> dict[str, dict[str, bool]]:
    """Each command tried by each identity (the admin last: it may use up what the others could not)."""
    bad = itertools.cycle(BAD_KEYS)
    order = [i for i in IDENTITIES if i != "admin"] + ["admin"]
    seen: dict[str, dict[str, bool]] = {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for name in names:
            row = {}
            for identity in order:
                if name in BEFORE:
                    assert cli(BEFORE[name], "admin"), f"the admin's {BEFORE[name]} was refused"
                cli.identity = IDENTITIES.index(identity)
                key = world.bad_keys[next(bad)] if identity == "bad key" else None
                row[identity] = cli(COMMANDS[name], identity, key)
            assert ADMIN_ENDS.get(name, "ok") in cli.last, f"the admin's mloop {name} ended: {cli.last}"
            seen[name] = {identity: row[identity] for identity in IDENTITIES}
    return seen


def test_every_command_has_an_invocation_and_a_row() -> None:
    documented, left_out = matrix.table("cli"), matrix.notes("cli-left-out")
    for name in commands():
        assert (name in COMMANDS) != (name in left_out), (
            f"mloop {name}: add an invocation to COMMANDS in {__file__}, or say in the permissions: "
            f"cli-left-out table of {matrix.DOC} why the matrix leaves it out (one of the two)"
        )
        assert (name in documented) == (name in COMMANDS), (
            f"mloop {name}: add its row to the permissions: cli table in {matrix.DOC}"
        )
    stale = (set(documented) | set(left_out)) - set(commands())
    assert not stale, f"the permission tables name commands mloop does not have: {sorted(stale)}"


def test_cli_matches_the_table(world: World, cli: Cli) -> None:
    _compare(observed_cli(world, cli, [n for n in commands() if n in COMMANDS]), matrix.table("cli"), "cli")
