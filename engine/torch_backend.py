"""PyTorch backend: the model's own ``IdentityGraph`` / ``FrameGraph`` modules behind the Runner life cycle.

It is the reference every other backend is compared with, and the fallback that needs nothing but
PyTorch. Inputs and outputs stay float32 numpy at the interface whatever the precision; the cast to
bf16/fp16 happens on the device, inside :meth:`TorchRunner.infer`.

Precision is applied by converting a private copy of the module (``module.to(dtype)``), not autocast:
every op then runs in the asked precision (what a TensorRT engine does too), and the shared FP32
``LoadedModel`` other runners read is never touched.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from speech2vid.engine.base import N_SLOTS, Feeds, Outputs, Runner, check_declared
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import FRAME_GRAPH, IDENTITY_GRAPH, GraphSpec
from speech2vid.model.speech2vid import Speech2Vid

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEVICES = ("cpu", "cuda")


def require_device(device: str) -> torch.device:
    """``device`` as a torch.device, refusing CUDA when PyTorch cannot see a GPU (never fall back to CPU)."""
    if device not in DEVICES:
        raise EngineError(f"unknown device '{device}' for the torch backend: use one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        build = (
            "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU/driver found"
        )
        raise EngineError(
            f"device 'cuda' was asked for the torch backend but PyTorch {torch.__version__} ({build}) sees no GPU:"
            " use --device cpu, or install a CUDA build of PyTorch on a machine with an NVIDIA GPU"
        )
    return torch.device(device)


def require_precision(precision: str, device: str) -> torch.dtype:
    if precision not in DTYPES:
        raise EngineError(
            f"precision '{precision}' is not available on the torch backend: use fp32, bf16"
            " or fp16 (cuda only); int8 runs on onnxruntime/tensorrt engines"
        )
    if precision == "fp16" and device == "cpu":
        raise EngineError("precision 'fp16' on the torch backend needs device 'cuda': use fp32 or bf16 on CPU")
    return DTYPES[precision]


class TorchRunner(Runner):
    """One graph module (``IdentityGraph`` or ``FrameGraph``) on ``device`` in ``precision``.

    Input names are the module's ``forward`` parameter names, fed positionally; outputs (a tensor or a
    tuple) are named after ``spec.outputs`` in order.
    """

    backend = "torch"

    def __init__(self, module: nn.Module, spec: GraphSpec, *, device: str = "cpu", precision: str = "fp32"):
        super().__init__(spec)
        self.device_name = device
        self.precision = precision
        self._source = module
        self._module: nn.Module | None = None
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        # forward's positional parameters, in order: the required ones, then the optional ones the spec
        # feeds (the warp head's reference is optional in forward, and an input of the graph only when
        # io_spec says so).
        params = [
            p
            for p in inspect.signature(module.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        fed = {t.name for t in spec.inputs}
        self._input_names: tuple[str, ...] = tuple(p.name for p in params if p.default is p.empty or p.name in fed)
        self._output_names: tuple[str, ...] = tuple(t.name for t in spec.outputs)
        self._cuda = False
        # Pinned (page-locked) staging buffers, grown to the largest batch seen: the host side of the
        # asynchronous copies. One infer at a time uses them (the lock), and each infer synchronises
        # before returning, so the next one may overwrite them.
        self._pinned: dict[str, torch.Tensor] = {}
        self._cuda_lock = threading.Lock()

    def describe(self) -> str:
        return f"torch {self.spec.name} graph ({self.device_name}, {self.precision})"

    # -- life cycle -------------------------------------------------------------------------------
    def _open(self) -> None:
        t0 = time.perf_counter()
        self._device = require_device(self.device_name)
        self._dtype = require_precision(self.precision, self.device_name)
        self._cuda = self._device.type == "cuda"
        module = self._source
        if self._cuda or self._dtype != torch.float32:
            # A private copy: .to() converts in place and the source module belongs to the shared model.
            module = copy.deepcopy(module).to(device=self._device, dtype=self._dtype)
        self._module = module.eval()
        try:
            self._dry_run()
        except BaseException:
            self._close()  # open() failed: close() will not be called for a runner that never opened
            raise
        log.info(
            "opened %s: %d parameters, dry run ok in %.2f s",
            self.describe(),
            sum(p.numel() for p in self._module.parameters()),
            time.perf_counter() - t0,
        )

    def _dry_run(self) -> None:
        """Run batch 1 once and check the module's inputs/outputs against the spec.

        A module has no declared I/O like an ONNX file, so the declared inputs are its ``forward``
        parameter names with the spec's shapes, and the outputs are what the dry run actually returns.
        """
        specs = {t.name: t for t in self.spec.inputs}
        declared_in: dict[str, tuple[tuple[int | str, ...], np.dtype]] = {
            name: (
                tuple("N" if d == -1 else d for d in specs[name].shape) if name in specs else (),
                np.dtype(np.float32),
            )
            for name in self._input_names
        }
        if sorted(declared_in) != sorted(specs):  # names first: the dry run below feeds by name
            check_declared(self.spec, declared_in, {}, self.describe())
        feeds = {name: np.zeros(tuple(1 if d == -1 else d for d in specs[name].shape), np.float32) for name in specs}
        try:
            out = self.infer(feeds)
        except (RuntimeError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise EngineError(
                f"{self.describe()}: a batch-1 dry run with the inputs "
                f"{', '.join(t.describe() for t in self.spec.inputs)}"
                f" failed ({first}): the module was built for another model config"
            ) from None
        declared_out = {name: (tuple(a.shape), a.dtype) for name, a in out.items()}
        check_declared(self.spec, declared_in, declared_out, self.describe())

    def _close(self) -> None:
        self._module = None
        self._pinned.clear()
        if self._cuda:
            torch.cuda.empty_cache()

    # -- inference --------------------------------------------------------------------------------
    def infer(self, feeds: Feeds) -> Outputs:
        module = self._module
        if module is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        if self._cuda:
            with self._cuda_lock:
                return self._infer_cuda(module, feeds)
        with torch.inference_mode():
            args = [torch.from_numpy(feeds[n]) for n in self._input_names]
            if self._dtype != torch.float32:
                args = [a.to(self._dtype) for a in args]
            out = module(*args)
            outs: Sequence[torch.Tensor] = out if isinstance(out, tuple) else (out,)
            return {name: _to_numpy(t) for name, t in zip(self._output_names, outs)}

    def _staging(self, name: str, like: torch.Size) -> torch.Tensor:
        """A pinned float32 host buffer for ``like`` (batch first), grown when a larger batch arrives."""
        buf = self._pinned.get(name)
        if buf is None or buf.shape[0] < like[0] or buf.shape[1:] != like[1:]:
            buf = torch.empty(tuple(like), dtype=torch.float32, pin_memory=True)
            self._pinned[name] = buf
        return buf[: like[0]]

    def _infer_cuda(self, module: nn.Module, feeds: Feeds) -> Outputs:
        with torch.inference_mode():
            args = []
            for name in self._input_names:
                host = torch.from_numpy(feeds[name])
                staged = self._staging("in:" + name, host.shape)
                staged.copy_(host)
                args.append(staged.to(self._device, dtype=self._dtype, non_blocking=True))
            out = module(*args)
            outs: Sequence[torch.Tensor] = out if isinstance(out, tuple) else (out,)
            pinned = []
            for name, t in zip(self._output_names, outs):
                staged = self._staging("out:" + name, t.shape)
                staged.copy_(t.float(), non_blocking=True)  # cast on the GPU, then one async copy
                pinned.append((name, staged))
            torch.cuda.current_stream(self._device).synchronize()
            # Copies: the staging buffers are reused by the next call while the caller keeps these.
            return {name: staged.numpy().copy() for name, staged in pinned}


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype != torch.float32:
        t = t.float()
    return t.numpy()


class TorchCudaGraphRunner(TorchRunner):
    """The torch backend on CUDA with CUDA graphs and true double buffering (the TensorRT runner's scheme).

    Per slot: a CUDA stream, pinned host buffers, static device inputs/outputs and one CUDA graph per
    input-shape combination (captured on first use of that batch size: a few eager warm-up runs on the
    slot's stream, then ``torch.cuda.graph``). ``submit(slot)`` enqueues on the slot's stream the
    host-to-device copies, the graph replay and the device-to-host copies, records an event and returns;
    ``collect(slot)`` waits for that event. Replaying a graph removes the per-kernel launch overhead that
    dominates small-batch latency of a ~20-layer network; two slots let the copies of frame k+1 overlap
    the kernels of frame k. Precision (fp32/fp16/bf16) is the module's, as in :class:`TorchRunner`.
    """

    WARMUP = 3  # eager runs on the capture stream before capturing (cuDNN autotuning, allocator warm-up)

    def __init__(self, module: nn.Module, spec: GraphSpec, *, device: str = "cuda", precision: str = "fp32"):
        super().__init__(module, spec, device=device, precision=precision)
        self._streams: list[torch.cuda.Stream] = []
        self._graphs: list[
            dict[tuple[tuple[int, ...], ...], tuple[torch.cuda.CUDAGraph, list[torch.Tensor], list[torch.Tensor]]]
        ] = []
        self._host_out: list[dict[str, torch.Tensor]] = []
        self._events: list[torch.cuda.Event | None] = []

    def describe(self) -> str:
        return f"torch {self.spec.name} graph ({self.device_name}, {self.precision}, CUDA graphs)"

    def _open(self) -> None:
        if self.device_name != "cuda":
            raise EngineError("CUDA graphs need device 'cuda': use the plain torch runner on CPU")
        super()._open()
        self._streams = [torch.cuda.Stream(self._device) for _ in range(N_SLOTS)]  # type: ignore[no-untyped-call]
        self._graphs = [{} for _ in range(N_SLOTS)]
        self._host_out = [{} for _ in range(N_SLOTS)]
        self._events = [None] * N_SLOTS

    def _close(self) -> None:
        for stream in self._streams:
            stream.synchronize()
        self._graphs, self._streams, self._host_out, self._events = [], [], [], []
        super()._close()

    def _graph_for(
        self, slot: int, shapes: tuple[tuple[int, ...], ...]
    ) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor], list[torch.Tensor]]:
        cached = self._graphs[slot].get(shapes)
        if cached is not None:
            return cached
        module = self._module
        if module is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        stream = self._streams[slot]
        static_in = [torch.zeros(shape, device=self._device, dtype=self._dtype) for shape in shapes]
        with torch.inference_mode():
            stream.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(stream):
                for _ in range(self.WARMUP):
                    module(*static_in)
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                out = module(*static_in)
        static_out = list(out) if isinstance(out, tuple) else [out]
        log.info("%s: captured a CUDA graph for slot %d, input shapes %s", self.describe(), slot, shapes)
        self._graphs[slot][shapes] = (graph, static_in, static_out)
        return graph, static_in, static_out

    def submit(self, slot: int, feeds: Feeds) -> None:
        if self._module is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        if self._events[slot] is not None:
            raise RuntimeError(f"slot {slot} was submitted twice without collect()")
        hosts = [torch.from_numpy(feeds[n]) for n in self._input_names]
        graph, static_in, static_out = self._graph_for(slot, tuple(tuple(h.shape) for h in hosts))
        stream = self._streams[slot]
        with torch.inference_mode(), torch.cuda.stream(stream):
            for name, host, dev in zip(self._input_names, hosts, static_in):
                staged = self._staging(f"in{slot}:{name}", host.shape)
                staged.copy_(host)
                dev.copy_(staged, non_blocking=True)  # float32 pinned -> device dtype, on the slot's stream
            graph.replay()
            outs = {}
            for name, t in zip(self._output_names, static_out):
                staged = self._staging(f"out{slot}:{name}", t.shape)
                staged.copy_(t.float(), non_blocking=True)  # cast on the GPU, then one async copy
                outs[name] = staged
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record(stream)
        self._host_out[slot] = outs
        self._events[slot] = event

    def collect(self, slot: int) -> Outputs:
        event = self._events[slot]
        if event is None:
            raise RuntimeError(f"collect({slot}) without a submit({slot})")
        event.synchronize()
        self._events[slot] = None
        return {name: staged.numpy().copy() for name, staged in self._host_out[slot].items()}

    def infer(self, feeds: Feeds) -> Outputs:
        if self._module is None:
            raise RuntimeError(f"{self.describe()} is not open: call open() first")
        if not self._streams:  # the dry run inside open(): plain eager execution
            return super().infer(feeds)
        with self._cuda_lock:
            slot = 0 if self._events[0] is None else 1
            self.submit(slot, feeds)
            return self.collect(slot)


def torch_runners(
    model: Speech2Vid,
    specs: dict[str, GraphSpec],
    *,
    device: str = "cpu",
    precision: str = "fp32",
    cuda_graphs: bool = False,
) -> tuple[TorchRunner, TorchRunner]:
    """(identity runner, frame runner) over ``model``; ``specs`` is ``io_spec.graph_specs(model.cfg)``.

    ``cuda_graphs`` (device cuda only) runs the frame graph, the per-frame hot path, through
    :class:`TorchCudaGraphRunner`; the identity graph runs once per identity and stays eager.
    """
    frame_cls = TorchCudaGraphRunner if cuda_graphs and device == "cuda" else TorchRunner
    return (
        TorchRunner(model.identity_graph(), specs[IDENTITY_GRAPH], device=device, precision=precision),
        frame_cls(model.frame_graph(), specs[FRAME_GRAPH], device=device, precision=precision),
    )
