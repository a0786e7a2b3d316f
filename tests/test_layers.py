"""The layer contracts hold (.importlinter, checked by import-linter on the package as the checkout holds it), a
forbidden import breaks them, and importing the runtime's modules does not import PyTorch."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LINT = shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[test]')")


def lint(tree: Path | None = None) -> subprocess.CompletedProcess[str]:
    """import-linter on the checkout's own package (the installed tree: speech2vid/ and its stage links), or
    on ``tree``, a copy of it placed first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else dict(os.environ)
    assert LINT is not None
    config = str(REPO / ".importlinter")
    return subprocess.run(
        [LINT, "--no-cache", "--config", config], cwd=tree or REPO, env=env, capture_output=True, text=True, timeout=300
    )


def copy_package(dest: Path) -> Path:
    """A plain copy of the package's Python files (the stage links resolved) under ``dest/speech2vid``."""
    shutil.copytree(REPO / "speech2vid", dest / "speech2vid", ignore=_not_python)
    return dest


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or (not n.endswith(".py") and not Path(folder, n).is_dir())]


def test_the_package_imports_from_the_checkout() -> None:
    """What tools see is what runs: ``speech2vid.runtime`` is the checkout's runtime/ folder, through the link."""
    import speech2vid.runtime

    assert Path(speech2vid.runtime.__file__).resolve() == REPO / "runtime" / "__init__.py"


def test_contracts_hold() -> None:
    run = lint()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "added", "contract"),
    [
        ("engine/base.py", "from speech2vid.build_engines import build", "engine opens engines"),
        ("engine/cache.py", "import torch", "engine imports neither PyTorch"),
        ("build_engines/fp16.py", "from speech2vid.runtime import offline", "build_engines makes engines"),
        (
            "frames/render.py",
            "from speech2vid.build_engines import onnx_export",
            "the runtime stages never import PyTorch",
        ),
        ("engine/factory.py", "import argparse", "only the CLI parses arguments"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, added: str, contract: str) -> None:
    tree = copy_package(tmp_path / "package")
    path = tree / "speech2vid" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{added}  # added by the test\n", encoding="utf-8")
    run = lint(tree)
    assert run.returncode != 0, run.stdout[-2000:]
    broken = run.stdout[run.stdout.index("Broken contracts") :]
    assert contract in broken and module.replace("/", ".").removesuffix(".py") in broken


def test_runtime_modules_import_without_pytorch() -> None:
    """What `pip install speech2vid` imports for generate, redub, live, build, verify, bench and the CLI: none
    of it imports PyTorch at module level (it is installed here, so an import would show in sys.modules), and
    neither does building the whole parser (``--help`` stays quick where PyTorch is installed)."""
    modules = [
        "speech2vid.cli",
        "speech2vid.engine.factory",
        "speech2vid.engine.cache",
        "speech2vid.engine.base",
        "speech2vid.engine.onnxruntime_backend",
        "speech2vid.engine.tensorrt_backend",
        "speech2vid.engine.talking_face",
        "speech2vid.build_engines.build",
        "speech2vid.build_engines.verify",
        "speech2vid.build_engines.quantize",
        "speech2vid.build_engines.fp16",
        "speech2vid.build_engines.graph_cost",
        "speech2vid.bench.latency",
        "speech2vid.runtime.offline",
        "speech2vid.runtime.redub",
        "speech2vid.runtime.live",
        "speech2vid.sources.live",
        "speech2vid.calib.data",
        "speech2vid.model",
        "speech2vid.model.io_spec",
        "speech2vid.model.ref",
        "speech2vid.api",
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "importlib.import_module('speech2vid.cli').build_parser()\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]", run.stdout[:500]


def test_demo_renders_with_pytorch_blocked(tmp_path: Path) -> None:
    """Import-time checks miss imports made inside functions (generate's rest-mouth identity once reached
    PyTorch through a training-data package only when it ran): run the demo end to end with `import torch`
    made to fail, as on a runtime-only install."""
    out = tmp_path / "demo.mp4"
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"
        "from speech2vid.cli import main\n"
        f"sys.exit(main(['-q', 'demo', '-o', {str(out)!r}]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert out.stat().st_size > 10_000


def _package_files() -> list[Path]:
    """Every module of the installed package, by its path in the package (the stage links followed)."""
    root = REPO / "speech2vid"
    return sorted(Path(d, f) for d, _, files in os.walk(root, followlinks=True) for f in files if f.endswith(".py"))


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in ``path``, at any depth (inside functions too), made absolute."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def test_only_the_cli_package_imports_argparse() -> None:
    """import-linter sees module-level imports; an ``import argparse`` inside a function is found here too."""
    cli = REPO / "speech2vid" / "cli"
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for path in _package_files()
        if cli not in path.parents
        for module, _, line in _imports(path)
        if module == "argparse" or module.startswith("argparse.")
    ]
    assert offenders == []
    assert any(m == "argparse" for m, _, _ in _imports(cli / "options.py"))  # the walk does see imports


def _folder(module: str) -> str:
    """The folder a module lives in: speech2vid.training.prepare.run -> speech2vid.training.prepare."""
    return module.rsplit(".", 1)[0]


def test_no_private_names_cross_folders() -> None:
    """A leading underscore means "this folder's own": no module imports one from another folder."""
    offenders = []
    for path in _package_files():
        here = ".".join(path.relative_to(REPO).with_suffix("").parts)
        here_folder = _folder(here) if path.name != "__init__.py" else here.removesuffix(".__init__")
        for module, names, line in _imports(path):
            if not module.startswith("speech2vid"):
                continue
            for name in names:
                private = name.startswith("_") and not name.startswith("__")
                folder = module if (REPO / Path(*module.split("."))).is_dir() else _folder(module)
                if private and folder != here_folder:
                    offenders.append(f"{path.relative_to(REPO)}:{line} imports {name} from {module}")
    assert offenders == []
