"""TensorRT backend: a serialised engine from the cache, behind the Runner life cycle.

``open()`` first checks the engine's sidecar manifest (``engine.cache.check_engine``: missing,
corrupt, foreign GPU/TensorRT, stale ONNX are refused with the ``speech2vid build`` command that fixes
it), and only then hands the bytes to ``Runtime.deserialize_cuda_engine``. It then allocates, once, for
the largest batch of the engine's profile: two slots, each with its own CUDA stream, execution context,
pinned host buffers and device buffers (``engine.cuda.SlotBuffers``); tensor addresses are bound once.

``submit(slot, feeds)`` stages the inputs in the slot's pinned buffers and enqueues, on the slot's
stream, the host-to-device copies, ``execute_async_v3`` and the device-to-host copies, then records the
slot's event and returns: the copies of frame k+1 (slot 1) overlap the inference of frame k (slot 0).
``collect(slot)`` waits for that event only. ``tensorrt`` is imported here, when a runner opens.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from speech2vid.engine.base import N_SLOTS, Feeds, Outputs, Runner, check_declared
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import GraphSpec

if TYPE_CHECKING:
    import tensorrt as trt

    from speech2vid.engine.cache import EngineFile
    from speech2vid.engine.cuda import SlotBuffers

log = logging.getLogger(__name__)


def installed_tensorrt_version() -> str | None:
    """The version of a real TensorRT install, or None.

    ``tensorrt-stubs`` (installed for mypy) leaves a ``tensorrt/`` folder of ``.pyi`` files that Python
    imports as an empty namespace package, so a successful ``import tensorrt`` proves nothing: the real
    module has ``__version__`` and ``Builder``.
    """
    try:
        import tensorrt as trt
    except ImportError:
        return None
    version = getattr(trt, "__version__", None)
    return str(version) if version is not None and hasattr(trt, "Builder") else None


def require_tensorrt() -> str:
    """The installed TensorRT version; EngineError (one line, what to do) when it is not installed."""
    version = installed_tensorrt_version()
    if version is None:
        raise EngineError(
            "TensorRT is not installed: install it on a machine with an NVIDIA GPU (pip install tensorrt, or"
            " JetPack on Jetson), or use --backend onnxruntime"
        )
    return version


def make_logger() -> "trt.ILogger":
    """TensorRT's messages into our log: errors and warnings as such, INFO and VERBOSE at debug level."""
    import tensorrt as trt

    levels = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.ERROR,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
    }

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            log.log(levels.get(severity, logging.DEBUG), "TensorRT: %s", msg)

    return Logger()


def gpu_environment() -> dict[str, Any]:
    """TensorRT version, GPU name and compute capability: what a TensorRT engine is tied to."""
    from speech2vid.engine import cuda

    version = require_tensorrt()
    props = cuda.device_properties(0)
    return {"tensorrt": version, "gpu": props.name, "compute_capability": props.compute_capability}


Declared = dict[str, tuple[tuple[int, ...], np.dtype]]


def numpy_dtype(dtype: "trt.DataType") -> np.dtype:
    import tensorrt as trt

    table = {
        trt.DataType.FLOAT: np.float32,
        trt.DataType.HALF: np.float16,
        trt.DataType.INT8: np.int8,
        trt.DataType.INT32: np.int32,
        trt.DataType.INT64: np.int64,
        trt.DataType.BOOL: np.bool_,
        trt.DataType.UINT8: np.uint8,
    }
    if dtype not in table:
        raise EngineError(f"engine tensor type {dtype} has no numpy equivalent here (expected float32 IO)")
    return np.dtype(table[dtype])


def dims(d: "trt.Dims") -> tuple[int, ...]:
    return tuple(int(d[i]) for i in range(len(d)))


def engine_io(engine: "trt.ICudaEngine") -> tuple[Declared, Declared]:
    """(inputs, outputs) as name -> (shape with -1 for dynamic dims, numpy dtype)."""
    import tensorrt as trt

    inputs: Declared = {}
    outputs: Declared = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        entry = (dims(engine.get_tensor_shape(name)), numpy_dtype(engine.get_tensor_dtype(name)))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs)[name] = entry
    return inputs, outputs


