"""A synthetic "talking head" source video for re-dubbing tests and docs (no download needed).

The bundled sample face is cut out with a soft ellipse, placed on a textured background and filmed by
a slowly panning and zooming camera (one affine warp per frame). Chosen frames can be left blank
(a uniform grey, no face) to exercise the pass-through path. Frames are made and written one at a
time, so a long video costs no more memory than a short one::

    python3 -m speech2vid.cli.synthetic_video talking_head.mp4 --frames 75 --blank 50-54
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from speech2vid.assets import sample_face

CANVAS = (400, 300)  # (w, h) of the scene the camera films
FACE_SIDE = 270  # px, the sample photo's size in the scene
BLANK_GREY = 128


def scene(seed: int = 0) -> np.ndarray:
    """(300, 400, 3) uint8 RGB: a textured background with the sample face in the middle."""
    w, h = CANVAS
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 6)
    ramp = np.linspace(40, 200, w, dtype=np.float32)[None, :, None]
    bg = 0.5 * ramp + 1.5 * (noise - noise.mean()) + 60
    bg[::25] = 230  # a grid so that camera motion is easy to see and to check
    bg[:, ::25] = 230
    bgr = cv2.imread(str(sample_face()))
    if bgr is None:
        raise FileNotFoundError(f"cannot read the bundled sample face {sample_face()}")
    face = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    ellipse = np.zeros((FACE_SIDE, FACE_SIDE), np.float32)
    cv2.ellipse(
        ellipse, (FACE_SIDE // 2, FACE_SIDE * 9 // 20), (FACE_SIDE * 9 // 25, FACE_SIDE * 12 // 25), 0, 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(ellipse, (0, 0), 5)[..., None]
    x0, y0 = (w - FACE_SIDE) // 2, (h - FACE_SIDE) // 2 + 10
    roi = bg[y0 : y0 + FACE_SIDE, x0 : x0 + FACE_SIDE]
    bg[y0 : y0 + FACE_SIDE, x0 : x0 + FACE_SIDE] = mask * face.astype(np.float32) + (1 - mask) * roi
    frame: np.ndarray = np.clip(bg, 0, 255).astype(np.uint8)
    return frame


def camera(t: float, size: tuple[int, int]) -> np.ndarray:
    """(2, 3) scene -> frame affine at time ``t`` s: a slow pan and a gentle zoom about the centre."""
    w, h = size
    zoom = 0.95 * size[0] / CANVAS[0] * (1.0 + 0.04 * math.sin(2 * math.pi * t / 2.0))
    cx = CANVAS[0] / 2 + 12 * math.sin(2 * math.pi * t / 2.5)
    cy = CANVAS[1] / 2 + 5 * math.sin(2 * math.pi * t / 3.0)
    return np.array([[zoom, 0.0, w / 2 - zoom * cx], [0.0, zoom, h / 2 - zoom * cy]])


def source_frames(
    n: int, fps: int = 25, size: tuple[int, int] = (320, 240), blank: Iterable[int] = ()
) -> Iterator[np.ndarray]:
    """Yield ``n`` (h, w, 3) uint8 RGB frames of the filmed scene; indices in ``blank`` are plain grey."""
    still, blank = scene(), set(blank)
    for i in range(n):
        if i in blank:
            yield np.full((size[1], size[0], 3), BLANK_GREY, np.uint8)
        else:
            yield np.asarray(
                cv2.warpAffine(
                    still, camera(i / fps, size), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                ),
                dtype=np.uint8,
            )


def write_source_video(
    path: str | Path,
    n: int = 50,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    blank: Iterable[int] = (),
    crf: int = 12,
) -> Path:
    """Write :func:`source_frames` as an H.264 MP4 (no audio); returns the path."""
    from speech2vid.sinks.video_file import VideoFileSink

    with VideoFileSink(path, fps=fps, size=size, crf=crf, preset="veryfast") as sink:
        for frame in source_frames(n, fps, size, blank):
            sink.write(frame)
    return Path(path)
