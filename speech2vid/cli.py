"""The ``speech2vid`` command: a thin layer that parses options and calls the library.

User errors (bad files, options, configs) are printed as one line with a non-zero exit and no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn

from speech2vid import __version__
from speech2vid.config import MAX_INT
from speech2vid.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: what a shell or systemd reports for a process ended by it
# Commands that need PyTorch, which the runtime install leaves out (the [train] extra adds it).
TRAIN_COMMANDS = ("export", "synth", "prepare", "train", "eval", "import-matconvnet", "pack-weights", "pack-landmarks")
TRAIN_EXTRA = "pip install 'speech2vid[train]'"

log = logging.getLogger("speech2vid.cli")

class Parser(argparse.ArgumentParser):
    """argparse with the product's error contract: one line on stderr, exit 2, and every number checked.

    Every ``type=int`` or ``type=float`` option, whoever adds it (the training commands add their own),
    takes only finite values within 0..2**31-1: no option of this CLI means a negative count, size or
    time, and NaN or infinity would slip past every ``x <= 0`` check. Options with tighter bounds give a
    :func:`number` type of their own.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        return super().add_argument(*args, **_bounded(kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument
        group.add_argument = lambda *a, **kw: plain(*a, **_bounded(kw))  # type: ignore[method-assign]
        return group

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"speech2vid: error: {printable(message)} (see `{self.prog} --help`)\n")


def _bounded(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``add_argument``'s keywords with a plain ``type=int`` or ``type=float`` made finite and 0..MAX_INT."""
    if kwargs.get("type") in (int, float):
        kwargs["type"] = number(kwargs["type"], 0, MAX_INT)
    return kwargs


def number(kind: type, lo: float, hi: float, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) within [lo, hi] (``above``: strictly above ``lo``), finite."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} is needed, got '{text}'") from None
        if not math.isfinite(value) or value < lo or value > hi or (above and value == lo):
            low = "(" if above else "["
            raise argparse.ArgumentTypeError(f"must be within {low}{_plain(lo)}, {_plain(hi)}], got '{text}'")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``): a file name or a YAML key can hold any
    of them, and printed raw they would move the cursor, recolour or clear the user's terminal."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# ----------------------------------------------------------------------------- shared options


def _settings(args: argparse.Namespace) -> Any:
    from speech2vid.config import load_settings

    overrides: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    for key in ("backend", "device", "precision", "cache_dir"):
        value = getattr(args, key, None)
        if value is not None:
            engine[key] = value
    if engine:
        overrides["engine"] = engine
    if getattr(args, "model", None) is not None:
        overrides["model"] = args.model
    if getattr(args, "weights", None) is not None:
        overrides["weights"] = args.weights
    if getattr(args, "size", None) is not None:
        overrides.setdefault("generate", {})["output_size"] = args.size
        overrides["generate"]["photo_max_side"] = args.size
    if getattr(args, "raw_face", False):
        overrides.setdefault("generate", {})["compose"] = "face"
    if args.command == "generate" and getattr(args, "idle", None) is not None:
        overrides.setdefault("generate", {})["idle"] = args.idle
    if args.command == "live":
        from speech2vid.runtime.live_app import live_overrides

        overrides["live"] = live_overrides(args)
    settings = load_settings(*args.config, overrides=overrides)
    from speech2vid.faces.dlib_models import use_cache_root
    from speech2vid.files import user_path

    use_cache_root(user_path(settings.engine.cache_dir))  # the expanded landmark model lives there too
    return settings


def _check_outputs(outputs: list[tuple[str, str | None]], inputs: list[str | None], suffixes: tuple[str, ...] = ()) -> None:
    """The one output rule (:mod:`speech2vid.outputs`) for a command's report files, before any work."""
    from speech2vid.outputs import check_distinct, check_output

    given = [i for i in inputs if i is not None]
    checked = [(what, check_output(path, what=what, inputs=given, suffixes=suffixes)) for what, path in outputs if path]
    check_distinct(checked)


