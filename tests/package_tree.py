"""The installed package's tree, assembled from the repository's top-level folders (setup.py's STAGES).

The repository keeps one folder per stage (``engine/``, ``runtime/``, ...) and setup.py maps them into
the ``speech2vid`` namespace; tools that walk a package on disk (import-linter) need that tree as it
installs. Also run as a script: ``python tests/package_tree.py DEST`` writes it under DEST.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stages() -> dict[str, str]:
    """setup.py's STAGES (installed package -> repository folder), read without running setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STAGES" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return {str(k): str(v) for k, v in value.items()}
    raise LookupError("setup.py has no STAGES mapping")


def stage_package(dest: Path, *, python_only: bool = True) -> Path:
    """Copy the package's files to ``dest/speech2vid/...`` as they install; returns ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package, folder in sorted(stages().items(), key=lambda kv: kv[0].count(".")):
        src = REPO / folder
        out = dest.joinpath(*package.split("."))
        out.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and (f.suffix == ".py" or not python_only):
                shutil.copy2(f, out / f.name)
            elif f.is_dir() and not python_only and f.name != "__pycache__" and not (f / "__init__.py").exists():
                shutil.copytree(f, out / f.name, ignore=ignore, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":
    print(stage_package(Path(sys.argv[1]), python_only=False))
