"""mypy --strict over the whole ``speech2vid`` package as it installs: ``speech2vid/`` and every stage folder
linked into it (audio, features, faces, model, engine, build_engines, calib, frames, sources, sinks,
runtime, bench, configs, assets, training with its data, prepare, synth and evaluation), with the TensorRT
and CUDA modules checked against the real ``tensorrt-stubs`` package.

TensorRT cannot run on CI (no GPU, and the ``tensorrt`` wheels download their libraries from NVIDIA's
own index), so its API use is type-checked instead: a misspelt method, a wrong argument type or a
removed enum member is a test failure here. The rest of the package is held to the same standard.
Third-party packages are checked through their own annotations or stub packages (``types-PyYAML``,
``scipy-stubs``: the test extra); those with neither are listed in ``MYPY_INI``.

One thing stands between mypy and the code, and this test builds it in a temporary folder:

* ``tensorrt-stubs`` installs ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, which mypy
  ignores in site-packages (PEP 561); the ``.pyi`` files are copied into a stub folder on ``MYPYPATH``,
  with two stub-generator slips repaired on the way (plugin methods with a parameter named ``in``, a
  keyword; one ``add_scale_nd`` parameter without a default after defaulted ones; neither is API we use)
  and ``bool`` in annotations pointed at the builtin (the stub module's own ``bool`` DataType shadows it);
* nothing else: mypy checks ``speech2vid/`` as the checkout holds it (its stage folders are linked in).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # mypy over the whole package: about 25 s on two cores (a fresh cache each run)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "speech2vid"

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
# no annotations and no stub package on PyPI
[mypy-dlib.*,soxr.*,sounddevice.*,soundfile.*,tflite.*]
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


def _modules() -> int:
    """How many .py files the installed package has (through the stage links): what mypy must report as checked."""
    return sum(1 for _, _, files in os.walk(PACKAGE, followlinks=True) for f in files if f.endswith(".py"))


def test_mypy_strict_on_the_whole_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("mypy")
    stub_dir = _stub_dir(tmp_path)
    pkg = PACKAGE
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    env = {**os.environ, "MYPYPATH": str(stub_dir)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(pkg),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    report = proc.stdout.replace(str(pkg) + "/", "")
    assert proc.returncode == 0, report + proc.stderr
    assert "Success" in proc.stdout
    assert f"no issues found in {_modules()} source files" in proc.stdout, report  # no folder left out


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
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(tmp_path / "mypy.ini"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(bad),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(stub_dir)},
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout
    assert "create_network" in proc.stdout and "NOT_A_FLAG" in proc.stdout
