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
from speech2vid.frames.detail import remap_layers, split_detail
from speech2vid.frames.lower_lip import hold_lower_lip
from speech2vid.frames.mouth_warp import MouthAnimator
from speech2vid.frames.rendered import face_motion, face_rgb
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE

FEATHER_CROP_PX = 5.0  # alpha ramp inside the region's edge, in generated-face px (x the photo's scale)
# The kernel that moves the photo's own pixels every frame: Lanczos keeps more of their grain and detail than
# bicubic (measured on a low-light photo's lower face: 0.42 of the photo's Laplacian variance against 0.36),
# for about 3 ms more per frame on an 800x640 photo on 2 cores.
MOVE_KERNEL = cv2.INTER_LANCZOS4
CHANGE_FULL = 0.12  # a change this large (0..1 RGB) shows the generated face itself, not photo + change
# The drawn interior's mask, enlarged, has an edge as wide as a few face pixels times the face's scale: a soft
# rim over the lips. It is steepened so that one face pixel of its ramp spans one output pixel, relative to
# its peak nearby (within PEAK_FACE_PX), so that a mouth just starting to open still fades in.
PEAK_FACE_PX = 3
# The drawn colour takes the photo's saturation: a greyscale photo's mouth must not open onto red. Chroma is
# the mean (max - min) of RGB over the lower face: 0 for greyscale, 24-119 on the evaluation's colour photos.
FULL_CHROMA = 20.0
# The network's openings, once the lower lip moves with them, are taller than a real speaker's: on 16 of GRID
# speaker s1's sentences (a speaker none of the shipped weights saw; never s4, the held-out evaluation speaker)
# the rendered lip gap's std was 1.52x his own at full height, 1.17x at 0.65, 1.03x at 0.6 and 0.69x at 0.45.
# The opening is drawn at the height that moves like him.
MOUTH_OPENING = 0.6
LOWER_LIP_FACE_PX = (2.0, 8.0)  # the lower lip's thickness in face px, as measured, is kept within this


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
    # ``moving`` split for moves that keep its grain (frames.detail), the lower lip's thickness in face px
    # (frames.lower_lip) and the saturation (0..1) that the drawn colour keeps.
    moving_low: np.ndarray
    moving_detail: np.ndarray
    lower_lip_px: float
    colour_saturation: float
    # Where the photo itself shows teeth (its lips apart), (y1 - y0, x1 - x0, 1) float32 in [0, 1]: an opening
    # there shows the photo's own teeth instead of the drawn colour. None: the photo's mouth is closed.
    own_teeth: np.ndarray | None

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
    moving_low, moving_detail = split_detail(moving)
    face_pts = np.asarray(landmarks, dtype=np.float64) @ np.asarray(transform)[:, :2].T + np.asarray(transform)[:, 2]
    lower_lip = float(np.clip(face_pts[57, 1] - face_pts[66, 1], *LOWER_LIP_FACE_PX))
    inside = alpha[..., 0] > 0.5
    chroma = float((base.max(axis=2) - base.min(axis=2))[inside].mean()) if inside.any() else FULL_CHROMA
    own_teeth = None
    if lip_gap_ratio(out_landmarks) > OPEN_GAP:
        teeth = open_mouth_parts(frame, out_landmarks)[0][y0:y1, x0:x1].astype(np.float32) / np.float32(255.0)
        if teeth.any():  # softened like the enlarged mask's edge, half a face pixel
            own_teeth = cv2.GaussianBlur(teeth, (0, 0), max(1.0, scale / 2))[..., None]
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
        moving_low,
        moving_detail,
        lower_lip,
        min(1.0, chroma / FULL_CHROMA),
        own_teeth,
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
        drawn = moved + mask(p) (saturation(255 E(colour)) - moved)
        frame = base + alpha (drawn - base)

    Before that, the opening is squeezed to ``MOUTH_OPENING`` of its height and the lower lip moved down by
    what remains of it (:func:`hold_lower_lip`); the photo's
    grain moves whole pixels (:mod:`speech2vid.frames.detail`); ``mask`` is ``E(mask)`` with its edge
    steepened to the output's pixels (:func:`steepen_mask`); the colour keeps the photo's saturation, and
    where the photo shows teeth of its own (a grin) the opening shows those instead of the drawn colour.
    """
    motion = hold_lower_lip(motion, canvas.lower_lip_px, opening=MOUTH_OPENING)
    size = (canvas.x1 - canvas.x0, canvas.y1 - canvas.y0)
    m = canvas.crop_to_roi
    mask = np.clip(motion[..., 2], 0.0, 1.0)
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PEAK_FACE_PX + 1, 2 * PEAK_FACE_PX + 1))
    small = np.dstack((motion[..., 0], motion[..., 1], mask, cv2.dilate(mask, ring)))
    fields = cv2.warpAffine(small, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    colour = cv2.warpAffine(
        np.ascontiguousarray(motion[..., 3:6]) * np.float32(255.0),
        m,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if canvas.colour_saturation < 1.0:
        grey = colour.mean(axis=2, keepdims=True)
        colour = grey + np.float32(canvas.colour_saturation) * (colour - grey)
    if canvas.own_teeth is not None:  # the upper teeth do not move with the jaw: the photo's stay where they are
        colour = colour + canvas.own_teeth * (canvas.base - colour)
    a = m[:, :2].astype(np.float32)
    fx, fy = fields[..., 0], fields[..., 1]
    map_x = canvas.grid_x + a[0, 0] * fx + a[0, 1] * fy
    map_y = canvas.grid_y + a[1, 0] * fx + a[1, 1] * fy
    moved = remap_layers(canvas.moving_low, canvas.moving_detail, map_x, map_y, MOVE_KERNEL)
    mask = steepen_mask(fields[..., 2], fields[..., 3], canvas.face_scale)[..., None]
    drawn: np.ndarray = moved.astype(np.float32)
    drawn += mask * (colour - drawn)
    region: np.ndarray = canvas.base + canvas.alpha * (drawn - canvas.base)
    return np.clip(region + 0.5, 0, 255).astype(np.uint8)


def steepen_mask(mask: np.ndarray, peak: np.ndarray, face_scale: float) -> np.ndarray:
    """The enlarged ``mask`` with its edge steepened by ``face_scale`` (output px per face px) about half its
    local ``peak``, which it keeps: ``peak * clip((mask / peak - 1/2) * face_scale + 1/2, 0, 1)``."""
    if face_scale <= 1.0:
        kept: np.ndarray = np.clip(mask, 0.0, 1.0)
        return kept
    peak = np.maximum(peak, np.float32(1e-3))
    ramp = np.clip((mask / peak - np.float32(0.5)) * np.float32(face_scale) + np.float32(0.5), 0.0, 1.0)
    out: np.ndarray = np.clip(peak * ramp, 0.0, 1.0)
    return out


# The photo's lips are apart (inner-lip gap / eye distance): neutral closed mouths measure 0.00-0.04 (dlib,
# the evaluation photos), grins with teeth 0.10-0.25. On closed lips the teeth test would take their
# highlights for teeth and smear them (measured: the mouth of such a photo then stopped opening).
OPEN_GAP = 0.06


# What inside an open mouth is not lip, relative to the lips' own colour (CIE Lab, OpenCV's 0..255 scales):
# teeth are much less red than the lips (a* down by at least TEETH_LESS_RED of the lips' redness, and by
# MIN_REDNESS_DROP at least) without being darker than the lips' spread allows; the cavity is much darker.
TEETH_LESS_RED = 0.5
MIN_REDNESS_DROP = 4.0
GREY_TEETH_LIGHTER = 0.5  # x the lips' lightness spread: teeth between lips without colour to tell them by
CAVITY_DARKER = 1.5  # x the lips' own lightness spread (10th to 90th percentile, at least 10)
INTERIOR_GROW = 0.015  # of the mouth's width: the found interior is grown by this, to take its soft rim too


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
    (an open mouth's teeth and cavity first filled from the lips around them): what
    :func:`rest_mouth_identity` registers, and what the warp head's motion moves at the output size."""
    if lip_gap_ratio(landmarks) > OPEN_GAP:  # teeth and a cavity can only show where the photo's lips are apart
        image = fill_open_mouth(image, landmarks)
    closed, _ = MouthAnimator(image, landmarks).render(REST_VISEMES)
    return closed


