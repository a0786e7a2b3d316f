"""`speech2vid build`: the Q/DQ INT8 graph, the FP16 graph, their manifests and reuse, calibration data,
and the TensorRT build recipe per version (the part of the TensorRT build that runs without TensorRT)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from speech2vid.build_engines.build import build
from speech2vid.build_engines.quantize import check_qdq
from speech2vid.build_engines.tensorrt_build import build_path, installed_tensorrt_version
from speech2vid.calib.data import CalibrationError, graph_feeds, load_calibration
from speech2vid.config import CalibConfig
from speech2vid.errors import EngineError
from speech2vid.model.io_spec import FACES, FRAME_GRAPH, IDENTITY_GRAPH, MFCC, graph_specs

pytestmark = pytest.mark.slow  # an ONNX export and INT8/FP16 builds, or mypy over the engine package

ort = pytest.importorskip("onnxruntime")


def by(rows, precision, graph):  # type: ignore[no-untyped-def]
    return next(r for r in rows if r.precision == precision and r.graph == graph)


# ----------------------------------------------------------------------------- the Q/DQ graph


def test_int8_graph_is_explicit_symmetric_per_channel_qdq(lite_built) -> None:  # type: ignore[no-untyped-def]
    _, rows = lite_built
    for graph in (IDENTITY_GRAPH, FRAME_GRAPH):
        path = by(rows, "int8", graph).path
        model = onnx.load(str(path))
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
        dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
        assert q and dq
        for node in q + dq:  # every zero point is int8 0: symmetric, the form TensorRT takes
            zp = inits[node.input[2]]
            assert zp.dtype == np.int8 and not zp.any(), node.name
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        producers = {o: n for n in model.graph.node for o in n.output}
        for conv in convs:  # each conv's weight comes through a per-output-channel DequantizeLinear
            w_dq = producers[conv.input[1]]
            assert w_dq.op_type == "DequantizeLinear"
            weight, scale = inits[w_dq.input[0]], inits[w_dq.input[1]]
            assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],), conv.name
        counts = check_qdq(path)
        assert counts["per_channel_weights"] == len(convs)


def test_int8_and_fp16_engines_run_in_onnxruntime_close_to_fp32(lite_built, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    """The derived graphs keep FP32 inputs/outputs and compute nearly what the FP32 graph does."""
    _, rows = lite_built
    # Inputs like the calibration's but not the same ones (other augmentations of the sample face):
    # INT8 ranges hold for the input distribution they were calibrated on.
    faces = load_calibration(CalibConfig(size=2, seed=7), 5).faces
    ref = ort.InferenceSession(str(lite_onnx[IDENTITY_GRAPH]), providers=["CPUExecutionProvider"])
    want = ref.run(None, {FACES: faces})
    for precision, rel_tol in (("fp16", 1e-2), ("int8", 0.1)):
        sess = ort.InferenceSession(str(by(rows, precision, IDENTITY_GRAPH).path), providers=["CPUExecutionProvider"])
        assert [i.type for i in sess.get_inputs()] == ["tensor(float)"]
        got = sess.run(None, {FACES: faces})
        for w, g in zip(want, got):
            assert g.dtype == np.float32
            rel = np.sqrt(np.mean((g - w) ** 2)) / np.std(w)  # RMS error relative to the signal
            assert rel < rel_tol, (precision, rel)


def test_manifest_fields_and_reuse(lite_built, lite_loaded, caplog) -> None:  # type: ignore[no-untyped-def]
    settings, rows = lite_built
    row = by(rows, "int8", FRAME_GRAPH)
    manifest = json.loads(row.path.with_suffix(".json").read_text())
    fp32 = json.loads((row.path.parent / "frame-fp32-onnxruntime.json").read_text())
    assert manifest["source_onnx_sha256"] == fp32["sha256"]
    assert manifest["precision"] == "int8" and manifest["backend"] == "onnxruntime" and manifest["graph"] == "frame"
    assert manifest["builder"]["version"] == ort.__version__ and "quantize_static" in manifest["builder"]["name"]
    assert manifest["config"]["calib"]["method"] == "minmax" and manifest["config"]["calib"]["size"] == 8
    assert manifest["build_seconds"] > 0 and manifest["size_bytes"] == row.path.stat().st_size
    names = [t["name"] for t in manifest["inputs"]]
    assert names == [t.name for t in graph_specs(lite_loaded.model.cfg)[FRAME_GRAPH].inputs]
    # A second build reuses both engines (manifest check passes) instead of rebuilding them.
    assert manifest["recipe"]["calib"]["method"] == "minmax" and "Add" in manifest["recipe"]["fp32_ops"]
    mtime = row.path.stat().st_mtime_ns
    again = build(lite_loaded, settings, precision="int8", backend="onnxruntime")
    assert all(r.reused for r in again) and row.path.stat().st_mtime_ns == mtime


def test_changed_recipe_rebuilds(lite_built, lite_loaded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Another calibration (method, size, source) makes other INT8 bytes: the cached engine is rebuilt."""
    import dataclasses

    from speech2vid.engine.cache import cache_folder

    settings, _ = lite_built
    src = cache_folder(lite_loaded, settings.engine.cache_dir)
    shutil.copytree(src, tmp_path / src.name)
    other = dataclasses.replace(settings, calib=CalibConfig(size=4, method="percentile"))
    rows = build(lite_loaded, other, precision="int8", backend="onnxruntime", cache_dir=tmp_path)
    assert not any(r.reused for r in rows)
    manifest = json.loads(rows[0].path.with_suffix(".json").read_text())
    assert manifest["recipe"]["calib"]["method"] == "percentile" and manifest["config"]["calib"]["size"] == 4


