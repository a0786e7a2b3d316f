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
from speech2vid.build_engines.onnx_export import (
    BATCH_AXIS,
    IDENTITY_BATCH_AXIS,
    cached_graph,
    export_engines,
    stale_reason,
)
from speech2vid.config import EngineConfig
from speech2vid.files import sha256_file
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.model.io_spec import FACE_SIZE, FRAME_GRAPH, GRAPHS, IDENTITY_FEATURES, IDENTITY_GRAPH, OUTPUT_SIZE

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
            want = IDENTITY_BATCH_AXIS if graph == FRAME_GRAPH and value.name in IDENTITY_FEATURES else BATCH_AXIS
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
    (broadcast,) = frame.run(None, {"mfcc": mfcc, **one_identity})
    (full,) = frame.run(None, {"mfcc": mfcc, **tiled})
    assert broadcast.shape == (n, 3, OUTPUT_SIZE, OUTPUT_SIZE)
    np.testing.assert_allclose(broadcast, full, rtol=0, atol=1e-6)
    (per_sample,) = frame.run(None, {"mfcc": mfcc, **ident})  # identity batch N: one identity per window
    assert per_sample.shape == (n, 3, OUTPUT_SIZE, OUTPUT_SIZE)


def test_cache_is_reused(lite_loaded, engine_cache, lite_onnx, caplog) -> None:  # type: ignore[no-untyped-def]
    mtimes = {g: p.stat().st_mtime_ns for g, p in lite_onnx.items()}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        again = export_engines(lite_loaded, EngineConfig(), engine_cache)
    assert again == lite_onnx
    assert {g: p.stat().st_mtime_ns for g, p in again.items()} == mtimes
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("reusing cached" in m for m in messages) == 2 and not any(m.startswith("exporting") for m in messages)
    manifest = json.loads(cached_graph(lite_loaded, IDENTITY_GRAPH, 18, engine_cache).manifest_path.read_text())
    for key in ("sha256", "model", "fingerprint", "precision", "opset", "torch", "onnx", "inputs", "outputs", "created"):
        assert key in manifest, key
    assert manifest["precision"] == "fp32" and manifest["model"] == "lite"
    assert manifest["sha256"] == sha256_file(lite_onnx[IDENTITY_GRAPH])


def test_tampered_onnx_is_exported_again(lite_loaded, engine_cache, lite_onnx, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    shutil.copytree(engine_cache, cache)  # never touch the session's shared cache
    entry = cached_graph(lite_loaded, IDENTITY_GRAPH, 18, cache)
    data = bytearray(entry.onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights: still a loadable file
    entry.onnx_path.write_bytes(bytes(data))
    assert "sha256" in (stale_reason(entry) or "")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        export_engines(lite_loaded, EngineConfig(), cache)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(m.startswith("exporting identity") and "sha256" in m for m in messages)
    assert any("reusing cached frame" in m for m in messages)  # only the tampered graph is redone
    assert stale_reason(entry) is None
    assert entry.onnx_path.read_bytes() != bytes(data)


def test_manifest_mismatch_or_missing_is_stale(lite_loaded, engine_cache, lite_onnx, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    shutil.copytree(engine_cache, cache)
    entry = cached_graph(lite_loaded, FRAME_GRAPH, 18, cache)
    manifest = json.loads(entry.manifest_path.read_text())
    entry.manifest_path.write_text(json.dumps({**manifest, "torch": "1.0.0"}))
    assert "'torch'" in (stale_reason(entry) or "")
    entry.manifest_path.write_text("{not json")
    assert "unreadable" in (stale_reason(entry) or "")
    entry.manifest_path.unlink()  # e.g. killed between the ONNX rename and the manifest write
    assert "no manifest" in (stale_reason(entry) or "")
    assert cached_graph(lite_loaded, FRAME_GRAPH, 17, cache).onnx_path != entry.onnx_path  # opset is in the key


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
        export_engines(lite_loaded, EngineConfig(), cache)
    for graph in GRAPHS:
        entry = cached_graph(lite_loaded, graph, 18, cache)
        assert not entry.onnx_path.exists() and not entry.manifest_path.exists()
        assert stale_reason(entry) is not None
    assert not [p for p in cache.rglob("*") if p.is_file()]  # the temporary file was removed too

    # A hard kill skips the clean-up: the temporary name still never looks like a finished export.
    entry = cached_graph(lite_loaded, IDENTITY_GRAPH, 18, cache)
    (entry.onnx_path.parent / f".{entry.onnx_path.name}.12345.partial").write_bytes(b"\x08\x07")
    assert "no manifest" in (stale_reason(entry) or "")
