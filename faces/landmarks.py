"""68-point facial landmarks (iBUG 300-W scheme) from MediaPipe's face mesh.

FaceMesh places 468 points on the face inside a region cut out around a face box (MediaPipe's own graph:
1.5x the box, square, turned upright by the box's roll); :mod:`speech2vid.faces.mesh_map` carries them over
to the 68 points that registration and the mouth model use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech2vid.assets import face_mesh_graph
from speech2vid.faces.detect import MIN_FACE_SCORE, Box, eye_roll, mesh_region
from speech2vid.faces.ibug68 import LEFT_EYE, RIGHT_EYE
from speech2vid.faces.images import check_rgb
from speech2vid.faces.mediapipe import face_mesh
from speech2vid.faces.mesh_map import to_68


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """One face's landmarks: ``points`` (68, 2) float32 in image pixels, and FaceMesh's face score in [0, 1]."""

    points: np.ndarray
    score: float

    @property
    def is_face(self) -> bool:
        return self.score >= MIN_FACE_SCORE


def face_landmarks(rgb: np.ndarray, box: Box) -> FaceLandmarks:
    """The 68 landmarks of the face in ``box``, with FaceMesh's confidence that a face is there."""
    check_rgb(rgb)
    mesh, score = face_mesh(rgb, mesh_region(box), face_mesh_graph())
    return FaceLandmarks(to_68(mesh).astype(np.float32), score)


def landmarks_68(rgb: np.ndarray, box: Box) -> np.ndarray:
    """Locate the 68 landmarks of the face inside ``box``.

    Args:
        rgb: RGB uint8 image, shape (H, W, 3).
        box: the face's box in ``rgb`` coordinates (from :func:`detect_faces`, or one that frames the face
            as tightly, e.g. from the previous video frame's landmarks).

    Returns:
        float32 array, shape (68, 2), of (x, y) pixel coordinates in ``rgb``; point order is
        ``speech2vid.faces.ibug68``.
    """
    return face_landmarks(rgb, box).points


def _points_frame(points: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, width) of the landmarks' bounding box."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return (float(x0 + x1) / 2.0, float(y0 + y1) / 2.0, max(float(x1 - x0), 1.0))


@dataclass(frozen=True)
class BoxRelation:
    """Where a detector's box sat around the 68 landmarks it framed (centre offset and size, in widths of the
    landmarks' bounding box): the next video frame's face is framed from this frame's landmarks the same way,
    turned by their eye line, so the detector need not run on every frame (MediaPipe's tracking)."""

    dx: float
    dy: float
    width: float
    height: float

    @classmethod
    def of(cls, box: Box, points: np.ndarray) -> BoxRelation:
        cx, cy, size = _points_frame(points)
        bx, by = box.center
        return cls((bx - cx) / size, (by - cy) / size, box.width / size, box.height / size)

    def box_for(self, points: np.ndarray) -> Box:
        """The box this relation puts around ``points`` (68, 2)."""
        cx, cy, size = _points_frame(points)
        x, y = cx + self.dx * size, cy + self.dy * size
        w, h = self.width * size / 2.0, self.height * size / 2.0
        roll = eye_roll(points[list(RIGHT_EYE)].mean(axis=0), points[list(LEFT_EYE)].mean(axis=0))
        return Box(x - w, y - h, x + w, y + h, roll)
