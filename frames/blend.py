"""Paste a generated face back onto a video frame (re-dubbing; pure image math).

The generated face is the OUTPUT_SIZE x OUTPUT_SIZE (109) central crop of the aligned 112x112 face, so
"crop" coordinates below are aligned coordinates minus CROP_OFFSET. The region to replace is drawn in
crop coordinates from the frame's own landmarks (so it follows the speaker's jaw), warped into the frame
with the inverse of the registration, and blended there: Poisson (the paper's ``seamlessClone``, solved by
:mod:`speech2vid.frames.poisson`) where it can run, a feathered alpha blend where it cannot (the region
touches the frame border). Pixels outside the region are never written.

Affine transforms are (2, 3) float64 matrices as in :mod:`speech2vid.faces.align`.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from speech2vid.faces.align import compose, invert_transform, transform_points
from speech2vid.faces.ibug68 import JAW, LEFT_BROW, LEFT_EYE, NOSE_BASE, RIGHT_BROW, RIGHT_EYE
from speech2vid.frames.poisson import poisson_blend
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE

Region = Literal["lower", "full"]
Method = Literal["poisson", "alpha"]

# The Poisson solve runs on the mask's bounding box and needs one pixel of known frame around it.
_POISSON_BORDER_PX = 1
_ROI_MARGIN_PX = 2  # frame pixels around the warped crop, for the interpolator


def crop_to_frame(transform: np.ndarray) -> np.ndarray:
    """(2, 3) affine from generated-face (109x109 crop) pixels to frame pixels.

    Args:
        transform: (2, 3) frame -> aligned 112x112 registration (``AlignedFace.transform``).
    """
    shift = np.array([[1.0, 0.0, CROP_OFFSET], [0.0, 1.0, CROP_OFFSET]])  # crop pixel -> aligned pixel
    return compose(invert_transform(transform), shift)


def region_mask(
    landmarks: np.ndarray,
    transform: np.ndarray,
    region: Region = "lower",
    below_eyes: float = 5.0,
    size: int = OUTPUT_SIZE,
) -> np.ndarray:
    """The region to replace, drawn in generated-face (crop) coordinates.

    Args:
        landmarks: (68, 2) frame landmarks of the face.
        transform: (2, 3) frame -> aligned registration of those landmarks.
        region: ``lower``: from ``below_eyes`` px under the lowest eye point down, inside the jaw line
            (jaw 0..16 and the nose base); ``full``: the jaw line and the brows (whole face).
        below_eyes: gap in aligned px between the lowest eye landmark and the region's top edge.
        size: side of the crop (109).

    Returns:
        (size, size) uint8 mask, 255 inside the region.
    """
    pts = transform_points(transform, landmarks) - CROP_OFFSET
    jaw = pts[list(JAW)]
    if region == "lower":
        # "Just below the eyes" in the face's own frame: the aligned crop is upright, so a horizontal line.
        top = float(pts[list(RIGHT_EYE + LEFT_EYE), 1].max()) + below_eyes
        lower = np.concatenate([jaw, pts[list(NOSE_BASE)]])
        lower[:, 1] = np.maximum(lower[:, 1], top)
        corners = np.array([[jaw[:, 0].min(), top], [jaw[:, 0].max(), top]])
        outline = np.concatenate([lower, corners])
    elif region == "full":
        outline = np.concatenate([jaw, pts[list(RIGHT_BROW + LEFT_BROW)]])
    else:
        raise ValueError(f"region must be 'lower' or 'full', got {region!r}")
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(outline).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def feather_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """(H, W) uint8 mask -> (H, W) float32 alpha: 0 outside, ramping to 1 over ``feather`` px inside."""
    inside = (mask > 0).astype(np.uint8)
    if feather <= 0:
        return inside.astype(np.float32)
    # Pad so that the crop's own edge counts as "outside" too: no hard step where the mask is clipped.
    dist = cv2.distanceTransform(cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0), cv2.DIST_L2, 5)
    return np.asarray(np.clip(dist[1:-1, 1:-1] / feather, 0.0, 1.0), dtype=np.float32)


def _padded(img: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """``img[y:y+h, x:x+w]`` with edge pixels repeated where the window leaves the image."""
    top, left = max(0, -y), max(0, -x)
    bottom, right = max(0, y + h - img.shape[0]), max(0, x + w - img.shape[1])
    padded = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return padded[y + top : y + top + h, x + left : x + left + w]


def paste_face(
    frame: np.ndarray,
    face: np.ndarray,
    mask: np.ndarray,
    to_frame: np.ndarray,
    *,
    method: Method = "poisson",
    feather: float = 4.0,
) -> tuple[np.ndarray, str]:
    """Blend the masked part of a generated face into a frame.

    Args:
        frame: (H, W, 3) uint8 RGB video frame (not modified).
        face: (109, 109, 3) uint8 RGB generated face.
        mask: (109, 109) uint8 region in crop coordinates (:func:`region_mask`).
        to_frame: (2, 3) crop -> frame affine (:func:`crop_to_frame`).
        method: ``poisson`` (falls back to alpha where it cannot run) or ``alpha``.
        feather: alpha ramp width in crop px.

    Returns:
        ``(blended (H, W, 3) uint8, method used)``; the method is ``poisson``, ``alpha`` or ``outside``
        (the region lies off the frame: the frame is returned unchanged).
    """
    h, w = frame.shape[:2]
    n = face.shape[0]
    corners = np.array([[0, 0], [n - 1, 0], [0, n - 1], [n - 1, n - 1]], dtype=np.float64)
    box = transform_points(to_frame, corners)
    x0, y0 = np.maximum(np.floor(box.min(axis=0)).astype(int) - _ROI_MARGIN_PX, 0)
    x1, y1 = np.minimum(np.ceil(box.max(axis=0)).astype(int) + _ROI_MARGIN_PX + 1, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame, "outside"
    # Warp into the region of interest only: a 1080p frame costs as little as a 240p one.
    m = to_frame.copy()
    m[:, 2] -= (x0, y0)
    size = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpAffine(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    region = cv2.warpAffine(mask, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if not region.any():
        return frame, "outside"
    if method == "poisson":
        rx, ry, rw, rh = cv2.boundingRect(region)
        bx, by = int(x0) + rx, int(y0) + ry
        b = _POISSON_BORDER_PX
        if bx >= b and by >= b and bx + rw <= w - b and by + rh <= h - b:
            # Solve on the mask's bounding box plus a one-pixel rim of frame (the boundary condition).
            sy, sx = slice(by - b, by + rh + b), slice(bx - b, bx + rw + b)
            rim = np.zeros((rh + 2 * b, rw + 2 * b), np.uint8)
            rim[b:-b, b:-b] = region[ry : ry + rh, rx : rx + rw]
            src = _padded(warped, rx - b, ry - b, rw + 2 * b, rh + 2 * b)
            blended = poisson_blend(src, frame[sy, sx], rim)
            out = frame.copy()
            out[sy, sx] = np.where(rim[..., None] > 0, np.clip(blended + 0.5, 0, 255), frame[sy, sx]).astype(np.uint8)
            return out, "poisson"
    elif method != "alpha":
        raise ValueError(f"method must be 'poisson' or 'alpha', got {method!r}")
    alpha = cv2.warpAffine(
        feather_alpha(mask, feather), m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    alpha *= region > 0  # the interpolator may leak a sliver past the region's edge
    out = frame.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    out[y0:y1, x0:x1] = np.clip(a * warped + (1.0 - a) * roi + 0.5, 0, 255).astype(np.uint8)
    return out, "alpha"
