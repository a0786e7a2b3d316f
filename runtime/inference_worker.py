"""The live loop's double buffer: one thread runs the engine while the next frame's window waits in one slot."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import numpy as np


class InferenceWorker:
    """One thread runs ``render``; one staging slot holds the next frame's window (the double buffer).

    ``render`` maps float32 ``(1, 12, 35)`` to ``(1, 109, 109, 3)``. Results arrive on :attr:`results` as
    ``(k, frame or None, exception or None, started, done)`` in submission order (monotonic seconds).
    """

    def __init__(self, render: Callable[[np.ndarray], np.ndarray]):
        self._render = render
        self._cv = threading.Condition()
        self._staged: tuple[int, np.ndarray] | None = None
        self._busy = False
        self._stopping = False
        self.results: queue.Queue[tuple[int, np.ndarray | None, BaseException | None, float, float]] = queue.Queue()
        self.max_in_flight = 0  # observed, for tests: never above 2
        self._thread = threading.Thread(target=self._run, name="speech2vid-inference", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        return int(self._busy) + int(self._staged is not None)

    def stage(self, k: int, window: np.ndarray, *, wait: bool = False) -> int | None:
        """Stage frame ``k``; returns the index of a stale staged frame it replaced (None if the slot was free).

        ``wait=True`` (sources faster than real time, the end-of-stream flush) waits for the slot instead.
        """
        with self._cv:
            if wait:
                self._cv.wait_for(lambda: self._staged is None)
            replaced = self._staged[0] if self._staged is not None else None
            self._staged = (k, window)
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cv.notify_all()
        return replaced

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._staged is not None or self._stopping)
                if self._staged is None:
                    return
                (k, window), self._staged = self._staged, None
                self._busy = True
                self._cv.notify_all()
            started = time.monotonic()
            try:
                frame = self._render(window[None])[0]
                self.results.put((k, frame, None, started, time.monotonic()))
            except BaseException as exc:  # handed to the loop, which raises it there
                self.results.put((k, None, exc, started, time.monotonic()))
            with self._cv:
                self._busy = False
                self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join()
