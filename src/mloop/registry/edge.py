"""Edge packages of a version: its ONNX export (made and checked here when missing), its signature, its
preprocessing constants, a checksum manifest and a standalone runner, in one ``.tar.gz``
(:mod:`mloop.models.edge`). With ``quantize="int8"`` the package holds the int8 quantization instead; it is
stored beside the version as the export ``onnx-int8``, whose details record the measured accuracy cost, so
``mloop models show`` and every later package of that version report the same figures.

Preprocessing constants come from ``preprocessing=`` or, by default, from the version's lineage
(``register(..., lineage={"preprocessing": {"tile": {"mean": [...], "std": [...], "axis": 0}}})``): the
served model takes normalized inputs, the edge runner raw ones.

>>> made = project.models.package_edge("disease", 3, Path("disease.tar.gz"), quantize="int8")  # doctest: +SKIP
>>> made.quantization["agreement"]                                                          # doctest: +SKIP
1.0
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import utcnow
from mloop.errors import MalformedInput, MloopError
from mloop.models.edge import EdgePackage, check_preprocessing, raw_inputs, write_package
from mloop.models.edge.quantize import METHODS, quantization_cost, quantize_int8
from mloop.models.flavours import ExportError, get_flavour, json_safe
from mloop.models.inputs import arrays, to_frame
from mloop.models.onnx import OnnxModel
from mloop.models.package import pack
from mloop.registry.exports import RegistryExports
from mloop.registry.versions import LoadedModel, ModelExport, ModelVersion
from mloop.store.schema import ModelExportRow

INT8 = "onnx-int8"


class RegistryEdge(RegistryExports):
    """Packaging reads the version (``models.read``); making a missing export or int8 quantization stores it
    beside the version and needs ``models.register`` (the audit event is ``models.export``)."""

    def package_edge(
        self,
        name: str,
        version: int,
        out: str | Path,
        *,
        quantize: str | None = None,
        preprocessing: Mapping[str, Any] | str | Path | None = None,
        holdout: pd.DataFrame | np.ndarray | str | Path | None = None,
        labels: Sequence[Any] | np.ndarray | None = None,
    ) -> EdgePackage:
        """Write the edge package of version ``version`` of ``name`` to ``out``.

        ``quantize="int8"`` packages the int8 quantization; its cost is measured on ``holdout`` (rows as
        ``load(...).predict`` takes them, with ``labels`` for accuracy; or an ``.npz`` file of one array per
        input name and ``labels``) or else on the parity rows, the first time it is made. ``preprocessing`` (a dict or a JSON file) overrides the version's constants.
        """
        if quantize is not None and quantize not in METHODS:
            raise MloopError(f"Quantization {quantize!r} is not one of: {', '.join(METHODS)}.")
        self._authorize("models.read", f"model:{name}")
        found = self._found(name, version)
        if found.signature is None:
            raise ExportError(
                f"Model {name!r} version {version} has no signature, so an edge runner cannot check its "
                "inputs; register it again with input_example= or signature=."
            )
        reference = self._onnx_of(found)
        model: OnnxModel = reference.model
        constants = check_preprocessing(_constants(preprocessing, found), model, found.signature)
        frame = model.example_frame()
        served = np.asarray(self._load_artifact(found).predict(frame), dtype=np.float64)
        source: dict[str, Any] = {"flavour": found.flavour, "artifact": found.artifact}
        quantization = None
        if quantize is not None:
            made = self._int8_of(found, model, holdout, labels)
            quantization = made.details.get("quantization")
            source["export"] = {"format": INT8, "artifact": made.artifact}
            model = self._load_artifact(
                dataclasses.replace(found, artifact=made.artifact, flavour="onnx")
            ).model
        elif found.flavour != "onnx":
            source["export"] = {"format": "onnx", "artifact": reference.info.artifact}
        expected = np.asarray(get_flavour("onnx").predict(model, frame), dtype=np.float64)
        example = dict(zip((i.name for i in model.inputs), arrays(model.inputs, frame), strict=True))
        return write_package(
            model, found.signature, Path(out), name=name, version=version,
            check_inputs=raw_inputs(example, constants), expected=expected, preprocessing=constants,
            variant=quantize or "",
            extra={
                "source": source,
                "served_parity": {"rows": len(frame), "max_abs_diff": float(np.abs(served - expected).max())},
                "quantization": quantization,
                "created_at": utcnow().isoformat(),
                "created_by": self.actor.name,
            },
        )  # fmt: skip

    # ---- internals ------------------------------------------------------------------------------------

    def _onnx_of(self, found: ModelVersion) -> LoadedModel:
        """The version's model as ONNX: itself, or its export (made now if missing)."""
        if found.flavour == "onnx":
            return self._load_artifact(found)
        try:
            if self._export_of(found.name, found.version, "onnx") is None:  # a reader may package what exists
                self.export(found.name, found.version, format="onnx")
        except ExportError as exc:
            raise ExportError(
                f"Model {found.name!r} version {found.version} cannot be packaged for the edge: "
                f"{str(exc).split(': ', 1)[-1]} An edge package holds an ONNX model: a registered ONNX model, "
                "or a torch, sklearn or lightgbm model that converts to ONNX."
            ) from exc
        return self._load_runtime(found, "onnx")

    def _int8_of(
        self, found: ModelVersion, model: OnnxModel, holdout: Any, labels: Sequence[Any] | np.ndarray | None
    ) -> ModelExport:
        """The version's int8 export, quantized and measured now if missing."""
        existing = self._export_of(found.name, found.version, INT8)
        if existing is not None:
            return existing
        quantized = quantize_int8(model)
        if holdout is None:
            frame, labels = model.example_frame(), None
        else:
            frame, labels = _holdout(holdout, labels, model)
        cost = quantization_cost(model, quantized, frame, labels)
        quantized.details["quantization"] = cost
        resource = f"model:{found.name}"
        with tempfile.TemporaryDirectory(prefix="mloop-quantize-") as tmp:
            archive = Path(tmp) / "model.onnx-int8.tar.gz"
            extra = {"export_of": {"model": found.name, "version": found.version}, "quantized": True}
            pack(quantized, get_flavour("onnx"), archive, extra={"signature": _signature(found), **extra})
            digest = self._ctx.artifacts.put_file(archive)
        with self._mutate(
            "models.register", resource, action="models.export", version=found.version, format=INT8,
            artifact=digest,
        ) as change:  # fmt: skip
            parent = self._model_row(change.session, found.name)
            row = ModelExportRow(
                model_id=parent.id, version=found.version, format=INT8, artifact=digest,
                details=json_safe(quantized.details), created_at=utcnow(), created_by=self.actor.name,
            )  # fmt: skip
            change.session.add(row)
            change.session.flush()
            return ModelExport(found.name, row.version, row.format, row.artifact, row.details, row.created_at,
                               row.created_by)  # fmt: skip


