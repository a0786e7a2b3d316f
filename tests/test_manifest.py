"""The engine cache refuses, before deserialising, an engine that is missing, stale, foreign or corrupt:
one line, the kind of refusal, and the `speech2vid build` command that fixes it.

Each test works on a private copy of the session's built lite engines (INT8 Q/DQ graphs), opened the
way the runtime opens them (``make_engine`` + ``engine.open()``), so the check under test is the one
every user of an engine goes through.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from speech2vid.engine.cache import (
    CORRUPT,
    FOREIGN,
    MISSING,
    STALE,
    EngineRefused,
    cache_folder,
    cached_engine,
    check_engine,
    fp32_export_sha256,
)
from speech2vid.engine.factory import make_engine
from speech2vid.model.io_spec import FRAME_GRAPH

pytestmark = pytest.mark.slow  # an ONNX export and INT8/FP16 builds, or mypy over the engine package

FIX = "speech2vid build --model lite --precision int8 --backend onnxruntime --weights random"


@pytest.fixture()
def cache(lite_built, lite_loaded, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """A private copy of the built engine cache (the tests below damage it)."""
    settings, _ = lite_built
    src = cache_folder(lite_loaded, settings.engine.cache_dir)
    shutil.copytree(src, tmp_path / src.name)
    return tmp_path


def refusal(loaded, settings, cache: Path) -> EngineRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineRefused) as info:
        engine = make_engine(loaded, settings.engine, backend="onnxruntime", precision="int8", cache_dir=cache)
        engine.open()
    text = str(info.value)
    assert "\n" not in text and text.endswith(f"rebuild it with `{FIX}`"), text
    return info.value


def frame_entry(loaded, cache: Path):  # type: ignore[no-untyped-def]
    return cached_engine(loaded, FRAME_GRAPH, "onnxruntime", "int8", cache)


def test_intact_copy_opens(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    settings, _ = lite_built
    with make_engine(lite_loaded, settings.engine, backend="onnxruntime", precision="int8", cache_dir=cache) as engine:
        assert engine.frame_runner.precision == "int8"


def test_missing_engine_refused(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    settings, _ = lite_built
    entry = frame_entry(lite_loaded, cache)
    entry.path.unlink()
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == MISSING and "has not been built" in str(exc)
    entry.manifest_path.unlink()  # the manifest alone gone: still missing (an interrupted build)
    shutil.copy(cache_folder(lite_loaded, settings.engine.cache_dir) / entry.path.name, entry.path)
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == MISSING and "no manifest" in str(exc)


def test_stale_engine_refused(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    """The FP32 export changed (re-exported from other weights or by another exporter) or is gone:
    engines built from it are stale."""
    settings, _ = lite_built
    entry = frame_entry(lite_loaded, cache)
    data = json.loads(entry.manifest_path.read_text())
    entry.manifest_path.write_text(json.dumps({**data, "source_onnx_sha256": "0" * 64}))
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == STALE and "FP32 ONNX export changed" in str(exc)
    entry.manifest_path.write_text(json.dumps(data))
    (cache_folder(lite_loaded, cache) / "frame-fp32-onnxruntime.onnx").unlink()
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == STALE and "gone" in str(exc)


def test_foreign_engine_refused(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    """An engine copied in from another model's or another machine's cache."""
    settings, _ = lite_built
    entry = frame_entry(lite_loaded, cache)
    data = json.loads(entry.manifest_path.read_text())
    data["fingerprint"] = "f" * 64  # built from other weights
    entry.manifest_path.write_text(json.dumps(data))
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == FOREIGN and "fingerprint" in str(exc)


def test_foreign_gpu_or_tensorrt_refused(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    """TensorRT engines are tied to the TensorRT version and the GPU: the environment in the manifest
    must equal the running machine's (what TensorRTRunner passes from ``gpu_environment()``)."""
    entry = frame_entry(lite_loaded, cache)
    data = json.loads(entry.manifest_path.read_text())
    data["environment"] = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    entry.manifest_path.write_text(json.dumps(data))
    sha = fp32_export_sha256(lite_loaded, FRAME_GRAPH, 18, cache)
    same = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    assert check_engine(lite_loaded, entry, opset=18, source_sha256=sha, environment=same)["precision"] == "int8"
    for key, other in (("tensorrt", "10.13.0.35"), ("gpu", "NVIDIA H100 80GB HBM3"), ("compute_capability", "9.0")):
        with pytest.raises(EngineRefused) as info:
            check_engine(lite_loaded, entry, opset=18, source_sha256=sha, environment={**same, key: other})
        assert info.value.kind == FOREIGN and key in str(info.value) and other in str(info.value)


def test_corrupt_engine_refused(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    settings, _ = lite_built
    entry = frame_entry(lite_loaded, cache)
    blob = bytearray(entry.path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte: same size, different sha256
    entry.path.write_bytes(bytes(blob))
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == CORRUPT and "sha256" in str(exc)
    entry.path.write_bytes(bytes(blob[: len(blob) // 2]))  # truncated
    assert refusal(lite_loaded, settings, cache).kind == CORRUPT
    entry.manifest_path.write_text("{ not json")
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == CORRUPT and "not readable JSON" in str(exc)


def test_minimal_manifest_is_corrupt_not_built_for_none(lite_built, lite_loaded, cache) -> None:  # type: ignore[no-untyped-def]
    """A manifest that names no model says so, instead of "built for model 'None'" (issue 13)."""
    settings, _ = lite_built
    entry = frame_entry(lite_loaded, cache)
    entry.manifest_path.write_text(json.dumps({"format": json.loads(entry.manifest_path.read_text())["format"]}))
    exc = refusal(lite_loaded, settings, cache)
    assert exc.kind == CORRUPT and "has no 'model'" in str(exc) and "None" not in str(exc)


def test_cli_prints_refusal_as_one_line(lite_built, lite_loaded, cache, capsys) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.cli import main

    frame_entry(lite_loaded, cache).path.unlink()
    cfg = cache / "cfg.yaml"
    cfg.write_text(f"engine:\n  cache_dir: {cache}\n")
    from speech2vid.assets import sample_face, sample_speech

    rc = main(
        [
            "--config",
            str(cfg),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(sample_speech()),
            "-o",
            str(cache / "out.mp4"),
            "--model",
            "lite",
            "--weights",
            "random",
            "--precision",
            "int8",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("speech2vid: error: missing engine") and FIX in err[-1]
    assert not (cache / "out.mp4").exists()
