"""The runner of an mloop edge package: ``python runner.py`` beside the package's files, on a device that has
``numpy`` and ``onnxruntime`` and nothing of mloop.

This file is copied into every edge package as ``runner.py`` (see :mod:`mloop.models.edge.build`), so it
imports the standard library, NumPy and ONNX Runtime only, and keeps to Python 3.8 (devices run older
Pythons than servers: no ``zip(strict=)``, ``str.removeprefix`` or ``match``; annotations are strings).

Before it loads anything it checks each file against the sha256 in ``manifest.json``: a changed or missing
file stops it with the file's name (exit 3). Inputs are raw: the runner applies ``preprocessing.json`` (per-channel mean and std) itself, then feeds the
model and turns its raw output into the answer ``project.models.load(...).predict`` gives (the positive
class's probability for two classes, class probabilities for more, values for a regressor).

Usage::

    python runner.py --check                  # checksums, then the packaged rows answer as at packaging
    python runner.py tiles.npy                # a batch for a one-input model; predictions as JSON
    python runner.py tiles.npz --out p.npy    # one array per input name; predictions to a file
    python runner.py rows.json                # a list of rows: {"tile": [[...]]} or, for one input, arrays

From Python (the folder on ``sys.path``, or loaded with ``importlib``)::

    model = EdgeModel("disease-1")            # verifies the checksums
    model.predict(tiles)                      # tiles: (n, 4, 16, 16) raw float array
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
PREPROCESSING = "preprocessing.json"
CHECK = "check.npz"
BAD_INPUT, BAD_PACKAGE = 2, 3


class EdgeError(Exception):
    """A problem with the input or the package; the message says which and how to fix it."""

    exit_code = BAD_INPUT


class IntegrityError(EdgeError):
    """A file of the package is missing or does not match its checksum."""

    exit_code = BAD_PACKAGE


def verify(folder: Path) -> dict[str, Any]:
    """The package's manifest, after checking every file it lists against its sha256."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(
            f"{folder / MANIFEST} cannot be read ({exc}): this folder is not an unpacked mloop edge package. "
            "Unpack the archive again (tar xzf PACKAGE.tar.gz)."
        ) from None
    for name, want in sorted(manifest.get("files", {}).items()):
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{name} is missing from the package; unpack the archive again.")
        got = _sha256(path)
        if got != want:
            raise IntegrityError(
                f"{name} does not match the package's manifest (sha256 {got[:12]}..., expected {want[:12]}...): "
                "the file was changed or damaged in transit. Copy and unpack the archive again."
            )
    return manifest


