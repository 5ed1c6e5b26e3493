"""An edge package: one ``.tar.gz`` a device unpacks and runs with ``numpy`` and ``onnxruntime`` alone.

The archive holds one folder, ``NAME-VERSION/`` (``NAME-VERSION-int8/`` when quantized), with:

- ``model.onnx``: the version's ONNX export (or its int8 quantization);
- ``signature.json``: the version's input columns (dtypes, tensor shapes), how they feed the graph's
  inputs, which output to read and what it means (values, logits, probabilities), the classes;
- ``preprocessing.json`` (when the version has constants): per input, ``mean`` and ``std`` along an
  ``axis`` of each row (0: a tile's bands), applied by the runner to raw inputs;
- ``check.npz``: a few raw input rows and the answers this package gave them when it was made;
- ``runner.py``: :mod:`mloop.models.edge.runner`, copied;
- ``manifest.json``: the sha256 of every other file, the model's name and version, where it came from
  and, for an int8 package, the measured cost of quantization.

The archive is deterministic (sorted entries, fixed times and owners, no gzip timestamp) and written
whole or not at all (a temporary file beside the target, then renamed).

>>> made = write_package(model, signature, Path("disease.tar.gz"), name="disease", version=3,
...                      check_inputs=raw, expected=answers)                 # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mloop._files import write_bytes
from mloop._version import __version__
from mloop.errors import MalformedInput
from mloop.models.edge import runner
from mloop.models.flavours import json_safe
from mloop.models.onnx import OnnxModel
from mloop.models.signature import Signature

FORMAT = 1
MODEL_FILE = "model.onnx"
CHECK_TOLERANCE = 1e-5


@dataclass(frozen=True)
class EdgePackage:
    """A written edge package: where it is, its folder name inside the archive and its manifest."""

    path: Path
    folder: str
    manifest: dict[str, Any]

    @property
    def quantization(self) -> dict[str, Any] | None:
        found = self.manifest.get("quantization")
        return found if isinstance(found, dict) else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "folder": self.folder, "manifest": self.manifest}


def check_preprocessing(
    constants: Mapping[str, Any], model: OnnxModel, signature: Signature
) -> dict[str, Any]:
    """``constants`` checked against the model's inputs (:class:`MalformedInput` naming the problem): each
    key an input, ``mean`` and ``std`` as long as the ``axis`` they normalize, every ``std`` above zero."""
    inputs = {i.name: i for i in model.inputs}
    specs = {c.name: c for c in signature.inputs}
    out: dict[str, Any] = {}
    for name, steps in constants.items():
        if name not in inputs or not isinstance(steps, Mapping):
            raise MalformedInput(
                f"Preprocessing names {name!r}, which is not an input of the model ({', '.join(inputs)}); "
                'write {"INPUT": {"mean": [...], "std": [...], "axis": 0}} per input.'
            )
        item = inputs[name]
        axis = int(steps.get("axis", 0))
        shape = specs[item.columns[0]].shape if item.tensor else (len(item.columns),)
        if shape is None or not 0 <= axis < len(shape):
            raise MalformedInput(
                f"Preprocessing of {name!r}: axis {axis} is not an axis of its rows {shape}."
            )
        mean = np.asarray(steps.get("mean"), dtype=np.float64).ravel()
        std = np.asarray(steps.get("std"), dtype=np.float64).ravel()
        size = shape[axis]
        if size != -1 and (mean.size != size or std.size != size):
            raise MalformedInput(
                f"Preprocessing of {name!r}: mean and std need {size} values each (axis {axis} of {shape}); "
                f"got {mean.size} and {std.size}."
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise MalformedInput(
                f"Preprocessing of {name!r}: mean must be finite and std finite and above 0."
            )
        out[name] = {"mean": mean.tolist(), "std": std.tolist(), "axis": axis}
    return out


def raw_inputs(inputs: Mapping[str, np.ndarray], preprocessing: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The raw rows whose preprocessing gives ``inputs`` (what the model takes): ``x * std + mean``."""
    out = {}
    for name, batch in inputs.items():
        steps = preprocessing.get(name)
        if steps is None:
            out[name] = np.asarray(batch)
            continue
        shape = [1] * batch.ndim
        shape[int(steps["axis"]) + 1] = -1
        std = np.asarray(steps["std"]).reshape(shape)
        raw = np.asarray(batch, dtype=np.float64) * std + np.asarray(steps["mean"]).reshape(shape)
        out[name] = raw.astype(np.asarray(batch).dtype)  # what a device reads: float32 tiles, not float64
    return out


def write_package(
    model: OnnxModel,
    signature: Signature,
    target: Path,
    *,
    name: str,
    version: int,
    check_inputs: Mapping[str, np.ndarray],
    expected: np.ndarray,
    preprocessing: Mapping[str, Any] | None = None,
    variant: str = "",
    extra: Mapping[str, Any] | None = None,
) -> EdgePackage:
    """Write the edge package of ``model`` to ``target``. ``check_inputs`` are raw rows (one array per input)
        and ``expected`` the answers the package's model gave them; ``extra`` goes into the manifest. The archive's
    folder is ``NAME-VERSION`` (``NAME-VERSION-int8`` with ``variant="int8"``)."""
    import onnxruntime  # type: ignore[import-untyped]

    if not target.parent.is_dir():
        raise MalformedInput(
            f"Cannot write the edge package to {target}: the folder {target.parent} does not exist; create it "
            "or pass --out with an existing folder."
        )
    files: dict[str, bytes] = {
        MODEL_FILE: model.proto,
        runner.SIGNATURE: _json(
            {
                "inputs": [i.to_dict() for i in model.inputs],
                "columns": [c.to_dict() for c in signature.inputs],
                "output_name": model.output_name,
                "output": model.output,
                "task": model.task,
                "classes": json_safe(model.classes),
            }
        ),
        runner.CHECK: _npz({**{f"input:{k}": v for k, v in check_inputs.items()}, "expected": expected}),
        "runner.py": Path(runner.__file__).read_bytes(),
    }
    if preprocessing:
        files[runner.PREPROCESSING] = _json(dict(preprocessing))
    manifest = {
        "format": FORMAT,
        "model": f"{name}:{version}",
        "model_file": MODEL_FILE,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
        "check_tolerance": CHECK_TOLERANCE,
        "onnxruntime": onnxruntime.__version__,
        "mloop_version": __version__,
        **json_safe(dict(extra or {})),
    }
    files[runner.MANIFEST] = _json(manifest)
    folder = f"{name}-{version}" + (f"-{variant}" if variant else "")
    write_bytes(target, _tar(folder, files), what="edge package", option="--out")
    return EdgePackage(target, folder, manifest)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode("utf-8")


def _npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buffer.getvalue()


def _tar(folder: str, files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0, filename="") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        top = tarfile.TarInfo(folder)
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(top)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{folder}/{path}")
            info.size, info.mode, info.mtime = len(data), 0o755 if path == "runner.py" else 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


__all__ = ["EdgePackage", "check_preprocessing", "raw_inputs", "write_package"]