def _signature(found: ModelVersion) -> dict[str, Any] | None:
    return found.signature.to_dict() if found.signature else None


def _constants(given: Mapping[str, Any] | str | Path | None, found: ModelVersion) -> Mapping[str, Any]:
    if given is None:
        stored = found.lineage.get("preprocessing")
        return stored if isinstance(stored, Mapping) else {}
    if isinstance(given, Mapping):
        return given
    try:
        loaded = json.loads(Path(given).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MalformedInput(
            f"The preprocessing file {given} cannot be read ({exc}); give a JSON object such as "
            '{"tile": {"mean": [0.1, 0.2], "std": [1.0, 2.0], "axis": 0}}.'
        ) from None
    if not isinstance(loaded, dict):
        raise MalformedInput(f"The preprocessing file {given} holds {type(loaded).__name__}; give an object.")
    return loaded


def _holdout(
    holdout: pd.DataFrame | np.ndarray | str | Path, labels: Any, model: OnnxModel
) -> tuple[pd.DataFrame, Any]:
    """The holdout rows as a frame the model takes, and their labels."""
    if isinstance(holdout, pd.DataFrame):
        return holdout, labels
    names = [i.name for i in model.inputs]
    if isinstance(holdout, str | Path):
        try:
            with np.load(holdout, allow_pickle=False) as saved:
                found = {k: saved[k] for k in saved.files}
        except (OSError, ValueError) as exc:
            raise MalformedInput(
                f"The holdout {holdout} cannot be read ({exc}); give an .npz with {', '.join(names)} and labels."
            ) from None
        labels = found.pop("labels", labels)
        missing = [n for n in names if n not in found]
        if missing:
            raise MalformedInput(
                f"The holdout {holdout} has no {', '.join(missing)}; it holds {', '.join(found) or 'nothing'}. "
                f"Save one array per input ({', '.join(names)}) and labels (np.savez)."
            )
        return to_frame(model.inputs, found), labels
    if len(names) != 1:
        raise MalformedInput(f"An array holdout feeds a one-input model; this one takes {', '.join(names)}.")
    return to_frame(model.inputs, {names[0]: np.asarray(holdout)}), labels
