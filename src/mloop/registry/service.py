"""``project.models``: the model registry.

Versions are numbered 1, 2, 3 per model and never reused. A version records its run, signature, metrics,
lineage (run, git commit, feature views, training-set fingerprint, model type and params) and a model card.
Aliases (``champion``, ``challenger``) and stages (staging, production, archived) move between versions;
every move is an audit event, so :meth:`ModelRegistry.history` can say what held each alias, and
:meth:`ModelRegistry.stage_history` what was in production, at any past moment.

>>> v = project.models.register("fraud", model, run_id=run.id, input_example=X_test)   # doctest: +SKIP
>>> project.models.set_alias("fraud", "champion", v.version)                          # doctest: +SKIP
>>> project.models.load("fraud", alias="champion").predict(frame)                     # doctest: +SKIP
>>> project.models.alias_at("fraud", "champion", datetime(2024, 3, 1, tzinfo=UTC))      # doctest: +SKIP
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._service import Service
from mloop._time import utcnow
from mloop.errors import AlreadyExists, IntegrityError, MloopError, NotFound, PermissionDenied
from mloop.models.flavours import Flavour, flavour_for, get_flavour, json_safe
from mloop.models.package import pack, unpack
from mloop.models.signature import Signature, SignatureError, infer
from mloop.registry import card as cards
from mloop.registry import history
from mloop.registry.history import AliasSpan, StageSpan
from mloop.registry.versions import LoadedModel, ModelVersion, Promotion, RegisteredModel
from mloop.security import audit
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


class ModelRegistry(Service):
    """Registered models and their versions. Reads need ``models.read``; register ``models.register``;
    aliases ``models.alias``; stages ``models.promote`` (and ``models.approve`` for a second person's
    approval when ``require_approval`` is on); deleting ``models.delete``."""

    # ---- register -------------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        *,
        run_id: str | None = None,
        flavour: str | Flavour | None = None,
        signature: Signature | dict[str, Any] | None = None,
        input_example: pd.DataFrame | None = None,
        metrics: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        card: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name``.

        The signature is ``signature``, or inferred from ``input_example`` and the model's predictions on it.
        ``metrics`` default to the run's latest metrics; ``lineage`` (feature views and versions,
        ``training_set_fingerprint``, ``data_time_range``, ...) is merged over what the run knows (run id,
        experiment, git commit, params). ``card`` holds facts for the model card (see
        :mod:`mloop.registry.card`). The blob is stored first and the version row with its audit event in one
        transaction afterwards, so a failure leaves no version without its model.
        """
        _check_name(name)
        resource = f"model:{name}"
        self._authorize("models.register", resource)
        chosen = get_flavour(flavour) if isinstance(flavour, str) else flavour or flavour_for(model)
        info = chosen.info(model)
        signature = _signature(chosen, model, signature, input_example, info)
        run = self._run_facts(run_id) if run_id is not None else None
        metrics = json_safe(dict(metrics if metrics is not None else (run or {}).get("metrics", {})))
        merged = _lineage(run, info, lineage)
        facts = cards.build(
            card,
            description=description,
            metrics=metrics,
            lineage=merged,
            has_signature=signature is not None,
        )
        with tempfile.TemporaryDirectory(prefix="mloop-register-") as tmp:
            archive = Path(tmp) / "model.tar.gz"
            pack(model, chosen, archive, extra={"signature": signature.to_dict() if signature else None})
            digest = self._ctx.artifacts.put_file(archive)
        with self._mutate(
            "models.register", resource, flavour=chosen.name, artifact=digest, run_id=run_id
        ) as change:
            session = change.session
            parent = self._model_row(session, name, create=description)
            latest = session.scalar(
                select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == parent.id)
            )
            row = ModelVersionRow(
                model_id=parent.id,
                version=(latest or 0) + 1,
                run_id=run_id,
                artifact=digest,
                flavour=chosen.name,
                signature=signature.to_dict() if signature else {},
                metrics=metrics,
                lineage=merged,
                card=facts,
                stage="none",
                created_at=utcnow(),
                created_by=self.actor.name,
            )
            session.add(row)
            session.flush()
            change.payload["version"] = row.version
            return _version(row, name, [])

    # ---- read -----------------------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """Version ``version``, or the one ``alias`` points at, or (neither) the newest."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, alias)
            return _version(row, name, self._aliases(session, parent.id).get(row.version, []))

    def list(self) -> list[RegisteredModel]:
        """Every registered model in the project, with its newest version, production version and aliases."""
        self._authorize("models.read", "model:*")
        with self._ctx.store.read() as session:
            parents = session.scalars(
                select(RegisteredModelRow)
                .where(RegisteredModelRow.project_id == self._ctx.project_id)
                .order_by(RegisteredModelRow.name)
            ).all()
            ids = [p.id for p in parents]
            versions = session.execute(
                select(ModelVersionRow.model_id, ModelVersionRow.version, ModelVersionRow.stage).where(
                    ModelVersionRow.model_id.in_(ids), ModelVersionRow.stage != "deleted"
                )
            ).all()
            aliases = (
                session.execute(select(ModelAliasRow).where(ModelAliasRow.model_id.in_(ids))).scalars().all()
            )
        out = []
        for parent in parents:
            mine = [(v, stage) for model_id, v, stage in versions if model_id == parent.id]
            out.append(
                RegisteredModel(
                    parent.name,
                    parent.description,
                    parent.created_at,
                    max((v for v, _ in mine), default=None),
                    len(mine),
                    next((v for v, stage in mine if stage == "production"), None),
                    {
                        a.alias: a.version
                        for a in sorted(aliases, key=lambda a: a.alias)
                        if a.model_id == parent.id
                    },
                )
            )
        return out

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        """The versions of ``name``, oldest first."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            query = select(ModelVersionRow).where(ModelVersionRow.model_id == parent.id)
            if not include_deleted:
                query = query.where(ModelVersionRow.stage != "deleted")
            aliases = self._aliases(session, parent.id)
            return [
                _version(row, name, aliases.get(row.version, []))
                for row in session.scalars(query.order_by(ModelVersionRow.version))
            ]

    def load(self, name: str, version: int | None = None, alias: str | None = None) -> LoadedModel:
        """The model of a version, ready to predict (``version``, ``alias``, or the newest)."""
        found = self.get(name, version, alias)
        with tempfile.TemporaryDirectory(prefix="mloop-load-") as tmp:
            archive = Path(tmp) / "model.tar.gz"
            try:
                self._ctx.artifacts.get_file(found.artifact, archive)
            except (IntegrityError, NotFound) as exc:
                raise type(exc)(
                    f"Model {name!r} version {found.version} cannot be loaded: {exc} Or register the model "
                    "again and point its aliases at the new version."
                ) from None
            chosen, model = unpack(archive, Path(tmp) / "model")
        return LoadedModel(found, chosen, model)

    def card(self, name: str, version: int, format: str = "markdown") -> str | dict[str, Any]:
        """The model card of a version: Markdown, or the stored facts as a dict with ``format="json"``."""
        if format not in ("markdown", "json"):
            raise MloopError(f"Card format {format!r} is not one of: markdown, json.")
        found = self.get(name, version)
        if format == "json":
            return {"name": found.name, "version": found.version, **found.card}
        header = {
            "name": found.name,
            "version": found.version,
            "registered": f"{found.created_at:%Y-%m-%d %H:%M:%S} UTC by {found.created_by}",
            "flavour": f"{found.flavour} ({found.lineage.get('model', {}).get('type', '?')})",
            "stage": found.stage,
            "aliases": found.aliases,
            "artifact": f"sha256:{found.artifact}",
        }
        return cards.render_markdown(
            found.card, header, found.signature.to_dict() if found.signature else None
        )

    # ---- aliases --------------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it points elsewhere)."""
        _check_alias(alias)
        self._authorize("models.alias", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            current = session.get(ModelAliasRow, (parent.id, alias))
            if current is not None and current.version == version:
                return self.get(name, version)  # already so: no change, no event
        with self._mutate("models.alias", f"model:{name}", alias=alias, version=version) as change:
            parent = self._model_row(change.session, name)
            self._version_row(change.session, parent, version, None)
            row = change.session.get(ModelAliasRow, (parent.id, alias))
            change.payload["previous"] = row.version if row is not None else None
            if row is None:
                row = ModelAliasRow(model_id=parent.id, alias=alias)
                change.session.add(row)
            row.version, row.updated_at, row.updated_by = version, utcnow(), self.actor.name
        return self.get(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self._mutate("models.alias", f"model:{name}", alias=alias, version=None) as change:
            parent = self._model_row(change.session, name)
            row = change.session.get(ModelAliasRow, (parent.id, alias))
            if row is None:
                raise NotFound(self._no_alias(change.session, parent, alias))
            change.payload["previous"] = row.version
            change.session.delete(row)

    def history(self, name: str, alias: str | None = None) -> list[AliasSpan]:
        """Which version each alias (or just ``alias``) pointed at, from when to when, and who set it."""
        spans = history.alias_spans(self._events(name, history.ALIAS_ACTIONS))
        return [s for s in spans if alias is None or s.alias == alias]

    def alias_at(self, name: str, alias: str, t: datetime) -> int | None:
        """The version ``alias`` pointed at at time ``t`` (None if it pointed nowhere)."""
        held = history.holder_at(self.history(name, alias), t)
        return held[0] if held else None

    # ---- stages ---------------------------------------------------------------------------------------

    def promote(self, name: str, version: int, to: str = "production", comment: str = "") -> Promotion:
        """Move a version to ``to`` (staging, production or archived). The previous production version is
        archived. With ``require_approval``, production waits for :meth:`approve` by someone else."""
        _check_stage(to)
        resource = f"model:{name}"
        pending = to == "production" and self._ctx.settings.require_approval
        status = "pending" if pending else "done"
        with self._mutate("models.promote", resource, version=version, stage=to, status=status) as change:
            session = change.session
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, None)
            if row.stage == to:
                raise MloopError(f"Version {version} of {name!r} is in {to} already.")
            now = utcnow()
            request = PromotionRow(
                model_id=parent.id, version=version, stage=to, status=status, requested_by=self.actor.name,
                requested_at=now, decided_by=None, decided_at=None, comment=comment,
            )  # fmt: skip
            if pending:
                waiting = self._pending(session, parent.id, version, to)
                if waiting is not None:
                    raise AlreadyExists(
                        f"Version {version} of {name!r} waits for approval to {to} already (requested by "
                        f"{waiting.requested_by} at {waiting.requested_at:%Y-%m-%d %H:%M} UTC). Someone else "
                        f"holding models.approve approves it: mloop models approve {name} {version}."
                    )
            else:
                request.decided_by, request.decided_at = self.actor.name, now
                change.payload.update(self._move(session, parent, row, to))
            session.add(request)
            session.flush()
            change.payload["request"] = request.id
            return _promotion(request, name)

    def approve(self, name: str, version: int, to: str = "production", comment: str = "") -> Promotion:
        """Approve a pending promotion. Needs ``models.approve``, and someone other than the requester."""
        return self._decide(name, version, to, comment, approve=True)

    def reject(self, name: str, version: int, to: str = "production", comment: str = "") -> Promotion:
        """Refuse a pending promotion; the version stays where it is."""
        return self._decide(name, version, to, comment, approve=False)

    def promotions(self, name: str | None = None, status: str | None = None) -> list[Promotion]:
        """Promotion requests, newest first (``status``: pending, done or rejected)."""
        self._authorize("models.read", f"model:{name or '*'}")
        with self._ctx.store.read() as session:
            query = (
                select(PromotionRow, RegisteredModelRow.name)
                .join(RegisteredModelRow, RegisteredModelRow.id == PromotionRow.model_id)
                .where(RegisteredModelRow.project_id == self._ctx.project_id)
            )
            if name is not None:
                query = query.where(RegisteredModelRow.id == self._model_row(session, name).id)
            if status is not None:
                query = query.where(PromotionRow.status == status)
            rows = session.execute(query.order_by(PromotionRow.id.desc())).all()
        return [_promotion(row, model) for row, model in rows]

    def stage_history(self, name: str) -> list[StageSpan]:
        """Every stage each version went through, from when to when, and who moved (and approved) it."""
        return history.stage_spans(self._events(name, history.STAGE_ACTIONS))

    def production_at(self, name: str, t: datetime) -> int | None:
        """The version that was in production at time ``t`` (None if none was)."""
        held = history.holder_at([s for s in self.stage_history(name) if s.stage == "production"], t)
        return held[0] if held else None

    # ---- delete ---------------------------------------------------------------------------------------

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version: it leaves lists and cannot be loaded, but its record stays for history and its
        number is never reused. Refused while an alias points at it or it is in production."""
        with self._mutate("models.delete", f"model:{name}", version=version) as change:
            session = change.session
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, None)
            aliases = self._aliases(session, parent.id).get(version, [])
            if aliases:
                raise MloopError(
                    f"Version {version} of {name!r} is what {', '.join(aliases)} point{'s' if len(aliases) == 1 else ''} "
                    f"at; move or delete {'that alias' if len(aliases) == 1 else 'those aliases'} first "
                    f"(mloop models alias {name} {aliases[0]} --delete)."
                )
            if row.stage == "production":
                raise MloopError(
                    f"Version {version} of {name!r} is in production; promote another version, or archive this "
                    f"one (mloop models promote {name} {version} --to archived), then delete it."
                )
            change.payload.update({"stage": "deleted", "from": row.stage})
            row.stage = "deleted"
            waiting = session.scalars(
                select(PromotionRow).where(
                    PromotionRow.model_id == parent.id,
                    PromotionRow.version == version,
                    PromotionRow.status == "pending",
                )
            )
            for request in waiting:
                request.status, request.decided_by, request.decided_at = "rejected", self.actor.name, utcnow()
                request.comment = (request.comment + " " if request.comment else "") + "(version deleted)"

    # ---- internals ------------------------------------------------------------------------------------

    def _decide(self, name: str, version: int, to: str, comment: str, *, approve: bool) -> Promotion:
        _check_stage(to)
        action = "models.approve" if approve else "models.reject"
        with self._mutate(
            "models.approve", f"model:{name}", action=action, version=version, stage=to
        ) as change:
            session = change.session
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, None)
            request = self._pending(session, parent.id, version, to)
            if request is None:
                waiting = [f"{p.version} to {p.stage}" for p in session.scalars(
                    select(PromotionRow).where(PromotionRow.model_id == parent.id, PromotionRow.status == "pending")
                )]  # fmt: skip
                raise NotFound(
                    f"No promotion of {name!r} version {version} to {to} is waiting for approval; pending: "
                    f"{', '.join(waiting) or 'none'}. Request one with mloop models promote {name} {version} --to {to}."
                )
            if approve and request.requested_by == self.actor.name:
                raise PermissionDenied(
                    f"{self.actor.name} requested this promotion and cannot also approve it: production changes "
                    "need a second person. Ask another user holding models.approve (roles: mlops, admin)."
                )
            change.payload.update({"request": request.id, "requested_by": request.requested_by})
            if approve:
                change.payload.update(self._move(session, parent, row, to))
            request.status = "done" if approve else "rejected"
            request.decided_by, request.decided_at = self.actor.name, utcnow()
            if comment:
                request.comment = (
                    request.comment + "\n" if request.comment else ""
                ) + f"{self.actor.name}: {comment}"
            return _promotion(request, name)

    @staticmethod
    def _move(session: Session, parent: RegisteredModelRow, row: ModelVersionRow, to: str) -> dict[str, Any]:
        archived: list[int] = []
        if to == "production":
            for other in session.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.model_id == parent.id,
                    ModelVersionRow.stage == "production",
                    ModelVersionRow.version != row.version,
                )
            ):
                other.stage = "archived"
                archived.append(other.version)
        previous, row.stage = row.stage, to
        return {"from": previous, "archived": sorted(archived)}

    @staticmethod
    def _pending(session: Session, model_id: int, version: int, stage: str) -> PromotionRow | None:
        return session.scalar(
            select(PromotionRow).where(
                PromotionRow.model_id == model_id,
                PromotionRow.version == version,
                PromotionRow.stage == stage,
                PromotionRow.status == "pending",
            )
        )

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

    def _events(self, name: str, actions: tuple[str, ...]) -> list[audit.Event]:
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            self._model_row(session, name)
        return [
            event
            for event in audit.iter_events(self._ctx.store, resource=f"model:{name}", action="models.*")
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


# ---- helpers --------------------------------------------------------------------------------------------


def _signature(
    flavour: Flavour, model: Any, given: Signature | dict[str, Any] | None, example: pd.DataFrame | None,
    info: dict[str, Any],
) -> Signature | None:  # fmt: skip
    if isinstance(given, dict):
        given = Signature.from_dict(given)
    if example is None:
        return given
    if given is not None:
        try:
            given.validate(example)
        except SignatureError as exc:
            raise SignatureError(
                exc.problems, "The input example does not match the signature given"
            ) from None
        return given
    # Predicting on the example proves the model runs on what the signature will let through.
    predictions = flavour.predict(model, example)
    classes = info.get("classes")
    names = [str(c) for c in classes] if classes and len(classes) > 2 else None
    return infer(example, predictions, output_names=names, nullable=True if info.get("allow_nan") else None)


def _lineage(
    run: dict[str, Any] | None, info: dict[str, Any], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": info}
    if run is not None:
        row: RunRow = run["run"]
        details = row.info or {}
        git = details.get("git") if isinstance(details.get("git"), Mapping) else {}
        out["run_id"] = row.id
        out["run"] = {
            "id": row.id,
            "experiment": run["experiment"],
            "name": row.name,
            "status": row.status,
            "started_at": row.started_at,
            "created_by": row.created_by,
            "info": details,
        }
        commit = details.get("git_commit") or git.get("commit") or details.get("code_version")
        if commit:
            out["git_commit"] = commit
        if details.get("fingerprint"):
            out["training_set_fingerprint"] = details["fingerprint"]
        if run["params"]:
            out["params"] = run["params"]
    out.update(dict(given or {}))
    return json_safe(out)


def _version(row: ModelVersionRow, name: str, aliases: list[str]) -> ModelVersion:
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


def _promotion(row: PromotionRow, name: str) -> Promotion:
    return Promotion(
        row.id, name, row.version, row.stage, row.status, row.requested_by, row.requested_at,
        row.decided_by, row.decided_at, row.comment,
    )  # fmt: skip


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MloopError(
            f"Model name {name!r} is not allowed: use letters, digits and . _ -, starting with a letter or "
            "digit (for example 'fraud' or 'fraud-gbm')."
        )


def _check_alias(alias: str) -> None:
    if alias == LATEST:
        raise MloopError(f"{LATEST!r} always means the newest version and cannot be set; pick another alias.")
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise MloopError(
            f"Alias {alias!r} is not allowed: use lowercase letters, digits, _ and -, starting with a letter "
            "(for example 'champion' or 'challenger')."
        )


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise MloopError(f"Stage {stage!r} is not one of: {', '.join(STAGES)}.")
