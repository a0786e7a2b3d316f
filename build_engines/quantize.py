"""INT8 as one explicit Q/DQ ONNX graph, made by ONNX Runtime's static quantiser.

The form is the one TensorRT consumes for explicit quantisation: QuantizeLinear/DequantizeLinear pairs
in the graph, int8, symmetric (zero point 0) for activations and weights, weights per output channel.
The same file is run by ONNX Runtime on the CPU (which fuses the pairs into integer kernels) and
compiled by TensorRT, so its accuracy is checked here even where TensorRT is absent.

Why ONNX Runtime's quantiser and not NVIDIA ModelOpt's ONNX PTQ: both write this Q/DQ form, but
``nvidia-modelopt[onnx]`` (0.47) pins ``onnxruntime-gpu~=1.24`` and ``onnx`` 1.21, which would replace
the project's CPU ``onnxruntime`` 1.32 and downgrade ``onnx`` (two distributions of one ``onnxruntime``
module); ``onnxruntime.quantization`` ships inside the ONNX Runtime we already run. Its calibrators
(min-max, entropy, percentile) are the ones TensorRT's calibrators implement too.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from speech2vid.errors import EngineError
from speech2vid.files import atomic_path

log = logging.getLogger(__name__)

METHODS = ("entropy", "percentile", "minmax")

# Kept in FP32: the image-domain tail of the frame graph (the decoder's output sigmoid, the deblurring
# CNN's residual Add and the final Clip). Every convolution stays INT8; what stays FP32 is the residual
# path of the image itself, so the output frame is not re-quantised to 8 bits twice (symmetric int8 over
# [0, 1] has a step of 1/127, twice the 1/255 of the video the frame ends in). Measured on the frame
# graph with random weights: +3 dB SNR (lite 25.1 -> 28.1, paper 16.6 -> 19.4; docs/engines.md).
FP32_TAIL_OPS = ("Sigmoid", "Add", "Clip")
# x86 CPU flags of an integer dot-product instruction (VNNI): without one, ONNX Runtime's INT8 kernels multiply
# u8 x s8 pairs into 16-bit sums that saturate at full-range weights (measured on an AVX2-only EPYC: the identity
# graph's embedding 0.56 RMS off, relative to its spread, where an AVX-512 VNNI machine gives under 0.1)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_saturates(cpuinfo: str | None = None) -> bool:
    """Whether this machine's ONNX Runtime INT8 kernels saturate on 8-bit weights: an x86 CPU without VNNI.
    ``cpuinfo``: the text of /proc/cpuinfo (read when None; an unreadable one counts as no saturation)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False  # ARM (Jetson) and others: dot-product kernels without 16-bit intermediates
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return bool(flags) and not any(flag in flags for flag in VNNI_FLAGS)


class _DropPreprocessHint(logging.Filter):
    """ONNX Runtime's quantiser asks (on the root logger) for its pre-processing pass, which fuses
    BatchNorm into Conv and infers shapes: the dynamo exporter already folded every BatchNorm of our
    graphs and ``onnx_export`` checked the shapes, so the hint is noise for these graphs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in str(record.msg)


def _reader(feeds: Iterable[Mapping[str, np.ndarray]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        """Our backend-neutral iterable of {input_name: array}, as ONNX Runtime's reader interface."""

        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._it, None)
            return None if item is None else dict(item)

    return _Reader()


def quantize_int8(
    fp32_onnx: str | Path,
    out_path: str | Path,
    feeds: Iterable[Mapping[str, np.ndarray]],
    *,
    method: str = "entropy",
    percentile: float = 99.999,
    keep_fp32_ops: tuple[str, ...] = FP32_TAIL_OPS,
    seven_bit_weights: bool = False,
) -> Path:
    """Calibrate ``fp32_onnx`` on ``feeds`` and write the Q/DQ INT8 graph to ``out_path`` (temp + rename).

    Nodes whose op type is in ``keep_fp32_ops`` are left unquantised (see :data:`FP32_TAIL_OPS`).
    ``seven_bit_weights``: weights within +-63 (ONNX Runtime's ``reduce_range``), for CPUs whose INT8 kernels
    saturate on full-range ones (:func:`int8_saturates`).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        "minmax": CalibrationMethod.MinMax,
    }
    if method not in methods:
        raise EngineError(f"unknown calibration method '{method}': choose one of {', '.join(METHODS)}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {
        "ActivationSymmetric": True,  # zero point 0: TensorRT's INT8 is symmetric
        "WeightSymmetric": True,
        "QuantizeBias": False,  # biases stay FP32 (TensorRT folds them into the INT8 conv itself)
    }
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    excluded = [
        n.name for n in onnx.load(str(fp32_onnx), load_external_data=False).graph.node if n.op_type in keep_fp32_ops
    ]
    t0 = time.perf_counter()
    hint = _DropPreprocessHint()
    root_logger = logging.getLogger()
    root_logger.addFilter(hint)
    for handler in root_logger.handlers:
        handler.addFilter(hint)
    try:
        # The calibrator prints its histogram progress with print(): kept out of the user's terminal.
        with atomic_path(out, ".onnx") as tmp, contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(fp32_onnx),
                str(tmp),
                _reader(feeds),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                extra_options=extra,
                nodes_to_exclude=excluded,
                reduce_range=seven_bit_weights,
            )
            check_qdq(tmp)
    finally:
        root_logger.removeFilter(hint)
        for handler in root_logger.handlers:
            handler.removeFilter(hint)
        # The quantiser leaves its augmented calibration model next to the working directory's temp files.
        for leftover in Path.cwd().glob("augmented_model*.onnx"):
            leftover.unlink(missing_ok=True)
    log.info(
        "quantised %s -> %s (INT8 Q/DQ, %s calibration, %d nodes kept FP32: %s; %.1f MB) in %.1f s",
        Path(fp32_onnx).name,
        out,
        method,
        len(excluded),
        ", ".join(keep_fp32_ops),
        out.stat().st_size / 1e6,
        time.perf_counter() - t0,
    )
    return out


def check_qdq(path: str | Path) -> dict[str, int]:
    """Check the Q/DQ form TensorRT needs: int8, zero point 0 everywhere, per-channel conv weights.

    Returns counts {quantize, dequantize, per_channel_weights}; raises EngineError naming the first offender.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and n.attribute}
    counts = {"quantize": 0, "dequantize": 0, "per_channel_weights": 0}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        counts["quantize" if node.op_type == "QuantizeLinear" else "dequantize"] += 1
        if len(node.input) < 3:
            raise EngineError(f"{path}: {node.name} has no zero point (expected an explicit int8 zero point 0)")
        zp_name = node.input[2]
        zp_t = inits.get(zp_name) or consts.get(zp_name)
        if zp_t is None:
            raise EngineError(f"{path}: {node.name}'s zero point {zp_name} is not a constant")
        zp = numpy_helper.to_array(zp_t)
        if zp.dtype != np.int8 or np.any(zp != 0):
            raise EngineError(
                f"{path}: {node.name} has zero point {zp.dtype} {zp.ravel()[:3]}, expected int8 0 (symmetric)"
            )
        if node.op_type == "DequantizeLinear" and node.input[0] in inits and zp.size > 1:
            counts["per_channel_weights"] += 1
    if counts["quantize"] == 0 or counts["per_channel_weights"] == 0:
        raise EngineError(
            f"{path}: no Q/DQ nodes or no per-channel weights ({counts}): the quantiser did not run as asked"
        )
    return counts
