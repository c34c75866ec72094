"""A preallocated single-producer / single-consumer ring buffer of float32 samples.

The producer is the audio callback (or the file replay thread): :meth:`write` copies the
block in, never blocks and never allocates a buffer; when the consumer has fallen so far
behind that the block does not fit, the block is dropped and counted. Indices are plain
Python ints published after the data is copied, which the GIL makes safe for one producer
and one consumer.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._data = np.zeros(capacity, np.float32)
        self._capacity = capacity
        self._written = 0  # total samples ever written (producer-owned)
        self._read = 0  # total samples ever read (consumer-owned)
        self._ready = threading.Event()
        self.dropped_blocks = 0
        self.dropped_samples = 0

    @property
    def available(self) -> int:
        """Samples waiting to be read."""
        return self._written - self._read

    @property
    def free(self) -> int:
        return self._capacity - (self._written - self._read)

    @property
    def total_written(self) -> int:
        return self._written

    def write(self, block: np.ndarray) -> bool:
        """Copy ``block`` in (1-D, or 2-D frames x channels: the first channel is used).

        Returns False, and counts the drop, if it does not fit.
        """
        if block.ndim == 2:
            block = block[:, 0]
        n = block.shape[0]
        if n > self.free:
            self.dropped_blocks += 1
            self.dropped_samples += n
            return False
        start = self._written % self._capacity
        first = min(n, self._capacity - start)
        self._data[start : start + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        self._written += n
        self._ready.set()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for samples to be available; True if there are some."""
        if self.available == 0:
            self._ready.wait(timeout)
            self._ready.clear()
        return self.available > 0

    def skip(self, n: int) -> int:
        """Discard up to ``n`` unread samples (consumer side); returns how many."""
        n = max(0, min(n, self.available))
        self._read += n
        return n

    def read(self, max_samples: int, timeout: float = 0.0) -> np.ndarray:
        """Return up to ``max_samples`` (a copy), waiting up to ``timeout`` s for any to arrive."""
        if timeout:
            self.wait(timeout)
        n = min(max_samples, self.available)
        if n <= 0:
            return np.zeros(0, np.float32)
        start = self._read % self._capacity
        first = min(n, self._capacity - start)
        if first == n:
            out = self._data[start : start + n].copy()
        else:
            out = np.concatenate([self._data[start:], self._data[: n - first]])
        self._read += n
        return out
