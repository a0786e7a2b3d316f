"""A procedural face renderer: identity parameters + per-frame mouth, blink and head pose -> RGB frame.

The face is built on the 68-point iBUG scheme itself: the canonical template (``faces.template``),
reshaped by the identity (face width, jaw length, eye size and spacing, brows, nose, mouth, lips), is
the skeleton every part is drawn from (jaw line, brows, eyes, nose, lips). The mouth landmarks come
from the viseme parameters (:func:`mouth_shape`), the jaw line follows the jaw opening, and a blink
lowers the upper lids. Drawing happens in a 320x320 *face canvas* (the template scaled x2, offset 48),
lit by a directional light on an ellipsoid, then one similarity (scale, rotation, translation: the
head pose) places it on the identity's background, so registration has real work to do.
Ground-truth landmarks in frame pixels come with every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from speech2vid.faces.ibug68 import JAW, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from speech2vid.faces.mouth_model import (  # noqa: F401  (face_render's vocabulary, used by the corpora)
    BASE_SHAPE,
    CANVAS,
    MOUTH_CENTRE,
    MOUTH_WIDTH,
    OFFSET,
    blink_shape,
    mouth_shape,
)

SKIN_TONES = np.array(
    [
        (255, 224, 196),
        (250, 208, 170),
        (241, 194, 150),
        (234, 182, 130),
        (224, 172, 105),
        (205, 150, 100),
        (198, 134, 66),
        (170, 115, 70),
        (141, 85, 36),
        (115, 70, 40),
        (92, 56, 34),
        (255, 215, 190),
    ],
    dtype=np.float64,
)
HAIR_COLOURS = np.array(
    [
        (20, 17, 15),
        (45, 30, 20),
        (80, 55, 35),
        (120, 85, 50),
        (180, 140, 80),
        (220, 190, 120),
        (140, 60, 30),
        (160, 160, 160),
        (225, 225, 220),
        (40, 50, 110),
        (150, 40, 90),
    ],
    dtype=np.float64,
)
HAIR_STYLES = ("bald", "short", "fringe", "long", "curly")


@dataclass(frozen=True, eq=False)
class Identity:
    """Everything that makes one procedural face look like itself (drawn from a seed by :func:`random_identity`)."""

    shape: np.ndarray  # (68, 2) neutral landmarks in the face canvas (mouth closed)
    skin: np.ndarray  # RGB float
    lip: np.ndarray
    iris: np.ndarray
    hair: np.ndarray
    hair_style: str
    brow_thickness: float
    lip_thickness: float  # scale of the lips' height
    light: np.ndarray  # unit 3-vector towards the light
    ambient: float
    glasses: bool
    glasses_colour: np.ndarray
    beard: float  # 0 = none, else the beard's opacity
    earrings: bool
    background: np.ndarray  # (H, W, 3) uint8 for the output frame size
    placement: tuple[float, float, float, float]  # scale, rotation (rad), centre x, centre y in the frame
    motion: np.ndarray  # (3, 3) amplitudes, frequencies (Hz), phases of rotation / x / y head motion
    articulation: float  # the speaker's jaw-opening scale


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    blurred = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigma))
    normalised: np.ndarray = blurred / (blurred.std() + 1e-6)
    return normalised


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft indoor-ish background: a gradient, blurred shapes and fine texture. (size, size, 3) uint8."""
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    g = math.cos(angle) * xx + math.sin(angle) * yy
    g = (g - g.min()) / (g.max() - g.min() + 1e-6)
    img = (c0[None, None, :] * (1 - g[..., None]) + c1[None, None, :] * g[..., None]).astype(np.float32)
    for _ in range(rng.integers(2, 7)):
        colour = rng.uniform(0, 255, 3).tolist()
        layer = img.copy()
        if rng.random() < 0.5:
            p0 = rng.uniform(-0.2, 1.0, 2) * size
            p1 = p0 + rng.uniform(0.1, 0.6, 2) * size
            cv2.rectangle(layer, tuple(int(v) for v in p0), tuple(int(v) for v in p1), colour, -1)
        else:
            cv2.circle(
                layer,
                tuple(int(v) for v in rng.uniform(0, 1, 2) * size),
                int(rng.uniform(0.05, 0.3) * size),
                colour,
                -1,
            )
        alpha = rng.uniform(0.3, 0.9)
        img = alpha * layer + (1 - alpha) * img
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 6.0))
    img += rng.uniform(2, 10) * _smooth_noise(rng, (size, size), 1.0)[..., None]
    background: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    return background


