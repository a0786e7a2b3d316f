"""TFLite -> ONNX for MediaPipe's face models (BlazeFace, FaceMesh), so that ONNX Runtime runs them.

Written for the operators those models use, and checked against the TFLite interpreter
(tests/test_tflite_onnx.py), because the converters on PyPI do not convert them: tflite2onnx 0.4.1
stops on FaceMesh's PReLU (a layout error) and on the full-range detector's DENSIFY, and tf2onnx needs
TensorFlow. The graph becomes NCHW, ONNX's convolution layout: the NHWC input is transposed once, each
kernel is transposed when converted, and a tensor is turned back to NHWC only where TFLite reshapes or
returns it. FP16 and sparse weights (``DEQUANTIZE``, ``DENSIFY`` of constants) are folded into FP32
initialisers. ``SAME``
padding becomes explicit pads computed from the static shapes, as TensorFlow places them (the extra
row or column after).

Needs the ``tflite`` package (the flatbuffer schema; the ``[train]`` extra): converting is a build
step, like ``pack-landmarks``; what it writes runs on the runtime install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from speech2vid.errors import UserError

OPSET = 13
# The IR version of opset 13 (ONNX 1.8): what ONNX Runtime 1.18, the oldest the runtime allows, loads; onnx would
# otherwise stamp its own release's, which older runtimes refuse (IR 14 of onnx 1.23 fails on ONNX Runtime 1.31)
IR_VERSION = 7
TRAIN_EXTRA = "pip install 'speech2vid[train]'"
SUPPORTED = (
    "DEQUANTIZE",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "ADD",
    "RELU",
    "PRELU",
    "PAD",
    "MAX_POOL_2D",
    "RESHAPE",
    "CONCATENATION",
)
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class ConversionError(UserError):
    """A model that uses what this converter does not convert (one line: the operator)."""


def same_pads(
    size_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> list[int]:
    """ONNX ``pads`` (top, left, bottom, right) of TensorFlow's ``SAME`` padding: the output is
    ``ceil(size / stride)`` and an odd total pad puts the extra row or column after."""
    before, after = [], []
    for size, k, s, d in zip(size_hw, kernel, stride, dilation):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


def _index_vector(table: Any, kind: int, schema: Any) -> np.ndarray:
    """A sparse dimension's segments or indices (a flatbuffer union of int32, uint16 or uint8 vectors)."""
    cls = {1: schema.Int32Vector, 2: schema.Uint16Vector, 3: schema.Uint8Vector}[kind]
    vector = cls()
    vector.Init(table.Bytes, table.Pos)
    return np.asarray(vector.ValuesAsNumpy(), dtype=np.int64)


def densify(values: np.ndarray, sparsity: Any, shape: list[int], schema: Any) -> np.ndarray:
    """A TFLite sparse constant as a dense array (what the ``DENSIFY`` operator computes): dense
    dimensions in order, then compressed (CSR) ones, each row's non-zeros located by segments and indices.
    Block sparsity and reordered traversals are not used by MediaPipe's models and are refused."""
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()]
    if sparsity.BlockMapLength() or order != list(range(len(shape))):
        raise ConversionError("block-sparse or reordered sparse tensors are not converted")
    dims = [sparsity.DimMetadata(d) for d in range(sparsity.DimMetadataLength())]
    if any(d.Format() != 0 for d in dims[:-1]) or dims[-1].Format() != 1:
        raise ConversionError("only sparse tensors compressed along their last dimension are converted")
    last = dims[-1]
    segments = _index_vector(last.ArraySegments(), last.ArraySegmentsType(), schema)
    indices = _index_vector(last.ArrayIndices(), last.ArrayIndicesType(), schema)
    dense = np.zeros((int(np.prod(shape[:-1])), shape[-1]), values.dtype)
    for row in range(dense.shape[0]):
        lo, hi = segments[row], segments[row + 1]
        dense[row, indices[lo:hi]] = values[lo:hi]
    return dense.reshape(shape)


