"""ONNX Runtime backend: one ONNX file (one graph) behind the Runner life cycle.

``onnxruntime`` is imported only here, when a runner opens, so the package imports without it.

Execution providers: CPU always; CUDA too when ``device == 'cuda'``. Asking for CUDA where ONNX
Runtime has no CUDA provider is an error, never a silent CPU run: ONNX Runtime itself drops a provider
that fails to load with only a warning, so the providers the session really got are checked too.
The TensorRT execution provider is deliberately not used: it builds engines on the first inference,
outside our engine cache and manifests; TensorRT is the ``tensorrt`` backend's job.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from speech2vid.config import OnnxRuntimeConfig
from speech2vid.engine.base import Feeds, Outputs, Runner, check_declared
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import GraphSpec

log = logging.getLogger(__name__)

CPU_EP, CUDA_EP = "CPUExecutionProvider", "CUDAExecutionProvider"

# ONNX tensor element types as ONNX Runtime names them -> numpy.
ORT_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        cause: BaseException | None = exc
        while cause is not None:  # Ctrl-C while the native module loads surfaces as an ImportError
            if isinstance(cause, KeyboardInterrupt):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise EngineError("the onnxruntime backend needs the onnxruntime package: pip install onnxruntime") from None
    return onnxruntime


def _ort_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """ONNX Runtime's exception classes: they share no base class but Exception."""
    state = ort.capi.onnxruntime_pybind11_state
    return tuple(v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception)) or (RuntimeError,)


def providers_for(device: str) -> list[str]:
    """The execution providers for ``device``, refusing one ONNX Runtime cannot provide."""
    ort = _ort()
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU_EP]
    if device == "cuda":
        if CUDA_EP not in available:
            raise EngineError(
                f"device 'cuda' was asked for the onnxruntime backend but onnxruntime {ort.__version__} has no"
                f" CUDA provider (it has {', '.join(available)}): install onnxruntime-gpu, or use --device cpu"
            )
        return [CUDA_EP, CPU_EP]  # CPU stays as ONNX Runtime's home for the few ops CUDA lacks
    raise EngineError(f"unknown device '{device}' for the onnxruntime backend: use cpu or cuda")


def session_options(cfg: OnnxRuntimeConfig) -> Any:
    ort = _ort()
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[cfg.graph_optimization]
    opts.intra_op_num_threads = cfg.intra_op_threads
    opts.inter_op_num_threads = cfg.inter_op_threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if cfg.spin else "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # two chains of convs: nothing to run in parallel
    return opts


class OnnxRuntimeRunner(Runner):
    """One ONNX file run by an ``onnxruntime.InferenceSession``."""

    backend = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        spec: GraphSpec,
        *,
        device: str = "cpu",
        options: OnnxRuntimeConfig | None = None,
        precision: str = "fp32",
        precheck: Callable[[], object] | None = None,
    ):
        """``precision`` labels the graph (fp32, fp16 or the int8 Q/DQ graph); ``precheck`` (the engine
        manifest check of ``engine.cache``) runs before the file is loaded."""
        super().__init__(spec)
        self.path = Path(path)
        self.device_name = device
        self.precision = precision
        self._precheck = precheck
        self.options = options or OnnxRuntimeConfig()
        self.providers: list[str] = []
        self._session: Any = None
        self._output_names: list[str] = []

    def describe(self) -> str:
        return f"onnxruntime {self.spec.name} graph ({self.device_name}, {self.precision}, {self.path.name})"

    def _open(self) -> None:
        ort = _ort()
        t0 = time.perf_counter()
        if self._precheck is not None:
            self._precheck()
        if not self.path.is_file():
            raise EngineError(f"ONNX file not found: {self.path} (export it with `speech2vid build`)")
        wanted = providers_for(self.device_name)
        try:
            session = ort.InferenceSession(str(self.path), sess_options=session_options(self.options), providers=wanted)
        except _ort_errors(ort) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise EngineError(
                f"{self.path} is not a usable ONNX model ({first}); delete it and export again with `speech2vid build`"
            ) from None
        used = session.get_providers()
        if wanted[0] not in used:
            raise EngineError(
                f"{self.path}: onnxruntime could not start {wanted[0]} (got {', '.join(used)}):"
                " check the CUDA/cuDNN install, or use --device cpu"
            )

        def declared(values: Any) -> dict[str, tuple[tuple[int | str | None, ...], np.dtype]]:
            return {v.name: (tuple(v.shape), ORT_DTYPES.get(v.type, np.dtype(object))) for v in values}

        check_declared(self.spec, declared(session.get_inputs()), declared(session.get_outputs()), str(self.path))
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]
        self.providers = used
        log.info(
            "opened %s with %s (optimisation %s, intra-op threads %s) in %.2f s",
            self.describe(),
            ", ".join(used),
            self.options.graph_optimization,
            self.options.intra_op_threads or "auto",
            time.perf_counter() - t0,
        )

    def _close(self) -> None:
        self._session = None

    def infer(self, feeds: Feeds) -> Outputs:
        session = self._session
        if session is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        return dict(zip(self._output_names, session.run(self._output_names, dict(feeds))))