def _add_cache_dir(p: argparse._ActionsContainer) -> None:  # a parser or an argument group
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default engine.cache_dir, ~/.cache/speech2vid/engines)")


def _add_engine_options(p: argparse.ArgumentParser, *, weights: bool = True) -> None:
    from speech2vid.config import BACKENDS, DEVICES, PRECISIONS

    g = p.add_argument_group("model and engine (defaults from configs/default.yaml)")
    g.add_argument("--model", help="model geometry: paper, lite, or a model YAML file")
    if weights:
        g.add_argument("--weights", help="safetensors weights file, or 'random' (untrained, for plumbing tests)")
    g.add_argument("--backend", choices=BACKENDS, help="inference backend (torch needs the [train] extra)")
    g.add_argument("--device", choices=DEVICES, help="device (torch: cpu or cuda)")
    g.add_argument("--precision", choices=PRECISIONS, help="engine precision")
    _add_cache_dir(g)


def _torch_installed() -> bool:
    from speech2vid.engine.factory import torch_installed

    return torch_installed()


def _model_ref(settings: Any) -> Any:
    """The model and weights of ``settings`` (no PyTorch); ``--weights random`` needs PyTorch to make them."""
    from speech2vid.config import load_model_config
    from speech2vid.model.ref import model_ref

    ref = model_ref(load_model_config(settings.model), settings.weights)
    if ref.is_random:
        if not _torch_installed():
            raise UserError(f"--weights random makes untrained weights with PyTorch, which the runtime install leaves out: {TRAIN_EXTRA}")
        log.warning("using RANDOM, untrained weights: the video shows no face and is labelled as such")
    return ref


def _engine(settings: Any) -> tuple[Any, Any]:
    """(model reference, engine not yet opened) for ``settings``: the FP32 graphs are exported first when
    the run needs them and neither the package nor the cache has them (with PyTorch; else one line)."""
    from speech2vid.build_engines.build import ready_engine

    ref = _model_ref(settings)
    return ref, ready_engine(ref, settings.engine)


