"""``build``, ``verify``, ``bench``, ``export``, ``cache`` and ``info``: the engines and what they cost."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from speech2vid.cli.options import (
    TRAIN_EXTRA,
    add_cache_dir,
    check_outputs,
    engine_for,
    number,
    settings_from,
    torch_installed,
)
from speech2vid.errors import UserError

log = logging.getLogger("speech2vid.build")


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    from speech2vid.config import MAX_BATCH, MAX_SIDE

    p = add("info", cmd_info, "parameters and multiply-accumulates per module of a model")
    p.add_argument("--model", help="paper, lite or a model YAML (default: every bundled model)")

    p = add("build", cmd_build, "build engines: FP32/FP16/INT8 ONNX graphs for ONNX Runtime, TensorRT plans")
    _add_engine_set(p, "build")
    p.add_argument("--force", action="store_true", help="rebuild even when a valid engine is cached")
    add_cache_dir(p)

    p = add(
        "verify",
        cmd_verify,
        "compare every built engine with the FP32 reference (PyTorch, or the FP32 ONNX "
        "graph without it) and check each graph's real precision; non-zero exit on a fail",
    )
    _add_engine_set(p, "verify")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    add_cache_dir(p)

    p = add("bench", cmd_bench, "per-frame latency of every backend x precision x model, side by side")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        help="model to time (repeatable; default every model that can run here)",
    )
    p.add_argument(
        "--backend",
        dest="targets",
        action="append",
        metavar="BACKEND[:DEVICE[:PRECISION]]",
        help="target to time, e.g. onnxruntime:cpu:int8 or torch:cuda:fp16 "
        "(repeatable; default every backend x precision this machine can run)",
    )
    p.add_argument(
        "--batch",
        action="append",
        type=number(int, 1, MAX_BATCH),
        help="frames per engine call (repeatable; default 1 and the streaming batch engine.batch.opt)",
    )
    p.add_argument(
        "--seconds",
        type=number(float, 0, 3600, above=True),
        default=3.0,
        help="timed seconds per combination and batch (default 3)",
    )
    p.add_argument(
        "--weights",
        help="safetensors weights, or 'random' (default: random with PyTorch, else the "
        "bundled weights; timing does not depend on them)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the latencies as a PNG")
    g = p.add_argument_group("live loop (--live): per-stage latency of `speech2vid live` from a file in real time")
    g.add_argument("--live", action="store_true", help="time the live loop once per precision instead of the engines")
    g.add_argument(
        "--precision",
        dest="precisions",
        action="append",
        choices=["fp32", "fp16", "int8"],
        help="precision to run (repeatable; default fp32, fp16 and int8, each where built)",
    )
    g.add_argument("--audio", metavar="FILE", help="speech played in real time, looped (default the sample speech)")
    g.add_argument(
        "--live-seconds",
        type=number(float, 0, 24 * 3600, above=True),
        default=20.0,
        help="seconds of audio per precision (default 20)",
    )
    g.add_argument(
        "--load",
        dest="loads",
        action="append",
        type=number(int, 0, 64),
        metavar="N",
        help="run the loop with N CPU-bound processes beside it (repeatable, in one run: --load 0 --load 1 "
        "--load 2 gives the idle figure and two loads side by side; default 0)",
    )
    g = p.add_argument_group(
        "whole pipelines (--pipeline): generate, redub and live at several output sizes, stage by stage"
    )
    g.add_argument("--pipeline", action="store_true", help="time the pipelines instead of the engines")
    g.add_argument(
        "--size",
        dest="sizes",
        action="append",
        type=number(int, 64, MAX_SIDE),
        metavar="PX",
        help="output size, the longer side (repeatable; default 256, 512, 1024, 1280 and 1920)",
    )
    g.add_argument(
        "--only", action="append", choices=["generate", "redub", "live"], help="only this pipeline (repeatable)"
    )
    g.add_argument(
        "--pipeline-seconds",
        type=number(float, 2, 3600),
        default=20.0,
        help="seconds of speech per pipeline and size (default 20; live runs in real time)",
    )
    add_cache_dir(p)

    p = add("export", cmd_export, "export a model's FP32 ONNX graphs into the engine cache")
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (default: the bundled weights)")
    p.add_argument(
        "--default",
        action="store_true",
        help="re-export the graphs the package ships (assets/graphs/) from the bundled weights of every "
        "model that has them: run it after changing the default weights or a bundled model",
    )
    p.add_argument("--force", action="store_true", help="export even when a valid export is cached")
    add_cache_dir(p)

    p = add(
        "cache", cmd_cache, "list the engine cache, or prune it (keep the N most recently used, or drop the unused)"
    )
    p.add_argument("action", choices=["list", "prune"])
    p.add_argument("--keep", type=int, metavar="N", help="prune: keep the N most recently used model folders")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: delete folders unused for DAYS days")
    add_cache_dir(p)


# The help of --weights, --precision, --backend and --calib, as build and verify read them.
_ENGINE_SET_HELP = {
    "build": (
        "safetensors weights, or 'random' (untrained, for plumbing and timing)",
        "engine precision (repeatable; default fp32)",
        "onnxruntime (ONNX graphs run by ONNX Runtime) or tensorrt (repeatable; default onnxruntime)",
        "calibration data for int8 (overrides calib.source)",
    ),
    "verify": (
        "safetensors weights, or 'random'",
        "only this precision (repeatable; default all built)",
        "only this backend (repeatable; default all available)",
        "inputs to compare on (overrides calib.source)",
    ),
}


def _add_engine_set(p: argparse.ArgumentParser, command: str) -> None:
    """The engines ``build`` makes and ``verify`` checks: a model, its weights, precisions, backends, calibration."""
    from speech2vid.config import ENGINE_PRECISIONS
    from speech2vid.engine.cache import ENGINE_BACKENDS

    weights, precision, backend, calib = _ENGINE_SET_HELP[command]
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help=weights)
    # dest names differ from the global engine options so that settings_from ignores them
    p.add_argument("--precision", dest="precisions", action="append", choices=ENGINE_PRECISIONS, help=precision)
    p.add_argument("--backend", dest="backends", action="append", choices=ENGINE_BACKENDS, help=backend)
    p.add_argument("--calib", metavar="DIR|sample", help=calib)


# ----------------------------------------------------------------------------- info


def cmd_info(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config, model_names
    from speech2vid.features.windows import FPS
    from speech2vid.text_table import table_lines

    for name in [args.model] if args.model else model_names():
        cfg = load_model_config(name)
        costs = _torch_costs(cfg) if torch_installed() else _graph_costs(cfg)
        if costs is None:
            print(
                f"model '{cfg.name}': no ONNX graphs to count here (none ship for it): per-module costs "
                f"need PyTorch ({TRAIN_EXTRA})"
            )
            continue
        rows = [
            [
                module,
                f"{params / 1e6:.2f} M",
                f"{macs / 1e9:.3f} G",
                "every frame" if per_frame else "once per identity (cached)",
            ]
            for module, params, macs, per_frame in costs
        ]
        frame_macs = sum(c[2] for c in costs if c[3])
        rows.append(
            [
                "total / per frame",
                f"{sum(c[1] for c in costs) / 1e6:.2f} M",
                f"{frame_macs / 1e9:.3f} G",
                f"{frame_macs * FPS * 2 / 1e9:.0f} GFLOP/s at {FPS} fps",
            ]
        )
        print(f"model '{cfg.name}': {cfg.description}")
        print("\n".join(table_lines(("module", "parameters", "MACs / frame", "runs"), rows, right=(1, 2))))
    return 0


def _torch_costs(cfg: Any) -> list[tuple[str, int, int, bool]]:
    """Per-module costs of the PyTorch networks."""
    from speech2vid.model import build_model
    from speech2vid.model.cost import PER_FRAME, model_cost

    return [(c.name, c.params, c.macs, c.name in PER_FRAME) for c in model_cost(build_model(cfg))]


def _graph_costs(cfg: Any) -> list[tuple[str, int, int, bool]] | None:
    """Per-graph costs from the shipped FP32 graphs (no PyTorch): None when the model ships none."""
    from speech2vid.build_engines.graph_cost import graph_cost
    from speech2vid.engine.cache import EXPORT_BACKEND, EXPORT_PRECISION, engine_file, shipped_folder
    from speech2vid.model.io_spec import FRAME_GRAPH, GRAPHS
    from speech2vid.model.ref import model_ref

    try:
        ref = model_ref(cfg, None)
    except UserError:
        return None
    out = []
    for graph in GRAPHS:
        path = engine_file(ref, graph, EXPORT_BACKEND, EXPORT_PRECISION, shipped_folder(cfg.name)).path
        if not path.is_file():
            return None
        cost = graph_cost(path)
        out.append((f"{graph} graph (ONNX)", cost.params, cost.macs, graph == FRAME_GRAPH))
    return out


# ----------------------------------------------------------------------------- build, verify, export, cache


def _model(settings: Any) -> Any:
    """The model and weights of ``settings``, as a torch-free reference."""
    from speech2vid.config import load_model_config
    from speech2vid.model.ref import model_ref

    ref = model_ref(load_model_config(settings.model), settings.weights)
    if ref.is_random:
        log.warning("using RANDOM, untrained weights (see docs/engines.md for what that means for verify)")
    return ref


def _with_calib(settings: Any, calib: str | None) -> Any:
    if calib is None:
        return settings
    return dataclasses.replace(settings, calib=dataclasses.replace(settings.calib, source=calib))


def cmd_build(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.build import build, format_built

    settings = _with_calib(settings_from(args), args.calib)
    model = _model(settings)
    rows = []
    for backend in args.backends or ["onnxruntime"]:
        for precision in args.precisions or ["fp32"]:
            rows += build(
                model, settings, precision=precision, backend=backend, cache_dir=args.cache_dir, force=args.force
            )
    print(format_built(rows))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.verify import checks_json, format_checks, verify
    from speech2vid.config import ENGINE_PRECISIONS
    from speech2vid.engine.factory import tensorrt_available
    from speech2vid.files import write_json_atomic

    check_outputs([("--json", args.json)], [args.weights])
    settings = _with_calib(settings_from(args), args.calib)
    model = _model(settings)
    backends = args.backends or ["onnxruntime", *(["tensorrt"] if tensorrt_available()[0] else [])]
    precisions = args.precisions or ENGINE_PRECISIONS
    checks, notes, reference = verify(
        model, settings, backends=backends, precisions=precisions, cache_dir=args.cache_dir
    )
    print(f"reference: {reference}")
    print(format_checks(checks, model.is_random))
    for note in notes:
        print(f"skipped {note}")
    if args.json:
        path = Path(args.json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"reference": reference, "checks": checks_json(checks), "skipped": notes})
        print(f"wrote {path}")
    if not checks:
        print("speech2vid: error: no engine was verified: build one first, e.g. `speech2vid build --precision int8`")
        return 1
    failed = [c for c in checks if not c.passed]
    print(f"verify: {len(checks) - len(failed)} engines within tolerance, {len(failed)} outside")
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    """FP32 graphs into the cache, or (``--default``) the graphs the package ships."""
    from speech2vid.build_engines.onnx_export import export_bundled_graphs, export_fp32
    from speech2vid.config import load_model_config, model_names
    from speech2vid.engine.cache import cache_root
    from speech2vid.model.ref import bundled_weights
    from speech2vid.model.weights import load_model

    settings = settings_from(args)
    if args.default:
        names = [n for n in model_names() if bundled_weights(n) is not None]
        for name in names:
            for entry in export_bundled_graphs(name, settings.engine).values():
                print(f"wrote {entry.path} ({entry.path.stat().st_size / 1e6:.1f} MB) and {entry.manifest_path.name}")
        if not names:
            print("no model has bundled weights: nothing to export")
        return 0
    loaded = load_model(load_model_config(settings.model), settings.weights)
    root = cache_root(settings.engine, args.cache_dir)
    for graph, entry in export_fp32(loaded, settings.engine, root, force=args.force).items():
        print(f"{graph} graph: {entry.path} ({entry.path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """What the engine cache holds, and deleting what is not used."""
    from speech2vid.engine.cache import (
        cache_root,
        describe_missing_root,
        folder_bytes,
        list_cache,
        other_folders,
        prune_cache,
    )

    root = cache_root(settings_from(args).engine, args.cache_dir)
    missing = describe_missing_root(root)
    if missing is not None:
        # Not an error: a fresh install has built nothing yet. The line says so instead of "0 folders",
        # which a mistyped --cache-dir would otherwise also print.
        if args.action == "prune":
            prune_cache(root, keep=args.keep, older_than_days=args.older_than)  # a bad --keep is still refused
        print(missing)
        return 0
    if args.action == "prune":
        deleted = prune_cache(root, keep=args.keep, older_than_days=args.older_than)
        for f in deleted:
            print(f"deleted {f.path} ({f.size_bytes / 1e6:.1f} MB, {f.model}, weights {f.weights})")
        print(f"pruned {len(deleted)} folders, {sum(f.size_bytes for f in deleted) / 1e6:.1f} MB, from {root}")
        return 0
    folders = list_cache(root)
    print(f"engine cache {root}: {len(folders)} folders, {sum(f.size_bytes for f in folders) / 1e6:.1f} MB")
    for f in folders:
        used = datetime.fromtimestamp(f.last_used).strftime("%Y-%m-%d %H:%M")
        age = (time.time() - f.last_used) / 86400
        print(
            f"  {f.path.name}  {f.size_bytes / 1e6:7.1f} MB  {f.files:2d} files  last used {used} ({age:.1f} days)"
            f"  {f.model}, weights {f.weights}"
        )
    for other in other_folders(root):
        print(f"  {other.name}  {folder_bytes(other) / 1e6:7.1f} MB  (not engines: never pruned)")
    return 0


# ----------------------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    check_outputs([("--json", args.json), ("--plot", args.plot)], [args.audio, args.weights])
    if args.pipeline:
        return _bench_pipeline(args)
    if args.live:
        return _bench_live(args)
    from speech2vid.bench.latency import default_models, format_table, run_bench

    # Timing does not depend on the weights; without PyTorch only shipped or cached graphs can run.
    weights = args.weights if args.weights is not None else "random" if torch_installed() else None
    results = run_bench(
        args.models or default_models(weights),
        args.targets,
        args.batch,
        args.seconds,
        args.json,
        settings=settings_from(args),
        weights=weights,
        plot_path=args.plot,
        cache_dir=args.cache_dir,
    )
    print(format_table(results))
    for f in (args.json, args.plot):
        if f:
            print(f"wrote {f}")
    return 0


def _bench_live(args: argparse.Namespace) -> int:
    """``bench --live``: the live loop from a file in real time, a stage table per precision."""
    from speech2vid.assets import sample_face, sample_speech
    from speech2vid.bench.live import DEFAULT_PRECISIONS, format_live_table, run_live_bench, write_live_json
    from speech2vid.runtime.avatar import live_avatar
    from speech2vid.runtime.engine_choice import live_threads

    settings = settings_from(args)
    if args.models:
        if len(args.models) > 1:
            raise UserError(f"bench --live times one model, got --model {' and '.join(args.models)}")
        settings = dataclasses.replace(settings, model=args.models[0])
    cfg = settings.live
    # what `live` shows: the photo composite, by default
    avatar = live_avatar(
        [sample_face()],
        aligned=False,
        compose=cfg.compose,
        photo_side=cfg.photo_side,
        rest_mouth=settings.generate.rest_mouth,
    )
    rows = run_live_bench(
        live_threads(settings),
        lambda s: engine_for(s)[1],
        audio=args.audio or sample_speech(),
        avatar=avatar,
        precisions=args.precisions or DEFAULT_PRECISIONS,
        seconds=args.live_seconds,
        loads=args.loads or [0],
    )
    if all(r.skipped is not None for r in rows):
        skipped = "; ".join(f"{r.precision}: {r.skipped}" for r in rows)
        raise UserError(f"no engine of the asked precisions is built: {skipped}")
    print(format_live_table(rows))
    if args.json:
        write_live_json(rows, args.json)
        print(f"wrote {args.json}")
    return 0


def _bench_pipeline(args: argparse.Namespace) -> int:
    """``bench --pipeline``: generate, redub and live at several sizes, stage by stage."""
    from speech2vid.bench.machine import machine_info
    from speech2vid.bench.pipeline import PIPELINES, SIZES, format_pipeline_table, run_pipeline_bench
    from speech2vid.files import write_json_atomic

    settings = settings_from(args)
    machine = machine_info()
    rows = run_pipeline_bench(
        settings,
        lambda s: engine_for(s)[1],
        sizes=args.sizes or SIZES,
        pipelines=args.only or PIPELINES,
        seconds=args.pipeline_seconds,
    )
    e = settings.engine
    print(
        f"{machine['cpu']}, {machine['usable_cores']} cores; {e.backend} {e.device} {e.precision}; x264 preset "
        f"{settings.encode.preset} (live: {settings.encode.live_preset}); {args.pipeline_seconds:g} s of speech per run"
    )
    print(format_pipeline_table(rows))
    if args.json:
        write_json_atomic(Path(args.json), {"machine": machine, "rows": [dataclasses.asdict(r) for r in rows]})
        print(f"wrote {args.json}")
    return 0
