"""``speech2vid prepare VIDEOS -o DATASET``: argument parsing and output for the CLI (logic in run.py)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

from .run import run_prepare, stats_table


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", metavar="VIDEOS_DIR", help="folder of videos (searched recursively; speaker/clip.mp4 layout)")
    p.add_argument("-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder (created; a rerun resumes)")
    p.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: one per CPU core)")
    p.add_argument("--val-fraction", type=float, metavar="F", help="share of speakers held out for validation")
    p.add_argument("--model", help="cut the MFCC windows for this model's look-ahead: lite, paper (centred, the "
                   "default) or a model YAML; `train` refuses a dataset cut for another model")


def run_prepare_command(args: argparse.Namespace, settings: Any) -> int:
    cfg = settings.prepare
    changes = {k: v for k, v in (("workers", args.workers), ("val_fraction", args.val_fraction)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    cfg._check("command-line options")
    t0 = time.perf_counter()
    from speech2vid.config import load_model_config
    from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS

    lookahead = MAX_LOOKAHEAD_COLUMNS if args.model is None else load_model_config(args.model).lookahead_columns
    summary = run_prepare(args.videos, args.output, cfg, progress=not args.quiet, lookahead_columns=lookahead)
    print(stats_table(summary.index))
    print(f"prepared {summary.prepared} video(s), {summary.resumed} already done, {len(summary.skipped)} skipped "
          f"(reasons in {summary.root / 'report.txt'}); {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return 0
