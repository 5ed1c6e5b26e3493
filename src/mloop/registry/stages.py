"""Stages of a model version (staging, production, archived): promotion, approval by a second person,
and what was in production when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.errors import AlreadyExists, MloopError, NotFound, PermissionDenied
from mloop.registry import history, queries
from mloop.registry.history import StageSpan
from mloop.registry.queries import RegistryQueries, check_stage, promotion_record
from mloop.registry.versions import Promotion
from mloop.store.schema import (
    ModelVersionRow,
    PromotionRow,
    RegisteredModelRow,
)


class RegistryStages(RegistryQueries):
    """Promotion between stages; with ``require_approval`` production waits for someone else's approval."""

    # ---- stages ---------------------------------------------------------------------------------------

    def promote(self, name: str, version: int, to: str = "production", comment: str = "") -> Promotion:
        """Move a version to ``to`` (staging, production or archived). The previous production version is
        archived. With ``require_approval``, production waits for :meth:`approve` by someone else."""
        check_stage(to)
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
            return promotion_record(request, name)

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
            model_id = self._model_row(session, name).id if name is not None else None
            rows = queries.promotions(session, self._ctx.project_id, model_id=model_id, status=status)
        return [promotion_record(row, model) for row, model in rows]

    def stage_history(self, name: str) -> list[StageSpan]:
        """Every stage each version went through, from when to when, and who moved (and approved) it."""
        return history.stage_spans(self._events(name, history.STAGE_ACTIONS))

    def production_at(self, name: str, t: datetime) -> int | None:
        """The version that was in production at time ``t`` (None if none was)."""
        held = history.holder_at([s for s in self.stage_history(name) if s.stage == "production"], t)
        return held[0] if held else None

    # ---- internals ------------------------------------------------------------------------------------
    def _decide(self, name: str, version: int, to: str, comment: str, *, approve: bool) -> Promotion:
        check_stage(to)
        action = "models.approve" if approve else "models.reject"
        with self._mutate(
            "models.approve", f"model:{name}", action=action, version=version, stage=to
        ) as change:
            session = change.session
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, None)
            request = self._pending(session, parent.id, version, to)
            if request is None:
                waiting = [
                    f"{p.version} to {p.stage}" for p in queries.pending_promotions(session, parent.id)
                ]
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
            return promotion_record(request, name)

    @staticmethod
    def _move(session: Session, parent: RegisteredModelRow, row: ModelVersionRow, to: str) -> dict[str, Any]:
        archived: list[int] = []
        if to == "production":
            for other in queries.versions_in_stage(session, parent.id, "production", besides=row.version):
                other.stage = "archived"
                archived.append(other.version)
        previous, row.stage = row.stage, to
        return {"from": previous, "archived": sorted(archived)}

    @staticmethod
    def _pending(session: Session, model_id: int, version: int, stage: str) -> PromotionRow | None:
        found = queries.pending_promotions(session, model_id, version=version, stage=stage)
        return found[0] if found else None
