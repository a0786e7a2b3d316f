"""``speech2vid bench``: every available backend x precision x model, side by side, as the runtime sees them.

What is timed: ``TalkingFaceEngine.render`` on a batch of B MFCC windows with the identity encoded once
beforehand (``set_identity``), i.e. the frame graph plus the engine's zero-copy layout glue. Every
call is timed alone with ``time.perf_counter``; warm-up calls (first-run allocations, kernel selection,
CUDA graph capture) are excluded; there are no sleeps. Each combination runs for a bounded time
(``seconds``) or a fixed number of calls (``iters``), after at least one timed call, at batch 1 (the
live loop renders one frame per call) and at the streaming batch (``engine.batch.opt``, what offline
generation and re-dubbing render per call).

Per result: per-frame latency median/p90/p99, frames/s and real-time factor at 25 fps, peak memory
growth while the engine was open and running, engine size on disk and build time (from the engine
manifests), and achieved GFLOP/s (2 x the per-frame MACs x frames/s) as a fraction of the machine's
GEMM peak measured by the same run (``bench.machine``).

Targets are written ``backend[:device[:precision]]`` (``torch``, ``onnxruntime:cpu:int8``,
``torch:cuda:fp16``, ``tensorrt:cuda:int8``); :func:`default_targets` lists every one this machine can
run. ONNX Runtime FP16/INT8 and TensorRT engines missing from the cache are built first (not timed).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speech2vid.bench.machine import PeakMemory, gemm_peak_gflops, machine_info
from speech2vid.config import EngineConfig, Settings, load_model_config, load_settings
from speech2vid.errors import EngineError
from speech2vid.features.windows import FPS
from speech2vid.files import write_json_atomic
from speech2vid.text_table import table_lines

__all__ = [
    "BenchResult",
    "bench",
    "default_targets",
    "format_table",
    "machine_info",
    "parse_target",
    "run_bench",
    "to_json",
]

log = logging.getLogger(__name__)

VIDEO_FPS = float(FPS)  # real time = one frame every 40 ms
JSON_FORMAT = "speech2vid-bench-2"


@dataclass(frozen=True)
class BenchResult:
    """One model x target x batch: latency (ms) over ``calls`` timed calls of ``batch`` frames, and the rest."""

    model: str
    backend: str
    device: str
    precision: str
    batch: int
    weights: str  # "random" or the weights file
    calls: int
    seconds: float  # timed seconds, warm-up excluded
    call_median_ms: float
    call_p90_ms: float
    call_p99_ms: float
    frame_median_ms: float  # = call / batch
    frame_p90_ms: float
    frame_p99_ms: float
    fps: float  # frames per second at the median call latency
    realtime_factor: float  # fps / 25: >= 1 keeps up with 25 fps video
    peak_memory_mb: float | None  # peak RSS (CPU) or allocated GPU memory growth while open and running
    engine_mb: float | None  # both graphs' engine files (torch: parameters in their precision)
    build_s: float | None  # both graphs' build time from the manifests (None: not recorded)
    gflops: float  # achieved: 2 x MACs per frame x fps
    peak_gflops: float  # the device's GEMM peak, same run
    peak_fraction: float  # gflops / peak_gflops

    @property
    def target(self) -> str:
        return f"{self.backend}:{self.device}:{self.precision}"


def parse_target(target: str, base: EngineConfig) -> tuple[str, str, str]:
    """``backend[:device[:precision]]`` -> (backend, device, precision), defaults from ``base``."""
    parts = target.split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise EngineError(f"bench target '{target}' must be backend[:device[:precision]], e.g. torch:cpu:bf16")
    backend = parts[0]
    device = parts[1] if len(parts) > 1 else ("cuda" if backend == "tensorrt" else base.device)
    precision = parts[2] if len(parts) > 2 else base.precision
    return backend, device, precision


def default_models(weights: str | None) -> list[str]:
    """The models ``bench`` times by default: every bundled geometry when the weights are given or can
    be made (random, with PyTorch); else those whose default weights ship."""
    from speech2vid.config import model_names
    from speech2vid.model.ref import bundled_weights

    names = model_names()
    return names if weights is not None else [n for n in names if bundled_weights(n) is not None]


def default_targets() -> list[str]:
    """Every backend x device x precision this machine can run."""
    from speech2vid.engine.factory import available_backends

    backends = available_backends()
    out = []
    if "onnxruntime" in backends:
        import onnxruntime

        out += [f"onnxruntime:cpu:{p}" for p in ("fp32", "fp16", "int8")]
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            out += [f"onnxruntime:cuda:{p}" for p in ("fp32", "fp16", "int8")]
    if "torch" in backends:
        import torch

        out += ["torch:cpu:fp32", "torch:cpu:bf16"]
        if torch.cuda.is_available():
            out += [f"torch:cuda:{p}" for p in ("fp32", "fp16", "bf16")]
    if "tensorrt" in backends:
        out += [f"tensorrt:cuda:{p}" for p in ("fp32", "fp16", "int8")]
    return out


def _percentiles(times_s: Sequence[float]) -> tuple[float, float, float]:
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 90)), float(np.percentile(ms, 99))


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


def _engine_files(
    model: Any, backend: str, precision: str, cfg: EngineConfig, cache_dir: str | Path | None
) -> tuple[float | None, float | None]:
    """(engine MB, build seconds) of both graphs, from the cache manifests; torch: parameter bytes, no build."""
    from speech2vid.engine.cache import EngineRefused, cache_root, cached_engine, fp32_export, read_manifest
    from speech2vid.model.io_spec import GRAPHS

    root = cache_root(cfg, cache_dir)
    if backend == "torch":
        from speech2vid.build_engines.build import loaded_model

        itemsize = 2 if precision in ("fp16", "bf16") else 4
        return sum(p.numel() for p in loaded_model(model).model.parameters()) * itemsize / 1e6, None
    size: float | None = 0.0
    seconds: float | None = 0.0
    for graph in GRAPHS:
        if backend == "onnxruntime" and precision == "fp32":
            try:
                entry = fp32_export(model, graph, cfg.opset, root)[0]
            except EngineRefused:
                return None, None
        else:
            entry = cached_engine(model, graph, backend, precision, root)
        try:
            size = None if size is None else size + entry.path.stat().st_size / 1e6
        except OSError:
            size = None
        took = (read_manifest(entry.manifest_path) or {}).get("build_seconds")
        seconds = None if seconds is None or not isinstance(took, (int, float)) else seconds + float(took)
    return size, seconds


def _ensure_built(model: Any, settings: Settings, backend: str, precision: str, cache_dir: str | Path | None) -> None:
    if backend == "torch":
        return
    from speech2vid.build_engines.build import build, ensure_fp32_export
    from speech2vid.engine.cache import cache_root

    if backend == "onnxruntime" and precision == "fp32":
        ensure_fp32_export(model, settings.engine, cache_root(settings.engine, cache_dir))
    else:
        build(model, settings, precision=precision, backend=backend, cache_dir=cache_dir)


def _frame_macs(model: Any, engine_cfg: EngineConfig, cache_dir: str | Path | None) -> int:
    """MACs of one frame: PyTorch's FLOP counter when installed, else counted on the FP32 frame graph."""
    from speech2vid.engine.factory import torch_installed

    if torch_installed():
        from speech2vid.build_engines.build import loaded_model
        from speech2vid.model.cost import per_frame_macs

        return per_frame_macs(loaded_model(model).model)
    from speech2vid.build_engines.build import ensure_fp32_export
    from speech2vid.build_engines.graph_cost import graph_cost
    from speech2vid.engine.cache import cache_root
    from speech2vid.model.io_spec import FRAME_GRAPH

    return graph_cost(ensure_fp32_export(model, engine_cfg, cache_root(engine_cfg, cache_dir))[FRAME_GRAPH].path).macs


