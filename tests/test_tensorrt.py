"""The TensorRT backend, end to end: build (FP32, FP16, INT8 from the Q/DQ graph), manifest, open,
double-buffered inference against PyTorch, timing-cache reuse, refusal of a foreign engine.

These run wherever TensorRT and a CUDA GPU are present and skip with the reason elsewhere (CI has
neither: there the TensorRT code is type-checked by tests/test_tensorrt_types.py instead).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from speech2vid.engine.factory import tensorrt_available

TRT_OK, TRT_WHY = tensorrt_available()
pytestmark = [pytest.mark.tensorrt, pytest.mark.skipif(not TRT_OK, reason=f"needs TensorRT and a CUDA GPU ({TRT_WHY})")]

# Against PyTorch FP32, frame output (RGB in [0, 1]); verify's tolerances, see build_engines/verify.py.
FRAME_ATOL = {"fp32": 2e-3, "fp16": 2e-2}


@pytest.fixture(scope="module")
def trt_built(lite_built, lite_loaded):  # type: ignore[no-untyped-def]
    from speech2vid.build_engines.build import build

    settings, _ = lite_built
    return settings, {
        p: build(lite_loaded, settings, precision=p, backend="tensorrt") for p in ("fp32", "fp16", "int8")
    }


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_engine_matches_torch(precision, trt_built, lite_loaded) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.build_engines.build import calibration_feeds
    from speech2vid.build_engines.verify import _references, judge, verify_engine
    from speech2vid.engine.factory import make_engine

    settings, built = trt_built
    manifest = json.loads(
        next(b for b in built[precision] if b.backend == "tensorrt").path.with_suffix(".json").read_text()
    )
    assert manifest["environment"]["gpu"] and manifest["environment"]["tensorrt"] == manifest["builder"]["version"]
    feeds = calibration_feeds(lite_loaded, settings)
    refs = _references(lite_loaded, feeds, 4)
    engine = make_engine(lite_loaded, settings.engine, backend="tensorrt", device="cuda", precision=precision)
    with engine:
        check = verify_engine(lite_loaded, engine, precision, "tensorrt", feeds, refs, 4)
        assert judge(precision, check.metrics) == ()
        # Double buffering: both slots in flight, results equal to the synchronous ones.
        frame = engine.frame_runner
        f8 = {k: np.concatenate([f[k] for f in feeds["frame"][:8]]) for k in feeds["frame"][0]}
        f3 = {k: v[:3] for k, v in f8.items()}
        want8, want3 = frame.infer(f8)["frame"], frame.infer(f3)["frame"]
        frame.submit(0, f8)
        frame.submit(1, f3)
        np.testing.assert_array_equal(frame.collect(0)["frame"], want8)
        np.testing.assert_array_equal(frame.collect(1)["frame"], want3)
        if precision in FRAME_ATOL:
            assert np.abs(want8 - refs["frame"]["frame"][:8]).max() < FRAME_ATOL[precision]


def test_foreign_gpu_engine_refused_before_deserialising(trt_built, lite_loaded) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.engine.cache import FOREIGN, EngineRefused
    from speech2vid.engine.factory import make_engine

    settings, built = trt_built
    path = next(b for b in built["fp16"] if b.backend == "tensorrt" and b.graph == "frame").path
    manifest_path = path.with_suffix(".json")
    original = manifest_path.read_text()
    data = json.loads(original)
    data["environment"]["gpu"] = "Some Other GPU"
    manifest_path.write_text(json.dumps(data))
    try:
        with pytest.raises(EngineRefused) as info:
            make_engine(lite_loaded, settings.engine, backend="tensorrt", device="cuda", precision="fp16")
        assert info.value.kind == FOREIGN and "Some Other GPU" in str(info.value)
    finally:
        manifest_path.write_text(original)


def test_timing_cache_saved_and_reused(trt_built, lite_loaded, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from speech2vid.build_engines.build import build

    settings, _ = trt_built
    caplog.set_level(logging.INFO, logger="speech2vid.build_engines.tensorrt_build")
    build(lite_loaded, settings, precision="fp16", backend="tensorrt", force=True)
    assert "kB reused" in caplog.text
