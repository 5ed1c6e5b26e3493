"""The ONNX flavour: a model converted to ONNX (:mod:`mloop.models.export`), served with ONNX Runtime.

Saved as ``model.onnx`` with ``onnx.json`` (its inputs, which output to read and what it means, the classes,
the class it was converted from) and the example rows the parity check used (``example.npz``). Loaded into
an ``onnxruntime.InferenceSession`` on the CUDA provider where ONNX Runtime offers it, else the CPU, with
``intra_op_num_threads`` from :mod:`mloop.models.threads` (the runtime's default when unset) and one
inter-op thread. Predictions follow every flavour's semantics (:mod:`mloop.models.flavours`), through
:mod:`mloop.models.outputs`, so a version answers the same under either runtime.

>>> loaded = project.models.load("digits", version=3, runtime="onnx")   # doctest: +SKIP
>>> loaded.predict(frame)                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.models.flavours import json_safe
from mloop.models.inputs import ModelInput, arrays, batches, to_frame
from mloop.models.outputs import answer
from mloop.models.threads import inference_threads

MODEL_FILE = "model.onnx"
META_FILE = "onnx.json"
EXAMPLE_FILE = "example.npz"


@dataclass
class OnnxModel:
    """An ONNX graph, its session, and how to feed it and read it."""

    proto: bytes
    inputs: list[ModelInput]
    output_name: str
    output: str  # values | logits | probabilities (mloop.models.outputs)
    task: str | None = None
    classes: list[Any] | None = None
    source: str = ""
    example: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # converter, opset, parity
    _session: Any = field(default=None, repr=False)

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = session(self.proto)
        return self._session

    def example_frame(self) -> pd.DataFrame:
        return to_frame(self.inputs, self.example)


class OnnxFlavour:
    name = "onnx"

    def handles(self, model: Any) -> bool:
        return isinstance(model, OnnxModel)

    def save(self, model: OnnxModel, folder: Path) -> None:
        (folder / MODEL_FILE).write_bytes(model.proto)
        np.savez(folder / EXAMPLE_FILE, **model.example)  # type: ignore[arg-type]  # numpy stubs: **arrays
        meta = {
            "class": model.source,
            "inputs": [i.to_dict() for i in model.inputs],
            "output_name": model.output_name,
            "output": model.output,
            "task": model.task,
            "classes": json_safe(model.classes),
            "details": json_safe(model.details),
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    def load(self, folder: Path) -> OnnxModel:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        with np.load(folder / EXAMPLE_FILE, allow_pickle=False) as saved:
            example = {k: saved[k] for k in saved.files}
        model = OnnxModel(
            (folder / MODEL_FILE).read_bytes(), [ModelInput.from_dict(i) for i in meta["inputs"]],
            meta["output_name"], meta["output"], meta.get("task"), meta.get("classes"), meta.get("class", ""),
            example, meta.get("details", {}),
        )  # fmt: skip
        model.session  # noqa: B018  # open the session now: a broken graph fails at load, not on a request
        return model

    def predict(self, model: OnnxModel, frame: pd.DataFrame) -> np.ndarray:
        feed = dict(zip((i.name for i in model.inputs), arrays(model.inputs, frame), strict=True))
        (raw,) = model.session.run([model.output_name], feed)
        return answer(np.asarray(raw), model.output)

    def row_predictor(
        self, model: OnnxModel, signature: Any
    ) -> Callable[[dict[str, list[Any]]], np.ndarray | None] | None:
        """Predictions straight from a request's tensor columns (None: take the general path)."""
        if not all(i.tensor for i in model.inputs):
            return None
        specs = {s.name: s for s in signature.inputs}
        names = [i.name for i in model.inputs]

        def predict(columns: dict[str, list[Any]]) -> np.ndarray | None:
            feed = batches(model.inputs, specs, columns)
            if feed is None:
                return None
            (raw,) = model.session.run([model.output_name], dict(zip(names, feed, strict=True)))
            return answer(np.asarray(raw), model.output)

        return predict

    def info(self, model: OnnxModel) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": model.source,
            "params": json_safe(model.details),
            "task": model.task,
            "output": model.output,
            "allow_nan": False,
        }
        if model.classes is not None:
            out["classes"] = json_safe(list(model.classes))
        return out


def session(proto: bytes) -> Any:
    """An ONNX Runtime session for ``proto``: CUDA when offered, else the CPU; threads as configured."""
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    threads = inference_threads()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # converters declare label shapes loosely; ORT warns on every call
    available = onnxruntime.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return onnxruntime.InferenceSession(proto, options, providers=providers)


__all__ = ["OnnxFlavour", "OnnxModel", "session"]
