"""Process-wide settings of a real-time ser-live process: a process-level decision, so only entry
points call them (``ser-live``, the benchmark, the trainer's feature-extraction worker processes),
never library code."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
from collections.abc import Iterator

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


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null while the block runs, so that what native libraries print
    there (libmpg123's frame errors through libsndfile on 16 kHz MP3s, FFmpeg, ALSA) cannot break into the
    live view or the output; ``sys.stderr``, if it wrote to descriptor 2, keeps writing to the real stderr
    through a copy of it. Messages meant for the user are raised as exceptions and printed by ser-live."""
    sys.stderr.flush()
    try:
        uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # replaced by a test or an embedder
        uses_fd2 = False
    saved = os.dup(2)
    previous = sys.stderr
    if uses_fd2:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=previous.encoding, errors="backslashreplace")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        if uses_fd2:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = previous
        os.dup2(saved, 2)
        os.close(saved)
