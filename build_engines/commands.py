"""What the ``build``, ``verify``, ``bench``, ``export`` and ``cache`` commands run, given parsed options.

``speech2vid.cli`` owns the options (only the CLI parses arguments); these functions take plain values,
print their report, and return the exit status.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from speech2vid.config import ENGINE_PRECISIONS, Settings

log = logging.getLogger("speech2vid.build")


def _with_calib(settings: Settings, calib: str | None) -> Settings:
    if calib is None:
        return settings
    return dataclasses.replace(settings, calib=dataclasses.replace(settings.calib, source=calib))


def _model(settings: Settings) -> Any:
    """The model and weights of ``settings``, as a torch-free reference."""
    from speech2vid.config import load_model_config
    from speech2vid.model.ref import model_ref

    ref = model_ref(load_model_config(settings.model), settings.weights)
    if ref.is_random:
        log.warning("using RANDOM, untrained weights (see docs/engines.md for what that means for verify)")
    return ref


def run_build_command(settings: Settings, *, backends: Sequence[str] | None, precisions: Sequence[str] | None,
                      calib: str | None, force: bool, cache_dir: str | None) -> int:  # fmt: skip
    from speech2vid.build_engines.build import build, format_built

    settings = _with_calib(settings, calib)
    model = _model(settings)
    rows = []
    for backend in backends or ["onnxruntime"]:
        for precision in precisions or ["fp32"]:
            rows += build(model, settings, precision=precision, backend=backend, cache_dir=cache_dir, force=force)
    print(format_built(rows))
    return 0


def run_verify_command(settings: Settings, *, backends: Sequence[str] | None, precisions: Sequence[str] | None,
                       calib: str | None, json_path: str | None, cache_dir: str | None) -> int:  # fmt: skip
    from speech2vid.build_engines.verify import checks_json, format_checks, verify
    from speech2vid.engine.factory import tensorrt_available
    from speech2vid.files import write_json_atomic

    settings = _with_calib(settings, calib)
    model = _model(settings)
    backends = backends or ["onnxruntime", *(["tensorrt"] if tensorrt_available()[0] else [])]
    checks, notes, reference = verify(model, settings, backends=backends, precisions=precisions or ENGINE_PRECISIONS, cache_dir=cache_dir)
    print(f"reference: {reference}")
    print(format_checks(checks, model.is_random))
    for note in notes:
        print(f"skipped {note}")
    if json_path:
        path = Path(json_path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"reference": reference, "checks": checks_json(checks), "skipped": notes})
        print(f"wrote {path}")
    if not checks:
        print("speech2vid: error: no engine was verified: build one first, e.g. `speech2vid build --precision int8`")
        return 1
    failed = [c for c in checks if not c.passed]
    print(f"verify: {len(checks) - len(failed)} engines within tolerance, {len(failed)} outside")
    return 1 if failed else 0


def run_bench_command(settings: Settings, *, models: Sequence[str] | None, targets: Sequence[str] | None,
                      batches: Sequence[int] | None, seconds: float, weights: str | None, json_path: str | None,
                      plot_path: str | None, cache_dir: str | None) -> int:  # fmt: skip
    from speech2vid.bench.latency import default_models, format_table, run_bench
    from speech2vid.engine.factory import torch_installed

    if weights is None:
        # Timing does not depend on the weights; without PyTorch only shipped or cached graphs can run.
        weights = "random" if torch_installed() else None
    results = run_bench(
        models or default_models(weights), targets, batches, seconds, json_path, settings=settings,
        weights=weights, plot_path=plot_path, cache_dir=cache_dir,
    )  # fmt: skip
    print(format_table(results))
    for f in (json_path, plot_path):
        if f:
            print(f"wrote {f}")
    return 0


def run_export_command(settings: Settings, *, bundled: bool, force: bool, cache_dir: str | None) -> int:
    """``speech2vid export``: FP32 graphs into the cache, or (``--default``) the graphs the package ships."""
    from speech2vid.build_engines.onnx_export import export_bundled_graphs, export_fp32
    from speech2vid.config import load_model_config, model_names
    from speech2vid.engine.cache import cache_root
    from speech2vid.model.ref import bundled_weights
    from speech2vid.model.weights import load_model

    if bundled:
        names = [n for n in model_names() if bundled_weights(n) is not None]
        for name in names:
            for graph, entry in export_bundled_graphs(name, settings.engine).items():
                print(f"wrote {entry.path} ({entry.path.stat().st_size / 1e6:.1f} MB) and {entry.manifest_path.name}")
        if not names:
            print("no model has bundled weights: nothing to export")
        return 0
    loaded = load_model(load_model_config(settings.model), settings.weights)
    for graph, entry in export_fp32(loaded, settings.engine, cache_root(settings.engine, cache_dir), force=force).items():
        print(f"{graph} graph: {entry.path} ({entry.path.stat().st_size / 1e6:.1f} MB)")
    return 0


def run_cache_command(settings: Settings, action: str, *, keep: int | None, older_than_days: float | None,
                      cache_dir: str | None) -> int:  # fmt: skip
    """``speech2vid cache list|prune``: what the engine cache holds, and deleting what is not used."""
    from speech2vid.engine.cache import cache_root, describe_missing_root, folder_bytes, list_cache, other_folders, prune_cache

    root = cache_root(settings.engine, cache_dir)
    missing = describe_missing_root(root)
    if missing is not None:
        # Not an error: a fresh install has built nothing yet. The line says so instead of "0 folders",
        # which a mistyped --cache-dir would otherwise also print.
        if action == "prune":
            prune_cache(root, keep=keep, older_than_days=older_than_days)  # a bad --keep or --older-than is still refused
        print(missing)
        return 0
    if action == "prune":
        deleted = prune_cache(root, keep=keep, older_than_days=older_than_days)
        for f in deleted:
            print(f"deleted {f.path} ({f.size_bytes / 1e6:.1f} MB, {f.model}, weights {f.weights})")
        print(f"pruned {len(deleted)} folders, {sum(f.size_bytes for f in deleted) / 1e6:.1f} MB, from {root}")
        return 0
    folders = list_cache(root)
    print(f"engine cache {root}: {len(folders)} folders, {sum(f.size_bytes for f in folders) / 1e6:.1f} MB")
    for f in folders:
        used = datetime.fromtimestamp(f.last_used).strftime("%Y-%m-%d %H:%M")
        age = (time.time() - f.last_used) / 86400
        print(f"  {f.path.name}  {f.size_bytes / 1e6:7.1f} MB  {f.files:2d} files  last used {used} ({age:.1f} days)"
              f"  {f.model}, weights {f.weights}")  # fmt: skip
    for other in other_folders(root):
        print(f"  {other.name}  {folder_bytes(other) / 1e6:7.1f} MB  (not engines: never pruned)")
    return 0

