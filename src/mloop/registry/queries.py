"""The registry's SQL: finding models, versions and aliases, and turning rows into records.

:class:`RegistryQueries` is the base of :class:`mloop.registry.service.ModelRegistry`; it holds the lookups every
part of the registry shares and the errors that list what exists."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._names import valid
from mloop._service import Service
from mloop._time import utcnow
from mloop.errors import MloopError, NotFound
from mloop.models.signature import Signature
from mloop.registry.versions import ModelVersion, Promotion
from mloop.security import audit_chain
from mloop.store.schema import (
    ExperimentRow,
    LatestMetricRow,
    ModelAliasRow,
    ModelVersionRow,
    PromotionRow,
    RegisteredModelRow,
    RunParamRow,
    RunRow,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
STAGES = ("staging", "production", "archived")
LATEST = "latest"  # resolves to the newest version; cannot be set


class RegistryQueries(Service):
    """Lookups shared by every part of the registry."""

    def _model_row(self, session: Session, name: str, *, create: str | None = None) -> RegisteredModelRow:
        row = session.scalar(
            select(RegisteredModelRow).where(
                RegisteredModelRow.project_id == self._ctx.project_id, RegisteredModelRow.name == name
            )
        )
        if row is not None:
            return row
        if create is not None:
            row = RegisteredModelRow(
                project_id=self._ctx.project_id, name=name, description=create, created_at=utcnow()
            )
            session.add(row)
            session.flush()
            return row
        names = session.scalars(
            select(RegisteredModelRow.name)
            .where(RegisteredModelRow.project_id == self._ctx.project_id)
            .order_by(RegisteredModelRow.name)
        ).all()
        raise NotFound(
            f"No model named {name!r} in project {self._ctx.project!r}; models: {', '.join(names) or 'none yet'}. "
            "Register one with run.register(model, name=...) or project.models.register(name, model)."
        )

    def _version_row(
        self, session: Session, parent: RegisteredModelRow, version: int | None, alias: str | None
    ) -> ModelVersionRow:
        if version is not None and alias is not None:
            raise MloopError(f"Give a version or an alias of {parent.name!r}, not both.")
        if alias is not None and alias != LATEST:
            found = session.get(ModelAliasRow, (parent.id, alias))
            if found is None:
                raise NotFound(self._no_alias(session, parent, alias))
            version = found.version
        rows = session.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == parent.id)
            .order_by(ModelVersionRow.version)
        ).all()
        live = [r for r in rows if r.stage != "deleted"]
        if version is None:
            if not live:
                raise NotFound(f"Model {parent.name!r} has no versions; register one first.")
            return live[-1]
        row = next((r for r in rows if r.version == version), None)
        if row is None or row.stage == "deleted":
            gone = " (it was deleted)" if row is not None else ""
            raise NotFound(
                f"Model {parent.name!r} has no version {version}{gone}; versions: "
                f"{', '.join(str(r.version) for r in live) or 'none'}."
            )
        return row

    @staticmethod
    def _aliases(session: Session, model_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for row in session.scalars(
            select(ModelAliasRow).where(ModelAliasRow.model_id == model_id).order_by(ModelAliasRow.alias)
        ):
            out.setdefault(row.version, []).append(row.alias)
        return out

    def _no_alias(self, session: Session, parent: RegisteredModelRow, alias: str) -> str:
        held = {a: v for v, names in self._aliases(session, parent.id).items() for a in names}
        listed = ", ".join(f"{a} -> {v}" for a, v in sorted(held.items())) or "none"
        return (
            f"Model {parent.name!r} has no alias {alias!r}; aliases: {listed}. Set one with "
            f"mloop models alias {parent.name} {alias} VERSION."
        )

    def _events(self, name: str, actions: tuple[str, ...]) -> list[audit_chain.Event]:
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            self._model_row(session, name)
        return [
            event
            for event in audit_chain.iter_events(self._ctx.store, resource=f"model:{name}", action="models.*")
            if event.project == self._ctx.project and event.action in actions
        ]

    def _run_facts(self, run_id: str) -> dict[str, Any]:
        with self._ctx.store.read() as session:
            found = session.execute(
                select(RunRow, ExperimentRow.name)
                .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                .where(RunRow.id == run_id, ExperimentRow.project_id == self._ctx.project_id)
            ).first()
            if found is None:
                raise NotFound(
                    f"No run {run_id!r} in project {self._ctx.project!r}; `mloop runs list` shows the runs. "
                    "Register from inside the run (run.register(model, name=...)) to link it."
                )
            run, experiment = found
            metrics = dict(
                session.execute(
                    select(LatestMetricRow.key, LatestMetricRow.value).where(LatestMetricRow.run_id == run_id)
                ).all()
            )
            params = dict(
                session.execute(
                    select(RunParamRow.key, RunParamRow.value).where(RunParamRow.run_id == run_id)
                ).all()
            )
        return {"run": run, "experiment": experiment, "metrics": metrics, "params": params}


# ---- records and checks ------------------------------------------------------------------------------


def version_record(row: ModelVersionRow, name: str, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=row.version,
        run_id=row.run_id,
        artifact=row.artifact,
        flavour=row.flavour,
        signature=Signature.from_dict(row.signature) if row.signature else None,
        metrics=row.metrics,
        lineage=row.lineage,
        card=row.card,
        stage=row.stage,
        aliases=list(aliases),
        created_at=row.created_at,
        created_by=row.created_by,
        description=(row.card or {}).get("description", ""),
    )


def promotion_record(row: PromotionRow, name: str) -> Promotion:
    return Promotion(
        row.id, name, row.version, row.stage, row.status, row.requested_by, row.requested_at,
        row.decided_by, row.decided_at, row.comment,
    )  # fmt: skip


def check_name(name: str) -> None:
    if not valid(_NAME, name):
        raise MloopError(
            f"Model name {name!r} is not allowed: use letters, digits and . _ -, starting with a letter or "
            "digit (for example 'fraud' or 'fraud-gbm')."
        )


def check_alias(alias: str) -> None:
    if alias == LATEST:
        raise MloopError(f"{LATEST!r} always means the newest version and cannot be set; pick another alias.")
    if not valid(_ALIAS, alias):
        raise MloopError(
            f"Alias {alias!r} is not allowed: use lowercase letters, digits, _ and -, starting with a letter "
            "(for example 'champion' or 'challenger')."
        )


def check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise MloopError(f"Stage {stage!r} is not one of: {', '.join(STAGES)}.")


# ---- queries the registry's services share ---------------------------------------------------------------


def newest_version(session: Session, model_id: int) -> int | None:
    """The highest version number of the model, deleted ones included (numbers are never reused)."""
    return session.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model_id)
    )


def models(
    session: Session, project_id: int, *, offset: int = 0, limit: int | None = None
) -> Sequence[RegisteredModelRow]:
    """The registered models of the project, by name (``limit`` of them from ``offset``, if given)."""
    return session.scalars(
        select(RegisteredModelRow)
        .where(RegisteredModelRow.project_id == project_id)
        .order_by(RegisteredModelRow.name)
        .offset(offset)
        .limit(limit)
    ).all()


def count_models(session: Session, project_id: int) -> int:
    found = session.scalar(
        select(func.count())
        .select_from(RegisteredModelRow)
        .where(RegisteredModelRow.project_id == project_id)
    )
    return int(found or 0)


def version_stages(session: Session, model_ids: Sequence[int]) -> list[tuple[int, int, str]]:
    """(model id, version, stage) of every version not deleted of the models."""
    rows = session.execute(
        select(ModelVersionRow.model_id, ModelVersionRow.version, ModelVersionRow.stage).where(
            ModelVersionRow.model_id.in_(list(model_ids)), ModelVersionRow.stage != "deleted"
        )
    ).all()
    return [(model_id, version, stage) for model_id, version, stage in rows]


def aliases(session: Session, model_ids: Sequence[int]) -> Sequence[ModelAliasRow]:
    return session.scalars(select(ModelAliasRow).where(ModelAliasRow.model_id.in_(list(model_ids)))).all()


def versions(
    session: Session, model_id: int, *, include_deleted: bool = False, offset: int = 0,
    limit: int | None = None, newest_first: bool = False,
) -> Sequence[ModelVersionRow]:  # fmt: skip
    """The versions of the model, oldest first (or newest first); ``limit`` of them from ``offset``."""
    query = select(ModelVersionRow).where(ModelVersionRow.model_id == model_id)
    if not include_deleted:
        query = query.where(ModelVersionRow.stage != "deleted")
    order = ModelVersionRow.version.desc() if newest_first else ModelVersionRow.version
    return session.scalars(query.order_by(order).offset(offset).limit(limit)).all()


def count_versions(session: Session, model_id: int, *, include_deleted: bool = False) -> int:
    query = select(func.count()).select_from(ModelVersionRow).where(ModelVersionRow.model_id == model_id)
    if not include_deleted:
        query = query.where(ModelVersionRow.stage != "deleted")
    return int(session.scalar(query) or 0)


def versions_in_stage(
    session: Session, model_id: int, stage: str, *, besides: int
) -> Sequence[ModelVersionRow]:
    """The model's versions in ``stage`` other than version ``besides``."""
    return session.scalars(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model_id,
            ModelVersionRow.stage == stage,
            ModelVersionRow.version != besides,
        )
    ).all()


def pending_promotions(
    session: Session, model_id: int, *, version: int | None = None, stage: str | None = None
) -> Sequence[PromotionRow]:
    """Promotion requests of the model that wait for approval (of ``version``, to ``stage``, if given)."""
    query = select(PromotionRow).where(PromotionRow.model_id == model_id, PromotionRow.status == "pending")
    if version is not None:
        query = query.where(PromotionRow.version == version)
    if stage is not None:
        query = query.where(PromotionRow.stage == stage)
    return session.scalars(query.order_by(PromotionRow.id)).all()


def promotions(
    session: Session, project_id: int, *, model_id: int | None = None, status: str | None = None
) -> list[tuple[PromotionRow, str]]:
    """Promotion requests with their model's name, newest first."""
    query = (
        select(PromotionRow, RegisteredModelRow.name)
        .join(RegisteredModelRow, RegisteredModelRow.id == PromotionRow.model_id)
        .where(RegisteredModelRow.project_id == project_id)
    )
    if model_id is not None:
        query = query.where(RegisteredModelRow.id == model_id)
    if status is not None:
        query = query.where(PromotionRow.status == status)
    return [(row, name) for row, name in session.execute(query.order_by(PromotionRow.id.desc()))]
