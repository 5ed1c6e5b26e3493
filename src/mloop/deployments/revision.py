"""A deployment revision: which model versions serve an endpoint, with what share of traffic, and the
checks on what a deployment may say (endpoint names, options, shares)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mloop._names import valid
from mloop.errors import MloopError
from mloop.store.schema import DeploymentRow

_ENDPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KINDS = ("deploy", "rollback", "undeploy")
OPTIONS = {
    "max_batch_size": (int, 1, 10_000),
    "max_wait_ms": (float, 0, 1_000),
    "cache_size": (int, 0, 10_000_000),
    "explain_sample": (float, 0, 1),  # the share of answers whose attributions the prediction log keeps
    "timeout_ms": (float, 1, 600_000),  # a model call past it answers 504 (mloop.serving.deadline)
}


@dataclass(frozen=True)
class Route:
    version: int
    weight: float


@dataclass(frozen=True)
class Deployment:
    """One revision of an endpoint: its routes (version and share of traffic), shadow versions, how
    requests stick to a version, and where it came from."""

    endpoint: str
    revision: int
    model: str
    routes: tuple[Route, ...]
    shadow: tuple[int, ...] = ()
    sticky_key: str | None = None
    alias: str | None = None
    kind: str = "deploy"
    previous: int | None = None  # the revision this one replaced
    active: bool = True
    created_at: datetime | None = None
    created_by: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    runtime: str = "native"  # "native": each version's own flavour; "onnx": its ONNX export

    @property
    def primary(self) -> int:
        """The version with the largest share (the first listed on a tie)."""
        return max(self.routes, key=lambda r: r.weight).version

    @property
    def versions(self) -> tuple[int, ...]:
        """Every version this revision needs loaded: its routes, then its shadows."""
        routed = tuple(r.version for r in self.routes)
        return routed + tuple(v for v in self.shadow if v not in routed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "revision": self.revision,
            "model": self.model,
            "routes": [{"version": r.version, "weight": r.weight} for r in self.routes],
            "shadow": list(self.shadow),
            "sticky_key": self.sticky_key,
            "alias": self.alias,
            "kind": self.kind,
            "previous": self.previous,
            "active": self.active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
            "options": dict(self.options),
            "runtime": self.runtime,
        }


def spec_of(d: Deployment) -> dict[str, Any]:
    spec = d.to_dict()
    for key in ("endpoint", "revision", "created_at", "created_by"):
        spec.pop(key)
    return spec


def from_row(row: DeploymentRow) -> Deployment:
    spec = row.spec
    return Deployment(
        endpoint=row.endpoint,
        revision=row.revision,
        model=spec["model"],
        routes=tuple(Route(int(r["version"]), float(r["weight"])) for r in spec["routes"]),
        shadow=tuple(int(v) for v in spec.get("shadow", [])),
        sticky_key=spec.get("sticky_key"),
        alias=spec.get("alias"),
        kind=spec.get("kind", "deploy"),
        previous=spec.get("previous"),
        active=bool(spec.get("active", True)),
        created_at=row.created_at,
        created_by=row.created_by,
        options=spec.get("options", {}),
        runtime=spec.get("runtime", "native"),
    )


def check_endpoint(endpoint: str) -> None:
    if not valid(_ENDPOINT, endpoint):
        raise MloopError(
            f"Endpoint name {endpoint!r} is not allowed: use letters, digits and . _ -, starting with a letter "
            "or digit, at most 100 characters (for example 'fraud')."
        )


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per-endpoint serving options (they replace the ``serving:`` settings for this endpoint)."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in OPTIONS:
            raise MloopError(f"Unknown deployment option {key!r}; options are {', '.join(OPTIONS)}.")
        kind, low, high = OPTIONS[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not float(value).is_integer()) or not low <= value <= high:
            raise MloopError(
                f"Deployment option {key} must be {'an integer' if kind is int else 'a number'} from {low} to {high}, got {value!r}."
            )
        out[key] = kind(value)
    return out


def version_key(key: Any) -> int:
    text = str(key).strip().lower().removeprefix("v")
    if not text.isdigit() or int(text) < 1:
        raise MloopError(f"A/B key {key!r} is not a version: write it as 3 or 'v3'.")
    return int(text)


def check_share(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MloopError(f"{what} must be a number between 0 and 1, got {value!r}.")
    if not 0 < value <= 1:
        raise MloopError(f"{what} must be above 0 and at most 1 (a share of traffic), got {value!r}.")
    return float(value)
