"""``grid``, ``prepare`` and ``synth``: real and synthetic talking faces made into training data."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Callable

from speech2vid.cli.options import number, settings_from
from speech2vid.errors import UserError


def add_commands(add: Callable[..., argparse.ArgumentParser], train: Callable[[argparse.ArgumentParser], bool]) -> None:
    """``train(p)``: False when PyTorch is missing, and the command then takes no options of its own."""
    p = add(
        "grid",
        cmd_grid,
        "extract real talking clips of the GRID corpus (CC BY 4.0) from a clone of a public "
        "repository that holds them (eval --videos, prepare)",
        epilog="s1: git clone https://github.com/osalinasv/lipnet ; s4: git clone "
        "https://github.com/arielephrat/vid2speech (whole clones: the clips are in their history, read at "
        "a pinned commit)",
    )
    p.add_argument(
        "--from", dest="clone", required=True, metavar="CLONE", help="the git clone that holds the speaker's clips"
    )
    p.add_argument(
        "--speaker",
        choices=["s1", "s4"],
        default="s4",
        help="s4 (50 clips, 720x576; held out of training: the evaluation speaker, default) or "
        "s1 (1000 clips, 360x288, word alignments)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the clips (resumes when rerun)")
    p.add_argument("--limit", type=number(int, 1, 100_000), metavar="N", help="the first N clips only")

    p = add("prepare", cmd_prepare, "real videos -> training dataset: shots, face tracks, speaker, samples")
    if train(p):
        p.add_argument(
            "videos", metavar="VIDEOS_DIR", help="folder of videos (searched recursively; speaker/clip.mp4 layout)"
        )
        p.add_argument(
            "-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder (created; a rerun resumes)"
        )
        p.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: one per CPU core)")
        p.add_argument("--val-fraction", type=float, metavar="F", help="share of speakers held out for validation")
        p.add_argument(
            "--model",
            help="cut the MFCC windows for this model's look-ahead: lite, paper (centred, the "
            "default) or a model YAML; `train` refuses a dataset cut for another model",
        )

    p = add("synth", cmd_synth, "make a synthetic talking-face training corpus offline (eSpeak NG + rendered faces)")
    if train(p):
        p.add_argument("-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder (a rerun resumes)")
        p.add_argument(
            "--identities", type=int, metavar="N", help="number of identities (speakers); with --registered: the photos"
        )
        p.add_argument(
            "--minutes",
            type=float,
            required=True,
            metavar="M",
            help="minutes of talking video in total (speech with its pauses)",
        )
        p.add_argument(
            "--seed", type=int, default=0, metavar="S", help="random seed: same seed, same corpus (default 0)"
        )
        p.add_argument(
            "--photos", metavar="DIR", help="folder of face photos animated as extra identities (photo mode)"
        )
        p.add_argument("--workers", type=int, metavar="N", help="parallel processes (default: one per CPU core)")
        p.add_argument(
            "--registered",
            action="store_true",
            help="render the --photos straight into registered 112x112 faces (no videos, no prepare): "
            "the fast talking-photo corpus the default weights are trained on",
        )
        p.add_argument(
            "--model",
            default="lite",
            metavar="NAME|YAML",
            help="with --registered: the model whose look-ahead the MFCC windows are cut with (default lite)",
        )
        p.add_argument(
            "--val-photos", type=int, default=2, metavar="N", help="with --registered: photos held out for validation"
        )
        p.add_argument(
            "--real-motion",
            metavar="VIDEOS_DIR",
            help="with --registered: real talking clips (e.g. `speech2vid grid --speaker s1`) whose lips, followed "
            "by the face stack, move the photos with the clips' own audio, beside the --minutes of eSpeak NG speech",
        )


def cmd_grid(args: argparse.Namespace) -> int:
    from speech2vid.training.prepare.grid import SOURCES, extract

    source = SOURCES[args.speaker]
    out = Path(args.output).expanduser()
    progress = sys.stderr.isatty() and not args.quiet
    clips = extract(source, Path(args.clone).expanduser(), out, limit=args.limit, progress=progress)
    print(
        f"wrote {len(clips)} clips of GRID speaker {source.speaker} into {out} (CC BY 4.0: {out / 'LICENSE-GRID.txt'})"
    )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS
    from speech2vid.training.prepare.run import run_prepare, stats_table

    cfg = settings_from(args).prepare
    changes = {k: v for k, v in (("workers", args.workers), ("val_fraction", args.val_fraction)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    cfg._check("command-line options")
    t0 = time.perf_counter()
    lookahead = MAX_LOOKAHEAD_COLUMNS if args.model is None else load_model_config(args.model).lookahead_columns
    summary = run_prepare(args.videos, args.output, cfg, progress=not args.quiet, lookahead_columns=lookahead)
    print(stats_table(summary.index))
    print(
        f"prepared {summary.prepared} video(s), {summary.resumed} already done, {len(summary.skipped)} skipped "
        f"(reasons in {summary.root / 'report.txt'}); {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from speech2vid.training.prepare.run import stats_table
    from speech2vid.training.synth.corpus import SynthError, run_synth

    settings = settings_from(args)
    if args.registered:
        return _registered(args)
    if args.real_motion:
        raise SynthError("--real-motion moves the registered talking photos: add --registered --photos DIR")
    if args.identities is None:
        raise SynthError("give --identities N (or --registered with --photos DIR)")
    synth_cfg, prep_cfg = settings.synth, settings.prepare
    if args.workers is not None:
        synth_cfg = dataclasses.replace(synth_cfg, workers=args.workers)
        prep_cfg = dataclasses.replace(prep_cfg, workers=args.workers)
        synth_cfg._check("command-line options")
    t0 = time.perf_counter()
    summary, timing = run_synth(
        args.output,
        args.identities,
        args.minutes,
        seed=args.seed,
        photos_dir=args.photos,
        cfg=synth_cfg,
        prepare_cfg=prep_cfg,
        progress=not args.quiet,
    )
    total = time.perf_counter() - t0
    print(stats_table(summary.index))
    print(
        f"prepared {summary.prepared} video(s), {summary.resumed} already done, {len(summary.skipped)} skipped "
        f"(reasons in {summary.root / 'report.txt'})"
    )
    per_hour = total / max(timing["speech_s"], 1e-9) * 3600 / 60
    print(
        f"{timing['speech_s'] / 60:.1f} min of talking video: rendered in {timing['render_s']:.1f} s, prepared in "
        f"{timing['prepare_s']:.1f} s, {total:.1f} s in all ({per_hour:.1f} min per hour of corpus)"
    )
    return 0


def _real_videos(folder: str) -> list[Path]:
    from speech2vid.files import VIDEO_SUFFIXES, files_in

    return files_in(folder, VIDEO_SUFFIXES, "talking clips", "--real-motion")


def _registered(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.training.prepare.run import stats_table
    from speech2vid.training.synth.corpus import find_photos
    from speech2vid.training.synth.registered import run_registered

    if not args.photos:
        raise UserError("--registered needs --photos DIR")
    t0 = time.perf_counter()
    index = run_registered(
        args.output,
        find_photos(args.photos),
        args.minutes,
        args.seed,
        load_model_config(args.model).lookahead_columns,
        val_photos=args.val_photos,
        workers=args.workers or os.cpu_count() or 1,
        progress=not args.quiet,
        real_videos=_real_videos(args.real_motion) if args.real_motion else None,
    )
    print(stats_table(index))
    print(f"{time.perf_counter() - t0:.1f} s")
    return 0
