"""TensorRT engine builds from our ONNX graphs; the build path is picked by the installed TensorRT version.

* **TensorRT 10.x** (JetPack 6 on Jetson, desktop): a weakly typed network parsed from the FP32 ONNX
  graph with ``BuilderFlag.FP16`` for FP16, or from the Q/DQ graph with ``BuilderFlag.INT8`` for INT8
  (explicit quantisation: the scales come from the graph, no calibrator); DLA core from the config.
* **TensorRT 11+** (desktop): ``BuilderFlag.FP16/INT8`` and the implicit calibrator are gone; networks
  are strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``) and take their precision from
  the graph: the FP16 ONNX graph for FP16, the Q/DQ graph for INT8, the FP32 graph for FP32. DLA is
  not offered (TensorRT 11 does not support JetPack).

One optimisation profile covers the dynamic batch axis with min/opt/max from ``engine.batch``; the
frame graph's identity inputs get the same range (batch 1 or N, see ``onnx_export``). The timing cache
(kernel timings, the slow part of a build) is loaded from and saved to the cache folder, so a rebuild
on the same GPU is fast. ``tensorrt`` is imported only inside these functions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speech2vid.config import BatchRange, TensorRTConfig
from speech2vid.engine.tensorrt_backend import (  # noqa: F401  (the engine owns these; builds share them)
    gpu_environment,
    installed_tensorrt_version,
    make_logger,
    require_tensorrt,
)
from speech2vid.errors import EngineError
from speech2vid.files import atomic_path
from speech2vid.model.io_spec import GraphSpec

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

STRONGLY_TYPED_FROM = 11  # the first TensorRT major without BuilderFlag.FP16/INT8


def trt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise EngineError(f"cannot read the TensorRT version '{version}'") from None


@dataclass(frozen=True)
class BuildPath:
    """How an engine of one precision is built with one TensorRT version."""

    strongly_typed: bool
    onnx_precision: str  # which of our ONNX graphs is parsed: fp32, fp16 or int8 (Q/DQ)
    flags: tuple[str, ...]  # BuilderFlag names set (TensorRT 10)

    def describe(self) -> str:
        typing_ = "strongly typed" if self.strongly_typed else "weakly typed"
        flags = f", flags {'+'.join(self.flags)}" if self.flags else ""
        return f"{typing_} network from the {self.onnx_precision} ONNX graph{flags}"


def build_path(version: str, precision: str) -> BuildPath:
    """The build recipe for ``precision`` on TensorRT ``version`` (pure: tested without TensorRT)."""
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineError(f"TensorRT engines are fp32, fp16 or int8, not '{precision}' (bf16 runs on --backend torch)")
    if trt_major(version) >= STRONGLY_TYPED_FROM:
        return BuildPath(True, precision, ())
    return {
        "fp32": BuildPath(False, "fp32", ()),
        "fp16": BuildPath(False, "fp32", ("FP16",)),
        "int8": BuildPath(False, "int8", ("INT8",)),  # the Q/DQ graph: explicit quantisation
    }[precision]


def parse_onnx(
    builder: "trt.Builder", logger: "trt.ILogger", onnx_path: Path, strongly_typed: bool
) -> tuple["trt.INetworkDefinition", "trt.OnnxParser"]:
    """Parse ``onnx_path`` into a new network; parser errors are raised, one line, naming the file."""
    import tensorrt as trt

    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT could not parse {onnx_path}: {errors.replace(chr(10), ' ')[:400]}")
    return network, parser


def builder_config(
    builder: "trt.Builder",
    network: "trt.INetworkDefinition",
    spec: GraphSpec,
    path: BuildPath,
    batch: BatchRange,
    cfg: TensorRTConfig,
    major: int,
) -> "trt.IBuilderConfig":
    """Workspace, precision flags, DLA, the optimisation profile of the batch axis."""
    import tensorrt as trt

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mb << 20)
    config.builder_optimization_level = cfg.builder_optimization_level
    for flag in path.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if cfg.dla_core is not None:
        if major >= STRONGLY_TYPED_FROM:
            raise EngineError(
                f"engine.tensorrt.dla_core is set but TensorRT {major} has no DLA support: set it to null"
            )
        if builder.num_DLA_cores <= cfg.dla_core:
            raise EngineError(
                f"engine.tensorrt.dla_core {cfg.dla_core} asked for, this device has {builder.num_DLA_cores} DLA cores"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = cfg.dla_core
        if cfg.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    profile = builder.create_optimization_profile()
    for t in spec.inputs:
        rest = list(t.shape[1:])
        profile.set_shape(
            t.name, trt.Dims([batch.min, *rest]), trt.Dims([batch.opt, *rest]), trt.Dims([batch.max, *rest])
        )
    config.add_optimization_profile(profile)
    return config


def build_engine(
    onnx_path: str | Path,
    out_path: str | Path,
    spec: GraphSpec,
    precision: str,
    batch: BatchRange,
    cfg: TensorRTConfig,
    timing_cache: str | Path | None = None,
) -> Path:
    """Build and serialise one engine (temp + rename); returns ``out_path``.

    ``onnx_path`` must be the graph ``build_path(...).onnx_precision`` names (the caller picks it).
    """
    version = require_tensorrt()
    import tensorrt as trt

    major = trt_major(version)
    path = build_path(version, precision)
    log.info("TensorRT %s: building the %s %s engine as a %s", version, spec.name, precision, path.describe())
    t0 = time.perf_counter()
    logger = make_logger()
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(builder, logger, Path(onnx_path), path.strongly_typed)
    config = builder_config(builder, network, spec, path, batch, cfg, major)
    cache_file = Path(timing_cache) if timing_cache is not None and cfg.timing_cache else None
    if cache_file is not None:
        blob = cache_file.read_bytes() if cache_file.is_file() else b""
        cache = config.create_timing_cache(blob)
        if config.set_timing_cache(cache, ignore_mismatch=False):
            log.info("timing cache %s: %s", cache_file, f"{len(blob) / 1e3:.0f} kB reused" if blob else "new")
        else:
            log.warning(
                "TensorRT rejected the timing cache %s (another GPU or version): starting a new one", cache_file
            )
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(
            f"TensorRT {version} failed to build the {spec.name} {precision} engine from {onnx_path} (see the "
            "TensorRT messages above)"
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(memoryview(serialized))
    if cache_file is not None:
        timing = config.get_timing_cache()
        data = timing.serialize()
        with atomic_path(cache_file) as tmp_cache:
            tmp_cache.write_bytes(memoryview(data))
    log.info("built %s (%.1f MB) in %.1f s", out, out.stat().st_size / 1e6, time.perf_counter() - t0)
    return out
