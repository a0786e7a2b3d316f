"""An avatar that looks alive in silence: blinks and a slow sway, drawn over the output frame.

Pure image functions (:func:`close_eyes`, :func:`sway`, :func:`animate`) and one small state machine
(:class:`IdleAnimator`) that says, frame by frame, how closed the eyes are and how far the head has
moved. The live loop and ``generate`` call them at the edge, on the engine's ``(109, 109, 3)`` frame,
before the sinks; the mouth's shape is never changed (the sway moves the whole face rigidly).

Motion
    *Envelope*: 0 while someone speaks, 1 in silence, ramping linearly over ``RAMP_FRAMES`` either way,
    so the change from speech to idle and back has no jump. The sway is the envelope times slow
    sinusoids of the frame time (a few pixels: ``SWAY_PX`` at 109 px, about 2.3x that at 256 px),
    continuous in time, and blinks are only started while the envelope is 1.
    *Blinks*: every 2-6 s of silence (uniform, seeded), ``BLINK_PROFILE`` eyelid closures over 4
    frames (160 ms). A blink that has started finishes.

Eyelids
    From the identity photo's 68 landmarks in output-frame coordinates (:func:`eye_boxes`): for an eye
    with upper lid at ``yu``, lower lid at ``yl``, the lid slides down by ``c (yl - yu)`` at the eye's
    centre, tapering to 0 at the corners: rows above the moved lid sample the skin above stretched
    down (the lid covers the eye), rows below it are unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from speech2vid.features.windows import FPS

RAMP_FRAMES = 4  # 160 ms from speech to full idle motion and back
BLINK_INTERVAL_S = (2.0, 6.0)  # seconds between blinks in silence, uniform
BLINK_PROFILE = (0.5, 1.0, 0.8, 0.3)  # eyelid closure per frame of a blink (160 ms)
SWAY_PX = (1.0, 0.6)  # x sway and y "breathing" amplitudes at the 109 px frame
SWAY_PERIOD_S = (5.3, 4.1)  # x sway, y breathing (about 15 breaths a minute)
TILT_DEG, TILT_PERIOD_S = 0.6, 7.3  # a slow roll about the face's centre
SKIN_ABOVE = 1.6  # eyelid skin stretched over the eye: this many eye heights above the upper lid

RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)  # iBUG 68 indices (faces/ibug68.py)


@dataclass(frozen=True)
class EyeBox:
    """One eye in frame coordinates (px): corners' x, the upper and lower lid's y at the centre."""

    x0: float
    x1: float
    upper: float
    lower: float


@dataclass(frozen=True)
class Pose:
    """What one frame gets: eyelid closure (0 open .. 1 shut), shift (px) and roll (degrees)."""

    closure: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    tilt_deg: float = 0.0

    def scaled(self, k: float) -> Pose:
        """The same pose for a frame ``k`` times the rendered face's size (the sway is in face pixels)."""
        return self if k == 1.0 else dataclasses.replace(self, dx=self.dx * k, dy=self.dy * k)

    @property
    def is_rest(self) -> bool:
        return self.closure == 0.0 and self.dx == 0.0 and self.dy == 0.0 and self.tilt_deg == 0.0


def eye_boxes(landmarks: np.ndarray) -> tuple[EyeBox, EyeBox]:
    """The two eyes from ``(68, 2)`` float (x, y) landmarks in the frame's coordinates."""
    boxes = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = np.asarray(landmarks, dtype=np.float64)[eye]  # corner, upper, upper, corner, lower, lower
        boxes.append(EyeBox(float(p[0, 0]), float(p[3, 0]), float(p[1:3, 1].mean()), float(p[4:6, 1].mean())))
    return boxes[0], boxes[1]


def photo_eyes(face: Any) -> tuple[EyeBox, EyeBox] | None:
    """The eyes of an aligned photo (``faces.AlignedFace``) in the generated frame's coordinates, or None for
    a photo given as an aligned crop (no landmarks: the idle face then sways without blinking)."""
    from speech2vid.faces import transform_points
    from speech2vid.model.io_spec import CROP_OFFSET

    if face.landmarks is None or face.transform is None:
        return None
    return eye_boxes(transform_points(face.transform, face.landmarks) - CROP_OFFSET)


