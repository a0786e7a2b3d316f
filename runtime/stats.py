"""Latency and resource accounting for the live loop, in constant memory (an hour-long run stays flat)."""

from __future__ import annotations

import os
from bisect import bisect_right
from collections import deque

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.features.pauses import level_db

BIN_MS = 0.25  # histogram resolution
MAX_MS = 5000.0  # latencies above this land in the last bin (and in ``max_ms``)


class LatencyHistogram:
    """Median / p99 of per-frame latencies from a fixed 0.25 ms histogram (20,000 bins, 160 kB)."""

    def __init__(self) -> None:
        self._bins = np.zeros(int(MAX_MS / BIN_MS) + 1, dtype=np.int64)
        self.count = 0
        self._sum = 0.0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self._bins[min(len(self._bins) - 1, max(0, int(ms / BIN_MS)))] += 1
        self.count += 1
        self._sum += ms
        self.max_ms = max(self.max_ms, ms)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in ms (bin centre), None when empty."""
        if self.count == 0:
            return None
        i = int(np.searchsorted(np.cumsum(self._bins), q * self.count, side="left"))
        return (i + 0.5) * BIN_MS

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "median": self.quantile(0.5),
            "p99": self.quantile(0.99),
            "mean": self._sum / self.count if self.count else None,
            "max": self.max_ms if self.count else None,
        }


class CaptureClock:
    """Maps a 16 kHz sample index to the monotonic time it was captured, from the sources' stamps.

    Only recent stamps are kept (``keep`` of them): latency is asked for samples a fraction of a second old.
    """

    def __init__(self, keep: int = 2048):
        self._index: deque[int] = deque(maxlen=keep)
        self._time: deque[float] = deque(maxlen=keep)

    def add(self, stamps: tuple[tuple[int, float], ...]) -> None:
        for i, t in stamps:
            if not self._index or i > self._index[-1]:
                self._index.append(i)
                self._time.append(t)

    def time_of(self, index: int) -> float | None:
        """Capture time of sample ``index``: the last stamp at or before it plus ``(index - stamp) / 16 kHz``."""
        if not self._index or index < self._index[0]:
            return None
        j = bisect_right(self._index, index) - 1  # deques index in O(n) at worst; stamps are few (~2k)
        return self._time[j] + (index - self._index[j]) / SAMPLE_RATE


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0.0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


frame_level_dbfs = level_db  # RMS level of float samples in dBFS (-120 for digital silence or no samples)
