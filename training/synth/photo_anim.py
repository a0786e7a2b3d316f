"""Photo mode: animate a real face photo's lips and jaw along a viseme track.

dlib finds the photo's 68 landmarks; they are mapped into the renderer's face canvas by the
registration similarity (eyes and nose), given the mouth of each frame's visemes
(:func:`speech2vid.faces.mouth_model.mouth_shape`, the same model as the procedural faces), and mapped
back. A piecewise-affine warp over a Delaunay triangulation of the landmarks plus a fixed ring of
points around the face (and the image border) moves the lips and the chin; only triangles with a
moving corner are re-warped. The mouth interior (dark cavity, teeth, tongue) is then drawn inside the
inner lip line, and the photo is placed in the frame with a small head motion like the rendered faces.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from speech2vid.errors import FaceError
from speech2vid.faces import detect_faces, landmarks_68, read_photo
from speech2vid.faces.align import transform_points
from speech2vid.frames.mouth_warp import MouthAnimator
from speech2vid.training.synth.face_render import Identity


class PhotoAnimator:
    """Frames of one photo speaking; same ``render`` interface as :class:`FaceRenderer`."""

    def __init__(self, photo: np.ndarray, frame_size: int, rng: np.random.Generator, name: str = "the photo"):
        boxes = detect_faces(photo)
        if not boxes:
            raise FaceError(f"no face found in {name}: use a frontal, well-lit photo of one face")
        box = boxes[0]
        # Crop a square around the face so that it fills about half the frame, then work at frame size.
        cx, cy = box.center
        side = max(box.width, box.height) * 2.2
        scale = frame_size / side
        crop_m = np.array(
            [[scale, 0, frame_size / 2 - scale * cx], [0, scale, frame_size / 2 - scale * (cy + 0.05 * side)]]
        )
        self.image = cv2.warpAffine(
            photo, crop_m, (frame_size, frame_size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
        )
        self.size = frame_size
        self.landmarks = transform_points(crop_m, landmarks_68(photo, box))
        self.mouth = MouthAnimator(self.image, self.landmarks)
        self.motion = np.stack(
            [
                rng.uniform(0.01, 0.04, 3) * np.array([1.0, 40.0, 40.0]),
                rng.uniform(0.1, 0.5, 3),
                rng.uniform(0, 2 * math.pi, 3),
            ]
        )
        self.placement = (rng.uniform(0.85, 1.0), rng.uniform(-0.15, 0.15))

    def head_pose(self, t: float) -> np.ndarray:
        amp, freq, phase = self.motion
        wob = amp * np.sin(2 * math.pi * freq * t + phase)
        scale, rot = self.placement
        angle = rot + wob[0]
        c = self.size / 2
        a, b = scale * math.cos(angle), scale * math.sin(angle)
        return np.array([[a, -b, c + wob[1] - (a * c - b * c)], [b, a, c + wob[2] - (b * c + a * c)]])

    def render(self, visemes: np.ndarray, blink: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        out, dst = self.mouth.render(visemes)
        m = self.head_pose(t)
        frame = cv2.warpAffine(out, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return frame, transform_points(m, dst)


def load_photo_animator(path: Path, frame_size: int, rng: np.random.Generator) -> PhotoAnimator:
    return PhotoAnimator(read_photo(path), frame_size, rng, name=str(path))


__all__ = ["Identity", "MouthAnimator", "PhotoAnimator", "load_photo_animator"]
