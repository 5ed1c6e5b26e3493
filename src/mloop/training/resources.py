"""What a process uses, measured from the process itself: CPU seconds, resident memory now and at its
peak, and whether it holds a CUDA device. A training run records the difference over its life
(:meth:`mloop.training.run.Run.timing`); ``mloop serve`` samples the same figures every minute
(:mod:`mloop.serving.usage`).

Peak memory is the kernel's high-water mark of the process (``getrusage``'s ``ru_maxrss``): it catches a
spike between two samples that a sampling thread would miss, costs nothing while the run works, and a
run shorter than one heartbeat still gets a figure. It is the process's peak, not the run's alone: a run
that never goes above what the process held before it reports no growth (``rss_growth_bytes`` 0), while
``peak_rss_bytes`` still tells how much memory the machine had to give the process.
"""

from __future__ import annotations

import os
import resource
import sys


def cpu_seconds() -> float:
    """User and system CPU time of every thread of this process."""
    times = os.times()
    return times.user + times.system


def peak_rss_bytes() -> int:
    """The largest resident set this process has had, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux counts KiB, macOS bytes


def rss_bytes() -> int:
    """The resident set of this process now, in bytes (its peak where ``/proc`` is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def cuda_devices() -> int:
    """CUDA devices this process has initialised through torch (0 without torch, or before any tensor
    reached a GPU). torch is never imported here: a process that did not import it used no GPU through it."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_initialized():
            return 0
        # Visible is not used: count the devices that held memory, at least the one initialised.
        used = sum(1 for i in range(int(cuda.device_count())) if cuda.max_memory_allocated(i) > 0)
        return max(1, used)
    except Exception:  # a broken driver is no reason to fail the run that is ending
        return 0
