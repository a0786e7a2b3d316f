"""Move a face's lips and jaw in an image: a piecewise-affine warp driven by the mouth model.

The image's 68 landmarks are mapped into the mouth model's face canvas by the registration similarity
(eyes and nose), given the mouth of the wanted visemes (:func:`speech2vid.faces.mouth_model.mouth_shape`)
and mapped back. A Delaunay triangulation of the landmarks plus a fixed ring of points around the face
(and the image border) carries the warp; only triangles with a moving corner are re-warped. An open
mouth gets a dark cavity and upper teeth inside the inner lip line.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from speech2vid.faces.align import invert_transform, similarity_fit, transform_points
from speech2vid.faces.ibug68 import REGISTRATION_INDICES
from speech2vid.faces.mouth_model import BASE_SHAPE, blink_shape, mouth_shape
from speech2vid.frames.detail import remap_layers, split_detail

MOVE_EPS = 0.05  # px: a triangle whose corners all move less than this is left as it is


def anchor_ring(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fixed anchor points: an ellipse well outside the face, and the image corners and edge midpoints."""
    c = points.mean(axis=0)
    extent = points.max(axis=0) - points.min(axis=0)
    a = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    ring = np.stack([c[0] + 0.95 * extent[0] * np.cos(a), c[1] + 0.95 * extent[1] * np.sin(a)], axis=1)
    w, h = size
    border = np.array(
        [[0, 0], [w / 2, 0], [w - 1, 0], [w - 1, h / 2], [w - 1, h - 1], [w / 2, h - 1], [0, h - 1], [0, h / 2]]
    )
    inside = (ring[:, 0] > 1) & (ring[:, 0] < w - 2) & (ring[:, 1] > 1) & (ring[:, 1] < h - 2)
    return np.concatenate([ring[inside], border])


def triangulate(points: np.ndarray, size: tuple[int, int], margin: int = 1) -> np.ndarray:
    """Triangles as ``(k, 3)`` indices into ``points``, which may lie outside the ``size`` image (a turned
    face's far cheek past a registered crop's edge)."""
    lo = np.floor(np.minimum(points.min(axis=0), 0)) - margin
    hi = np.ceil(np.maximum(points.max(axis=0), (size[0] - 1, size[1] - 1))) + margin
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for p in points:
        sub.insert((float(p[0]), float(p[1])))
    tris = []
    for t in np.asarray(sub.getTriangleList()).reshape(-1, 3, 2):
        idx = [int(np.argmin(np.sum((points - v) ** 2, axis=1))) for v in t]
        if len(set(idx)) == 3:
            tris.append(idx)
    return np.array(tris, dtype=np.int64)


MIN_AREA = 1e-3  # px²: a destination triangle this thin (closed lips) covers no pixel of its own
MAX_EXTRAPOLATION_PX = 1.0  # px, beyond twice its own distance outside its triangle, that a pixel may sample


