"""The CUDA layer of the GPU backends: device queries, streams, events, pinned host and device buffers.

Two bindings are supported, whichever is installed (``cuda-python`` preferred):

* ``cuda-python`` (``cuda.bindings.runtime``; ``cuda.cudart`` in releases before 12.6): NVIDIA's
  maintained bindings, prebuilt for x86-64 and Jetson (aarch64); the CUDA runtime API;
* ``pycuda`` (named in the product's design card): the driver API on the device's primary context,
  which is the context the CUDA runtime (TensorRT, PyTorch) uses too, so pointers are shared.

Every call's status is checked: a failure raises :class:`CudaError` naming the call and CUDA's error
name (``cudaMallocHost failed: cudaErrorMemoryAllocation (...)``), never a silent bad pointer.

:class:`SlotBuffers` is the double-buffering the TensorRT runner uses: per slot, one stream, pinned host
and device buffers for every tensor (allocated once, for the largest batch), and an event that says
when the slot's results are back on the host. ``copy in -> run -> copy out`` are enqueued on the slot's
stream, so the host-to-device copy of frame k+1 (slot 1) overlaps the inference of frame k (slot 0).
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from speech2vid.errors import EngineError

log = logging.getLogger(__name__)


class CudaError(EngineError):
    """A CUDA call failed; the message names the call."""


@dataclass(frozen=True)
class DeviceProperties:
    name: str
    compute_capability: str  # "8.7" (Jetson Orin), "8.9", "9.0", ...
    total_memory: int  # bytes


class Binding(Protocol):
    """What the GPU backends need from CUDA: one implementation per Python binding."""

    name: str

    def device_count(self) -> int: ...
    def device_properties(self, device: int) -> DeviceProperties: ...
    def set_device(self, device: int) -> None: ...
    def stream_create(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def stream_synchronize(self, stream: Any) -> None: ...
    def stream_destroy(self, stream: Any) -> None: ...
    def event_create(self) -> Any: ...
    def event_record(self, event: Any, stream: Any) -> None: ...
    def event_synchronize(self, event: Any) -> None: ...
    def event_destroy(self, event: Any) -> None: ...
    def host_alloc(self, nbytes: int) -> tuple[Any, np.ndarray]: ...
    def host_free(self, handle: Any) -> None: ...
    def device_alloc(self, nbytes: int) -> tuple[Any, int]: ...
    def device_free(self, handle: Any) -> None: ...
    def copy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...
    def copy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...


def _byte_view(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of ``nbytes`` of host memory at ``ptr`` (the pinned buffer, no copy)."""
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


class CudaPython:
    """``cuda-python``: the CUDA runtime API. Each call returns ``(status, *values)``."""

    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime
        except ImportError:
            from cuda import cudart as runtime  # cuda-python < 12.6
        self.rt: Any = runtime

    def _check(self, call: str, result: Any) -> Any:
        status, *values = result if isinstance(result, tuple) else (result,)
        if int(status) != 0:
            ok, name = self.rt.cudaGetErrorName(status)
            text = name.decode() if int(ok) == 0 else f"error {int(status)}"
            _, desc = self.rt.cudaGetErrorString(status)
            raise CudaError(f"{call} failed: {text} ({desc.decode() if isinstance(desc, bytes) else desc})")
        return values[0] if len(values) == 1 else tuple(values) if values else None

    def device_count(self) -> int:
        return int(self._check("cudaGetDeviceCount", self.rt.cudaGetDeviceCount()))

    def device_properties(self, device: int) -> DeviceProperties:
        p = self._check("cudaGetDeviceProperties", self.rt.cudaGetDeviceProperties(device))
        name = p.name.split(b"\0", 1)[0].decode() if isinstance(p.name, bytes) else str(p.name)
        return DeviceProperties(name, f"{p.major}.{p.minor}", int(p.totalGlobalMem))

    def set_device(self, device: int) -> None:
        self._check("cudaSetDevice", self.rt.cudaSetDevice(device))

    def stream_create(self) -> Any:
        return self._check(
            "cudaStreamCreateWithFlags", self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking)
        )

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_synchronize(self, stream: Any) -> None:
        self._check("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))

    def stream_destroy(self, stream: Any) -> None:
        self._check("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def event_create(self) -> Any:
        return self._check("cudaEventCreate", self.rt.cudaEventCreate())

    def event_record(self, event: Any, stream: Any) -> None:
        self._check("cudaEventRecord", self.rt.cudaEventRecord(event, stream))

    def event_synchronize(self, event: Any) -> None:
        self._check("cudaEventSynchronize", self.rt.cudaEventSynchronize(event))

    def event_destroy(self, event: Any) -> None:
        self._check("cudaEventDestroy", self.rt.cudaEventDestroy(event))

    def host_alloc(self, nbytes: int) -> tuple[Any, np.ndarray]:
        ptr = int(self._check("cudaMallocHost", self.rt.cudaMallocHost(nbytes)))
        return ptr, _byte_view(ptr, nbytes)

    def host_free(self, handle: Any) -> None:
        self._check("cudaFreeHost", self.rt.cudaFreeHost(handle))

    def device_alloc(self, nbytes: int) -> tuple[Any, int]:
        ptr = int(self._check("cudaMalloc", self.rt.cudaMalloc(nbytes)))
        return ptr, ptr

    def device_free(self, handle: Any) -> None:
        self._check("cudaFree", self.rt.cudaFree(handle))

    def copy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(
            "cudaMemcpyAsync(host to device)", self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream)
        )

    def copy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(
            "cudaMemcpyAsync(device to host)", self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream)
        )


