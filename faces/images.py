"""Checks shared by the functions that take in-memory images."""

from __future__ import annotations

import numpy as np


def check_rgb(rgb: np.ndarray) -> None:
    """Raise ValueError unless ``rgb`` is an RGB uint8 array of shape (H, W, 3)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {got}")