def random_identity(seed: int, frame_size: int = 256) -> Identity:
    """A reproducible random identity for ``seed``."""
    rng = np.random.default_rng(seed)
    s = BASE_SHAPE.copy()
    cx = s[27:31, 0].mean()
    # Face width and jaw length.
    s[list(JAW), 0] = cx + (s[list(JAW), 0] - cx) * rng.uniform(0.88, 1.1)
    nose_base_y = s[33, 1]
    lower = list(range(3, 14))
    s[lower, 1] = nose_base_y + (s[lower, 1] - nose_base_y) * rng.uniform(0.9, 1.1)
    # Eyes: size and spacing; brows: height.
    eye_scale, spacing, brow_lift = rng.uniform(0.85, 1.2), rng.uniform(-4, 4), rng.uniform(-4, 5)
    for eye, sign in ((list(RIGHT_EYE), -1), (list(LEFT_EYE), 1)):
        c = s[eye].mean(axis=0)
        s[eye] = c + (s[eye] - c) * eye_scale + [sign * spacing, 0]
    for brow, sign in ((list(RIGHT_BROW), -1), (list(LEFT_BROW), 1)):
        s[brow] += [sign * spacing, -brow_lift]
    # Nose length and width.
    nose = list(range(27, 36))
    top = s[27].copy()
    s[nose, 1] = top[1] + (s[nose, 1] - top[1]) * rng.uniform(0.92, 1.08)
    base = list(range(31, 36))
    s[base, 0] = cx + (s[base, 0] - cx) * rng.uniform(0.85, 1.2)
    # Mouth height follows the nose; its width varies.
    mouth = list(range(48, 68))
    s[mouth, 1] += s[33, 1] - BASE_SHAPE[33, 1]
    s[mouth, 0] = cx + (s[mouth, 0] - cx) * rng.uniform(0.88, 1.12)
    s += rng.normal(0, 0.6, s.shape)
    skin_tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.05, 3)
    lip = skin_tone * np.array([0.85, 0.55, 0.55]) * rng.uniform(0.8, 1.0) + rng.uniform(-10, 10, 3)
    if rng.random() < 0.25:  # lipstick
        lip = np.array([rng.uniform(120, 200), rng.uniform(10, 50), rng.uniform(30, 80)])
    light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.2), 1.0])
    scale = rng.uniform(0.72, 0.95) * frame_size / 256
    margin = 0.12 * frame_size
    placement = (
        scale,
        rng.uniform(-0.2, 0.2),
        frame_size / 2 + rng.uniform(-margin, margin),
        frame_size / 2 + rng.uniform(-margin, margin) * 0.6,
    )
    motion = np.stack(
        [
            rng.uniform(0.01, 0.05, 3) * np.array([1.0, 60.0, 60.0]),  # amplitude: rad, px, px
            rng.uniform(0.1, 0.6, 3),  # Hz
            rng.uniform(0, 2 * math.pi, 3),
        ]
    )
    return Identity(
        shape=s,
        skin=np.clip(skin_tone, 0, 255),
        lip=np.clip(lip, 0, 255),
        iris=rng.choice([[60, 40, 25], [90, 60, 30], [50, 90, 130], [70, 110, 70], [40, 30, 25]]).astype(np.float64),
        hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        hair_style=str(rng.choice(HAIR_STYLES)),
        brow_thickness=rng.uniform(2.5, 6.0),
        lip_thickness=rng.uniform(0.75, 1.35),
        light=light / np.linalg.norm(light),
        ambient=rng.uniform(0.45, 0.65),
        glasses=bool(rng.random() < 0.2),
        glasses_colour=rng.uniform(0, 120, 3),
        beard=float(rng.uniform(0.5, 0.85)) if rng.random() < 0.15 else 0.0,
        earrings=bool(rng.random() < 0.2),
        background=random_background(rng, frame_size),
        placement=placement,
        motion=motion,
        articulation=rng.uniform(0.85, 1.2),
    )


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)  # 4 fractional bits


def _fill(img: np.ndarray, points: np.ndarray, colour: np.ndarray | tuple[float, ...]) -> None:
    cv2.fillPoly(img, [_pts(points)], tuple(float(c) for c in colour), cv2.LINE_AA, shift=4)


