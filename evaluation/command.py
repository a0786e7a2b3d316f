"""``speech2vid eval``: options and the call into the evaluation (the CLI stays thin)."""

from __future__ import annotations

import argparse
from typing import Any


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DATASET_DIR", help="dataset; its val split (held-out identities) is scored")
    p.add_argument("--weights", metavar="FILE", help="model weights (default: the bundled weights)")
    p.add_argument("--model", help="geometry: lite (default), paper, or a model YAML")
    p.add_argument("--config", dest="eval_config", action="append", default=[], metavar="FILE",
                   help="YAML laid over configs/default.yaml (its eval: section)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--max-samples", type=int, metavar="N", help="score at most N val samples")
    p.add_argument("--cache-dir", metavar="DIR", help="where the trained sync and mouth networks are kept")


def run_eval_command(args: argparse.Namespace, settings: Any) -> int:
    import sys

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
