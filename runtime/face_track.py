"""Track one face through a video: per-frame box and 68 landmarks, smoothed over time.

Each frame searches only a window around the last face box, scaled so the face is about
TRACK_FACE_PX wide (cheap HOG at any video resolution); the whole frame is searched when that fails.
Landmarks are smoothed with a one-euro filter (Casiez et al., CHI 2012): steady when the head is still,
little lag when it moves. The filter restarts after a lost face or a jump that looks like a shot cut,
so it never drags landmarks across a cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from speech2vid.config import RedubConfig
from speech2vid.faces import Box, detect_faces, landmarks_68, registration_transform
from speech2vid.faces.dlib_models import frontal_face_detector

TRACK_FACE_PX = 100  # face width the search window is scaled to: above HOG's ~80 px minimum, no upsampling
D_CUTOFF_HZ = 1.0  # one-euro cutoff for the speed estimate (the authors' default)


def _smoothing_factor(cutoff_hz: np.ndarray | float, rate: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff_hz`` sampled at ``rate``."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau * rate)


class OneEuroFilter:
    """One-euro low-pass filter over an array of coordinates, each filtered independently."""

    def __init__(self, rate: float, min_cutoff: float, beta: float, d_cutoff: float = D_CUTOFF_HZ):
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = rate, min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Feed one sample (any shape, float); returns the filtered sample, same shape, float64."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._dx is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self.rate
        self._dx = self._dx + _smoothing_factor(self.d_cutoff, self.rate) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _smoothing_factor(cutoff, self.rate) * (x - self._x)
        return self._x.copy()


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One frame's face.

    Attributes:
        box: detected face box in the frame.
        landmarks: (68, 2) float64 smoothed landmarks in frame pixels.
        transform: (2, 3) float64 frame -> aligned 112x112 registration of the smoothed landmarks.
    """

    box: Box
    landmarks: np.ndarray
    transform: np.ndarray


class FaceTracker:
    """``track(frame)`` -> :class:`TrackedFace` or None (no face: the frame passes through)."""

    def __init__(self, rate: float, cfg: RedubConfig, face_index: int | None = None):
        self.cfg = cfg
        self.face_index = face_index
        self.filter = OneEuroFilter(rate, cfg.smooth_min_cutoff, cfg.smooth_beta)
        self._last: Box | None = None
        self.resets = 0  # filter restarts (lost faces and cuts), for the summary

    def track(self, rgb: np.ndarray) -> TrackedFace | None:
        """Find the tracked face in ``rgb`` (H, W, 3) uint8 RGB and return its smoothed landmarks."""
        last = self._last
        box = self._search_near(rgb, last) if last is not None else None
        if box is None:
            boxes = detect_faces(rgb)
            if last is None:
                index = self.face_index or 0
                box = boxes[index] if index < len(boxes) else None
            else:  # lost it near its last place: take the face nearest to where it was
                box = min(boxes, key=lambda b: self._distance(b, last)) if boxes else None
        if box is None:
            if self._last is not None:
                self.resets += 1
            self._last = None
            self.filter.reset()
            return None
        if last is not None and self._distance(box, last) > self.cfg.cut_jump * last.width:
            self.filter.reset()  # a cut (or another face): do not smooth across it
            self.resets += 1
        self._last = box
        points = self.filter(landmarks_68(rgb, box))
        return TrackedFace(box, points, registration_transform(points))

    @staticmethod
    def _distance(a: Box, b: Box) -> float:
        """Distance between the two boxes' centres, px."""
        (ax, ay), (bx, by) = a.center, b.center
        return math.hypot(ax - bx, ay - by)

    def _search_near(self, rgb: np.ndarray, last: Box) -> Box | None:
        """The face nearest ``last`` within a window around it, or None."""
        h, w = rgb.shape[:2]
        pad = self.cfg.track_margin * max(last.width, last.height)
        x0, y0 = max(0, int(last.left - pad)), max(0, int(last.top - pad))
        x1, y1 = min(w, int(math.ceil(last.right + pad)) + 1), min(h, int(math.ceil(last.bottom + pad)) + 1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = TRACK_FACE_PX / max(last.width, 1.0)
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        window = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
        rects = frontal_face_detector()(np.ascontiguousarray(window), 0)
        boxes = [
            Box((r.left() + 0.5) / fx - 0.5 + x0, (r.top() + 0.5) / fy - 0.5 + y0,
                (r.right() + 0.5) / fx - 0.5 + x0, (r.bottom() + 0.5) / fy - 0.5 + y0)
            for r in rects
        ]  # fmt: skip
        return min(boxes, key=lambda b: self._distance(b, last)) if boxes else None