def test_build_refuses_what_it_cannot_make(lite_loaded, lite_built) -> None:  # type: ignore[no-untyped-def]
    settings, _ = lite_built
    with pytest.raises(EngineError, match="bf16"):
        build(lite_loaded, settings, precision="bf16", backend="onnxruntime")
    if installed_tensorrt_version() is None:
        with pytest.raises(EngineError, match="TensorRT is not installed") as info:
            build(lite_loaded, settings, precision="fp16", backend="tensorrt")
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- TensorRT recipe


def test_tensorrt_build_path_per_version() -> None:
    """TensorRT 10 (JetPack 6): builder flags on the FP32 graph for FP16, Q/DQ graph + INT8 flag;
    TensorRT 11: strongly typed networks only, each from the graph of its own precision."""
    assert build_path("10.3.0", "fp16").flags == ("FP16",) and build_path("10.3.0", "fp16").onnx_precision == "fp32"
    assert (
        build_path("10.13.0.35", "int8").flags == ("INT8",)
        and build_path("10.13.0.35", "int8").onnx_precision == "int8"
    )
    assert not build_path("10.3.0", "fp32").strongly_typed
    for precision in ("fp32", "fp16", "int8"):
        path = build_path("11.4.0", precision)
        assert path.strongly_typed and path.flags == () and path.onnx_precision == precision
    with pytest.raises(EngineError, match="bf16"):
        build_path("10.3.0", "bf16")


# ----------------------------------------------------------------------------- calibration data


def test_sample_calibration_is_real_and_deterministic(lite_loaded, lite_built) -> None:  # type: ignore[no-untyped-def]
    cfg = CalibConfig(size=6, seed=1)
    a, b = load_calibration(cfg, 5), load_calibration(cfg, 5)
    assert a.faces.shape == (6, 15, 112, 112) and a.windows.shape == (6, 1, 12, 35)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.windows, b.windows)
    assert 0 <= a.faces.min() and a.faces.max() <= 255 and a.faces.std() > 10  # a real photo, not a constant
    assert np.abs(a.windows).max() > 5  # speech cepstra
    assert len({a.faces[i].tobytes() for i in range(6)}) == 6  # augmented: six different identities
    from speech2vid.engine.torch_backend import torch_runners

    identity, _ = torch_runners(lite_loaded.model, graph_specs(lite_loaded.model.cfg))
    with identity:
        frame_feeds = graph_feeds(a, FRAME_GRAPH, identity.infer)
    frame_inputs = {t.name for t in graph_specs(lite_loaded.model.cfg)[FRAME_GRAPH].inputs}
    assert len(frame_feeds) == 6 and set(frame_feeds[0]) == frame_inputs and MFCC in frame_inputs
    assert frame_feeds[0][MFCC].shape == (1, 1, 12, 35)


def test_calibration_folder_and_bad_folders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.assets import sample_face, sample_speech

    folder = tmp_path / "calib"
    (folder / "speaker1").mkdir(parents=True)
    shutil.copy(sample_speech(), folder / "speaker1" / "a.wav")
    shutil.copy(sample_face(), folder / "speaker1" / "face.png")
    data = load_calibration(CalibConfig(source=str(folder), size=4), 5)
    assert str(folder) in data.source and data.windows.shape == (4, 1, 12, 35) and data.faces.shape == (4, 15, 112, 112)
    for bad, why in ((tmp_path / "nowhere", "not found"), (tmp_path / "empty", "0 speech files")):
        if why != "not found":
            bad.mkdir()
        with pytest.raises(CalibrationError, match=why) as info:
            load_calibration(CalibConfig(source=str(bad)), 5)
        assert "\n" not in str(info.value)
