"""Converting a model to ONNX, checked against the original before anything is kept.

- a PyTorch model (:class:`mloop.models.torch.TorchModel`): its ``torch.export`` program through
  ``torch.onnx.export(dynamo=True)``, the batch dimension dynamic, each input named after its ``forward``
  argument;
- a scikit-learn estimator or pipeline: skl2onnx, one float32 input of the signature's columns in order,
  probabilities as a tensor (no ZipMap);
- a LightGBM model (wrapper or booster): onnxmltools, the same way.

The check runs ONNX Runtime and the original on the same rows (the example saved with a PyTorch model, else
rows generated from the signature) and refuses the conversion, naming the largest difference, unless every
answer is within ``rtol`` (1e-3; with an absolute floor of 1e-6 for probabilities near zero).

>>> converted = to_onnx(get_flavour("torch"), loaded.model, loaded.signature)   # doctest: +SKIP
>>> converted.details["parity"]                                              # doctest: +SKIP
{'rows': 8, 'max_abs_diff': 2.4e-07, 'max_rel_diff': 1.1e-06, 'rtol': 0.001, 'atol': 1e-06}
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import numpy as np

from mloop.models.flavours import ExportError, Flavour, class_name, get_flavour
from mloop.models.inputs import ModelInput, arrays, generated
from mloop.models.onnx import OnnxModel
from mloop.models.signature import Signature

FORMATS = ("onnx",)
RTOL = 1e-3
ATOL = 1e-6
PARITY_ROWS = 32
OPSET = 17  # scikit-learn converters
TORCH_OPSET = 18  # torch.onnx.export's own; another makes it convert the graph again
ML_OPSET = 15  # onnxmltools' LightGBM converter supports up to opset 15


def to_onnx(
    flavour: Flavour, model: Any, signature: Signature | None, *, rtol: float = RTOL, atol: float = ATOL
) -> OnnxModel:
    """``model`` (of ``flavour``) as an :class:`OnnxModel` whose answers match the original's, or
    :class:`ExportError` saying why not."""
    if flavour.name == "torch":
        converted = _torch(model)
        frame = model.example_frame()
    elif flavour.name in ("sklearn", "lightgbm"):
        converted = _tabular(flavour, model, signature)
        frame = generated(signature, rows=PARITY_ROWS)
        converted.example = dict(zip(["input"], arrays(converted.inputs, frame), strict=True))
    else:
        raise ExportError(
            f"mloop converts torch, sklearn and lightgbm models to ONNX; this is a {flavour.name} model "
            f"({class_name(model)})."
        )
    want = np.asarray(flavour.predict(model, frame), dtype=np.float64)
    got = np.asarray(get_flavour("onnx").predict(converted, frame), dtype=np.float64)
    converted.details["parity"] = check_parity(want, got, converted.source, rtol=rtol, atol=atol)
    return converted


def check_parity(want: np.ndarray, got: np.ndarray, what: str, *, rtol: float, atol: float) -> dict[str, Any]:
    """The differences between ``want`` and ``got``; :class:`ExportError` if any exceeds the tolerance."""
    if want.shape != got.shape:
        raise ExportError(
            f"The ONNX conversion of the {what} answers with shape {got.shape}, the original with "
            f"{want.shape}; it was not kept."
        )
    diff = np.abs(want - got)
    worst = float(diff.max()) if diff.size else 0.0
    relative = float((diff / np.maximum(np.abs(want), 1e-12)).max()) if diff.size else 0.0
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        raise ExportError(
            f"The ONNX conversion of the {what} does not match the original: ONNX Runtime's answers differ "
            f"by up to {worst:.3g} (relative {relative:.3g}; allowed rtol {rtol:g}) on {len(want)} example "
            "rows, so it was not kept. The graph uses an operator the converter or ONNX Runtime computes "
            "differently; serve this version with its own runtime."
        )
    return {"rows": len(want), "max_abs_diff": worst, "max_rel_diff": relative, "rtol": rtol, "atol": atol}


# ---- converters -----------------------------------------------------------------------------------------


def _torch(model: Any) -> OnnxModel:
    import torch

    from mloop.models.torch import export_program, two_rows

    program = model.program if model.program is not None else export_program(model)
    args = tuple(torch.from_numpy(two_rows(model.example[i.name])) for i in model.inputs)
    names = [i.name for i in model.inputs]
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            exported = torch.onnx.export(
                program, args, dynamo=True, input_names=names, opset_version=TORCH_OPSET, verbose=False
            )
        proto = exported.model_proto.SerializeToString()  # type: ignore[union-attr]  # None only with f=
    except Exception as exc:
        raise ExportError(
            f"The {model.source} cannot be converted to ONNX: torch.onnx.export failed ({_reason(exc)}). "
            "Serve it with the torch runtime, or replace the operator ONNX lacks."
        ) from exc
    finally:
        quiet.setLevel(level)
    converted = OnnxModel(
        proto, list(model.inputs), "", model.output, model.task, model.classes, model.source,
        dict(model.example), {"converter": f"torch.onnx (torch {torch.__version__})", "opset": TORCH_OPSET},
    )  # fmt: skip
    converted.output_name = converted.session.get_outputs()[0].name
    return converted


def _tabular(flavour: Flavour, model: Any, signature: Signature | None) -> OnnxModel:
    if signature is None or not signature.inputs:
        raise ExportError(
            f"Converting a {class_name(model)} to ONNX needs the version's signature (its input columns); "
            "register it with input_example= or signature=."
        )
    unfit = [c.name for c in signature.inputs if c.shape is not None or c.categories is not None]
    unfit += [
        c.name for c in signature.inputs if c.dtype not in ("float32", "float64", "int32", "int64", "bool")
    ]
    if unfit:
        raise ExportError(
            f"The {class_name(model)} takes columns ONNX conversion here cannot feed ({', '.join(sorted(set(unfit)))}: "
            "only numeric scalar columns are converted). Serve it with its own runtime."
        )
    names = tuple(signature.names)
    info = flavour.info(model)
    classifier = info.get("task") == "classification"
    try:
        if flavour.name == "sklearn":
            proto, label = _skl2onnx(model, len(names), classifier)
        else:
            proto, label = _onnxmltools(model, len(names))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(
            f"No ONNX converter takes the {class_name(model)} ({_reason(exc)}). Serve it with its own runtime "
            "(runtime='native'), or register a model skl2onnx/onnxmltools support."
        ) from exc
    converted = OnnxModel(
        proto, [ModelInput("input", names, False, "float32")], "", "values", info.get("task"),
        info.get("classes"), class_name(model), {}, {"converter": label},
    )  # fmt: skip
    outputs = [o.name for o in converted.session.get_outputs()]
    if classifier and "probabilities" in outputs:
        converted.output_name, converted.output = "probabilities", "probabilities"
    else:
        converted.output_name = outputs[-1] if not classifier else outputs[0]
    return converted


def _skl2onnx(model: Any, width: int, classifier: bool) -> tuple[bytes, str]:
    import skl2onnx  # type: ignore[import-untyped]
    from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]

    options = {id(model): {"zipmap": False}} if classifier else None
    proto = skl2onnx.convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, width]))], options=options, target_opset=OPSET
    )
    return proto.SerializeToString(), f"skl2onnx {skl2onnx.__version__}"


def _onnxmltools(model: Any, width: int) -> tuple[bytes, str]:
    import onnxmltools  # type: ignore[import-untyped]
    from onnxmltools.convert.common.data_types import FloatTensorType  # type: ignore[import-untyped]

    proto = onnxmltools.convert_lightgbm(
        model, initial_types=[("input", FloatTensorType([None, width]))], zipmap=False, target_opset=ML_OPSET
    )
    return proto.SerializeToString(), f"onnxmltools {onnxmltools.__version__}"


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["FORMATS", "check_parity", "to_onnx"]
