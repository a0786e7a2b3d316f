"""Photo loading, face detection, 68 landmarks and Speech2Vid registration to a 112x112 crop.

Images are RGB uint8 arrays of shape (H, W, 3) everywhere in this package.

    face = align_photo("me.jpg")          # AlignedFace; face.image is (112, 112, 3) uint8 RGB
    face = align_image(frame_rgb)         # the same for an in-memory video frame
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np

from speech2vid.errors import FaceError
from speech2vid.faces.align import (
    invert_transform,
    registration_transform,
    similarity_fit,
    transform_points,
    warp_aligned,
)
from speech2vid.faces.detect import Box, detect_faces
from speech2vid.faces.images import check_rgb
from speech2vid.faces.landmarks import landmarks_68
from speech2vid.faces.photo import read_photo
from speech2vid.faces.template import ALIGNED_SIZE, TEMPLATE_240, TEMPLATE_ALIGNED

__all__ = [
    "ALIGNED_SIZE",
    "AlignedFace",
    "Box",
    "TEMPLATE_240",
    "TEMPLATE_ALIGNED",
    "align_image",
    "align_photo",
    "detect_faces",
    "invert_transform",
    "landmarks_68",
    "note_face_choice",
    "read_photo",
    "registration_transform",
    "similarity_fit",
    "transform_points",
    "warp_aligned",
]

log = logging.getLogger(__name__)

# An already-aligned crop may be a few pixels off square (re-saved, trimmed); beyond this relative
# difference between width and height it is not an aligned face crop.
ALIGNED_ASPECT_TOLERANCE = 0.05
# A face at least this fraction of the chosen one's area is "about as large": the choice of the largest
# then says little about which face the user meant, and the warning says so.
SIMILAR_FACE_AREA = 0.8
# Below this width (px) a detected face's mouth is a few pixels: enlarged to the model's 112x112 input it is a
# blur with nothing to animate, and the output would be mostly interpolation. Photos only; video frames pass.
MIN_FACE_PX = 40
# A face with more than this share of its 68 landmarks off the picture is cut by its edge: the registration
# would fill the missing part by repeating edge pixels, and the mouth may be outside altogether.
MAX_OUTSIDE_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face registered onto the Speech2Vid template.

    Attributes:
        image: (112, 112, 3) uint8 RGB aligned crop, the networks' identity input.
        landmarks: (68, 2) float32 (x, y) landmarks in the source image, or None for a photo given
            as already aligned.
        transform: (2, 3) float64 source -> aligned affine (``invert_transform`` maps the generated
            face back onto the source), or None for an already aligned photo.
        box: the detected face box in the source image, or None for an already aligned photo.
    """

    image: np.ndarray
    landmarks: np.ndarray | None
    transform: np.ndarray | None
    box: Box | None


def align_photo(path: str | os.PathLike[str], face_index: int | None = None, aligned: bool = False) -> AlignedFace:
    """Read a photo and register its face.

    Args:
        path: image file (see :func:`read_photo`).
        face_index: which face when there are several, 0-based, largest first; default the largest.
        aligned: the photo already is an aligned square face crop: it is only resized to 112x112.

    Raises:
        FaceError: unreadable photo, no face, ``face_index`` out of range, or an ``aligned`` photo
            that is not square.
    """
    rgb = read_photo(path)
    if aligned:
        if face_index is not None:
            raise FaceError("--face-index cannot be combined with --aligned: an aligned crop holds one face")
        return AlignedFace(image=resize_aligned_crop(rgb, name=str(path)), landmarks=None, transform=None, box=None)
    return align_image(rgb, face_index, name=str(path))


def align_image(
    rgb: np.ndarray,
    face_index: int | None = None,
    *,
    box: Box | None = None,
    name: str = "the image",
) -> AlignedFace:
    """Detect (unless ``box`` is given), landmark and register a face of an in-memory image.

    Args:
        rgb: RGB uint8 image, shape (H, W, 3), e.g. one video frame.
        face_index: which face, 0-based, largest first; default the largest.
        box: a face box to use instead of running the detector (e.g. the previous frame's box
            when tracking a video, which skips the costliest step).
        name: how error messages call the image (a file name, "frame 12 of clip.mp4").

    Raises:
        FaceError: no face found, or ``face_index`` out of range.
    """
    check_rgb(rgb)
    detected = box is None
    if box is None:
        box = _pick_face(detect_faces(rgb), face_index, name)
    elif face_index is not None:
        raise ValueError("pass either face_index or box, not both")
    points = landmarks_68(rgb, box)
    if detected:
        _check_whole(points, box, rgb.shape, name)
    transform = registration_transform(points)
    return AlignedFace(image=warp_aligned(rgb, transform), landmarks=points, transform=transform, box=box)


