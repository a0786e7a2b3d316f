"""Face detection with MediaPipe's BlazeFace (short and full range), run by ONNX Runtime.

The short-range model finds faces that fill a good part of the picture (portraits, webcams); the
full-range model finds small and distant ones (a face 60 px wide in a 640x480 frame). Both run on every
picture and their faces are merged, so that a photo is never refused for the wrong model's sake.

Both models see the picture shrunk to 128 or 192 px, where a face 40 px wide in an 800 px group photo is
7 px. A thorough search (photos, the first frame of a video) also runs them on a 3x3 grid of tiles
overlapping by half; a face found only in a tile must then convince FaceMesh that it is a face (its face
score >= 0.5, the threshold MediaPipe tracks with), which drops the tiles' false alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speech2vid.assets import face_detector_graph, face_mesh_graph
from speech2vid.faces.boxes import iou
from speech2vid.faces.images import check_rgb
from speech2vid.faces.mediapipe import (
    FULL_RANGE,
    NMS_IOU,
    ROI_SCALE,
    SHORT_RANGE,
    FaceDetection,
    face_mesh,
    run_detector,
)

TILE_GRID = 3  # tiles a side in a thorough search, each half the picture's side (overlapping by half)
MIN_FACE_SCORE = 0.5  # FaceMesh's face score from which its region holds a face (MediaPipe's tracking threshold)
TILE_EDGE_PX = 2  # a face box this close to a tile's inner edge is cut by it: a neighbouring tile holds it whole


@dataclass(frozen=True)
class Box:
    """A face bounding box in image pixel coordinates (0-based pixel centres, x right, y down).

    ``roll`` is the face's in-plane rotation in radians (positive: the head leans clockwise on screen,
    from the eyes); the landmark model cuts the face out turned upright by it.
    """

    left: float
    top: float
    right: float
    bottom: float
    roll: float = 0.0

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the box centre."""
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def scaled(self, factor: float) -> Box:
        """The same box in an image resized by ``factor`` (pixel-centre convention)."""

        def scale(v: float) -> float:
            return (v + 0.5) * factor - 0.5

        return Box(scale(self.left), scale(self.top), scale(self.right), scale(self.bottom), self.roll)


def eye_roll(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """The in-plane rotation (radians) that makes the line from the right eye to the left one level."""
    return math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))


def mesh_region(box: Box) -> tuple[np.ndarray, float, float]:
    """FaceMesh's region for ``box``: (centre, side, angle) as MediaPipe derives it from a detection."""
    return np.array(box.center, dtype=np.float64), max(box.width, box.height) * ROI_SCALE, box.roll


def mesh_score(rgb: np.ndarray, box: Box) -> float:
    """FaceMesh's confidence in [0, 1] that ``box`` holds a face."""
    return face_mesh(rgb, mesh_region(box), face_mesh_graph())[1]


def _box(face: FaceDetection) -> Box:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    return Box(x0, y0, x1, y1, eye_roll(face.keypoints[0], face.keypoints[1]))


def _both_models(rgb: np.ndarray) -> list[FaceDetection]:
    return run_detector(rgb, face_detector_graph(SHORT_RANGE)) + run_detector(rgb, face_detector_graph(FULL_RANGE))


def _tiles(rgb: np.ndarray) -> list[FaceDetection]:
    """Faces found in a TILE_GRID x TILE_GRID grid of tiles, in the picture's pixels; none cut by a tile's edge."""
    h, w = rgb.shape[:2]
    th, tw = -(-2 * h // (TILE_GRID + 1)), -(-2 * w // (TILE_GRID + 1))
    out = []
    for gy in range(TILE_GRID):
        for gx in range(TILE_GRID):
            y0, x0 = round(gy * (h - th) / (TILE_GRID - 1)), round(gx * (w - tw) / (TILE_GRID - 1))
            inner = np.array([x0 > 0, y0 > 0, x0 + tw < w, y0 + th < h])  # the tile's edges inside the picture
            for face in _both_models(np.ascontiguousarray(rgb[y0 : y0 + th, x0 : x0 + tw])):
                near = np.array([face.box[0], face.box[1], tw - 1 - face.box[2], th - 1 - face.box[3]]) < TILE_EDGE_PX
                if not (near & inner).any():
                    shift = np.array([x0, y0], dtype=np.float64)
                    out.append(FaceDetection(face.box + np.tile(shift, 2), face.keypoints + shift, face.score))
    return out


def detect_faces(rgb: np.ndarray, thorough: bool = True) -> list[Box]:
    """Find faces: frontal and turned up to about 45 degrees, tilted, small or large.

    Args:
        rgb: RGB uint8 image, shape (H, W, 3).
        thorough: also search tiles of a picture whose shorter side is at least twice the full-range
            model's input (small faces in group photos; about 8x the time). False: the whole picture only,
            as a video tracker re-detecting a face it has seen does.

    Returns:
        Boxes in ``rgb``'s pixel coordinates, largest area first (empty when no face is found).
    """
    check_rgb(rgb)
    whole = _both_models(rgb)
    tiled = _tiles(rgb) if thorough and min(rgb.shape[:2]) >= 2 * FULL_RANGE.side else []
    kept: list[tuple[FaceDetection, bool]] = []
    # one face seen by both models or in several tiles counts once, as its best-scored detection
    for face, in_tile in sorted([(f, False) for f in whole] + [(f, True) for f in tiled], key=lambda c: -c[0].score):
        if not kept or float(iou(face.box, np.stack([k.box for k, _ in kept])).max()) <= NMS_IOU:
            kept.append((face, in_tile))
    boxes = [_box(face) for face, in_tile in kept if not in_tile or mesh_score(rgb, _box(face)) >= MIN_FACE_SCORE]
    return sorted(boxes, key=lambda b: b.area, reverse=True)
