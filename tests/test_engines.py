"""Every backend behind one contract, and the backends against each other.

Tolerances (random weights, inputs of the runtime's magnitudes):
* ONNX Runtime FP32 vs PyTorch FP32: max abs error < 1e-4 on every output of both graphs;
* PyTorch bf16 vs FP32 on CPU: frame max abs error < 3e-2 (bf16 keeps 8 mantissa bits);
* PyTorch CUDA FP32 vs CPU: < 2e-3 (cuDNN may use TF32); CUDA fp16: < 3e-2.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from speech2vid.build_engines.onnx_export import export_graph
from speech2vid.config import BatchRange, EngineConfig, load_model_config
from speech2vid.engine.base import Runner
from speech2vid.engine.factory import available_backends, make_engine
from speech2vid.engine.onnxruntime_backend import OnnxRuntimeRunner
from speech2vid.engine.talking_face import stack_faces
from speech2vid.engine.torch_backend import TorchRunner, torch_runners
from speech2vid.errors import EngineError
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.model.io_spec import FACE_SIZE, FACES, FRAME, FRAME_GRAPH, IDENTITY_GRAPH, OUTPUT_SIZE, graph_specs
from speech2vid.model.weights import load_model

ORT_ATOL = 1e-4
BF16_ATOL = 3e-2

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def faces(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8) for _ in range(5)]


def windows(n: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, N_CEPS, WINDOW_COLS)) * 10.0).astype(np.float32)


def frame_feeds(identity: dict[str, np.ndarray], n: int, seed: int = 1) -> dict[str, np.ndarray]:
    return {"mfcc": windows(n, seed).reshape(n, 1, N_CEPS, WINDOW_COLS), **identity}


def identity_of(runner: Runner) -> dict[str, np.ndarray]:
    out = runner.infer({FACES: stack_faces(faces(), 5)})
    return {t.name: out[t.name] for t in runner.spec.outputs}  # every identity output feeds the frame graph


def max_err(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.abs(a[k] - b[k]).max()) for k in a}


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


@pytest.fixture(scope="module")
def lite_torch(lite_loaded):  # type: ignore[no-untyped-def]
    identity, frame = torch_runners(lite_loaded.model, graph_specs(lite_loaded.model.cfg))
    with identity, frame:
        yield identity, frame


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("backend", available_backends())
def test_backend_contract(backend, lite_loaded, engine_cache, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(lite_loaded, EngineConfig(), backend=backend, cache_dir=engine_cache)
    assert backend in engine.label
    with engine:
        engine.set_identity(faces())
        identity_out = engine.identity_features
        assert identity_out is not None
        for spec in engine.identity_runner.spec.outputs:
            assert identity_out[spec.name].shape[1:] == spec.shape[1:] and identity_out[spec.name].dtype == np.float32

        w0, w1 = windows(3, seed=1), windows(2, seed=2)
        want0, want1 = engine.render(w0), engine.render(w1)
        assert want0.shape == (3, OUTPUT_SIZE, OUTPUT_SIZE, 3) and want0.dtype == np.float32
        assert 0.0 <= want0.min() and want0.max() <= 1.0

        # Double buffering through both slots, at the engine and at the runner level.
        engine.submit(0, w0)
        engine.submit(1, w1)
        np.testing.assert_allclose(engine.collect(0), want0, rtol=0, atol=1e-6)
        np.testing.assert_allclose(engine.collect(1), want1, rtol=0, atol=1e-6)
        runner = engine.frame_runner
        feeds = frame_feeds(identity_out, 2, seed=2)
        runner.submit(1, feeds)
        with pytest.raises(RuntimeError, match="twice"):
            runner.submit(1, feeds)
        np.testing.assert_allclose(runner.collect(1)[FRAME], np.transpose(want1, (0, 3, 1, 2)), rtol=0, atol=1e-6)
        with pytest.raises(RuntimeError, match="without a submit"):
            runner.collect(0)
    with pytest.raises(RuntimeError, match="not open"):
        engine.frame_runner.infer(feeds)
    engine.close()  # closing twice is harmless


# ----------------------------------------------------------------------------- ONNX Runtime vs PyTorch


def test_onnxruntime_matches_torch_lite(lite_torch, lite_loaded, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    specs = graph_specs(lite_loaded.model.cfg)
    t_identity, t_frame = lite_torch
    with (
        OnnxRuntimeRunner(lite_onnx[IDENTITY_GRAPH], specs[IDENTITY_GRAPH]) as o_identity,
        OnnxRuntimeRunner(lite_onnx[FRAME_GRAPH], specs[FRAME_GRAPH]) as o_frame,
    ):
        ident_t, ident_o = identity_of(t_identity), identity_of(o_identity)
        errors = max_err(ident_o, ident_t)
        feeds = frame_feeds(ident_t, 4)  # the same identity features into both frame graphs
        errors.update(max_err(o_frame.infer(feeds), t_frame.infer(feeds)))
    print("lite ORT vs torch max abs error:", errors)
    assert max(errors.values()) < ORT_ATOL, errors


def test_onnxruntime_matches_torch_paper_frame_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(load_model_config("paper"), "random")
    specs = graph_specs(loaded.model.cfg)
    path = export_graph(loaded.model, FRAME_GRAPH, tmp_path / "paper-frame.onnx", 18, BatchRange())
    identity, frame = torch_runners(loaded.model, specs)
    with identity, frame, OnnxRuntimeRunner(path, specs[FRAME_GRAPH]) as o_frame:
        feeds = frame_feeds(identity_of(identity), 2)
        errors = max_err(o_frame.infer(feeds), frame.infer(feeds))
    print("paper frame graph ORT vs torch max abs error:", errors)
    assert errors[FRAME] < ORT_ATOL, errors


# ----------------------------------------------------------------------------- refusals


def test_mismatched_spec_refused_at_open(lite_loaded, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    paper = graph_specs(load_model_config("paper"))
    lite = graph_specs(lite_loaded.model.cfg)
    with pytest.raises(EngineError) as info:
        OnnxRuntimeRunner(lite_onnx[IDENTITY_GRAPH], paper[IDENTITY_GRAPH]).open()
    assert "id_embedding" in one_line(info) and ("256" in str(info.value) or "reference" in str(info.value))
    with pytest.raises(EngineError) as info:
        OnnxRuntimeRunner(lite_onnx[FRAME_GRAPH], lite[IDENTITY_GRAPH]).open()  # the wrong graph entirely
    assert "inputs" in one_line(info)
    with pytest.raises(EngineError) as info:
        TorchRunner(lite_loaded.model.frame_graph(), paper[FRAME_GRAPH]).open()
    assert "dry run" in one_line(info)
    with pytest.raises(EngineError) as info:
        TorchRunner(lite_loaded.model.identity_graph(), paper[IDENTITY_GRAPH]).open()
    assert "id_embedding" in one_line(info)


def test_corrupt_or_missing_onnx_refused(lite_loaded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = graph_specs(lite_loaded.model.cfg)[FRAME_GRAPH]
    bad = tmp_path / "frame.onnx"
    bad.write_bytes(os.urandom(64 * 1024))
    for path in (bad, tmp_path / "missing.onnx"):
        with pytest.raises(EngineError) as info:
            OnnxRuntimeRunner(path, spec).open()
        assert str(path) in one_line(info)


def test_unavailable_combinations_refused(lite_loaded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import tensorrt_available

    cfg = EngineConfig(cache_dir=str(tmp_path))  # empty: nothing built
    if not tensorrt_available()[0]:
        with pytest.raises(EngineError, match="TensorRT backend cannot run here") as info:
            make_engine(lite_loaded, cfg, backend="tensorrt", device="cuda")
        one_line(info)
        assert "tensorrt" not in available_backends()
    for precision in ("fp16", "int8"):  # engines of `speech2vid build`: refused until built
        with pytest.raises(EngineError, match="speech2vid build --model lite --precision") as info:
            make_engine(lite_loaded, cfg, backend="onnxruntime", precision=precision)
        one_line(info)
    with pytest.raises(EngineError, match="bf16") as info:
        make_engine(lite_loaded, cfg, backend="onnxruntime", precision="bf16")
    one_line(info)
    with pytest.raises(EngineError, match="fp16") as info:
        make_engine(lite_loaded, cfg, backend="torch", precision="fp16")  # fp16 on CPU
    one_line(info)
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="cuda") as info:
            make_engine(lite_loaded, cfg, backend="torch", device="cuda")
        one_line(info)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(EngineError, match="CUDA provider") as info:
            make_engine(lite_loaded, cfg, backend="onnxruntime", device="cuda")
        one_line(info)


# ----------------------------------------------------------------------------- precisions and devices


def test_torch_bf16_cpu_close_to_fp32(lite_torch, lite_loaded) -> None:  # type: ignore[no-untyped-def]
    identity_fp32, frame_fp32 = lite_torch
    ident = identity_of(identity_fp32)
    feeds = frame_feeds(ident, 1)
    spec = graph_specs(lite_loaded.model.cfg)[FRAME_GRAPH]
    with TorchRunner(lite_loaded.model.frame_graph(), spec, precision="bf16") as frame_bf16:
        got = frame_bf16.infer(feeds)
    assert got[FRAME].dtype == np.float32  # bf16 inside, float32 at the interface
    want = frame_fp32.infer(feeds)[FRAME]
    # The warp head resamples pixels: bf16 coordinates move a few sharp edges by a fraction of a pixel
    # (a large difference at those pixels), so the mean is the measure here, the max for drawing heads.
    err = (
        float(np.abs(got[FRAME] - want).mean())
        if lite_loaded.model.cfg.decoder.head == "warp"
        else max_err(got, {FRAME: want})[FRAME]
    )
    assert err < BF16_ATOL, err
    # The shared FP32 model was not converted in place.
    assert next(lite_loaded.model.parameters()).dtype == torch.float32


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision,atol", [("fp32", 2e-3), ("fp16", 3e-2), ("bf16", 3e-2)])
def test_torch_cuda_close_to_cpu(precision, atol, lite_torch, lite_loaded) -> None:  # type: ignore[no-untyped-def]
    identity_cpu, frame_cpu = lite_torch
    specs = graph_specs(lite_loaded.model.cfg)
    identity, frame = torch_runners(lite_loaded.model, specs, device="cuda", precision=precision)
    with identity, frame:
        ident = identity_of(identity)
        feeds = frame_feeds(identity_of(identity_cpu), 4)
        got = frame.infer(feeds)
        frame.submit(0, feeds)
        frame.submit(1, frame_feeds(identity_of(identity_cpu), 2, seed=3))
        np.testing.assert_allclose(frame.collect(0)[FRAME], got[FRAME], rtol=0, atol=1e-6)
        assert frame.collect(1)[FRAME].shape == (2, 3, OUTPUT_SIZE, OUTPUT_SIZE)
    assert max_err(got, frame_cpu.infer(feeds))[FRAME] < atol
    assert next(lite_loaded.model.parameters()).device.type == "cpu"
    assert set(ident) == {t.name for t in graph_specs(lite_loaded.cfg)[IDENTITY_GRAPH].outputs}


@pytest.mark.gpu
@gpu
def test_onnxruntime_cuda_matches_torch(lite_torch, lite_loaded, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs onnxruntime-gpu (no CUDAExecutionProvider)")
    _, frame_cpu = lite_torch
    specs = graph_specs(lite_loaded.model.cfg)
    with (
        OnnxRuntimeRunner(lite_onnx[IDENTITY_GRAPH], specs[IDENTITY_GRAPH], device="cuda") as identity,
        OnnxRuntimeRunner(lite_onnx[FRAME_GRAPH], specs[FRAME_GRAPH], device="cuda") as frame,
    ):
        assert identity.providers[0] == "CUDAExecutionProvider"
        feeds = frame_feeds(identity_of(identity), 4)
        assert max_err(frame.infer(feeds), frame_cpu.infer(feeds))[FRAME] < 2e-3


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision,atol", [("fp32", 2e-3), ("fp16", 3e-2), ("bf16", 3e-2)])
def test_torch_cuda_graphs_double_buffered(precision, atol, lite_torch, lite_loaded) -> None:  # type: ignore[no-untyped-def]
    """CUDA-graph frame runner: same results as eager CUDA, per slot and batch size, slots in flight together."""
    from speech2vid.engine.torch_backend import TorchCudaGraphRunner

    identity_cpu, frame_cpu = lite_torch
    spec = graph_specs(lite_loaded.model.cfg)[FRAME_GRAPH]
    ident = identity_of(identity_cpu)
    feeds4, feeds1 = frame_feeds(ident, 4), frame_feeds(ident, 1, seed=5)
    with (
        TorchRunner(lite_loaded.model.frame_graph(), spec, device="cuda", precision=precision) as eager,
        TorchCudaGraphRunner(lite_loaded.model.frame_graph(), spec, device="cuda", precision=precision) as graphed,
    ):
        want4, want1 = eager.infer(feeds4)[FRAME], eager.infer(feeds1)[FRAME]
        graphed.submit(0, feeds4)
        graphed.submit(1, feeds1)  # both slots in flight, different batch sizes
        got4, got1 = graphed.collect(0)[FRAME], graphed.collect(1)[FRAME]
        for _ in range(3):  # replays reuse the captured graphs and buffers
            np.testing.assert_allclose(graphed.infer(feeds4)[FRAME], want4, rtol=0, atol=1e-3)
        with pytest.raises(RuntimeError, match="without a submit"):
            graphed.collect(0)
    np.testing.assert_allclose(got4, want4, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got1, want1, rtol=0, atol=1e-3)
    assert max_err({FRAME: got4}, frame_cpu.infer(feeds4))[FRAME] < atol
