"""Sibling artifacts of a model version: the same model converted to another format (ONNX), checked
against the original, and loaded in its place with ``runtime="onnx"``.

>>> project.models.export("digits", 3, format="onnx")                    # doctest: +SKIP
>>> project.models.load("digits", version=3, runtime="onnx").predict(frame)   # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from mloop._time import utcnow
from mloop.errors import IntegrityError, MloopError, NotFound
from mloop.explain.background import read_background
from mloop.models.export import FORMATS, to_onnx
from mloop.models.flavours import ExportError, get_flavour
from mloop.models.package import pack, unpack
from mloop.registry.queries import RegistryQueries, version_record
from mloop.registry.versions import LoadedModel, ModelExport, ModelVersion
from mloop.store.schema import ModelExportRow

RUNTIMES = ("native", *FORMATS)


class RegistryExports(RegistryQueries):
    """Exports need ``models.register`` on the model (the audit event is ``models.export``)."""

    def export(self, name: str, version: int, format: str = "onnx") -> ModelExport:
        """Convert version ``version`` of ``name`` to ``format`` and store it beside the version, after
        checking that it answers like the original on the example (see :mod:`mloop.models.export`); an
        existing export of that format is returned as it is. Nothing is stored when the check fails."""
        if format not in FORMATS:
            raise MloopError(f"Export format {format!r} is not one of: {', '.join(FORMATS)}.")
        resource = f"model:{name}"
        self._authorize("models.register", resource)
        found = self._export_of(name, version, format)
        if found is not None:
            return found
        loaded = self._load_artifact(self._found(name, version))
        try:
            converted = to_onnx(loaded.flavour, loaded.model, loaded.signature)
        except ExportError as exc:
            raise ExportError(f"Model {name!r} version {version} was not exported: {exc}") from exc
        signature = loaded.signature.to_dict() if loaded.signature else None
        with tempfile.TemporaryDirectory(prefix="mloop-export-") as tmp:
            archive = Path(tmp) / f"model.{format}.tar.gz"
            extra = {"signature": signature, "export_of": {"model": name, "version": version}}
            pack(converted, get_flavour(format), archive, extra=extra)
            digest = self._ctx.artifacts.put_file(archive)
        with self._mutate(
            "models.register",
            resource,
            action="models.export",
            version=version,
            format=format,
            artifact=digest,
        ) as change:
            parent = self._model_row(change.session, name)
            self._version_row(change.session, parent, version, None)
            row = ModelExportRow(
                model_id=parent.id, version=version, format=format, artifact=digest,
                details=converted.details, created_at=utcnow(), created_by=self.actor.name,
            )  # fmt: skip
            change.session.add(row)
            change.session.flush()
            return _record(row, name)

    def exports(self, name: str, version: int) -> builtins.list[ModelExport]:
        """The exports stored beside a version (empty when it has none)."""
        self._authorize("models.read", f"model:{name}")
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            self._version_row(session, parent, version, None)
            rows = session.scalars(
                select(ModelExportRow)
                .where(ModelExportRow.model_id == parent.id, ModelExportRow.version == version)
                .order_by(ModelExportRow.format)
            ).all()
            return [_record(row, name) for row in rows]

    # ---- internals ------------------------------------------------------------------------------------

    def _found(self, name: str, version: int) -> ModelVersion:
        with self._ctx.store.read() as session:
            parent = self._model_row(session, name)
            return version_record(self._version_row(session, parent, version, None), name, [])

    def _export_of(self, name: str, version: int, format: str) -> ModelExport | None:
        return next((e for e in self.exports(name, version) if e.format == format), None)

    def _load_runtime(self, found: ModelVersion, runtime: str) -> LoadedModel:
        """The model of ``found`` in ``runtime``: its own artifact, or an export of it."""
        if runtime not in RUNTIMES and runtime != found.flavour:
            raise MloopError(f"Runtime {runtime!r} is not one of: {', '.join(RUNTIMES)}.")
        if runtime in ("native", found.flavour):
            return self._load_artifact(found)
        export = self._export_of(found.name, found.version, runtime)
        if export is None:
            raise NotFound(
                f"Model {found.name!r} version {found.version} has no {runtime} export; create it with "
                f"`mloop models export {found.name}:{found.version} --format {runtime}` "
                f"(project.models.export({found.name!r}, {found.version}, format={runtime!r}))."
            )
        return self._load_artifact(dataclasses.replace(found, artifact=export.artifact, flavour=runtime))

    def _load_artifact(self, found: ModelVersion) -> LoadedModel:
        with tempfile.TemporaryDirectory(prefix="mloop-load-") as tmp:
            archive = Path(tmp) / "model.tar.gz"
            try:
                self._ctx.artifacts.get_file(found.artifact, archive)
            except (IntegrityError, NotFound) as exc:
                raise type(exc)(
                    f"Model {found.name!r} version {found.version} cannot be loaded: {exc} Or register the "
                    "model again and point its aliases at the new version."
                ) from None
            chosen, model = unpack(archive, Path(tmp) / "model")
        return LoadedModel(found, chosen, model, self._background_of(found))

    def _background_of(self, found: ModelVersion) -> Callable[[], pd.DataFrame | None] | None:
        """A reader of the version's explanation background (None when it was registered without one)."""
        digest = found.lineage.get("explain_background")
        if not isinstance(digest, str):
            return None
        artifacts = self._ctx.artifacts
        return lambda: read_background(artifacts.get_bytes(digest))


def _record(row: ModelExportRow, name: str) -> ModelExport:
    return ModelExport(
        name, row.version, row.format, row.artifact, row.details, row.created_at, row.created_by
    )