def _line(
    img: np.ndarray, points: np.ndarray, colour: np.ndarray | tuple[float, ...], thickness: int, closed: bool = False
) -> None:
    cv2.polylines(img, [_pts(points)], closed, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, shift=4)


def _ellipse_points(centre: np.ndarray, axes: tuple[float, float], start: float, end: float, n: int = 24) -> np.ndarray:
    a = np.linspace(math.radians(start), math.radians(end), n)
    return np.stack([centre[0] + axes[0] * np.cos(a), centre[1] + axes[1] * np.sin(a)], axis=1)


class FaceRenderer:
    """Renders frames of one identity; the parts that never move are drawn once."""

    def __init__(self, identity: Identity):
        self.id = identity
        s = identity.shape
        self.face_centre = np.array([s[27:31, 0].mean(), (s[19, 1] + s[8, 1]) / 2 - 8])
        jaw_half = (s[16, 0] - s[0, 0]) / 2
        self.head_axes = (jaw_half * 1.02, (s[8, 1] - s[19, 1]) * 0.72)
        self.lighting = self._lighting_map()
        self.skin_lit = np.clip(identity.skin[None, None, :] * self.lighting[..., None], 0, 255).astype(np.float32)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _lighting_map(self) -> np.ndarray:
        cx, cy = self.face_centre
        rx, ry = self.head_axes[0] * 1.05, self.head_axes[1] * 1.35
        yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
        nx, ny = (xx - cx) / rx, (yy - cy) / ry
        nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0.02, 1))
        norm = np.sqrt(nx**2 + ny**2 + nz**2)
        l = self.id.light
        diffuse = np.clip((nx * l[0] + ny * l[1] + nz * l[2]) / norm, 0, 1)
        lighting: np.ndarray = (self.id.ambient + (1.05 - self.id.ambient) * diffuse).astype(np.float32)
        return lighting

    def _head_outline(self, s: np.ndarray) -> np.ndarray:
        """Jaw line 0..16 then the skull over the brows (back to point 0)."""
        top = _ellipse_points(
            np.array([(s[0, 0] + s[16, 0]) / 2, (s[0, 1] + s[16, 1]) / 2]),
            ((s[16, 0] - s[0, 0]) / 2 * 1.01, (s[0, 1] - s[19, 1]) * 2.6 + 10),
            -5,
            -175,
        )
        return np.concatenate([s[list(JAW)], top])

    def _static(self, blink: float) -> tuple[np.ndarray, np.ndarray]:
        """Canvas RGB and alpha of everything but the lower face (jaw, beard, mouth), cached per blink state.

        Only the mouth and the jaw move with speech, so the rest is drawn once per (rare) eyelid position.
        """
        key = round(blink * 20)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        idn = self.id
        s = blink_shape(mouth_shape(idn.shape, np.zeros(4)), key / 20)
        rgb = np.zeros((CANVAS, CANVAS, 3), np.float32)
        alpha = np.zeros((CANVAS, CANVAS), np.float32)
        head = self._head_outline(s)
        # Hair behind the head (long and curly styles), then the neck.
        if idn.hair_style in ("long", "curly"):
            c = head.mean(axis=0)
            axes = (self.head_axes[0] * (1.35 if idn.hair_style == "curly" else 1.2), self.head_axes[1] * 1.45)
            back = _ellipse_points(c + [0, 12 if idn.hair_style == "long" else -10], axes, 0, 360, 48)
            if idn.hair_style == "long":
                back = np.concatenate([back[back[:, 1] < c[1]], [[c[0] + axes[0], CANVAS], [c[0] - axes[0], CANVAS]]])
            _fill(rgb, back, idn.hair * 0.8)
            _fill(alpha, back, (1.0,))
        neck_w = (s[12, 0] - s[4, 0]) * 0.42
        neck = np.array(
            [
                [s[8, 0] - neck_w, s[5, 1]],
                [s[8, 0] + neck_w, s[11, 1]],
                [s[8, 0] + neck_w * 1.1, CANVAS],
                [s[8, 0] - neck_w * 1.1, CANVAS],
            ]
        )
        _fill(rgb, neck, idn.skin * idn.ambient * 0.9)
        _fill(alpha, neck, (1.0,))
        shirt_y = s[8, 1] + 45
        shirt = np.array(
            [[s[8, 0] - 170, CANVAS], [s[8, 0] - 60, shirt_y], [s[8, 0] + 60, shirt_y], [s[8, 0] + 170, CANVAS]]
        )
        _fill(rgb, shirt, idn.glasses_colour * 1.5 + 30)
        _fill(alpha, shirt, (1.0,))
        for j, sign in ((2, -1), (14, 1)):  # ears
            centre = s[j] + [sign * 4, -16]
            ear = _ellipse_points(centre, (9, 20), 0, 360, 20)
            _fill(rgb, ear, idn.skin * (idn.ambient + 0.1))
            _fill(alpha, ear, (1.0,))
            if idn.earrings:
                cv2.circle(rgb, (int(centre[0]), int(centre[1] + 22)), 3, (230, 200, 90), -1, cv2.LINE_AA)
        # Skin: the head, lit.
        mask = np.zeros((CANVAS, CANVAS), np.float32)
        _fill(mask, head, (1.0,))
        mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), 1.2), np.float32)
        rgb += (self.skin_lit - rgb) * mask[..., None]
        np.maximum(alpha, mask, out=alpha)
        self._draw_hair(rgb, alpha, s, head)
        self._draw_eyes(rgb, s, key / 20)
        self._draw_brows(rgb, s)
        self._draw_nose(rgb, s)
        if idn.glasses:
            for eye in (list(RIGHT_EYE), list(LEFT_EYE)):
                c = s[eye].mean(axis=0)
                w = (s[eye[3], 0] - s[eye[0], 0]) * 0.85
                cv2.ellipse(
                    rgb,
                    (int(c[0]), int(c[1] + 1)),
                    (int(w), int(w * 0.75)),
                    0,
                    0,
                    360,
                    tuple(float(v) for v in idn.glasses_colour),
                    2,
                    cv2.LINE_AA,
                )
            _line(rgb, np.array([s[39] + [4, -3], s[27] + [0, 4], s[42] + [-4, -3]]), idn.glasses_colour, 2)
        self._cache[key] = (rgb, alpha)
        return rgb, alpha

    def draw_face(self, visemes: np.ndarray, blink: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Face canvas RGB float32, its alpha (0..1) and the 68 landmarks in canvas pixels."""
        idn = self.id
        s = blink_shape(mouth_shape(idn.shape, visemes, idn.lip_thickness), round(blink * 20) / 20)
        static_rgb, static_alpha = self._static(blink)
        rgb, alpha = static_rgb.copy(), static_alpha.copy()
        # The lower face (below the nose), with the chin where the jaw opening puts it.
        y_top = s[33, 1] + 5
        lower = np.concatenate([s[2:15], [[s[14, 0], y_top], [s[2, 0], y_top]]])
        x0, y0 = np.floor(lower.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(lower.max(axis=0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, CANVAS), min(y1, CANVAS)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        _fill(mask, lower - [x0, y0], (1.0,))
        roi = rgb[y0:y1, x0:x1]
        roi += (self.skin_lit[y0:y1, x0:x1] - roi) * mask[..., None]
        np.maximum(alpha[y0:y1, x0:x1], mask, out=alpha[y0:y1, x0:x1])
        # Jaw-line shadow for a 3D look (helps the HOG detector find the chin).
        _line(rgb, s[list(JAW)][2:15], idn.skin * idn.ambient * 0.7, 2)
        if idn.beard:
            beard = np.concatenate([s[3:14], s[[54, 64]] + [6, -4], s[[35, 33, 31]] + [0, 6], s[[60, 48]] + [-6, -4]])
            layer = roi.copy()
            _fill(layer, beard - [x0, y0], idn.hair)
            roi[:] = idn.beard * layer + (1 - idn.beard) * roi
        self._draw_mouth(rgb, s, visemes)
        return rgb, alpha, s

    def _draw_hair(self, rgb: np.ndarray, alpha: np.ndarray, s: np.ndarray, head: np.ndarray) -> None:
        idn = self.id
        if idn.hair_style == "bald":
            return
        brow_y = min(s[19, 1], s[24, 1])
        line_y = brow_y - (14 if idn.hair_style == "fringe" else 30)
        cap = head[head[:, 1] < line_y + 25]
        left, right = s[0] + [-4, -20], s[16] + [4, -20]
        poly = np.concatenate([[left], cap[::-1] if cap[0, 0] > cap[-1, 0] else cap, [right]])
        poly = np.concatenate([poly, [[right[0] - 10, line_y], [s[27, 0], line_y - 6], [left[0] + 10, line_y]]])
        poly = poly.copy()
        poly[:, 1] -= 4
        if idn.hair_style == "curly":
            poly = np.concatenate(
                [
                    poly,
                    _ellipse_points(
                        head.mean(axis=0) - [0, 30], (self.head_axes[0] * 1.3, self.head_axes[1] * 1.1), 180, 360
                    ),
                ]
            )
        _fill(rgb, poly, idn.hair)
        _fill(alpha, poly, (1.0,))

    def _draw_eyes(self, rgb: np.ndarray, s: np.ndarray, blink: float) -> None:
        idn = self.id
        for eye in (list(RIGHT_EYE), list(LEFT_EYE)):
            pts = s[eye]
            c = pts.mean(axis=0)
            # Socket shadow above the eye.
            shade = rgb.copy()
            cv2.ellipse(
                shade,
                (int(c[0]), int(c[1] - 4)),
                (int((pts[3, 0] - pts[0, 0]) * 0.75), 9),
                0,
                0,
                360,
                tuple(float(v) for v in idn.skin * idn.ambient * 0.75),
                -1,
                cv2.LINE_AA,
            )
            shade = cv2.GaussianBlur(shade, (0, 0), 3)
            rgb[:] = 0.55 * shade + 0.45 * rgb
            if blink < 0.9:
                eye_mask = np.zeros(rgb.shape[:2], np.uint8)
                _fill(eye_mask, pts, (255,))
                white = rgb.copy()
                _fill(white, pts, (235, 232, 226))
                r = (pts[3, 0] - pts[0, 0]) * 0.24
                cv2.circle(
                    white,
                    (int(c[0] * 16), int(c[1] * 16)),
                    int(r * 16),
                    tuple(float(v) for v in idn.iris),
                    -1,
                    cv2.LINE_AA,
                    4,
                )
                cv2.circle(
                    white, (int(c[0] * 16), int(c[1] * 16)), int(r * 0.45 * 16), (10, 10, 10), -1, cv2.LINE_AA, 4
                )
                cv2.circle(
                    white,
                    (int((c[0] + r * 0.3) * 16), int((c[1] - r * 0.3) * 16)),
                    int(r * 0.2 * 16),
                    (250, 250, 250),
                    -1,
                    cv2.LINE_AA,
                    4,
                )
                m = (eye_mask > 0)[..., None]
                rgb[:] = np.where(m, white, rgb)
            _line(rgb, pts[[0, 1, 2, 3]], (25, 20, 20), 2)
            _line(rgb, pts[[3, 4, 5, 0]], idn.skin * idn.ambient * 0.6, 1)

    def _draw_brows(self, rgb: np.ndarray, s: np.ndarray) -> None:
        colour = self.id.hair * 0.7 if self.id.hair_style != "bald" else np.array([60, 45, 35])
        if self.id.hair.mean() > 170:
            colour = colour * 0.7
        t = self.id.brow_thickness
        for brow in (list(RIGHT_BROW), list(LEFT_BROW)):
            pts = s[brow]
            taper = np.array([0.6, 1.0, 1.0, 0.9, 0.6]) if brow[0] == 17 else np.array([0.6, 0.9, 1.0, 1.0, 0.6])
            poly = np.concatenate(
                [pts - np.stack([np.zeros(5), t * taper], 1), (pts + np.stack([np.zeros(5), t * taper * 0.6], 1))[::-1]]
            )
            _fill(rgb, poly, colour)

    def _draw_nose(self, rgb: np.ndarray, s: np.ndarray) -> None:
        idn = self.id
        dark = idn.skin * idn.ambient * 0.65
        side = -1 if idn.light[0] > 0 else 1  # the shadowed side of the bridge
        layer = rgb.copy()
        _line(layer, s[27:31] + [side * 7, 0], dark, 3)
        _line(layer, s[31:36] + [0, 1], dark, 2)
        layer = cv2.GaussianBlur(layer, (0, 0), 1.5)
        rgb[:] = layer
        for j in (32, 34):
            cv2.ellipse(
                rgb,
                (int(s[j, 0]), int(s[j, 1] - 1)),
                (4, 2),
                0,
                0,
                360,
                tuple(float(v) for v in idn.skin * 0.35),
                -1,
                cv2.LINE_AA,
            )
        cv2.circle(
            rgb,
            (int(s[30, 0] - side * 2), int(s[30, 1])),
            3,
            tuple(float(v) for v in np.minimum(idn.skin * 1.12, 255)),
            -1,
            cv2.LINE_AA,
        )

    def _draw_mouth(self, canvas: np.ndarray, s: np.ndarray, visemes: np.ndarray) -> None:
        idn = self.id
        x0, y0 = np.floor(s[48:68].min(axis=0)).astype(int) - 3
        x1, y1 = np.ceil(s[48:68].max(axis=0)).astype(int) + 4
        rgb = canvas[y0:y1, x0:x1]
        s = s - [x0, y0]
        outer, inner = s[48:60], s[60:68]
        _fill(rgb, outer, idn.lip)
        gap = float(np.mean(s[[67, 66, 65], 1] - s[[61, 62, 63], 1]))
        if gap > 0.8:
            _fill(rgb, inner, (45, 12, 15))
            # Tongue low in the mouth, then the teeth: upper under the upper lip, lower above the lower lip.
            cv2.ellipse(
                rgb,
                (int(s[66, 0]), int(s[66, 1] - gap * 0.15)),
                (int((s[64, 0] - s[60, 0]) * 0.32), max(1, int(gap * 0.3))),
                0,
                180,
                360,
                (150, 50, 60),
                -1,
                cv2.LINE_AA,
            )
            mask = np.zeros(rgb.shape[:2], np.uint8)
            _fill(mask, inner, (255,))
            teeth = rgb.copy()
            top_h = min(0.45 * gap, 1.0 + 3.5 * float(visemes[3]))
            upper = np.concatenate([s[[60, 61, 62, 63, 64]], s[[64, 63, 62, 61, 60]] + [0, top_h]])
            _fill(teeth, upper, (238, 236, 228))
            if gap > 10:
                lower = np.concatenate([s[[64, 65, 66, 67, 60]], s[[60, 67, 66, 65, 64]] - [0, 2.5]])
                _fill(teeth, lower, (225, 222, 212))
            rgb[:] = np.where((mask > 0)[..., None], teeth, rgb)
        # Lip line and a darker lower edge of the upper lip.
        _line(rgb, s[[60, 61, 62, 63, 64]], idn.lip * 0.45, 1)
        _line(rgb, s[[48, 49, 50, 51, 52, 53, 54]], idn.lip * 0.8, 1)

    def head_pose(self, t: float) -> np.ndarray:
        """(2, 3) face canvas -> frame similarity at time ``t`` (placement plus smooth head motion)."""
        scale, rot, fx, fy = self.id.placement
        amp, freq, phase = self.id.motion
        wob = amp * np.sin(2 * math.pi * freq * t + phase)
        angle = rot + wob[0]
        c = self.face_centre
        a, b = scale * math.cos(angle), scale * math.sin(angle)
        tx = fx + wob[1] - (a * c[0] - b * c[1])
        ty = fy + wob[2] - (b * c[0] + a * c[1])
        return np.array([[a, -b, tx], [b, a, ty]])

    def render(self, visemes: np.ndarray, blink: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        """One frame: (H, W, 3) uint8 RGB and the 68 ground-truth landmarks in frame pixels."""
        rgb, alpha, s = self.draw_face(visemes, blink)
        bg = self.id.background
        size = (bg.shape[1], bg.shape[0])
        m = self.head_pose(t)
        face = cv2.warpAffine(rgb, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
        # warpAffine of unpremultiplied colour darkens edges; composite with the warped alpha.
        frame = face + (1.0 - a) * bg.astype(np.float32)
        frame = cv2.GaussianBlur(frame, (0, 0), 0.6)
        points = s @ m[:, :2].T + m[:, 2]
        return np.clip(frame, 0, 255).astype(np.uint8), points


def blink_track(n_frames: int, rng: np.random.Generator, fps: int = 25) -> np.ndarray:
    """Eye closure 0..1 per frame: blinks every 2-6 s, each about 200 ms."""
    closure = np.zeros(n_frames, np.float32)
    profile = np.array([0.45, 0.95, 1.0, 0.6, 0.25], np.float32)
    k = int(rng.uniform(0.5, 3.0) * fps)
    while k < n_frames:
        end = min(n_frames, k + profile.size)
        closure[k:end] = profile[: end - k]
        k += int(rng.uniform(2.0, 6.0) * fps)
    return closure
