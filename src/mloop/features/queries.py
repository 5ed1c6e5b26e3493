"""The SQL of feature definitions in the metadata store: versioned, diffed, checked across references.

``apply`` records each changed definition as a new version in one transaction with one audit event;
``plan`` says what ``apply`` would do, with a field-by-field diff. Views bring their entities and push
sources along. Deleting what something else depends on (a view a registered model was trained on, an
entity a view uses) is refused with the list of dependants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.errors import NotFound, SchemaError
from mloop.features.definitions import (
    Definition,
    Entity,
    FeatureView,
    Field,
    OnDemandView,
    PushSource,
    function_from_source,
    source_from_spec,
    spec_hash,
)
from mloop.store.schema import FeatureDefinitionRow, MaterializationRow, ModelVersionRow, RegisteredModelRow

KINDS = ("entity", "push_source", "feature_view", "on_demand_view")


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # create | update | unchanged
    version: int
    diff: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "diff": list(self.diff)}


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    specs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True)
class Stored:
    kind: str
    name: str
    version: int
    spec: dict[str, Any]


def expand(definitions: Iterable[Any]) -> list[Definition]:
    """The definitions, with the entities and push sources their views use, each once, in apply order."""
    found: dict[tuple[str, str], Any] = {}
    for item in definitions:
        if not isinstance(item, Entity | FeatureView | OnDemandView | PushSource):
            raise SchemaError(
                f"Cannot apply a {type(item).__name__}: apply Entity, FeatureView, OnDemandView and PushSource objects."
            )
        extra: list[Any] = []
        if isinstance(item, FeatureView):
            extra = list(item.entities)
            if isinstance(item.source, PushSource):
                extra.append(item.source)
        for obj in [*extra, item]:
            key = (obj.kind, obj.name)
            if key in found and found[key].spec() != obj.spec():
                raise SchemaError(
                    f"Two different definitions of {obj.kind} {obj.name!r} in one apply; keep one."
                )
            found[key] = obj
    return sorted(found.values(), key=lambda d: KINDS.index(d.kind))


def latest(session: Session, project_id: int, kind: str | None = None) -> dict[tuple[str, str], Stored]:
    """The newest version of every live definition (of one kind, or all)."""
    newest = (
        select(
            FeatureDefinitionRow.kind,
            FeatureDefinitionRow.name,
            func.max(FeatureDefinitionRow.version).label("v"),
        )
        .where(FeatureDefinitionRow.project_id == project_id)
        .group_by(FeatureDefinitionRow.kind, FeatureDefinitionRow.name)
        .subquery()
    )
    query = (
        select(FeatureDefinitionRow)
        .join(
            newest,
            (FeatureDefinitionRow.kind == newest.c.kind)
            & (FeatureDefinitionRow.name == newest.c.name)
            & (FeatureDefinitionRow.version == newest.c.v),
        )
        .where(FeatureDefinitionRow.project_id == project_id, FeatureDefinitionRow.deleted_at.is_(None))
    )
    if kind:
        query = query.where(FeatureDefinitionRow.kind == kind)
    return {(r.kind, r.name): Stored(r.kind, r.name, r.version, r.spec) for r in session.scalars(query)}


def highest_versions(session: Session, project_id: int) -> dict[tuple[str, str], int]:
    """The highest version each definition name ever had, deleted ones included: a definition applied
    again after its deletion continues from there (versions are never reused)."""
    query = (
        select(FeatureDefinitionRow.kind, FeatureDefinitionRow.name, func.max(FeatureDefinitionRow.version))
        .where(FeatureDefinitionRow.project_id == project_id)
        .group_by(FeatureDefinitionRow.kind, FeatureDefinitionRow.name)
    )
    return {(kind, name): version for kind, name, version in session.execute(query)}


def plan(session: Session, project_id: int, definitions: Iterable[Any]) -> Plan:
    items = expand(definitions)
    stored = latest(session, project_id)
    ever = highest_versions(session, project_id)
    result = Plan()
    for item in items:
        spec = item.spec()
        before = stored.get((item.kind, item.name))
        if before is None:
            result.changes.append(
                Change(item.kind, item.name, "create", ever.get((item.kind, item.name), 0) + 1)
            )
        elif spec_hash(before.spec) == spec_hash(spec):
            result.changes.append(Change(item.kind, item.name, "unchanged", before.version))
        else:
            result.changes.append(
                Change(item.kind, item.name, "update", before.version + 1, tuple(diff(before.spec, spec)))
            )
        result.specs[(item.kind, item.name)] = spec
    _check_references(items, stored)
    return result


def record(session: Session, project_id: int, result: Plan, actor: str) -> None:
    now = utcnow()
    for change in result.pending:
        spec = result.specs[(change.kind, change.name)]
        session.add(
            FeatureDefinitionRow(
                project_id=project_id,
                kind=change.kind,
                name=change.name,
                version=change.version,
                spec=spec,
                spec_hash=spec_hash(spec),
                created_at=now,
                created_by=actor,
                deleted_at=None,
            )
        )


def delete(session: Session, project_id: int, kind: str, name: str) -> int:
    """Mark the newest version of a definition deleted, unless something depends on it."""
    stored = latest(session, project_id)
    target = stored.get((kind, name))
    if target is None:
        raise NotFound(
            f"No {kind.replace('_', ' ')} named {name!r}; `mloop features list` shows the definitions."
        )
    users = dependants(session, project_id, kind, name, stored)
    if users:
        raise SchemaError(
            f"Cannot delete {kind.replace('_', ' ')} {name!r}: {', '.join(users)} depend(s) on it. "
            "Delete or retrain those first."
        )
    row = session.scalar(
        select(FeatureDefinitionRow).where(
            FeatureDefinitionRow.project_id == project_id,
            FeatureDefinitionRow.kind == kind,
            FeatureDefinitionRow.name == name,
            FeatureDefinitionRow.version == target.version,
        )
    )
    assert row is not None
    row.deleted_at = utcnow()
    return target.version


def dependants(
    session: Session, project_id: int, kind: str, name: str, stored: dict[tuple[str, str], Stored]
) -> list[str]:
    out: list[str] = []
    for (other_kind, other), item in stored.items():
        spec = item.spec
        if kind == "entity" and other_kind == "feature_view" and name in spec["entities"]:
            out.append(f"feature view {other}")
        if kind == "push_source" and other_kind == "feature_view" and spec["source"].get("name") == name \
                and spec["source"]["type"] == "push":  # fmt: skip
            out.append(f"feature view {other}")
        if (
            kind == "feature_view"
            and other_kind == "on_demand_view"
            and any(ref.split(":")[0] == name for ref in spec["inputs"])
        ):
            out.append(f"on-demand view {other}")
    if kind in ("feature_view", "on_demand_view"):
        rows = session.execute(
            select(RegisteredModelRow.name, ModelVersionRow.version, ModelVersionRow.lineage)
            .join(ModelVersionRow, ModelVersionRow.model_id == RegisteredModelRow.id)
            .where(RegisteredModelRow.project_id == project_id)
        )
        for model, version, lineage in rows:
            views = (lineage or {}).get("feature_views", [])
            if any((v.get("name") if isinstance(v, dict) else v) == name for v in views):
                out.append(f"model {model} v{version}")
    return out


def load(stored: dict[tuple[str, str], Stored], kind: str, name: str) -> Definition:
    """Rebuild a definition object from its stored spec."""
    item = stored.get((kind, name))
    if item is None:
        raise NotFound(f"No {kind.replace('_', ' ')} named {name!r}; apply it first (mloop features apply).")
    spec = item.spec
    if kind == "entity":
        return Entity(
            spec["name"],
            spec["join_keys"],
            spec.get("description", ""),
            spec.get("dtypes"),
            bool(spec.get("pii")),
        )
    if kind == "push_source":
        return source_from_spec({"type": "push", **spec})  # type: ignore[return-value]
    if kind == "feature_view":
        from mloop.features.definitions import Aggregation

        entities = [cast(Entity, load(stored, "entity", e)) for e in spec["entities"]]
        return FeatureView(
            spec["name"],
            entities=entities,
            source=source_from_spec(spec["source"]),
            ttl=spec["ttl"],
            features=[Field(**f) for f in spec["features"]],
            aggregations=[Aggregation.from_spec(a) for a in spec["aggregations"]],
            owner=spec.get("owner", ""),
            description=spec.get("description", ""),
            tags=spec.get("tags", {}),
            on_missing=spec.get("on_missing", "error"),
            defaults=spec.get("defaults", {}),
        )
    return OnDemandView(
        spec["name"],
        inputs=spec["inputs"],
        request=[Field(**f) for f in spec["request"]],
        fn=function_from_source(spec),
        outputs=[Field(**f) for f in spec["outputs"]],
        description=spec.get("description", ""),
        source_code=spec["source_code"],
    )


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Readable differences between two specs: ``ttl: '7d' -> '2d'``, ``features: + amount``."""
    if isinstance(before, dict) and isinstance(after, dict):
        lines: list[str] = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}.{key}" if path else key
            if key not in before:
                lines.append(f"{where}: added {after[key]!r}")
            elif key not in after:
                lines.append(f"{where}: removed")
            else:
                lines.extend(diff(before[key], after[key], where))
        return lines
    if isinstance(before, list) and isinstance(after, list) and before != after:
        named = all(isinstance(x, dict) and "name" in x for x in before + after)
        if named:
            old = {x["name"]: x for x in before}
            new = {x["name"]: x for x in after}
            lines = [f"{path}: + {n}" for n in new if n not in old] + [
                f"{path}: - {n}" for n in old if n not in new
            ]
            for n in new:
                if n in old:
                    lines.extend(diff(old[n], new[n], f"{path}[{n}]"))
            return lines
        return [f"{path}: {before!r} -> {after!r}"]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def _check_references(items: Sequence[Definition], stored: dict[tuple[str, str], Stored]) -> None:
    """On-demand inputs must name features of views that exist (in this apply or already)."""
    views: dict[str, list[str]] = {
        name: [f["name"] for f in s.spec["features"]] + [a["name"] for a in s.spec["aggregations"]]
        for (kind, name), s in stored.items()
        if kind == "feature_view"
    }
    for item in items:
        if isinstance(item, FeatureView):
            views[item.name] = item.feature_names
    names = {i.name: i.kind for i in items if i.kind in ("feature_view", "on_demand_view")}
    names.update({n: k for (k, n) in stored if k in ("feature_view", "on_demand_view") and n not in names})
    for item in items:
        if isinstance(item, OnDemandView):
            if names.get(item.name) == "feature_view" or item.name in views:
                raise SchemaError(
                    f"OnDemandView {item.name!r} has the name of a feature view; rename one of them."
                )
            for ref in item.inputs:
                view, feature = ref.split(":")
                if view not in views:
                    raise SchemaError(
                        f"OnDemandView {item.name!r}: input {ref!r} names unknown feature view {view!r}."
                    )
                if feature not in views[view]:
                    raise SchemaError(
                        f"OnDemandView {item.name!r}: view {view!r} has no feature {feature!r} "
                        f"(it has: {', '.join(views[view])})."
                    )


def materialized(
    session: Session, project_id: int, view: str, version: int
) -> tuple[datetime | None, datetime | None]:
    """(newest event, end of the newest materialized range) of a view's version; Nones before the first."""
    row = session.execute(
        select(func.max(MaterializationRow.last_event_ts), func.max(MaterializationRow.end_ts)).where(
            MaterializationRow.project_id == project_id,
            MaterializationRow.view == view,
            MaterializationRow.view_version == version,
        )
    ).one()
    return row[0], row[1]


def materializations(session: Session, project_id: int, view: str) -> list[tuple[datetime, datetime]]:
    """(finished at, end of the range) of every materialization of the view's newest version."""
    newest = session.scalar(
        select(func.max(MaterializationRow.view_version)).where(
            MaterializationRow.project_id == project_id, MaterializationRow.view == view
        )
    )
    rows = session.execute(
        select(MaterializationRow.finished_at, MaterializationRow.end_ts).where(
            MaterializationRow.project_id == project_id,
            MaterializationRow.view == view,
            MaterializationRow.view_version == newest,
        )
    ).all()
    return [(finished, end) for finished, end in rows]
