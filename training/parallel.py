"""Jobs over worker processes with a progress bar: what ``prepare``, ``synth --registered`` and the lip
tracks of ``--real-motion`` share."""

from __future__ import annotations

import multiprocessing
from typing import Callable, Iterable, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def _one_thread_each() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def run_jobs(
    fn: Callable[[J], R], jobs: Iterable[J], workers: int, desc: str, unit: str, progress: bool, done: int = 0
) -> list[R]:
    """``fn`` over ``jobs`` in this process (``workers`` <= 1) or in that many fresh ("spawn": no inherited
    OpenCV/ONNX Runtime/torch thread state) processes; the results in the order the jobs finish. A tqdm bar
    when ``progress``, starting at ``done`` of ``done + len(jobs)`` (a resumed run)."""
    jobs = list(jobs)
    bar = None
    if progress and (jobs or done):
        from tqdm import tqdm

        bar = tqdm(total=done + len(jobs), initial=done, unit=unit, desc=desc, dynamic_ncols=True)
    results: list[R] = []
    if workers <= 1:
        for job in jobs:
            results.append(fn(job))
            if bar:
                bar.update()
    elif jobs:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread_each) as pool:
            for result in pool.imap_unordered(fn, jobs):
                results.append(result)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    return results
