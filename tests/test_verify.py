"""`speech2vid verify`: the metrics against hand-computed values, the verdicts, and a real run over the
built lite engines, including an engine that is wrong on purpose and must fail (non-zero exit)."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from speech2vid.build_engines.verify import TOLERANCES, Metric, compare, judge, verify
from speech2vid.engine.cache import cache_folder, cached_engine, fp32_export_sha256, write_manifest
from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS, graph_specs

pytestmark = pytest.mark.slow  # an ONNX export and INT8/FP16 builds, or mypy over the engine package


def test_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, 10_000)
    noise = rng.standard_normal(10_000) * 0.01
    max_abs, cosine, psnr, snr = compare(ref, ref + noise, peak=1.0)
    mse = np.mean(noise**2)
    assert max_abs == pytest.approx(np.abs(noise).max())
    assert psnr == pytest.approx(10 * math.log10(1 / mse))  # about 40 dB for sigma 0.01
    assert snr == pytest.approx(10 * math.log10(np.var(ref) / mse))  # var of U(0,1) = 1/12
    assert cosine == pytest.approx(np.dot(ref, ref + noise) / np.linalg.norm(ref) / np.linalg.norm(ref + noise))
    assert compare(ref, ref, 1.0)[2] == math.inf
    # A near-constant output: PSNR looks excellent, SNR shows the error is as large as the signal.
    flat = 0.5 + rng.standard_normal(10_000) * 1e-3
    _, _, psnr_flat, snr_flat = compare(flat, flat + rng.standard_normal(10_000) * 1e-3, peak=1.0)
    assert psnr_flat > 55 and abs(snr_flat) < 4


def test_judge_applies_the_stated_tolerances() -> None:
    good = Metric("frame", "frame", 1e-4, 1.0, 80.0, 70.0)
    assert judge("fp32", [good]) == ()
    assert judge("fp32", [Metric("frame", "frame", 2e-3, 1.0, 80.0, 70.0)])[0].startswith("frame max abs error")
    assert "PSNR" in judge("fp16", [Metric("frame", "frame", 1e-2, 1.0, 39.0, 50.0)])[0]
    assert "SNR" in judge("int8", [Metric("identity", "skip_a", 1e-1, 1.0, 50.0, 12.0)])[0]
    assert judge("int8", [Metric("frame", "frame", 1e-2, 1.0, 31.0, 21.0)]) == ()
    assert (
        TOLERANCES["fp32"].frame_max_abs == 1e-3
        and TOLERANCES["fp16"].frame_psnr_db == 40
        and TOLERANCES["int8"].frame_psnr_db == 30
    )


def test_verify_passes_built_engines_and_fails_a_wrong_one(lite_built, lite_loaded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses
    import shutil

    from speech2vid.cli import main

    settings, _ = lite_built
    checks, notes, reference = verify(lite_loaded, settings, backends=["onnxruntime"])
    assert reference == "PyTorch FP32"
    n_outputs = sum(len(spec.outputs) for spec in graph_specs(lite_loaded.cfg).values())
    assert [c.precision for c in checks] == ["fp32", "fp16", "int8"] and notes == []
    for c in checks:
        assert c.passed, (c.precision, c.failures)
        assert {m.graph for m in c.metrics} == set(GRAPHS) and len(c.metrics) == n_outputs and c.samples == 8
    int8 = {m.output: m for m in checks[2].metrics}
    fp32 = {m.output: m for m in checks[0].metrics}
    assert int8["frame"].snr_db < fp32["frame"].snr_db - 30  # the metrics see INT8's noise

    # A wrong FP16 engine: the last conv's bias negated, with a valid manifest (so it opens).
    # (The last one: with random weights the audio path barely reaches the frame, see docs/engines.md.)
    src = cache_folder(lite_loaded, settings.engine.cache_dir)
    shutil.copytree(src, tmp_path / src.name)
    entry = cached_engine(lite_loaded, FRAME_GRAPH, "onnxruntime", "fp16", tmp_path)
    model = onnx.load(str(entry.path))
    conv = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    producers = {o: n for n in model.graph.node for o in n.output}
    weight_name = conv.input[2]  # its bias: the warp head's mask bias -4 -> +4 lays the colour layer over the face
    if weight_name in producers:  # behind a Cast: scale the FP16 initializer feeding it
        weight_name = producers[weight_name].input[0]
    init = next(t for t in model.graph.initializer if t.name == weight_name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float16(-1.0), init.name))
    onnx.save(model, str(entry.path))
    old = json.loads(entry.manifest_path.read_text())
    write_manifest(
        lite_loaded,
        entry,
        opset=18,
        source_sha256=fp32_export_sha256(lite_loaded, FRAME_GRAPH, 18, tmp_path),
        builder=old["builder"],
        config=old["config"],
        build_seconds=old["build_seconds"],
    )
    wrong_settings = dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, cache_dir=str(tmp_path)))
    checks, _, _ = verify(lite_loaded, wrong_settings, backends=["onnxruntime"], precisions=["fp16"])
    assert not checks[0].passed and any("frame/frame SNR" in f for f in checks[0].failures), checks[0].failures

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"engine:\n  cache_dir: {tmp_path}\ncalib:\n  size: 4\n  method: minmax\n")
    report = tmp_path / "verify.json"
    rc = main(
        [
            "--config",
            str(cfg),
            "verify",
            "--model",
            "lite",
            "--weights",
            "random",
            "--precision",
            "fp16",
            "--json",
            str(report),
        ]
    )
    assert rc == 1
    data = json.loads(report.read_text())
    assert data["checks"][0]["passed"] is False and data["checks"][0]["precision"] == "fp16"
    rc = main(["--config", str(cfg), "verify", "--model", "lite", "--weights", "random", "--precision", "int8"])
    assert rc == 0