class TensorRTRunner(Runner):
    """One engine file; ``precheck`` (the manifest check) runs before anything is deserialised."""

    backend = "tensorrt"

    def __init__(
        self, entry: "EngineFile", spec: GraphSpec, *, precheck: Callable[[], object], max_batch: int, device: int = 0
    ):
        super().__init__(spec)
        self.entry = entry
        self.precision = entry.precision
        self.device_name = "cuda"
        self._precheck = precheck
        self._max_batch = max_batch
        self._device = device
        self._engine: Any = None
        self._runtime: Any = None
        self._logger: Any = None
        self._contexts: list[Any] = []
        self._buffers: SlotBuffers | None = None
        self._input_names: tuple[str, ...] = tuple(t.name for t in spec.inputs)
        self._output_names: tuple[str, ...] = tuple(t.name for t in spec.outputs)
        self._busy = [False] * N_SLOTS

    def describe(self) -> str:
        return f"tensorrt {self.spec.name} graph ({self.precision}, {self.entry.path.name})"

    def _open(self) -> None:
        from speech2vid.engine.cuda import SlotBuffers

        t0 = time.perf_counter()
        require_tensorrt()
        import tensorrt as trt

        self._precheck()  # refuse missing / corrupt / foreign / stale engines before deserialising
        self._logger = make_logger()
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(self.entry.path.read_bytes())
        if engine is None:
            raise EngineError(
                f"TensorRT could not deserialise {self.entry.path} (see its messages above): rebuild it with "
                "`speech2vid build`"
            )
        inputs, outputs = engine_io(engine)
        check_declared(self.spec, inputs, outputs, str(self.entry.path))
        max_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for name, (shape, dtype) in {**inputs, **outputs}.items():
            max_shapes[name] = ((self._max_batch, *shape[1:]), dtype)
        self._engine = engine
        try:
            self._buffers = SlotBuffers(max_shapes, N_SLOTS, self._device)
            for slot in self._buffers.slots:
                context = engine.create_execution_context()
                if context is None:
                    raise EngineError(
                        f"TensorRT could not create an execution context for {self.entry.path} (out of GPU memory?)"
                    )
                for name, buf in slot.device.items():
                    if not context.set_tensor_address(name, buf.ptr):
                        raise EngineError(
                            f"IExecutionContext.set_tensor_address failed for '{name}' of {self.entry.path}"
                        )
                self._contexts.append(context)
        except BaseException:
            self._close()
            raise
        self._busy = [False] * N_SLOTS
        log.info(
            "opened %s: %d slots, batch <= %d, in %.2f s",
            self.describe(),
            N_SLOTS,
            self._max_batch,
            time.perf_counter() - t0,
        )

    def _close(self) -> None:
        if self._buffers is not None:
            self._buffers.close()
            self._buffers = None
        self._contexts = []
        self._engine = None
        self._runtime = None

    # -- inference --------------------------------------------------------------------------------
    def submit(self, slot: int, feeds: Feeds) -> None:
        buffers = self._buffers
        if buffers is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        if self._busy[slot]:
            raise RuntimeError(f"slot {slot} was submitted twice without collect()")
        context = self._contexts[slot]
        for name in self._input_names:
            array = feeds[name]
            if array.shape[0] > self._max_batch:
                raise EngineError(
                    f"{self.describe()}: batch {array.shape[0]} is above the engine's maximum {self._max_batch} "
                    "(engine.batch.max)"
                )
            if not context.set_input_shape(name, tuple(array.shape)):
                raise EngineError(
                    f"{self.describe()}: input '{name}' of shape {array.shape} is outside the engine's profile"
                )
            buffers.upload(slot, name, array)
        stream = buffers.slots[slot].stream
        if not context.execute_async_v3(stream.handle):
            raise EngineError(
                f"IExecutionContext.execute_async_v3 failed for {self.describe()} (see the TensorRT messages above)"
            )
        for name in self._output_names:
            buffers.download(slot, name, dims(context.get_tensor_shape(name)))
        buffers.slots[slot].done.record(stream)
        self._busy[slot] = True

    def collect(self, slot: int) -> Outputs:
        buffers = self._buffers
        if buffers is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        if not self._busy[slot]:
            raise RuntimeError(f"collect({slot}) without a submit({slot})")
        self._busy[slot] = False
        return buffers.outputs(slot)

    def infer(self, feeds: Feeds) -> Outputs:
        slot = 0 if not self._busy[0] else 1
        self.submit(slot, feeds)
        return self.collect(slot)
