"""The engine cache as a user meets it: the graphs the package ships, a cache that cannot be written,
`speech2vid cache list|prune`, `verify` catching a graph relabelled as another precision, and the
commands that need PyTorch when it is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speech2vid.cli import main
from speech2vid.config import EngineConfig, load_model_config, model_names
from speech2vid.engine.cache import EngineRefused, cache_folder, cached_engine, fp32_export, list_cache, shipped_folder
from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS
from speech2vid.model.ref import bundled_weights, model_ref


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speech2vid: error: "), err
    return err[0]


# ----------------------------------------------------------------------------- shipped graphs


@pytest.mark.parametrize("name", [n for n in model_names() if bundled_weights(n) is not None])
def test_shipped_graphs_are_the_bundled_weights(name: str) -> None:
    """The package's FP32 graphs were exported from its bundled weights and model config: otherwise the
    runtime install (no PyTorch) cannot run the default model. Fix: `speech2vid export --default`."""
    ref = model_ref(load_model_config(name), None)
    for graph in GRAPHS:
        try:
            entry, manifest = fp32_export(ref, graph, EngineConfig().opset, "/nonexistent-cache")
        except EngineRefused as exc:
            pytest.fail(
                f"the shipped {graph} graph of '{name}' does not match its bundled weights ({exc}): "
                "run `speech2vid export --default` and commit assets/graphs/"
            )
        assert entry.path.parent == shipped_folder(name)
        assert manifest["weights"] == f"{name}.safetensors" and manifest["weights_sha256"] == ref.weights_sha256


# ----------------------------------------------------------------------------- unwritable cache (issue 13.2)


@pytest.mark.slow  # the INT8/FP16 builds (session fixture) or an export attempt
def test_cache_that_cannot_be_written_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "engines"
    not_a_folder.write_text("a regular file where the cache folder should be")
    for argv in (
        ["build", "--model", "lite", "--weights", "random", "--precision", "int8", "--cache-dir", str(not_a_folder)],
        ["export", "--model", "lite", "--weights", "random", "--cache-dir", str(not_a_folder)],
        [
            "build",
            "--model",
            "lite",
            "--weights",
            "random",
            "--cache-dir",
            "/proc/speech2vid-engines",
        ],  # root cannot write there either
    ):
        assert main(argv) == 2
        line = one_error_line(capsys)
        assert "cannot write engines to" in line and "--cache-dir" in line and argv[-1] in line, line
    assert not_a_folder.read_text().startswith("a regular file")


# ----------------------------------------------------------------------------- cache list | prune (issue 13.10)


def fake_folder(root: Path, name: str, size: int, days_ago: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "frame-fp32-onnxruntime.onnx").write_bytes(b"\0" * size)
    (folder / "frame-fp32-onnxruntime.json").write_text(
        json.dumps({"model": name.split("-")[0], "weights": f"/w/{name}.safetensors"})
    )
    when = time.time() - days_ago * 86400
    os.utime(folder, (when, when))
    return folder


def test_cache_list_and_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "engines"
    new = fake_folder(root, "lite-aaaaaaaaaaaa", 3_000_000, 0.1)
    mid = fake_folder(root, "lite-bbbbbbbbbbbb", 2_000_000, 5)
    old = fake_folder(root, "paper-cccccccccccc", 1_000_000, 40)
    timing = root / "tensorrt-timing.cache"
    timing.write_bytes(b"kernel timings")  # not a model folder: never pruned
    landmarks = root / "landmarks"  # the expanded landmark model shares the cache: never pruned either
    landmarks.mkdir()
    (landmarks / "shape_predictor.dat").write_bytes(b"\0" * 500_000)
    os.utime(landmarks, (1.0, 1.0))  # older than every engine folder
    assert [f.path for f in list_cache(root)] == [new, mid, old]  # most recently used first

    assert main(["cache", "list", "--cache-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert (
        f"engine cache {root}: 3 folders, 6.0 MB" in out and "paper, weights /w/paper-cccccccccccc.safetensors" in out
    )
    assert "landmarks      0.5 MB  (not engines: never pruned)" in out

    assert main(["cache", "prune", "--older-than", "30", "--cache-dir", str(root)]) == 0
    assert not old.exists() and mid.exists() and new.exists()
    assert "pruned 1 folders, 1.0 MB" in capsys.readouterr().out
    assert main(["cache", "prune", "--keep", "1", "--cache-dir", str(root)]) == 0
    assert new.exists() and not mid.exists() and timing.exists() and landmarks.exists()
    assert main(["cache", "prune", "--keep", "0", "--cache-dir", str(root)]) == 0
    assert not new.exists() and landmarks.exists()

    assert main(["cache", "prune", "--cache-dir", str(root)]) == 2
    assert "--keep N and/or --older-than DAYS" in one_error_line(capsys)
    assert main(["cache", "list", "--cache-dir", str(tmp_path / "none")]) == 0  # no cache yet: not an error, said so
    assert f"engine cache {tmp_path / 'none'} does not exist" in capsys.readouterr().out


@pytest.mark.slow  # the INT8/FP16 builds (session fixture) or an export attempt
def test_opening_a_built_engine_marks_its_folder_used(lite_built, lite_loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import make_engine

    settings, _ = lite_built
    src = cache_folder(lite_loaded, settings.engine.cache_dir)
    folder = tmp_path / src.name
    shutil.copytree(src, folder)
    os.utime(folder, (1e9, 1e9))
    make_engine(lite_loaded, settings.engine, precision="int8", cache_dir=tmp_path)
    assert time.time() - folder.stat().st_mtime < 600


# ----------------------------------------------------------------------------- real precision (issue 13.11)


@pytest.mark.slow  # the INT8/FP16 builds (session fixture) or an export attempt
def test_graph_precision_reads_the_graph(lite_built, lite_onnx) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.build_engines.verify import graph_precision

    _, rows = lite_built
    for row in rows:
        assert graph_precision(row.path) == row.precision, row.path
    assert {graph_precision(p) for p in lite_onnx.values()} == {"fp32"}


@pytest.mark.slow  # the INT8/FP16 builds (session fixture) or an export attempt
def test_verify_catches_an_fp32_graph_recorded_as_int8(lite_built, lite_loaded, lite_onnx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The cache's manifests are checksums, not signatures: an FP32 graph copied over the INT8 one with its
    manifest's sha256 and size rewritten opens, and runs as "int8". verify reads the graph and fails it."""
    import dataclasses

    from speech2vid.build_engines.verify import verify
    from speech2vid.files import sha256_file

    settings, _ = lite_built
    src = cache_folder(lite_loaded, settings.engine.cache_dir)
    shutil.copytree(src, tmp_path / src.name)
    entry = cached_engine(lite_loaded, FRAME_GRAPH, "onnxruntime", "int8", tmp_path)
    shutil.copy(lite_onnx[FRAME_GRAPH], entry.path)
    manifest = json.loads(entry.manifest_path.read_text())
    manifest.update(sha256=sha256_file(entry.path), size_bytes=entry.path.stat().st_size)
    entry.manifest_path.write_text(json.dumps(manifest))
    swapped = dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, cache_dir=str(tmp_path)))
    checks, _, _ = verify(lite_loaded, swapped, backends=["onnxruntime"], precisions=["int8"])
    assert len(checks) == 1 and not checks[0].passed
    assert "recorded as int8 but its graph computes in fp32" in checks[0].failures[0]


