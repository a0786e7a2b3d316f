"""68-point facial landmarks (iBUG 300-W scheme) with dlib's shape predictor."""

from __future__ import annotations

from typing import Any

import numpy as np

from speech2vid.faces.detect import Box
from speech2vid.faces.dlib_models import import_dlib, shape_predictor_68
from speech2vid.faces.ibug68 import N_LANDMARKS
from speech2vid.faces.images import check_rgb


def landmarks_68(rgb: np.ndarray, box: Box, predictor: Any = None) -> np.ndarray:
    """Locate the 68 landmarks of the face inside ``box``.

    Args:
        rgb: RGB uint8 image, shape (H, W, 3).
        box: the face's box in ``rgb`` coordinates (from :func:`detect_faces`).
        predictor: a dlib shape predictor; None: the runtime's (``dlib_models.shape_predictor_68``).

    Returns:
        float32 array, shape (68, 2), of (x, y) pixel coordinates in ``rgb``. dlib rounds them to
        whole pixels; point order is ``speech2vid.faces.ibug68``.
    """
    check_rgb(rgb)
    dlib = import_dlib()
    rect = dlib.rectangle(round(box.left), round(box.top), round(box.right), round(box.bottom))
    shape = (predictor or shape_predictor_68())(np.ascontiguousarray(rgb), rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    if points.shape != (N_LANDMARKS, 2):
        raise RuntimeError(f"dlib returned {points.shape[0]} landmarks, expected {N_LANDMARKS}")
    return points
