"""The lower lip below a drawn opening moves down by the whole opening (frames/lower_lip.py)."""

from __future__ import annotations

import numpy as np

from speech2vid.frames.lower_lip import FADE_FACE_PX, SEAM_SKIP_FACE_PX, hold_lower_lip

TOP, BOTTOM = 60, 70  # the opening: mask 1 on rows 60..70 (the crossings at half the peak lie half a row out)


def _opening(peak: float = 1.0) -> np.ndarray:
    """A warp-head motion as the network draws it: the mask over rows TOP..BOTTOM of columns 40..70, and a
    smooth vertical flow ramping from 0 above the mouth to -8 px (taking pixels from 8 px higher) well below
    it, so that just below the opening the lower lip is only partly moved."""
    motion = np.zeros((109, 109, 6), np.float32)
    motion[TOP : BOTTOM + 1, 40:71, 2] = peak
    rows = np.arange(109, dtype=np.float32)[:, None]
    motion[..., 1] = -8.0 * np.clip((rows - 55) / 30.0, 0.0, 1.0)
    return motion


def test_the_pixel_below_the_opening_shows_where_the_lips_met() -> None:
    motion = _opening()
    out = hold_lower_lip(motion, lip_px=4.0)
    col = 55
    y_top, y_bottom = TOP - 0.5, BOTTOM + 0.5
    met = y_top + np.interp(y_top, np.arange(109), motion[:, col, 1]) + SEAM_SKIP_FACE_PX
    source = y_bottom + np.interp(y_bottom, np.arange(109), out[:, col, 1])
    assert abs(source - met) < 0.05, (source, met)
    # Over the lip's thickness every row moves by the same amount: the lip is moved, not stretched.
    shift = out[:, col, 1] - motion[:, col, 1]
    assert np.allclose(shift[BOTTOM + 1 : BOTTOM + 5], shift[BOTTOM + 1], atol=1e-5) and shift[BOTTOM + 1] < -3


def test_only_the_mouth_and_below_it_change() -> None:
    motion = _opening()
    out = hold_lower_lip(motion, lip_px=4.0)
    changed = np.abs(out - motion).max(axis=2) > 1e-6
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 40 and xs.max() <= 70  # the open columns only
    assert ys.min() >= TOP - 1 and ys.max() <= BOTTOM + 1 + 4 + FADE_FACE_PX  # lip and fade, nothing further
    assert np.array_equal(out[..., [0, 2, 3, 4, 5]], motion[..., [0, 2, 3, 4, 5]])  # only the vertical flow


def test_a_closed_mouth_is_left_alone_and_an_opening_one_fades_in() -> None:
    closed = _opening(peak=0.2)
    assert np.array_equal(hold_lower_lip(closed, lip_px=4.0), closed)
    shifts = []
    for peak in (0.3, 0.4, 0.5, 1.0):
        motion = _opening(peak)
        shifts.append(float((hold_lower_lip(motion, 4.0) - motion)[BOTTOM + 2, 55, 1]))
    assert shifts[0] > shifts[1] > shifts[2] and shifts[2] == shifts[3], shifts  # grows, then whole


def test_a_smaller_opening_squeezes_the_mask_up_and_raises_the_lower_lip_with_it() -> None:
    """``opening=0.5``: the mask keeps its top and ends half way down (its colour squeezed with it), and the
    pixel just below its new bottom shows where the lips met, as the full opening's did."""
    motion = _opening()
    motion[TOP : BOTTOM + 1, 40:71, 3] = np.linspace(1.0, 0.0, BOTTOM + 1 - TOP)[:, None]  # teeth at the top
    out = hold_lower_lip(motion, lip_px=4.0, opening=0.5)
    col = 55
    rows = np.nonzero(out[:, col, 2] >= 0.5)[0]
    height = BOTTOM + 1 - TOP
    assert rows.min() == TOP and abs((rows.max() + 1 - TOP) - height / 2) <= 1, rows
    assert out[TOP, col, 3] >= 0.9 and out[TOP + height // 2 - 1, col, 3] <= 0.2  # the colour squeezed too
    y_top, y_bottom = TOP - 0.5, TOP - 0.5 + 0.5 * (height)
    met = y_top + np.interp(y_top, np.arange(109), motion[:, col, 1]) + SEAM_SKIP_FACE_PX
    source = y_bottom + np.interp(y_bottom, np.arange(109), out[:, col, 1])
    assert abs(source - met) < 0.1, (source, met)
    assert np.array_equal(out[:TOP, :, :], motion[:TOP, :, :])  # nothing above the mouth
    # Under the new bottom is what was under the old one, moved up by what the squeeze took off (5.5 rows).
    ramp = motion.copy()
    ramp[BOTTOM + 1 :, 40:71, 3] = np.linspace(0.2, 0.8, 109 - BOTTOM - 1)[:, None]
    squeezed = hold_lower_lip(ramp, lip_px=4.0, opening=0.5)
    rows = np.arange(68, 95)
    want = np.interp(rows + 0.5 * height, np.arange(109), ramp[:, col, 3])
    assert np.abs(squeezed[rows, col, 3] - want).max() < 1e-4


def test_a_mask_over_the_whole_face_is_no_mouth() -> None:
    """Untrained weights draw a mask near one half everywhere: its "opening" would span the face, and tiny
    differences between engines moved whole rows of the photo (seen in the live window's test with random
    weights). A column whose mask reaches the crop's edge, or opens taller than a mouth can, is left alone."""
    rng = np.random.default_rng(0)
    motion = np.zeros((109, 109, 6), np.float32)
    motion[..., 2] = 0.5 + 0.02 * rng.standard_normal((109, 109)).astype(np.float32)
    motion[..., 1] = -3.0
    assert np.array_equal(hold_lower_lip(motion, lip_px=4.0, opening=0.6), motion)
    tall = _opening()
    tall[20:90, 40:71, 2] = 1.0  # 70 rows open: no mouth
    assert np.array_equal(hold_lower_lip(tall, lip_px=4.0), tall)
