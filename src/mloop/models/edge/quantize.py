"""Int8 dynamic quantization of an ONNX model (``onnxruntime.quantization``) and what it costs in accuracy.

Dynamic quantization stores the weights of ``Conv``/``MatMul``/``Gemm`` as int8 and quantizes activations on
the fly, so it needs no calibration data; the model shrinks about 4x and a CPU without a fast float path
runs it faster. Its cost is measured, never assumed: :func:`quantization_cost` runs the float and the int8
model on the same rows and reports how far the answers move, and, given labels, both accuracies.

>>> int8 = quantize_int8(onnx_model)                                          # doctest: +SKIP
>>> quantization_cost(onnx_model, int8, frame, labels)["accuracy_change"]     # doctest: +SKIP
-0.004
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.models.flavours import ExportError, get_flavour
from mloop.models.onnx import OnnxModel

METHODS = ("int8",)


def quantize_int8(model: OnnxModel) -> OnnxModel:
    """``model`` with int8 weights (``quantize_dynamic``, ``QInt8``); the rest of it unchanged."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
    from onnxruntime.quantization.registry import IntegerOpsRegistry  # type: ignore[import-untyped]

    used = {node.op_type for node in onnx.load_from_string(model.proto).graph.node}
    if not used & set(IntegerOpsRegistry):
        raise ExportError(
            f"The ONNX graph of the {model.source} has no operator dynamic int8 quantization applies to "
            f"({', '.join(sorted(IntegerOpsRegistry))}; it has {', '.join(sorted(used))}), so int8 would "
            "change nothing: package it without --quantize."
        )
    with tempfile.TemporaryDirectory(prefix="mloop-quantize-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model.proto)
        quiet = logging.getLogger()  # the quantizer logs advice on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        except Exception as exc:
            raise ExportError(
                f"ONNX Runtime could not quantize the {model.source} to int8 ({type(exc).__name__}: {exc}). "
                "Package it without --quantize."
            ) from exc
        finally:
            quiet.setLevel(level)
        proto = target.read_bytes()
    import onnxruntime  # type: ignore[import-untyped]

    details = {**model.details, "quantizer": f"dynamic int8 (onnxruntime {onnxruntime.__version__})"}
    return dataclasses.replace(model, proto=proto, details=details, _session=None)


def quantization_cost(
    reference: OnnxModel,
    quantized: OnnxModel,
    frame: pd.DataFrame,
    labels: Sequence[Any] | np.ndarray | None = None,
) -> dict[str, Any]:
    """How the int8 model's answers on ``frame`` differ from the float model's: the largest change, the share
    of rows whose predicted class stays the same (classifiers), and with ``labels`` each model's accuracy
    (classifiers) or RMSE (regressors) and the change; also both models' sizes."""
    flavour = get_flavour("onnx")
    want = np.asarray(flavour.predict(reference, frame), dtype=np.float64)
    got = np.asarray(flavour.predict(quantized, frame), dtype=np.float64)
    cost: dict[str, Any] = {
        "method": "int8",
        "rows": len(frame),
        "sample": "holdout rows" if labels is not None else "parity rows",
        "max_abs_diff": float(np.abs(want - got).max()) if want.size else 0.0,
        "size_bytes": len(reference.proto),
        "size_bytes_int8": len(quantized.proto),
    }
    classifier = reference.task == "classification"
    if classifier:
        cost["agreement"] = float(np.mean(_classes(want, reference) == _classes(got, reference)))
    if labels is not None:
        truth = np.asarray(labels)
        if len(truth) != len(frame):
            raise ExportError(f"The holdout has {len(frame)} rows but {len(truth)} labels; give one per row.")
        if classifier:
            before = float(np.mean(_classes(want, reference) == truth))
            after = float(np.mean(_classes(got, reference) == truth))
            cost.update(accuracy=before, accuracy_int8=after, accuracy_change=after - before)
        else:
            truth = truth.astype(np.float64)
            before = float(np.sqrt(np.mean((want - truth) ** 2)))
            after = float(np.sqrt(np.mean((got - truth) ** 2)))
            cost.update(rmse=before, rmse_int8=after, rmse_change=after - before)
    return cost


def _classes(predictions: np.ndarray, model: OnnxModel) -> np.ndarray:
    """The predicted class of each row, from the probability answer every classifier gives."""
    index = (predictions >= 0.5).astype(int) if predictions.ndim == 1 else predictions.argmax(axis=1)
    width = 2 if predictions.ndim == 1 else predictions.shape[1]
    classes = np.asarray(model.classes if model.classes is not None else list(range(width)))
    out: np.ndarray = classes[index]
    return out


__all__ = ["METHODS", "quantization_cost", "quantize_int8"]
