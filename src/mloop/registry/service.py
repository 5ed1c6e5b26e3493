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

import builtins
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import utcnow
from mloop.errors import MloopError, NotFound, SchemaError
from mloop.explain.background import background_bytes
from mloop.models.flavours import ExportError, Flavour, flavour_for, get_flavour, json_safe
from mloop.models.package import pack
from mloop.models.signature import Signature, SignatureError, infer
from mloop.registry import card as cards
from mloop.registry import history, queries
from mloop.registry import lineage as lineages
from mloop.registry.edge import RegistryEdge
from mloop.registry.history import AliasSpan
from mloop.registry.indexes import RegistryIndexes
from mloop.registry.lineage import Lineage
from mloop.registry.queries import check_alias, check_name, version_record
from mloop.registry.stages import RegistryStages
from mloop.registry.versions import LoadedModel, ModelVersion, RegisteredModel
from mloop.store.schema import (
    ModelAliasRow,
    ModelVersionRow,
    RunRow,
)


class ModelRegistry(RegistryStages, RegistryEdge, RegistryIndexes):
    """Registered models and their versions. Reads need ``models.read``; register ``models.register``;
    aliases ``models.alias``; stages ``models.promote`` (and ``models.approve`` for a second person's
    approval when ``require_approval`` is on); deleting ``models.delete``. Vector indexes of versions:
    :mod:`mloop.registry.indexes`."""

    # ---- register -------------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        *,
        run_id: str | None = None,
        flavour: str | Flavour | None = None,
        signature: Signature | dict[str, Any] | None = None,
        input_example: pd.DataFrame | np.ndarray | Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        card: Mapping[str, Any] | None = None,
        description: str = "",
        task: str | None = None,
        output: str | None = None,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name``.

        The signature is ``signature``, or inferred from ``input_example`` and the model's predictions on it.
        For a PyTorch model the example may also be a batch array or a dict of arrays (one per ``forward``
        argument), and ``task=``/``output=`` say what a bare ``nn.Module`` answers (see
        :mod:`mloop.models.torch`); other flavours take a DataFrame.
        ``metrics`` default to the run's latest metrics; ``lineage`` (feature views and versions,
        ``training_set_fingerprint``, ``data_time_range``, ...) is merged over what the run knows (run id,
        experiment, git commit, params). ``card`` holds facts for the model card (see
        :mod:`mloop.registry.card`). The blob is stored first and the version row with its audit event in one
        transaction afterwards, so a failure leaves no version without its model.
        """
        check_name(name)
        resource = f"model:{name}"
        self._authorize("models.register", resource)
        chosen = get_flavour(flavour) if isinstance(flavour, str) else flavour or flavour_for(model)
        if isinstance(signature, dict):
            signature = Signature.from_dict(signature)
        model, input_example = _prepare(chosen, model, input_example, signature, task, output)
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
            try:
                pack(model, chosen, archive, extra={"signature": signature.to_dict() if signature else None})
            except ExportError as exc:  # before the blob and the row: nothing is registered
                raise ExportError(f"Model {name!r} was not registered: {exc}") from exc
            with self._guarded("artifact_url"):  # the artifact store's folder on a full disk
                digest = self._ctx.artifacts.put_file(archive)
        summary = background_bytes(input_example)  # what explanations measure against (mloop.explain)
        if summary is not None:
            with self._guarded("artifact_url"):
                merged["explain_background"] = self._ctx.artifacts.put_bytes(summary)
        with self._mutate(
            "models.register", resource, flavour=chosen.name, artifact=digest, run_id=run_id
        ) as change:
            session = change.session
            parent = self._model_row(session, name, create=description)
            latest = queries.newest_version(session, parent.id)
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
            return version_record(row, name, [])

    # ---- read -----------------------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """Version ``version``, or the one ``alias`` points at, or (neither) the newest."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            row = self._version_row(session, parent, version, alias)
            return version_record(row, name, self._aliases(session, parent.id).get(row.version, []))

    def list(self, *, offset: int = 0, limit: int | None = None) -> builtins.list[RegisteredModel]:
        """The registered models by name, with their newest version, production version and aliases: all of
        them, or ``limit`` from ``offset`` (:meth:`count` says how many there are)."""
        self._authorize("models.read", "model:*")
        with self._ctx.store.read() as session:
            parents = queries.models(session, self._ctx.project_id, offset=offset, limit=limit)
            ids = [p.id for p in parents]
            versions = queries.version_stages(session, ids)
            aliases = queries.aliases(session, ids)
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

    def count(self) -> int:
        """How many models are registered in the project."""
        self._authorize("models.read", "model:*")
        with self._ctx.store.read() as session:
            return queries.count_models(session, self._ctx.project_id)

    def list_versions(
        self, name: str, *, include_deleted: bool = False, offset: int = 0, limit: int | None = None,
        newest_first: bool = False,
    ) -> builtins.list[ModelVersion]:  # fmt: skip
        """The versions of ``name``, oldest first (or ``newest_first``): all, or ``limit`` from ``offset``
        (:meth:`count_versions` says how many there are)."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            aliases = self._aliases(session, parent.id)
            rows = queries.versions(session, parent.id, include_deleted=include_deleted, offset=offset,
                                    limit=limit, newest_first=newest_first)  # fmt: skip
            return [version_record(row, name, aliases.get(row.version, [])) for row in rows]

    def count_versions(self, name: str, *, include_deleted: bool = False) -> int:
        """How many versions ``name`` has (deleted ones only if asked)."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            return queries.count_versions(session, parent.id, include_deleted=include_deleted)

    def load(
        self, name: str, version: int | None = None, alias: str | None = None, *, runtime: str = "native"
    ) -> LoadedModel:
        """The model of a version, ready to predict (``version``, ``alias``, or the newest); with
        ``runtime="onnx"``, its ONNX export (:meth:`export`) served by ONNX Runtime, which answers the same
        (then ``info.flavour`` is ``onnx`` and ``info.artifact`` the export's digest)."""
        return self._load_runtime(self.get(name, version, alias), runtime)

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

    def lineage(self, name: str, version: int) -> Lineage:
        """Where a version came from: its datasets, feature views (as they were defined at the versions it
        trained on), training set and run, as a graph (:mod:`mloop.registry.lineage`)."""
        found = self.get(name, version)
        with self._ctx.store.read() as session:
            return lineages.build(session, self._ctx.project_id, found)

    # ---- aliases --------------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it points elsewhere)."""
        check_alias(alias)
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

    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasSpan]:
        """Which version each alias (or just ``alias``) pointed at, from when to when, and who set it."""
        spans = history.alias_spans(self._events(name, history.ALIAS_ACTIONS))
        return [s for s in spans if alias is None or s.alias == alias]

    def alias_at(self, name: str, alias: str, t: datetime) -> int | None:
        """The version ``alias`` pointed at at time ``t`` (None if it pointed nowhere)."""
        held = history.holder_at(self.history(name, alias), t)
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
            waiting = queries.pending_promotions(session, parent.id, version=version)
            for request in waiting:
                request.status, request.decided_by, request.decided_at = "rejected", self.actor.name, utcnow()
                request.comment = (request.comment + " " if request.comment else "") + "(version deleted)"


# ---- helpers --------------------------------------------------------------------------------------------


def _prepare(
    flavour: Flavour, model: Any, example: Any, signature: Signature | None, task: str | None,
    output: str | None,
) -> tuple[Any, pd.DataFrame | None]:  # fmt: skip
    """The model as its flavour saves it, and the example as a frame (flavours with ``prepare``)."""
    prepare = getattr(flavour, "prepare", None)
    if prepare is not None:
        made, frame = prepare(model, example, signature=signature, task=task, output=output)
        return made, frame
    if task is not None or output is not None:
        raise MloopError(
            f"task= and output= say what a PyTorch module answers; a {flavour.name} model knows it already. "
            "Leave them out."
        )
    if example is not None and not isinstance(example, pd.DataFrame):
        raise SchemaError(
            f"A {flavour.name} model's input_example is a pandas DataFrame of its input columns, not a "
            f"{type(example).__name__}."
        )
    return model, example


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
        found = details.get("git")
        git: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
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