def resize_aligned_crop(rgb: np.ndarray, name: str = "the image") -> np.ndarray:
    """An already aligned square crop -> (112, 112, 3) uint8; unchanged when it already is 112x112.

    A crop within ALIGNED_ASPECT_TOLERANCE of square is centre-cropped to square first.
    """
    check_rgb(rgb)
    height, width = rgb.shape[:2]
    if abs(width - height) > ALIGNED_ASPECT_TOLERANCE * max(width, height):
        raise FaceError(
            f"{name} is {width}x{height} px but an aligned face crop must be square "
            f"({ALIGNED_SIZE}x{ALIGNED_SIZE}): crop it square, or drop --aligned to detect the face"
        )
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    square = rgb[top : top + side, left : left + side]
    if side == ALIGNED_SIZE:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > ALIGNED_SIZE else cv2.INTER_LINEAR
    return cv2.resize(square, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=interpolation)


def _pick_face(boxes: list[Box], face_index: int | None, name: str) -> Box:
    """The requested face among ``boxes`` (largest first)."""
    if not boxes:
        raise FaceError(
            f"no face found in {name}: use a frontal, well-lit photo, "
            "or pass --aligned for an already aligned 112x112 crop"
        )
    index = 0 if face_index is None else face_index
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise FaceError(f"face index must be a whole number, got {face_index!r}")
    if not 0 <= index < len(boxes):
        valid = "0" if len(boxes) == 1 else f"0 to {len(boxes) - 1}"
        raise FaceError(
            f"face index {index} is out of range: {len(boxes)} face(s) found in {name} "
            f"(numbered from 0, largest first): pass --face-index {valid}"
        )
    if face_index is None:
        note_face_choice(boxes, index, name)
    return boxes[index]


def _check_whole(points: np.ndarray, box: Box, shape: tuple[int, ...], name: str) -> None:
    """FaceError when the face is too small to animate or cut by the picture's edge."""
    if box.width < MIN_FACE_PX:
        raise FaceError(
            f"the face in {name} is {box.width:.0f} px wide, too small to animate (at least {MIN_FACE_PX} px): "
            "use a photo where the face is larger, or crop the photo around it"
        )
    h, w = shape[:2]
    outside = int(((points[:, 0] < 0) | (points[:, 0] > w - 1) | (points[:, 1] < 0) | (points[:, 1] > h - 1)).sum())
    if outside > MAX_OUTSIDE_SHARE * len(points):
        raise FaceError(
            f"the face in {name} is cut by the picture's edge ({outside} of its {len(points)} landmarks lie outside): "
            "use a photo that shows the whole face, chin and mouth included"
        )


def note_face_choice(boxes: list[Box], index: int, name: str) -> None:
    """Log a warning when ``name`` shows several faces and ``boxes[index]`` was taken without the user
    choosing: which face (size and place), and how to choose another. One face: nothing to say."""
    if len(boxes) < 2:
        return
    chosen = boxes[index]
    similar = [i for i, b in enumerate(boxes) if i != index and b.area >= SIMILAR_FACE_AREA * chosen.area]
    alike = f", and face {similar[0]} is about as large ({_where(boxes[similar[0]])})" if similar else ""
    log.warning(
        "%d faces found in %s: using face %d (%s)%s; to use another, pass --face-index N (0 = largest, up to %d)",
        len(boxes),
        name,
        index,
        _where(chosen),
        alike,
        len(boxes) - 1,
    )


def _where(box: Box) -> str:
    """A face box in words for the user: its size and its span in the picture, px."""
    return (
        f"{box.width:.0f}x{box.height:.0f} px at x={box.left:.0f}..{box.right:.0f}, y={box.top:.0f}..{box.bottom:.0f}"
    )