def fill_open_mouth(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``image`` with what an open mouth shows between the lips (teeth, the dark of the cavity) painted over
    from the lips around it, before the lips are closed.

    Why: closing a grin by moving its landmarks squeezes its teeth into slivers between the lips, and teeth
    that reach past the inner lip line (a wide smile's corners) stay where they were: grey fangs above and
    below the closed lips, which the lower lip then carries down as the mouth opens. OpenCV's inpainting
    (Telea) fills :func:`open_mouth_parts`' interior from the lips.
    """
    _, interior = open_mouth_parts(image, landmarks)
    return cv2.inpaint(image, interior, 3, cv2.INPAINT_TELEA) if interior.any() else image


def open_mouth_parts(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(teeth, interior): uint8 masks (0 or 255) of an open mouth's teeth, and of everything between its lips.

    The interior is the inner lip polygon (60-67) and every pixel inside the outer one (48-59) that is not
    lip-coloured, grown a little to take its soft rim: teeth are far less red than the lips' median (CIE Lab
    a*) and not much darker (between lips without redness, as a greyscale photo's: lighter), the cavity far
    darker.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    outer = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(outer, [np.round(pts[48:60] * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    inner = np.zeros_like(outer)
    cv2.fillPoly(inner, [np.round(pts[60:68] * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    if not outer.any():
        return outer, outer
    width = float(np.linalg.norm(pts[54] - pts[48]))
    grow = max(1, int(round(INTERIOR_GROW * width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    lips = (outer > 0) & (cv2.dilate(inner, disc) == 0)  # the lips themselves, for their colour
    if lips.sum() < 10:
        lips = outer > 0
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    light, red = lab[..., 0], lab[..., 1]
    lip_light, lip_red = float(np.median(light[lips])), float(np.median(red[lips]))
    spread = max(float(np.percentile(light[lips], 90) - np.percentile(light[lips], 10)), 10.0)
    teeth = (red < lip_red - max(TEETH_LESS_RED * (lip_red - 128.0), MIN_REDNESS_DROP)) & (
        light > lip_light - 0.25 * spread
    )
    if lip_red - 128.0 < MIN_REDNESS_DROP:  # lips with no redness (a greyscale photo): teeth are the lighter
        teeth = light > lip_light + GREY_TEETH_LIGHTER * spread
    cavity = light < lip_light - CAVITY_DARKER * spread
    within = cv2.dilate(outer, np.ones((3, 3), np.uint8))
    found = (((outer > 0) & (teeth | cavity)) | (inner > 0)).astype(np.uint8) * np.uint8(255)
    interior: np.ndarray = cv2.bitwise_and(cv2.dilate(found, disc), within)
    return ((outer > 0) & teeth).astype(np.uint8) * np.uint8(255), interior
