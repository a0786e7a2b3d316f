"""Shot boundaries from colour-histogram differences between consecutive frames.

Each frame gets a normalised hue-saturation-value histogram (8 x 4 x 4 bins, on a 64x64 thumbnail so
the cost does not depend on the video's resolution). A cut is where the Bhattacharyya distance between
two consecutive histograms exceeds ``threshold``: a hard cut changes the whole colour distribution,
while motion, talking and lighting flicker inside a shot barely change it.
"""

from __future__ import annotations

import cv2
import numpy as np

HIST_BINS = (8, 4, 4)
THUMB = 64


def colour_histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised HSV histogram of a frame, float32 ``(128,)`` summing to 1."""
    thumb = cv2.resize(rgb, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def histogram_distances(hists: np.ndarray) -> np.ndarray:
    """Bhattacharyya distance between each frame's histogram and the previous one: ``(n - 1,)`` in [0, 1]."""
    h = np.asarray(hists, dtype=np.float64)
    if len(h) < 2:
        return np.zeros(0)
    bc = np.sqrt(h[1:] * h[:-1]).sum(axis=1)
    dist: np.ndarray = np.sqrt(np.clip(1.0 - bc, 0.0, 1.0))
    return dist


def shot_boundaries(hists: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Shots as ``[start, end)`` frame ranges covering all frames; a new shot starts after each cut."""
    n = len(hists)
    if n == 0:
        return []
    cuts = [int(i) + 1 for i in np.flatnonzero(histogram_distances(hists) > threshold)]
    starts = [0, *cuts]
    ends = [*cuts, n]
    return list(zip(starts, ends))