def cmd_generate(args: argparse.Namespace) -> int:
    from speech2vid.model.ref import RANDOM
    from speech2vid.runtime.engine_choice import prefer_int8
    from speech2vid.runtime.offline import prepare_inputs, render_video

    settings = _settings(args)
    inputs = prepare_inputs(
        args.face,
        args.audio,
        args.output,
        aligned=args.aligned,
        face_index=args.face_index,
        allow_silence=args.allow_silence,
        silence_threshold_dbfs=settings.generate.silence_threshold_dbfs,
        compose=settings.generate.compose,
        photo_max_side=settings.generate.photo_max_side,
        rest_mouth=settings.generate.rest_mouth,
    )
    if settings.weights != RANDOM:  # random weights have no INT8 engine to prefer
        settings = prefer_int8(settings, enabled=settings.generate.prefer_int8, explicit=args.precision is not None,
                               make=_engine, command="generate", gain="speed", missing=logging.INFO)  # fmt: skip
    ref, engine = _engine(settings)
    label = "RANDOM WEIGHTS - NOT A TRAINED MODEL" if ref.is_random else None
    log.info(
        "model %s (%s), backend %s on %s, %s; %d frames for %.2f s of audio",
        ref.name, ref.source, settings.engine.backend, settings.engine.device,
        settings.engine.precision, inputs.n_frames, inputs.audio.duration,
    )  # fmt: skip
    with engine:
        result = render_video(engine, inputs, settings.generate, settings.encode, label=label, progress=not args.quiet, vad=settings.vad)
    print(f"wrote {result.output} ({result.frames} frames, {result.audio_seconds:.2f} s, "
          f"{result.fps:.1f} frames/s on {settings.engine.backend} {settings.engine.precision})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from speech2vid.assets import sample_face, sample_speech, sample_synth_face

    # A real photo (NASA's portrait of Eileen Collins, public domain); --synthetic: a procedural face.
    args.face = [str(sample_synth_face() if args.synthetic else sample_face())]
    args.audio = str(sample_speech())
    args.aligned = False
    args.face_index = None
    args.allow_silence = False
    args.size = None
    if args.weights is None:
        from speech2vid.config import load_model_config
        from speech2vid.model.ref import RANDOM, bundled_weights

        if bundled_weights(load_model_config(_settings(args).model).name) is None:
            args.weights = RANDOM  # a model without bundled weights still shows the plumbing, labelled
    return cmd_generate(args)


def cmd_info(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config, model_names
    from speech2vid.features.windows import FPS
    from speech2vid.text_table import table_lines

    for name in [args.model] if args.model else model_names():
        cfg = load_model_config(name)
        if _torch_installed():
            from speech2vid.model import build_model
            from speech2vid.model.cost import PER_FRAME, model_cost

            costs: list[tuple[str, int, int, bool]] | None = [
                (c.name, c.params, c.macs, c.name in PER_FRAME) for c in model_cost(build_model(cfg))
            ]
        else:
            costs = _graph_costs(cfg)
        if costs is None:
            print(f"model '{cfg.name}': no ONNX graphs to count here (none ship for it): per-module costs "
                  f"need PyTorch ({TRAIN_EXTRA})")  # fmt: skip
            continue
        rows = [[module, f"{params / 1e6:.2f} M", f"{macs / 1e9:.3f} G", "every frame" if per_frame else "once per identity (cached)"]
                for module, params, macs, per_frame in costs]  # fmt: skip
        frame_macs = sum(c[2] for c in costs if c[3])
        rows.append(["total / per frame", f"{sum(c[1] for c in costs) / 1e6:.2f} M", f"{frame_macs / 1e9:.3f} G",
                     f"{frame_macs * FPS * 2 / 1e9:.0f} GFLOP/s at {FPS} fps"])  # fmt: skip
        print(f"model '{cfg.name}': {cfg.description}")
        print("\n".join(table_lines(("module", "parameters", "MACs / frame", "runs"), rows, right=(1, 2))))
    return 0


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


def cmd_redub(args: argparse.Namespace) -> int:
    import dataclasses

    from speech2vid.runtime.redub import prepare_redub, run_redub

    settings = _settings(args)
    cfg = dataclasses.replace(settings.redub, **{k: v for k, v in (("fit", args.fit), ("region", args.region)) if v})
    inputs = prepare_redub(
        args.video, args.audio, args.output, cfg, faces=args.face or (), face_index=args.face_index,
        allow_silence=args.allow_silence, silence_threshold_dbfs=settings.generate.silence_threshold_dbfs,
        strip=args.strip,
    )  # fmt: skip
    ref, engine = _engine(settings)
    label = "RANDOM WEIGHTS - NOT A TRAINED MODEL" if ref.is_random else None
    log.info("re-dubbing %s (%dx%d, %.3g fps, %d frames) with %.2f s of audio: %d frames, fit %s, region %s",
             inputs.video.path, inputs.video.width, inputs.video.height, float(inputs.video.rate),
             inputs.video.frames, inputs.audio.duration, inputs.n_output, cfg.fit, cfg.region)
    with engine:
        result = run_redub(engine, inputs, cfg, settings.encode, face_index=args.face_index, label=label,
                           progress=not args.quiet)
    print(result.summary())
    if result.strip is not None:
        print(f"wrote {result.strip} (before/after strip)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.commands import run_bench_command

    _check_outputs([("--json", args.json), ("--plot", args.plot)], [args.audio, args.weights])
    if args.pipeline:
        return _bench_pipeline(args)
    if args.live:
        import dataclasses

        from speech2vid.runtime.live_app import run_live_bench_command

        settings = _settings(args)
        if args.models:
            if len(args.models) > 1:
                raise UserError(f"bench --live times one model, got --model {' and '.join(args.models)}")
            settings = dataclasses.replace(settings, model=args.models[0])
        return run_live_bench_command(settings, lambda s: _engine(s)[1], audio=args.audio,
                                      precisions=args.precisions, seconds=args.live_seconds, json_path=args.json,
                                      loads=args.loads)  # fmt: skip
    return run_bench_command(_settings(args), models=args.models, targets=args.targets, batches=args.batch,
                             seconds=args.seconds, weights=args.weights, json_path=args.json, plot_path=args.plot,
                             cache_dir=args.cache_dir)  # fmt: skip


def _bench_pipeline(args: argparse.Namespace) -> int:
    """``bench --pipeline``: generate, redub and live at several sizes, stage by stage."""
    from speech2vid.bench.machine import machine_info
    from speech2vid.bench.pipeline import PIPELINES, SIZES, format_pipeline_table, run_pipeline_bench
    from speech2vid.files import write_json_atomic

    settings = _settings(args)
    machine = machine_info()
    rows = run_pipeline_bench(settings, lambda s: _engine(s)[1], sizes=args.sizes or SIZES,
                              pipelines=args.only or PIPELINES, seconds=args.pipeline_seconds)  # fmt: skip
    e = settings.engine
    print(f"{machine['cpu']}, {machine['usable_cores']} cores; {e.backend} {e.device} {e.precision}; x264 preset "
          f"{settings.encode.preset} (live: {settings.encode.live_preset}); {args.pipeline_seconds:g} s of speech per run")
    print(format_pipeline_table(rows))
    if args.json:
        import dataclasses

        write_json_atomic(Path(args.json), {"machine": machine, "rows": [dataclasses.asdict(r) for r in rows]})
        print(f"wrote {args.json}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.commands import run_build_command

    return run_build_command(_settings(args), backends=args.backends, precisions=args.precisions, calib=args.calib,
                             force=args.force, cache_dir=args.cache_dir)  # fmt: skip


def cmd_verify(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.commands import run_verify_command

    _check_outputs([("--json", args.json)], [args.weights])
    return run_verify_command(_settings(args), backends=args.backends, precisions=args.precisions, calib=args.calib,
                              json_path=args.json, cache_dir=args.cache_dir)  # fmt: skip


def cmd_export(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.commands import run_export_command

    return run_export_command(_settings(args), bundled=args.default, force=args.force, cache_dir=args.cache_dir)


def cmd_cache(args: argparse.Namespace) -> int:
    from speech2vid.build_engines.commands import run_cache_command

    return run_cache_command(_settings(args), args.action, keep=args.keep, older_than_days=args.older_than,
                             cache_dir=args.cache_dir)  # fmt: skip


def cmd_live(args: argparse.Namespace) -> int:
    from speech2vid.runtime.live_app import live_precision, plan_live, run_live_command

    settings = _settings(args)
    plan = plan_live(args, settings)  # URIs and paths are checked before any engine loads
    settings = live_precision(settings, explicit=args.precision is not None, make=_engine)
    ref, engine = _engine(settings)
    return run_live_command(plan, settings, engine, ref)


def cmd_train(args: argparse.Namespace) -> int:
    from speech2vid.training.command import run_train_command

    args.config = list(args.config) + list(args.train_config)
    return run_train_command(args, _settings(args))


def cmd_eval(args: argparse.Namespace) -> int:
    from speech2vid.training.evaluation.command import run_eval_command

    _check_outputs([("--json", getattr(args, "json", None))], [getattr(args, "weights", None)])
    args.config = list(args.config) + list(args.eval_config)
    return run_eval_command(args, _settings(args))


def cmd_import_matconvnet(args: argparse.Namespace) -> int:
    from speech2vid.model.matconvnet import import_to_file

    _check_outputs([("-o", args.output)], list(args.files), (".safetensors",))
    print(import_to_file(args.files, args.output, args.model or "paper"))
    return 0


def cmd_pack_weights(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.model.pack import pack_weights

    _check_outputs([("-o", args.output)], [args.weights], (".safetensors",))
    extra = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--meta '{item}' is not KEY=VALUE")
        extra[key] = value
    print(pack_weights(args.weights, args.output, load_model_config(_settings(args).model), extra, half=not args.fp32))
    return 0


def cmd_pack_landmarks(args: argparse.Namespace) -> int:
    from speech2vid.assets import landmark_model
    from speech2vid.faces.compact_predictor import SHIPPED, Compaction, pack_landmarks

    _check_outputs([("-o", args.output)], [])
    compaction = Compaction(args.cascades or SHIPPED.cascades, args.trees or SHIPPED.trees, args.mantissa_bits or SHIPPED.mantissa_bits)
    print(pack_landmarks(Path(args.output) if args.output else landmark_model(), compaction))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from speech2vid.training.prepare.command import run_prepare_command

    return run_prepare_command(args, _settings(args))


def cmd_synth(args: argparse.Namespace) -> int:
    from speech2vid.training.synth.command import run_synth_command

    return run_synth_command(args, _settings(args))


def cmd_devices(args: argparse.Namespace) -> int:
    from speech2vid.runtime.live_app import print_devices

    return print_devices()


def cmd_grid(args: argparse.Namespace) -> int:
    from speech2vid.training.prepare.grid import SOURCES, extract

    source = SOURCES[args.speaker]
    out = Path(args.output).expanduser()
    clips = extract(source, Path(args.clone).expanduser(), out, limit=args.limit,
                    progress=sys.stderr.isatty() and not args.quiet)
    print(f"wrote {len(clips)} clips of GRID speaker {source.speaker} into {out} (CC BY 4.0: {out / 'LICENSE-GRID.txt'})")
    return 0


# ----------------------------------------------------------------------------- parser


def _add_engine_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """build, verify, bench, export and cache: the engine cache's commands."""
    from speech2vid.config import ENGINE_PRECISIONS, MAX_BATCH, MAX_SIDE
    from speech2vid.engine.cache import ENGINE_BACKENDS

    p = add("build", cmd_build, "build engines: FP32/FP16/INT8 ONNX graphs for ONNX Runtime, TensorRT plans")
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (untrained, for plumbing and timing)")
    # dest names differ from the global engine options so that _settings ignores them
    p.add_argument("--precision", dest="precisions", action="append", choices=ENGINE_PRECISIONS,
                   help="engine precision (repeatable; default fp32)")  # fmt: skip
    p.add_argument("--backend", dest="backends", action="append", choices=ENGINE_BACKENDS,
                   help="onnxruntime (ONNX graphs run by ONNX Runtime) or tensorrt (repeatable; default onnxruntime)")
    p.add_argument("--calib", metavar="DIR|sample", help="calibration data for int8 (overrides calib.source)")
    p.add_argument("--force", action="store_true", help="rebuild even when a valid engine is cached")
    _add_cache_dir(p)

    p = add("verify", cmd_verify, "compare every built engine with the FP32 reference (PyTorch, or the FP32 ONNX graph "
            "without it) and check each graph's real precision; non-zero exit on a fail")  # fmt: skip
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random'")
    p.add_argument("--precision", dest="precisions", action="append", choices=ENGINE_PRECISIONS,
                   help="only this precision (repeatable; default all built)")  # fmt: skip
    p.add_argument("--backend", dest="backends", action="append", choices=ENGINE_BACKENDS,
                   help="only this backend (repeatable; default all available)")
    p.add_argument("--calib", metavar="DIR|sample", help="inputs to compare on (overrides calib.source)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    _add_cache_dir(p)

    p = add("bench", cmd_bench, "per-frame latency of every backend x precision x model, side by side")
    p.add_argument("--model", dest="models", action="append",
                   help="model to time (repeatable; default every model that can run here)")
    p.add_argument("--backend", dest="targets", action="append", metavar="BACKEND[:DEVICE[:PRECISION]]",
                   help="target to time, e.g. onnxruntime:cpu:int8 or torch:cuda:fp16 "
                        "(repeatable; default every backend x precision this machine can run)")  # fmt: skip
    p.add_argument("--batch", action="append", type=number(int, 1, MAX_BATCH),
                   help="frames per engine call (repeatable; default 1 and the streaming batch engine.batch.opt)")
    p.add_argument("--seconds", type=number(float, 0, 3600, above=True), default=3.0,
                   help="timed seconds per combination and batch (default 3)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (default: random with PyTorch, else the bundled "
                                     "weights; timing does not depend on them)")  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the latencies as a PNG")
    g = p.add_argument_group("live loop (--live): per-stage latency of `speech2vid live` from a file in real time")
    g.add_argument("--live", action="store_true", help="time the live loop once per precision instead of the engines")
    g.add_argument("--precision", dest="precisions", action="append", choices=["fp32", "fp16", "int8"],
                   help="precision to run (repeatable; default fp32, fp16 and int8, each where built)")
    g.add_argument("--audio", metavar="FILE", help="speech played in real time, looped (default the sample speech)")
    g.add_argument("--live-seconds", type=number(float, 0, 24 * 3600, above=True), default=20.0, help="seconds of audio per precision (default 20)")
    g.add_argument("--load", dest="loads", action="append", type=number(int, 0, 64), metavar="N",
                   help="run the loop with N CPU-bound processes beside it (repeatable, in one run: --load 0 --load 1 "
                        "--load 2 gives the idle figure and two loads side by side; default 0)")
    g = p.add_argument_group("whole pipelines (--pipeline): generate, redub and live at several output sizes, stage by stage")
    g.add_argument("--pipeline", action="store_true", help="time the pipelines instead of the engines")
    g.add_argument("--size", dest="sizes", action="append", type=number(int, 64, MAX_SIDE), metavar="PX",
                   help="output size, the longer side (repeatable; default 256, 512, 1024, 1280 and 1920)")
    g.add_argument("--only", action="append", choices=["generate", "redub", "live"], help="only this pipeline (repeatable)")
    g.add_argument("--pipeline-seconds", type=number(float, 2, 3600), default=20.0,
                   help="seconds of speech per pipeline and size (default 20; live runs in real time)")
    _add_cache_dir(p)

    p = add("export", cmd_export, f"export a model's FP32 ONNX graphs into the engine cache [needs {TRAIN_EXTRA}]")
    p.add_argument("--model", help="paper, lite or a model YAML (default from the config)")
    p.add_argument("--weights", help="safetensors weights, or 'random' (default: the bundled weights)")
    p.add_argument("--default", action="store_true",
                   help="re-export the graphs the package ships (assets/graphs/) from the bundled weights of every "
                        "model that has them: run it after changing the default weights or a bundled model")  # fmt: skip
    p.add_argument("--force", action="store_true", help="export even when a valid export is cached")
    _add_cache_dir(p)

    p = add("cache", cmd_cache, "list the engine cache, or prune it (keep the N most recently used, or drop the unused)")
    p.add_argument("action", choices=["list", "prune"])
    p.add_argument("--keep", type=int, metavar="N", help="prune: keep the N most recently used model folders")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: delete folders unused for DAYS days")
    _add_cache_dir(p)




def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with ``command``, the option tables of the other training commands are left out.

    Why: those tables live beside the training code, which imports PyTorch (about 3 s); a runtime
    command, or ``--help``, should not pay for it when PyTorch happens to be installed.
    """
    from speech2vid.config import MAX_SIDE

    parser = Parser(
        prog="speech2vid",
        description="Talking faces from a still photo and speech (Speech2Vid, BMVC 2017), offline or live.",
    )
    parser.add_argument("--version", action="version", version=f"speech2vid {__version__}")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML file laid over configs/default.yaml (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, **kw)
        p.set_defaults(func=func)
        return p

    p = add("generate", cmd_generate, "render a face photo speaking an audio file into an MP4")
    p.add_argument("--face", action="append", required=True, metavar="PHOTO",
                   help="face photo (repeat up to 5 times for five identity images)")
    p.add_argument("--audio", required=True, metavar="FILE", help="speech: WAV, FLAC, MP3, or a video's audio track")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video (H.264 + AAC)")
    p.add_argument("--aligned", action="store_true", help="the photos are already aligned 112x112 face crops")
    p.add_argument("--face-index", type=int, metavar="N", help="which face when a photo has several (0 = largest)")
    p.add_argument("--allow-silence", action="store_true", help="render silent audio as a still face")
    p.add_argument("--idle", choices=["alive", "still", "off"],
                   help="frames without speech (Silero VAD): still (default), alive (blinks, slight sway) or off "
                        "(the network's output even for noise)")
    p.add_argument("--size", type=number(int, 16, MAX_SIDE), metavar="PX",
                   help="output size in pixels: the photo's longer side at most (default 1280), or with --raw-face the square's side (default 256)")
    p.add_argument("--raw-face", action="store_true",
                   help="show the network's 109x109 face alone, upscaled, instead of the photo with only the lower face generated")
    _add_engine_options(p)

    p = add("demo", cmd_demo, "render the bundled sample face speaking the bundled sample speech")
    p.add_argument("-o", "--output", default="demo.mp4", metavar="OUT.mp4", help="output video (default demo.mp4)")
    p.add_argument("--synthetic", action="store_true",
                   help="use the bundled procedural (cartoon) face instead of the real photo")
    _add_engine_options(p)

    p = add("info", cmd_info, "parameters and multiply-accumulates per module of a model")
    p.add_argument("--model", help="paper, lite or a model YAML (default: every bundled model)")

    p = add("redub", cmd_redub, "re-dub a video with new speech: the speaker's lips follow the new audio",
            epilog="--fit: the output is as long as the new audio (round(fps x seconds) frames at the source "
                   "frame rate). loop restarts the video, pingpong plays it forwards and backwards, trim cuts "
                   "it where the audio ends and, when the audio is longer, holds the last frame (logged). "
                   "Frames without a face pass through unchanged and are counted in the summary.")
    p.add_argument("video", metavar="VIDEO", help="source video with a speaker facing the camera")
    p.add_argument("--audio", required=True, metavar="NEW.wav", help="new speech: WAV, FLAC, MP3, or a video's audio")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video (source size and fps)")
    p.add_argument("--face", action="append", metavar="PHOTO",
                   help="identity photo instead of frames of the video (repeat up to 5 times)")
    p.add_argument("--face-index", type=int, metavar="N", help="which face of the video to re-dub (0 = largest)")
    p.add_argument("--fit", choices=["loop", "trim", "pingpong"], help="fit the video to the audio (default loop)")
    p.add_argument("--region", choices=["lower", "full"],
                   help="blended region: lower = from just below the eyes down (default), full = whole face")
    p.add_argument("--allow-silence", action="store_true", help="re-dub silent audio (a closed mouth)")
    p.add_argument("--strip", metavar="PNG", help="also save a before/after strip of six frames")
    _add_engine_options(p)

    _add_engine_commands(add)
    p = add("live", cmd_live, "a face speaking live: microphone (or file) -> window, MP4 or null, with measured latency")
    from speech2vid.runtime.live_app import add_live_arguments

    add_live_arguments(p)
    _add_engine_options(p)

    add("devices", cmd_devices, "list the capture devices a mic:// source can name")

    p = add("grid", cmd_grid, "extract real talking clips of the GRID corpus (CC BY 4.0) from a clone of a public "
            "repository that holds them (eval --videos, prepare)",
            epilog="s1: git clone https://github.com/osalinasv/lipnet ; s4: git clone https://github.com/arielephrat/vid2speech "
                   "(whole clones: the clips are in their history, read at a pinned commit)")
    p.add_argument("--from", dest="clone", required=True, metavar="CLONE", help="the git clone that holds the speaker's clips")
    p.add_argument("--speaker", choices=["s1", "s4"], default="s4",
                   help="s4 (50 clips, 720x576; held out of training: the evaluation speaker, default) or "
                        "s1 (1000 clips, 360x288, word alignments)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the clips (resumes when rerun)")
    p.add_argument("--limit", type=number(int, 1, 100_000), metavar="N", help="the first N clips only")

    training = {
        "prepare": (cmd_prepare, "real videos -> training dataset: shots, face tracks, speaker, samples", "speech2vid.training.prepare.command", "add_prepare_arguments"),
        "synth": (cmd_synth, "make a synthetic talking-face training corpus offline (eSpeak NG + rendered faces)", "speech2vid.training.synth.command", "add_synth_arguments"),
        "train": (cmd_train, "train the generator or the deblurring CNN on a dataset (DDP under torchrun)", "speech2vid.training.command", "add_train_arguments"),
        "eval": (cmd_eval, "lip-sync and image metrics on held-out identities, against two baselines", "speech2vid.training.evaluation.command", "add_eval_arguments"),
    }  # fmt: skip
    for name, (func, help_, module, adder) in training.items():
        p = add(name, func, help_ + ("" if _torch_installed() else f" [needs {TRAIN_EXTRA}]"))
        if _torch_installed() and command in (None, name):  # their option tables import PyTorch
            import importlib

            getattr(importlib.import_module(module), adder)(p)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    p = add("import-matconvnet", cmd_import_matconvnet,
            "convert the authors' MatConvNet weights (v201.mat generator, v114.mat deblurrer) to safetensors")
    p.add_argument("files", nargs="+", metavar="FILE.mat", help="generator file, optionally followed by the deblurrer")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="weights file to write")
    p.add_argument("--model", help="geometry the file must match (default paper)")

    p = add("pack-weights", cmd_pack_weights, "trained weights -> the file that ships (FP16, checked against FP32, or --fp32)")
    p.add_argument("weights", metavar="IN.safetensors", help="trained weights (e.g. runs/lite/last/weights.safetensors)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="weights file to write")
    p.add_argument("--model", help="geometry of the weights: lite (default), paper, or a model YAML")
    p.add_argument("--fp32", action="store_true", help="keep FP32 (the bundled lite: FP16 rounding moves its warped frames)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="extra metadata to record (repeatable)")
    p = add("pack-landmarks", cmd_pack_landmarks, "dlib's 68-point landmark model -> the compact copy the runtime ships")
    p.add_argument("-o", "--output", metavar="OUT.dat", help="file to write (default: the package's assets/landmarks copy)")
    p.add_argument("--cascades", type=int, help="cascades to keep (default: as shipped, assets/landmarks/README.md)")
    p.add_argument("--trees", type=int, help="trees to keep per cascade (default: as shipped)")
    p.add_argument("--mantissa-bits", type=int, help="significant bits of leaf values (default: as shipped)")
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s" if verbose else "%(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_escape_record)
    if not verbose:
        # The exporters' own chatter is noise to a user; our loggers say what matters.
        for noisy in ("torch", "onnxscript", "onnx_ir", "torch.onnx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"torch\..*")
        warnings.filterwarnings("ignore", module=r"onnxscript\..*")


def _escape_record(record: logging.LogRecord) -> bool:
    """Log lines, like errors, show control characters escaped (a file name with ESC in it cannot
    rewrite the terminal); line breaks of multi-line reports (tables) are kept."""
    message = record.getMessage()
    escaped = "\n".join(printable(line) for line in message.split("\n"))
    if escaped != message:
        record.msg, record.args = escaped, None
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``systemctl stop``), raised where the main thread is, so that it unwinds like
    Ctrl-C: every writer's ``with`` block deletes its temporary file and nothing half-written remains."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _command_in(argv: list[str]) -> str:
    """The subcommand named in ``argv`` (the first word that is neither an option nor ``--config``'s file)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return ""  # none: argparse says so, or prints the help


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    needs_train_extra = args.command in TRAIN_COMMANDS and not _torch_installed()
    if unknown and not needs_train_extra:  # without PyTorch their options are not known: the error below says why
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging(args.verbose, args.quiet)
    # Only the main thread may set handlers (tests call main() from threads); `live` sets its own for its loop.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        if needs_train_extra:
            raise UserError(f"`speech2vid {args.command}` needs PyTorch, which the runtime install leaves out: {TRAIN_EXTRA}")
        return int(args.func(args))
    except UserError as exc:
        print(f"speech2vid: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated:
        print("speech2vid: terminated (SIGTERM): stopped, unfinished output removed", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("speech2vid: interrupted (SIGINT): stopped, unfinished output removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
