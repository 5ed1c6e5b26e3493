"""The explaining child: a process that computes sampled attributions for a server, at idle priority, so
that explaining a share of the traffic never takes CPU or the GIL from the answers.

Why a process: an explanation costs several predictions (TreeSHAP on 100 trees, about 1.7 ms of CPU a row
against 0.4 ms for a whole request), so explaining one answer in ten on a thread of the server cost a
quarter of its throughput on 2 cores, and a thread at low priority made it worse (it held the GIL while
starved: p99 4.7 ms to 36 ms). A child at ``SCHED_IDLE`` (``nice 19`` where refused) runs only on CPU time
nothing else wants: at light load every sample is explained at once, at saturation the child gets no CPU,
its queue fills and samples are dropped and counted (``status="dropped"``), and the answers keep their
throughput. Like the prediction log's compactor it starts once, lives as long as the server, and is
restarted if it dies.

The server sends each version's packed archive (:func:`~mloop.models.package.pack`), signature and
explanation background through the pipe, once (the child unpacks it into a private temporary folder to
load it, as the registry does for any load), then batches of model inputs; the child checks them against
the signature, explains them and answers with the rows' attributions or the error. Messages are
length-prefixed pickles between a process and the child it started, over its own pipes.

>>> child = ExplainerProcess()                                                     # doctest: +SKIP
>>> child.explain(("fraud", 3), loaded_model, frame)    # [{"base_value", "attributions", ...}, ...]
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import pandas as pd

from mloop.models.package import pack

log = logging.getLogger("mloop.serving")

CLOSE_WAIT = 2.0  # seconds the child gets at close before it is killed
_HEADER = struct.Struct("!I")

_CHILD = """import os, sys
if sys.argv[1] == "idle":
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
from mloop.serving.explainer import serve
serve(sys.stdin.buffer, sys.stdout.buffer)
"""


class ExplainerGone(RuntimeError):
    """The child exited or its pipe broke; the next call starts another."""


def send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class ExplainerProcess:
    """The explaining child of one server process; used from the sampler's thread only."""

    def __init__(self, priority: str = "idle") -> None:
        self.priority = priority  # "idle" (SCHED_IDLE) or "normal" (serving.explain_priority)
        self._process: subprocess.Popen[bytes] | None = None
        self._sent: set[tuple[str, int]] = set()  # versions the child holds

    def explain(self, key: tuple[str, int], model: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """The attributions of ``frame``'s rows by ``model`` (a :class:`~mloop.registry.versions.LoadedModel`,
        version ``key`` = (model name, version)), as :meth:`Attributions.to_dicts` rows plus ``output`` and
        ``method``; raises what the explainer raised (as a RuntimeError with its message), or
        :class:`ExplainerGone`."""
        process = self._ensure()
        assert process.stdin is not None and process.stdout is not None
        try:
            if key not in self._sent:
                send(
                    process.stdin,
                    ("model", key, _archive(model), model.signature, model.explanation_background),
                )
                self._sent.add(key)
            send(process.stdin, ("explain", key, frame))
            status, payload = receive(process.stdout)
        except (OSError, EOFError, pickle.PickleError, ValueError) as exc:
            self._stop()
            raise ExplainerGone(f"the explaining child is gone ({type(exc).__name__})") from None
        if status != "ok":
            raise RuntimeError(payload)
        rows: list[dict[str, Any]] = payload
        return rows

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._sent = set()
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, self.priority], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:  # starved at idle priority on a busy machine: nothing to keep
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        self._stop()


def explain_here(key: tuple[str, int], model: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """:meth:`ExplainerProcess.explain` in the calling process (tests, and a caller without a server)."""
    found = model.attributions(frame)
    return [{**row, "output": found.output, "method": found.method} for row in found.to_dicts()]


def _archive(model: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mloop-explain-") as tmp:
        target = Path(tmp) / "model.tar.gz"
        pack(model.model, model.flavour, target)
        return target.read_bytes()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: hold the versions it is sent, explain the batches, until its input ends."""
    import tarfile

    from mloop.explain import explain
    from mloop.models.package import unpack

    models: dict[tuple[str, int], tuple[str, Any, Any, pd.DataFrame | None]] = {}
    while True:
        try:
            message = receive(requests)
        except EOFError:
            return
        if message[0] == "model":
            _, key, archive, signature, background = message
            with tempfile.TemporaryDirectory(prefix="mloop-explain-") as tmp:
                path = Path(tmp) / "model.tar.gz"
                path.write_bytes(archive)
                try:
                    flavour, model = unpack(path, Path(tmp) / "model")
                except (tarfile.TarError, OSError, ValueError) as exc:  # answered at its first batch
                    models[key] = ("", exc, None, None)
                    continue
            models[key] = (flavour.name, model, signature, background)
            continue
        _, key, frame = message
        try:
            name, model, signature, background = models[key]
            if not name:
                raise model
            if signature is not None:
                frame = signature.validate(frame)
            found = explain(name, model, frame, background=background)
            rows = [{**row, "output": found.output, "method": found.method} for row in found.to_dicts()]
            send(answers, ("ok", rows))
        except Exception as exc:  # the server counts it; the child serves the next batch
            send(answers, ("error", f"{type(exc).__name__}: {exc}"))


__all__ = ["ExplainerGone", "ExplainerProcess", "explain_here", "serve"]
