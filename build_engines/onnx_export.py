"""Export the two Speech2Vid graphs to ONNX, and keep them in a cache keyed by what invalidates them.

One function per conversion step, each logging what it made, how big it is and how long it took:

* :func:`export_onnx_program` - ``torch.export`` + translation to ONNX (the dynamo exporter);
* :func:`save_onnx` - one self-contained file, weights embedded (the graphs are far below protobuf's
  2 GB limit, and one file is simpler to hash, copy and hand to ``trtexec``);
* :func:`check_onnx` - ``onnx.checker`` (full check) and shape inference, then the declared tensors
  against ``io_spec``;
* :func:`export_graph` - the three above, written under a temporary name and renamed when complete;
* :func:`export_engines` - both graphs through the cache: ``<cache_dir>/<model>-<fingerprint[:12]>/``
  holds ``<graph>-fp32-opset<N>.onnx`` and a sidecar manifest ``<same>.json``.

Batch axes: every input/output has a dynamic batch axis ``N``, except the frame graph's identity
inputs, which get their own axis ``N_id``: the runtime encodes one identity (batch 1) and feeds it with
a batch of N audio windows; identity tensors of batch N also work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from speech2vid.config import BatchRange, EngineConfig
from speech2vid.errors import EngineError
from speech2vid.files import sha256_file, write_json_atomic
from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS, IDENTITY_FEATURES, IDENTITY_GRAPH, GraphSpec, graph_specs
from speech2vid.model.speech2vid import Speech2Vid
from speech2vid.model.weights import LoadedModel

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "speech2vid-onnx-1"
BATCH_AXIS = "N"
IDENTITY_BATCH_AXIS = "N_id"  # the frame graph's identity inputs: 1 (broadcast) or N
MIN_OPSET = 18  # the torch dynamo exporter's floor: asking for less leaves an opset-18 file (Pad has no down-adapter)
EXPORT_PRECISION = "fp32"  # fp16/int8 graphs are derived from this one by the engine builds


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

    def forward(
        self, mfcc: torch.Tensor, id_embedding: torch.Tensor, skip_a: torch.Tensor, skip_b: torch.Tensor, skip_c: torch.Tensor
    ) -> torch.Tensor:
        ident = (broadcast_batch(t, mfcc) for t in (id_embedding, skip_a, skip_b, skip_c))
        return self.frame_graph(mfcc, *ident)


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


def _axis(graph_name: str, tensor: str) -> str:
    return IDENTITY_BATCH_AXIS if graph_name == FRAME_GRAPH and tensor in IDENTITY_FEATURES else BATCH_AXIS


def export_onnx_program(model: Speech2Vid, graph_name: str, opset: int, batch: BatchRange) -> Any:
    """torch.export + ONNX translation of one graph -> ``torch.onnx.ONNXProgram`` (in memory)."""
    if opset < MIN_OPSET:
        raise EngineError(f"ONNX opset {opset} cannot be exported by torch {torch.__version__}: set engine.opset to {MIN_OPSET} or more")
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
    dynamic_shapes = tuple({0: dims[_axis(graph_name, t.name)]} for t in spec.inputs)
    t0 = time.perf_counter()
    with torch.no_grad(), _quiet_exporter_logs(), warnings.catch_warnings():
        # Known-harmless exporter noise: the four identity inputs share the axis N_id on purpose, and
        # torch.export's own use of a deprecated pytree API.
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
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
    if program is None:  # only the legacy exporter returns None
        raise EngineError(f"torch {torch.__version__} returned no ONNX program for the {graph_name} graph")
    nodes = len(program.model.graph)
    written = program.model.opset_imports.get("", None)
    if written != opset:
        raise EngineError(f"torch {torch.__version__} wrote ONNX opset {written} for the {graph_name} graph, asked for {opset}: set engine.opset to {written}")
    log.info("exported %s graph of '%s' to ONNX opset %d: %d nodes in %.1f s", graph_name, model.cfg.name, opset, nodes, time.perf_counter() - t0)
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
        raise EngineError(f"{path}: the exported ONNX graph is invalid ({first}); please report this as a bug") from None

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
        if dims[0] != _axis(spec.name, name):
            raise EngineError(f"{path}: '{name}' has batch axis {dims[0]!r}, expected the dynamic axis '{_axis(spec.name, name)}'; please report this as a bug")
    log.info("checked %s: onnx.checker full check and shape inference ok in %.1f s", path.name, time.perf_counter() - t0)


def export_graph(model: Speech2Vid, graph_name: str, path: str | Path, opset: int, batch: BatchRange) -> Path:
    """Export one graph to ``path``; the file appears only once it is complete and checked.

    It is written and checked under a temporary name in the same folder, then renamed (atomic on one
    file system), so an interrupted export never leaves a file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    t0 = time.perf_counter()
    try:
        program = export_onnx_program(model, graph_name, opset, batch)
        save_onnx(program, tmp)
        check_onnx(tmp, graph_specs(model.cfg)[graph_name])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s graph ready: %s (%.1f MB, %.1f s in all)", graph_name, path, path.stat().st_size / 1e6, time.perf_counter() - t0)
    return path


