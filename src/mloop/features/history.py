"""The history of feature definitions and cheap row counts, from the metadata store alone: every version of
a definition (paged in SQL), and per view the rows materialized into the online store and the rows of its
dataset source. :class:`DefinitionHistory` holds the methods (``view_page``, ``versions``, ``version``,
``diff``, ``row_counts``, behind ``features.read``) that :class:`~mloop.features.service.FeatureService` inherits.

>>> page, total = project.features.versions("customer_txn_stats")          # doctest: +SKIP
>>> project.features.diff("customer_txn_stats", 1, 2)                       # doctest: +SKIP
["ttl: '7d' -> '2d'", 'features: + amount_max']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._service import Service
from mloop.errors import NotFound, SchemaError
from mloop.features import queries
from mloop.store.schema import (
    DatasetRow,
    FeatureDefinitionRow,
    IngestionRow,
    MaterializationRow,
)

MAX_PAGE = 500


@dataclass(frozen=True)
class DefinitionVersion:
    """One recorded version of a definition: its spec, who recorded it and when, and whether it was
    deleted (a deleted definition keeps its versions; applying it again continues the numbering)."""

    kind: str
    name: str
    version: int
    spec: dict[str, Any]
    created_at: datetime
    created_by: str
    deleted_at: datetime | None


@dataclass(frozen=True)
class RowCounts:
    """``online``: rows materialized into the online store for the view's current version (a key written
    by two chunks counts twice; None before the first materialization). ``offline``: rows of its dataset
    source (None for other sources, which would need a scan)."""

    view: str
    online: int | None
    offline: int | None


class DefinitionHistory(Service):
    """The versions of feature definitions and the views' row counts (``features.read``)."""

    def view_page(self, *, offset: int = 0, limit: int = 50) -> tuple[list[DefinitionVersion], int]:
        """The live feature views and on-demand views (their newest versions) by name, ``limit`` from
        ``offset``, and how many there are."""
        self._authorize("features.read", "features:*")
        with self._ctx.store.read() as session:
            return live(session, self._ctx.project_id, ("feature_view", "on_demand_view"), offset, limit)

    def versions(
        self, name: str, *, kind: str = "feature_view", offset: int = 0, limit: int = 50
    ) -> tuple[list[DefinitionVersion], int]:
        """Every version of definition ``name`` (deleted ones too), newest first, ``limit`` from
        ``offset``, and how many there are; NotFound for a name never applied."""
        self._check(kind)
        self._authorize("features.read", f"{kind}:{name}")
        with self._ctx.store.read() as session:
            found, total = versions(session, self._ctx.project_id, kind, name, offset, limit)
        if not total:
            raise NotFound(
                f"No {kind.replace('_', ' ')} named {name!r} was ever applied; `mloop features list` shows "
                "the definitions."
            )
        return found, total

    def version(self, name: str, number: int, *, kind: str = "feature_view") -> DefinitionVersion:
        """Version ``number`` of definition ``name``, as it was recorded."""
        self._check(kind)
        self._authorize("features.read", f"{kind}:{name}")
        with self._ctx.store.read() as session:
            found = version(session, self._ctx.project_id, kind, name, number)
        if found is None:
            raise NotFound(
                f"{kind.replace('_', ' ').capitalize()} {name!r} has no version {number}; "
                f"`mloop features show {name}` shows its newest."
            )
        return found

    def diff(self, name: str, before: int, after: int, *, kind: str = "feature_view") -> list[str]:
        """What changed between two versions of a definition, field by field (as ``plan`` says it)."""
        old, new = self.version(name, before, kind=kind), self.version(name, after, kind=kind)
        return queries.diff(old.spec, new.spec)

    def row_counts(self, views: Sequence[str] | None = None) -> dict[str, RowCounts]:
        """Per live feature view (or those of ``views``), rows materialized online (its current version)
        and rows of its dataset source: sums over the metadata, no scan of the data."""
        self._authorize("features.read", "features:*")
        with self._ctx.store.read() as session:
            stored = queries.latest(session, self._ctx.project_id, "feature_view")
            chosen = {name: s for (_, name), s in stored.items() if views is None or name in views}
            current = {name: s.version for name, s in chosen.items()}
            sources = {name: s.spec.get("source", {}) for name, s in chosen.items()}
            datasets = {str(src["dataset"]) for src in sources.values() if src.get("type") == "dataset"}
            online = online_rows(session, self._ctx.project_id, current)
            offline = dataset_rows(session, self._ctx.project_id, datasets)
        return {
            name: RowCounts(name, online.get(name),
                            offline.get(str(src["dataset"]), 0) if src.get("type") == "dataset" else None)
            for name, src in sorted(sources.items())
        }  # fmt: skip

    @staticmethod
    def _check(kind: str) -> None:
        if kind not in queries.KINDS:
            raise SchemaError(f"Unknown definition kind {kind!r}; one of {', '.join(queries.KINDS)}.")


