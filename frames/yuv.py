"""Frames in I420, the 4:2:0 planes H.264 encodes, with only a region changing from frame to frame.

An RGB frame handed to the encoder is converted by FFmpeg's swscale on every frame, at the full size;
for a talking photo only the lower face changes. :class:`I420Photo` converts the photo once, and each
frame converts just the changed region (OpenCV's converter: one pass, SIMD) and patches it into a copy
of the photo's planes. The region's bounds are even, so it covers whole 2x2 chroma blocks and the
result is exactly the conversion of the whole frame.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, H and W even -> (H * 3 / 2, W) uint8: the Y plane, then U and V at half size."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)


def frame_rgb(frame: object) -> np.ndarray:
    """A decoded PyAV video frame as (H, W, 3) uint8 RGB. The usual 4:2:0 frame of even size is converted by
    OpenCV (one SIMD pass over the planes), others by FFmpeg's swscale; both use BT.601's matrix."""
    f: Any = frame
    if f.format.name == "yuv420p" and f.width % 2 == 0 and f.height % 2 == 0:
        return np.asarray(cv2.cvtColor(f.to_ndarray(), cv2.COLOR_YUV2RGB_I420))
    return np.asarray(f.to_ndarray(format="rgb24"))


def _chroma(buf: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Views of the U and V planes, (h / 2, w / 2) each, of an I420 buffer of an (h, w) frame."""
    flat = buf.reshape(-1)
    q = (h // 2) * (w // 2)
    return flat[h * w : h * w + q].reshape(h // 2, w // 2), flat[h * w + q : h * w + 2 * q].reshape(h // 2, w // 2)


class I420Photo:
    """A photo's I420 planes, and frames made by writing a region ``[y0:y1, x0:x1]`` (even bounds) into them."""

    def __init__(self, photo: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
        h, w = photo.shape[:2]
        if h % 2 or w % 2 or x0 % 2 or y0 % 2 or x1 % 2 or y1 % 2:
            raise ValueError(f"I420 needs even sides and region bounds, got {w}x{h} and [{x0}:{x1}, {y0}:{y1}]")
        self.h, self.w = h, w
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.base = rgb_to_i420(photo)

    def frame(self, region: np.ndarray) -> np.ndarray:
        """The photo's planes with ``region`` ((y1 - y0, x1 - x0, 3) uint8 RGB) written in: a new buffer."""
        out = self.base.copy()
        rh, rw = self.y1 - self.y0, self.x1 - self.x0
        if region.shape[:2] != (rh, rw):
            raise ValueError(f"the region is {region.shape[1]}x{region.shape[0]}, the photo's is {rw}x{rh}")
        part = rgb_to_i420(region)
        out[self.y0 : self.y1, self.x0 : self.x1] = part[:rh]
        for plane, sub in zip(_chroma(out, self.h, self.w), _chroma(part, rh, rw)):
            plane[self.y0 // 2 : self.y1 // 2, self.x0 // 2 : self.x1 // 2] = sub
        return out
