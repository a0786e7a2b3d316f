"""A rendered face as the runtime passes it on: one float32 array (..., 109, 109, C) in the frame graph's
order. ``C`` is 3 (RGB in [0, 1]) for the pixel head; the warp head appends its motion (``io_spec.MOTION``:
flow x, y in face pixels, mask, colour RGB), so that a composite can move the photo's own full-resolution
pixels instead of enlarging the 109 px picture (:mod:`speech2vid.frames.photo_canvas`)."""

from __future__ import annotations

import numpy as np

RGB_CHANNELS = 3


def face_rgb(face: np.ndarray) -> np.ndarray:
    """The picture of a rendered face (a view, no copy)."""
    return face[..., :RGB_CHANNELS]


def face_motion(face: np.ndarray) -> np.ndarray | None:
    """The motion of a rendered face (a view; flow x, y, mask, colour RGB), or None when it has none."""
    return face[..., RGB_CHANNELS:] if face.shape[-1] > RGB_CHANNELS else None
