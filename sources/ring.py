"""Single-producer single-consumer ring buffers for the audio callback.

The producer is PortAudio's callback thread, which must never block, allocate a buffer or log: it only
copies into preallocated arrays and then publishes a new write count. The consumer (the live loop)
reads behind it. No lock is needed because each counter has exactly one writer, a Python int store is
atomic under the interpreter lock, and the producer publishes its count only after the data is in
place. When the consumer falls more than the capacity behind, the producer drops the *incoming* block
(it never overwrites unread samples) and counts it in ``overflows``.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    """float32 mono samples; ``write`` from the callback, ``read`` from the consumer."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1 sample, got {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.float32)
        self.written = 0  # samples ever published (producer-owned)
        self.read_pos = 0  # samples ever consumed (consumer-owned)
        self.overflows = 0  # blocks dropped because the consumer was a whole ring behind (producer-owned)

    def write(self, block: np.ndarray) -> bool:
        """Copy ``(n,)`` samples in (callback thread). False, counting an overflow, if they do not fit."""
        n = block.shape[0]
        w = self.written
        if n > self.capacity - (w - self.read_pos):
            self.overflows += 1
            return False
        start = w % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self.written = w + n  # publish last: the consumer never sees samples that are not there yet
        return True

    @property
    def available(self) -> int:
        return self.written - self.read_pos

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Up to ``max_samples`` (default all) unread samples as a new float32 ``(n,)`` array."""
        n = self.available if max_samples is None else min(max_samples, self.available)
        start = self.read_pos % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, dtype=np.float32)
        out[:first] = self._buf[start : start + first]
        out[first:] = self._buf[: n - first]
        self.read_pos += n
        return out


class StampRing:
    """When each callback block was captured: (first sample index, monotonic seconds) pairs.

    ``index`` is the :class:`SampleRing` write count before the block, so it counts delivered samples
    only; a dropped block leaves a gap in time that the next stamp carries.
    """

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._index = np.zeros(capacity, dtype=np.int64)
        self._time = np.zeros(capacity, dtype=np.float64)
        self.written = 0
        self.read_pos = 0

    def write(self, index: int, t: float) -> None:
        """Callback thread. Old stamps are overwritten when unread: only the newest matter."""
        slot = self.written % self.capacity
        self._index[slot] = index
        self._time[slot] = t
        self.written += 1

    def read(self) -> list[tuple[int, float]]:
        """Unread stamps, oldest first (at most ``capacity``)."""
        first = max(self.read_pos, self.written - self.capacity)
        end = self.written
        out = [(int(self._index[i % self.capacity]), float(self._time[i % self.capacity])) for i in range(first, end)]
        self.read_pos = end
        return out