def bench(
    model_names: Sequence[str],
    targets: Sequence[str],
    *,
    batches: Sequence[int] = (1,),
    warmup: int = 3,
    seconds: float = 3.0,
    iters: int | None = None,
    weights: str | None = "random",
    settings: Settings | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> list[BenchResult]:
    """Time the frame graph for every model x target x batch; results in that order.

    ``iters`` (a fixed number of timed calls) overrides ``seconds`` (a time budget per combination).
    Builds, ONNX export (cached) and engine opening happen before, and are not timed.
    """
    from speech2vid.engine.factory import make_engine
    from speech2vid.features.windows import N_CEPS, WINDOW_COLS
    from speech2vid.model.io_spec import FACE_SIZE
    from speech2vid.model.ref import model_ref

    if not batches or min(batches) < 1 or warmup < 0 or seconds <= 0 or (iters is not None and iters < 1):
        raise EngineError(
            f"bench needs batches >= 1, warmup >= 0, seconds > 0, iters >= 1; got {list(batches)}, {warmup}, "
            f"{seconds}, {iters}"
        )
    settings = settings or load_settings()
    base = settings.engine
    parsed = [parse_target(t, base) for t in targets]
    rng = np.random.default_rng(seed)
    # Speech-like MFCC magnitudes (cepstra of log energies are O(10)); faces of uniform noise.
    windows = (rng.standard_normal((max(batches), N_CEPS, WINDOW_COLS)) * 10.0).astype(np.float32)
    faces = [rng.integers(0, 256, (FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)]  # repeated into every identity slot
    peaks: dict[tuple[str, str], float] = {}
    results: list[BenchResult] = []
    for name in model_names:
        loaded = model_ref(load_model_config(name), weights)
        flops_per_frame = 2.0 * _frame_macs(loaded, base, cache_dir)
        for backend, device, precision in parsed:
            _ensure_built(loaded, settings, backend, precision, cache_dir)
            peak_kind = (device, "fp32" if device == "cpu" or precision == "fp32" else "fp16")
            if peak_kind not in peaks:
                peaks[peak_kind] = gemm_peak_gflops(*peak_kind)
                log.info("GEMM peak on %s (%s): %.1f GFLOP/s", *peak_kind, peaks[peak_kind])
            engine = make_engine(loaded, base, backend=backend, device=device, precision=precision, cache_dir=cache_dir)
            timings: list[tuple[int, list[float]]] = []
            with PeakMemory(cuda=device == "cuda" and backend == "torch") as memory:
                with engine:
                    engine.set_identity(faces)
                    for batch in batches:
                        timings.append((batch, _time_engine(engine, windows[:batch], warmup, seconds, iters)))
            engine_mb, build_s = _engine_files(loaded, backend, precision, base, cache_dir)
            for batch, times in timings:
                median, p90, p99 = _percentiles(times)
                fps = batch / (median / 1e3)
                gflops = flops_per_frame * fps / 1e9
                r = BenchResult(
                    model=loaded.name,
                    backend=backend,
                    device=device,
                    precision=precision,
                    batch=batch,
                    weights=loaded.source,
                    calls=len(times),
                    seconds=float(sum(times)),
                    call_median_ms=median,
                    call_p90_ms=p90,
                    call_p99_ms=p99,
                    frame_median_ms=median / batch,
                    frame_p90_ms=p90 / batch,
                    frame_p99_ms=p99 / batch,
                    fps=fps,
                    realtime_factor=fps / VIDEO_FPS,
                    peak_memory_mb=None if memory.peak_bytes is None else memory.peak_bytes / 1e6,
                    engine_mb=engine_mb,
                    build_s=build_s,
                    gflops=gflops,
                    peak_gflops=peaks[peak_kind],
                    peak_fraction=gflops / peaks[peak_kind],
                )
                log.info(
                    "%s %s batch %d: %.2f ms/frame median, %.2f p90, %.2f p99, %.1f fps (x%.2f real time), %.1f%% of "
                    "peak",
                    r.model,
                    r.target,
                    batch,
                    r.frame_median_ms,
                    r.frame_p90_ms,
                    r.frame_p99_ms,
                    r.fps,
                    r.realtime_factor,
                    100 * r.peak_fraction,
                )
                results.append(r)
    return results


def _opt(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(results: Sequence[BenchResult]) -> str:
    """Plain-text table, one row per model x target x batch, aligned for a terminal or a Markdown code block."""
    head = [
        "model",
        "backend",
        "device",
        "precision",
        "batch",
        "ms/frame median",
        "p90",
        "p99",
        "frames/s",
        "x real time",
        "GFLOP/s",
        "% of peak",
        "peak mem MB",
        "engine MB",
        "build s",
        "calls",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.model,
                r.backend,
                r.device,
                r.precision,
                str(r.batch),
                f"{r.frame_median_ms:.2f}",
                f"{r.frame_p90_ms:.2f}",
                f"{r.frame_p99_ms:.2f}",
                f"{r.fps:.1f}",
                f"{r.realtime_factor:.2f}",
                f"{r.gflops:.1f}",
                f"{100 * r.peak_fraction:.0f}",
                _opt(r.peak_memory_mb, ".0f"),
                _opt(r.engine_mb, ".1f"),
                _opt(r.build_s, ".1f"),
                str(r.calls),
            ]
        )
    out = table_lines(head, rows, right=range(4, len(head)))
    peaks = sorted({(r.device, r.peak_gflops) for r in results})
    if peaks:
        out.append("peak: " + ", ".join(f"{d} GEMM {p:.0f} GFLOP/s" for d, p in peaks) + " (measured by this run)")
    if any(r.weights == "random" for r in results):
        out.append("(random weights: timing only, the frames show no face)")
    return "\n".join(out)


def to_json(results: Sequence[BenchResult], machine: dict[str, Any]) -> dict[str, Any]:
    """Results + machine as JSON-ready data."""
    return {
        "format": JSON_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "video_fps": VIDEO_FPS,
        "results": [{**asdict(r), "target": r.target} for r in results],
    }


def run_bench(
    models: Sequence[str],
    backends: Sequence[str] | None = None,
    batch: int | Sequence[int] | None = None,
    seconds: float = 3.0,
    json_path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    weights: str | None = "random",
    warmup: int = 3,
    plot_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> list[BenchResult]:
    """What ``speech2vid bench`` calls: run :func:`bench`, write the JSON report and plot if asked.

    ``backends``: targets (default :func:`default_targets`); ``batch``: one batch or several (default
    1 and the streaming batch ``engine.batch.opt``). Engine settings come from ``settings``.
    """
    settings = settings or load_settings()
    batches: tuple[int, ...]
    if batch is None:
        batches = tuple(dict.fromkeys((1, settings.engine.batch.opt)))
    else:
        batches = (batch,) if isinstance(batch, int) else tuple(batch)
    machine = machine_info()  # before the run: its load average is the other processes', not ours
    results = bench(
        models,
        backends or default_targets(),
        batches=batches,
        warmup=warmup,
        seconds=seconds,
        weights=weights,
        settings=settings,
        cache_dir=cache_dir,
    )
    if json_path is not None:
        path = Path(json_path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, to_json(results, machine))
        log.info("wrote %s", path)
    if plot_path is not None:
        from speech2vid.bench.plot import plot_results

        plot_results(results, plot_path)
    return results
