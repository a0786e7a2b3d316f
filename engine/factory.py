"""Make a :class:`TalkingFaceEngine` for a model on the backend the settings ask for.

``make_engine`` prepares everything that can fail on configuration (backend, device, precision) and
checks the engine files' manifests, then returns the engine **not yet opened**: sessions, GPU memory
and pinned buffers are acquired by ``engine.open()`` / ``with engine:`` and released by ``close()``,
so the caller owns the engine's lifetime::

    engine = make_engine(model_ref(cfg, None), settings.engine, backend="onnxruntime")
    with engine:
        engine.set_identity(faces)
        frames = engine.render(windows)

Nothing is exported or built here (that is ``build_engines``): the FP32 graphs come from the package
(the bundled default model) or the engine cache, and PyTorch is imported only for ``--backend torch``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from speech2vid.config import BACKENDS, EngineConfig
from speech2vid.engine.base import Runner
from speech2vid.engine.cache import (
    EXPORT_PRECISION,
    TRAIN_EXTRA,
    ModelIdentity,
    cache_folder,
    cache_root,
    cached_engine,
    check_engine,
    fp32_export,
    fp32_export_sha256,
    mark_used,
)
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import ConfigError, EngineError
from speech2vid.model.io_spec import GRAPHS, graph_specs

log = logging.getLogger(__name__)


def torch_installed() -> bool:
    """Whether PyTorch can be imported here (the ``[train]`` extra), without importing it."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def tensorrt_available() -> tuple[bool, str]:
    """(whether the TensorRT backend can run here, why not): TensorRT importable and a CUDA GPU present."""
    from speech2vid.engine.cuda import gpu_available
    from speech2vid.engine.tensorrt_backend import installed_tensorrt_version

    if installed_tensorrt_version() is None:
        return False, "TensorRT is not installed"

    return gpu_available()


def available_backends() -> list[str]:
    """Backends that can run on this install, in order of preference for a CPU machine."""
    out = ["torch"] if torch_installed() else []
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    else:
        out.insert(0, "onnxruntime")
    if tensorrt_available()[0]:
        out.insert(0, "tensorrt")
    return out


def resolve(
    engine_cfg: EngineConfig, *, backend: str | None = None, device: str | None = None, precision: str | None = None
) -> EngineConfig:
    """``engine_cfg`` with the given overrides, checked as the YAML loader checks a config file."""
    changes: dict[str, Any] = {
        k: v for k, v in (("backend", backend), ("device", device), ("precision", precision)) if v is not None
    }
    cfg = dataclasses.replace(engine_cfg, **changes)
    if cfg.backend not in BACKENDS:
        raise EngineError(f"unknown backend '{cfg.backend}': choose one of {', '.join(BACKENDS)}")
    try:
        cfg._check("engine options")  # the same conflicts a config file is refused for (fp16 on CPU, ...)
    except ConfigError as exc:
        raise EngineError(str(exc)) from None
    return cfg


def make_engine(
    model: ModelIdentity,
    engine_cfg: EngineConfig,
    *,
    backend: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    cache_dir: str | Path | None = None,
) -> TalkingFaceEngine:
    """A TalkingFaceEngine for ``model`` on ``engine_cfg``'s backend (overridable); not opened yet.

    ``model`` is a ``model.ref.ModelRef`` (torch-free) or a ``LoadedModel``. ONNX Runtime FP32 runs the
    FP32 export (shipped with the package for the default model, else in the cache from ``speech2vid
    export``/``build``); FP16/INT8 and TensorRT engines must have been built by ``speech2vid build``.
    A missing, corrupt, foreign or stale engine is refused (EngineRefused) with the command that makes
    it; a backend, device or precision this build or machine cannot run is an EngineError. Nothing
    falls back silently.
    """
    if (backend or engine_cfg.backend) == "tensorrt":  # before resolve(): its device check would say less
        ok, why = tensorrt_available()
        if not ok:
            raise EngineError(
                f"the TensorRT backend cannot run here ({why}): use --backend onnxruntime or --backend torch"
            )
    cfg = resolve(engine_cfg, backend=backend, device=device, precision=precision)
    root = cache_root(cfg, cache_dir)
    specs = graph_specs(model.cfg)
    label = f"{cfg.backend} {cfg.device} {cfg.precision} ({model.name}, {model.label})"
    runners: list[Runner]
    if cfg.backend == "torch":
        if not torch_installed():
            raise EngineError(
                f"the torch backend needs PyTorch, which the runtime install leaves out: {TRAIN_EXTRA}, or use "
                "--backend onnxruntime"
            )
        from speech2vid.engine.torch_backend import require_device, require_precision, torch_runners

        require_device(cfg.device)  # refuse now rather than at open()
        require_precision(cfg.precision, cfg.device)
        identity, frame = torch_runners(
            _torch_model(model), specs, device=cfg.device, precision=cfg.precision, cuda_graphs=cfg.device == "cuda"
        )
        runners = [identity, frame]
    elif cfg.backend == "onnxruntime" and cfg.precision == EXPORT_PRECISION:
        from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner, providers_for

        providers_for(cfg.device)
        runners = []
        for graph in GRAPHS:
            export, _ = fp32_export(model, graph, cfg.opset, root)
            runners.append(OnnxRuntimeRunner(export.path, specs[graph], device=cfg.device, options=cfg.onnxruntime))
    else:
        runners = _built_runners(model, cfg, root)
        mark_used(cache_folder(model, root))
    log.info("engine ready to open: %s", label)
    return TalkingFaceEngine(
        runners[0], runners[1], model.cfg.identity_faces, label=label, lookahead_columns=model.cfg.lookahead_columns
    )


def _torch_model(model: ModelIdentity) -> Any:
    """The PyTorch network of ``model``: a LoadedModel carries it; a ModelRef is loaded here."""
    loaded = getattr(model, "model", None)
    if loaded is not None:
        return loaded
    from speech2vid.model.weights import load_model

    return load_model(model.cfg, model.source).model


def _built_runners(model: ModelIdentity, cfg: EngineConfig, root: Path) -> list[Runner]:
    """Runners over engines made by ``speech2vid build`` (ONNX Runtime FP16/INT8 graphs, TensorRT plans).

    Nothing is built here: each runner checks its engine's manifest when it opens (missing, corrupt,
    foreign, stale are refused with the ``speech2vid build`` command that fixes it). The check runs
    once now too, so that a missing engine fails before the caller reads inputs and opens devices.
    """
    specs = graph_specs(model.cfg)
    environment: dict[str, Any] | None = None
    if cfg.backend == "tensorrt":
        from speech2vid.engine.tensorrt_backend import gpu_environment

        environment = gpu_environment()
    runners: list[Runner] = []
    for graph in GRAPHS:
        entry = cached_engine(model, graph, cfg.backend, cfg.precision, root)

        def precheck(entry: Any = entry, graph: str = graph) -> object:
            sha = fp32_export_sha256(model, graph, cfg.opset, root)
            return check_engine(model, entry, opset=cfg.opset, source_sha256=sha, environment=environment)

        precheck()
        if cfg.backend == "tensorrt":
            from speech2vid.engine.tensorrt_backend import TensorRTRunner

            runners.append(TensorRTRunner(entry, specs[graph], precheck=precheck, max_batch=cfg.batch.max))
        else:
            from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner, providers_for

            providers_for(cfg.device)
            runners.append(
                OnnxRuntimeRunner(
                    entry.path,
                    specs[graph],
                    device=cfg.device,
                    options=cfg.onnxruntime,
                    precision=cfg.precision,
                    precheck=precheck,
                )
            )
    return runners
