"""The PyTorch flavour: a ``torch.nn.Module``, or a skorch net (``NeuralNetClassifier``/``Regressor`` and
their subclasses, found through ``module_``), saved so that it loads without the user's Python class.

Saved as a ``torch.export`` program (``model.pt2``: the graph and its weights; the batch dimension dynamic),
with the state dict beside it (``state_dict.pt``, to load into the class where one has it), a few example
rows (``example.npz``, for the ONNX parity check) and ``torch.json``. Loading gives a :class:`TorchModel`
around the program's module, on ``cuda`` when ``torch.cuda.is_available()`` and on the CPU otherwise, with
the thread count of :mod:`mloop.models.threads`. Why ``torch.export`` and not TorchScript: docs/decisions.md.

What goes in: the example given at registration says it. An array (a batch: first dimension the rows) is the
module's one input, named after ``forward``'s first argument; a dict of arrays names several (``forward``'s
arguments); a DataFrame gives each tensor column to the ``forward`` argument of its name (else the next free
one), and its scalar columns, stacked in order into one ``(n, k)`` float32 tensor, to the argument left.
Float64 examples become float32 where the module's weights are float32.

What comes out follows every flavour (:mod:`mloop.models.flavours`), from the module's raw output as
:mod:`mloop.models.outputs` reads it:

- a skorch classifier: ``"logits"`` when skorch itself applies a softmax or sigmoid before
  ``predict_proba`` (``CrossEntropyLoss``, ``BCEWithLogitsLoss``), else ``"probabilities"`` (skorch's
  default ``NLLLoss`` expects a module that outputs probabilities); classes from ``classes_``;
- a skorch regressor: ``"values"``;
- a bare module: what ``register(..., task=, output=)`` says; ``task="classification"`` defaults to
  ``output="logits"``, no task to ``"values"``; classes are 0..k-1.

Predictions run in eval mode (the program is exported from eval mode; a live module is switched for the
call and back) under ``torch.inference_mode()``.

>>> v = project.models.register("digits", cnn, input_example=X[:8], task="classification")  # doctest: +SKIP
>>> project.models.load("digits", version=v.version).predict({"x": X[0]})                  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.models import tensors
from mloop.models.flavours import ExportError, class_name, from_module, json_safe
from mloop.models.inputs import ModelInput, arrays, batches, generated, to_frame
from mloop.models.outputs import OUTPUTS, answer
from mloop.models.tensors import cells
from mloop.models.threads import inference_threads

MODEL_FILE = "model.pt2"
STATE_FILE = "state_dict.pt"
EXAMPLE_FILE = "example.npz"
META_FILE = "torch.json"
EXAMPLE_ROWS = 8
TASKS = ("classification", "regression")


TorchInput = ModelInput  # one forward argument and the columns it is made from


@dataclass
class TorchModel:
    """A network ready to predict: the module (or a loaded program's module) and how to call it."""

    module: Any
    inputs: list[ModelInput]
    output: str
    task: str | None
    classes: list[Any] | None = None
    example: dict[str, np.ndarray] = field(default_factory=dict)
    program: Any = None  # the torch.export ExportedProgram, once exported or loaded
    source: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def arrays(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """The batch arrays of ``frame``, one per ``forward`` argument, in order."""
        return arrays(self.inputs, frame)

    def example_frame(self) -> pd.DataFrame:
        return to_frame(self.inputs, self.example)


class TorchFlavour:
    name = "torch"

    def handles(self, model: Any) -> bool:
        if isinstance(model, TorchModel):
            return True
        if from_module(model, "skorch"):  # any skorch NeuralNet, fitted (module_) or not (module)
            return hasattr(model, "module_") or hasattr(model, "module")
        return from_module(model, "torch") and callable(getattr(model, "forward", None))

    def prepare(
        self,
        model: Any,
        example: Any,
        *,
        signature: Any = None,
        task: str | None = None,
        output: str | None = None,
    ) -> tuple[TorchModel, pd.DataFrame]:
        """``model`` as a :class:`TorchModel` and its example as a frame (made from ``signature``'s shapes
        when no example is given)."""
        if isinstance(model, TorchModel):
            return model, model.example_frame() if example is None else _frame(example, model.inputs)
        module, classes, task, output, params = _unwrap(model, task, output)
        params_of = [p for p in module.parameters()]
        floating = params_of[0].dtype if params_of else None
        if example is None:
            if signature is None:
                raise ExportError(
                    f"A {class_name(model)} is saved by tracing it on an example: pass input_example= (a "
                    "batch array, a dict of arrays, or a DataFrame) or signature= to register it."
                )
            example = generated(signature)
        frame = _as_frame(example, _arguments(module))
        frame = _narrow(frame, str(floating).removeprefix("torch.") if floating is not None else None)
        inputs = _layout(frame, _arguments(module), class_name(model))
        device = str(params_of[0].device) if params_of else "cpu"
        made = TorchModel(module, inputs, output, task, classes, {}, None, class_name(model), params, device)
        made.example = {i.name: a[:EXAMPLE_ROWS] for i, a in zip(inputs, made.arrays(frame), strict=True)}
        if task == "classification" and classes is None:
            width = answer(_run(made, made.arrays(frame[:2])), output)
            made.classes = [0, 1] if width.ndim == 1 else list(range(width.shape[1]))
        return made, frame

    def save(self, model: Any, folder: Path) -> None:
        import torch

        made = model if isinstance(model, TorchModel) else self.prepare(model, None)[0]
        program = made.program if made.program is not None else export_program(made)
        torch.export.save(program, str(folder / MODEL_FILE))
        live = made.program is None and hasattr(made.module, "state_dict")
        torch.save(made.module.state_dict() if live else dict(program.state_dict), folder / STATE_FILE)
        np.savez(folder / EXAMPLE_FILE, **made.example)  # type: ignore[arg-type]  # numpy stubs: **arrays
        meta = {
            "class": made.source,
            "torch_version": torch.__version__,
            "inputs": [i.to_dict() for i in made.inputs],
            "output": made.output,
            "task": made.task,
            "classes": json_safe(made.classes),
            "params": made.params,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    def load(self, folder: Path) -> TorchModel:
        import torch

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        program = torch.export.load(str(folder / MODEL_FILE))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device != "cpu":  # untested here (no GPU): moves the weights and the graph's device constants
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        threads = inference_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        with np.load(folder / EXAMPLE_FILE, allow_pickle=False) as saved:
            example = {k: saved[k] for k in saved.files}
        inputs = [ModelInput.from_dict(i) for i in meta["inputs"]]
        return TorchModel(
            program.module(), inputs, meta["output"], meta.get("task"), meta.get("classes"), example,
            program, meta.get("class", ""), meta.get("params", {}), device,
        )  # fmt: skip

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        made = model if isinstance(model, TorchModel) else self.prepare(model, frame)[0]
        return answer(_run(made, made.arrays(frame)), made.output)

    def row_predictor(
        self, model: Any, signature: Any
    ) -> Callable[[dict[str, list[Any]]], np.ndarray | None] | None:
        """Predictions straight from a request's tensor columns (None: take the general path)."""
        if not isinstance(model, TorchModel) or not all(i.tensor for i in model.inputs):
            return None
        specs = {s.name: s for s in signature.inputs}

        def predict(columns: dict[str, list[Any]]) -> np.ndarray | None:
            feed = batches(model.inputs, specs, columns)
            return None if feed is None else answer(_run(model, feed), model.output)

        return predict

    def info(self, model: Any) -> dict[str, Any]:
        made = model if isinstance(model, TorchModel) else None
        out: dict[str, Any] = {
            "type": made.source if made else class_name(model),
            "params": made.params if made else {},
            "task": made.task if made else None,
            "allow_nan": False,
        }
        if made is not None:
            out["output"] = made.output
            out["inputs"] = [i.name for i in made.inputs]
            if made.classes is not None:
                out["classes"] = json_safe(list(made.classes))
        return out


def export_program(model: TorchModel) -> Any:
    """``model`` exported with ``torch.export`` (batch dimension dynamic), checked against the module on its
    example; :class:`ExportError` naming the model and the reason when torch cannot export it."""
    import torch

    args = tuple(torch.from_numpy(two_rows(model.example[i.name])).to(model.device) for i in model.inputs)
    batch = torch.export.Dim("batch")
    was = getattr(model.module, "training", False)
    model.module.eval()
    try:
        with warnings.catch_warnings():
            # nn.LSTM re-assigns its flat weights while traced; harmless for inference.
            warnings.filterwarnings("ignore", message=".*were assigned during export.*")
            program = torch.export.export(model.module, args, dynamic_shapes=tuple({0: batch} for _ in args))
        with torch.inference_mode():
            want = _first(model.module(*args)).cpu().numpy()
            got = _first(program.module()(*args)).cpu().numpy()
    except Exception as exc:
        raise ExportError(
            f"The {model.source} cannot be saved: torch.export failed ({_reason(exc)}). Make forward() free of "
            "Python control flow that depends on tensor values (use torch.where or torch.cond) and of "
            "operators torch.export does not support, then register it again."
        ) from exc
    finally:
        model.module.train(was)
    if want.shape != got.shape or not np.allclose(want, got, rtol=1e-4, atol=1e-5):
        raise ExportError(
            f"The {model.source} cannot be saved: its exported program answers differently from the module on "
            "the example (forward() takes a path torch.export did not trace). Make forward() depend only on "
            "tensor shapes, not on Python state."
        )
    return program


# ---- helpers --------------------------------------------------------------------------------------------


def _unwrap(
    model: Any, task: str | None, output: str | None
) -> tuple[Any, list[Any] | None, str | None, str, dict[str, Any]]:
    if task is not None and task not in TASKS:
        raise ExportError(f"task must be one of {', '.join(TASKS)} (or None for values), not {task!r}.")
    if output is not None and output not in OUTPUTS:
        raise ExportError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}.")
    if from_module(model, "skorch"):
        if not hasattr(model, "module_"):
            raise ExportError(f"The {class_name(model)} has no trained module yet: fit it, then register it.")
        classes = getattr(model, "classes_", None) if _safe_has(model, "classes_") else None
        kind = "classification" if classes is not None else "regression"
        guessed = _skorch_output(model) if kind == "classification" else "values"
        params = json_safe(model.get_params(deep=False)) if hasattr(model, "get_params") else {}
        classes = json_safe(list(classes)) if classes is not None else None
        return model.module_, classes, task or kind, output or guessed, params
    if task == "regression" and output not in (None, "values"):
        raise ExportError(f"A regression model answers values; output={output!r} is for classifiers.")
    chosen = output or ("logits" if task == "classification" else "values")
    return model, None, task, chosen, {}


def _safe_has(model: Any, attr: str) -> bool:
    try:
        return getattr(model, attr, None) is not None
    except Exception:  # skorch raises when the classes were never inferred
        return False


def _skorch_output(net: Any) -> str:
    get = getattr(net, "_get_predict_nonlinearity", None)
    function = get() if callable(get) else None
    name = getattr(getattr(function, "func", function), "__name__", "_identity")
    if name in ("softmax", "_sigmoid_then_2d", "sigmoid"):
        return "logits"
    if name in ("_identity", "_make_2d_probs"):
        return "probabilities"
    raise ExportError(
        f"The {class_name(net)} applies its own predict_nonlinearity ({name}); say what its module outputs: "
        "register(..., output='logits') or output='probabilities'."
    )


def _arguments(module: Any) -> list[tuple[str, bool]]:
    """``forward``'s arguments that take tensors, with whether each is required."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(module.forward).parameters.values()
    return [(p.name, p.default is inspect.Parameter.empty) for p in params if p.kind in kinds]


def _as_frame(example: Any, arguments: list[tuple[str, bool]]) -> pd.DataFrame:
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, Mapping):
        return pd.DataFrame({str(k): cells(_numpy(v)) for k, v in example.items()})
    array = _numpy(example)
    if array.ndim < 2:
        raise ExportError(
            f"An input example of shape {array.shape} is not a batch: send an array whose first dimension is "
            "the rows (for one row, add one: x[None])."
        )
    name = arguments[0][0] if arguments else "input"
    return pd.DataFrame({name: cells(array)})


def _frame(example: Any, inputs: list[ModelInput]) -> pd.DataFrame:
    return _as_frame(example, [(i.name, True) for i in inputs])


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


def _narrow(frame: pd.DataFrame, floating: str | None) -> pd.DataFrame:
    """Float64 tensor cells as float32 for a float32 module (torch's default dtype)."""
    if floating != "float32":
        return frame
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object and len(column) and getattr(column.iloc[0], "dtype", None) == np.float64:
            out[name] = cells(np.stack(column.tolist()).astype(np.float32))
    return out


def _layout(frame: pd.DataFrame, arguments: list[tuple[str, bool]], model: str) -> list[ModelInput]:
    def is_tensor(column: pd.Series) -> bool:
        return column.dtype == object and len(column) > 0 and isinstance(column.iloc[0], np.ndarray)

    tensor_columns = [str(c) for c in frame.columns if is_tensor(frame[c])]
    scalars = tuple(str(c) for c in frame.columns if not is_tensor(frame[c]))
    names = [a for a, _ in arguments]
    free = [n for n in names if n not in tensor_columns]
    groups: dict[str, ModelInput] = {}
    for column in tensor_columns:
        target = column if column in names else (free.pop(0) if free else None)
        if target is None:
            raise ExportError(
                f"The example has more inputs than {model}.forward takes ({', '.join(names) or 'none'}); "
                f"column {column!r} has no argument to go to."
            )
        dtype = tensors.dtype_name(np.asarray(frame[column].iloc[0])) or "float32"
        groups[target] = ModelInput(target, (column,), True, dtype)
    if scalars:
        if not free:
            raise ExportError(
                f"{model}.forward takes {', '.join(names)}, all given tensor columns; the scalar columns "
                f"{', '.join(scalars)} have no argument to go to."
            )
        target = free.pop(0)
        groups[target] = ModelInput(target, scalars, False)
    missing = [a for a, required in arguments if required and a not in groups]
    if missing:
        raise ExportError(
            f"{model}.forward needs {', '.join(missing)} as well; the example gives "
            f"{', '.join(map(str, frame.columns))}. Pass a dict of arrays named after forward's arguments."
        )
    return [groups[n] for n in names if n in groups]


def two_rows(array: np.ndarray) -> np.ndarray:
    # torch.export specialises a dimension of size 1; two rows keep the batch dimension dynamic.
    return np.ascontiguousarray(np.concatenate([array, array]) if len(array) < 2 else array)


def _run(model: TorchModel, arrays: list[np.ndarray]) -> np.ndarray:
    import torch

    live = model.program is None
    was = live and bool(getattr(model.module, "training", False))
    if live:
        model.module.eval()
    try:
        with torch.inference_mode():
            args = [torch.from_numpy(a).to(model.device) for a in arrays]
            return np.asarray(_first(model.module(*args)).cpu().numpy())
    finally:
        if was:
            model.module.train(True)


def _first(out: Any) -> Any:
    """A module's output tensor (the first, when it returns several)."""
    return out[0] if isinstance(out, tuple | list) else out


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["TorchFlavour", "TorchInput", "TorchModel", "export_program", "two_rows"]
