"""``train`` and ``eval``: the networks trained, and what a viewer would see of them measured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from speech2vid.cli.options import check_outputs, settings_from
from speech2vid.errors import UserError


def add_commands(add: Callable[..., argparse.ArgumentParser], train: Callable[[argparse.ArgumentParser], bool]) -> None:
    """``train(p)``: False when PyTorch is missing, and the command then takes no options of its own."""
    from speech2vid.training import KINDS

    p = add("train", cmd_train, "train the generator or the deblurring CNN on a dataset (DDP under torchrun)")
    if train(p):
        p.add_argument(
            "kind", choices=KINDS, help="generator (L1 on the target face) or deblur (restores blurred faces)"
        )
        p.add_argument(
            "--data", required=True, metavar="DATASET_DIR", help="a dataset from `speech2vid synth` or `prepare`"
        )
        p.add_argument(
            "--real",
            metavar="DATASET_DIR",
            help="generator: also learn from this dataset of real talking video (`prepare --model M`): a "
            "batch of it joins every train.real_every-th step (its image loss, weighted by "
            "train.real_weight); validation stays on --data",
        )
        p.add_argument("--model", help="geometry: lite (default), paper, or a model YAML")
        p.add_argument(
            "--config",
            dest="train_config",
            action="append",
            default=[],
            metavar="FILE",
            help="YAML laid over configs/default.yaml (its train: section sets optimiser, lr, epochs, ...)",
        )
        p.add_argument(
            "-o", "--output", metavar="DIR", help="run folder: checkpoints, metrics (default runs/<kind>-<model>)"
        )
        p.add_argument("--weights", metavar="FILE", help="start from these weights (deblur: keeps their generator)")
        p.add_argument("--epochs", type=int, help="override train.epochs")
        p.add_argument("--batch", type=int, help="override train.batch (per process)")
        p.add_argument("--lr", type=float, help="override train.lr")
        p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
        p.add_argument("--fresh", action="store_true", help="start over instead of resuming from DIR/last")
        p.add_argument(
            "--stop-after-steps",
            type=int,
            metavar="N",
            help="checkpoint and stop after N steps in all (as SIGTERM would); rerun to resume",
        )

    p = add("eval", cmd_eval, "lip-sync and image metrics on held-out identities, against two baselines")
    if train(p):
        p.add_argument("--data", metavar="DATASET_DIR", help="dataset; its val split (held-out identities) is scored")
        p.add_argument(
            "--photos",
            metavar="DIR",
            help="real face photos: render each with each --speech file and measure what a viewer sees "
            "with dlib's own pretrained models (training/evaluation/visible.py)",
        )
        p.add_argument("--speech", metavar="DIR", help="real speech recordings (with --photos)")
        p.add_argument(
            "--videos",
            metavar="DIR",
            help="real talking clips: a frame of each is the photo, its own audio the speech; the rendered "
            "lips are measured against the real ones (training/evaluation/real_video.py)",
        )
        p.add_argument(
            "--faces",
            metavar="DIR",
            help="a face detection set (photos + faces.tsv, e.g. data/eval/detection): the share of faces the "
            "runtime's detector finds, beside dlib's HOG (training/evaluation/detection.py)",
        )
        p.add_argument(
            "--photo-frame",
            type=int,
            default=0,
            metavar="N",
            help="with --videos: the frame (at 25 fps) used as the photo (default 0, the first)",
        )
        p.add_argument(
            "--figure", metavar="FILE.png", help="with --videos: real and rendered mouths side by side, per clip"
        )
        p.add_argument(
            "--seconds",
            type=float,
            metavar="S",
            help="with --photos or --videos: use at most S seconds of each recording",
        )
        p.add_argument(
            "--no-truth", action="store_true", help="with --photos: skip the photo-mode ground-truth reference"
        )
        p.add_argument("--weights", metavar="FILE", help="model weights (default: the bundled weights)")
        p.add_argument("--model", help="geometry: lite (default), paper, or a model YAML")
        p.add_argument(
            "--config",
            dest="eval_config",
            action="append",
            default=[],
            metavar="FILE",
            help="YAML laid over configs/default.yaml (its eval: section)",
        )
        p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
        p.add_argument("--max-samples", type=int, metavar="N", help="score at most N val samples")
        p.add_argument("--cache-dir", metavar="DIR", help="where the trained sync and mouth networks are kept")


# ----------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.training.trainer import train, with_overrides

    args.config = list(args.config) + list(args.train_config)
    settings = settings_from(args)
    model_cfg = load_model_config(settings.model)
    cfg = with_overrides(settings.train, epochs=args.epochs, batch=args.batch, lr=args.lr)
    cfg._check("command-line options")
    out = Path(args.output or f"runs/{args.kind}-{model_cfg.name}")
    result = train(
        args.kind,
        args.data,
        model_cfg,
        cfg,
        out,
        weights=args.weights,
        fresh=args.fresh,
        stop_after_steps=args.stop_after_steps,
        device=args.device,
        progress=None if not args.quiet else False,
        real=args.real,
    )
    if result.interrupted:
        print(f"stopped at step {result.global_step}: checkpoint in {out / 'last'}; rerun the same command to resume")
        return 0 if args.stop_after_steps is not None else 130
    best = f"{result.best_val:.5f}" if result.history else "n/a"
    print(
        f"{args.kind} trained: {result.epochs_done} epochs, {result.global_step} steps, best val L1 {best}; "
        f"weights {out / 'best' / 'weights.safetensors'}"
    )
    return 0


# ----------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    check_outputs([("--json", args.json)], [args.weights])
    args.config = list(args.config) + list(args.eval_config)
    settings = settings_from(args)
    if (args.photos is None) != (args.speech is None):
        raise UserError("give --photos DIR and --speech DIR together")
    given = (("--data", args.data), ("--photos", args.photos), ("--videos", args.videos), ("--faces", args.faces))
    modes = [m for m, value in given if value is not None]
    if len(modes) > 1:
        raise UserError(
            "give one of --data DATASET_DIR, --photos DIR --speech DIR, --videos DIR or --faces DIR, "
            f"not {' and '.join(modes)}"
        )
    if (args.figure is not None or args.photo_frame != 0) and args.videos is None:
        raise UserError("--figure and --photo-frame go with --videos DIR")
    if args.photos is not None:
        return _visible(args, settings)
    if args.videos is not None:
        return _real_videos(args, settings)
    if args.faces is not None:
        return _face_set(args)
    if args.data is None:
        raise UserError(
            "give --data DATASET_DIR (synthetic held-out metrics), --photos DIR --speech DIR (real inputs), "
            "--videos DIR (real talking clips) or --faces DIR (a face detection set)"
        )
    return _corpus(args, settings)


def _corpus(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.model.weights import load_model
    from speech2vid.training.evaluation.evaluate import evaluate, format_table, write_json

    loaded = load_model(load_model_config(settings.model), settings.weights)
    try:
        result = evaluate(
            loaded.model,
            args.data,
            settings.eval,
            max_samples=args.max_samples,
            cache_dir=args.cache_dir,
            progress=sys.stderr.isatty() and not args.quiet,
        )
    except ValueError as exc:  # data that cannot be scored (too small, no samples)
        raise UserError(str(exc)) from None
    result["weights"] = loaded.source
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


def _generate_path(settings: Any) -> tuple[Any, Any, Callable[[Path, Path, Path], None]]:
    """(model ref, engine, render(photo, speech, out)): the product's ``generate`` path, engine unopened."""
    from speech2vid.build_engines.build import ensure_fp32_export
    from speech2vid.config import load_model_config
    from speech2vid.engine.cache import cache_root
    from speech2vid.engine.factory import make_engine
    from speech2vid.model.ref import model_ref
    from speech2vid.runtime.offline import prepare_inputs, render_video

    ref = model_ref(load_model_config(settings.model), settings.weights)
    if settings.engine.backend in ("onnxruntime", "tensorrt"):
        ensure_fp32_export(ref, settings.engine, cache_root(settings.engine))
    engine = make_engine(ref, settings.engine)
    gen = settings.generate

    def render(photo: Path, speech: Path, out: Path) -> None:
        inputs = prepare_inputs(
            [photo],
            speech,
            out,
            allow_silence=True,
            compose=gen.compose,
            photo_max_side=gen.photo_max_side,
            rest_mouth=gen.rest_mouth,
        )
        render_video(engine, inputs, gen, settings.encode, progress=False, vad=settings.vad)

    return ref, engine, render


