"""The one way the offline pipelines (``generate``, ``redub``) feed the engine: batches, two in flight.

A producer yields batches lazily: the items of a batch (whatever the pipeline needs to finish a frame),
their MFCC windows, and which of them need the network. :func:`pump` submits batch ``k`` to the engine
(its worker thread renders; ONNX Runtime and TensorRT release the GIL) and only then hands the caller
the faces of batch ``k - 1``; the caller's own work on them (blending, encoding) and the producer's work
on batch ``k + 1`` (decoding, tracking, reading audio) run while the engine renders. Items that do not
need the network (no face in the frame; silence, shown as one still face) come back with ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Iterable, Iterator, Protocol, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


class SlotEngine(Protocol):
    """What the pump needs of :class:`speech2vid.engine.talking_face.TalkingFaceEngine`."""

    n_slots: int

    def submit(self, slot: int, windows: np.ndarray) -> None: ...

    def collect_faces(self, slot: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Batch(Generic[T]):
    items: Sequence[T]
    windows: np.ndarray  # (len(items), 12, 35) MFCC windows
    render: np.ndarray  # (len(items),) bool: which items the network renders


@dataclass(frozen=True)
class _InFlight(Generic[T]):
    items: Sequence[T]
    slot: int
    wanted: np.ndarray  # bool: the items the engine renders in ``slot`` (none: nothing was submitted)


def pump(engine: SlotEngine, batches: Iterable[Batch[T]]) -> Iterator[tuple[T, np.ndarray | None]]:
    """``(item, face)`` for every item of ``batches``, in order; ``face`` is a rendered face (109, 109, C)
    float32 (``frames.rendered``: RGB in [0, 1], and the warp head's motion), or None for items with
    ``render`` False."""
    if engine.n_slots < 2:
        raise ValueError("the frame pump keeps two batches in flight: the engine needs two slots")
    in_flight: _InFlight[T] | None = None
    slot = 0
    for batch in batches:
        wanted = np.asarray(batch.render, dtype=bool)
        if len(wanted) != len(batch.items) or len(batch.windows) != len(batch.items):
            raise ValueError(
                f"a batch of {len(batch.items)} items came with {len(batch.windows)} windows and {len(wanted)} flags"
            )
        if wanted.any():
            engine.submit(slot, np.ascontiguousarray(batch.windows[wanted]))
        if in_flight is not None:
            yield from _collect(engine, in_flight)
        in_flight = _InFlight(batch.items, slot, wanted)
        slot = (slot + 1) % engine.n_slots
    if in_flight is not None:
        yield from _collect(engine, in_flight)


def _collect(engine: SlotEngine, done: _InFlight[T]) -> Iterator[tuple[T, np.ndarray | None]]:
    faces = iter(engine.collect_faces(done.slot) if done.wanted.any() else ())
    for item, wanted in zip(done.items, done.wanted):
        yield item, (next(faces) if wanted else None)
