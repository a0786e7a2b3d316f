"""Track one face through a video: per-frame box and 68 landmarks, smoothed over time.

Between detections the landmarks follow the face on their own, as MediaPipe's face mesh does: the box
for a frame is placed from the previous frame's landmarks, kept in the relation to them that the last
detection had. The HOG detector runs every ``redub.detect_every`` frames, and at once when the face's
pixels change more than a moving head changes them (a cut, a blank frame, an occlusion). A detection
searches a window around the last face box, scaled so the face is about TRACK_FACE_PX wide (cheap HOG at
any video resolution), then the whole frame when that fails.
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
THUMB_PX = 16  # side of the grey thumbnail of the face box compared between frames
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
        self._follow: _Follow | None = None  # how to place the next frame's box without a detection
        self.resets = 0  # filter restarts (lost faces and cuts), for the summary
        self.detections = 0  # frames that ran the detector, for the summary

    def track(self, rgb: np.ndarray) -> TrackedFace | None:
        """Find the tracked face in ``rgb`` (H, W, 3) uint8 RGB and return its smoothed landmarks."""
        follow = self._follow
        if follow is not None and follow.frames < self.cfg.detect_every - 1:
            box = follow.next_box()
            raw = landmarks_68(rgb, box)
            moved = follow.moved(raw, _thumbnail(rgb, follow.box_for(raw)))
            # The face, framed by its new landmarks, must look as it did: else a cut or a lost face.
            if float(np.abs(moved.thumb - follow.thumb).mean()) <= self.cfg.track_change:
                self._last, self._follow = box, moved
                points = self.filter(raw)
                return TrackedFace(box, points, registration_transform(points))
        return self._detect(rgb)

    def _detect(self, rgb: np.ndarray) -> TrackedFace | None:
        """Run the detector near the last box, then over the whole frame; restart the filter on a cut."""
        self.detections += 1
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
            self._follow = None
            self.filter.reset()
            return None
        if last is not None and self._distance(box, last) > self.cfg.cut_jump * last.width:
            self.filter.reset()  # a cut (or another face): do not smooth across it
            self.resets += 1
        self._last = box
        raw = landmarks_68(rgb, box)
        self._follow = _Follow.from_detection(box, raw, rgb)
        points = self.filter(raw)
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
            Box(
                (r.left() + 0.5) / fx - 0.5 + x0,
                (r.top() + 0.5) / fy - 0.5 + y0,
                (r.right() + 0.5) / fx - 0.5 + x0,
                (r.bottom() + 0.5) / fy - 0.5 + y0,
            )
            for r in rects
        ]
        return min(boxes, key=lambda b: self._distance(b, last)) if boxes else None


def _points_frame(points: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, width) of the landmarks' bounding box."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return (float(x0 + x1) / 2.0, float(y0 + y1) / 2.0, max(float(x1 - x0), 1.0))


def _thumbnail(rgb: np.ndarray, box: Box) -> np.ndarray:
    """The face box's pixels as a THUMB_PX x THUMB_PX grey float32 image (edge pixels repeated off the frame)."""
    scale = THUMB_PX / max(box.width, box.height, 1.0)
    m = np.array([[scale, 0.0, -box.left * scale], [0.0, scale, -box.top * scale]])
    small = cv2.warpAffine(rgb, m, (THUMB_PX, THUMB_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class _Follow:
    """The last frame's landmarks, and the box's place relative to landmarks at the last detection."""

    points: np.ndarray  # the last frame's raw (unsmoothed) landmarks
    thumb: np.ndarray  # the last frame's face, framed by those landmarks (:func:`_thumbnail`)
    relation: tuple[float, float, float, float]  # box centre offset x, y and size w, h, in landmark widths
    frames: int = 0  # frames followed since the detection

    @classmethod
    def from_detection(cls, box: Box, points: np.ndarray, rgb: np.ndarray) -> _Follow:
        cx, cy, width = _points_frame(points)
        bx, by = box.center
        relation = ((bx - cx) / width, (by - cy) / width, box.width / width, box.height / width)
        return cls(points, _thumbnail(rgb, box), relation)

    def box_for(self, points: np.ndarray) -> Box:
        """The box that the detection's relation puts around ``points``."""
        cx, cy, width = _points_frame(points)
        dx, dy, bw, bh = self.relation
        x, y = cx + dx * width, cy + dy * width
        return Box(x - bw * width / 2.0, y - bh * width / 2.0, x + bw * width / 2.0, y + bh * width / 2.0)

    def next_box(self) -> Box:
        """The box for the next frame: around the last frame's landmarks."""
        return self.box_for(self.points)

    def moved(self, points: np.ndarray, thumb: np.ndarray) -> _Follow:
        return _Follow(points, thumb, self.relation, self.frames + 1)
