"""Read a photo file into the package's image convention: RGB, uint8, shape (H, W, 3).

Whatever the file holds (EXIF-rotated JPEG, transparent PNG, palette GIF, greyscale, CMYK, 16-bit),
the result is the upright picture a person sees in an image viewer.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from speech2vid.errors import FaceError

MIN_PHOTO_SIDE = 40  # px; below this there is no face worth aligning to 112x112
BACKGROUND_RGB = (255, 255, 255)  # transparent pixels become white, as viewers show them
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # greyscale with 0..65535 values
_SIXTEEN_TO_EIGHT = 257.0  # 65535 / 255


def read_photo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an upright RGB picture.

    Args:
        path: any image format Pillow reads (PNG, JPEG, WebP, GIF, BMP, TIFF, ...).

    Returns:
        RGB uint8 array, shape (H, W, 3), C-contiguous, with the EXIF orientation applied and any
        transparency composited onto white.

    Raises:
        FaceError: the file is missing, a directory, not an image, corrupt/truncated, or smaller
            than MIN_PHOTO_SIDE pixels on a side.
    """
    file = Path(path)
    if not file.exists():
        raise FaceError(f"photo not found: {file}: check the path")
    if file.is_dir():
        raise FaceError(f"{file} is a directory, not a photo: pass an image file (PNG or JPEG)")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that, on stderr; no face photo is that
            # large, so it is refused like the bigger ones, in one line.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                img.load()  # Image.open is lazy: decode now so truncated data fails here
                upright = ImageOps.exif_transpose(img)
                rgb = _to_rgb(upright)
    except UnidentifiedImageError as exc:
        raise FaceError(f"{file} is not an image Pillow can read: pass a PNG or JPEG photo") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceError(
            f"{file} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels): "
            "downscale it first (a face needs far fewer)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated/corrupt data, bad EXIF
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FaceError(f"{file} is corrupt or truncated ({reason}): re-export or re-download it") from exc
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_PHOTO_SIDE:
        raise FaceError(
            f"{file} is {width}x{height} px, too small for a face: use a photo at least "
            f"{MIN_PHOTO_SIDE} px on each side (the face is aligned to 112x112)"
        )
    return rgb


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> RGB uint8 (H, W, 3); transparency is composited onto BACKGROUND_RGB."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert("RGB") clips 16-bit values at 255 (a white picture): rescale instead.
        grey = np.asarray(img, dtype=np.float64)
        if grey.max() > 255:
            grey = grey / _SIXTEEN_TO_EIGHT
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND_RGB + (255,))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
