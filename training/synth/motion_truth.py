"""The ground-truth motion field between two mouth states of one photo (the warp head's training target).

A registered talking-photo track knows every frame's 68 landmarks (``synth --registered``): each frame is
the photo warped piecewise-affinely from its own landmarks. So the frame ``target`` is, triangle by
triangle, an affine image of the frame ``reference``: for every target pixel the reference pixel it came
from is known exactly. That map, in the sampling-grid convention of ``grid_sample(align_corners=True)``
over the 109x109 crop, is what the warp head predicts (``model/decoder.py``); learning it directly gives
the head a signal far stronger than the photometric error, which only says how a pixel's colour
changes within a pixel or two of where it is.

Where the target's mouth is open its interior (teeth, cavity) is drawn, not moved: ``cavity`` marks it,
the mask head's target.
"""

from __future__ import annotations

import cv2
import numpy as np

from speech2vid.frames.mouth_warp import anchor_ring, triangulate, warp_triangles

ALIGNED = 112
CROP = 109
OFFSET = (ALIGNED - CROP) // 2
INNER_LIPS = slice(60, 68)
OPEN_PX = 0.4  # aligned px: a thinner gap draws no cavity (MouthAnimator's CLOSED_GAP_PX at twice the size)


def _coordinate_image(size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.ascontiguousarray(np.stack([xs, ys], axis=-1))


_COORDS = _coordinate_image(ALIGNED)


def motion_truth(reference: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth for a target frame rendered from a reference frame of the same photo.

    Args:
        reference, target: (68, 2) landmarks in aligned 112x112 pixels.

    Returns:
        ``(flow, cavity)``: float32 (2, 109, 109), the target pixel's source position in the reference
        crop minus its own, in normalised coordinates (2 / 108 per pixel); float32 (1, 109, 109), 1
        inside the target's open mouth.
    """
    ref = np.asarray(reference, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.float64)
    anchors = anchor_ring(ref, (ALIGNED, ALIGNED))
    src_all = np.concatenate([ref, anchors])
    dst_all = np.concatenate([tgt, anchors])
    tris = triangulate(src_all, (ALIGNED, ALIGNED), margin=ALIGNED)  # an open jaw may reach below the crop
    moved = np.linalg.norm(dst_all - src_all, axis=1) > 0.01
    tris = tris[moved[tris].any(axis=1)]
    source = _COORDS.copy()
    warp_triangles(_COORDS, source, src_all, dst_all, tris)
    crop = source[OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP] - OFFSET  # source position in crop px
    own = _COORDS[:CROP, :CROP]
    flow = ((crop - own) * (2.0 / (CROP - 1))).transpose(2, 0, 1)
    cavity = np.zeros((CROP, CROP), np.uint8)
    gap = float(np.mean(tgt[[67, 66, 65], 1] - tgt[[61, 62, 63], 1]))
    if gap > OPEN_PX:
        poly = np.round((tgt[INNER_LIPS] - OFFSET) * 16).astype(np.int32)
        cv2.fillPoly(cavity, [poly], 255, cv2.LINE_AA, 4)
    return np.ascontiguousarray(flow, dtype=np.float32), (cavity.astype(np.float32) / 255.0)[None]
