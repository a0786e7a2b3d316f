"""``speech2vid verify``: every built engine against the FP32 reference, on the calibration inputs.

The reference is the PyTorch FP32 model when PyTorch is installed (the ``[train]`` extra), else the
FP32 ONNX export run by ONNX Runtime (the graph every engine is derived from; then the FP32 ONNX Runtime
engine is the reference itself and is not listed). Before any number is compared, each ONNX engine's
graph is checked for the precision it claims (:func:`graph_precision`): Q/DQ nodes for INT8, FP16
initialisers for FP16. The manifest's sha256 proves a file is the one that was recorded, not what it
is: an FP32 graph recorded as "int8" would otherwise pass the INT8 tolerances.

For each engine (backend x precision) both graphs are compared with PyTorch on the same inputs: the
identity graph on the calibration faces, the frame graph on the calibration MFCC windows with the
*reference* identity tensors (so each graph's own error is measured, not the identity graph's error
carried through). Per output tensor:

* ``max_abs``: the largest absolute difference;
* ``cosine``: cosine similarity of the flattened outputs;
* ``psnr_db``: 10 log10(peak^2 / MSE) with peak 1 for frames (RGB in [0, 1], the usual image PSNR)
  and the reference's largest magnitude for the identity tensors;
* ``snr_db``: 10 log10(var(reference) / MSE): the error against the output's own variation.

Why SNR as well as PSNR: PSNR measures the error against the full [0, 1] range, so an output that
hardly varies makes it look excellent whatever the engine does. That is exactly the case with the
untrained (random) weights this project has so far: the decoder has no BatchNorm, PyTorch's default
initialisation shrinks activations layer by layer, and every frame is close to a flat 0.49-0.65 (its
std over the image is 0.035, over different audio windows 3e-6). SNR compares the error with the
variation the output really has, so it stays meaningful for random weights and trained ones alike.

Pass/fail per precision (:data:`TOLERANCES`): the frame criterion of the engines issue (FP32 max abs
error < 1e-3; FP16 PSNR > 40 dB; INT8 PSNR > 30 dB) **and** an SNR floor on every output of both graphs.
Each floor is 3 dB below the SNR that one single rounding at that precision gives on the flattest output
this project has (the paper model's frame with random weights: std 0.012 around 0.5-0.65), because no
correct engine can beat one rounding of its own output: SNR_1 = 10 log10(12 var / step^2), with step
2^-11 x 0.65 for FP16 (38.6 dB) and 0.65 / 127 for symmetric INT8 (18.0 dB). FP32 kernels differ by
reassociation only: 60 dB is a generous floor. A broken engine (wrong weights, a wrong layer, a scale
off) lands near 0 dB or below. docs/engines.md has the measurements.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from speech2vid.config import ENGINE_PRECISIONS, Settings
from speech2vid.engine.cache import MISSING, EngineFile, EngineRefused, ModelIdentity, cache_root, cached_engine
from speech2vid.engine.factory import torch_installed
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import FRAME, FRAME_GRAPH, GRAPHS, IDENTITY_GRAPH, graph_specs
from speech2vid.text_table import table_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tolerance:
    frame_max_abs: float | None  # frame output: max abs error below this
    frame_psnr_db: float | None  # frame output: PSNR (peak 1) above this
    snr_db: float  # every output of both graphs: SNR above this


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(frame_max_abs=1e-3, frame_psnr_db=None, snr_db=60.0),
    "fp16": Tolerance(frame_max_abs=None, frame_psnr_db=40.0, snr_db=35.0),
    "int8": Tolerance(frame_max_abs=None, frame_psnr_db=30.0, snr_db=15.0),
}


@dataclass(frozen=True)
class Metric:
    graph: str
    output: str
    max_abs: float
    cosine: float
    psnr_db: float
    snr_db: float


@dataclass(frozen=True)
class EngineCheck:
    """One engine's verdict: its metrics, and why it failed (empty when it passed)."""

    model: str
    backend: str
    precision: str
    metrics: tuple[Metric, ...]
    failures: tuple[str, ...]
    samples: int

    @property
    def passed(self) -> bool:
        return not self.failures


def _db(num: float, den: float) -> float:
    if den <= 0:
        return math.inf
    return 10.0 * math.log10(num / den) if num > 0 else -math.inf


def compare(reference: np.ndarray, got: np.ndarray, peak: float) -> tuple[float, float, float, float]:
    """(max_abs, cosine, psnr_db, snr_db) of ``got`` against ``reference`` (float64 math)."""
    ref = reference.astype(np.float64).ravel()
    out = got.astype(np.float64).ravel()
    diff = out - ref
    mse = float(np.mean(diff * diff))
    norm = float(np.linalg.norm(ref) * np.linalg.norm(out))
    cosine = float(np.dot(ref, out) / norm) if norm > 0 else (1.0 if not np.any(diff) else 0.0)
    return float(np.abs(diff).max()), cosine, _db(peak * peak, mse), _db(float(np.var(ref)), mse)


