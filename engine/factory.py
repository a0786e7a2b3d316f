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
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import ConfigError, EngineError
from speech2vid.model.io_spec import FRAME_GRAPH, IDENTITY_GRAPH, graph_specs
from speech2vid.model.weights import LoadedModel

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def available_backends() -> list[str]:
    """Backends that can run on this install, in order of preference for a CPU machine."""
    out = ["torch"]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    else:
        out.insert(0, "onnxruntime")
    # tensorrt: the TensorRT backend is not part of this build yet.
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

    onnxruntime exports the graphs first (or reuses them from ``cache_dir``, default
    ``engine_cfg.cache_dir``). Raises EngineError for a backend, device or precision this build or
    machine cannot run; nothing falls back silently.
    """
    if (backend or engine_cfg.backend) == "tensorrt":  # before resolve(): its device check would say less
        raise EngineError(
            "the TensorRT backend is not available in this build: use --backend onnxruntime or --backend torch"
        )
    cfg = resolve(engine_cfg, backend=backend, device=device, precision=precision)
    specs = graph_specs(loaded.model.cfg)
    label = f"{cfg.backend} {cfg.device} {cfg.precision} ({loaded.model.cfg.name}, {loaded.label})"
    if cfg.backend == "torch":
        from speech2vid.engine.torch_backend import require_device, require_precision, torch_runners

        require_device(cfg.device)  # refuse now rather than at open()
        require_precision(cfg.precision, cfg.device)
        identity, frame = torch_runners(loaded.model, specs, device=cfg.device, precision=cfg.precision)
    else:
        from speech2vid.build_engines.onnx_export import export_engines
        from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner, providers_for

        if cfg.precision != "fp32":
            raise EngineError(
                f"precision '{cfg.precision}' ONNX Runtime engines are not built yet (fp16/int8 engines arrive with"
                " `speech2vid build`): use --precision fp32 with onnxruntime, or --backend torch for bf16/fp16"
            )
        providers_for(cfg.device)  # refuse a missing CUDA provider before spending time on an export
        paths = export_engines(loaded, cfg, cache_dir)
        identity = OnnxRuntimeRunner(paths[IDENTITY_GRAPH], specs[IDENTITY_GRAPH], device=cfg.device, options=cfg.onnxruntime)
        frame = OnnxRuntimeRunner(paths[FRAME_GRAPH], specs[FRAME_GRAPH], device=cfg.device, options=cfg.onnxruntime)
    log.info("engine ready to open: %s", label)
    return TalkingFaceEngine(identity, frame, loaded.model.cfg.identity_faces, label=label)
