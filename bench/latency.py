"""Latency of the per-frame graph, per backend and model, as the runtime sees it.

What is timed: ``TalkingFaceEngine.render`` on a batch of B MFCC windows with the identity encoded once
beforehand (``set_identity``), i.e. the frame graph plus the engine's zero-copy layout glue. Every
call is timed alone with ``time.perf_counter``; warm-up calls (first-run allocations, kernel selection)
are excluded; there are no sleeps. Each combination runs for a bounded time (``seconds``) or a fixed
number of calls (``iters``), whichever the caller gives, after at least one timed call.

Targets are written ``backend[:device[:precision]]`` (``torch``, ``onnxruntime``, ``torch:cpu:bf16``,
``torch:cuda:fp16``); the rest comes from the engine settings.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speech2vid.config import EngineConfig, Settings, load_model_config, load_settings
from speech2vid.errors import EngineError

log = logging.getLogger(__name__)

VIDEO_FPS = 25.0  # real time = one frame every 40 ms
JSON_FORMAT = "speech2vid-bench-1"


@dataclass(frozen=True)
class BenchResult:
    """One backend x model: per-call and per-frame latency (ms) over ``calls`` timed calls of ``batch`` frames."""

    model: str
    backend: str
    device: str
    precision: str
    batch: int
    weights: str  # "random" or the weights file
    calls: int
    seconds: float  # timed seconds, warm-up excluded
    call_median_ms: float
    call_p99_ms: float
    frame_median_ms: float  # = call / batch
    frame_p99_ms: float
    fps: float  # frames per second at the median call latency
    realtime_factor: float  # fps / 25: >= 1 keeps up with 25 fps video

    @property
    def target(self) -> str:
        return f"{self.backend}:{self.device}:{self.precision}"


def parse_target(target: str, base: EngineConfig) -> tuple[str, str, str]:
    """``backend[:device[:precision]]`` -> (backend, device, precision), defaults from ``base``."""
    parts = target.split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise EngineError(f"bench target '{target}' must be backend[:device[:precision]], e.g. torch:cpu:bf16")
    backend = parts[0]
    device = parts[1] if len(parts) > 1 else base.device
    precision = parts[2] if len(parts) > 2 else base.precision
    return backend, device, precision


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU model, cores, library versions, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _summarise(model: str, backend: str, device: str, precision: str, batch: int, weights: str, times_s: Sequence[float]) -> BenchResult:
    calls_ms = np.asarray(times_s, dtype=np.float64) * 1e3
    median = float(np.median(calls_ms))
    p99 = float(np.percentile(calls_ms, 99))
    fps = batch / (median / 1e3)
    return BenchResult(
        model=model, backend=backend, device=device, precision=precision, batch=batch, weights=weights,
        calls=len(calls_ms), seconds=float(calls_ms.sum() / 1e3),
        call_median_ms=median, call_p99_ms=p99, frame_median_ms=median / batch, frame_p99_ms=p99 / batch,
        fps=fps, realtime_factor=fps / VIDEO_FPS,
    )  # fmt: skip


def _time_engine(engine: Any, windows: np.ndarray, warmup: int, seconds: float, iters: int | None) -> list[float]:
    for _ in range(warmup):
        engine.render(windows)
    times: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds
    while True:
        t0 = clock()
        engine.render(windows)
        t1 = clock()
        times.append(t1 - t0)
        if (iters is not None and len(times) >= iters) or (iters is None and t1 >= deadline):
            return times


def bench(
    model_names: Sequence[str],
    backends: Sequence[str],
    *,
    batch: int = 1,
    warmup: int = 3,
    seconds: float = 3.0,
    iters: int | None = None,
    weights: str = "random",
    engine_cfg: EngineConfig | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> list[BenchResult]:
    """Time the frame graph for every model x backend target; results in that order.

    ``iters`` (a fixed number of timed calls) overrides ``seconds`` (a time budget per combination).
    ONNX export (cached) and engine opening happen before, and are not timed.
    """
    from speech2vid.engine.factory import open_engine
    from speech2vid.features.windows import N_CEPS, WINDOW_COLS
    from speech2vid.model.io_spec import FACE_SIZE
    from speech2vid.model.weights import load_model

    if batch < 1 or warmup < 0 or seconds <= 0 or (iters is not None and iters < 1):
        raise EngineError(f"bench needs batch >= 1, warmup >= 0, seconds > 0, iters >= 1; got {batch}, {warmup}, {seconds}, {iters}")
    base = engine_cfg or EngineConfig()
    rng = np.random.default_rng(seed)
    # Speech-like MFCC magnitudes (cepstra of log energies are O(10)); faces of uniform noise.
    windows = (rng.standard_normal((batch, N_CEPS, WINDOW_COLS)) * 10.0).astype(np.float32)
    faces = [rng.integers(0, 256, (FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8) for _ in range(5)]
    results: list[BenchResult] = []
    for name in model_names:
        loaded = load_model(load_model_config(name), weights)
        for target in backends:
            backend, device, precision = parse_target(target, base)
            engine = open_engine(loaded, base, backend=backend, device=device, precision=precision, cache_dir=cache_dir)
            with engine:
                engine.set_identity(faces)
                times = _time_engine(engine, windows, warmup, seconds, iters)
            result = _summarise(loaded.model.cfg.name, backend, device, precision, batch, loaded.source, times)
            log.info(
                "%s %s batch %d: %.2f ms/frame median, %.2f p99, %.1f fps (x%.2f real time) over %d calls",
                result.model, result.target, batch, result.frame_median_ms, result.frame_p99_ms,
                result.fps, result.realtime_factor, result.calls,
            )  # fmt: skip
            results.append(result)
    return results


def format_table(results: Sequence[BenchResult]) -> str:
    """Plain-text table, one row per model x backend, aligned for a terminal or a Markdown code block."""
    show_call = any(r.batch > 1 for r in results)
    head = ["model", "backend", "device", "precision", "batch", "ms/frame median", "ms/frame p99"]
    if show_call:
        head += ["ms/call median", "ms/call p99"]
    head += ["frames/s", "x real time", "calls"]
    rows = []
    for r in results:
        row = [r.model, r.backend, r.device, r.precision, str(r.batch), f"{r.frame_median_ms:.2f}", f"{r.frame_p99_ms:.2f}"]
        if show_call:
            row += [f"{r.call_median_ms:.2f}", f"{r.call_p99_ms:.2f}"]
        row += [f"{r.fps:.1f}", f"{r.realtime_factor:.2f}", str(r.calls)]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    numeric = set(range(4, len(head)))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if any(r.weights == "random" for r in results):
        out.append("(random weights: timing only, the frames show no face)")
    return "\n".join(out)


def to_json(results: Sequence[BenchResult], machine: dict[str, Any]) -> dict[str, Any]:
    """Results + machine as JSON-ready data (every float finite)."""
    return {
        "format": JSON_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "video_fps": VIDEO_FPS,
        "results": [{**asdict(r), "target": r.target} for r in results],
    }


def run_bench(
    models: Sequence[str],
    backends: Sequence[str],
    batch: int = 1,
    seconds: float = 3.0,
    json_path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    weights: str = "random",
    warmup: int = 3,
) -> list[BenchResult]:
    """What ``speech2vid bench`` calls: run :func:`bench`, write the JSON report if asked, return results.

    The engine settings (cache dir, ONNX Runtime threads, default device/precision) come from
    ``settings`` (default: :func:`load_settings`). Print ``format_table(results)`` to show them.
    """
    settings = settings or load_settings()
    results = bench(
        models, backends, batch=batch, warmup=warmup, seconds=seconds, weights=weights, engine_cfg=settings.engine
    )
    if json_path is not None:
        path = Path(json_path).expanduser()
        data = to_json(results, machine_info())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        log.info("wrote %s", path)
    return results

