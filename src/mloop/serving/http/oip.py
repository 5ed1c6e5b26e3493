"""The Open Inference Protocol (KServe v2) over mloop endpoints: tensors in, tensors out.

A model in the protocol is an mloop endpoint; its versions are the model versions the endpoint serves.
Inputs come as one tensor per column (shape ``[n]`` or ``[n, 1]``), or as one ``[n, k]`` tensor whose k
columns are the signature's inputs in order. Join keys may be sent as tensors too: the online features
are looked up as on the v1 API. The answer is one tensor per output, ``FP64`` of shape ``[n]`` (``[n, c]``
for a multiclass model's probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mloop.errors import MalformedInput

# Datatype -> the Python types its elements may have (bool is not an int here).
DATATYPES: dict[str, tuple[type, ...]] = {
    "BOOL": (bool,),
    **{name: (int,) for name in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")},
    **{name: (int, float) for name in ("FP16", "FP32", "FP64")},
    "BYTES": (str,),
}
SIGNATURE_DATATYPE = {"int32": "INT32", "int64": "INT64", "float32": "FP32", "float64": "FP64",
                      "bool": "BOOL", "string": "BYTES", "timestamp": "BYTES", "date": "BYTES"}  # fmt: skip


def tensors_to_rows(inputs: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows from OIP input tensors; ``columns`` are the signature's inputs (for a ``[n, k]`` tensor)."""
    if not inputs:
        raise MalformedInput("An inference request needs at least one input tensor in 'inputs'.")
    named: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in inputs:
        name, shape, datatype = tensor["name"], list(tensor["shape"]), tensor["datatype"]
        data = _flatten(tensor["data"])
        _check(name, shape, datatype, data)
        width = math.prod(shape[1:]) if len(shape) > 1 else 1
        n = shape[0] if shape else 1
        if rows is not None and n != rows:
            raise MalformedInput(
                f"Input {name!r} has {n} rows but an earlier input has {rows}; send one batch."
            )
        rows = n
        if width == 1:
            named[name] = data
            continue
        if len(shape) != 2 or width != len(columns):
            raise MalformedInput(
                f"Input {name!r} has shape {shape}; a tensor of several columns must be [n, {len(columns)}], "
                f"one column per model input in this order: {', '.join(columns)}. Or send one tensor per input."
            )
        for j, column in enumerate(columns):
            named[column] = data[j::width]
    assert rows is not None
    return [{name: values[i] for name, values in named.items()} for i in range(rows)]


def outputs(
    predictions: list[Any], names: Sequence[str], requested: Sequence[str] | None
) -> list[dict[str, Any]]:
    """The response tensors: the prediction, under the signature's output name."""
    name = names[0] if names else "prediction"
    if requested:
        unknown = [r for r in requested if r != name]
        if unknown:
            raise MalformedInput(f"This model has no output {unknown[0]!r}; its output is {name!r}.")
    n = len(predictions)
    if predictions and isinstance(predictions[0], list):
        width = len(predictions[0])
        flat = [v for row in predictions for v in row]
        return [{"name": name, "datatype": "FP64", "shape": [n, width], "data": flat}]
    return [{"name": name, "datatype": "FP64", "shape": [n], "data": predictions}]


def metadata(endpoint: str, info: dict[str, Any]) -> dict[str, Any]:
    """Model metadata in the protocol's shape, from :meth:`Inference.describe`."""
    signature = info.get("signature") or {"inputs": [], "outputs": []}
    outs = [_tensor(c) for c in signature.get("outputs", [])] or [
        {"name": "prediction", "datatype": "FP64", "shape": [-1]}
    ]
    return {
        "name": endpoint,
        "versions": [str(v) for v in info["versions"]],
        "platform": "mloop",
        "inputs": [_tensor(c) for c in signature.get("inputs", [])],
        "outputs": outs,
        "parameters": {"model": info["model"], "version": info["version"], "revision": info["revision"],
                       "features": info["features"]},
    }  # fmt: skip


def _tensor(column: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": column["name"],
        "datatype": SIGNATURE_DATATYPE.get(column["dtype"], "BYTES"),
        "shape": [-1],
    }


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if all(not isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for value in data:
        out.extend(_flatten(value))
    return out


def _check(name: str, shape: list[int], datatype: str, data: list[Any]) -> None:
    if datatype not in DATATYPES:
        raise MalformedInput(f"Input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}.")
    if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape) or not shape:
        raise MalformedInput(f"Input {name!r}: shape {shape} must be a list of non-negative whole numbers.")
    if math.prod(shape) != len(data):
        raise MalformedInput(
            f"Input {name!r}: shape {shape} holds {math.prod(shape)} elements but data has {len(data)}."
        )
    allowed = DATATYPES[datatype]
    for value in data:
        if value is None:
            continue
        if isinstance(value, bool) and bool not in allowed:
            raise MalformedInput(f"Input {name!r}: {value!r} is not a {datatype} element.")
        if not isinstance(value, allowed):
            raise MalformedInput(f"Input {name!r}: {value!r} is not a {datatype} element.")
        if isinstance(value, float) and not math.isfinite(value):
            raise MalformedInput(f"Input {name!r}: {value} is not a finite number; send null instead.")
