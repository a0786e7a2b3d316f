"""The latency benchmark: a tiny run over every available backend gives sane numbers and a complete JSON."""

from __future__ import annotations

import json
import math

import pytest

from speech2vid.bench.latency import BenchResult, format_table, machine_info, parse_target, run_bench, to_json
from speech2vid.config import EngineConfig, Settings
from speech2vid.engine.factory import available_backends
from speech2vid.errors import EngineError

RESULT_FIELDS = (
    "model", "backend", "device", "precision", "batch", "calls", "call_median_ms", "call_p99_ms",
    "frame_median_ms", "frame_p99_ms", "fps", "realtime_factor", "target",
)  # fmt: skip


def test_tiny_bench_run(lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    backends = available_backends()
    settings = Settings(engine=EngineConfig(cache_dir=str(engine_cache)))
    json_path = tmp_path / "bench.json"
    results = run_bench(["lite"], backends, batch=2, seconds=0.3, json_path=json_path, settings=settings, warmup=1)

    assert [r.backend for r in results] == backends
    for r in results:
        assert isinstance(r, BenchResult) and r.model == "lite" and r.device == "cpu" and r.precision == "fp32"
        values = (r.call_median_ms, r.call_p99_ms, r.frame_median_ms, r.frame_p99_ms, r.fps, r.realtime_factor)
        assert all(math.isfinite(v) and v > 0 for v in values), r
        assert r.call_median_ms <= r.call_p99_ms and r.calls >= 1
        assert r.frame_median_ms == pytest.approx(r.call_median_ms / 2)
        assert r.realtime_factor == pytest.approx(r.fps / 25.0)

    data = json.loads(json_path.read_text())
    assert data == json.loads(json.dumps(to_json(results, data["machine"]) | {"created": data["created"]}))
    for key in ("cpu", "cores", "torch", "onnxruntime"):
        assert key in data["machine"], key
    for row in data["results"]:
        for key in RESULT_FIELDS:
            assert key in row, key

    table = format_table(results)
    assert all(b in table for b in backends) and "ms/call median" in table  # batch 2 shows per-call columns


def test_targets_and_machine() -> None:
    base = EngineConfig()
    assert parse_target("torch", base) == ("torch", "cpu", "fp32")
    assert parse_target("torch:cpu:bf16", base) == ("torch", "cpu", "bf16")
    with pytest.raises(EngineError):
        parse_target("torch::", base)
    info = machine_info()
    assert info["cores"] >= 1 and info["cpu"]
