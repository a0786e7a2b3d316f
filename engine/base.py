"""One life cycle for every backend: open -> infer / submit + collect -> close.

A :class:`Runner` runs one compiled graph (the identity graph or the frame graph of ``io_spec``) on one
backend: PyTorch, ONNX Runtime, or TensorRT. The runtime never sees which. Shapes and dtypes are
checked once, when the runner opens (the graph's declared tensors against the model's ``GraphSpec``),
never per frame: the frame path is hot.

``submit(slot, feeds)`` / ``collect(slot)`` give double buffering: while slot 0 computes, the caller
stages the inputs of the next frame and submits them to slot 1. CPU backends implement it with one
worker thread (inference of slot k overlaps the caller's work on slot k+1); the TensorRT backend
overrides it with a CUDA stream and pinned buffers per slot.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Mapping

import numpy as np

from speech2vid.errors import EngineError
from speech2vid.model.io_spec import GraphSpec

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]

N_SLOTS = 2


def check_declared(
    spec: GraphSpec,
    declared_inputs: Mapping[str, tuple[tuple[int | str | None, ...], np.dtype]],
    declared_outputs: Mapping[str, tuple[tuple[int | str | None, ...], np.dtype]],
    source: str,
) -> None:
    """Refuse a graph whose tensors do not match the model spec, naming the first difference.

    ``declared_*`` map tensor name -> (shape with symbolic dims as str/None, dtype), as read from an
    ONNX file or a TensorRT engine. ``source`` names the file for the message.
    """
    for kind, want_list, got in (("input", spec.inputs, declared_inputs), ("output", spec.outputs, declared_outputs)):
        want_names = [t.name for t in want_list]
        if sorted(want_names) != sorted(got):
            raise EngineError(
                f"{source}: {spec.name} graph has {kind}s {sorted(got)}, expected {sorted(want_names)}"
                " (rebuild it with `speech2vid build`)"
            )
        for want in want_list:
            shape, dtype = got[want.name]
            if not want.matches(tuple(shape), dtype):
                dims = "x".join(str(d) for d in shape)
                raise EngineError(
                    f"{source}: {kind} '{want.name}' is {dims} {np.dtype(dtype).name}, expected {want.describe()}"
                    " (built for another model? rebuild it with `speech2vid build`)"
                )


class Runner(ABC):
    """One graph on one backend. Use as a context manager or call open()/close()."""

    backend: str = "?"

    def __init__(self, spec: GraphSpec):
        self.spec = spec
        self._opened = False
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[Outputs] | None] = [None] * N_SLOTS
        self._lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------------
    def open(self) -> "Runner":
        if not self._opened:
            self._open()
            self._opened = True
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending = [None] * N_SLOTS
        if self._opened:
            self._close()
            self._opened = False

    def __enter__(self) -> "Runner":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _open(self) -> None:
        """Load the graph and check it against ``self.spec`` (raise EngineError on a mismatch)."""

    def _close(self) -> None:
        """Release the backend's resources."""

    # -- inference --------------------------------------------------------------------------------
    @abstractmethod
    def infer(self, feeds: Feeds) -> Outputs:
        """Run synchronously. ``feeds`` maps every input name to a C-contiguous float32 array."""

    def submit(self, slot: int, feeds: Feeds) -> None:
        """Start inference in ``slot`` (0 or 1) and return at once; ``collect(slot)`` waits for it."""
        if self._pending[slot] is not None:
            raise RuntimeError(f"slot {slot} was submitted twice without collect()")
        if self._pool is None:
            # One worker: the backend runs one request at a time while the caller stages the next.
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.backend}-{self.spec.name}")
        self._pending[slot] = self._pool.submit(self.infer, feeds)

    def collect(self, slot: int) -> Outputs:
        future = self._pending[slot]
        if future is None:
            raise RuntimeError(f"collect({slot}) without a submit({slot})")
        self._pending[slot] = None
        return future.result()

    def describe(self) -> str:
        return f"{self.backend} {self.spec.name} graph"