# ----------------------------------------------------------------------------- without PyTorch


def run_without_torch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a process where PyTorch cannot be imported (``sys.modules['torch'] = None`` makes both
    ``import torch`` and ``importlib.util.find_spec('torch')`` see no PyTorch, as on the runtime install)."""
    code = "import sys; sys.modules['torch'] = None\nfrom speech2vid.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_commands_that_need_pytorch_name_the_extra(tmp_path: Path) -> None:
    for argv in (
        ["train", "generator", "--data", "x"],
        ["export"],
        ["pack-weights", "a", "-o", "b"],
        ["synth", "-o", "x"],
    ):
        run = run_without_torch(*argv, cwd=tmp_path)
        assert run.returncode == 2, (argv, run.stderr)
        assert run.stderr.strip() == (
            f"speech2vid: error: `speech2vid {argv[0]}` needs PyTorch, which the runtime "
            "install leaves out: pip install 'speech2vid[train]'"
        )
    run = run_without_torch(
        "build", "--model", "lite", "--weights", "random", "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("speech2vid: error:")]
    assert run.returncode == 2 and len(errors) == 1 and "speech2vid[train]" in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    run = run_without_torch("info", "--model", "lite", cwd=tmp_path)  # counted on the shipped ONNX graphs
    assert run.returncode == 0 and "frame graph (ONNX)" in run.stdout, run.stdout + run.stderr
