"""Kiosk composition: the avatar scaled onto a background, and the live overlay (pure functions on RGB)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from speech2vid.errors import UserError


def background(size: tuple[int, int], colour: tuple[int, int, int], image: str | None = None) -> np.ndarray:
    """(height, width, 3) uint8 RGB canvas for a ``size = (width, height)`` window.

    ``image`` (a file) is scaled to cover the window and centre-cropped; otherwise a flat ``colour``.
    """
    w, h = size
    if image is None:
        return np.full((h, w, 3), colour, dtype=np.uint8)
    bgr = cv2.imread(str(Path(image).expanduser()), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"cannot read background image {image}: give a PNG or JPEG file (live.background_image)")
    scale = max(w / bgr.shape[1], h / bgr.shape[0])
    big = cv2.resize(
        bgr,
        (max(w, round(bgr.shape[1] * scale)), max(h, round(bgr.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(big[y : y + h, x : x + w, ::-1])


def avatar_side(size: tuple[int, int], scale: float) -> int:
    """Side in px of the square avatar in a ``(width, height)`` window."""
    return max(16, int(min(size) * scale))


def compose(canvas: np.ndarray, avatar: np.ndarray) -> np.ndarray:
    """The square RGB ``avatar`` (already at its display size) pasted centred onto a copy of ``canvas``."""
    out = canvas.copy()
    s = avatar.shape[0]
    y, x = (out.shape[0] - s) // 2, (out.shape[1] - s) // 2
    out[y : y + s, x : x + s] = avatar
    return out


def overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """Small status text on a darkened band in the bottom-left corner, drawn in place on ``frame`` (also returned)."""
    scale = max(0.4, frame.shape[0] / 1000)
    step = int(22 * scale / 0.5)
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for line in lines) + 16
    top = max(0, frame.shape[0] - step * len(lines) - 8)
    band = frame[top:, : min(width, frame.shape[1])]
    band //= 3  # darkened rather than outlined text: Hershey glyphs advance with thickness, so outlines misalign
    y = frame.shape[0] - 8 - step * (len(lines) - 1)
    for line in lines:
        cv2.putText(frame, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (240, 240, 240), 1, cv2.LINE_AA)
        y += step
    return frame
