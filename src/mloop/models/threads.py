"""How many threads one model call may use, for the runtimes that keep their own pools (PyTorch, ONNX
Runtime). Set once per process, before models are loaded: a server with several worker processes gives each
one thread, so the workers, not the threads of one call, share the cores.

>>> set_inference_threads(1)      # doctest: +SKIP
>>> project.models.load("digits", version=1)   # doctest: +SKIP

``None`` (the default) leaves PyTorch's own choice (one thread per core) and gives ONNX Runtime one thread
per core as well.
"""

from __future__ import annotations

from mloop.errors import ConfigError

_threads: int | None = None


def set_inference_threads(threads: int | None) -> None:
    """Threads per model call from now on (``None``: the runtime's default). Applies to models loaded later."""
    global _threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"Inference threads must be a whole number >= 1 (or None), got {threads!r}.")
    _threads = threads


def inference_threads() -> int | None:
    return _threads
