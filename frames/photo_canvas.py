"""The user's photo at its own resolution, with only the lower face taken from the network.

The network draws a 109x109 face; scaled up to a kiosk window it turns a real photo into a blurred,
painterly one. Here the photo itself is the output frame: each generated face is mapped back through
the inverse of the photo's registration and blended in below the eyes (:mod:`speech2vid.frames.blend`,
the still-photo case of what ``redub`` does per video frame). Outside that region every pixel is the
photo's own, so the eyes, hair and background keep their sharpness.

The network's face is 109 px wide; a photo's face is often two or three times that. Pasting the face
scaled up would blur the photo's own skin, beard and lips, so only what the network *changed* is
scaled up: the frame is ``photo + upscaled(generated - reference)``, where ``reference`` is the
registered photo crop the engine itself was given. Where the network moved pixels by more than a few
grey levels (an opening mouth, teeth) its own face is shown (``CHANGE_FULL``), since there the photo
has nothing to keep.

With the warp head's motion (``frames.rendered``), nothing of the 109 px picture is enlarged but the
drawn mouth interior: the motion field is enlarged (a smooth field loses nothing by it) and moves the
photo's own pixels at the output resolution, so lips, skin and beard keep the photo's sharpness and
colour while they move; the drawn colour (teeth, tongue, the dark of a mouth) shows where the mask says.

Pure functions over arrays: :func:`photo_canvas` once per photo, :func:`compose_on_photo` per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from speech2vid.faces.align import compose, warp_aligned
from speech2vid.faces.ibug68 import lip_gap_ratio
from speech2vid.faces.mouth_model import REST_VISEMES
from speech2vid.frames.blend import crop_to_frame, feather_alpha, region_mask
from speech2vid.frames.mouth_warp import MouthAnimator
from speech2vid.frames.rendered import face_motion, face_rgb
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE

FEATHER_CROP_PX = 5.0  # alpha ramp inside the region's edge, in generated-face px (x the photo's scale)
# The kernel that moves the photo's own pixels every frame: Lanczos keeps more of their grain and detail than
# bicubic (measured on a low-light photo's lower face: 0.42 of the photo's Laplacian variance against 0.36),
# for about 3 ms more per frame on an 800x640 photo on 2 cores.
MOVE_KERNEL = cv2.INTER_LANCZOS4
CHANGE_FULL = 0.12  # a change this large (0..1 RGB) shows the generated face itself, not photo + change


@dataclass(frozen=True)
class PhotoCanvas:
    """A photo ready to receive generated faces: the frame, and where and how the face goes in."""

    photo: np.ndarray  # (H, W, 3) uint8 RGB at the output size (even sides, for H.264 4:2:0)
    landmarks: np.ndarray  # (68, 2) the face's landmarks in output pixels
    x0: int  # the region of interest: output pixels [y0:y1, x0:x1] hold every changed pixel
    y0: int
    x1: int
    y1: int
    crop_to_roi: np.ndarray  # (2, 3) generated-face px -> region-of-interest px
    alpha: np.ndarray  # (y1 - y0, x1 - x0, 1) float32 blend weight of the generated face
    reference: np.ndarray  # (109, 109, 3) float32 in [0, 1]: the registered photo crop the engine moves

    face_scale: float  # output px per generated-face px
    # What every frame of this photo shares, computed once (see compose_on_photo): the region as float
    # (y1 - y0, x1 - x0, 3), and alpha x (the reference enlarged - the region), the same shape.
    base: np.ndarray
    alpha_lift: np.ndarray
    # What the warp head's motion moves: the output-size photo as the engine's reference shows it (lips
    # at rest when the identity's were closed: ``rest_mouth``), uint8, and the region's pixel grid.
    moving: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        return self.photo.shape[1], self.photo.shape[0]


def output_scale(width: int, height: int, max_side: int) -> float:
    """The scale that fits a photo into ``max_side`` (never enlarging)."""
    return min(1.0, max_side / max(width, height))


def photo_canvas(
    photo: np.ndarray, landmarks: np.ndarray, transform: np.ndarray, max_side: int, rest_mouth: bool = False
) -> PhotoCanvas:
    """Prepare ``photo`` (RGB uint8) whose face has ``landmarks`` and registration ``transform``.

    Args:
        photo: (H, W, 3) uint8 RGB, the whole photo as read.
        landmarks: (68, 2) the face's landmarks in ``photo`` pixels.
        transform: (2, 3) photo -> aligned 112x112 registration (``faces.AlignedFace.transform``).
        max_side: the output's longer side at most (the photo is shrunk to fit, never enlarged).
        rest_mouth: the engine's identity face has its lips set to rest (:func:`rest_mouth_identity`):
            the warp head's motion then moves a photo whose lips are at rest too.
    """
    h, w = photo.shape[:2]
    s = output_scale(w, h, max_side)
    ow, oh = max(2, int(round(w * s)) // 2 * 2), max(2, int(round(h * s)) // 2 * 2)
    sx, sy = ow / w, oh / h
    frame = cv2.resize(photo, (ow, oh), interpolation=cv2.INTER_AREA) if (ow, oh) != (w, h) else photo.copy()
    to_photo = np.array([[1.0 / sx, 0.0, 0.0], [0.0, 1.0 / sy, 0.0]])  # output px -> photo px
    out_transform = compose(transform, to_photo)  # output px -> aligned
    out_landmarks = np.asarray(landmarks, dtype=np.float64) * [sx, sy]
    mask = region_mask(out_landmarks, out_transform, "lower")
    to_frame = crop_to_frame(out_transform)
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    corners = np.concatenate([pts.min(axis=0) - 1, pts.max(axis=0) + 1]).reshape(2, 2)
    box = (
        np.array(
            [
                [corners[0, 0], corners[0, 1]],
                [corners[1, 0], corners[0, 1]],
                [corners[0, 0], corners[1, 1]],
                [corners[1, 0], corners[1, 1]],
            ]
        )
        @ to_frame[:, :2].T
        + to_frame[:, 2]
    )
    # Even bounds (the frame's sides are even too): the region then covers whole 2x2 blocks of H.264's
    # 4:2:0 chroma, so a writer can convert just the region and patch it into the photo's planes.
    x0, y0 = np.maximum(np.floor(box.min(axis=0)).astype(int) - 2, 0) // 2 * 2
    x1, y1 = np.minimum((np.ceil(box.max(axis=0)).astype(int) + 4) // 2 * 2, [ow, oh])
    m = to_frame.copy()
    m[:, 2] -= (x0, y0)
    roi = (int(x1 - x0), int(y1 - y0))
    scale = float(np.sqrt(abs(np.linalg.det(to_frame[:, :2]))))
    alpha = cv2.warpAffine(
        feather_alpha(mask, FEATHER_CROP_PX),
        m,
        roi,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if scale > 1.5:  # soften the ramp's own staircase once it is enlarged
        alpha = cv2.GaussianBlur(alpha, (0, 0), scale / 3)
    reference = warp_aligned(photo, transform)[
        CROP_OFFSET : CROP_OFFSET + OUTPUT_SIZE, CROP_OFFSET : CROP_OFFSET + OUTPUT_SIZE
    ]
    alpha = alpha[..., None].astype(np.float32)
    base = frame[y0:y1, x0:x1].astype(np.float32)
    lift = _enlarge(reference.astype(np.float32), m, roi) - base
    moving = rest_mouth_image(frame, out_landmarks) if rest_mouth else frame
    grid_y, grid_x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return PhotoCanvas(
        frame,
        out_landmarks,
        int(x0),
        int(y0),
        int(x1),
        int(y1),
        m,
        alpha,
        reference.astype(np.float32) / 255.0,
        scale,
        base,
        alpha * lift,
        moving,
        grid_x,
        grid_y,
    )


def _enlarge(img: np.ndarray, crop_to_roi: np.ndarray, roi: tuple[int, int]) -> np.ndarray:
    """``img`` (109 px, float32, 1 to 4 channels) warped onto the region: bicubic, edges replicated."""
    return cv2.warpAffine(img, crop_to_roi, roi, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


SQUARE_ZOOM = 2.2  # the live avatar's square: this many times the face's landmark extent (brows to chin)


def square_around_face(
    photo: np.ndarray, landmarks: np.ndarray, transform: np.ndarray, zoom: float = SQUARE_ZOOM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square cut of ``photo`` around its face, for square avatars (the live window and file sinks).

    The side is ``zoom`` times the landmarks' larger extent (at most the photo's shorter side), centred a
    little above the landmarks' centre so the hair is in; the square is moved inside the photo where it
    would leave it. Returns (the square, the landmarks and the registration ``transform`` in its pixels).
    """
    h, w = photo.shape[:2]
    pts = np.asarray(landmarks, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = int(min(round(zoom * float((hi - lo).max())), w, h))
    cx, cy = (lo + hi) / 2
    x0 = int(round(np.clip(cx - side / 2, 0, w - side)))
    y0 = int(round(np.clip(cy - 0.58 * side, 0, h - side)))
    m = np.asarray(transform, dtype=np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)  # square px -> photo px -> aligned
    return photo[y0 : y0 + side, x0 : x0 + side].copy(), pts - (x0, y0), m


def compose_on_photo(canvas: PhotoCanvas, face: np.ndarray) -> np.ndarray:
    """One output frame: the photo with the generated ``face`` ((109, 109, 3) float in [0, 1]) blended in."""
    out = canvas.photo.copy()
    out[canvas.y0 : canvas.y1, canvas.x0 : canvas.x1] = compose_region(canvas, face)
    return out


def compose_region(canvas: PhotoCanvas, face: np.ndarray) -> np.ndarray:
    """The region ``[y0:y1, x0:x1]`` of :func:`compose_on_photo`'s frame, (h, w, 3) uint8: the rest of the
    frame is the photo's own pixels, so a writer that keeps the photo needs only this.

    Per pixel, with ``E`` the bicubic enlargement, ``change = face - reference``, ``full`` the enlarged,
    clipped size of the change (the network's own face where it moved pixels a lot) and ``a`` the blend
    weight::

        frame = (1 - a) base + a (full E(face) + (1 - full) (base + E(change)))
              = base + a E(change) + a full (E(reference) - base)       as E(face) = E(reference) + E(change)

    The last factor does not change between frames (``canvas.alpha_lift``), so a frame costs one
    four-channel warp of the 109 px change and two multiply-adds over the region, whatever the photo's size.
    """
    motion = face_motion(face)
    if motion is not None:
        return _moved_region(canvas, np.asarray(motion, dtype=np.float32))
    face = np.asarray(face_rgb(face), dtype=np.float32)
    change = face - canvas.reference
    big = cv2.GaussianBlur(np.abs(change).max(axis=2), (0, 0), 1.0) * np.float32(1.0 / CHANGE_FULL)
    small = np.dstack((change * np.float32(255.0), np.clip(big, 0.0, 1.0)))
    up = _enlarge(small, canvas.crop_to_roi, (canvas.x1 - canvas.x0, canvas.y1 - canvas.y0))
    full = np.clip(up[..., 3:4], 0.0, 1.0)
    region: np.ndarray = canvas.base + canvas.alpha * up[..., :3] + full * canvas.alpha_lift
    return np.clip(region + 0.5, 0, 255).astype(np.uint8)


def _moved_region(canvas: PhotoCanvas, motion: np.ndarray) -> np.ndarray:
    """The region with the photo's own pixels moved by the warp head's motion (109 px flow x, y in face
    pixels, mask, colour), at the output size: per output pixel ``p`` of the region, with ``A`` the linear
    part of face px -> output px and ``E`` the bilinear enlargement onto the region::

        moved = photo_at(p + A E(flow)(p))      the frame's pixel p shows the reference's p + flow
        drawn = moved + E(mask) (255 E(colour) - moved)
        frame = base + alpha (drawn - base)
    """
    size = (canvas.x1 - canvas.x0, canvas.y1 - canvas.y0)
    m = canvas.crop_to_roi
    fields = cv2.warpAffine(
        np.ascontiguousarray(motion[..., :3]), m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    colour = cv2.warpAffine(
        np.ascontiguousarray(motion[..., 3:6]) * np.float32(255.0),
        m,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    a = m[:, :2].astype(np.float32)
    fx, fy = fields[..., 0], fields[..., 1]
    map_x = canvas.grid_x + a[0, 0] * fx + a[0, 1] * fy
    map_y = canvas.grid_y + a[1, 0] * fx + a[1, 1] * fy
    moved = cv2.remap(canvas.moving, map_x, map_y, MOVE_KERNEL, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    mask = np.clip(fields[..., 2:3], 0.0, 1.0)
    drawn = moved + mask * (colour - moved)
    region: np.ndarray = canvas.base + canvas.alpha * (drawn - canvas.base)
    return np.clip(region + 0.5, 0, 255).astype(np.uint8)


# The photo's lips are apart (inner-lip gap / eye distance): neutral closed mouths measure 0.00-0.04 (dlib,
# the evaluation photos), grins with teeth 0.10-0.25. On closed lips the teeth test would take their
# highlights for teeth and smear them (measured: the mouth of such a photo then stopped opening).
OPEN_GAP = 0.06


TEETH_BRIGHTER = 25  # teeth: brighter than the lips' median by this much (HSV value, 0..255) ...
TEETH_PALER = 0.75  # ... and less saturated than this fraction of the lips' median saturation


def rest_mouth_identity(photo: np.ndarray, landmarks: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The registered 112x112 identity face with its lips set to the mouth model's rest (closed) shape.

    Why: the warp head learned to move mouths from the states the mouth model makes (its training
    corpus animates photos with it); a photo's own grin or open mouth is not one of them, and the head
    would keep it through silence. Setting the lips to the model's rest shape first (the same piecewise
    warp the corpus used, ``frames.mouth_warp.MouthAnimator``, at twice the size and shrunk) gives it a
    reference it knows, while the output frame still starts from the untouched photo.
    """
    scale = 2
    m = np.asarray(transform, dtype=np.float64) * scale
    size = 112 * scale
    big = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    pts = np.asarray(landmarks, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    return cv2.resize(rest_mouth_image(big, pts), (112, 112), interpolation=cv2.INTER_AREA)


def rest_mouth_image(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``image`` (any size) with the lips of the face at ``landmarks`` set to the mouth model's rest shape
    (and teeth left between lips that were apart painted over): what :func:`rest_mouth_identity` registers,
    and what the warp head's motion moves at the output size."""
    closed, moved = MouthAnimator(image, landmarks).render(REST_VISEMES)
    if lip_gap_ratio(landmarks) > OPEN_GAP:  # teeth can only be left over where the photo's lips were apart
        closed = cover_teeth(closed, moved)
    return closed


def cover_teeth(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``image`` with teeth still showing inside the outer lip line painted over from the lips around them.

    Why: closing a wide grin by moving its landmarks squeezes the teeth into slivers between the lips;
    they still read as an open mouth, to a viewer and to dlib. Teeth are the pixels inside the outer lip
    polygon (points 48-59) clearly brighter and paler than the lips' median; OpenCV's inpainting (Telea)
    fills them from the lips around them.
    """
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(landmarks)[48:60]).astype(np.int32)], 255)
    inside = mask > 0
    if inside.sum() < 10:
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    v, s = hsv[..., 2], hsv[..., 1]
    teeth = inside & (v > np.median(v[inside]) + TEETH_BRIGHTER) & (s < TEETH_PALER * np.median(s[inside]))
    if not teeth.any():
        return image
    grown = cv2.bitwise_and(cv2.dilate(teeth.astype(np.uint8) * 255, np.ones((3, 3), np.uint8)), mask)
    return cv2.inpaint(image, grown, 3, cv2.INPAINT_TELEA)
