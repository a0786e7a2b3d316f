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

MOVE_EPS = 0.05  # px: a triangle whose corners all move less than this is left as it is


def anchor_ring(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fixed anchor points: an ellipse well outside the face, and the image corners and edge midpoints."""
    c = points.mean(axis=0)
    extent = points.max(axis=0) - points.min(axis=0)
    a = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    ring = np.stack([c[0] + 0.95 * extent[0] * np.cos(a), c[1] + 0.95 * extent[1] * np.sin(a)], axis=1)
    w, h = size
    border = np.array([[0, 0], [w / 2, 0], [w - 1, 0], [w - 1, h / 2], [w - 1, h - 1], [w / 2, h - 1], [0, h - 1], [0, h / 2]])
    inside = (ring[:, 0] > 1) & (ring[:, 0] < w - 2) & (ring[:, 1] > 1) & (ring[:, 1] < h - 2)
    return np.concatenate([ring[inside], border])


def triangulate(points: np.ndarray, size: tuple[int, int], margin: int = 1) -> np.ndarray:
    """Triangles as ``(k, 3)`` indices into ``points`` (which may lie up to ``margin`` px outside the image)."""
    sub = cv2.Subdiv2D((-margin, -margin, size[0] + 2 * margin, size[1] + 2 * margin))
    for p in points:
        sub.insert((float(p[0]), float(p[1])))
    tris = []
    for t in np.asarray(sub.getTriangleList()).reshape(-1, 3, 2):
        idx = [int(np.argmin(np.sum((points - v) ** 2, axis=1))) for v in t]
        if len(set(idx)) == 3:
            tris.append(idx)
    return np.array(tris, dtype=np.int64)


def warp_triangles(src: np.ndarray, out: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, tris: np.ndarray) -> None:
    """Piecewise-affine warp of ``src`` into ``out`` for the given triangles (src_pts -> dst_pts)."""
    h, w = out.shape[:2]
    for tri in tris:
        s, d = src_pts[tri].astype(np.float32), dst_pts[tri].astype(np.float32)
        x0, y0 = np.floor(d.min(axis=0)).astype(int)
        x1, y1 = np.ceil(d.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        m = cv2.getAffineTransform((d - [x0, y0]).astype(np.float32), s)  # destination pixel -> source pixel
        patch = cv2.warpAffine(src, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((d - [x0, y0]) * 16).astype(np.int32).reshape(-1, 1, 2), 255, cv2.LINE_AA, 4)
        a = (mask.astype(np.float32) / 255.0)[..., None]
        roi = out[y0:y1, x0:x1]
        roi[:] = (a * patch + (1 - a) * roi).astype(out.dtype)


class MouthAnimator:
    """An image with known 68 landmarks, its lips and jaw moved to given visemes (no head motion).

    ``render(visemes)`` returns the warped image and its moved landmarks; the photo-mode videos
    (:class:`PhotoAnimator`) and the registered talking-photo corpus (:mod:`speech2vid.synth.registered`)
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
        lips = (self.canvas_shape[57, 1] - self.canvas_shape[66, 1]) + (self.canvas_shape[62, 1] - self.canvas_shape[51, 1])
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
        if gap > 0.8:
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
