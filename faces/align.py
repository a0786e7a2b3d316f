"""Similarity registration of a face onto the canonical template (pure image math).

Affine transforms are (2, 3) float64 matrices ``M`` mapping column points: ``[x', y'] = M @ [x, y, 1]``,
the convention of ``cv2.warpAffine``. Coordinates are 0-based pixel centres.
"""

from __future__ import annotations

import cv2
import numpy as np

from speech2vid.faces.ibug68 import N_LANDMARKS, REGISTRATION_INDICES
from speech2vid.faces.images import check_rgb
from speech2vid.faces.template import ALIGNED_SIZE, TEMPLATE_ALIGNED

# warpAffine has no area filter: a face shrunk by more than this factor is first reduced with
# cv2.resize(INTER_AREA) so that bilinear sampling does not alias (1080p frames, phone photos).
PRESHRINK_BELOW_SCALE = 0.5
_ROI_MARGIN_PX = 2  # output pixels of context around the warped region, for the interpolator


def similarity_fit(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares similarity (scale, rotation, translation; never a reflection) taking src to dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns": minimises sum ||s R src_i + t - dst_i||^2 with R a proper rotation (det R = +1).

    Args:
        src_pts: (N, 2) points, N >= 2, not all equal.
        dst_pts: (N, 2) corresponding points.

    Returns:
        (2, 3) float64 matrix M with ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    src = np.asarray(src_pts, dtype=np.float64)
    dst = np.asarray(dst_pts, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"expected two (N, 2) point arrays with N >= 2, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("similarity_fit got non-finite points")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 0.0:
        raise ValueError("similarity_fit needs source points that are not all the same point")
    cov = dst_c.T @ src_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    # Flip the weakest axis if the best orthogonal map would be a reflection: a mirrored face is
    # never the right registration.
    signs = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = float((sig * signs).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine ``m`` to (N, 2) points; returns (N, 2) float64."""
    pts = np.asarray(points, dtype=np.float64)
    return np.asarray(pts @ m[:, :2].T + m[:, 2], dtype=np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine that applies ``inner`` first, then ``outer``."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def invert_transform(m: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine, e.g. aligned 112x112 coordinates -> source frame (re-dubbing)."""
    linear = np.asarray(m, dtype=np.float64)[:, :2]
    if abs(np.linalg.det(linear)) < 1e-12:
        raise ValueError(f"transform is singular, cannot invert: {m.tolist()}")
    inv = np.linalg.inv(linear)
    return np.hstack([inv, (-inv @ np.asarray(m, dtype=np.float64)[:, 2])[:, None]])


def registration_transform(landmarks68: np.ndarray) -> np.ndarray:
    """Similarity transform from image coordinates to the aligned ALIGNED_SIZE x ALIGNED_SIZE crop.

    Args:
        landmarks68: (68, 2) (x, y) landmarks in the image; only the 21 nose and eye points
            (ibug68.REGISTRATION_INDICES) are used, so an open mouth does not move the crop.

    Returns:
        (2, 3) float64 matrix for :func:`warp_aligned`.
    """
    pts = np.asarray(landmarks68)
    if pts.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected ({N_LANDMARKS}, 2) landmarks, got shape {pts.shape}")
    idx = list(REGISTRATION_INDICES)
    return similarity_fit(pts[idx], TEMPLATE_ALIGNED[idx])


def warp_aligned(rgb: np.ndarray, m: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp the face into the aligned crop.

    Args:
        rgb: RGB uint8 image, shape (H, W, 3).
        m: (2, 3) image -> aligned transform (from :func:`registration_transform`).
        size: side of the square output.

    Returns:
        RGB uint8 array, shape (size, size, 3). Pixels outside the image repeat its border, so a face
        near the edge gives smeared edges rather than black wedges the network never saw in training.
    """
    check_rgb(rgb)
    m = np.asarray(m, dtype=np.float64)
    image, m = _preshrink(rgb, m, size)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _preshrink(rgb: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-resample the part of ``rgb`` that ``m`` maps into the output when ``m`` shrinks a lot.

    Returns the (possibly smaller) image and the transform from it to the output, equal to ``m``
    composed with the crop and resize.
    """
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale >= PRESHRINK_BELOW_SCALE:
        return rgb, m
    # The source region that lands in the output, with a few output pixels of margin.
    lo, hi = -_ROI_MARGIN_PX, size - 1 + _ROI_MARGIN_PX
    corners = np.array([[lo, lo], [hi, lo], [lo, hi], [hi, hi]], dtype=np.float64)
    src = transform_points(invert_transform(m), corners)
    height, width = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(src.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(src.max(axis=0)).astype(int) + 1, 1, [width, height])
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face lies off the image: nothing to gain
        return rgb, m
    roi = rgb[y0:y1, x0:x1]
    new_size = (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale)))
    small = cv2.resize(roi, new_size, interpolation=cv2.INTER_AREA)
    fx, fy = new_size[0] / roi.shape[1], new_size[1] / roi.shape[0]
    # small pixel q -> source pixel p (pixel-centre convention): p = (q + 0.5) / f - 0.5 + origin
    small_to_src = np.array([[1.0 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1.0 / fy, 0.5 / fy - 0.5 + y0]])
    return small, compose(m, small_to_src)
