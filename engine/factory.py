"""Build a :class:`TalkingFaceEngine` for a loaded model on the backend the settings ask for.

``open_engine`` prepares everything that can fail on configuration (backend, device, precision) and
everything that takes long (the ONNX export, cached), then returns the engine **not yet opened**:
sessions, GPU memory and pinned buffers are acquired by ``engine.open()`` / ``with engine:`` and
released by ``close()``, so the caller owns the engine's lifetime::

    engine = open_engine(loaded, settings.engine, backend="onnxruntime")
    with engine:
        engine.set_identity(faces)
        frames = engine.render(windows)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from speech2vid.config import EngineConfig
from speech2vid.engine.base import Runner
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import ConfigError, EngineError
from speech2vid.model.io_spec import FRAME_GRAPH, IDENTITY_GRAPH, graph_specs
from speech2vid.model.weights import LoadedModel

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def tensorrt_available() -> tuple[bool, str]:
    """(whether the TensorRT backend can run here, why not): TensorRT importable and a CUDA GPU present."""
    from speech2vid.build_engines.tensorrt_build import installed_tensorrt_version
    from speech2vid.engine.cuda import gpu_available

    if installed_tensorrt_version() is None:
        return False, "TensorRT is not installed"

    return gpu_available()


def available_backends() -> list[str]:
    """Backends that can run on this install, in order of preference for a CPU machine."""
    out = ["torch"]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    else:
        out.insert(0, "onnxruntime")
    if tensorrt_available()[0]:
        out.insert(0, "tensorrt")
    return out


def resolve(engine_cfg: EngineConfig, *, backend: str | None = None, device: str | None = None, precision: str | None = None) -> EngineConfig:
    """``engine_cfg`` with the given overrides, checked as the YAML loader checks a config file."""
    changes: dict[str, Any] = {k: v for k, v in (("backend", backend), ("device", device), ("precision", precision)) if v is not None}
    cfg = dataclasses.replace(engine_cfg, **changes)
    if cfg.backend not in BACKENDS:
        raise EngineError(f"unknown backend '{cfg.backend}': choose one of {', '.join(BACKENDS)}")
    try:
        cfg._check("engine options")  # the same conflicts a config file is refused for (fp16 on CPU, ...)
    except ConfigError as exc:
        raise EngineError(str(exc)) from None
    return cfg


def open_engine(
    loaded: LoadedModel,
    engine_cfg: EngineConfig,
    *,
    backend: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    cache_dir: str | Path | None = None,
) -> TalkingFaceEngine:
    """A TalkingFaceEngine for ``loaded`` on ``engine_cfg``'s backend (overridable); not opened yet.

    onnxruntime FP32 exports the graphs first (or reuses them from ``cache_dir``, default
    ``engine_cfg.cache_dir``); ONNX Runtime FP16/INT8 and TensorRT engines must have been built by
    ``speech2vid build`` and are refused (with that command) when missing, corrupt, foreign or stale.
    Raises EngineError for a backend, device or precision this build or machine cannot run; nothing
    falls back silently.
    """
    if (backend or engine_cfg.backend) == "tensorrt":  # before resolve(): its device check would say less
        ok, why = tensorrt_available()
        if not ok:
            raise EngineError(f"the TensorRT backend cannot run here ({why}): use --backend onnxruntime or --backend torch")
    cfg = resolve(engine_cfg, backend=backend, device=device, precision=precision)
    specs = graph_specs(loaded.model.cfg)
    label = f"{cfg.backend} {cfg.device} {cfg.precision} ({loaded.model.cfg.name}, {loaded.label})"
    identity: Runner
    frame: Runner
    if cfg.backend == "torch":
        from speech2vid.engine.torch_backend import require_device, require_precision, torch_runners

        require_device(cfg.device)  # refuse now rather than at open()
        require_precision(cfg.precision, cfg.device)
        identity, frame = torch_runners(
            loaded.model, specs, device=cfg.device, precision=cfg.precision, cuda_graphs=cfg.device == "cuda"
        )
    elif cfg.backend == "onnxruntime" and cfg.precision == "fp32":
        from speech2vid.build_engines.onnx_export import export_engines
        from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner, providers_for

        providers_for(cfg.device)  # refuse a missing CUDA provider before spending time on an export
        paths = export_engines(loaded, cfg, cache_dir)
        identity = OnnxRuntimeRunner(paths[IDENTITY_GRAPH], specs[IDENTITY_GRAPH], device=cfg.device, options=cfg.onnxruntime)
        frame = OnnxRuntimeRunner(paths[FRAME_GRAPH], specs[FRAME_GRAPH], device=cfg.device, options=cfg.onnxruntime)
    else:
        identity, frame = _built_runners(loaded, cfg, Path(cache_dir if cache_dir is not None else cfg.cache_dir).expanduser())
    log.info("engine ready to open: %s", label)
    return TalkingFaceEngine(identity, frame, loaded.model.cfg.identity_faces, label=label)


def _built_runners(loaded: LoadedModel, cfg: EngineConfig, root: Path) -> tuple[Runner, Runner]:
    """Runners over engines made by ``speech2vid build`` (ONNX Runtime FP16/INT8 graphs, TensorRT plans).

    Nothing is built here: each runner checks its engine's manifest when it opens (missing, corrupt,
    foreign, stale are refused with the ``speech2vid build`` command that fixes it). The check runs
    once now too, so that a missing engine fails before the caller reads inputs and opens devices.
    """
    from speech2vid.build_engines.manifest import check_engine, engine_entry, source_onnx_sha256

    if cfg.precision not in ("fp16", "int8", "fp32"):
        raise EngineError(f"precision '{cfg.precision}' has no {cfg.backend} engines: use fp32, fp16 or int8 (bf16 runs on --backend torch)")
    specs = graph_specs(loaded.model.cfg)
    environment: dict[str, Any] | None = None
    if cfg.backend == "tensorrt":
        from speech2vid.build_engines.tensorrt_build import gpu_environment

        environment = gpu_environment()
    runners: list[Runner] = []
    for graph in (IDENTITY_GRAPH, FRAME_GRAPH):
        entry = engine_entry(loaded, graph, cfg.backend, cfg.precision, root)

        def precheck(entry: Any = entry, graph: str = graph) -> object:
            sha = source_onnx_sha256(loaded, graph, cfg.opset, root)
            return check_engine(loaded, entry, source_sha256=sha, environment=environment)

        precheck()
        if cfg.backend == "tensorrt":
            from speech2vid.engine.tensorrt_backend import TensorRTRunner

            runners.append(TensorRTRunner(entry, specs[graph], precheck=precheck, max_batch=cfg.batch.max))
        else:
            from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner, providers_for

            providers_for(cfg.device)
            runners.append(OnnxRuntimeRunner(entry.path, specs[graph], device=cfg.device, options=cfg.onnxruntime,
                                             precision=cfg.precision, precheck=precheck))
    return runners[0], runners[1]