def live(
    session: Session, project_id: int, kinds: Sequence[str], offset: int, limit: int
) -> tuple[list[DefinitionVersion], int]:
    """A page of the newest versions of the live definitions of ``kinds``, by name, and their number."""
    newest = (
        select(
            FeatureDefinitionRow.kind,
            FeatureDefinitionRow.name,
            func.max(FeatureDefinitionRow.version).label("v"),
        )
        .where(FeatureDefinitionRow.project_id == project_id, FeatureDefinitionRow.kind.in_(list(kinds)))
        .group_by(FeatureDefinitionRow.kind, FeatureDefinitionRow.name)
        .subquery()
    )
    query = (
        select(FeatureDefinitionRow)
        .join(newest, (FeatureDefinitionRow.kind == newest.c.kind) & (FeatureDefinitionRow.name == newest.c.name)
              & (FeatureDefinitionRow.version == newest.c.v))
        .where(FeatureDefinitionRow.project_id == project_id, FeatureDefinitionRow.deleted_at.is_(None))
    )  # fmt: skip
    rows = session.scalars(
        query.order_by(FeatureDefinitionRow.name, FeatureDefinitionRow.kind)
        .offset(max(0, offset))
        .limit(min(max(1, limit), MAX_PAGE))
    ).all()
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return [_version(r) for r in rows], int(total)


def versions(
    session: Session, project_id: int, kind: str, name: str, offset: int, limit: int
) -> tuple[list[DefinitionVersion], int]:
    """A page of a definition's versions, newest first, and how many there are."""
    where = (
        FeatureDefinitionRow.project_id == project_id,
        FeatureDefinitionRow.kind == kind,
        FeatureDefinitionRow.name == name,
    )
    rows = session.scalars(
        select(FeatureDefinitionRow)
        .where(*where)
        .order_by(FeatureDefinitionRow.version.desc())
        .offset(max(0, offset))
        .limit(min(max(1, limit), MAX_PAGE))
    ).all()
    total = session.scalar(select(func.count(FeatureDefinitionRow.id)).where(*where)) or 0
    return [_version(r) for r in rows], int(total)


def version(session: Session, project_id: int, kind: str, name: str, number: int) -> DefinitionVersion | None:
    row = session.scalar(
        select(FeatureDefinitionRow).where(
            FeatureDefinitionRow.project_id == project_id,
            FeatureDefinitionRow.kind == kind,
            FeatureDefinitionRow.name == name,
            FeatureDefinitionRow.version == number,
        )
    )
    return None if row is None else _version(row)


def online_rows(session: Session, project_id: int, views: dict[str, int]) -> dict[str, int]:
    """Rows materialized per view, for the version given (one grouped query)."""
    if not views:
        return {}
    query = (
        select(MaterializationRow.view, MaterializationRow.view_version, func.sum(MaterializationRow.rows))
        .where(MaterializationRow.project_id == project_id, MaterializationRow.view.in_(list(views)))
        .group_by(MaterializationRow.view, MaterializationRow.view_version)
    )
    return {view: int(rows) for view, v, rows in session.execute(query) if views.get(view) == v}


def dataset_rows(session: Session, project_id: int, names: set[str]) -> dict[str, int]:
    """Accepted rows per dataset (the sum over its ingestions)."""
    if not names:
        return {}
    query = (
        select(DatasetRow.name, func.sum(IngestionRow.rows_accepted))
        .join(IngestionRow, IngestionRow.dataset_id == DatasetRow.id)
        .where(DatasetRow.project_id == project_id, DatasetRow.name.in_(sorted(names)))
        .group_by(DatasetRow.name)
    )
    return {name: int(rows or 0) for name, rows in session.execute(query)}


def _version(row: FeatureDefinitionRow) -> DefinitionVersion:
    return DefinitionVersion(row.kind, row.name, row.version, row.spec, row.created_at, row.created_by,
                             row.deleted_at)  # fmt: skip
