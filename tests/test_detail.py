"""Resampling that keeps the photo's grain (frames/detail.py), against OpenCV's own remap."""

from __future__ import annotations

import cv2
import numpy as np

from speech2vid.frames.detail import remap_layers, split_detail


def _laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _grain(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(40, 216, (96, 128, 3)).astype(np.uint8), (0, 0), 0.6)


def test_the_split_adds_back_to_the_image_exactly() -> None:
    img = _grain()
    low, detail = split_detail(img)
    assert low.dtype == np.uint8 and detail.dtype == np.int16
    assert np.array_equal(low.astype(np.int16) + detail, img.astype(np.int16))


def test_the_identity_map_returns_the_image() -> None:
    img = _grain()
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    assert np.array_equal(remap_layers(*split_detail(img), xx, yy), img)


def test_a_sub_pixel_warp_keeps_the_grain_that_lanczos_loses() -> None:
    """A warp whose offset runs from 0 to 2 px across the image (every fraction of a pixel, as a face's flow
    has). Measured on this grain: the split keeps 0.99 of the variance of the Laplacian, Lanczos alone 0.86;
    on white noise 0.98 against 0.70."""
    img = _grain()
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    flow = (xx / 127.0 * 2.0).astype(np.float32)
    xs, ys = xx + flow, yy + np.float32(0.5) * flow
    inner = np.s_[4:-4, 4:-4]
    kept = _laplacian_var(remap_layers(*split_detail(img), xs, ys)[inner]) / _laplacian_var(img[inner])
    lanczos = _laplacian_var(cv2.remap(img, xs, ys, cv2.INTER_LANCZOS4)[inner]) / _laplacian_var(img[inner])
    assert kept >= 0.95 and lanczos < 0.9, (kept, lanczos)


def test_smooth_content_moves_with_sub_pixel_precision() -> None:
    """A smooth ramp moved by 0.3 px: the result matches OpenCV's Lanczos within a grey level (the detail of a
    smooth image is about nothing, so whole-pixel moves of it cannot show)."""
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    ramp = np.dstack([(xx * 1.5 + yy * 0.5) % 256] * 3).astype(np.uint8)
    ramp = cv2.GaussianBlur(ramp, (0, 0), 3.0)
    xs = xx + np.float32(0.3)
    inner = np.s_[8:-8, 8:-8]
    ours = remap_layers(*split_detail(ramp), xs, yy).astype(int)[inner]
    ref = cv2.remap(ramp, xs, yy, cv2.INTER_LANCZOS4).astype(int)[inner]
    assert np.abs(ours - ref).max() <= 1
