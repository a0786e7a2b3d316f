"""The benchmark: a tiny run over several targets gives sane numbers, a complete JSON and a PNG plot."""

from __future__ import annotations

import json
import math

import pytest

from speech2vid.bench.latency import BenchResult, default_targets, format_table, parse_target, run_bench, to_json
from speech2vid.bench.machine import PeakMemory, gemm_peak_gflops, machine_info
from speech2vid.config import EngineConfig
from speech2vid.engine.factory import available_backends
from speech2vid.errors import EngineError
from speech2vid.model.cost import per_frame_macs

RESULT_FIELDS = (
    "model",
    "backend",
    "device",
    "precision",
    "batch",
    "calls",
    "call_median_ms",
    "call_p90_ms",
    "call_p99_ms",
    "frame_median_ms",
    "frame_p90_ms",
    "frame_p99_ms",
    "fps",
    "realtime_factor",
    "peak_memory_mb",
    "engine_mb",
    "build_s",
    "gflops",
    "peak_gflops",
    "peak_fraction",
    "target",
)


def test_tiny_bench_run(lite_built, lite_loaded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, _ = lite_built
    targets = ["onnxruntime:cpu:fp32", "onnxruntime:cpu:int8", "torch:cpu:fp32"]
    json_path, png = tmp_path / "bench.json", tmp_path / "bench.png"
    results = run_bench(
        ["lite"], targets, [1, 2], seconds=0.2, json_path=json_path, settings=settings, warmup=1, plot_path=png
    )

    assert [(r.target, r.batch) for r in results] == [(t, b) for t in targets for b in (1, 2)]
    flops = 2 * per_frame_macs(lite_loaded.model)
    for r in results:
        assert isinstance(r, BenchResult) and r.model == "lite" and r.device == "cpu"
        values = (r.call_median_ms, r.call_p90_ms, r.call_p99_ms, r.fps, r.realtime_factor, r.gflops, r.peak_gflops)
        assert all(math.isfinite(v) and v > 0 for v in values), r
        assert r.call_median_ms <= r.call_p90_ms <= r.call_p99_ms and r.calls >= 1
        assert r.frame_median_ms == pytest.approx(r.call_median_ms / r.batch)
        assert r.realtime_factor == pytest.approx(r.fps / 25.0)
        assert r.gflops == pytest.approx(flops * r.fps / 1e9) and r.peak_fraction == pytest.approx(
            r.gflops / r.peak_gflops
        )
        assert r.engine_mb is not None and r.engine_mb > 0
    int8 = next(r for r in results if r.precision == "int8")
    fp32 = next(r for r in results if r.target == "onnxruntime:cpu:fp32")
    assert int8.build_s is not None and int8.build_s > 0  # from the manifests
    assert int8.engine_mb < fp32.engine_mb / 2  # int8 weights: a quarter of the bytes, plus scales

    data = json.loads(json_path.read_text())
    assert data == json.loads(json.dumps(to_json(results, data["machine"]) | {"created": data["created"]}))
    for key in ("cpu", "cores", "torch", "onnxruntime", "load_average_1min"):
        assert key in data["machine"], key
    for row in data["results"]:
        for key in RESULT_FIELDS:
            assert key in row, key
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    table = format_table(results)
    assert all(t.split(":")[0] in table for t in targets) and "% of peak" in table and "GEMM" in table


def test_targets_machine_and_peak() -> None:
    base = EngineConfig()
    assert parse_target("torch", base) == ("torch", "cpu", "fp32")
    assert parse_target("torch:cpu:bf16", base) == ("torch", "cpu", "bf16")
    assert parse_target("tensorrt", base)[1] == "cuda"
    with pytest.raises(EngineError):
        parse_target("torch::", base)
    targets = default_targets()
    assert "onnxruntime:cpu:int8" in targets and "torch:cpu:fp32" in targets
    assert any(t.startswith("tensorrt") for t in targets) == ("tensorrt" in available_backends())
    info = machine_info()
    assert info["cores"] >= 1 and info["cpu"]
    assert gemm_peak_gflops("cpu") > 0.5


def test_peak_memory_sees_an_allocation() -> None:
    import numpy as np

    with PeakMemory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    if mem.peak_bytes is None:
        pytest.skip("no /proc/self/status on this platform")
    assert mem.peak_bytes >= 60 * 2**20


@pytest.mark.slow
def test_pipeline_bench_runs_each_pipeline_and_times_its_stages(tmp_path: Path) -> None:
    """``bench --pipeline`` (issue 25): every pipeline runs at the asked size and reports its stages."""
    import json
    import subprocess
    import sys

    out = tmp_path / "pipe.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "-q",
            "bench",
            "--pipeline",
            "--size",
            "320",
            "--pipeline-seconds",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["pipeline"] for r in rows] == ["generate", "redub", "live"]
    for r in rows:
        assert r["frames"] >= 50 and r["fps"] > 0, r
    generate, redub, live = rows
    assert {"features", "engine", "composite", "encode", "x264 (thread)", "mux"} <= set(generate["stages"])
    assert {"decode", "detect/track", "engine", "composite", "encode"} <= set(redub["stages"])
    assert "inference" in live["stages"] and "dropped" in live["note"]
    assert "generate" in proc.stdout and "x real time" in proc.stdout
