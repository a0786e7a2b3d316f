"""A before/after strip: source frames on top, the re-dubbed frames below (pure image math)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

STRIP_HEIGHT = 180  # px per row
_GAP = 4  # px between tiles


def before_after_strip(pairs: Sequence[tuple[np.ndarray, np.ndarray]], height: int = STRIP_HEIGHT) -> np.ndarray:
    """``[(before, after), ...]`` (H, W, 3) uint8 RGB frames -> one (2 * height + gap, ..., 3) image.

    Each frame is scaled to ``height`` rows keeping its aspect; tiles are separated by white gaps.
    """
    if not pairs:
        raise ValueError("no frames for the strip")

    def fit(img: np.ndarray) -> np.ndarray:
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        return cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)

    rows = []
    for row in zip(*pairs):  # all "before" frames, then all "after" frames
        tiles = [fit(f) for f in row]
        gap = np.full((height, _GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1))
    band = np.full((_GAP, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], band, rows[1]], axis=0)