class PyCuda:
    """``pycuda``: the driver API on the primary context (shared with the CUDA runtime, so with TensorRT)."""

    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.driver as drv  # type: ignore[import-not-found, import-untyped, unused-ignore]

        self.drv: Any = drv
        self._context: Any = None
        self._call("cuInit", drv.init)

    def _call(self, call: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.drv.Error as exc:
            raise CudaError(
                f"{call} failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None

    def device_count(self) -> int:
        return int(self._call("cuDeviceGetCount", self.drv.Device.count))

    def device_properties(self, device: int) -> DeviceProperties:
        dev = self._call("cuDeviceGet", self.drv.Device, device)
        major, minor = self._call("cuDeviceComputeCapability", dev.compute_capability)
        return DeviceProperties(
            str(self._call("cuDeviceGetName", dev.name)),
            f"{major}.{minor}",
            int(self._call("cuDeviceTotalMem", dev.total_memory)),
        )

    def set_device(self, device: int) -> None:
        if self._context is None:
            dev = self._call("cuDeviceGet", self.drv.Device, device)
            self._context = self._call("cuDevicePrimaryCtxRetain", dev.retain_primary_context)
            self._call("cuCtxPushCurrent", self._context.push)

    def stream_create(self) -> Any:
        return self._call("cuStreamCreate", self.drv.Stream, 1)  # CU_STREAM_NON_BLOCKING

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        self._call("cuStreamSynchronize", stream.synchronize)

    def stream_destroy(self, stream: Any) -> None:
        pass  # freed with the Python object

    def event_create(self) -> Any:
        return self._call("cuEventCreate", self.drv.Event)

    def event_record(self, event: Any, stream: Any) -> None:
        self._call("cuEventRecord", event.record, stream)

    def event_synchronize(self, event: Any) -> None:
        self._call("cuEventSynchronize", event.synchronize)

    def event_destroy(self, event: Any) -> None:
        pass

    def host_alloc(self, nbytes: int) -> tuple[Any, np.ndarray]:
        arr = self._call("cuMemHostAlloc", self.drv.pagelocked_empty, (nbytes,), np.uint8)
        return arr, arr

    def host_free(self, handle: Any) -> None:
        base = getattr(handle, "base", None)
        if base is not None and hasattr(base, "free"):
            self._call("cuMemFreeHost", base.free)

    def device_alloc(self, nbytes: int) -> tuple[Any, int]:
        alloc = self._call("cuMemAlloc", self.drv.mem_alloc, nbytes)
        return alloc, int(alloc)

    def device_free(self, handle: Any) -> None:
        self._call("cuMemFree", handle.free)

    def copy_htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._call("cuMemcpyHtoDAsync", self.drv.memcpy_htod_async, dst, src, stream)

    def copy_dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._call("cuMemcpyDtoHAsync", self.drv.memcpy_dtoh_async, dst, src, stream)


_BINDING: Binding | None = None


def binding() -> Binding:
    """The CUDA binding in use (``cuda-python`` if installed, else ``pycuda``); EngineError if neither."""
    global _BINDING
    if _BINDING is None:
        errors = []
        for cls in (CudaPython, PyCuda):
            try:
                _BINDING = cls()
                break
            except ImportError as exc:
                errors.append(f"{cls.name}: {exc}")
        else:
            raise EngineError(
                "no CUDA Python binding is installed (" + "; ".join(errors) + "): pip install cuda-python (or pycuda)"
            )
    return _BINDING


def device_count() -> int:
    return binding().device_count()


def device_properties(device: int = 0) -> DeviceProperties:
    return binding().device_properties(device)


def gpu_available() -> tuple[bool, str]:
    """(whether a CUDA GPU can be used, why not): for skips and ``available_backends``; never raises."""
    try:
        n = device_count()
    except EngineError as exc:
        return False, str(exc)
    return (n > 0, f"{n} CUDA devices") if n > 0 else (False, "no CUDA device")


# ----------------------------------------------------------------------------- buffers and slots


class Stream:
    def __init__(self, cuda: Binding):
        self.cuda = cuda
        self.raw = cuda.stream_create()
        self.handle = cuda.stream_handle(self.raw)

    def synchronize(self) -> None:
        self.cuda.stream_synchronize(self.raw)

    def close(self) -> None:
        if self.raw is not None:
            self.cuda.stream_destroy(self.raw)
            self.raw = None


class Event:
    def __init__(self, cuda: Binding):
        self.cuda = cuda
        self.raw = cuda.event_create()

    def record(self, stream: Stream) -> None:
        self.cuda.event_record(self.raw, stream.raw)

    def synchronize(self) -> None:
        self.cuda.event_synchronize(self.raw)

    def close(self) -> None:
        if self.raw is not None:
            self.cuda.event_destroy(self.raw)
            self.raw = None


class PinnedBuffer:
    """Page-locked host memory for up to ``max_shape`` of ``dtype``; ``view(shape)`` is a numpy array on it."""

    def __init__(self, cuda: Binding, max_shape: Sequence[int], dtype: np.dtype):
        self.cuda, self.dtype, self.max_shape = cuda, np.dtype(dtype), tuple(max_shape)
        self.nbytes = int(np.prod(self.max_shape)) * self.dtype.itemsize
        self._handle, self._bytes = cuda.host_alloc(self.nbytes)

    def view(self, shape: Sequence[int]) -> np.ndarray:
        n = int(np.prod(shape)) * self.dtype.itemsize
        if n > self.nbytes:
            raise EngineError(
                f"a tensor of shape {tuple(shape)} does not fit the buffer allocated for {self.max_shape}"
            )
        return self._bytes[:n].view(self.dtype).reshape(tuple(shape))

    def close(self) -> None:
        if self._handle is not None:
            self.cuda.host_free(self._handle)
            self._handle = None


class DeviceBuffer:
    def __init__(self, cuda: Binding, nbytes: int):
        self.cuda, self.nbytes = cuda, nbytes
        self._handle, self.ptr = cuda.device_alloc(max(nbytes, 1))

    def close(self) -> None:
        if self._handle is not None:
            self.cuda.device_free(self._handle)
            self._handle = None


@dataclass
class Slot:
    """One of the two double-buffering slots: stream, buffers per tensor, and the 'outputs on host' event."""

    stream: Stream
    host: dict[str, PinnedBuffer]
    device: dict[str, DeviceBuffer]
    done: Event
    out_shapes: dict[str, tuple[int, ...]]


class SlotBuffers:
    """``n_slots`` slots, each with pinned host + device buffers for every tensor at its largest shape.

    Everything is allocated once here; ``close()`` frees it. ``tensors`` maps name -> (max shape, dtype).
    """

    def __init__(self, tensors: Mapping[str, tuple[Sequence[int], np.dtype]], n_slots: int = 2, device: int = 0):
        self.cuda = binding()
        self.cuda.set_device(device)
        self.slots: list[Slot] = []
        try:
            for _ in range(n_slots):
                host = {n: PinnedBuffer(self.cuda, shape, dt) for n, (shape, dt) in tensors.items()}
                dev = {n: DeviceBuffer(self.cuda, host[n].nbytes) for n in tensors}
                self.slots.append(Slot(Stream(self.cuda), host, dev, Event(self.cuda), {}))
        except BaseException:
            self.close()
            raise
        total = sum(b.nbytes for s in self.slots for b in s.host.values())
        log.debug(
            "allocated %d slots: %.1f MB pinned + %.1f MB device (%s)",
            n_slots,
            total / 1e6,
            total / 1e6,
            self.cuda.name,
        )

    def upload(self, slot: int, name: str, array: np.ndarray) -> None:
        """Stage ``array`` in the slot's pinned buffer and enqueue its copy to the device on the slot's stream."""
        s = self.slots[slot]
        staged = s.host[name].view(array.shape)
        np.copyto(staged, array, casting="same_kind")
        self.cuda.copy_htod_async(s.device[name].ptr, staged, s.stream.raw)

    def download(self, slot: int, name: str, shape: Sequence[int]) -> None:
        """Enqueue the copy of output ``name`` (``shape``) back into the slot's pinned buffer."""
        s = self.slots[slot]
        s.out_shapes[name] = tuple(shape)
        self.cuda.copy_dtoh_async(s.host[name].view(shape), s.device[name].ptr, s.stream.raw)

    def outputs(self, slot: int) -> dict[str, np.ndarray]:
        """Wait for the slot's event, then copy its outputs out of the pinned buffers (they are reused)."""
        s = self.slots[slot]
        s.done.synchronize()
        return {name: s.host[name].view(shape).copy() for name, shape in s.out_shapes.items()}

    def close(self) -> None:
        for s in self.slots:
            try:
                s.stream.synchronize()  # nothing may still be copying into memory about to be freed
            except CudaError as exc:
                log.warning("while freeing CUDA buffers: %s", exc)
            for buf in s.host.values():
                buf.close()
            for dev in s.device.values():
                dev.close()
            s.done.close()
            s.stream.close()
        self.slots = []
