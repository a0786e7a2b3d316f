"""The mouth model: 68 iBUG landmarks with the lips and jaw set by four viseme parameters.

One geometry for everything that moves a mouth: the procedural faces (``synth.face_render``), the
photo-mode and registered training corpora (``synth.photo_anim``, ``synth.registered``) and the runtime,
which sets an identity photo's lips to the model's rest shape before rendering
(``frames.photo_canvas.rest_mouth_identity``). The shapes live in a 320x320 *face canvas*: the aligned
template scaled x2 and offset 48.
"""

from __future__ import annotations

import math

import numpy as np

from speech2vid.faces.template import TEMPLATE_ALIGNED

CANVAS = 320  # face canvas side
OFFSET = 48.0  # face canvas = aligned template x2 + OFFSET
BASE_SHAPE = TEMPLATE_ALIGNED * 2.0 + OFFSET  # (68, 2) float64
MOUTH_CENTRE = BASE_SHAPE[[48, 54]].mean(axis=0)
MOUTH_WIDTH = float(np.linalg.norm(BASE_SHAPE[54] - BASE_SHAPE[48]))
MAX_DROP = 0.6  # jaw drop at full opening, in mouth widths
JAW_WEIGHTS = {3: 0.1, 4: 0.3, 5: 0.55, 6: 0.78, 7: 0.92, 8: 1.0, 9: 0.92, 10: 0.78, 11: 0.55, 12: 0.3, 13: 0.1}
JAW_FOLLOW = 0.8  # the chin drops by this fraction of the lower lip's drop
UPPER_LIP_RAISE = 0.12  # the upper lip rises by this fraction of the lower lip's drop
WIDEN_PER_WIDTH = 0.14  # the half width grows by this fraction per unit of lip_width ...
NARROW_PER_ROUND = 0.28  # ... and shrinks by this fraction per unit of lip_round
REST_VISEMES = np.zeros(4, dtype=np.float32)  # jaw closed, neutral width, no rounding, no teeth


def mouth_shape(shape: np.ndarray, visemes: np.ndarray, lip_thickness: float = 1.0) -> np.ndarray:
    """The 68 landmarks with the mouth and jaw set by the viseme parameters (jaw_open, width, round, teeth).

    The neutral shape's lips are replaced by a parametric mouth centred where the neutral one was: the
    corners spread with ``width`` and pull in with ``round``; the lower lip and the chin drop with
    ``jaw_open``; rounding makes the opening more even across its width.
    """
    open_, width, rnd = float(visemes[0]), float(visemes[1]), float(visemes[2])
    out = shape.copy()
    centre = shape[[48, 54]].mean(axis=0)
    w0 = float(np.linalg.norm(shape[54] - shape[48]))
    hw = 0.5 * w0 * (1.0 + WIDEN_PER_WIDTH * width - NARROW_PER_ROUND * rnd)
    drop = open_ * MAX_DROP * w0
    up_t = 0.16 * w0 * lip_thickness * (1 + 0.25 * rnd)
    low_t = 0.2 * w0 * lip_thickness * (1 + 0.25 * rnd)
    raise_up = UPPER_LIP_RAISE * drop
    x = np.array([-1.0, -0.62, -0.28, 0.0, 0.28, 0.62, 1.0])
    bow = np.array([0.0, 0.7, 1.0, 0.82, 1.0, 0.7, 0.0])  # cupid's bow
    # Outer upper lip 48..54 (left corner to right corner).
    out[48:55, 0] = centre[0] + hw * x
    out[48:55, 1] = centre[1] - raise_up * np.abs(np.cos(x * math.pi / 2)) - up_t * bow

    # Opening profile across the mouth: rounded lips open more evenly.
    def profile(xs: np.ndarray) -> np.ndarray:
        return np.asarray(np.cos(np.clip(xs, -1, 1) * math.pi / 2) ** (1.2 - 0.8 * rnd), dtype=np.float64)

    lx = np.array([0.62, 0.28, 0.0, -0.28, -0.62])  # outer lower 55..59 go right to left
    out[55:60, 0] = centre[0] + hw * lx
    out[55:60, 1] = centre[1] + drop * profile(lx) + low_t * np.array([0.75, 0.95, 1.0, 0.95, 0.75])
    inner_hw = hw * 0.82
    ix = np.array([-0.5, 0.0, 0.5])
    out[60] = centre + [-inner_hw, 0.0]
    out[64] = centre + [inner_hw, 0.0]
    out[61:64, 0] = centre[0] + inner_hw * ix
    out[61:64, 1] = centre[1] - raise_up * profile(ix)
    out[65:68, 0] = centre[0] + inner_hw * ix[::-1]  # 65 right .. 67 left
    out[65:68, 1] = centre[1] + drop * profile(ix[::-1])
    for j, weight in JAW_WEIGHTS.items():
        out[j, 1] += JAW_FOLLOW * drop * weight
    return out


def blink_shape(shape: np.ndarray, closure: float) -> np.ndarray:
    """Lower the upper lids (points 37, 38 / 43, 44) towards the lower ones by ``closure`` 0..1."""
    out = shape.copy()
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        out[up] = out[up] + closure * (out[low] - out[up]) * 0.95
    return out
