"""The Open Inference Protocol (KServe v2) over mloop endpoints: tensors in, tensors out.

A model in the protocol is an mloop endpoint; its versions are the model versions the endpoint serves.
Inputs come as one tensor per column (shape ``[n]`` or ``[n, 1]``), or as one ``[n, k]`` tensor whose k
columns are the signature's inputs in order. A tensor column of the signature (an image of shape
``(1, 28, 28)``) comes as one tensor of shape ``[n, 1, 28, 28]`` named after it, which becomes n per-row
arrays. Join keys may be sent as tensors too: the online features are looked up as on the v1 API. Tensors
travel as JSON ``data`` (flat or nested, row-major) or as binary data after the JSON header (Triton's binary
tensor data extension, :mod:`mloop.serving.http.binary`). The answer is one tensor per output, ``FP64`` of
shape ``[n]``; a multiclass model answers ``prediction`` of shape ``[n, c]`` (and, when asked by name, each
class's column as ``[n]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from mloop.errors import MalformedInput
from mloop.models.signature import ColumnSpec
from mloop.predictions import Answer
from mloop.serving.http.binary import NUMPY, encode_body

# Datatype -> the Python types its elements may have in JSON (bool is not an int here).
DATATYPES: dict[str, tuple[type, ...]] = {
    "BOOL": (bool,),
    **{name: (int,) for name in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")},
    **{name: (int, float) for name in ("FP16", "FP32", "FP64")},
    "BYTES": (str,),
}
SIGNATURE_DATATYPE = {"int32": "INT32", "int64": "INT64", "float32": "FP32", "float64": "FP64",
                      "bool": "BOOL", "string": "BYTES", "timestamp": "BYTES", "date": "BYTES"}  # fmt: skip
MATRIX = "prediction"  # a multiclass model's [n, c] output


def tensors_to_rows(
    inputs: Sequence[dict[str, Any]],
    columns: Sequence[str],
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    arrays: Sequence[np.ndarray | None] | None = None,
) -> list[dict[str, Any]]:
    """Rows from OIP input tensors. ``columns`` are the signature's inputs (for a ``[n, k]`` tensor),
    ``shapes`` the per-row shapes of its tensor columns, ``arrays`` the inputs' decoded binary data (None
    where an input has JSON ``data``)."""
    if not inputs:
        raise MalformedInput("An inference request needs at least one input tensor in 'inputs'.")
    shapes = shapes or {}
    named: dict[str, list[Any]] = {}
    rows: int | None = None
    for i, tensor in enumerate(inputs):
        name, shape, datatype = tensor["name"], list(tensor["shape"]), tensor["datatype"]
        _check_header(name, shape, datatype)
        array = arrays[i] if arrays is not None else None
        n = shape[0]
        if rows is not None and n != rows:
            raise MalformedInput(
                f"Input {name!r} has {n} rows but an earlier input has {rows}; send one batch."
            )
        rows = n
        if name in shapes:
            batch = array if array is not None else _json_array(name, shape, datatype, tensor.get("data"))
            named[name] = _per_row(name, batch, datatype, shapes[name])
            continue
        data = (
            _scalars(name, datatype, array)
            if array is not None
            else _json_data(name, shape, datatype, tensor)
        )
        width = math.prod(shape[1:]) if len(shape) > 1 else 1
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


def request_rows(
    inputs: Sequence[dict[str, Any]], specs: Sequence[ColumnSpec], arrays: Sequence[np.ndarray | None]
) -> list[dict[str, Any]]:
    """:func:`tensors_to_rows` for a model whose signature inputs are ``specs``."""
    shapes = {s.name: s.shape for s in specs if s.shape is not None}
    return tensors_to_rows(inputs, [s.name for s in specs], shapes, arrays)


def respond(
    endpoint: str,
    answer: Answer,
    names: Sequence[str],
    requested: Sequence[tuple[str, Mapping[str, Any]]] | None,
    binary_output: bool,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an infer response: JSON, or JSON and binary data when an output is asked
    for as binary (with ``Inference-Header-Content-Length``, as Triton answers)."""
    tensors, arrays = outputs(answer.predictions, names, requested, binary_output)
    reply = {"model_name": endpoint, "model_version": str(answer.version), "id": answer.request_id,
             "outputs": tensors}  # fmt: skip
    if all(a is None for a in arrays):
        return orjson.dumps(reply), {"content-type": "application/json"}
    content, length = encode_body(reply, arrays)
    return content, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(length),
    }


def outputs(
    predictions: list[Any],
    names: Sequence[str],
    requested: Sequence[tuple[str, Mapping[str, Any]]] | None,
    binary: bool = False,
) -> tuple[list[dict[str, Any]], list[np.ndarray | None]]:
    """The response tensors, and for each the array to send as binary data (None: JSON ``data``).

    ``names`` are the signature's outputs; ``requested`` the outputs the request names with their
    parameters (None: the default output); ``binary``: the request's ``binary_data_output``, the default of
    a requested output without ``binary_data``."""
    n = len(predictions)
    matrix = bool(predictions) and isinstance(predictions[0], list)
    width = len(predictions[0]) if matrix else 1
    main = MATRIX if matrix and len(names) != 1 else (names[0] if names else MATRIX)
    by_column = {c: j for j, c in enumerate(names)} if matrix and len(names) == width else {}
    wanted = list(requested) if requested else [(main, {})]
    tensors: list[dict[str, Any]] = []
    arrays: list[np.ndarray | None] = []
    for name, parameters in wanted:
        if parameters.get("classification"):
            raise MalformedInput(
                f"Output {name!r}: the classification extension is not supported; ask for the output "
                "without class_count and take the top classes from the probabilities."
            )
        if name == main:
            data, shape = predictions, [n, width] if matrix else [n]
        elif name in by_column:
            j = by_column[name]
            data, shape = [row[j] for row in predictions], [n]
        else:
            known = ", ".join(repr(x) for x in [main, *by_column])
            raise MalformedInput(f"This model has no output {name!r}; its outputs are {known}.")
        tensor, array = _output(name, data, shape, bool(parameters.get("binary_data", binary)))
        tensors.append(tensor)
        arrays.append(array)
    return tensors, arrays