class _Graph:
    """The ONNX graph being built from one TFLite subgraph."""

    def __init__(self, model: Any, schema: Any) -> None:  # schema: the tflite package
        self.model, self.schema = model, schema
        self.g = model.Subgraphs(0)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.consts: dict[int, np.ndarray] = {}
        self.nchw: set[int] = set()  # tensors held transposed (4D activations)
        self._n = 0
        dtypes = {
            schema.TensorType.FLOAT32: np.float32,
            schema.TensorType.FLOAT16: np.float16,
            schema.TensorType.INT32: np.int32,
            schema.TensorType.INT64: np.int64,
        }
        for i in range(self.g.TensorsLength()):
            t = self.g.Tensors(i)
            buffer = model.Buffers(t.Buffer())
            if buffer is not None and buffer.DataLength() and t.Type() in dtypes:
                values = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtypes[t.Type()])
                sparsity = t.Sparsity()
                self.consts[i] = (
                    values.reshape(self.shape(i))
                    if sparsity is None
                    else densify(values, sparsity, self.shape(i), schema)
                )

    def shape(self, i: int) -> list[int]:
        t = self.g.Tensors(i)
        return [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def name(self, i: int) -> str:
        return f"t{i}"

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: np.ndarray, prefix: str = "c") -> str:
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))

    def activation(self, src: str, dst: str, fused: int) -> None:
        """TFLite's fused activation of an operator (0 none, 1 ReLU, 3 ReLU6)."""
        if fused == 0:
            self.node("Identity", [src], [dst])
        elif fused == 1:
            self.node("Relu", [src], [dst])
        elif fused == 3:
            self.node("Clip", [src, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))], [dst])
        else:
            raise ConversionError(f"fused activation {fused} is not converted")


def _options(op: Any, cls: Any) -> Any:
    table = op.BuiltinOptions()
    options = cls()
    options.Init(table.Bytes, table.Pos)
    return options


def _convolution(gr: _Graph, kind: str, op: Any, ins: list[int], out: int) -> None:
    s = gr.schema
    x, w, b = ins
    weights = gr.consts[w].astype(np.float32)
    if kind == "CONV_2D":
        o = _options(op, s.Conv2DOptions)
        kernel, group = weights.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
    else:
        o = _options(op, s.DepthwiseConv2DOptions)
        kernel, group = weights.transpose(3, 0, 1, 2), gr.shape(x)[3]  # 1HW(C m) -> (C m)1HW
    k = (int(kernel.shape[2]), int(kernel.shape[3]))
    stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    _, h, width, _ = gr.shape(x)
    pads = same_pads((h, width), k, stride, dilation) if o.Padding() == s.Padding.SAME else [0, 0, 0, 0]
    bias = gr.consts[b].astype(np.float32)
    tmp = gr.fresh("conv")
    gr.node(
        "Conv",
        [gr.name(x), gr.const(kernel, "w"), gr.const(bias, "b")],
        [tmp],
        kernel_shape=list(k),
        strides=list(stride),
        dilations=list(dilation),
        pads=pads,
        group=group,
    )
    gr.activation(tmp, gr.name(out), o.FusedActivationFunction())


