"""Process-wide settings of a real-time ser-live process: a process-level decision, so only entry
points call them (``ser-live``, the benchmark), never library code."""

from __future__ import annotations

import os

_BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_blas_threads() -> None:
    """One BLAS thread: an utterance is a small matrix job, and thread pools only add wake-ups and
    contention with the audio threads. Effective only before numpy is first imported; a user's
    own setting wins."""
    for var in _BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")
