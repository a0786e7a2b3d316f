"""ONNX export: valid graphs with dynamic batch axes, and a cache that is reused only when intact."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from speech2vid.build_engines import onnx_export
from speech2vid.build_engines.onnx_export import BATCH_AXIS, IDENTITY_BATCH_AXIS, export_fp32
from speech2vid.config import EngineConfig
from speech2vid.engine.cache import CORRUPT, MISSING, STALE, EngineRefused, cache_folder, cached_engine, check_engine
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.files import sha256_file
from speech2vid.model.io_spec import FACE_SIZE, FRAME_GRAPH, GRAPHS, IDENTITY_GRAPH, MFCC, OUTPUT_SIZE

pytestmark = pytest.mark.slow  # an ONNX export and INT8/FP16 builds, or mypy over the engine package

ort = pytest.importorskip("onnxruntime")
LOGGER = "speech2vid.build_engines.onnx_export"


def session(path: Path):  # type: ignore[no-untyped-def]
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_graphs_pass_checker_with_dynamic_batch_axes(lite_onnx) -> None:  # type: ignore[no-untyped-def]
    for graph, path in lite_onnx.items():
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)  # weights inside
        for value in [*model.graph.input, *model.graph.output]:
            first = value.type.tensor_type.shape.dim[0]
            identity_input = graph == FRAME_GRAPH and value.name != MFCC and value in model.graph.input
            want = IDENTITY_BATCH_AXIS if identity_input else BATCH_AXIS
            assert first.dim_param == want, (graph, value.name)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_dynamic_batch(n, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(n)
    identity, frame = session(lite_onnx[IDENTITY_GRAPH]), session(lite_onnx[FRAME_GRAPH])
    faces = rng.uniform(0, 255, (n, 15, FACE_SIZE, FACE_SIZE)).astype(np.float32)
    ident = dict(zip([o.name for o in identity.get_outputs()], identity.run(None, {"faces": faces})))
    assert all(v.shape[0] == n for v in ident.values())
    first = identity.run(None, {"faces": faces[:1]})
    for name, one in zip([o.name for o in identity.get_outputs()], first):
        np.testing.assert_allclose(ident[name][:1], one, rtol=0, atol=1e-4)

    mfcc = (rng.standard_normal((n, 1, N_CEPS, WINDOW_COLS)) * 10).astype(np.float32)
    one_identity = {k: v[:1] for k, v in ident.items()}  # batch 1, broadcast inside the graph
    tiled = {k: np.ascontiguousarray(np.repeat(v[:1], n, axis=0)) for k, v in ident.items()}
    broadcast, motion = frame.run(None, {"mfcc": mfcc, **one_identity})  # the frame, and the warp head's motion
    full, full_motion = frame.run(None, {"mfcc": mfcc, **tiled})
    assert broadcast.shape == (n, 3, OUTPUT_SIZE, OUTPUT_SIZE) and motion.shape == (n, 6, OUTPUT_SIZE, OUTPUT_SIZE)
    np.testing.assert_allclose(broadcast, full, rtol=0, atol=1e-6)
    np.testing.assert_allclose(motion, full_motion, rtol=0, atol=1e-5)
    per_sample, _ = frame.run(None, {"mfcc": mfcc, **ident})  # identity batch N: one identity per window
    assert per_sample.shape == (n, 3, OUTPUT_SIZE, OUTPUT_SIZE)


def export_of(loaded, graph: str, cache: Path):  # type: ignore[no-untyped-def]
    return cached_engine(loaded, graph, "onnxruntime", "fp32", cache)


def refusal(loaded, graph: str, cache: Path, opset: int = 18) -> str | None:  # type: ignore[no-untyped-def]
    """The kind of refusal of the cached export (None: valid)."""
    try:
        check_engine(loaded, export_of(loaded, graph, cache), opset=opset)
    except EngineRefused as exc:
        return exc.kind
    return None


def test_cache_is_reused(lite_loaded, engine_cache, lite_onnx, caplog) -> None:  # type: ignore[no-untyped-def]
    mtimes = {g: p.stat().st_mtime_ns for g, p in lite_onnx.items()}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        again = {g: e.path for g, e in export_fp32(lite_loaded, EngineConfig(), engine_cache).items()}
    assert again == lite_onnx
    assert {g: p.stat().st_mtime_ns for g, p in again.items()} == mtimes
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum(m.startswith("reusing") for m in messages) == 2 and not any(m.startswith("exporting") for m in messages)
    manifest = json.loads(export_of(lite_loaded, IDENTITY_GRAPH, engine_cache).manifest_path.read_text())
    for key in (
        "format",
        "sha256",
        "model",
        "fingerprint",
        "precision",
        "backend",
        "opset",
        "builder",
        "inputs",
        "outputs",
        "model_config",
        "weights",
        "created",
    ):
        assert key in manifest, key
    assert manifest["format"] == "speech2vid-engine-2"  # the one manifest format of the cache
    assert manifest["precision"] == "fp32" and manifest["model"] == "lite" and manifest["opset"] == 18
    assert manifest["sha256"] == sha256_file(lite_onnx[IDENTITY_GRAPH])


def test_tampered_onnx_is_exported_again(lite_loaded, engine_cache, lite_onnx, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    shutil.copytree(engine_cache, cache)  # never touch the session's shared cache
    entry = export_of(lite_loaded, IDENTITY_GRAPH, cache)
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights: still a loadable file
    entry.path.write_bytes(bytes(data))
    assert refusal(lite_loaded, IDENTITY_GRAPH, cache) == CORRUPT
    with caplog.at_level(logging.INFO, logger=LOGGER):
        export_fp32(lite_loaded, EngineConfig(), cache)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(m.startswith("exporting the identity graph") and "corrupt" in m for m in messages)
    assert any(m.startswith("reusing the frame graph") for m in messages)  # only the tampered graph is redone
    assert refusal(lite_loaded, IDENTITY_GRAPH, cache) is None
    assert entry.path.read_bytes() != bytes(data)


def test_manifest_mismatch_or_missing_is_refused(lite_loaded, engine_cache, lite_onnx, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    shutil.copytree(engine_cache, cache)
    entry = export_of(lite_loaded, FRAME_GRAPH, cache)
    assert refusal(lite_loaded, FRAME_GRAPH, cache, opset=19) == STALE  # another opset than the run's
    entry.manifest_path.write_text("{not json")
    assert refusal(lite_loaded, FRAME_GRAPH, cache) == CORRUPT
    entry.manifest_path.unlink()  # e.g. killed between the ONNX rename and the manifest write
    assert refusal(lite_loaded, FRAME_GRAPH, cache) == MISSING


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt / a kill arriving in the middle of writing the file."""


