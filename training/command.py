"""``speech2vid train``: options and the call into the training loop (the CLI stays thin)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from speech2vid.training.trainer import KINDS

log = logging.getLogger("speech2vid.train")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=KINDS, help="generator (L1 on the target face) or deblur (restores blurred faces)")
    p.add_argument("--data", required=True, metavar="DATASET_DIR", help="a dataset from `speech2vid synth` or `prepare`")
    p.add_argument("--real", metavar="DATASET_DIR", help="generator: also learn from this dataset of real talking video "
                   "(`prepare --model M`): a batch of it joins every train.real_every-th step (its image loss, weighted "
                   "by train.real_weight); validation stays on --data")
    p.add_argument("--model", help="geometry: lite (default), paper, or a model YAML")
    p.add_argument("--config", dest="train_config", action="append", default=[], metavar="FILE",
                   help="YAML laid over configs/default.yaml (its train: section sets optimiser, lr, epochs, ...)")
    p.add_argument("-o", "--output", metavar="DIR", help="run folder: checkpoints, metrics (default runs/<kind>-<model>)")
    p.add_argument("--weights", metavar="FILE", help="start from these weights (deblur: keeps their generator)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch", type=int, help="override train.batch (per process)")
    p.add_argument("--lr", type=float, help="override train.lr")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from DIR/last")
    p.add_argument("--stop-after-steps", type=int, metavar="N",
                   help="checkpoint and stop after N steps in all (as SIGTERM would); rerun to resume")


def run_train_command(args: argparse.Namespace, settings: Any) -> int:
    from pathlib import Path

    from speech2vid.config import load_model_config
    from speech2vid.training.trainer import train, with_overrides

    model_cfg = load_model_config(settings.model)
    cfg = with_overrides(settings.train, epochs=args.epochs, batch=args.batch, lr=args.lr)
    cfg._check("command-line options")
    out = Path(args.output or f"runs/{args.kind}-{model_cfg.name}")
    result = train(args.kind, args.data, model_cfg, cfg, out, weights=args.weights, fresh=args.fresh,
                   stop_after_steps=args.stop_after_steps, device=args.device,
                   progress=None if not args.quiet else False, real=args.real)
    if result.interrupted:
        print(f"stopped at step {result.global_step}: checkpoint in {out / 'last'}; rerun the same command to resume")
        return 0 if args.stop_after_steps is not None else 130
    best = f"{result.best_val:.5f}" if result.history else "n/a"
    print(f"{args.kind} trained: {result.epochs_done} epochs, {result.global_step} steps, best val L1 {best}; "
          f"weights {out / 'best' / 'weights.safetensors'}")
    return 0
