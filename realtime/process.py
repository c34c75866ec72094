"""Process-wide settings of a real-time ser-live process: a process-level decision, so only entry
points call them (``ser-live``, the benchmark, the trainer's feature-extraction worker processes),
never library code."""

from __future__ import annotations

import ctypes
import os

_BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def pin_blas_threads() -> None:
    """One BLAS thread: an utterance is a small matrix job, and thread pools only add wake-ups and
    contention with the audio threads. Effective only before numpy is first imported; a user's
    own setting wins."""
    for var in _BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse rather than hand it back to the kernel, so that the arrays of a
    long utterance's features (a few MB) come from memory already mapped instead of fresh pages the kernel
    must fault in on every utterance (about 330 faults per 8 s utterance). The process keeps up to 64 MB of
    freed memory. False, and nothing changed, where the C library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 64 << 20))