def judge(precision: str, metrics: Sequence[Metric]) -> tuple[str, ...]:
    """The failed criteria of ``precision``'s tolerance, one line each."""
    tol = TOLERANCES[precision]
    fails = []
    for m in metrics:
        if m.output == FRAME and tol.frame_max_abs is not None and not m.max_abs < tol.frame_max_abs:
            fails.append(f"frame max abs error {m.max_abs:.2e} >= {tol.frame_max_abs:.0e}")
        if m.output == FRAME and tol.frame_psnr_db is not None and not m.psnr_db > tol.frame_psnr_db:
            fails.append(f"frame PSNR {m.psnr_db:.1f} dB <= {tol.frame_psnr_db:.0f} dB")
        if not m.snr_db > tol.snr_db:
            fails.append(f"{m.graph}/{m.output} SNR {m.snr_db:.1f} dB <= {tol.snr_db:.0f} dB")
    return tuple(fails)


def _batched(runner: Any, feeds: Sequence[Mapping[str, np.ndarray]], batch: int) -> dict[str, np.ndarray]:
    """Run ``feeds`` (batch 1 each) through ``runner`` in batches of ``batch``; outputs concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(feeds), batch):
        chunk = feeds[i : i + batch]
        joined = {k: np.ascontiguousarray(np.concatenate([f[k] for f in chunk])) for k in chunk[0]}
        for k, v in runner.infer(joined).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def graph_precision(path: Path) -> str:
    """The precision an ONNX graph really computes in: ``int8`` when it holds Q/DQ node pairs, ``fp16``
    when most of its floating-point weights are FP16, else ``fp32``. Reads the file, trusts no manifest."""
    import onnx

    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} <= ops:
        return "int8"
    sizes = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.FLOAT16: 0}
    for t in graph.initializer:
        if t.data_type in sizes:
            sizes[t.data_type] += int(np.prod(t.dims)) if len(t.dims) else 1
    return "fp16" if sizes[onnx.TensorProto.FLOAT16] > sizes[onnx.TensorProto.FLOAT] else "fp32"


def precision_failure(entry: EngineFile) -> str | None:
    """Why ``entry``'s graph is not the precision its manifest says (None: it is, or it is not ONNX)."""
    if entry.backend != "onnxruntime" or not entry.path.is_file():
        return None  # a TensorRT plan is opaque; its source graph is checked as its own engine
    actual = graph_precision(entry.path)
    if actual != entry.precision:
        return f"{entry.path.name} is recorded as {entry.precision} but its graph computes in {actual}"
    return None


def _reference_runners(
    model: ModelIdentity, settings: Settings, fp32: Mapping[str, EngineFile]
) -> tuple[Any, Any, str]:
    """(identity runner, frame runner, what they are): PyTorch FP32 when installed, else the FP32 ONNX export."""
    if torch_installed():
        from speech2vid.build_engines.build import loaded_model
        from speech2vid.engine.torch_backend import torch_runners

        identity, frame = torch_runners(loaded_model(model).model, graph_specs(model.cfg))
        return identity, frame, "PyTorch FP32"
    from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner

    specs = graph_specs(model.cfg)
    runners = [
        OnnxRuntimeRunner(fp32[g].path, specs[g], device="cpu", options=settings.engine.onnxruntime) for g in GRAPHS
    ]
    return runners[0], runners[1], "the FP32 ONNX graph (ONNX Runtime; PyTorch is not installed)"


def _references(
    identity: Any, frame: Any, feeds: Mapping[str, list[dict[str, np.ndarray]]], batch: int
) -> dict[str, dict[str, np.ndarray]]:
    with identity, frame:
        return {
            IDENTITY_GRAPH: _batched(identity, feeds[IDENTITY_GRAPH], batch),
            FRAME_GRAPH: _batched(frame, feeds[FRAME_GRAPH], batch),
        }


def verify_engine(
    model: ModelIdentity,
    engine: Any,
    precision: str,
    backend: str,
    feeds: Mapping[str, list[dict[str, np.ndarray]]],
    refs: Mapping[str, Mapping[str, np.ndarray]],
    batch: int,
) -> EngineCheck:
    """Compare one opened TalkingFaceEngine's two runners with the references."""
    metrics = []
    for graph, runner in ((IDENTITY_GRAPH, engine.identity_runner), (FRAME_GRAPH, engine.frame_runner)):
        got = _batched(runner, feeds[graph], batch)
        for name, ref in refs[graph].items():
            peak = 1.0 if name == FRAME else float(np.abs(ref).max())
            metrics.append(Metric(graph, name, *compare(ref, got[name], peak)))
    n = len(feeds[FRAME_GRAPH])
    return EngineCheck(model.name, backend, precision, tuple(metrics), judge(precision, metrics), n)


