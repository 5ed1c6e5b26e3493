"""What ``mloop score TARGET`` scores with: an endpoint, or a model version named directly.

``TARGET`` is resolved in this order:

- ``fraud:3`` is version 3 of model ``fraud``; ``fraud@champion`` the version alias ``champion`` points at
  (endpoint names cannot hold ``:`` or ``@``, so these are always models);
- a bare name with ``version=`` or ``alias=`` is that version of that model (or, when no model has the
  name but an endpoint does, of the endpoint's model);
- a bare name of a live endpoint is the version its traffic policy sends most traffic to (its primary).
  When a model has the same name, the endpoint wins and the resolution's ``note`` says so;
- a bare model name is the version alias ``champion`` points at if it is set, else the newest version.

>>> resolve_target(project, "fraud@champion")                     # doctest: +SKIP
Target(model='fraud', version=3, endpoint=None, note='alias champion of model fraud')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.project import Project

CHAMPION = "champion"


@dataclass(frozen=True)
class Target:
    model: str
    version: int
    endpoint: str | None  # set when the target named an endpoint
    note: str  # how the name was resolved, for the report


def resolve_target(
    project: Project, target: str, *, version: int | None = None, alias: str | None = None
) -> Target:
    """The model version ``target`` names (see the module docstring)."""
    name, version, alias = _parse(target, version, alias)
    models = {m.name: m for m in project.models.list()}
    endpoint = _endpoint(project, name)
    if version is None and alias is None:
        if endpoint is not None:
            note = f"endpoint {name} (primary version {endpoint.primary} of model {endpoint.model})"
            if name in models:
                note += (
                    f"; {name!r} is also a model name: the endpoint wins. Score the model with "
                    f"{name}@{CHAMPION} or {name}:N"
                )
            return Target(endpoint.model, endpoint.primary, name, note)
        if name in models:
            found = models[name]
            if CHAMPION in found.aliases:
                return Target(name, found.aliases[CHAMPION], None, f"alias {CHAMPION} of model {name}")
            if found.latest_version is None:
                raise NotFound(f"Model {name!r} has no versions left to score with; register one first.")
            return Target(
                name, found.latest_version, None, f"newest version of model {name} (no {CHAMPION} alias)"
            )
    model = name if name in models or endpoint is None else endpoint.model
    if model not in models:
        raise NotFound(_unknown(name, models, project))
    if alias is not None:
        chosen = project.models.get(model, alias=alias).version  # NotFound lists the aliases
        return Target(model, chosen, None, f"alias {alias} of model {model}")
    assert version is not None
    project.models.get(model, version=version)  # NotFound lists the versions
    return Target(model, version, None, f"version {version} of model {model}")


def _parse(target: str, version: int | None, alias: str | None) -> tuple[str, int | None, str | None]:
    if not isinstance(target, str) or not target.strip():
        raise MloopError("Name what to score with: an endpoint, a model (fraud), fraud:3 or fraud@champion.")
    if version is not None and alias is not None:
        raise MloopError("Pass a version or an alias, not both.")
    name, given_version, given_alias = target.strip(), None, None
    if "@" in name:
        name, _, given_alias = name.partition("@")
    elif ":" in name:
        name, _, text = name.partition(":")
        if not text.isdigit() or int(text) < 1:
            raise MloopError(f"{target!r}: the part after ':' must be a version number, like {name}:3.")
        given_version = int(text)
    if not name or (given_alias is not None and not given_alias):
        raise MloopError(f"{target!r} is not a target: write fraud, fraud:3 or fraud@champion.")
    named = (given_version, given_alias)
    if named != (None, None) and (version, alias) not in ((None, None), named):
        raise MloopError(
            f"{target!r} names a version already; leave out --version/--alias, or the part after the name."
        )
    return name, given_version if given_version is not None else version, given_alias or alias


def _endpoint(project: Project, name: str) -> Any:
    try:
        found = project.deployments.get(name)
    except (NotFound, PermissionDenied):  # a caller who may not see endpoints scores models by name
        return None
    return found if found.active else None


def _unknown(name: str, models: dict[str, Any], project: Project) -> str:
    try:
        endpoints = [d.endpoint for d in project.deployments.list()]
    except MloopError:
        endpoints = []
    return (
        f"Nothing to score with named {name!r}: it is neither a live endpoint nor a registered model. "
        f"Endpoints: {', '.join(endpoints) or 'none'}; models: {', '.join(sorted(models)) or 'none'}. "
        "Register a model (or deploy one) first, or check the name."
    )
