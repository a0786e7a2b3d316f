"""Face detection with dlib's HOG frontal face detector (the Speech2Vid authors' detector)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from speech2vid.faces.dlib_models import frontal_face_detector
from speech2vid.faces.images import check_rgb

MAX_DETECT_SIDE = 1024  # px; larger images are shrunk first: HOG cost grows with pixel count
SMALL_IMAGE_SIDE = 640  # px; below this, faces are likely under HOG's ~80 px minimum: upsample once
TINY_IMAGE_SIDE = 320  # px; below this, upsample twice


@dataclass(frozen=True)
class Box:
    """A face bounding box in image pixel coordinates (0-based pixel centres, x right, y down)."""

    left: float
    top: float
    right: float
    bottom: float

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

        return Box(scale(self.left), scale(self.top), scale(self.right), scale(self.bottom))


def detect_faces(rgb: np.ndarray) -> list[Box]:
    """Find frontal faces (in-plane rotation up to about 30 degrees is fine).

    Args:
        rgb: RGB uint8 image, shape (H, W, 3).

    Returns:
        Boxes in ``rgb``'s pixel coordinates, largest area first (empty when no face is found).
    """
    check_rgb(rgb)
    shrink = min(1.0, MAX_DETECT_SIDE / max(rgb.shape[:2]))
    work = rgb
    if shrink < 1.0:
        size = (round(rgb.shape[1] * shrink), round(rgb.shape[0] * shrink))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        shrink = size[0] / rgb.shape[1]  # the factor actually applied, after rounding
    work = np.ascontiguousarray(work)
    side = max(work.shape[:2])
    upsample = 2 if side < TINY_IMAGE_SIDE else 1 if side < SMALL_IMAGE_SIDE else 0
    detector = frontal_face_detector()
    rects = detector(work, upsample)
    if len(rects) == 0 and upsample == 0:
        # A face smaller than ~80 px in a large picture: one upsampled pass before giving up.
        rects = detector(work, 1)
    boxes = [
        Box(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())).scaled(1.0 / shrink) for r in rects
    ]
    return sorted(boxes, key=lambda b: b.area, reverse=True)
