"""The lower lip below a drawn opening: moved down by the whole opening, as one piece.

Why: the warp head's motion is smooth, drawn at 109 px. Where a mouth opens, its vertical flow ramps from
the upper lip (barely moving) to the lower lip (moved down by the opening) across the whole opening, and on
past it. The mask then covers the opening, but below it the lower lip is only partly moved: its upper part is
hidden under the mask's bottom and the rest is stretched. At full size a viewer sees the interior drawn
over where the lower lip should be, and the lips' colour is lost (measured on 8 evaluation photos: lip
colour dE up to 10, and dlib read a smaller opening than was drawn).

Here, per column of the upright face, the pixel just below the drawn opening is made to show the photo's
point where the lips met (where the pixel just above the opening comes from). The correction holds over the
lower lip's thickness and fades out over the chin. Pure function over the face-space motion.
"""

from __future__ import annotations

import numpy as np

OPEN_FROM = 0.25  # a column's mask peak from which its mouth counts as open; fully corrected at twice this
MAX_OPENING_FACE_PX = 32  # a mouth opens at most this tall in the 109 px face (a yawn's is about 25)
FADE_FACE_PX = 8.0  # face px below the lower lip over which the correction fades to nothing (the chin)
# The lower lip's edge is taken this far below where the lips met: the shadow line of closed lips
# (frames.mouth_warp.lip_seam, about a face px wide) would otherwise show twice, as a dark rim below the
# opening too.
SEAM_SKIP_FACE_PX = 1.0


def hold_lower_lip(
    motion: np.ndarray, lip_px: float, fade_px: float = FADE_FACE_PX, opening: float = 1.0
) -> np.ndarray:
    """``motion`` (109, 109, >= 3: flow x, y in face px, mask, colour...) with the flow below the mask corrected.

    Args:
        motion: one face's motion, upright (face space): rows go down the face.
        lip_px: the lower lip's thickness in face px: the correction is whole over it.
        fade_px: then fades to none over this many face px.
        opening: the drawn opening's height is scaled by this (its mask and colour squeezed from its top
            down, the lower lip raised with it): 1 draws the network's opening as it is.
    """
    mask = np.clip(motion[..., 2], 0.0, 1.0)
    peak = mask.max(axis=0)
    cols = np.nonzero(peak > OPEN_FROM)[0]
    if len(cols) == 0:
        return motion
    h = mask.shape[0]
    m = mask[:, cols]
    half = 0.5 * peak[cols]  # the edge: half the column's peak (the mask of a mouth half open peaks under 1)
    inside = m >= half
    top = np.argmax(inside, axis=0)
    bottom = h - 1 - np.argmax(inside[::-1], axis=0)
    mouth = (top > 0) & (bottom < h - 1) & (bottom - top <= MAX_OPENING_FACE_PX)
    if not mouth.all():  # a mask that fills the column is no mouth (untrained weights): leave it alone
        cols, m, half, top, bottom = cols[mouth], m[:, mouth], half[mouth], top[mouth], bottom[mouth]
        if len(cols) == 0:
            return motion
    span = np.arange(len(cols))
    y_top = _crossing(m, half, top, np.maximum(top - 1, 0), span)
    y_bottom = _crossing(m, half, bottom, np.minimum(bottom + 1, h - 1), span)
    fy = motion[:, cols, 1]
    ys = np.arange(h, dtype=np.float32)[:, None]
    out = motion.copy()
    if opening != 1.0:  # squeeze the drawn opening (mask, colour) towards its top
        grow = np.clip((peak[cols] - OPEN_FROM) / OPEN_FROM, 0.0, 1.0)  # as the hold fades in, so does this
        gain = 1.0 + (opening - 1.0) * grow
        squeezed = y_top + gain * (y_bottom - y_top)
        # inside the opening rows are stretched back to the network's; below it, shifted by what was taken off
        src = np.where(ys < y_top, ys, np.where(ys <= squeezed, y_top + (ys - y_top) / gain, ys + y_bottom - squeezed))
        for c in range(2, motion.shape[2]):
            out[:, cols, c] = _rows_at(motion[:, cols, c], src)
        y_bottom = squeezed
    met = y_top + _at(fy, y_top, span) + SEAM_SKIP_FACE_PX  # below where the lips met (the source above)
    shift = np.minimum(met - (y_bottom + _at(fy, y_bottom, span)), 0.0)  # < 0: take from further up
    shift *= np.clip((peak[cols] - OPEN_FROM) / OPEN_FROM, 0.0, 1.0)  # no jump as a mouth starts to open
    weight = np.clip(1.0 - (ys - y_bottom - lip_px) / fade_px, 0.0, 1.0) * (ys >= y_top)
    out[:, cols, 1] = fy + (weight * shift).astype(out.dtype)
    return out


def _rows_at(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values`` (h, n) sampled per column at fractional ``rows`` (h, n), linearly, edges held."""
    h = values.shape[0]
    r = np.clip(rows, 0.0, h - 1.0)
    r0 = np.minimum(np.floor(r).astype(int), h - 2)
    t = (r - r0).astype(values.dtype)
    a = np.take_along_axis(values, r0, axis=0)
    b = np.take_along_axis(values, r0 + 1, axis=0)
    out: np.ndarray = a + t * (b - a)
    return out


def _crossing(m: np.ndarray, level: np.ndarray, y_in: np.ndarray, y_out: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Sub-pixel row where each column's ``m`` crosses ``level`` between ``y_in`` (>= level) and ``y_out``."""
    a, b = m[y_in, span], m[y_out, span]
    t = np.clip((a - level) / np.maximum(a - b, 1e-6), 0.0, 1.0)
    out: np.ndarray = y_in + t * (y_out - y_in)
    return out


def _at(values: np.ndarray, y: np.ndarray, span: np.ndarray) -> np.ndarray:
    """``values[y, column]`` linearly interpolated at fractional rows ``y``."""
    y0 = np.clip(np.floor(y).astype(int), 0, values.shape[0] - 1)
    y1 = np.minimum(y0 + 1, values.shape[0] - 1)
    t = y - y0
    out: np.ndarray = values[y0, span] * (1 - t) + values[y1, span] * t
    return out
