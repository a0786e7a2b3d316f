"""The ``build``, ``verify`` and ``bench`` subcommands: their options and what they run.

``speech2vid.cli`` registers them with a few lines; everything else lives here.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("speech2vid.build")

PRECISIONS = ("fp32", "fp16", "int8")
BUILD_BACKENDS = ("onnxruntime", "tensorrt")


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (untrained, for plumbing and timing)")
    # dest names differ from the global engine options so that speech2vid.cli's settings layer ignores them
    p.add_argument("--precision", dest="precisions", action="append", choices=PRECISIONS,
                   help="engine precision (repeatable; default fp32)")  # fmt: skip
    p.add_argument("--backend", dest="backends", action="append", choices=BUILD_BACKENDS,
                   help="onnxruntime (ONNX graphs run by ONNX Runtime) or tensorrt (repeatable; default onnxruntime)")
    p.add_argument("--calib", metavar="DIR|sample", help="calibration data for int8 (overrides calib.source)")
    p.add_argument("--force", action="store_true", help="rebuild even when a valid engine is cached")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default engine.cache_dir)")


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random'")
    p.add_argument("--precision", dest="precisions", action="append", choices=PRECISIONS,
                   help="only this precision (repeatable; default all built)")  # fmt: skip
    p.add_argument("--backend", dest="backends", action="append", choices=BUILD_BACKENDS,
                   help="only this backend (repeatable; default all available)")
    p.add_argument("--calib", metavar="DIR|sample", help="inputs to compare on (overrides calib.source)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default engine.cache_dir)")


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", dest="models", action="append", help="model to time (repeatable; default paper and lite)")
    p.add_argument("--backend", dest="targets", action="append", metavar="BACKEND[:DEVICE[:PRECISION]]",
                   help="target to time, e.g. onnxruntime:cpu:int8 or torch:cuda:fp16 "
                        "(repeatable; default every backend x precision this machine can run)")  # fmt: skip
    p.add_argument("--batch", action="append", type=int,
                   help="frames per engine call (repeatable; default 1 and the streaming batch engine.batch.opt)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per combination and batch (default 3)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (default: random; timing does not depend on them)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the latencies as a PNG")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default engine.cache_dir)")


def _with_calib(settings: Any, calib: str | None) -> Any:
    import dataclasses

    if calib is None:
        return settings
    return dataclasses.replace(settings, calib=dataclasses.replace(settings.calib, source=calib))


def _loaded(settings: Any) -> Any:
    from speech2vid.config import load_model_config
    from speech2vid.model.weights import load_model

    loaded = load_model(load_model_config(settings.model), settings.weights)
    if loaded.is_random:
        log.warning("using RANDOM, untrained weights (see docs/engines.md for what that means for verify)")
    return loaded


def run_build_command(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.build_engines.build import build, format_built

    settings = _with_calib(settings, args.calib)
    loaded = _loaded(settings)
    rows = []
    for backend in args.backends or ["onnxruntime"]:
        for precision in args.precisions or ["fp32"]:
            rows += build(loaded, settings, precision=precision, backend=backend, cache_dir=args.cache_dir, force=args.force)
    print(format_built(rows))
    return 0


def run_verify_command(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.build_engines.verify import checks_json, format_checks, verify
    from speech2vid.engine.factory import tensorrt_available

    settings = _with_calib(settings, args.calib)
    loaded = _loaded(settings)
    backends = args.backends or ["onnxruntime", *(["tensorrt"] if tensorrt_available()[0] else [])]
    checks, notes = verify(loaded, settings, backends=backends, precisions=args.precisions or PRECISIONS, cache_dir=args.cache_dir)
    print(format_checks(checks, loaded.is_random))
    for note in notes:
        print(f"skipped {note}")
    if args.json:
        path = Path(args.json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"checks": checks_json(checks), "skipped": notes}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    if not checks:
        print("speech2vid: error: no engine was verified: build one first, e.g. `speech2vid build --precision int8`")
        return 1
    failed = [c for c in checks if not c.passed]
    print(f"verify: {len(checks) - len(failed)} engines within tolerance, {len(failed)} outside")
    return 1 if failed else 0


def run_bench_command(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.bench.latency import format_table, run_bench

    results = run_bench(
        args.models or ["paper", "lite"], args.targets, args.batch, args.seconds, args.json, settings=settings,
        weights=args.weights or "random", plot_path=args.plot, cache_dir=args.cache_dir,
    )  # fmt: skip
    print(format_table(results))
    for f in (args.json, args.plot):
        if f:
            print(f"wrote {f}")
    return 0
