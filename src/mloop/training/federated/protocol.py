"""The messages between the aggregator and its clients, and the check every message to the aggregator
passes.

A message is bytes: an ``.npz`` archive (read with ``allow_pickle=False``, so it can hold nothing but
plain arrays) of a JSON header and named arrays. The aggregator decodes what a client sends with
:func:`receive`, which refuses anything its schema does not name:

- ``hello``: who the client is (name, process id), its row counts, the fingerprint of its rows, the
  label values it holds and its feature names; no arrays.
- ``update``: after local training, the weights, one array per ``state_dict`` entry of the model with
  exactly its name, shape and dtype, plus scalars (rows trained on, mean loss, ε spent, and the
  evaluation of the weights it received on its validation and test splits).
- ``evaluation``: the evaluation alone (a client not picked for a round, and the final model).
- ``error``: a client that failed says so in at most 500 characters.

Rows therefore cannot leave a client through this channel: no message kind takes an array other than
a named model weight of the model's own shape.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop.errors import SchemaError

HEADER = "__header__"
MAX_TEXT = 500
MAX_CLASSES = 1000
SPLITS = ("valid", "test")
EVAL_KEYS = {"rows", "loss_sum", "correct"}
FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"kind": str, "client": str, "pid": int, "rows": dict, "fingerprint": str, "classes": list,
              "features": list},
    "update": {"kind": str, "client": str, "round": int, "rows": int, "loss": float, "epsilon": (float, type(None)),
               "evaluation": dict},
    "evaluation": {"kind": str, "client": str, "round": int, "evaluation": dict},
    "error": {"kind": str, "client": str, "message": str},
}  # fmt: skip


class ProtocolError(SchemaError):
    """A message that is not one the protocol allows: the aggregator refuses it and ends the training."""


@dataclass(frozen=True)
class Message:
    """A decoded message: its header (kind and scalars) and its arrays (weights only, in an update)."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.header["kind"])


def encode(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """A message as bytes (both directions use it)."""
    buffer = io.BytesIO()
    named = dict(arrays or {})
    if HEADER in named:
        raise ProtocolError(f"An array cannot be named {HEADER!r}: the name is the message's header.")
    text = np.frombuffer(json.dumps(dict(header), allow_nan=False).encode(), dtype=np.uint8)
    np.savez(buffer, **{HEADER: text}, **named)  # type: ignore[arg-type]  # numpy stubs: **arrays
    return buffer.getvalue()


def decode(data: bytes) -> Message:
    """The message in ``data``, without checking it against a schema (what a client reads)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        header = json.loads(arrays.pop(HEADER).tobytes().decode())
    except Exception as exc:  # anything unreadable is refused, whatever the reason
        raise ProtocolError(f"A message is not a protocol message ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise ProtocolError("A message's header must be an object with a 'kind'.")
    return Message(header, arrays)


def receive(data: bytes, weights: Mapping[str, tuple[tuple[int, ...], str]]) -> Message:
    """``data`` decoded and checked as a message to the aggregator: its kind one of the schema's, its
    header exactly the kind's fields with their types, and its arrays (in an update only) exactly the
    model's ``weights`` (name → (shape, dtype)). Anything else raises :class:`ProtocolError`."""
    message = decode(data)
    schema = FIELDS.get(message.kind)
    if schema is None:
        raise ProtocolError(
            f"Message kind {message.kind!r} is not one a client may send ({', '.join(FIELDS)})."
        )
    header = message.header
    if set(header) != set(schema):
        raise ProtocolError(
            f"A {message.kind!r} message has fields {sorted(header)}; the protocol allows exactly {sorted(schema)}."
        )
    for name, kind in schema.items():
        value = header[name]
        wanted = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
        if float in wanted and isinstance(value, int) and not isinstance(value, bool):
            ok = True  # JSON writes 2.0 as 2
        if not ok:
            raise ProtocolError(
                f"Field {name!r} of a {message.kind!r} message must be {kind}, not {value!r}."
            )
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ProtocolError(
                f"Field {name!r} of a {message.kind!r} message is over {MAX_TEXT} characters."
            )
    _check_scalars(message)
    if message.kind == "update":
        _check_weights(message.arrays, weights)
    elif message.arrays:
        raise ProtocolError(
            f"A {message.kind!r} message carries arrays {sorted(message.arrays)}; only an update carries "
            "arrays, and only the model's weights."
        )
    return message


def _check_scalars(message: Message) -> None:
    header = message.header
    if message.kind == "hello":
        if set(header["rows"]) != {"train", *SPLITS} or not all(_count(v) for v in header["rows"].values()):
            raise ProtocolError("A hello's rows must be {'train': n, 'valid': n, 'test': n} of counts.")
        for name in ("classes", "features"):
            items = header[name]
            if len(items) > MAX_CLASSES or not all(_scalar(v) for v in items):
                raise ProtocolError(f"A hello's {name} must be at most {MAX_CLASSES} short scalars.")
    if "evaluation" in header:
        evaluation = header["evaluation"]
        if set(evaluation) != set(SPLITS) or not all(
            isinstance(v, dict) and set(v) == EVAL_KEYS and all(_number(n) for n in v.values())
            for v in evaluation.values()
        ):
            raise ProtocolError(
                f"An evaluation must be {{split: {{{', '.join(sorted(EVAL_KEYS))}}}}} of numbers for "
                f"splits {', '.join(SPLITS)}."
            )


def _check_weights(
    arrays: Mapping[str, np.ndarray], weights: Mapping[str, tuple[tuple[int, ...], str]]
) -> None:
    if set(arrays) != set(weights):
        extra, missing = sorted(set(arrays) - set(weights)), sorted(set(weights) - set(arrays))
        raise ProtocolError(
            f"An update must carry exactly the model's weights: unexpected arrays {extra}, missing {missing}."
        )
    for name, (shape, dtype) in weights.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(shape) or str(array.dtype) != dtype:
            raise ProtocolError(
                f"Weight {name!r} must be {dtype} of shape {tuple(shape)}, not {array.dtype} {tuple(array.shape)}."
            )
        if not np.isfinite(array).all():
            raise ProtocolError(f"Weight {name!r} holds NaN or infinity: the client's training diverged.")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any) -> bool:
    return (_number(value) or isinstance(value, str | bool)) and len(str(value)) <= 100
