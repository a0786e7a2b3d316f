"""What the benchmark needs to know about the machine: its description, its GEMM peak, its memory use.

* :func:`machine_info`: CPU model, cores, library versions, GPU if any (recorded with every result);
* :func:`gemm_peak_gflops`: the machine's achievable peak, measured by the same command: a large
  square matrix product (FP32 on CPU; FP32 and FP16 on CUDA, where tensor cores change the ceiling)
  with the threads the engines use. Achieved GFLOP/s are reported as a fraction of it;
* :class:`PeakMemory`: the peak resident memory growth of this process over a block (Linux
  ``VmHWM``, reset through ``/proc/self/clear_refs``), or CUDA's peak allocated memory on a GPU.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

GEMM_N_CPU = 2048  # 17 GFLOP per product: ~0.1-0.3 s on 2 cores, long enough to reach the sustained rate
GEMM_N_CUDA = 8192
GEMM_REPEATS = 5  # the best of these counts (the peak is a ceiling; noise only lowers it)


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU model, cores, library versions, GPU if any."""
    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and cpu in (platform.processor(), platform.machine()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    from speech2vid.engine.factory import torch_installed

    torch: Any = None
    if torch_installed():  # the [train] extra; the runtime install has no PyTorch
        import torch
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_features": sorted(f for f in flags if f.startswith(("avx512", "avx2", "amx", "avx_vnni"))),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads() if torch else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__ if torch else None,
        "gpu": torch.cuda.get_device_name(0) if torch and torch.cuda.is_available() else None,
        # Other processes' load when the run started: on a shared machine it explains noisy numbers.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    from speech2vid.engine.tensorrt_backend import installed_tensorrt_version

    info["tensorrt"] = installed_tensorrt_version()
    return info


def gemm_peak_gflops(device: str, dtype: str = "fp32") -> float:
    """Best GFLOP/s of an N x N x N matrix product (2 N^3 FLOPs) on ``device`` in ``dtype``.

    PyTorch does the product when installed; without it (the runtime install) NumPy's BLAS does, on
    the CPU in FP32 (a GPU peak then is not measured: NaN)."""
    from speech2vid.engine.factory import torch_installed

    if not torch_installed():
        return _numpy_gemm_peak_gflops() if device == "cpu" else float("nan")
    import torch

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    n = GEMM_N_CUDA if device == "cuda" else GEMM_N_CPU
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen).to(torch_dtype)
    b = torch.randn(n, n, device=device, generator=gen).to(torch_dtype)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    best = float("inf")
    with torch.inference_mode():
        torch.mm(a, b)  # warm-up: thread pool, cuBLAS handle, kernel choice
        sync()
        for _ in range(GEMM_REPEATS):
            t0 = time.perf_counter()
            torch.mm(a, b)
            sync()
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _numpy_gemm_peak_gflops() -> float:
    """The CPU FP32 GEMM peak through NumPy's BLAS (the runtime install has no PyTorch)."""
    import numpy as np

    n = GEMM_N_CPU
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    x @ y  # warm-up: the BLAS thread pool
    best = float("inf")
    for _ in range(GEMM_REPEATS):
        t0 = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


class PeakMemory:
    """Peak memory growth over a ``with`` block, in bytes (``peak_bytes``; None where not measurable).

    CPU: the process's peak resident set (``VmHWM``) after resetting it at entry, minus the resident set
    at entry: what opening and running the engine added at its highest. CUDA (``cuda=True``): PyTorch's
    peak allocated device memory over the block (the torch backend; other CUDA users are not seen).
    """

    STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")

    def __init__(self, cuda: bool = False):
        self.cuda = cuda
        self.peak_bytes: int | None = None
        self._start = 0

    @classmethod
    def _status_kb(cls, key: str) -> int | None:
        try:
            for line in cls.STATUS.read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        try:
            self.CLEAR_REFS.write_text("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
        except OSError:
            pass
        self._start = (self._status_kb("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = max(0, torch.cuda.max_memory_allocated() - self._start)
            return
        hwm = self._status_kb("VmHWM")
        self.peak_bytes = None if hwm is None else max(0, hwm * 1024 - self._start)
