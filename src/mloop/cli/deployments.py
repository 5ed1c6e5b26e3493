"""``mloop deploy | rollback | undeploy`` and ``mloop deployments list | show | history``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from mloop.cli import _output as out
from mloop.cli import _state
from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.deployments import Deployment

app = typer.Typer(help="Deployment revisions of the project's endpoints.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


def _routes(d: Deployment) -> str:
    text = ", ".join(f"v{r.version} {r.weight:.0%}" for r in d.routes)
    return text + (f"; shadow {', '.join(f'v{v}' for v in d.shadow)}" if d.shadow else "")


def _parse_ab(items: list[str]) -> dict[str, float]:
    shares = {}
    for item in items:
        version, eq, share = item.partition("=")
        try:
            shares[version] = float(share)
        except ValueError:
            eq = ""
        if not eq:
            raise MloopError(f"--ab takes VERSION=SHARE (for example --ab v3=0.5 --ab v4=0.5), got {item!r}.")
    return shares


def _said(d: Deployment) -> None:
    what = "undeployed" if not d.active else _routes(d)
    out.success(f"{d.endpoint} revision {d.revision} ({d.kind}): {d.model} {what}")


def deploy(
    endpoint: str = typer.Argument(..., help="The endpoint name (the URL /v1/endpoints/NAME/predict)."),
    model: str = typer.Argument(..., help="A registered model."),
    version: int | None = typer.Option(None, "--version", "-v", help="The version to deploy."),
    alias: str | None = typer.Option(None, "--alias", "-a", help="Deploy the version this alias points at."),
    canary: float | None = typer.Option(None, "--canary", help="Give it this share (0-1); the live one keeps the rest."),
    ab: list[str] = typer.Option([], "--ab", help="VERSION=SHARE, repeated; the shares sum to 1."),
    sticky_key: str | None = typer.Option(None, "--sticky-key", help="A request field that pins callers to a version."),
    shadow: list[int] = typer.Option([], "--shadow", help="A version that gets a copy of the traffic (repeatable)."),
    runtime: str = typer.Option("native", "--runtime", help="native (each version's flavour) or onnx (its ONNX export)."),
    explain_sample: float | None = typer.Option(None, "--explain-sample", help="Share of answers (0-1) whose "
                                                "attributions the prediction log keeps (default 0: none)."),
    timeout_ms: float | None = typer.Option(None, "--timeout-ms", help="A model call past this many ms "
                                            "answers 504 (default: no limit)."),
    as_json: bool = JsonOpt,
) -> None:  # fmt: skip
    """Deploy a model version to an endpoint: fully, as a canary, as an A/B split, with shadows.

    Examples:

      $ mloop deploy fraud fraud --alias champion
      $ mloop deploy fraud fraud -v 4 --canary 0.1
      $ mloop deploy fraud fraud --ab 3=0.5 --ab 4=0.5 --sticky-key customer_id
      $ mloop deploy digits digits -v 3 --runtime onnx
      $ mloop deploy fraud fraud -v 4 --explain-sample 0.1
      $ mloop deploy fraud fraud -v 4 --timeout-ms 250
    """
    options = {"explain_sample": explain_sample, "timeout_ms": timeout_ms}
    found = _state.project().deploy(
        endpoint, model, version=version, alias=alias, canary=canary, ab=_parse_ab(ab) if ab else None,
        sticky_key=sticky_key, shadow=shadow or None, runtime=runtime,
        options={k: v for k, v in options.items() if v is not None} or None,
    )  # fmt: skip
    out.emit_json(found.to_dict()) if as_json else _said(found)


def rollback(endpoint: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Restore the revision the live one replaced (again: one further back).

    Example:

      $ mloop rollback fraud
    """
    found = _state.project().rollback(endpoint)
    out.emit_json(found.to_dict()) if as_json else _said(found)


def undeploy(endpoint: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Stop serving an endpoint (a new, inactive revision; roll back to serve again).

    Example:

      $ mloop undeploy fraud
    """
    found = _state.project().deployments.undeploy(endpoint)
    out.emit_json(found.to_dict()) if as_json else _said(found)


@app.command("list")
def list_deployments(
    every: bool = typer.Option(False, "--all", help="Include undeployed endpoints."), as_json: bool = JsonOpt
) -> None:
    """Every endpoint's live revision.

    Example:

      $ mloop deployments list --all
    """
    project = _state.project()
    found = project.deployments.list(include_inactive=every)
    if as_json:
        out.emit_json([d.to_dict() for d in found])
        return
    out.table("Deployments", ["endpoint", "rev", "model", "routes", "runtime", "sticky", "created"],
              [(d.endpoint, d.revision, d.model, _routes(d) if d.active else "(undeployed)", d.runtime,
                d.sticky_key, d.created_at) for d in found])  # fmt: skip
    pipelines = project.settings.pipelines  # mloop.yaml's pipeline endpoints, served beside these
    if pipelines:
        out.table("Pipelines", ["endpoint", "stages"],
                  [(name, " → ".join(f"{s.name} ({s.endpoint or s.kind})" for s in p.stages))
                   for name, p in pipelines.items()])  # fmt: skip


@app.command()
def show(
    endpoint: str = typer.Argument(...),
    revision: int | None = typer.Argument(None, help="A revision; without it, the live one."),
    as_json: bool = JsonOpt,
) -> None:
    """One revision of an endpoint in detail.

    Examples:

      $ mloop deployments show fraud
      $ mloop deployments show fraud 3
    """
    found = _state.project().deployments.get(endpoint, revision)
    if as_json:
        out.emit_json(found.to_dict())
        return
    out.fields(f"{endpoint} revision {found.revision}", {
        "model": found.model, "routes": _routes(found), "runtime": found.runtime, "alias": found.alias,
        "sticky key": found.sticky_key,
        "kind": found.kind, "replaced": found.previous, "active": found.active,
        "created": f"{found.created_at:%Y-%m-%d %H:%M:%S} by {found.created_by}",
    })  # fmt: skip


@app.command()
def history(endpoint: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Every revision of an endpoint, oldest first.

    Example:

      $ mloop deployments history fraud
    """
    found = _state.project().deployments.history(endpoint)
    if as_json:
        out.emit_json([d.to_dict() for d in found])
        return
    out.table(f"Endpoint {endpoint}", ["rev", "kind", "routes", "replaced", "created", "by"],
              [(d.revision, d.kind, _routes(d) if d.active else "(none)", d.previous, d.created_at, d.created_by)
               for d in found])  # fmt: skip
