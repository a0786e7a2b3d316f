"""Still images the commands write beside their videos: ``redub --strip`` (before/after) and
``eval --videos --figure`` (real against rendered mouths). Checked before any slow work by the one output
rule, written to a hidden temporary name and renamed, so a failed write never leaves a complete-looking file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from speech2vid.errors import OutputError
from speech2vid.files import atomic_path
from speech2vid.outputs import check_output


def check_image_path(
    path: str | os.PathLike[str], *, option: str, description: str, inputs: Iterable[str | os.PathLike[str] | None] = ()
) -> Path:
    """``path`` checked as ``option``'s output, in a format OpenCV writes (by its extension)."""
    import cv2

    p = check_output(path, what=option, inputs=inputs)
    if not cv2.haveImageWriter(str(p)):
        raise OutputError(f"cannot write {description} {p}: give a file name ending in .png or .jpg")
    return p


def write_image(path: Path, rgb: np.ndarray, description: str) -> Path:
    """Save ``rgb`` (H, W, 3) uint8 in the format the extension names (PNG at full compression)."""
    import cv2

    with atomic_path(path, path.suffix) as tmp:  # cv2 picks the format by the extension
        params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if path.suffix.lower() == ".png" else []
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OutputError(f"cannot write {description} {path}")
    return path