def close_eyes(frame: np.ndarray, eyes: tuple[EyeBox, ...], closure: float) -> np.ndarray:
    """``frame`` (H, W, 3) float32 or uint8 with each eye's upper lid slid down by ``closure`` (0..1); a new
    array of the same type (a kiosk's photo stays uint8: a float copy of a 1080 px frame costs more than the lids)."""
    out = np.array(frame, copy=True)
    if closure <= 0:
        return out
    h, w = frame.shape[:2]
    for e in eyes:
        height = max(e.lower - e.upper, 1.0)
        half = 0.5 * (e.x1 - e.x0) * 1.15  # a little past the corners: the lid meets them smoothly
        cx = 0.5 * (e.x0 + e.x1)
        top = e.upper - SKIN_ABOVE * height - 1.0
        x_lo, x_hi = max(0, int(np.floor(cx - half))), min(w, int(np.ceil(cx + half)) + 1)
        y_lo, y_hi = max(0, int(np.floor(top))), min(h, int(np.ceil(e.lower)) + 2)
        if x_hi <= x_lo or y_hi <= y_lo:
            continue
        xs, ys = np.meshgrid(np.arange(x_lo, x_hi, dtype=np.float32), np.arange(y_lo, y_hi, dtype=np.float32))
        taper = np.clip(1.0 - ((xs - cx) / half) ** 2, 0.0, 1.0)  # 1 at the centre, 0 at and beyond the corners
        lid = e.upper + closure * height * taper  # where the upper lid is drawn
        stretched = top + (ys - top) * (e.upper - top) / np.maximum(lid - top, 1e-3)
        src_y = np.where((ys >= top) & (ys < lid), stretched, ys).astype(np.float32)
        roi = cv2.remap(out, xs, src_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[y_lo:y_hi, x_lo:x_hi] = roi
    return out


def sway(frame: np.ndarray, dx: float, dy: float, tilt_deg: float) -> np.ndarray:
    """``frame`` (H, W, 3) float32 or uint8 moved rigidly: rolled by ``tilt_deg`` about its centre, shifted
    (dx, dy) px; a new array of the same type."""
    if dx == 0.0 and dy == 0.0 and tilt_deg == 0.0:
        return np.array(frame, copy=True)
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), tilt_deg, 1.0)
    m[:, 2] += np.array([dx, dy])
    return cv2.warpAffine(np.asarray(frame), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def animate(frame: np.ndarray, pose: Pose, eyes: tuple[EyeBox, ...]) -> np.ndarray:
    """The frame with ``pose`` applied (eyelids, then the rigid sway); the same object when at rest."""
    if pose.is_rest:
        return frame
    return sway(close_eyes(frame, eyes, pose.closure), pose.dx, pose.dy, pose.tilt_deg)


class IdleAnimator:
    """Frame-by-frame idle motion: ``step(idle)`` once per 25 fps slot, in order, returns its :class:`Pose`."""

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng(seed)
        self.frame = 0  # slots stepped
        self.envelope = 0.0
        self._blink_at = self._next_blink(0)  # frame index of the next blink's start (counted in idle only)
        self._blink_pos = -1  # index into BLINK_PROFILE while blinking
        self.blinks: deque[int] = deque(maxlen=256)  # the first frames of the last blinks (tests, stats)
        self.blink_count = 0

    def _next_blink(self, now: int) -> int:
        return now + round(self._rng.uniform(*BLINK_INTERVAL_S) * FPS)

    def step(self, idle: bool) -> Pose:
        k = self.frame
        self.frame += 1
        self.envelope = min(1.0, self.envelope + 1 / RAMP_FRAMES) if idle else max(0.0, self.envelope - 1 / RAMP_FRAMES)
        closure = 0.0
        if self._blink_pos < 0 and self.envelope >= 1.0 and k >= self._blink_at:
            self._blink_pos = 0
            self.blinks.append(k)
            self.blink_count += 1
        if self.envelope < 1.0 and self._blink_pos < 0:
            self._blink_at = max(self._blink_at, self._next_blink(k))  # silence restarts the interval
        if self._blink_pos >= 0:
            closure = BLINK_PROFILE[self._blink_pos]
            self._blink_pos += 1
            if self._blink_pos == len(BLINK_PROFILE):
                self._blink_pos = -1
                self._blink_at = self._next_blink(k)
        if self.envelope == 0.0:
            return Pose(closure=closure)
        t = k / FPS
        e = self.envelope
        return Pose(
            closure=closure,
            dx=e * SWAY_PX[0] * np.sin(2 * np.pi * t / SWAY_PERIOD_S[0]),
            dy=e * SWAY_PX[1] * np.sin(2 * np.pi * t / SWAY_PERIOD_S[1]),
            tilt_deg=e * TILT_DEG * np.sin(2 * np.pi * t / TILT_PERIOD_S),
        )