def verify(
    model: ModelIdentity,
    settings: Settings,
    *,
    backends: Sequence[str],
    precisions: Sequence[str] = ENGINE_PRECISIONS,
    cache_dir: str | Path | None = None,
) -> tuple[list[EngineCheck], list[str], str]:
    """Verify every built engine of ``model``; returns (checks, notes on engines not built, the reference).

    A missing engine is a note (build it to verify it); a refused one (corrupt, foreign, stale) or one
    whose graph is not the precision it claims is a failed check, because an engine in the cache that
    cannot be used as recorded is a problem to fix.
    """
    from speech2vid.build_engines.build import calibration_feeds, ensure_fp32_export
    from speech2vid.engine.factory import make_engine

    batch = settings.engine.batch.opt
    root = cache_root(settings.engine, cache_dir)
    fp32 = ensure_fp32_export(model, settings.engine, root)
    feeds = calibration_feeds(model, settings, fp32)
    identity, frame, reference = _reference_runners(model, settings, fp32)
    refs = _references(identity, frame, feeds, batch)
    checks: list[EngineCheck] = []
    notes: list[str] = []
    for backend in backends:
        device = "cuda" if backend == "tensorrt" else settings.engine.device
        for precision in precisions:
            if backend == "onnxruntime" and precision == "fp32" and not torch_installed():
                notes.append(
                    "onnxruntime fp32: it is the reference itself (install PyTorch to check it against the model)"
                )
                continue
            try:
                engine = make_engine(
                    model, settings.engine, backend=backend, device=device, precision=precision, cache_dir=cache_dir
                )
                wrong = [
                    f
                    for f in (precision_failure(cached_engine(model, g, backend, precision, root)) for g in GRAPHS)
                    if f is not None and precision != "fp32"
                ]
                if wrong:
                    check = EngineCheck(model.name, backend, precision, (), tuple(wrong), 0)
                else:
                    with engine:
                        check = verify_engine(model, engine, precision, backend, feeds, refs, batch)
            except EngineRefused as exc:
                if exc.kind == MISSING:
                    notes.append(f"{backend} {precision}: not built ({str(exc).split('; ')[-1]})")
                    continue
                check = EngineCheck(model.name, backend, precision, (), (str(exc),), 0)
            except EngineError as exc:
                notes.append(f"{backend} {precision}: cannot run here ({exc})")
                continue
            log.info(
                "%s %s %s: %s",
                check.model,
                backend,
                precision,
                "pass" if check.passed else "FAIL: " + "; ".join(check.failures),
            )
            checks.append(check)
    return checks, notes, reference


def format_checks(checks: Sequence[EngineCheck], random_weights: bool) -> str:
    head = ("model", "backend", "precision", "graph/output", "max abs", "cosine", "PSNR dB", "SNR dB", "verdict")
    rows = []
    for c in checks:
        verdict = "pass" if c.passed else "FAIL"
        if not c.metrics:
            rows.append((c.model, c.backend, c.precision, "-", "-", "-", "-", "-", f"FAIL: {c.failures[0]}"))
        for m in c.metrics:
            rows.append(
                (
                    c.model,
                    c.backend,
                    c.precision,
                    f"{m.graph}/{m.output}",
                    f"{m.max_abs:.2e}",
                    f"{m.cosine:.6f}",
                    f"{m.psnr_db:.1f}",
                    f"{m.snr_db:.1f}",
                    verdict,
                )
            )
    lines = table_lines(head, rows)
    tol = "; ".join(
        f"{p}: "
        + ", ".join(
            x
            for x in (
                f"frame max abs < {t.frame_max_abs:.0e}" if t.frame_max_abs is not None else "",
                f"frame PSNR > {t.frame_psnr_db:.0f} dB" if t.frame_psnr_db is not None else "",
                f"SNR > {t.snr_db:.0f} dB on every output",
            )
            if x
        )
        for p, t in TOLERANCES.items()
    )
    lines.append(f"tolerances: {tol}")
    for c in checks:
        for f in c.failures:
            lines.append(f"FAIL {c.model} {c.backend} {c.precision}: {f}")
    if random_weights:
        lines.append(
            "(random weights: frames barely vary, so frame PSNR says little; the SNR column is the test that bites)"
        )
    return "\n".join(lines)


def checks_json(checks: Sequence[EngineCheck]) -> list[dict[str, Any]]:
    return [{**asdict(c), "passed": c.passed} for c in checks]
