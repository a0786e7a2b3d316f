"""FP16 as an ONNX graph: weights and activations FP16 inside, FP32 inputs and outputs kept.

The conversion is ``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)``: Cast
nodes at the graph's edges, so an FP16 engine takes and returns the same float32 tensors as the FP32
one. TensorRT 11 builds its strongly typed FP16 engines from this graph; ONNX Runtime runs it here so
that FP16 accuracy is measured on any machine.

Why not NVIDIA ModelOpt AutoCast (``modelopt.onnx.autocast``, which also needs no GPU and picks the
nodes to keep in FP32 from data): ``pip install nvidia-modelopt[onnx]`` (0.47) would replace the
project's CPU ``onnxruntime`` 1.32 with ``onnxruntime-gpu`` 1.24 and downgrade ``onnx`` to 1.21, on every
install of the project. The converter below is the one ONNX Runtime's own docs point to. Ops that
have no FP16 kernel in ONNX Runtime's CPU provider (``Resize``'s scales and ``Sigmoid`` at the output are
kept FP32 by the block list) stay FP32; the block list is logged and recorded in the manifest.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from speech2vid.errors import EngineError
from speech2vid.files import atomic_path

log = logging.getLogger(__name__)

# Kept FP32: the output sigmoid (its FP16 saturation would clip the [0, 1] frame's extremes) and Resize,
# whose FP16 bilinear kernel ONNX Runtime's CPU provider lacks (align_corners upsampling).
FP32_OPS = ("Sigmoid", "Resize")


def _outputs_behind_identity(model: Any) -> None:
    """Give every graph output its own Identity node (in place).

    The converter mishandles a graph output that other nodes also read (the identity graph's skips feed
    the next layer and leave the graph): it types the internal consumers' input as the FP32 output.
    An Identity per output leaves the producer's tensor internal, so the converter sees the usual shape.
    """
    import onnx

    graph = model.graph
    for out in graph.output:
        inner = f"{out.name}__internal"
        for node in graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        graph.node.append(onnx.helper.make_node("Identity", [inner], [out.name], name=f"{out.name}__output"))


def convert_fp16(fp32_onnx: str | Path, out_path: str | Path, keep_fp32_ops: tuple[str, ...] = FP32_OPS) -> Path:
    """Write the FP16 version of ``fp32_onnx`` to ``out_path`` (temp + rename), FP32 IO kept."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        raise EngineError("FP16 ONNX graphs need onnxconverter-common: pip install onnxconverter-common") from None
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with atomic_path(out, ".onnx") as tmp:
        model = onnx.load(str(fp32_onnx))
        _outputs_behind_identity(model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)  # one per weight below FP16's smallest normal
            half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=list(keep_fp32_ops))
        clipped = sum("truncated" in str(w.message) for w in caught)
        if clipped:
            log.info(
                "%d weights closer to 0 than 1e-7 were set to +-1e-7 by the converter (harmless at these magnitudes)",
                clipped,
            )
        onnx.checker.check_model(half)
        onnx.save(half, str(tmp))
    log.info(
        "converted %s -> %s (FP16 inside, FP32 IO; kept FP32: %s; %.1f MB) in %.1f s",
        Path(fp32_onnx).name,
        out,
        ", ".join(keep_fp32_ops),
        out.stat().st_size / 1e6,
        time.perf_counter() - t0,
    )
    return out
