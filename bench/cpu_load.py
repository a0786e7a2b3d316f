"""CPU-bound processes beside a benchmark (``bench --live --load N``): what a kiosk's browser or speech
recogniser does to the live loop's latency. Each process spins on integer arithmetic until stopped; they
are started before the measured run and stopped, and waited for, after it."""

from __future__ import annotations

import multiprocessing
from types import TracebackType

STOP_TIMEOUT_S = 5.0


def _spin(stop: "multiprocessing.synchronize.Event") -> None:  # type: ignore[name-defined]
    x = 1
    while not stop.is_set():
        for _ in range(100_000):  # about 5 ms of work between looks at the flag
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648


class CpuLoad:
    """``with CpuLoad(n):`` n busy processes for the block's duration (0: none)."""

    def __init__(self, processes: int) -> None:
        if processes < 0:
            raise ValueError(f"processes must be >= 0, got {processes}")
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self.processes = [
            ctx.Process(target=_spin, args=(self._stop,), name=f"speech2vid-load-{i}", daemon=True)
            for i in range(processes)
        ]

    def __enter__(self) -> CpuLoad:
        for p in self.processes:
            p.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        for p in self.processes:
            p.join(STOP_TIMEOUT_S)
            if p.is_alive():
                p.kill()
                p.join()
