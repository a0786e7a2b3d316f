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
    raise NotImplementedError
