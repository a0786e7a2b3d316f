"""The CUDA layer (engine/cuda.py): errors that name the failing call, and, on a GPU, the double-buffered
pinned/device round trip that the TensorRT runner relies on (testable without TensorRT)."""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.engine import cuda
from speech2vid.errors import EngineError

HAS_GPU, WHY = cuda.gpu_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=f"needs a CUDA GPU ({WHY})")


def test_no_gpu_is_reported_with_the_failing_call() -> None:
    """Without a GPU driver (CI) the binding's first call fails; the error names it and CUDA's error."""
    if HAS_GPU:
        pytest.skip("a CUDA GPU is present: nothing fails here")
    ok, why = cuda.gpu_available()
    assert not ok and why and "\n" not in why
    try:
        binding = cuda.binding()
    except EngineError as exc:  # neither cuda-python nor pycuda is installed
        assert "pip install cuda-python" in str(exc)
        return
    with pytest.raises(cuda.CudaError) as info:
        binding.device_count()
    text = str(info.value)
    assert text.startswith(("cudaGetDeviceCount failed: cuda", "cuInit failed", "cuDeviceGetCount failed")), text
    assert "\n" not in text


@pytest.mark.gpu
@needs_gpu
def test_device_properties() -> None:
    props = cuda.device_properties(0)
    major, minor = (int(x) for x in props.compute_capability.split("."))
    assert props.name and major >= 5 and props.total_memory > 2**30


@pytest.mark.gpu
@needs_gpu
def test_two_slots_round_trip_through_device_memory() -> None:
    """Upload on each slot's stream, download the same device buffer back, wait on the slot's event:
    the bytes come back unchanged, the two slots do not mix, and buffers are reused without reallocating."""
    tensors = {"x": ((8, 3, 109, 109), np.dtype(np.float32))}
    buffers = cuda.SlotBuffers(tensors, n_slots=2)
    try:
        pinned_before = [s.host["x"].view((1,)).ctypes.data for s in buffers.slots]
        rng = np.random.default_rng(0)
        for _ in range(3):
            data = [rng.standard_normal((n, 3, 109, 109)).astype(np.float32) for n in (8, 3)]
            for slot, arr in enumerate(data):
                buffers.upload(slot, "x", arr)
                buffers.download(slot, "x", arr.shape)
                buffers.slots[slot].done.record(buffers.slots[slot].stream)
            for slot, arr in enumerate(data):
                np.testing.assert_array_equal(buffers.outputs(slot)["x"], arr)
        assert [s.host["x"].view((1,)).ctypes.data for s in buffers.slots] == pinned_before
        with pytest.raises(EngineError, match="does not fit"):
            buffers.upload(0, "x", np.zeros((9, 3, 109, 109), np.float32))
    finally:
        buffers.close()


@pytest.mark.gpu
@needs_gpu
def test_a_failing_call_names_itself() -> None:
    binding = cuda.binding()
    with pytest.raises(cuda.CudaError) as info:
        binding.device_alloc(1 << 60)  # an exabyte
    assert ("cudaMalloc failed" in str(info.value)) or ("cuMemAlloc failed" in str(info.value))
