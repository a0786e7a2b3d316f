"""The deblurring CNN (MODEL.md "Deblurring CNN", VDSR-like): residual 3x3 convs, no BatchNorm."""

from __future__ import annotations

import torch
from torch import nn

from speech2vid.config import DeblurConfig


class Deblur(nn.Module):
    """(N, 3, H, W) in [0, 1] -> the same plus a learned residual, clamped to [0, 1].

    ``layers: 0`` (the warp head, whose output is moved photo pixels, not a blurry drawing) is no
    deblur at all: the input passes through unchanged."""

    def __init__(self, cfg: DeblurConfig):
        super().__init__()
        widths = [3] + [cfg.width] * (cfg.layers - 1) + [3] if cfg.layers else []
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.convs:
            return x
        r = x
        for conv in self.convs[:-1]:
            r = torch.relu(conv(r))
        residual: torch.Tensor = self.convs[-1](r)
        return (x + residual).clamp(0.0, 1.0)
