"""mypy --strict on the TensorRT and CUDA modules, the rest of the engine and build code, and the runtime's
stages (audio, features, faces, frames, sinks, runtime), against the real
``tensorrt-stubs`` package.

TensorRT cannot run on CI (no GPU, and the ``tensorrt`` wheels download their libraries from NVIDIA's
own index), so its API use is type-checked instead: a misspelt method, a wrong argument type or a
removed enum member is a test failure here.

Two things stand between mypy and the code, and this test builds them in a temporary folder:

* ``tensorrt-stubs`` installs ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, which mypy
  ignores in site-packages (PEP 561); the ``.pyi`` files are copied into a stub folder on ``MYPYPATH``,
  with two stub-generator slips repaired on the way (plugin methods with a parameter named ``in``, a
  keyword; one ``add_scale_nd`` parameter without a default after defaulted ones; neither is API we use)
  and ``bool`` in annotations pointed at the builtin (the stub module's own ``bool`` DataType shadows it);
* the project's folders install as ``speech2vid.<stage>`` through setup.py's ``package_dir`` mapping,
  which mypy cannot follow in an editable install; a folder of symlinks gives it the installed layout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # an ONNX export and INT8/FP16 builds, or mypy over the engine package

REPO = Path(__file__).resolve().parents[1]
CHECKED = (
    "engine/cuda.py", "engine/tensorrt_backend.py", "build_engines/tensorrt_build.py", "engine/cache.py", "model/ref.py", "build_engines/graph_cost.py",
    "engine/torch_backend.py", "engine/factory.py", "engine/onnxruntime_backend.py",
    # the rest of the engines work, checked the same way
    "build_engines/build.py", "build_engines/verify.py", "build_engines/quantize.py", "build_engines/fp16.py",
    "build_engines/commands.py", "calib/data.py", "bench/latency.py", "bench/machine.py", "bench/plot.py",
    "build_engines/onnx_export.py", "files.py",  # (the speech2vid/ folder is the package root)
    # the runtime's stages: what a kiosk runs
    "audio", "features", "faces", "frames", "sinks", "runtime",
)
STAGES = ("speech2vid", "audio", "features", "faces", "model", "engine", "build_engines", "calib", "frames", "sinks", "runtime", "bench", "configs", "assets")

MYPY_INI = """[mypy]
strict = True
follow_imports = silent
warn_unused_ignores = False
[mypy-cuda.*]
ignore_missing_imports = True
[mypy-pycuda.*]
ignore_missing_imports = True
[mypy-tensorrt_bindings.*]
ignore_errors = True
[mypy-tensorrt]
ignore_errors = True
[mypy-tensorrt_libs.*]
ignore_missing_imports = True
[mypy-onnxruntime.*]
ignore_missing_imports = True
[mypy-onnxconverter_common.*]
ignore_missing_imports = True
[mypy-dlib.*,soxr.*,sounddevice.*,tqdm.*]
ignore_missing_imports = True
"""


def _stub_files() -> list[Path]:
    try:
        dist = importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(".pyi")]


def _repair(text: str) -> str:
    text = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)
    # The module defines ``bool`` (the DataType), which shadows the builtin in every annotation.
    text = re.sub(r"(->|:|\[|, ) ?bool\b(?!:)", lambda m: m.group(0).replace("bool", "builtins.bool"), text)
    text = "import builtins\n" + text
    return text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = ...)")


def _stub_dir(root: Path) -> Path:
    stubs = _stub_files()
    if not stubs:
        pytest.fail("tensorrt-stubs is not installed: .ci/run installs it (pip install --no-deps tensorrt-stubs)")
    site = Path(str(importlib.metadata.distribution("tensorrt-stubs").locate_file("")))
    out = root / "stubs"
    for f in stubs:
        dest = out / f.relative_to(site)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(_repair(f.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def _layout(root: Path) -> Path:
    """root/pkg/speech2vid/<stage> -> the repo's folders, as setup.py installs them."""
    pkg = root / "pkg" / "speech2vid"
    pkg.mkdir(parents=True)
    for item in (REPO / "speech2vid").iterdir():
        if item.suffix == ".py":
            (pkg / item.name).symlink_to(item)
    for stage in STAGES[1:]:
        (pkg / stage).symlink_to(REPO / stage, target_is_directory=True)
    return pkg


def test_mypy_strict_on_the_engines_and_the_runtime(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("mypy")
    stub_dir = _stub_dir(tmp_path)
    pkg = _layout(tmp_path)
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    env = {**os.environ, "MYPYPATH": f"{stub_dir}{os.pathsep}{pkg.parent}"}
    targets = [str(pkg / rel) for rel in CHECKED]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(tmp_path / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"), *targets],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    report = proc.stdout.replace(str(pkg) + "/", "")
    assert proc.returncode == 0, report
    assert "Success" in proc.stdout


def test_stubs_reach_mypy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The harness really type-checks TensorRT calls: a wrong one must fail (so the test above can fail)."""
    pytest.importorskip("mypy")
    stub_dir = _stub_dir(tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import tensorrt as trt\n"
        "def f(b: trt.Builder) -> None:\n"
        "    b.create_network('strongly typed')\n"  # flags are an int
        "    trt.BuilderFlag.NOT_A_FLAG\n"
    )
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(tmp_path / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"), str(bad)],
        capture_output=True, text=True, env={**os.environ, "MYPYPATH": str(stub_dir)}, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout
    assert "create_network" in proc.stdout and "NOT_A_FLAG" in proc.stdout