class EdgeModel:
    """The packaged model, checked and loaded; :meth:`predict` takes raw inputs."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        self.folder = Path(folder)
        self.manifest = verify(self.folder)
        self.signature: dict[str, Any] = json.loads((self.folder / SIGNATURE).read_text(encoding="utf-8"))
        path = self.folder / PREPROCESSING
        self.preprocessing: dict[str, Any] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(self.folder / self.manifest["model_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs: list[dict[str, Any]] = self.signature["inputs"]
        self.shapes = {c["name"]: c.get("shape") for c in self.signature["columns"]}

    def predict(self, inputs: np.ndarray | dict[str, Any]) -> np.ndarray:
        """Predictions for raw ``inputs``: one batch array for a one-input model, else a dict by input name."""
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                names = ", ".join(i["name"] for i in self.inputs)
                raise EdgeError(
                    f"This model takes {len(self.inputs)} inputs ({names}): give one array per name."
                )
            inputs = {self.inputs[0]["name"]: inputs}
        feed = {item["name"]: self._batch(item, inputs) for item in self.inputs}
        (raw,) = self.session.run([self.signature["output_name"]], feed)
        return answer(np.asarray(raw), self.signature["output"])

    def _batch(self, item: dict[str, Any], inputs: dict[str, Any]) -> np.ndarray:
        name = item["name"]
        if name not in inputs:
            raise EdgeError(
                f"Input {name!r} is missing; the model takes: {', '.join(i['name'] for i in self.inputs)}."
            )
        try:
            batch = np.asarray(inputs[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EdgeError(f"Input {name!r} is not a numeric array ({exc}).") from None
        want = self.shapes.get(item["columns"][0]) if item["tensor"] else [len(item["columns"])]
        if want is not None:
            _check_shape(name, batch.shape, want)
        if not np.isfinite(batch).all():
            raise EdgeError(f"Input {name!r} holds NaN or infinite values; the model needs finite numbers.")
        steps = self.preprocessing.get(name)
        if steps is not None:
            batch = normalize(batch, steps)
        return np.ascontiguousarray(batch, dtype=item.get("dtype", "float32"))


def normalize(batch: np.ndarray, steps: dict[str, Any]) -> np.ndarray:
    """``(batch - mean) / std`` along ``steps["axis"]`` of each row (0: a tile's band axis)."""
    axis = int(steps.get("axis", 0)) + 1  # + the batch dimension
    shape = [1] * batch.ndim
    shape[axis] = -1
    mean = np.asarray(steps["mean"], dtype=np.float64).reshape(shape)
    std = np.asarray(steps["std"], dtype=np.float64).reshape(shape)
    out: np.ndarray = (batch - mean) / std
    return out


def answer(raw: np.ndarray, output: str) -> np.ndarray:
    """What ``predict`` answers from the network's raw output (mloop.models.outputs, copied: no mloop here)."""
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if output == "values":
        return values
    if output == "logits":
        if values.ndim == 1:
            values = 1.0 / (1.0 + np.exp(-values))
        else:
            shifted = np.exp(values - values.max(axis=-1, keepdims=True))
            values = shifted / shifted.sum(axis=-1, keepdims=True)
    if values.ndim == 2 and values.shape[1] == 2:
        return values[:, 1]
    return values


def check(model: EdgeModel) -> dict[str, Any]:
    """Run the packaged rows and compare with the answers recorded when the package was made."""
    with np.load(model.folder / CHECK, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    expected = arrays.pop("expected")
    got = model.predict({k[len("input:") :]: v for k, v in arrays.items()})
    tolerance = float(model.manifest.get("check_tolerance", 1e-5))
    worst = float(np.abs(got - expected).max()) if expected.size else 0.0
    if got.shape != expected.shape or worst > tolerance:
        raise IntegrityError(
            f"The packaged rows answer differently on this device: largest difference {worst:.3g} (allowed "
            f"{tolerance:g}, shapes {got.shape} vs {expected.shape}). This onnxruntime "
            f"({_ort_version()}) computes the model differently from the one that made the package "
            f"({model.manifest.get('onnxruntime')}); install that version."
        )
    return {"rows": len(expected), "max_abs_diff": worst, "tolerance": tolerance}


def read_inputs(path: Path, model: EdgeModel) -> dict[str, Any]:
    """The inputs in ``path``: .npy (one input), .npz (one array per input name) or .json (rows)."""
    names = [i["name"] for i in model.inputs]
    try:
        if path.suffix == ".npy":
            if len(names) != 1:
                raise EdgeError(f"A .npy file feeds a one-input model; give a .npz with {', '.join(names)}.")
            return {names[0]: np.load(path, allow_pickle=False)}
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as saved:
                return {k: saved[k] for k in saved.files}
        if path.suffix == ".json":
            return _json_rows(json.loads(path.read_text(encoding="utf-8")), model)
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{path} cannot be read ({exc}).") from None
    raise EdgeError(f"{path.name}: give inputs as .npy, .npz or .json (a list of rows).")


def _json_rows(rows: Any, model: EdgeModel) -> dict[str, Any]:
    if not isinstance(rows, list) or not rows:
        raise EdgeError("A JSON input is a non-empty list of rows.")
    out: dict[str, Any] = {}
    for item in model.inputs:
        if not all(isinstance(r, dict) for r in rows):  # bare arrays: the one input's rows
            out[item["name"]] = rows
            continue
        try:
            if item["tensor"]:
                out[item["name"]] = [r[item["columns"][0]] for r in rows]
            else:
                out[item["name"]] = [[r[c] for c in item["columns"]] for r in rows]
        except KeyError as exc:
            raise EdgeError(
                f"A row has no {exc.args[0]!r}; every row needs: {', '.join(item['columns'])}."
            ) from None
    return out


def _check_shape(name: str, got: tuple[int, ...], want: list[int]) -> None:
    # zip without strict=: the lengths are checked first, and strict= needs Python 3.10 (see the module doc)
    if len(got) == len(want) + 1 and all(w in (-1, g) for g, w in zip(got[1:], want)):  # noqa: B905
        return
    shown = " x ".join("any" if w == -1 else str(w) for w in want)
    raise EdgeError(
        f"Input {name!r} has shape {tuple(got)}; the model takes (rows, {shown}): a batch whose every row is "
        f"{shown}. Check the band count and tile size, and stack single rows into a batch."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an mloop edge package (numpy + onnxruntime only).")
    parser.add_argument("input", nargs="?", help="raw inputs: .npy, .npz or .json rows")
    parser.add_argument("--check", action="store_true", help="verify checksums and the packaged rows")
    parser.add_argument("--out", help="write predictions to .npy or .json instead of printing them")
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parent), help="the package folder")
    args = parser.parse_args(argv)
    try:
        model = EdgeModel(args.dir)
        if args.check:
            print(json.dumps({"model": model.manifest.get("model"), "check": check(model), "ok": True}))
            if args.input is None:
                return 0
        if args.input is None:
            raise EdgeError("Give an input file (.npy, .npz or .json), or --check.")
        predictions = model.predict(read_inputs(Path(args.input), model))
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.out is None:
        print(json.dumps({"model": model.manifest.get("model"), "predictions": predictions.tolist()}))
    elif args.out.endswith(".npy"):
        np.save(args.out, predictions)
    else:
        Path(args.out).write_text(json.dumps(predictions.tolist()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
