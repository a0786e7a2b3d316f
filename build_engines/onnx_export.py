"""Export the two Speech2Vid graphs to ONNX (PyTorch's dynamo exporter): the FP32 graphs every engine
derives from. The only module of ``build_engines`` that imports PyTorch.

One function per conversion step, each logging what it made, how big it is and how long it took:

* :func:`export_onnx_program` - ``torch.export`` + translation to ONNX (the dynamo exporter);
* :func:`save_onnx` - one self-contained file, weights embedded (the graphs are far below protobuf's
  2 GB limit, and one file is simpler to hash, copy and hand to ``trtexec``);
* :func:`check_onnx` - ``onnx.checker`` (full check) and shape inference, then the declared tensors
  against ``io_spec``;
* :func:`export_graph` - the three above, written under a temporary name and renamed when complete;
* :func:`export_fp32` - both graphs into the engine cache (``engine.cache``: layout and manifest), reused
  when valid; :func:`export_bundled_graphs` - the same into the package, for the default weights. A
  re-export is written beside the graphs it replaces and swapped in when both are complete, so an
  interrupted one leaves the old graphs valid.

Batch axes: every input/output has a dynamic batch axis ``N``, except the frame graph's identity
inputs, which get their own axis ``N_id``: the runtime encodes one identity (batch 1) and feeds it with
a batch of N audio windows; identity tensors of batch N also work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from speech2vid.config import BatchRange, EngineConfig
from speech2vid.engine.cache import (
    BATCH_AXIS,
    EXPORT_BACKEND,
    EXPORT_PRECISION,
    IDENTITY_BATCH_AXIS,
    EngineFile,
    EngineRefused,
    ModelIdentity,
    axis_name,
    cache_folder,
    check_engine,
    engine_file,
    install_engines,
    shipped_folder,
    staging,
    writable_folder,
    write_manifest,
)
from speech2vid.errors import EngineError
from speech2vid.files import atomic_path
from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS, IDENTITY_GRAPH, GraphSpec, graph_specs
from speech2vid.model.speech2vid import Speech2Vid
from speech2vid.model.weights import LoadedModel

log = logging.getLogger(__name__)

__all__ = ["BATCH_AXIS", "IDENTITY_BATCH_AXIS", "check_onnx", "export_bundled_graphs", "export_fp32", "export_graph"]

MIN_OPSET = 18  # the torch dynamo exporter's floor: asking for less leaves an opset-18 file (Pad has no down-adapter)


# ----------------------------------------------------------------------------- broadcast op
# The decoder broadcasts identity tensors of batch 1 over N windows with ``Tensor.expand``. torch.export
# cannot keep "M is 1 or N" symbolic: it specialises M to the example value or to M == N. This opaque
# op hides the broadcast from torch.export (its fake kernel says "batch of ``like``") and is written
# to ONNX as a plain Expand, whose numpy broadcasting accepts both batch 1 and batch N.


@torch.library.custom_op("speech2vid::broadcast_batch", mutates_args=())
def broadcast_batch(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` (1 or N, ...) broadcast to the batch of ``like`` (N, ...)."""
    return x.expand(like.shape[0], *x.shape[1:]).clone()  # custom ops may not return views of inputs


