"""Track one face through a video: per-frame box and 68 landmarks, smoothed over time.

Between detections the landmarks follow the face on their own, as MediaPipe's face mesh does: the region
for a frame's mesh is placed from the previous frame's landmarks (kept in the relation to them that the
last detection's box had, turned by their eye line). The detector runs every ``redub.detect_every``
frames, and at once when the mesh says it holds no face or the face's pixels change more than a moving
head changes them (a cut, a blank frame, an occlusion); then the face nearest the last one is taken.
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
from speech2vid.faces import Box, detect_faces, registration_transform
from speech2vid.faces.landmarks import BoxRelation, face_landmarks

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
            found = face_landmarks(rgb, box)
            raw = found.points
            moved = follow.moved(raw, _thumbnail(rgb, follow.box_for(raw)))
            # The face, framed by its new landmarks, must look as it did: else a cut or a lost face.
            if found.is_face and float(np.abs(moved.thumb - follow.thumb).mean()) <= self.cfg.track_change:
                self._last, self._follow = box, moved
                points = self.filter(raw)
                return TrackedFace(box, points, registration_transform(points))
        return self._detect(rgb)

    def _detect(self, rgb: np.ndarray) -> TrackedFace | None:
        """Run the detector; restart the filter on a cut."""
        self.detections += 1
        last = self._last
        boxes = detect_faces(rgb, thorough=False)  # video frames: the whole frame, no tiles (8x cheaper)
        if last is None:
            index = self.face_index or 0
            box = boxes[index] if index < len(boxes) else None
        else:  # take the face nearest to where it was
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
        raw = face_landmarks(rgb, box).points
        self._follow = _Follow.from_detection(box, raw, rgb)
        points = self.filter(raw)
        return TrackedFace(box, points, registration_transform(points))

    @staticmethod
    def _distance(a: Box, b: Box) -> float:
        """Distance between the two boxes' centres, px."""
        (ax, ay), (bx, by) = a.center, b.center
        return math.hypot(ax - bx, ay - by)


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
    relation: BoxRelation
    frames: int = 0  # frames followed since the detection

    @classmethod
    def from_detection(cls, box: Box, points: np.ndarray, rgb: np.ndarray) -> _Follow:
        return cls(points, _thumbnail(rgb, box), BoxRelation.of(box, points))

    def box_for(self, points: np.ndarray) -> Box:
        return self.relation.box_for(points)

    def next_box(self) -> Box:
        """The box for the next frame: around the last frame's landmarks."""
        return self.box_for(self.points)

    def moved(self, points: np.ndarray, thumb: np.ndarray) -> _Follow:
        return _Follow(points, thumb, self.relation, self.frames + 1)
