"""Triton's binary tensor data extension: the codec round-trips every datatype and shape, and every
inconsistent body is refused with the input's name and the sizes."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mloop.errors import MalformedInput
from mloop.serving.http import binary

NUMERIC = [d for d in binary.NUMPY if d != "BYTES"]
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)


@st.composite
def tensors(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    datatype = draw(st.sampled_from([*NUMERIC, "BYTES"]))
    shape = draw(shapes)
    if datatype == "BYTES":
        items = draw(
            st.lists(st.binary(max_size=12), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
        )
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return datatype, array.reshape(shape)
    return datatype, draw(hnp.arrays(np.dtype(binary.NUMPY[datatype]), shape))


@given(st.lists(tensors(), min_size=1, max_size=4), st.booleans())
def test_encode_then_decode_gives_the_same_arrays(
    given_tensors: list[tuple[str, np.ndarray]], mixed: bool
) -> None:
    inputs = [
        {"name": f"x{i}", "shape": list(a.shape), "datatype": d} for i, (d, a) in enumerate(given_tensors)
    ]
    # some inputs as JSON data: the binary ones keep their order in the body
    arrays = [None if mixed and i % 2 else a for i, (_, a) in enumerate(given_tensors)]
    for tensor, array in zip(inputs, arrays, strict=True):
        if array is None:
            tensor["data"] = [0] * int(np.prod(tensor["shape"]))
    body, length = binary.encode_body({"inputs": inputs}, arrays, key="inputs")
    header, buffer = binary.split(body, str(length))
    decoded = binary.take(json.loads(header)["inputs"], buffer)
    for (datatype, want), sent, got in zip(given_tensors, arrays, decoded, strict=True):
        if sent is None:
            assert got is None
            continue
        assert got is not None and got.shape == want.shape
        if datatype == "BYTES":
            assert got.tolist() == want.tolist()
        else:
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()  # NaNs included, bit for bit


def test_bytes_elements_are_length_prefixed_little_endian() -> None:
    assert (
        binary.encode(np.array(["ab", "c"], dtype=object), "BYTES") == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"
    )
    assert binary.encode(np.array([True, False]), "BOOL") == b"\x01\x00"
    assert binary.encode(np.array([1], np.int32), "INT32") == b"\x01\x00\x00\x00"


def _inputs(*sizes: int, datatype: str = "FP32", shape: tuple[int, ...] = (2,)) -> list[dict]:
    return [{"name": f"x{i}", "shape": list(shape), "datatype": datatype, "parameters": {"binary_data_size": s}}
            for i, s in enumerate(sizes)]  # fmt: skip


@pytest.mark.parametrize(
    ("inputs", "buffer", "needle"),
    [
        (_inputs(8), b"\0" * 4, "'x0': binary_data_size is 8 bytes but only 4 follow"),
        (_inputs(8), b"\0" * 12, "4 bytes after the last binary input's data"),
        (_inputs(4), b"\0" * 4, "'x0': shape [2] of FP32 is 8 bytes but binary_data_size is 4"),
        (_inputs(12, shape=(3,)), b"\0" * 12, None),
        (_inputs(2, datatype="BOOL"), b"\x01\x02", "BOOL element is one byte, 0 or 1"),
        (_inputs(5, datatype="BYTES", shape=(1,)), b"\x09\0\0\0a", "says 9 bytes but 1 remain"),
        (_inputs(2, datatype="BYTES", shape=(1,)), b"\x01\0", "ends inside an element's 4-byte length"),
        (
            _inputs(10, datatype="BYTES"),
            struct.pack("<I", 6) + b"abcdef",
            "holds 2 BYTES elements but the binary data has 1",
        ),
        (_inputs(-1), b"", "must be a whole number of bytes"),
        (_inputs(4, datatype="FP8"), b"\0" * 4, "'x0': datatype 'FP8' is not one of"),
        (_inputs(4, shape=(-1,)), b"\0" * 4, "shape [-1] must be a list of non-negative whole numbers"),
    ],
)
def test_inconsistent_buffers_name_the_input_and_the_sizes(
    inputs: list[dict], buffer: bytes, needle: str | None
) -> None:
    if needle is None:
        (array,) = binary.take(inputs, buffer)
        assert array is not None and array.shape == (3,)
        return
    with pytest.raises(MalformedInput, match=re.escape(needle)):
        binary.take(inputs, buffer)


def test_the_header_length_must_fit_the_body() -> None:
    assert binary.split(b"{}", None) == (b"{}", b"")
    assert binary.split(b"{}xyz", "2") == (b"{}", b"xyz")
    with pytest.raises(MalformedInput, match="says the JSON header is 99 bytes but the body has 5"):
        binary.split(b"{}xyz", "99")
    with pytest.raises(MalformedInput, match="must be the JSON header's length in bytes"):
        binary.split(b"{}", "two")


def test_an_input_sent_both_ways_is_refused() -> None:
    tensor = {
        "name": "x",
        "shape": [1],
        "datatype": "FP32",
        "data": [1.0],
        "parameters": {"binary_data_size": 4},
    }
    with pytest.raises(MalformedInput, match="both 'data' and binary_data_size"):
        binary.take([tensor], b"\0" * 4)
