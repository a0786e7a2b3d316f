"""The generator's training loss: L1 (paper eq. 1) with the mouth band weighted up.

Why: the mouth and jaw are a small part of the 109x109 target, so a generator that copies the identity
face already reaches a low plain L1 and has little reason to listen to the audio. Weighting the rows
below the canonical face's nose tip makes the mouth's error count as much as the audio can explain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from speech2vid.faces.template import TEMPLATE_ALIGNED
from speech2vid.training.datasets import TARGET_OFFSET, TARGET_SIZE

NOSE_TIP = 33  # iBUG 68 index (0-based) of the nose tip


def mouth_band_top() -> int:
    """First target row of the mouth band: the first row at or below the template's nose tip.

    The band runs from there to the bottom of the 109x109 target (rows 64..108): mouth, lips and jaw.
    """
    return math.ceil(float(TEMPLATE_ALIGNED[NOSE_TIP, 1]) - TARGET_OFFSET)


def weighted_l1(out: torch.Tensor, target: torch.Tensor, mouth_weight: float, pyramid_levels: int = 0) -> torch.Tensor:
    """mean(w * |out - target|) over (N, C, 109, 109), w = mouth_weight in the mouth band, 1 elsewhere.

    ``pyramid_levels`` adds the same loss on 2x, 4x, ... average-pooled images. Why: a motion field
    learns from how a moved pixel's value changes, which a sharp image tells only within a pixel or
    two; the blurred levels tell it from further away (coarse to fine, as in optical flow).
    """
    if out.shape[-2] != TARGET_SIZE:
        raise ValueError(f"weighted_l1 expects {TARGET_SIZE}-row targets, got {tuple(out.shape)}")
    w = torch.ones(1, 1, TARGET_SIZE, 1, dtype=out.dtype, device=out.device)
    w[..., mouth_band_top() :, :] = mouth_weight
    loss = ((out - target).abs() * w).mean()
    for level in range(1, pyramid_levels + 1):
        k = 2**level
        o, t = F.avg_pool2d(out, k, ceil_mode=True), F.avg_pool2d(target, k, ceil_mode=True)
        wl = F.avg_pool2d(w.expand(1, 1, TARGET_SIZE, TARGET_SIZE), k, ceil_mode=True)
        loss = loss + ((o - t).abs() * wl).mean()
    return loss


def motion_loss(
    flow: torch.Tensor, mask_logit: torch.Tensor, flow_truth: torch.Tensor, cavity: torch.Tensor, mouth_weight: float
) -> torch.Tensor:
    """The warp head's direct targets: L1 of the motion field in pixels (outside the open mouth, whose
    interior is drawn, not moved; the mouth band weighted as in :func:`weighted_l1`) plus the mask's
    binary cross-entropy against the open mouth."""
    w = torch.ones(1, 1, TARGET_SIZE, 1, dtype=flow.dtype, device=flow.device)
    w[..., mouth_band_top() :, :] = mouth_weight
    px = (TARGET_SIZE - 1) / 2.0  # normalised units -> pixels
    moved = ((flow - flow_truth).abs() * px * w * (1.0 - cavity)).mean()
    drawn = F.binary_cross_entropy_with_logits(mask_logit, cavity, pos_weight=torch.tensor(4.0, device=flow.device))
    return moved + drawn
