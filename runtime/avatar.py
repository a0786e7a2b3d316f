"""The live avatar's inputs from the user's photos: identity faces for the engine, and how a rendered
face becomes the image the window shows.

``compose: photo`` (the default) shows a square of the first photo around the face at its own
resolution (``photo_side`` at most), with only the lower face taken from the network, the same
composite ``generate`` writes (:mod:`speech2vid.frames.photo_canvas`); ``face`` shows the network's
109x109 face alone, scaled up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from speech2vid.faces import align_image, align_photo, read_photo
from speech2vid.frames.idle import EyeBox, eye_boxes, photo_eyes
from speech2vid.frames.photo_canvas import compose_on_photo, photo_canvas, rest_mouth_identity, square_around_face


@dataclass(frozen=True)
class Avatar:
    faces: list[np.ndarray]  # (112, 112, 3) uint8 identity faces for the engine
    eyes: tuple[EyeBox, ...] | None  # in the shown image's pixels (blinks)
    present: Callable[[np.ndarray], np.ndarray] | None  # rendered face -> shown image, float32 in [0, 1]
    sway_scale: float  # shown pixels per rendered-face pixel (the idle sway is defined in face pixels)


def live_avatar(
    photos: Sequence[str | Path], *, aligned: bool, compose: str, photo_side: int, rest_mouth: bool
) -> Avatar:
    if compose != "photo" or aligned:  # an aligned crop has no photo around it to show
        crops = [align_photo(p, aligned=aligned) for p in photos]
        return Avatar([a.image for a in crops], photo_eyes(crops[0]), None, 1.0)
    rgb = read_photo(photos[0])
    first = align_image(rgb, name=str(photos[0]))
    assert first.landmarks is not None and first.transform is not None
    square, landmarks, transform = square_around_face(rgb, first.landmarks, first.transform)
    canvas = photo_canvas(square, landmarks, transform, photo_side)
    identity = rest_mouth_identity(rgb, first.landmarks, first.transform) if rest_mouth else first.image
    faces = [identity] + [align_photo(p).image for p in photos[1:]]

    def present(face: np.ndarray) -> np.ndarray:
        return compose_on_photo(canvas, face).astype(np.float32) * np.float32(1.0 / 255.0)

    return Avatar(faces, eye_boxes(canvas.landmarks), present, canvas.face_scale)
