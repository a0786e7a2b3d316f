"""Parameters and multiply-accumulates of an ONNX graph, read from the graph itself (no PyTorch).

What ``speech2vid info`` and ``bench`` report when PyTorch is not installed: the graph's shapes are
inferred at batch 1, then every Conv, ConvTranspose, Gemm and MatMul is counted (their MACs are
almost all of this model's compute; element-wise ops are left out, as PyTorch's FLOP counter does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GraphCost:
    params: int  # elements of the floating-point initialisers
    macs: int  # per batch-1 call


def _dims(value_info: object) -> list[int]:
    shape = value_info.type.tensor_type.shape  # type: ignore[attr-defined]
    return [int(d.dim_value) if d.HasField("dim_value") else 1 for d in shape.dim]


def graph_cost(path: str | Path) -> GraphCost:
    """Parameters and MACs of one call at batch 1 of the ONNX graph at ``path``."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    for value in graph.input:  # every dynamic axis (the batch) -> 1
        for d in value.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: _dims(v) for v in [*inferred.input, *inferred.value_info, *inferred.output]}
    init = {t.name: list(t.dims) for t in graph.initializer}
    shapes.update(init)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
    params = sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type in floats)
    macs = 0
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or not node.output:
            continue
        out = shapes.get(node.output[0])
        ins = [shapes.get(name) for name in node.input[:2]]
        if out is None or any(s is None for s in ins):
            continue
        x, w = ins[0], ins[1]
        assert x is not None and w is not None
        if node.op_type == "Conv":
            # each output element: (C_in / groups) x kernel MACs = the weight's elements per output channel
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":
            # each input element is scattered through (C_out / groups) x kernel
            macs += int(np.prod(x)) * int(np.prod(w[1:]))
        else:
            macs += int(np.prod(out)) * int(x[-1])
    return GraphCost(params, macs)