def metadata(endpoint: str, info: dict[str, Any]) -> dict[str, Any]:
    """Model metadata in the protocol's shape, from :meth:`Inference.describe`."""
    signature = info.get("signature") or {"inputs": [], "outputs": []}
    columns = signature.get("outputs", [])
    if len(columns) > 1:  # a multiclass model: the matrix, and each class's column by name
        outs = [{"name": MATRIX, "datatype": "FP64", "shape": [-1, len(columns)]}]
        outs += [{"name": c["name"], "datatype": "FP64", "shape": [-1]} for c in columns]
    else:  # the answer is FP64 whatever the model's own output type, unless it answers text
        outs = [{**_tensor(c), "datatype": "BYTES" if c["dtype"] == "string" else "FP64"} for c in columns]
        outs = outs or [{"name": MATRIX, "datatype": "FP64", "shape": [-1]}]
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
        "shape": [-1, *(column.get("shape") or ())],
    }


def _output(name: str, data: list[Any], shape: list[int], binary: bool) -> tuple[dict[str, Any], Any]:
    try:
        array = np.asarray(data, dtype=np.float64).reshape(shape)  # a null (non-finite score) is NaN
        datatype = "FP64"
    except (TypeError, ValueError):  # a model answering labels
        array = np.asarray([str(v) for v in np.ravel(np.asarray(data, dtype=object))], dtype=object)
        datatype = "BYTES"
        data = array.tolist()
    if binary:
        return {"name": name, "datatype": datatype, "shape": shape}, array
    flat = [v for row in data for v in row] if len(shape) > 1 and datatype == "FP64" else data
    return {"name": name, "datatype": datatype, "shape": shape, "data": flat}, None


def _per_row(name: str, batch: np.ndarray, datatype: str, spec: tuple[int, ...]) -> list[np.ndarray]:
    """A ``[n, *spec]`` tensor as n arrays of ``spec``; the signature then checks their dtype and values."""
    expected = [-1, *spec]
    got = list(batch.shape)
    if datatype == "BYTES":
        raise MalformedInput(
            f"Input {name!r}: datatype BYTES, expected a numeric datatype for a tensor of shape {expected} "
            "(FP32, FP64, INT64, ...)."
        )
    if len(got) != len(expected) or any(w != -1 and g != w for g, w in zip(got[1:], spec, strict=True)):
        raise MalformedInput(
            f"Input {name!r}: expected shape {expected} (n rows of {list(spec)}), got {got}."
        )
    return list(batch)


def _json_array(name: str, shape: list[int], datatype: str, data: Any) -> np.ndarray:
    if data is None:
        raise MalformedInput(f"Input {name!r} has no data: send 'data', or its bytes with binary_data_size.")
    flat = _flatten(data)
    _check(name, shape, datatype, flat)
    if any(v is None for v in flat):
        raise MalformedInput(f"Input {name!r}: a tensor holds numbers only, not null.")
    if datatype == "BYTES":
        return np.asarray(flat, dtype=object).reshape(shape)
    try:
        return np.asarray(flat, dtype=np.dtype(NUMPY[datatype])).reshape(shape)
    except OverflowError:
        raise MalformedInput(f"Input {name!r}: a value is outside the range of {datatype}.") from None


def _json_data(name: str, shape: list[int], datatype: str, tensor: dict[str, Any]) -> list[Any]:
    if tensor.get("data") is None:
        raise MalformedInput(f"Input {name!r} has no data: send 'data', or its bytes with binary_data_size.")
    data = _flatten(tensor["data"])
    _check(name, shape, datatype, data)
    return data


def _scalars(name: str, datatype: str, array: np.ndarray) -> list[Any]:
    """Binary data of scalar columns as the Python values a JSON request would hold."""
    if datatype == "BYTES":
        try:
            return [item.decode("utf-8") for item in array.ravel()]
        except UnicodeDecodeError:
            raise MalformedInput(f"Input {name!r}: a BYTES element is not UTF-8 text.") from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise MalformedInput(f"Input {name!r}: NaN or infinity is not a finite number; send finite values.")
    values: list[Any] = array.ravel().tolist()
    return values


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if all(not isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for value in data:
        out.extend(_flatten(value))
    return out


def _check_header(name: str, shape: list[int], datatype: str) -> None:
    if datatype not in DATATYPES:
        raise MalformedInput(f"Input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}.")
    if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape) or not shape:
        raise MalformedInput(f"Input {name!r}: shape {shape} must be a list of non-negative whole numbers.")


def _check(name: str, shape: list[int], datatype: str, data: list[Any]) -> None:
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
