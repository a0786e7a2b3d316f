"""``speech2vid build``: every engine of one model x precision x backend, through the engine cache.

One function per conversion step, each logging what it made, its size and how long it took:

1. :func:`ensure_fp32_export` - the FP32 ONNX graphs: shipped with the package for the default model,
   else from the cache, else exported now (``onnx_export``: the one step that needs PyTorch);
2. :func:`calibration_feeds` - real inputs for INT8 (``calib``), the frame graph's identity tensors
   made by the FP32 identity graph (ONNX Runtime);
3. :func:`make_int8_graph` / :func:`make_fp16_graph` - the Q/DQ graph and the FP16 graph, each an
   engine of the ``onnxruntime`` backend with its manifest;
4. :func:`make_tensorrt_engine` - a TensorRT plan from the graph its build path names (``tensorrt_build``).

Where engines live and what their manifests hold is ``engine.cache``'s; this module only writes them.
A valid cached engine (manifest check passes) is reused, unless ``force``. What was built or reused is
returned as :class:`Built` records (``speech2vid build`` prints them as a table).

A build never breaks the engines it replaces: its inputs (weights, the calibration source) are checked
before anything is made, and the new engines are written beside the old ones (``engine.cache.staging``)
and swapped in only when all of them are complete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from speech2vid.config import ENGINE_PRECISIONS, EngineConfig, Settings, to_dict
from speech2vid.engine.cache import (
    ENGINE_BACKENDS,
    EXPORT_PRECISION,
    TRAIN_EXTRA,
    EngineFile,
    EngineRefused,
    ModelIdentity,
    cache_folder,
    cache_root,
    cached_engine,
    check_engine,
    engine_file,
    fp32_export,
    install_engines,
    staging,
    write_manifest,
)
from speech2vid.engine.factory import torch_installed
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS, IDENTITY_GRAPH, graph_specs
from speech2vid.text_table import table_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """One engine file after ``build``: where it is, how big, how long its build took, whether reused."""

    model: str
    graph: str
    backend: str
    precision: str
    path: Path
    size_bytes: int
    build_seconds: float
    reused: bool


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


# ----------------------------------------------------------------------------- steps


def ensure_fp32_export(
    model: ModelIdentity, engine_cfg: EngineConfig, root: Path, *, force: bool = False
) -> dict[str, EngineFile]:
    """Step 1: both FP32 ONNX graphs, {graph: engine file}: shipped or cached ones when valid, else
    exported now. Exporting needs PyTorch; without it, the refusal names the extra to install."""
    t0 = time.perf_counter()
    try:
        if force:
            raise EngineRefused("forced", "export forced")
        found = {graph: fp32_export(model, graph, engine_cfg.opset, root)[0] for graph in GRAPHS}
    except EngineRefused as exc:
        if not torch_installed():
            raise EngineError(
                f"model '{model.name}' with weights {model.label} has no FP32 ONNX export yet, and exporting one needs"
                f" PyTorch, which the runtime install leaves out: {TRAIN_EXTRA} (then `speech2vid export`), or use the"
                " bundled default weights"
            ) from None
        from speech2vid.build_engines.onnx_export import export_fp32

        log.debug("exporting the FP32 graphs (%s)", exc.kind)  # the weights are read first: a bad file is one line
        found = export_fp32(loaded_model(model), engine_cfg, root, force=force)
    for graph, entry in found.items():
        log.info("FP32 ONNX %s graph: %s (%.1f MB)", graph, entry.path, _mb(entry.path))
    log.info("step 1 (FP32 ONNX graphs) done in %.1f s", time.perf_counter() - t0)
    return found


def ready_engine(model: ModelIdentity, engine_cfg: EngineConfig, cache_dir: str | Path | None = None) -> Any:
    """``engine.factory.make_engine`` after exporting the FP32 graphs when the backend runs ONNX graphs and
    neither the package nor the cache has them (PyTorch; without it, one line naming the extra)."""
    from speech2vid.engine.factory import make_engine

    if engine_cfg.backend in ENGINE_BACKENDS:
        ensure_fp32_export(model, engine_cfg, cache_root(engine_cfg, cache_dir))
    return make_engine(model, engine_cfg, cache_dir=cache_dir)


def loaded_model(model: ModelIdentity) -> Any:
    """``model`` as a LoadedModel (PyTorch): itself when it is one."""
    if getattr(model, "model", None) is not None:
        return model
    from speech2vid.model.weights import load_model

    return load_model(model.cfg, model.source)


def calibration_feeds(
    model: ModelIdentity, settings: Settings, fp32: dict[str, EngineFile]
) -> dict[str, list[dict[str, Any]]]:
    """Step 2: calibration samples per graph, ``{graph: [{input_name: array}, ...]}``; the frame graph's
    identity tensors come from the FP32 identity graph run by ONNX Runtime (no PyTorch needed)."""
    from speech2vid.calib.data import graph_feeds, load_calibration
    from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner

    t0 = time.perf_counter()
    data = load_calibration(settings.calib, model.cfg.identity_faces)
    specs = graph_specs(model.cfg)
    identity = OnnxRuntimeRunner(
        fp32[IDENTITY_GRAPH].path, specs[IDENTITY_GRAPH], device="cpu", options=settings.engine.onnxruntime
    )
    with identity:
        feeds = {
            IDENTITY_GRAPH: graph_feeds(data, IDENTITY_GRAPH),
            FRAME_GRAPH: graph_feeds(data, FRAME_GRAPH, identity.infer),
        }
    log.info("step 2 (calibration data) done: %s in %.1f s", data.describe(), time.perf_counter() - t0)
    return feeds


def make_int8_graph(fp32_onnx: Path, out: Path, feeds: list[dict[str, Any]], settings: Settings) -> Path:
    """Step 3a: the Q/DQ INT8 graph of one graph."""
    from speech2vid.build_engines.quantize import int8_saturates, quantize_int8

    return quantize_int8(
        fp32_onnx,
        out,
        feeds,
        method=settings.calib.method,
        percentile=settings.calib.percentile,
        seven_bit_weights=int8_saturates(),
    )


def make_fp16_graph(fp32_onnx: Path, out: Path) -> Path:
    """Step 3b: the FP16 graph (FP32 inputs/outputs) of one graph."""
    from speech2vid.build_engines.fp16 import convert_fp16

    return convert_fp16(fp32_onnx, out)


def make_tensorrt_engine(
    onnx_path: Path, out: Path, graph: str, model: ModelIdentity, precision: str, settings: Settings, root: Path
) -> Path:
    """Step 4: a serialised TensorRT engine; the timing cache lives in the cache root, one per GPU kind."""
    from speech2vid.build_engines.tensorrt_build import build_engine

    spec = graph_specs(model.cfg)[graph]
    timing = root / "tensorrt-timing.cache"
    return build_engine(onnx_path, out, spec, precision, settings.engine.batch, settings.engine.tensorrt, timing)


# ----------------------------------------------------------------------------- orchestration


def _builder_info(backend: str, precision: str) -> dict[str, str]:
    if backend == "tensorrt":
        from speech2vid.engine.tensorrt_backend import require_tensorrt

        return {"name": "tensorrt", "version": require_tensorrt()}
    if precision == "int8":
        import onnxruntime

        return {
            "name": "onnxruntime.quantization.quantize_static (QDQ, per-channel, symmetric int8)",
            "version": onnxruntime.__version__,
        }
    from importlib.metadata import version

    return {"name": "onnxconverter_common.float16 (keep_io_types)", "version": version("onnxconverter-common")}


def _environment(backend: str) -> dict[str, Any] | None:
    if backend != "tensorrt":
        return None
    from speech2vid.engine.tensorrt_backend import gpu_environment

    return gpu_environment()


def recipe(backend: str, precision: str, settings: Settings) -> dict[str, Any]:
    """The settings an engine's bytes depend on: a cached engine built with another recipe is rebuilt.

    (Opening an engine does not compare recipes: the ONNX Runtime threads or the cache folder of the
    running config do not make an engine wrong, and a deliberately different build is the user's.)
    """
    from speech2vid.build_engines.fp16 import FP32_OPS
    from speech2vid.build_engines.quantize import FP32_TAIL_OPS, int8_saturates

    if backend == "tensorrt":
        return {"tensorrt": to_dict(settings.engine.tensorrt), "batch": to_dict(settings.engine.batch)}
    if precision == "int8":
        return {
            "calib": to_dict(settings.calib),
            "qdq": "s8 symmetric, per-channel weights",
            "fp32_ops": list(FP32_TAIL_OPS),
            # an engine built on a machine whose INT8 kernels saturate is rebuilt on one whose do not, and back
            "seven_bit_weights": int8_saturates(),
        }
    return {"fp32_ops": list(FP32_OPS)}


def _reusable(
    model: ModelIdentity,
    entry: EngineFile,
    opset: int,
    source_sha: str,
    env: dict[str, Any] | None,
    want: dict[str, Any],
) -> dict[str, Any] | None:
    try:
        manifest = check_engine(model, entry, opset=opset, source_sha256=source_sha, environment=env)
    except EngineRefused as exc:
        log.info("building %s: %s", entry.describe(), exc.kind if exc.kind != "missing" else "not built yet")
        return None
    if manifest.get("recipe") != want:
        log.info("rebuilding %s: it was built with other settings (%s)", entry.describe(), manifest.get("recipe"))
        return None
    return manifest


def build(
    model: ModelIdentity,
    settings: Settings,
    *,
    precision: str,
    backend: str,
    cache_dir: str | Path | None = None,
    force: bool = False,
) -> list[Built]:
    """Build (or reuse) both graphs' engines of ``model`` in ``precision`` for ``backend``.

    ``model`` is a ``model.ref.ModelRef`` (no PyTorch needed when its FP32 graphs exist) or a LoadedModel.
    """
    if precision not in ENGINE_PRECISIONS:
        raise EngineError(
            f"cannot build '{precision}' engines: choose one of {', '.join(ENGINE_PRECISIONS)} (bf16 runs on "
            "--backend torch)"
        )
    if backend not in ENGINE_BACKENDS:
        raise EngineError(f"cannot build engines for backend '{backend}': choose one of {', '.join(ENGINE_BACKENDS)}")
    if backend == "tensorrt":
        from speech2vid.engine.tensorrt_backend import require_tensorrt

        require_tensorrt()  # refuse before minutes of export and calibration
    if precision == "int8":
        from speech2vid.calib.data import calibration_files

        calibration_files(settings.calib)  # a mistyped --calib is one line before minutes of export
    root = cache_root(settings.engine, cache_dir)
    name = model.name
    opset = settings.engine.opset
    fp32 = ensure_fp32_export(
        model, settings.engine, root, force=force and backend == "onnxruntime" and precision == EXPORT_PRECISION
    )
    built: list[Built] = []
    if backend == "onnxruntime" and precision == EXPORT_PRECISION:
        for graph, export in fp32.items():  # the export is the engine
            exported = check_engine(model, export, opset=opset)
            built.append(
                Built(
                    name,
                    graph,
                    backend,
                    precision,
                    export.path,
                    export.path.stat().st_size,
                    float(exported.get("build_seconds") or 0.0),
                    True,
                )
            )
            log.info("%s %s graph: the FP32 ONNX Runtime engine is the export itself (%s)", name, graph, export.path)
        return built

    env = _environment(backend)
    # TensorRT needs the derived ONNX graph first where its build path parses one (Q/DQ, or FP16 on 11+).
    onnx_for_trt: dict[str, Path] = {g: e.path for g, e in fp32.items()}
    if backend == "tensorrt":
        from speech2vid.build_engines.tensorrt_build import build_path
        from speech2vid.engine.tensorrt_backend import require_tensorrt

        wanted = build_path(require_tensorrt(), precision).onnx_precision
        if wanted != EXPORT_PRECISION:
            for b in build(model, settings, precision=wanted, backend="onnxruntime", cache_dir=root, force=force):
                onnx_for_trt[b.graph] = b.path
                built.append(b)

    want = recipe(backend, precision, settings)
    todo: list[tuple[str, EngineFile, str]] = []  # (graph, where the engine goes, its FP32 source's sha256)
    for graph in GRAPHS:
        entry = cached_engine(model, graph, backend, precision, root)
        source_sha = check_engine(model, fp32[graph], opset=opset)["sha256"]
        manifest = None if force else _reusable(model, entry, opset, source_sha, env, want)
        if manifest is None:
            if force:
                log.info("rebuilding %s (forced)", entry.describe())
            todo.append((graph, entry, source_sha))
            continue
        log.info("reusing %s: %s (%.1f MB)", entry.describe(), entry.path, _mb(entry.path))
        built.append(
            Built(
                name,
                graph,
                backend,
                precision,
                entry.path,
                entry.path.stat().st_size,
                float(manifest.get("build_seconds", 0.0)),
                True,
            )
        )
    if not todo:
        return built

    # Read once and first: it imports ONNX Runtime, whose native module turns a Ctrl-C that lands during its
    # import into an ImportError; here that is before calibration starts, not in the middle of it.
    builder = _builder_info(backend, precision)
    made: list[tuple[EngineFile, EngineFile, float]] = []
    with staging(cache_folder(model, root)) as stage:
        feeds: dict[str, list[dict[str, Any]]] | None = None
        if backend == "onnxruntime" and precision == "int8":
            feeds = calibration_feeds(model, settings, fp32)
        for graph, entry, source_sha in todo:
            new = engine_file(model, graph, backend, precision, stage)
            t0 = time.perf_counter()
            make: Callable[[], Path]
            if feeds is not None:
                graph_feeds = feeds[graph]
                make = lambda: make_int8_graph(fp32[graph].path, new.path, graph_feeds, settings)  # noqa: E731
            elif backend == "onnxruntime":
                make = lambda: make_fp16_graph(fp32[graph].path, new.path)  # noqa: E731
            else:
                src = onnx_for_trt[graph]
                make = lambda: make_tensorrt_engine(src, new.path, graph, model, precision, settings, root)  # noqa: E731
            make()
            seconds = time.perf_counter() - t0
            config: dict[str, Any] = {"engine": to_dict(settings.engine)}
            if precision == "int8":
                config["calib"] = to_dict(settings.calib)
            if backend == "tensorrt":
                config["onnx"] = onnx_for_trt[graph].name
            write_manifest(
                model,
                new,
                opset=opset,
                source_sha256=source_sha,
                builder=builder,
                config=config,
                build_seconds=seconds,
                environment=env,
                recipe=want,
            )
            made.append((new, entry, seconds))
        install_engines([(new, entry) for new, entry, _ in made])
    for _, entry, seconds in made:
        log.info("built %s: %s (%.1f MB) in %.1f s", entry.describe(), entry.path, _mb(entry.path), seconds)
        built.append(
            Built(name, entry.graph, backend, precision, entry.path, entry.path.stat().st_size, seconds, False)
        )
    order = {graph: i for i, graph in enumerate(GRAPHS)}
    return sorted(
        built, key=lambda b: (b.backend == backend, order[b.graph])
    )  # TensorRT's ONNX graphs first, each in graph order


def format_built(rows: list[Built]) -> str:
    head = ("model", "graph", "backend", "precision", "MB", "build s", "", "file")
    lines = [
        (
            r.model,
            r.graph,
            r.backend,
            r.precision,
            f"{r.size_bytes / 1e6:.1f}",
            f"{r.build_seconds:.1f}",
            "reused" if r.reused else "built",
            str(r.path),
        )
        for r in rows
    ]
    return "\n".join(table_lines(head, lines))
