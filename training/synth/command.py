"""``speech2vid synth -o DATASET --identities N --minutes M``: CLI arguments and output (logic in corpus.py)."""

from __future__ import annotations

import argparse
import os
import dataclasses
import time
from typing import Any

from speech2vid.training.prepare.run import stats_table

from .corpus import SynthError, find_photos, run_synth


def _registered(args: argparse.Namespace, settings: Any) -> int:
    from speech2vid.config import load_model_config

    from .registered import run_registered

    if not args.photos:
        raise SynthError("--registered needs --photos DIR")
    t0 = time.perf_counter()
    index = run_registered(args.output, find_photos(args.photos), args.minutes, args.seed,
                           load_model_config(args.model).lookahead_columns, val_photos=args.val_photos,
                           workers=args.workers or os.cpu_count() or 1, progress=not args.quiet)  # fmt: skip
    print(stats_table(index))
    print(f"{time.perf_counter() - t0:.1f} s")
    return 0


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder (a rerun resumes)")
    p.add_argument("--identities", type=int, metavar="N", help="number of identities (speakers); with --registered: the photos")
    p.add_argument("--minutes", type=float, required=True, metavar="M", help="minutes of talking video in total (speech with its pauses)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed: same seed, same corpus (default 0)")
    p.add_argument("--photos", metavar="DIR", help="folder of face photos animated as extra identities (photo mode)")
    p.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: one per CPU core)")
    p.add_argument("--registered", action="store_true",
                   help="render the --photos straight into registered 112x112 faces (no videos, no prepare): "
                        "the fast talking-photo corpus the default weights are trained on")
    p.add_argument("--model", default="lite", metavar="NAME|YAML",
                   help="with --registered: the model whose look-ahead the MFCC windows are cut with (default lite)")
    p.add_argument("--val-photos", type=int, default=2, metavar="N", help="with --registered: photos held out for validation")


def run_synth_command(args: argparse.Namespace, settings: Any) -> int:
    if args.registered:
        return _registered(args, settings)
    if args.identities is None:
        raise SynthError("give --identities N (or --registered with --photos DIR)")
    synth_cfg, prep_cfg = settings.synth, settings.prepare
    if args.workers is not None:
        synth_cfg = dataclasses.replace(synth_cfg, workers=args.workers)
        prep_cfg = dataclasses.replace(prep_cfg, workers=args.workers)
        synth_cfg._check("command-line options")
    t0 = time.perf_counter()
    summary, timing = run_synth(args.output, args.identities, args.minutes, seed=args.seed, photos_dir=args.photos,
                                cfg=synth_cfg, prepare_cfg=prep_cfg, progress=not args.quiet)  # fmt: skip
    total = time.perf_counter() - t0
    print(stats_table(summary.index))
    print(f"prepared {summary.prepared} video(s), {summary.resumed} already done, {len(summary.skipped)} skipped "
          f"(reasons in {summary.root / 'report.txt'})")  # fmt: skip
    print(f"{timing['speech_s'] / 60:.1f} min of talking video: rendered in {timing['render_s']:.1f} s, prepared in "
          f"{timing['prepare_s']:.1f} s, {total:.1f} s in all ({total / max(timing['speech_s'], 1e-9) * 3600 / 60:.1f} min "
          f"per hour of corpus)")  # fmt: skip
    return 0