def warp_triangles(
    src: np.ndarray, out: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, tris: np.ndarray
) -> None:
    """Piecewise-affine warp of ``src`` into ``out`` for the given triangles (src_pts -> dst_pts).

    One dense map and one ``cv2.remap``: every destination pixel takes the affine map of the triangle
    it lies in. Why not a warp and an anti-aliased paste per triangle: along shared edges the partial
    masks let the pixel underneath show through, and a triangle that closes to a line (the inner lips
    of a closed mouth) has no valid affine map, so its line was filled with pixels sampled from far
    away: a bright or background-coloured seam between closed lips, which reads as an open mouth.
    Triangles drawn later win where two overlap (a folded mesh); pixels in no triangle keep ``out``.
    """
    h, w = out.shape[:2]
    d = np.asarray(dst_pts, dtype=np.float64)[tris]  # (k, 3, 2)
    s = np.asarray(src_pts, dtype=np.float64)[tris]
    e1, e2 = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    keep = area > MIN_AREA
    d, s = d[keep], s[keep]
    if len(d) == 0:
        return
    x0, y0 = np.maximum(np.floor(d.reshape(-1, 2).min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(d.reshape(-1, 2).max(axis=0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    label = np.full((y1 - y0, x1 - x0), -1, np.int32)
    for i, tri in enumerate(d):
        cv2.fillConvexPoly(label, np.round((tri - [x0, y0]) * 16).astype(np.int32), i, cv2.LINE_8, 4)
    ys, xs = np.nonzero(label >= 0)
    if len(xs) == 0:
        return
    # Each pixel's barycentric coordinates in its destination triangle ([dx dy 1] @ inverse of the corners)
    # weight the source corners. The raster takes pixels that straddle an edge; for a thin triangle (lips
    # pressed together, a turned face's mouth corner) the affine map, extrapolated, sends them far outside
    # the source triangle: a line of dark or stray dots. Such a pixel takes the nearest point of the source
    # triangle instead (coordinates clipped to it). A pixel whose source lies about as far outside its
    # triangle as the pixel itself lies outside the destination one keeps the plain map (identity and
    # ordinary edges stay exact).
    ones = np.ones((len(d), 3, 1))
    inverse = np.linalg.inv(np.concatenate([d, ones], axis=2))  # (k, 3, 3)
    lab = label[ys, xs]
    px = np.stack([xs + x0, ys + y0, np.ones_like(xs)], axis=1).astype(np.float64)
    bary = np.einsum("ni,nij->nj", px, inverse[lab])
    src_xy = np.einsum("nj,njc->nc", bary, s[lab])
    inside = np.maximum(bary, 0.0)
    inside /= inside.sum(axis=1, keepdims=True)
    clipped = np.einsum("nj,njc->nc", inside, s[lab])
    outside = np.linalg.norm(px[:, :2] - np.einsum("nj,njc->nc", inside, d[lab]), axis=1)
    far = np.linalg.norm(src_xy - clipped, axis=1) > MAX_EXTRAPOLATION_PX + 2.0 * outside
    src_xy[far] = clipped[far]
    map_x = np.full(label.shape, -1.0, np.float32)
    map_y = np.full(label.shape, -1.0, np.float32)
    map_x[ys, xs], map_y[ys, xs] = src_xy[:, 0], src_xy[:, 1]
    # At the output size this warp moves the photo's own lips and skin, and any interpolating kernel smooths
    # their grain (measured on a rest mouth's lower face: 0.61 of the photo's Laplacian variance bilinear, 0.73
    # Lanczos); the finest detail therefore moves whole pixels (frames.detail).
    if src.dtype == np.uint8:
        warped = remap_layers(*split_detail(src), map_x, map_y, cv2.INTER_LANCZOS4, cv2.BORDER_REFLECT)
    else:
        warped = cv2.remap(src, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    roi = out[y0:y1, x0:x1]
    roi[ys, xs] = warped[ys, xs].astype(out.dtype)


CLOSED_GAP_PX = 0.8  # px: lips closer than this are closed, with a seam between them; wider, a cavity
SEAM_WIDTH = 0.03  # the seam's width, in mouth widths
SEAM_DARKEN = 0.45  # the seam's centre keeps this much less of the lips' brightness


def lip_seam(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``image`` with the shadow line that closed lips show where they meet (the inner upper lip, 60-64).

    Why: moving lips together by a warp leaves them touching without that line, one band of lip colour;
    people and dlib both read such a mouth as half open (dlib puts the inner-lip points in the band).
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    width = float(np.linalg.norm(pts[54] - pts[48]))
    line = pts[[60, 61, 62, 63, 64]]
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.polylines(
        mask, [np.round(line * 16).astype(np.int32)], False, 1.0, max(1, int(round(SEAM_WIDTH * width))), cv2.LINE_AA, 4
    )
    a = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.5 * SEAM_WIDTH * width))[..., None]
    return np.clip(image.astype(np.float32) * (1.0 - SEAM_DARKEN * np.minimum(a, 1.0)) + 0.5, 0, 255).astype(
        image.dtype
    )


class MouthAnimator:
    """An image with known 68 landmarks, its lips and jaw moved to given visemes (no head motion).

    ``render(visemes)`` returns the warped image and its moved landmarks; the photo-mode videos
    (:class:`PhotoAnimator`) and the registered talking-photo corpus (:mod:`speech2vid.training.synth.registered`)
    share it, so both animate a photo the same way.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        self.image = image
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        h, w = image.shape[:2]
        idx = list(REGISTRATION_INDICES)
        self.to_canvas = similarity_fit(self.landmarks[idx], BASE_SHAPE[idx])
        self.from_canvas = invert_transform(self.to_canvas)
        self.canvas_shape = transform_points(self.to_canvas, self.landmarks)
        w0 = float(np.linalg.norm(self.canvas_shape[54] - self.canvas_shape[48]))
        lips = (self.canvas_shape[57, 1] - self.canvas_shape[66, 1]) + (
            self.canvas_shape[62, 1] - self.canvas_shape[51, 1]
        )
        self.lip_thickness = float(np.clip(lips / (0.36 * w0), 0.6, 1.5))
        self.anchors = anchor_ring(self.landmarks, (w, h))
        self.tris = triangulate(np.concatenate([self.landmarks, self.anchors]), (w, h))

    def render(self, visemes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = blink_shape(mouth_shape(self.canvas_shape, visemes, self.lip_thickness), 0.0)
        dst = transform_points(self.from_canvas, target)
        src_all = np.concatenate([self.landmarks, self.anchors])
        dst_all = np.concatenate([dst, self.anchors])
        moved = np.linalg.norm(dst_all - src_all, axis=1) > MOVE_EPS
        tris = self.tris[moved[self.tris].any(axis=1)]
        out = self.image.copy()
        warp_triangles(self.image, out, src_all, dst_all, tris)
        gap = float(np.mean(dst[[67, 66, 65], 1] - dst[[61, 62, 63], 1]))
        if gap <= CLOSED_GAP_PX:
            out = lip_seam(out, dst)
        else:
            inner = dst[60:68]
            layer = out.copy()
            cv2.fillPoly(layer, [np.round(inner * 16).astype(np.int32)], (45, 12, 15), cv2.LINE_AA, 4)
            top_h = min(0.45 * gap, 1.0 + 3.0 * float(visemes[3]))
            upper = np.concatenate([dst[[60, 61, 62, 63, 64]], dst[[64, 63, 62, 61, 60]] + [0, top_h]])
            teeth = layer.copy()
            cv2.fillPoly(teeth, [np.round(upper * 16).astype(np.int32)], (236, 233, 225), cv2.LINE_AA, 4)
            mask = np.zeros(out.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(inner * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
            a = (cv2.GaussianBlur(mask, (0, 0), 0.7).astype(np.float32) / 255.0)[..., None]
            out = (a * teeth + (1 - a) * out).astype(np.uint8)
        return out, dst
