"""Run a producer (decoding and face tracking) on a thread of its own, a bounded number of items ahead.

Why: ONNX Runtime (the face detector and mesh) and FFmpeg's decoder let go of the GIL, so ``redub`` can track
frame ``j + n`` while its own thread blends frame ``j``. One thread runs the whole producer, in order,
so stateful work (the tracker's smoothing filter) sees the frames exactly as it would without it.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Generic, Iterable, Iterator, TypeVar, cast

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often a blocked producer looks whether it was told to stop


class Prefetch(Generic[T]):
    """``with Prefetch(items, ahead) as it: for x in it: ...``: ``items`` is iterated on a worker thread.

    An exception raised by the producer is raised by the iteration, where the item would have come.
    Leaving the ``with`` block stops the producer and waits for its thread, so whatever the producer
    reads (a video file) may be closed right after.
    """

    def __init__(self, items: Iterable[T], ahead: int) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(max(1, ahead))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="speech2vid-prefetch", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again on the consumer's thread
            self._error = exc
        self._put(_DONE)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._iterate()

    def _iterate(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                if self._error is not None:
                    raise self._error
                return
            yield cast(T, item)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
