"""The avatar from the user's photos: identity faces for the engine, the eyes for idle blinks and, with
``compose: photo``, the photo that receives the generated lower faces. ``generate`` and ``live`` both
start here; ``live`` shows a square of the photo around the face and turns each rendered face into the
image its sinks get.

``compose: photo`` (the default) keeps the first photo at its own resolution with only the lower face
taken from the network (:mod:`speech2vid.frames.photo_canvas`); ``face`` uses the network's 109x109
face alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from speech2vid.faces import align_image, align_photo, read_photo
from speech2vid.frames.idle import EyeBox, eye_boxes, photo_eyes
from speech2vid.frames.photo_canvas import (
    PhotoCanvas,
    compose_on_photo,
    photo_canvas,
    rest_mouth_identity,
    square_around_face,
)


@dataclass(frozen=True)
class PhotoInputs:
    faces: list[np.ndarray]  # (112, 112, 3) uint8 identity faces for the engine
    eyes: tuple[EyeBox, ...] | None  # in the output frame's pixels (blinks)
    canvas: PhotoCanvas | None  # compose photo: the photo that receives the generated faces


def photo_inputs(
    photos: Sequence[str | Path],
    *,
    face_index: int | None = None,
    aligned: bool = False,
    compose: str = "photo",
    max_side: int,
    rest_mouth: bool,
    square: bool = False,
) -> PhotoInputs:
    """Read and register the photos. With ``compose: photo`` (not for ``aligned`` crops, which have no photo
    around them) the first photo, cut to a square around the face when ``square``, becomes the canvas, and
    with ``rest_mouth`` its identity face has its lips closed first."""
    if compose != "photo" or aligned:
        crops = [align_photo(p, face_index=face_index, aligned=aligned) for p in photos]
        return PhotoInputs([a.image for a in crops], photo_eyes(crops[0]), None)
    rgb = read_photo(photos[0])
    first = align_image(rgb, face_index, name=str(photos[0]))
    assert first.landmarks is not None and first.transform is not None
    shown, landmarks, transform = rgb, first.landmarks, first.transform
    if square:
        shown, landmarks, transform = square_around_face(rgb, landmarks, transform)
    canvas = photo_canvas(shown, landmarks, transform, max_side, rest_mouth=rest_mouth)
    identity = rest_mouth_identity(rgb, first.landmarks, first.transform) if rest_mouth else first.image
    faces = [identity] + [align_photo(p, face_index=face_index).image for p in photos[1:]]
    return PhotoInputs(faces, eye_boxes(canvas.landmarks), canvas)


@dataclass(frozen=True)
class Avatar:
    """What the live loop shows: the identity faces, and how a rendered face becomes the shown image."""

    faces: list[np.ndarray]  # (112, 112, 3) uint8 identity faces for the engine
    eyes: tuple[EyeBox, ...] | None  # in the shown image's pixels (blinks)
    present: Callable[[np.ndarray], np.ndarray] | None  # rendered face -> shown image, (H, W, 3) uint8
    sway_scale: float  # shown pixels per rendered-face pixel (the idle sway is defined in face pixels)

    @classmethod
    def bare(cls, faces: Sequence[np.ndarray], eyes: tuple[EyeBox, ...] | None = None) -> Avatar:
        """The rendered face shown as it is (``live.compose: face``); ``eyes`` in its pixels."""
        return cls(list(faces), eyes, None, 1.0)


def live_avatar(
    photos: Sequence[str | Path], *, aligned: bool, compose: str, photo_side: int, rest_mouth: bool
) -> Avatar:
    """``live``'s avatar: a square of the photo around the face (square avatars: the window, file sinks)."""
    inputs = photo_inputs(
        photos, aligned=aligned, compose=compose, max_side=photo_side, rest_mouth=rest_mouth, square=True
    )
    canvas = inputs.canvas
    if canvas is None:
        return Avatar.bare(inputs.faces, inputs.eyes)

    def present(face: np.ndarray) -> np.ndarray:
        return compose_on_photo(canvas, face)  # uint8: the sinks take it as it is, at any photo_side

    return Avatar(inputs.faces, inputs.eyes, present, canvas.face_scale)
