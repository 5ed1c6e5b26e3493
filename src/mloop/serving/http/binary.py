"""Triton's binary tensor data extension of the Open Inference Protocol: tensors as raw bytes after the JSON.

A request (or response) body is a JSON header followed by the raw data of some tensors, back to back in the
order the header lists them. The header's length is the HTTP header ``Inference-Header-Content-Length``; a
tensor sent this way carries ``"parameters": {"binary_data_size": N}`` instead of ``"data"``. The data is
little-endian, row-major, without padding; a BOOL element is one byte (0 or 1); a BYTES element is a 4-byte
little-endian length followed by that many bytes. ``tritonclient.http`` sends its inputs this way by default
and asks for its outputs this way (``binary_data`` on a requested output, or ``binary_data_output`` on the
request when it names none).

This module only moves bytes: it splits a body, decodes each binary input into a NumPy array of the declared
datatype and shape, and encodes arrays back. Every way a body can be inconsistent (a header longer than the
body, a buffer shorter or longer than its shape, bytes left over) is a :class:`~mloop.errors.MalformedInput`
naming the input, the expected and the got size.

>>> request = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32"}]}
>>> body, length = encode_body(request, [np.array([1.0, 2.0], np.float32)], key="inputs")
>>> header, buffer = split(body, str(length))
>>> decode(buffer, "FP32", [2], "x").tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from mloop.errors import MalformedInput

HEADER = "inference-header-content-length"  # the HTTP header giving the JSON part's length, in bytes

# The protocol's datatypes and the little-endian NumPy dtype of one element (BYTES: length-prefixed).
NUMPY: dict[str, str] = {
    "BOOL": "|b1",
    "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
    "BYTES": "O",
}  # fmt: skip

_LENGTH = struct.Struct("<I")


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary part of ``body``; without ``header_length`` all of it is JSON."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise MalformedInput(
            f"Inference-Header-Content-Length is {header_length!r}; it must be the JSON header's length in "
            "bytes, a whole number."
        ) from None
    if length < 0 or length > len(body):
        raise MalformedInput(
            f"Inference-Header-Content-Length says the JSON header is {length:,} bytes but the body has "
            f"{len(body):,}; send the header's length in bytes (or no such header for a JSON body)."
        )
    return body[:length], body[length:]


def take(inputs: Sequence[dict[str, Any]], buffer: bytes) -> list[np.ndarray | None]:
    """Each input's array decoded from ``buffer`` (None for an input sent as JSON ``data``), in order; the
    buffer must hold exactly the declared bytes."""
    arrays: list[np.ndarray | None] = []
    offset = 0
    for tensor in inputs:
        size = binary_size(tensor)
        if size is None:
            arrays.append(None)
            continue
        name = tensor["name"]
        if offset + size > len(buffer):
            raise MalformedInput(
                f"Input {name!r}: binary_data_size is {size:,} bytes but only {len(buffer) - offset:,} "
                "follow in the body; send the tensor's bytes after the JSON header."
            )
        arrays.append(decode(buffer[offset : offset + size], tensor["datatype"], tensor["shape"], name))
        offset += size
    if offset != len(buffer):
        raise MalformedInput(
            f"The body holds {len(buffer) - offset:,} bytes after the last binary input's data (the inputs "
            f"declare {offset:,} bytes in binary_data_size); send each input's bytes exactly once."
        )
    return arrays


def binary_size(tensor: dict[str, Any]) -> int | None:
    """The ``binary_data_size`` an input declares, or None when it is sent as JSON."""
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedInput(
            f"Input {tensor['name']!r}: binary_data_size {size!r} must be a whole number of bytes."
        )
    if tensor.get("data") is not None:
        raise MalformedInput(
            f"Input {tensor['name']!r} has both 'data' and binary_data_size; send the tensor one way."
        )
    return size


def decode(raw: bytes, datatype: str, shape: Sequence[int], name: str) -> np.ndarray:
    """The array of ``shape`` that ``raw`` holds as ``datatype`` (BYTES elements come back as ``bytes``)."""
    if datatype not in NUMPY:
        raise MalformedInput(f"Input {name!r}: datatype {datatype!r} is not one of {', '.join(NUMPY)}.")
    if not shape or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
        raise MalformedInput(
            f"Input {name!r}: shape {list(shape)} must be a list of non-negative whole numbers."
        )
    count = math.prod(shape)
    if datatype == "BYTES":
        items = _bytes_elements(raw, name)
        if len(items) != count:
            raise MalformedInput(
                f"Input {name!r}: shape {list(shape)} holds {count:,} BYTES elements but the binary data "
                f"has {len(items):,}."
            )
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape)
    dtype = np.dtype(NUMPY[datatype])
    want = count * dtype.itemsize
    if len(raw) != want:
        raise MalformedInput(
            f"Input {name!r}: shape {list(shape)} of {datatype} is {want:,} bytes but binary_data_size "
            f"is {len(raw):,}."
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if datatype == "BOOL" and array.size and np.frombuffer(raw, np.uint8).max() > 1:
        raise MalformedInput(f"Input {name!r}: a BOOL element is one byte, 0 or 1.")
    return array


def encode(array: np.ndarray, datatype: str) -> bytes:
    """The binary data of ``array`` as ``datatype``, row-major, little-endian."""
    if datatype == "BYTES":
        parts = []
        for item in np.asarray(array, dtype=object).ravel():
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts += [_LENGTH.pack(len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=np.dtype(NUMPY[datatype])).tobytes()


def encode_body(
    header: dict[str, Any], arrays: Sequence[np.ndarray | None], key: str = "outputs"
) -> tuple[bytes, int]:
    """A body of ``header`` whose tensors (``header[key]``) with an array in ``arrays`` (same order; None:
    keep that tensor's JSON ``data``) travel as binary data; and the header's length in bytes, for
    ``Inference-Header-Content-Length``."""
    buffers = []
    for tensor, array in zip(header[key], arrays, strict=True):
        if array is None:
            continue
        data = encode(array, tensor["datatype"])
        tensor.pop("data", None)
        tensor["parameters"] = {**(tensor.get("parameters") or {}), "binary_data_size": len(data)}
        buffers.append(data)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return text + b"".join(buffers), len(text)


def _bytes_elements(raw: bytes, name: str) -> list[bytes]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise MalformedInput(
                f"Input {name!r}: BYTES data ends inside an element's 4-byte length (at byte {offset:,})."
            )
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise MalformedInput(
                f"Input {name!r}: a BYTES element says {length:,} bytes but {len(raw) - offset:,} remain."
            )
        items.append(raw[offset : offset + length])
        offset += length
    return items
