"""Resampling that keeps a photo's grain: the smooth part of an image moves with sub-pixel precision, its
finest detail moves whole pixels.

Why: every interpolating kernel (bilinear, bicubic, Lanczos) averages neighbouring pixels at a fractional
offset, and at half a pixel it removes the finest detail almost entirely: skin pores, stubble, a low-light
photo's noise. A warp that moves a lower face by fractions of a pixel then looks smoothed next to the
untouched eyes (measured on a low-light photo: the moved lower face kept 0.42 of the photo's variance of the
Laplacian with Lanczos alone). Split the image into a low band (a Gaussian blur of ``DETAIL_SIGMA`` px) and
the detail (the rest), move the low band with the interpolating kernel and the detail with the nearest
pixel: the detail keeps its strength, and the sum is exact wherever the map is the identity. (Where an
offset is near half a pixel the two bands land up to half a pixel apart and partly cancel; over a warp's
offsets, which take every fraction, grain keeps 0.98 of its Laplacian variance against Lanczos' 0.70:
tests/test_detail.py.)
"""

from __future__ import annotations

import cv2
import numpy as np

DETAIL_SIGMA = 1.0  # px: what a fractional-pixel warp would blur away lies below this scale


def split_detail(image: np.ndarray, sigma: float = DETAIL_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(low, detail) of a uint8 image: ``low`` uint8, ``detail`` int16, ``low + detail == image`` exactly."""
    low = cv2.GaussianBlur(image, (0, 0), sigma)
    return low, image.astype(np.int16) - low.astype(np.int16)


def remap_layers(
    low: np.ndarray,
    detail: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    kernel: int = cv2.INTER_LANCZOS4,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """``cv2.remap`` of the image split by :func:`split_detail` (``remap_layers(*split_detail(image), ...)``):
    uint8, the low band through ``kernel``, the detail through the nearest pixel."""
    smooth = cv2.remap(low, map_x, map_y, kernel, borderMode=border).astype(np.int16)
    fine = cv2.remap(detail, map_x, map_y, cv2.INTER_NEAREST, borderMode=border)
    out: np.ndarray = np.clip(smooth + fine, 0, 255).astype(np.uint8)
    return out
