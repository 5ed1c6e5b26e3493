"""Bodies of Triton's binary tensor data extension built and read by hand (not with the codec under test)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def binary_request(
    tensors: list[tuple[str, str, np.ndarray]], outputs: list[dict[str, Any]] | None = None, **top: Any
) -> tuple[bytes, dict[str, str]]:
    """A body of the binary extension built by hand: JSON header, then each array's little-endian bytes."""
    inputs = [{"name": n, "shape": list(a.shape), "datatype": d, "parameters": {"binary_data_size": a.nbytes}}
              for n, d, a in tensors]  # fmt: skip
    header = json.dumps({"inputs": inputs, **({"outputs": outputs} if outputs else {}), **top}).encode()
    body = header + b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for _, _, a in tensors)
    return body, {"Inference-Header-Content-Length": str(len(header))}


def read_binary(response: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header and the outputs' arrays of a binary response."""
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    arrays, offset = {}, length
    for out in header["outputs"]:
        size = out["parameters"]["binary_data_size"]
        raw = response.content[offset : offset + size]
        arrays[out["name"]] = np.frombuffer(raw, "<f8").reshape(out["shape"])
        offset += size
    assert offset == len(response.content)
    return header, arrays