def _operator(gr: _Graph, code: str, op: Any, ins: list[int], out: int) -> None:
    """One TFLite operator as ONNX nodes writing ``gr.name(out)``."""
    s = gr.schema
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        _convolution(gr, code, op, ins, out)
    elif code == "ADD":
        tmp = gr.fresh("add")
        gr.node("Add", [gr.name(ins[0]), gr.name(ins[1])], [tmp])
        gr.activation(tmp, gr.name(out), _options(op, s.AddOptions).FusedActivationFunction())
    elif code == "RELU":
        gr.node("Relu", [gr.name(ins[0])], [gr.name(out)])
    elif code == "PRELU":
        # relu(x) + alpha * (x - relu(x)), exactly PRelu: ONNX Runtime's PRelu kernel leaves its blocked (NCHWc)
        # layout around every call and took half of FaceMesh's 7.4 ms on one core; these four ops run in 4.2 ms
        alpha = gr.consts[ins[1]].astype(np.float32).reshape(-1, 1, 1)  # (1, 1, C) per channel -> (C, 1, 1)
        x, positive, negative, scaled = gr.name(ins[0]), gr.fresh("relu"), gr.fresh("neg"), gr.fresh("scaled")
        gr.node("Relu", [x], [positive])
        gr.node("Sub", [x, positive], [negative])
        gr.node("Mul", [negative, gr.const(alpha, "alpha")], [scaled])
        gr.node("Add", [positive, scaled], [gr.name(out)])
    elif code == "PAD":
        p = gr.consts[ins[1]].astype(np.int64)  # NHWC rows: (before, after)
        pads = np.array([p[0, 0], p[3, 0], p[1, 0], p[2, 0], p[0, 1], p[3, 1], p[1, 1], p[2, 1]], np.int64)
        gr.node("Pad", [gr.name(ins[0]), gr.const(pads, "pads")], [gr.name(out)], mode="constant")
    elif code == "MAX_POOL_2D":
        o = _options(op, s.Pool2DOptions)
        k, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        _, h, width, _ = gr.shape(ins[0])
        pool_pads = same_pads((h, width), k, stride, (1, 1)) if o.Padding() == s.Padding.SAME else [0, 0, 0, 0]
        gr.node(
            "MaxPool", [gr.name(ins[0])], [gr.name(out)], kernel_shape=list(k), strides=list(stride), pads=pool_pads
        )
    elif code == "RESHAPE":
        src = gr.name(ins[0])
        if ins[0] in gr.nchw:  # TFLite reshapes NHWC memory
            src, nhwc = gr.fresh("nhwc"), src
            gr.node("Transpose", [nhwc], [src], perm=NCHW_TO_NHWC)
        gr.node("Reshape", [src, gr.const(np.array(gr.shape(out), np.int64), "shape")], [gr.name(out)])
        return
    elif code == "RESIZE_BILINEAR":
        o = _options(op, s.ResizeBilinearOptions)
        mode = "half_pixel" if o.HalfPixelCenters() else "align_corners" if o.AlignCorners() else "asymmetric"
        _, h, width, c = gr.shape(out)
        sizes = gr.const(np.array([1, c, h, width], np.int64), "sizes")
        gr.node(
            "Resize",
            [gr.name(ins[0]), "", "", sizes],
            [gr.name(out)],
            mode="linear",
            coordinate_transformation_mode=mode,
        )
    elif code == "DEPTH_TO_SPACE":  # TensorFlow's channel order is ONNX's DCR
        block = _options(op, s.DepthToSpaceOptions).BlockSize()
        gr.node("DepthToSpace", [gr.name(ins[0])], [gr.name(out)], blocksize=block, mode="DCR")
    elif code == "CONCATENATION":
        if any(i in gr.nchw for i in ins):
            raise ConversionError("CONCATENATION of 4-D activations is not converted")
        gr.node("Concat", [gr.name(i) for i in ins], [gr.name(out)], axis=_options(op, s.ConcatenationOptions).Axis())
        return
    else:
        raise ConversionError(f"TFLite operator {code} is not converted (this converter knows {', '.join(SUPPORTED)})")
    if len(gr.shape(out)) == 4:
        gr.nchw.add(out)


def tflite_to_onnx(path: str | Path) -> onnx.ModelProto:
    """The first subgraph of the TFLite model at ``path`` as a checked ONNX model: float32 inputs and outputs,
    named and shaped as in TFLite (NHWC)."""
    try:
        import tflite  # the flatbuffer schema: its classes are the package's attributes
    except ImportError:
        raise UserError(f"converting TFLite models needs the tflite package: {TRAIN_EXTRA}") from None

    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    data = Path(path).read_bytes()
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        gr = _Graph(model, tflite)
    except Exception as exc:  # a file that is not a TFLite flatbuffer
        raise ConversionError(f"{path}: not a TFLite model ({type(exc).__name__}): give a .tflite file") from None
    g = gr.g
    inputs, outputs = [], []
    for k in range(g.InputsLength()):
        i = int(g.Inputs(k))
        name = g.Tensors(i).Name().decode()
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, gr.shape(i)))
        gr.node("Transpose", [name], [gr.name(i)], perm=NHWC_TO_NCHW)
        gr.nchw.add(i)
    for j in range(g.OperatorsLength()):
        op = g.Operators(j)
        opcode = model.OperatorCodes(op.OpcodeIndex())
        code = codes.get(max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode()), "CUSTOM")
        ins, out = [int(v) for v in op.InputsAsNumpy()], int(op.OutputsAsNumpy()[0])
        if code in ("DEQUANTIZE", "DENSIFY") and ins[0] in gr.consts:  # FP16 or sparse weights: folded
            gr.consts[out] = gr.consts[ins[0]].astype(np.float32)
            continue
        _operator(gr, code, op, ins, out)
    for k in range(g.OutputsLength()):
        i = int(g.Outputs(k))
        name = g.Tensors(i).Name().decode()
        if i in gr.nchw:
            gr.node("Transpose", [gr.name(i)], [name], perm=NCHW_TO_NHWC)
        else:
            gr.node("Identity", [gr.name(i)], [name])
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, gr.shape(i)))
    graph = helper.make_graph(gr.nodes, Path(path).stem, inputs, outputs, gr.inits)
    onnx_model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="speech2vid", ir_version=IR_VERSION
    )
    onnx.checker.check_model(onnx_model)
    return onnx_model