def _model_note(ref: Any, settings: Any) -> dict[str, Any]:
    e = settings.engine
    return {
        "name": ref.name,
        "weights": str(ref.source),
        "backend": e.backend,
        "precision": e.precision,
        "compose": settings.generate.compose,
    }


def _real_videos(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.files import VIDEO_SUFFIXES, files_in, write_json_atomic
    from speech2vid.outputs import check_distinct, check_output
    from speech2vid.sinks.image_file import check_image_path
    from speech2vid.training.evaluation.real_video import evaluate_videos, table

    clips = files_in(args.videos, VIDEO_SUFFIXES, "talking clips", "--videos")
    figure = None
    if args.figure:
        figure = check_image_path(args.figure, option="--figure", description="the figure", inputs=clips)
    report = check_output(args.json, what="--json", inputs=clips) if args.json else None
    check_distinct([("--json", report), ("--figure", figure)])
    ref, engine, render = _generate_path(settings)
    with engine:
        try:
            results = evaluate_videos(
                clips,
                render,
                photo_frame=args.photo_frame,
                seconds=args.seconds,
                figure=figure,
                progress=sys.stderr.isatty() and not args.quiet,
            )
        except ValueError as exc:  # a clip without a face where the photo is taken
            raise UserError(str(exc)) from None
    results["model"] = _model_note(ref, settings)
    print(table(results))
    if args.figure:
        print(f"wrote {args.figure}")
    if args.json:
        write_json_atomic(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0


def _face_set(args: argparse.Namespace) -> int:
    from speech2vid.files import write_json_atomic
    from speech2vid.outputs import check_output
    from speech2vid.training.evaluation.detection import evaluate_detection, table

    folder = Path(args.faces).expanduser()
    if not folder.is_dir():
        raise UserError(f"--faces {folder} is not a folder: give a face set (photos and faces.tsv)")
    report = check_output(args.json, what="--json") if args.json else None
    try:
        results = evaluate_detection(folder, progress=sys.stderr.isatty() and not args.quiet)
    except ValueError as exc:  # a set that cannot be read: says which line and why
        raise UserError(str(exc)) from None
    print(table(results))
    if report is not None:
        write_json_atomic(Path(report), results)
        print(f"wrote {args.json}")
    return 0


def _visible(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.files import PHOTO_SUFFIXES, SPEECH_SUFFIXES, files_in, write_json_atomic
    from speech2vid.training.evaluation.visible import Renderer, evaluate_visible, table

    photos = files_in(args.photos, PHOTO_SUFFIXES, "face photos", "--photos")
    speeches = files_in(args.speech, SPEECH_SUFFIXES, "speech recordings", "--speech")
    ref, engine, render = _generate_path(settings)
    with engine:
        results = evaluate_visible(
            photos,
            speeches,
            Renderer(render),
            seconds=args.seconds,
            truth=not args.no_truth,
            progress=sys.stderr.isatty() and not args.quiet,
        )
    results["model"] = _model_note(ref, settings)
    print(table(results))
    if args.json:
        write_json_atomic(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0
