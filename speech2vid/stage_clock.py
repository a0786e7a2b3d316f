"""Where a pipeline's time goes: seconds per named stage, summed over a run (``bench --pipeline``).

Stages nest: time spent in an inner stage (the audio features read while the engine is asked for the next
batch) is counted there and not in the outer one, so the stages of one thread add up to its busy time.
Each thread keeps its own nesting; the totals are shared, so the encoder's and the decoder's threads
report into the same clock as the pipeline's own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class StageClock:
    """``with clock("engine"): ...`` adds the block's time to the stage "engine" (minus nested stages)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        stack: list[float] = self._local.__dict__.setdefault("nested", [])
        stack.append(0.0)  # time of the stages nested in this one
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            inner = stack.pop()
            self.add(stage, spent - inner)
            if stack:
                stack[-1] += spent

    def iterate(self, items: Iterable[T], stage: str) -> Iterator[T]:
        """``items``, with the time spent producing each one counted in ``stage``."""
        it = iter(items)
        while True:
            with self(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        """Milliseconds per frame of each stage."""
        with self._lock:
            return {k: 1e3 * v / max(frames, 1) for k, v in self.seconds.items()}