class _HalfWrittenProgram:
    def save(self, path: Path, external_data: bool = False) -> None:
        Path(path).write_bytes(b"\x08\x07" + b"\0" * 1000)  # the first bytes of a model, then the interrupt
        raise _Interrupted


def test_interrupted_export_leaves_nothing_that_looks_complete(lite_loaded, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(onnx_export, "export_onnx_program", lambda *a, **k: _HalfWrittenProgram())
    cache = tmp_path / "cache"
    with pytest.raises(_Interrupted):
        export_fp32(lite_loaded, EngineConfig(), cache)
    for graph in GRAPHS:
        entry = export_of(lite_loaded, graph, cache)
        assert not entry.path.exists() and not entry.manifest_path.exists()
        assert refusal(lite_loaded, graph, cache) == MISSING
    assert not [p for p in cache.rglob("*") if p.is_file()]  # the temporary file was removed too
    assert not cache_folder(lite_loaded, cache).exists()  # and the model folder it was made for, empty

    # A hard kill skips the clean-up: the temporary name still never looks like a finished export.
    entry = export_of(lite_loaded, IDENTITY_GRAPH, cache)
    entry.path.parent.mkdir(parents=True)
    (entry.path.parent / f".{entry.path.name}.partial-12345.onnx").write_bytes(b"\x08\x07")
    assert refusal(lite_loaded, IDENTITY_GRAPH, cache) == MISSING
