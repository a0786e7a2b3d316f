"""Parameters and multiply-accumulates per module, counted by PyTorch's own FLOP counter."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.model.io_spec import FACE_SIZE
from speech2vid.model.speech2vid import Speech2Vid

MODULES = ("audio", "identity", "decoder", "deblur")
PER_FRAME = ("audio", "decoder", "deblur")  # the identity is encoded once and cached


@dataclass(frozen=True)
class ModuleCost:
    name: str
    params: int
    macs: int  # per generated frame (batch 1)


def model_cost(model: Speech2Vid) -> list[ModuleCost]:
    """Cost of each module for one frame; convolution FLOPs are 2 x MACs."""
    cfg = model.cfg
    mfcc = torch.zeros(1, 1, N_CEPS, WINDOW_COLS)
    faces = torch.zeros(1, 3 * cfg.identity_faces, FACE_SIZE, FACE_SIZE)
    counter = FlopCounterMode(display=False, depth=1)
    was_training = model.training
    model.eval()
    with torch.no_grad(), counter:
        model(mfcc, faces)
    model.train(was_training)
    flops = counter.get_flop_counts()
    out = []
    for name in MODULES:
        module_flops = sum(flops.get(f"Speech2Vid.{name}", {}).values())
        params = sum(p.numel() for p in getattr(model, name).parameters())
        out.append(ModuleCost(name, params, int(module_flops) // 2))
    return out


def per_frame_macs(model: Speech2Vid) -> int:
    return sum(c.macs for c in model_cost(model) if c.name in PER_FRAME)
