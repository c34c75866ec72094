"""Process-wide settings that keep a real-time ser-live process fast and predictable.

Both are process-level decisions, so only entry points call them (``ser-live``, the benchmark),
never library code.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_KEEP_BYTES = 64 << 20


def pin_blas_threads() -> None:
    """One BLAS thread: an utterance is a small matrix job, and thread pools only add wake-ups and
    contention with the audio threads. Effective only before numpy is first imported; a user's
    own setting wins."""
    for var in _BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")


def keep_freed_memory() -> bool:
    """Let glibc reuse freed feature buffers instead of returning them to the kernel.

    Each utterance allocates a few MB of short-lived numpy arrays (frames, spectra). Above glibc's
    default thresholds each one is a fresh ``mmap``, zero-filled page by page on first touch:
    about 300 page faults and 0.5 ms of kernel time per 3 s utterance, measured. Raising the
    mmap and trim thresholds to 64 MB keeps that memory in the heap (resident set grows by at
    most that much, in practice a few MB). A no-op returning False where glibc is absent.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, _HEAP_KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _HEAP_KEEP_BYTES))
