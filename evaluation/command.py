"""``speech2vid eval``: options and the call into the evaluation (the CLI stays thin)."""

from __future__ import annotations

import argparse
from typing import Any


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DATASET_DIR", help="dataset; its val split (held-out identities) is scored")
    p.add_argument("--photos", metavar="DIR", help="real face photos: render each with each --speech file and measure "
                   "what a viewer sees with dlib's own pretrained models (evaluation/visible.py)")
    p.add_argument("--speech", metavar="DIR", help="real speech recordings (with --photos)")
    p.add_argument("--seconds", type=float, metavar="S", help="with --photos: use at most S seconds of each recording")
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
    if args.photos is not None:
        if args.data is not None:
            raise UserError("give either --data DATASET_DIR or --photos DIR --speech DIR, not both")
        return _visible(args, settings)
    if args.data is None:
        raise UserError("give --data DATASET_DIR (synthetic held-out metrics) or --photos DIR --speech DIR (real inputs)")

    from speech2vid.config import load_model_config
    from speech2vid.errors import UserError
    from speech2vid.evaluation.evaluate import evaluate, format_table, write_json
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


def _visible(args: argparse.Namespace, settings: Any) -> int:
    import sys
    from pathlib import Path

    from speech2vid.build_engines.build import ensure_fp32_export
    from speech2vid.config import load_model_config
    from speech2vid.engine.cache import cache_root
    from speech2vid.engine.factory import make_engine
    from speech2vid.evaluation.visible import Renderer, evaluate_visible, table, write_json
    from speech2vid.model.ref import model_ref
    from speech2vid.runtime.offline import prepare_inputs, render_video

    from speech2vid.files import PHOTO_SUFFIXES, SPEECH_SUFFIXES, files_in

    photos = files_in(args.photos, PHOTO_SUFFIXES, "face photos", "--photos")
    speeches = files_in(args.speech, SPEECH_SUFFIXES, "speech recordings", "--speech")
    ref = model_ref(load_model_config(settings.model), settings.weights)
    if settings.engine.backend in ("onnxruntime", "tensorrt"):
        ensure_fp32_export(ref, settings.engine, cache_root(settings.engine))
    engine = make_engine(ref, settings.engine)
    gen = settings.generate

    def render(photo: Path, speech: Path, out: Path) -> None:
        inputs = prepare_inputs([photo], speech, out, allow_silence=True, compose=gen.compose,
                                photo_max_side=gen.photo_max_side, rest_mouth=gen.rest_mouth)  # fmt: skip
        render_video(engine, inputs, gen, settings.encode, progress=False, vad=settings.vad)

    with engine:
        results = evaluate_visible(photos, speeches, Renderer(render), seconds=args.seconds, truth=not args.no_truth,
                                   progress=sys.stderr.isatty() and not args.quiet)  # fmt: skip
    results["model"] = {"name": ref.name, "weights": str(ref.source), "backend": settings.engine.backend,
                        "precision": settings.engine.precision, "compose": gen.compose}  # fmt: skip
    print(table(results))
    if args.json:
        write_json(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0
