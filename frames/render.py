"""Network output -> displayable video frames (pure functions on RGB arrays)."""

from __future__ import annotations

import cv2
import numpy as np


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8, rounded; a uint8 frame is returned as it is."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)


def upscale(frame: np.ndarray, size: int) -> np.ndarray:
    """Square RGB uint8 frame -> (size, size, 3); Lanczos keeps the lips sharp when enlarging."""
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    interp = cv2.INTER_LANCZOS4 if size > frame.shape[0] else cv2.INTER_AREA
    return cv2.resize(frame, (size, size), interpolation=interp)


def watermark(frame: np.ndarray, text: str) -> np.ndarray:
    """A banner across the top of the frame that cannot be missed (e.g. untrained weights)."""
    out = frame.copy()
    h, w = out.shape[:2]
    band = max(12, h // 10)
    out[:band] = (out[:band].astype(np.uint16) // 3).astype(np.uint8)  # darken the band behind the text
    scale = band / 40.0
    thickness = max(1, band // 14)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    while tw > w - 4 and scale > 0.1:  # shrink long text to fit (the stroke width does not scale, so repeat)
        scale *= 0.97 * (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    org = ((w - tw) // 2, (band + th) // 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 60, 60), thickness, cv2.LINE_AA)
    return out


def video_frame(frame: np.ndarray, size: int, label: str | None = None) -> np.ndarray:
    """Engine output (109, 109, 3) float in [0, 1] -> video frame (size, size, 3) uint8, labelled."""
    out = upscale(to_uint8(frame), size)
    return watermark(out, label) if label else out