# ----------------------------------------------------------------------------- cache


def _versions() -> dict[str, str]:
    import onnx

    return {"torch": torch.__version__, "onnx": onnx.__version__}


def _spec_json(spec: GraphSpec) -> dict[str, list[dict[str, Any]]]:
    def one(t: Any) -> dict[str, Any]:
        shape = [_axis(spec.name, t.name) if d == -1 else d for d in t.shape]
        return {"name": t.name, "shape": shape, "dtype": np.dtype(t.dtype).name}

    return {"inputs": [one(t) for t in spec.inputs], "outputs": [one(t) for t in spec.outputs]}


@dataclass(frozen=True)
class CachedGraph:
    """Where one exported graph lives and the manifest it must carry to be reused."""

    graph: str
    onnx_path: Path
    manifest_path: Path
    expected: dict[str, Any]  # the manifest fields that must match (everything but sha256/size/created)


def cache_folder(loaded: LoadedModel, cache_dir: str | Path) -> Path:
    return Path(cache_dir).expanduser() / f"{loaded.model.cfg.name}-{loaded.fingerprint[:12]}"


def cached_graph(loaded: LoadedModel, graph_name: str, opset: int, cache_dir: str | Path) -> CachedGraph:
    stem = f"{graph_name}-{EXPORT_PRECISION}-opset{opset}"
    folder = cache_folder(loaded, cache_dir)
    expected = {
        "format": MANIFEST_FORMAT,
        "graph": graph_name,
        "model": loaded.model.cfg.name,
        "fingerprint": loaded.fingerprint,  # config + weights content: the weights' path does not matter
        "precision": EXPORT_PRECISION,
        "opset": opset,
        **_versions(),
        **_spec_json(graph_specs(loaded.model.cfg)[graph_name]),
    }
    return CachedGraph(graph_name, folder / f"{stem}.onnx", folder / f"{stem}.json", expected)


def stale_reason(entry: CachedGraph) -> str | None:
    """Why the cached export cannot be reused, or None when its manifest and sha256 both match."""
    if not entry.manifest_path.is_file():
        return "no manifest (never exported, or an export was interrupted)"
    if not entry.onnx_path.is_file():
        return "the ONNX file is missing"
    try:
        manifest = json.loads(entry.manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "the manifest is unreadable"
    if not isinstance(manifest, dict):
        return "the manifest is not a JSON object"
    for key, want in entry.expected.items():
        if manifest.get(key) != want:
            return f"manifest '{key}' is {manifest.get(key)!r}, expected {want!r}"
    sha = sha256_file(entry.onnx_path)
    if manifest.get("sha256") != sha:
        return "the ONNX file's sha256 differs from its manifest (the file changed after export)"
    return None


def write_manifest(entry: CachedGraph, loaded: LoadedModel, export_seconds: float | None = None) -> Path:
    """The sidecar JSON, written after the ONNX file is in place (atomically, like the ONNX)."""
    manifest = {
        "export_seconds": None if export_seconds is None else round(export_seconds, 3),
        **entry.expected,
        "weights": loaded.source,
        "random_weights": loaded.is_random,
        "file": entry.onnx_path.name,
        "sha256": sha256_file(entry.onnx_path),
        "size_bytes": entry.onnx_path.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(entry.manifest_path, manifest)
    log.info("wrote manifest %s (sha256 %s)", entry.manifest_path, manifest["sha256"][:12])
    return entry.manifest_path


def export_engines(loaded: LoadedModel, settings: EngineConfig, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """Both graphs of ``loaded`` as FP32 ONNX files, from the cache when valid: {graph name: path}.

    ``cache_dir`` defaults to ``settings.cache_dir``. A cached export is reused only when its manifest
    matches (model fingerprint, opset, torch/onnx versions, tensor specs) and the file's sha256 matches
    the manifest; otherwise it is exported again and the reason logged.
    """
    root = Path(cache_dir if cache_dir is not None else settings.cache_dir).expanduser()
    paths: dict[str, Path] = {}
    for graph_name in GRAPHS:
        entry = cached_graph(loaded, graph_name, settings.opset, root)
        reason = stale_reason(entry)
        if reason is None:
            log.info("reusing cached %s graph %s", graph_name, entry.onnx_path)
        else:
            log.info("exporting %s graph of '%s': %s", graph_name, loaded.model.cfg.name, reason)
            # Drop the old manifest first: from here until the new one is written the entry is incomplete.
            entry.manifest_path.unlink(missing_ok=True)
            t0 = time.perf_counter()
            export_graph(loaded.model, graph_name, entry.onnx_path, settings.opset, settings.batch)
            write_manifest(entry, loaded, time.perf_counter() - t0)
        paths[graph_name] = entry.onnx_path
    return paths