@broadcast_batch.register_fake
def _broadcast_batch_fake(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.new_empty((like.shape[0], *x.shape[1:]))


def _broadcast_batch_onnx(x: Any, like: Any) -> Any:
    from onnxscript import opset18 as op  # Shape(start, end) needs opset >= 15; 18 is our floor

    batch = op.Shape(like, start=0, end=1)
    rest = op.Shape(x, start=1)
    return op.Expand(x, op.Concat(batch, rest, axis=0))


class _ExportFrameGraph(nn.Module):
    """``FrameGraph`` with the identity inputs broadcast by :func:`broadcast_batch` before the decoder."""

    def __init__(self, frame_graph: nn.Module):
        super().__init__()
        self.frame_graph = frame_graph

    def forward(self, mfcc: torch.Tensor, *identity: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        # The identity tensors in io_spec's order, however many the model has (graph_specs decides); the
        # outputs too (the frame, and the warp head's motion).
        out: torch.Tensor | tuple[torch.Tensor, ...] = self.frame_graph(
            mfcc, *(broadcast_batch(t, mfcc) for t in identity)
        )
        return out


# ----------------------------------------------------------------------------- steps


@contextlib.contextmanager
def _quiet_exporter_logs() -> Iterator[None]:
    """The exporter's optimiser logs every pass at INFO, and its op registry warns that torchvision's ops
    (which this model does not use) are missing; keep our own log readable while it runs."""
    names = ("onnxscript", "onnx_ir", "torch.onnx._internal.exporter._registration")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg, name in zip(loggers, names):
        floor = logging.ERROR if name.endswith("_registration") else logging.WARNING
        lg.setLevel(max(lg.getEffectiveLevel(), floor))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def graph_module(model: Speech2Vid, graph_name: str) -> nn.Module:
    """The module to export for ``graph_name``, in eval mode."""
    if graph_name == IDENTITY_GRAPH:
        return model.identity_graph().eval()
    if graph_name == FRAME_GRAPH:
        return _ExportFrameGraph(model.frame_graph()).eval()
    raise EngineError(f"unknown graph '{graph_name}': choose one of {', '.join(GRAPHS)}")


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (Ctrl-C, or the CLI's SIGTERM) in ``exc``'s chain of causes, if any.

    The exporter catches every Exception of its capture strategies and raises its own error from the
    first: a Ctrl-C that lands inside one (e.g. while ``torch.export`` imports ``torch._dynamo``) turns
    into an import error wrapped in TorchExportError, and the user's interrupt into a long traceback.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt):
            return e
        todo += [e.__cause__, e.__context__]
    return None


def export_onnx_program(model: Speech2Vid, graph_name: str, opset: int, batch: BatchRange) -> Any:
    """torch.export + ONNX translation of one graph -> ``torch.onnx.ONNXProgram`` (in memory)."""
    if opset < MIN_OPSET:
        raise EngineError(
            f"ONNX opset {opset} cannot be exported by torch {torch.__version__}: set engine.opset to {MIN_OPSET} or "
            "more"
        )
    spec = graph_specs(model.cfg)[graph_name]
    module = graph_module(model, graph_name)
    # torch.export specialises a dynamic dim whose example is 0 or 1, so the example batch is >= 2.
    example_batch = 2
    upper = max(batch.max, example_batch)
    dims = {
        BATCH_AXIS: torch.export.Dim(BATCH_AXIS, min=1, max=upper),
        IDENTITY_BATCH_AXIS: torch.export.Dim(IDENTITY_BATCH_AXIS, min=1, max=upper),
    }
    gen = torch.Generator().manual_seed(0)
    args = tuple(torch.rand((example_batch, *t.shape[1:]), generator=gen) for t in spec.inputs)
    dynamic_shapes: tuple[Any, ...] = tuple({0: dims[axis_name(graph_name, t.name, spec)]} for t in spec.inputs)
    if graph_name == FRAME_GRAPH:  # forward(mfcc, *identity): torch.export binds the identity tensors as one tuple
        dynamic_shapes = (dynamic_shapes[0], dynamic_shapes[1:])
    t0 = time.perf_counter()
    with torch.no_grad(), _quiet_exporter_logs(), warnings.catch_warnings():
        # Known-harmless exporter noise: the four identity inputs share the axis N_id on purpose, and
        # torch.export's own use of a deprecated pytree API.
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
        try:
            program = torch.onnx.export(
                module,
                args,
                input_names=[t.name for t in spec.inputs],
                output_names=[t.name for t in spec.outputs],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                custom_translation_table={torch.ops.speech2vid.broadcast_batch.default: _broadcast_batch_onnx},
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            interrupt = _interrupt_in(exc)
            if interrupt is not None:
                raise interrupt.with_traceback(None) from None
            raise
    if program is None:  # only the legacy exporter returns None
        raise EngineError(f"torch {torch.__version__} returned no ONNX program for the {graph_name} graph")
    nodes = len(program.model.graph)
    written = program.model.opset_imports.get("", None)
    if written != opset:
        raise EngineError(
            f"torch {torch.__version__} wrote ONNX opset {written} for the {graph_name} graph, asked for {opset}: set "
            f"engine.opset to {written}"
        )
    log.info(
        "exported %s graph of '%s' to ONNX opset %d: %d nodes in %.1f s",
        graph_name,
        model.cfg.name,
        opset,
        nodes,
        time.perf_counter() - t0,
    )
    return program


def save_onnx(program: Any, path: Path) -> Path:
    """Write ``program`` to ``path`` as one file with the weights embedded."""
    t0 = time.perf_counter()
    program.save(path, external_data=False)
    log.info("wrote %s (%.1f MB) in %.1f s", path, path.stat().st_size / 1e6, time.perf_counter() - t0)
    return path


def check_onnx(path: Path, spec: GraphSpec) -> None:
    """onnx.checker (full check), shape inference, then the declared tensors against ``spec``."""
    import onnx

    from speech2vid.engine.base import check_declared

    t0 = time.perf_counter()
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise EngineError(
            f"{path}: the exported ONNX graph is invalid ({first}); please report this as a bug"
        ) from None

    def declared(values: Any) -> dict[str, tuple[tuple[int | str, ...], np.dtype]]:
        out = {}
        for v in values:
            t = v.type.tensor_type
            dims = tuple(d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim)
            out[v.name] = (dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)))
        return out

    inputs, outputs = declared(inferred.graph.input), declared(inferred.graph.output)
    check_declared(spec, inputs, outputs, str(path))
    for name, (dims, _) in {**inputs, **outputs}.items():
        # check_declared lets a fixed batch pass (-1 matches anything): the export must keep it dynamic.
        want = axis_name(spec.name, name, spec)
        if dims[0] != want:
            raise EngineError(
                f"{path}: '{name}' has batch axis {dims[0]!r}, expected the dynamic axis '{want}'; please report this "
                "as a bug"
            )
    log.info(
        "checked %s: onnx.checker full check and shape inference ok in %.1f s", path.name, time.perf_counter() - t0
    )


def export_graph(model: Speech2Vid, graph_name: str, path: str | Path, opset: int, batch: BatchRange) -> Path:
    """Export one graph to ``path``; the file appears only once it is complete and checked.

    It is written and checked under a temporary name in the same folder, then renamed (atomic on one
    file system), so an interrupted export never leaves a file under the final name.
    """
    path = Path(path)
    writable_folder(path.parent)
    t0 = time.perf_counter()
    with atomic_path(path, ".onnx") as tmp:
        program = export_onnx_program(model, graph_name, opset, batch)
        save_onnx(program, tmp)
        check_onnx(tmp, graph_specs(model.cfg)[graph_name])
    log.info(
        "%s graph ready: %s (%.1f MB, %.1f s in all)",
        graph_name,
        path,
        path.stat().st_size / 1e6,
        time.perf_counter() - t0,
    )
    return path


# ----------------------------------------------------------------------------- into the cache


def _builder() -> dict[str, str]:
    import onnx

    return {"name": "torch.onnx.export (dynamo)", "version": f"torch {torch.__version__}, onnx {onnx.__version__}"}


def _export_into(
    loaded: LoadedModel,
    ref: ModelIdentity,
    folder: Path,
    settings: EngineConfig,
    *,
    force: bool,
    weights_sha256: str | None,
) -> dict[str, EngineFile]:
    out = {graph_name: engine_file(ref, graph_name, EXPORT_BACKEND, EXPORT_PRECISION, folder) for graph_name in GRAPHS}
    todo = []
    for graph_name, entry in out.items():
        try:
            if force:
                raise EngineRefused("forced", "export forced")
            check_engine(ref, entry, opset=settings.opset)
            log.info("reusing the %s graph's FP32 export %s", graph_name, entry.path)
        except EngineRefused as exc:
            log.info("exporting the %s graph of '%s': %s", graph_name, ref.name, exc.kind)
            todo.append(graph_name)
    if not todo:
        return out
    with staging(folder) as stage:
        staged = []
        for graph_name in todo:
            new = engine_file(ref, graph_name, EXPORT_BACKEND, EXPORT_PRECISION, stage)
            t0 = time.perf_counter()
            export_graph(loaded.model, graph_name, new.path, settings.opset, settings.batch)
            write_manifest(
                ref,
                new,
                opset=settings.opset,
                source_sha256=None,
                builder=_builder(),
                build_seconds=time.perf_counter() - t0,
                config={"batch": dataclasses.asdict(settings.batch)},
                weights_sha256=weights_sha256,
            )
            staged.append((new, out[graph_name]))
        install_engines(staged)
    return out


def export_fp32(
    loaded: LoadedModel, settings: EngineConfig, root: str | Path, *, force: bool = False
) -> dict[str, EngineFile]:
    """Both FP32 graphs of ``loaded`` in the engine cache under ``root``: {graph name: engine file}.

    A cached export is reused when its manifest matches (model fingerprint, opset, tensor specs) and
    the file's sha256 matches the manifest; otherwise it is exported again and the reason logged.
    """
    from speech2vid.model.ref import model_ref

    ref = model_ref(loaded.cfg, loaded.source)
    return _export_into(loaded, ref, cache_folder(ref, root), settings, force=force, weights_sha256=ref.weights_sha256)


def export_bundled_graphs(model_name: str, settings: EngineConfig) -> dict[str, EngineFile]:
    """Re-export the FP32 graphs the package ships for ``model_name`` from its bundled weights
    (``speech2vid export --default``): run it whenever the default weights or the model change."""
    from speech2vid.config import load_model_config
    from speech2vid.model.ref import bundled_weights, model_ref
    from speech2vid.model.weights import load_model

    cfg = load_model_config(model_name)
    weights = bundled_weights(cfg.name)
    if weights is None:
        raise EngineError(f"model '{cfg.name}' has no bundled weights, so no graphs to ship")
    ref = model_ref(cfg, weights)
    # The manifest names the weights by file name: the package is installed anywhere.
    shipped_ref = dataclasses.replace(ref, source=weights.name)
    folder = shipped_folder(cfg.name)
    return _export_into(
        load_model(cfg, weights), shipped_ref, folder, settings, force=True, weights_sha256=ref.weights_sha256
    )
