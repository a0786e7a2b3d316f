"""Checkpoints: a folder per checkpoint, written whole into a temporary folder and swapped in.

``<out>/last/`` (resume point) and ``<out>/best/`` (best validation L1) each hold:

* ``weights.safetensors``: the full model (model/weights.py format; usable as ``--weights``);
* ``optimizer.safetensors``: the optimiser's per-parameter tensors (Adam moments / SGD momentum);
* ``state.json``: epoch, step, best score, optimiser hyper-parameters; ``config.yaml``: the run's config.

Nothing is pickled. A crash while writing leaves the previous checkpoint intact (``last.old`` is taken
when ``last`` is missing: the crash hit between the two renames).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from speech2vid.errors import UserError
from speech2vid.model.speech2vid import Speech2Vid
from speech2vid.model.weights import load_weights, save_weights

LAST, BEST = "last", "best"
WEIGHTS, OPTIMIZER, STATE, CONFIG = "weights.safetensors", "optimizer.safetensors", "state.json", "config.yaml"


class CheckpointError(UserError):
    """A checkpoint folder is incomplete or belongs to a different run."""


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(
    out_dir: Path,
    tag: str,
    model: Speech2Vid,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    config: dict[str, Any],
) -> Path:
    final = out_dir / tag
    tmp = out_dir / f".{tag}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_weights(model, tmp / WEIGHTS, extra={"step": str(state["global_step"]), "kind": str(state["kind"])})
    optim_meta: dict[str, Any] = {}
    if optimizer is not None:
        tensors, optim_meta = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / OPTIMIZER), metadata={"step": str(state["global_step"])})
    (tmp / STATE).write_text(json.dumps({**state, "optimizer": optim_meta}, indent=1) + "\n")
    (tmp / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    old = out_dir / f"{tag}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(out_dir: Path, tag: str = LAST) -> Path | None:
    for name in (tag, f"{tag}.old"):
        p = out_dir / name
        if (p / STATE).is_file():
            return p
    return None


def load_checkpoint(path: Path, model: Speech2Vid, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) from a checkpoint folder; returns its state."""
    try:
        state: dict[str, Any] = json.loads((path / STATE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path / STATE} ({exc}): start afresh with --fresh") from None
    meta = load_weights(model, path / WEIGHTS)
    if meta.get("step") != str(state["global_step"]):
        raise CheckpointError(
            f"{path} is inconsistent (weights of step {meta.get('step')}, state of step "
            f"{state['global_step']}): start afresh with --fresh"
        )
    if optimizer is not None and state.get("optimizer"):
        tensors = load_file(str(path / OPTIMIZER))
        om = state["optimizer"]
        per_param: dict[int, dict[str, Any]] = {}
        for key, v in tensors.items():
            idx, _, name = key.partition(".")
            per_param.setdefault(int(idx), {})[name] = v
        for key, v in om["scalars"].items():
            idx, _, name = key.partition(".")
            per_param.setdefault(int(idx), {})[name] = v
        optimizer.load_state_dict({"state": per_param, "param_groups": om["param_groups"]})
    return state
