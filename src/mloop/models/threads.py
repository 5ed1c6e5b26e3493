"""How many threads one model call may use, for the runtimes that keep their own pools (PyTorch, ONNX
Runtime): one by default. Set it before models are loaded; it applies to models loaded afterwards (PyTorch's
count is process-wide, ``torch.set_num_threads``; ONNX Runtime's is per session, ``intra_op_num_threads``).

Why one: a server answers many small requests at once, from several worker processes, so the cores are
shared between calls rather than within one. Measured on the 2-core development VM (other processes busy,
2026-12-05), a 2-conv CNN on 8x8 images, per call:

==========  ============  ============  ===========  ==========
batch       torch 1 thr   torch 2 thr   ORT 1 thr    ORT 2 thr
==========  ============  ============  ===========  ==========
1           155 us        40,640 us     22 us        63 us
64          1,641 us      28,613 us     805 us       1,832 us
==========  ============  ============  ===========  ==========

(a second thread spins waiting for a core another process holds). On an idle many-core machine a large model
with large batches gains from more: ``set_inference_threads(8)``, or ``None`` for the runtime's own default
(one per core).

>>> set_inference_threads(4)      # doctest: +SKIP
>>> project.models.load("digits", version=1)   # doctest: +SKIP
"""

from __future__ import annotations

from mloop.errors import ConfigError

DEFAULT = 1
_threads: int | None = DEFAULT


def set_inference_threads(threads: int | None) -> None:
    """Threads per model call from now on (``None``: the runtime's default). Applies to models loaded later."""
    global _threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"Inference threads must be a whole number >= 1 (or None), got {threads!r}.")
    _threads = threads


def inference_threads() -> int | None:
    return _threads
