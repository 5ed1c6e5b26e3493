"""Checkpoints of a torch model in training, and where they are kept: a run's artifact, or a folder.

A checkpoint is one ``torch.save`` file (read back with ``weights_only=True``: loading one runs no
code) holding everything the next epoch depends on, so that training resumed from it reaches the very
weights an uninterrupted run reaches:

- ``module``, ``optimizer``, ``criterion``: their state dicts;
- ``history``: skorch's per-epoch history (losses, scores), from which early stopping is replayed;
- ``rng``: the torch, NumPy and Python random states at the end of the epoch (the data loader draws its
  shuffling seed from torch's when the next epoch starts);
- ``epoch``, ``complete`` (training ended: a later fit starts over rather than resuming it), ``format``.

Metric points of an epoch are flushed to the run before its checkpoint is written, so a crash never
leaves a checkpoint ahead of the metrics (at worst an epoch's points are logged twice, with the same
values, by the resumed run).
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mloop.errors import MloopError, NotFound
from mloop.training.run import Run

FORMAT = 1
ARTIFACT = "checkpoints/last.pt"
FILE = "last.pt"


class CheckpointStore(Protocol):
    """Where the last checkpoint of a training is kept."""

    def save(self, data: bytes) -> None: ...

    def load(self) -> bytes | None:
        """The last checkpoint saved, or None when there is none."""


class RunCheckpoints:
    """The checkpoint as the run's artifact ``checkpoints/last.pt`` (each save points the name at the
    new content)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def save(self, data: bytes) -> None:
        self.run.log_artifact(data, ARTIFACT)

    def load(self) -> bytes | None:
        try:
            return self.run.artifact(ARTIFACT)
        except NotFound:
            return None

    def __repr__(self) -> str:
        return f"run {self.run.id} artifact {ARTIFACT!r}"


class FolderCheckpoints:
    """The checkpoint as the file ``last.pt`` in a folder, replaced atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / FILE

    def save(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".pt.partial")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)

    def load(self) -> bytes | None:
        return self.path.read_bytes() if self.path.is_file() else None

    def __repr__(self) -> str:
        return str(self.path)


def capture(net: Any, *, complete: bool) -> bytes:
    """The checkpoint of skorch net ``net`` as it stands, as bytes."""
    numpy_state: Any = np.random.get_state()  # the legacy tuple: name, keys, pos, has_gauss, gauss
    python_state = random.getstate()
    state = {
        "format": FORMAT,
        "epoch": len(net.history),
        "complete": complete,
        "module": net.module_.state_dict(),
        "optimizer": net.optimizer_.state_dict(),
        "criterion": net.criterion_.state_dict(),
        "history": _plain(net.history.to_list()),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)),
                      *(_plain(v) for v in numpy_state[2:])],
            "python": [python_state[0], list(python_state[1]), python_state[2]],
        },
    }  # fmt: skip
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def read(data: bytes, where: object) -> dict[str, Any]:
    """A checkpoint's contents, checked to be one this version writes."""
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise MloopError(
            f"The checkpoint in {where} cannot be read ({type(exc).__name__}: {exc}). Pass resume=False "
            "to train from the start."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MloopError(
            f"The checkpoint in {where} is not one mloop {FORMAT} writes. Pass resume=False to train "
            "from the start."
        )
    return state


def restore(net: Any, state: dict[str, Any], where: object) -> None:
    """Put an initialized skorch net back in the state of a checkpoint: weights, optimizer, history and
    random states."""
    from skorch.history import History  # type: ignore[import-untyped]

    try:
        net.module_.load_state_dict(state["module"])
        net.optimizer_.load_state_dict(state["optimizer"])
        net.criterion_.load_state_dict(state["criterion"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise MloopError(
            f"The checkpoint in {where} does not fit this model ({str(exc).splitlines()[0]}); it was "
            "saved by another module or optimizer. Pass resume=False to train from the start, or use a "
            "new run."
        ) from exc
    net.history = History(state["history"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    name, keys, *rest = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars made Python numbers (a ``weights_only`` load refuses NumPy types)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["ARTIFACT", "CheckpointStore", "FolderCheckpoints", "RunCheckpoints", "capture", "read", "restore"]
