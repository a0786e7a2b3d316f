"""``speech2vid eval``: options and the call into the evaluation (the CLI stays thin)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DATASET_DIR", help="dataset; its val split (held-out identities) is scored")
    p.add_argument("--photos", metavar="DIR", help="real face photos: render each with each --speech file and measure "
                   "what a viewer sees with dlib's own pretrained models (training/evaluation/visible.py)")
    p.add_argument("--speech", metavar="DIR", help="real speech recordings (with --photos)")
    p.add_argument("--videos", metavar="DIR", help="real talking clips: a frame of each is the photo, its own audio the "
                   "speech; the rendered lips are measured against the real ones (training/evaluation/real_video.py)")
    p.add_argument("--photo-frame", type=int, default=0, metavar="N",
                   help="with --videos: the frame (at 25 fps) used as the photo (default 0, the first)")
    p.add_argument("--figure", metavar="FILE.png", help="with --videos: real and rendered mouths side by side, per clip")
    p.add_argument("--seconds", type=float, metavar="S", help="with --photos or --videos: use at most S seconds of each recording")
    p.add_argument("--no-truth", action="store_true", help="with --photos: skip the photo-mode ground-truth reference")
    p.add_argument("--weights", metavar="FILE", help="model weights (default: the bundled weights)")
    p.add_argument("--model", help="geometry: lite (default), paper, or a model YAML")
    p.add_argument("--config", dest="eval_config", action="append", default=[], metavar="FILE",
                   help="YAML laid over configs/default.yaml (its eval: section)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--max-samples", type=int, metavar="N", help="score at most N val samples")
    p.add_argument("--cache-dir", metavar="DIR", help="where the trained sync and mouth networks are kept")


def run_eval_command(args: argparse.Namespace, settings: Any) -> int:
    import sys

    from speech2vid.errors import UserError

    if (args.photos is None) != (args.speech is None):
        raise UserError("give --photos DIR and --speech DIR together")
    modes = [m for m, given in (("--data", args.data), ("--photos", args.photos), ("--videos", args.videos)) if given is not None]
    if len(modes) > 1:
        raise UserError(f"give one of --data DATASET_DIR, --photos DIR --speech DIR or --videos DIR, not {' and '.join(modes)}")
    if (args.figure is not None or args.photo_frame != 0) and args.videos is None:
        raise UserError("--figure and --photo-frame go with --videos DIR")
    if args.photos is not None:
        return _visible(args, settings)
    if args.videos is not None:
        return _real_videos(args, settings)
    if args.data is None:
        raise UserError("give --data DATASET_DIR (synthetic held-out metrics), --photos DIR --speech DIR (real inputs) "
                        "or --videos DIR (real talking clips)")

    from speech2vid.config import load_model_config
    from speech2vid.errors import UserError
    from speech2vid.training.evaluation.evaluate import evaluate, format_table, write_json
    from speech2vid.model.weights import load_model

    loaded = load_model(load_model_config(settings.model), settings.weights)
    try:
        result = evaluate(loaded.model, args.data, settings.eval, max_samples=args.max_samples,
                          cache_dir=args.cache_dir, progress=sys.stderr.isatty() and not args.quiet)
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
        inputs = prepare_inputs([photo], speech, out, allow_silence=True, compose=gen.compose,
                                photo_max_side=gen.photo_max_side, rest_mouth=gen.rest_mouth)  # fmt: skip
        render_video(engine, inputs, gen, settings.encode, progress=False, vad=settings.vad)

    return ref, engine, render


def _model_note(ref: Any, settings: Any) -> dict[str, Any]:
    return {"name": ref.name, "weights": str(ref.source), "backend": settings.engine.backend,
            "precision": settings.engine.precision, "compose": settings.generate.compose}  # fmt: skip


def _real_videos(args: argparse.Namespace, settings: Any) -> int:
    import sys

    from speech2vid.errors import UserError
    from speech2vid.training.evaluation.real_video import evaluate_videos, table
    from speech2vid.training.evaluation.visible import write_json
    from speech2vid.files import VIDEO_SUFFIXES, files_in
    from speech2vid.outputs import check_distinct, check_output
    from speech2vid.sinks.image_file import check_image_path

    clips = files_in(args.videos, VIDEO_SUFFIXES, "talking clips", "--videos")
    figure = check_image_path(args.figure, option="--figure", description="the figure", inputs=clips) if args.figure else None
    outputs = [("--json", check_output(args.json, what="--json", inputs=clips) if args.json else None), ("--figure", figure)]
    check_distinct(outputs)
    ref, engine, render = _generate_path(settings)
    with engine:
        try:
            results = evaluate_videos(clips, render, photo_frame=args.photo_frame, seconds=args.seconds,
                                      figure=figure, progress=sys.stderr.isatty() and not args.quiet)
        except ValueError as exc:  # a clip without a face where the photo is taken
            raise UserError(str(exc)) from None
    results["model"] = _model_note(ref, settings)
    print(table(results))
    if args.figure:
        print(f"wrote {args.figure}")
    if args.json:
        write_json(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0


def _visible(args: argparse.Namespace, settings: Any) -> int:
    import sys

    from speech2vid.training.evaluation.visible import Renderer, evaluate_visible, table, write_json
    from speech2vid.files import PHOTO_SUFFIXES, SPEECH_SUFFIXES, files_in

    photos = files_in(args.photos, PHOTO_SUFFIXES, "face photos", "--photos")
    speeches = files_in(args.speech, SPEECH_SUFFIXES, "speech recordings", "--speech")
    ref, engine, render = _generate_path(settings)
    with engine:
        results = evaluate_visible(photos, speeches, Renderer(render), seconds=args.seconds, truth=not args.no_truth,
                                   progress=sys.stderr.isatty() and not args.quiet)  # fmt: skip
    results["model"] = _model_note(ref, settings)
    print(table(results))
    if args.json:
        write_json(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0
