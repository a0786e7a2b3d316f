"""Tests of speech2vid.faces: photo reading, detection, landmarks and registration.

Test images are built in tmp_path from the bundled sample face.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from speech2vid.assets import sample_face as sample_face_path
from speech2vid.errors import FaceError
from speech2vid.faces import (
    ALIGNED_SIZE,
    TEMPLATE_240,
    TEMPLATE_ALIGNED,
    AlignedFace,
    align_image,
    align_photo,
    detect_faces,
    invert_transform,
    read_photo,
    registration_transform,
    similarity_fit,
    transform_points,
    warp_aligned,
)
from speech2vid.faces.ibug68 import LEFT_EYE, MIRROR_PERMUTATION, REGISTRATION_INDICES, RIGHT_EYE
from speech2vid.training.derive_template import template_from_sample

# Bounds for "the same face, aligned the same way" after the photo was rotated/scaled/re-encoded:
# resampling twice and dlib's whole-pixel landmarks leave a few grey levels and about a pixel.
MAX_MEAN_ABS_DIFF = 12.0  # mean |difference| of aligned crops, on 0..255
MAX_EYE_ERROR_PX = 2.0  # aligned eye landmarks vs the template, 112x112 pixels
EYES = list(RIGHT_EYE + LEFT_EYE)
EXIF_ORIENTATION_TAG = 0x0112


@pytest.fixture(scope="module")
def sample_rgb() -> np.ndarray:
    return read_photo(sample_face_path())


@pytest.fixture(scope="module")
def sample_aligned() -> AlignedFace:
    return align_photo(sample_face_path())


def save(rgb: np.ndarray, path: Path, **kwargs: Any) -> Path:
    Image.fromarray(rgb).save(path, **kwargs)
    return path


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def assert_one_line_face_error(excinfo: pytest.ExceptionInfo[FaceError], *words: str) -> None:
    message = str(excinfo.value)
    assert message and "\n" not in message, repr(message)
    for word in words:
        assert word in message, message


def eye_error_px(face: AlignedFace) -> float:
    """Largest distance between an aligned eye landmark and its template position."""
    assert face.transform is not None and face.landmarks is not None
    aligned = transform_points(face.transform, face.landmarks[EYES])
    return float(np.linalg.norm(aligned - TEMPLATE_ALIGNED[EYES], axis=1).max())


# --- the sample face -----------------------------------------------------------------------------


def test_sample_face_has_exactly_one_face_and_aligns(sample_rgb: np.ndarray) -> None:
    assert sample_rgb.dtype == np.uint8 and sample_rgb.ndim == 3 and sample_rgb.shape[2] == 3
    assert len(detect_faces(sample_rgb)) == 1
    face = align_photo(sample_face_path())
    assert face.image.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3) and face.image.dtype == np.uint8
    assert face.landmarks is not None and face.landmarks.shape == (68, 2)
    assert face.transform is not None and face.transform.shape == (2, 3)
    assert eye_error_px(face) < MAX_EYE_ERROR_PX


def test_template_is_symmetric_and_reproducible() -> None:
    assert REGISTRATION_INDICES == tuple(range(27, 48))
    centre_x = 120.0  # the 197 px crop at 22 is centred on x = 120 of the 240 canvas
    mirrored = TEMPLATE_240[MIRROR_PERMUTATION] * [-1, 1] + [2 * centre_x, 0]
    np.testing.assert_allclose(mirrored, TEMPLATE_240, atol=0.011)
    # The stored constant is what derive_template computes from the bundled sample.
    np.testing.assert_allclose(template_from_sample(), TEMPLATE_240, atol=0.05)
    # The whole template lies inside the aligned crop: the whole face is visible.
    assert TEMPLATE_ALIGNED.min() > 0 and TEMPLATE_ALIGNED.max() < ALIGNED_SIZE - 1


# --- registration is invariant to how the photo was taken/stored ---------------------------------


def rotated_scaled(rgb: np.ndarray, tmp_path: Path) -> Path:
    """The sample rotated 20 degrees, scaled 0.7 and shifted, on a larger canvas."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 20.0, 0.7)
    m[:, 2] += np.array([70.0, 35.0])
    out = cv2.warpAffine(rgb, m, (w + 100, h + 60), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return save(out, tmp_path / "rotated.png")


def exif_rotated(rgb: np.ndarray, tmp_path: Path, orientation: int) -> Path:
    """A JPEG stored sideways with an EXIF Orientation tag that makes it upright again."""
    # Orientation 6: "rotate 90 degrees clockwise to display", so store it rotated counter-clockwise.
    stored = Image.fromarray(rgb).transpose(
        Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    )
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    path = tmp_path / f"exif{orientation}.jpg"
    stored.save(path, quality=95, exif=exif)
    return path


@pytest.mark.parametrize("variant", ["rotated_scaled", "exif6", "exif8"])
def test_registration_invariance(
    variant: str, sample_rgb: np.ndarray, sample_aligned: AlignedFace, tmp_path: Path
) -> None:
    if variant == "rotated_scaled":
        path = rotated_scaled(sample_rgb, tmp_path)
    else:
        path = exif_rotated(sample_rgb, tmp_path, int(variant[-1]))
        assert read_photo(path).shape == sample_rgb.shape  # upright again
    face = align_photo(path)
    assert mean_abs_diff(face.image, sample_aligned.image) < MAX_MEAN_ABS_DIFF
    assert eye_error_px(face) < MAX_EYE_ERROR_PX


def test_large_photo_is_detected_downscaled_and_warped_without_aliasing(
    sample_rgb: np.ndarray, sample_aligned: AlignedFace, tmp_path: Path
) -> None:
    # 1280 px: detection runs on a 1024 px copy, the warp shrinks by ~0.25 (area pre-shrink path).
    big = cv2.resize(sample_rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    face = align_photo(save(big, tmp_path / "big.png"))
    assert face.box is not None and face.box.width > 250  # box mapped back to full resolution
    assert mean_abs_diff(face.image, sample_aligned.image) < MAX_MEAN_ABS_DIFF


# --- photo formats --------------------------------------------------------------------------------


def test_rgba_with_transparent_background(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    h, w = sample_rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = ((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h / 2) / (0.5 * h)) ** 2 < 1
    rgba = np.dstack([sample_rgb, np.where(inside, 255, 0).astype(np.uint8)])
    rgba[~inside, :3] = 0  # hidden pixels are black: they must not show through
    path = save(rgba, tmp_path / "rgba.png")
    rgb = read_photo(path)
    assert rgb.shape == sample_rgb.shape and (rgb[0, 0] == 255).all()  # composited onto white
    assert align_photo(path).image.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3)


def test_greyscale_photo(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    grey = np.asarray(Image.fromarray(sample_rgb).convert("L"))
    path = save(grey, tmp_path / "grey.png")
    face = align_photo(path)
    assert face.image.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3)
    assert (face.image[..., 0] == face.image[..., 1]).all()


@pytest.mark.parametrize("mode", ["LA", "P", "CMYK", "I;16"])
def test_other_modes_read_as_rgb(mode: str, sample_rgb: np.ndarray, tmp_path: Path) -> None:
    img = Image.fromarray(sample_rgb)
    if mode == "I;16":
        grey16 = np.asarray(img.convert("L")).astype(np.uint16) * 257
        path = save(grey16, tmp_path / "grey16.png")
    elif mode == "P":
        path = tmp_path / "palette.png"
        img.convert("P").save(path, transparency=0)
    else:
        suffix = "jpg" if mode == "CMYK" else "png"
        path = tmp_path / f"{mode}.{suffix}"
        img.convert(mode).save(path)
    rgb = read_photo(path)
    assert rgb.shape == sample_rgb.shape and rgb.dtype == np.uint8
    # Right brightness (a 16-bit image clipped at 255 would be all white).
    assert abs(float(rgb.mean()) - float(sample_rgb.mean())) < 25


# --- several faces ------------------------------------------------------------------------------


def test_two_faces_largest_first_and_face_index(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    small = cv2.resize(sample_rgb, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    h, w = sample_rgb.shape[:2]
    canvas = np.full((h, w + small.shape[1], 3), 200, dtype=np.uint8)
    canvas[:, :w] = sample_rgb
    canvas[: small.shape[0], w:] = small
    path = save(canvas, tmp_path / "two.png")

    largest = align_photo(path)
    assert largest.box is not None and largest.box.center[0] < w  # the left, bigger face
    other = align_photo(path, face_index=1)
    assert other.box is not None and other.box.center[0] > w
    assert other.box.area < largest.box.area
    with pytest.raises(FaceError) as excinfo:
        align_photo(path, face_index=5)
    assert_one_line_face_error(excinfo, "5", "2 face")


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gradient", "noise"])
def test_no_face_is_a_one_line_face_error(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    if kind == "gradient":
        ramp = np.linspace(0, 255, 300, dtype=np.float64)
        img = np.dstack([np.tile(ramp, (240, 1))] * 3).astype(np.uint8)
    else:
        img = rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)
    path = save(img, tmp_path / f"{kind}.png")
    with pytest.raises(FaceError) as excinfo:
        align_photo(path)
    assert_one_line_face_error(excinfo, "no face found", path.name, "--aligned")


def test_a_tiny_face_is_a_one_line_face_error(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    """A face found but too small to animate: the photo shrunk so that the face is about 30 px wide, on a
    canvas of its own colours (the detector's tiles find it; MIN_FACE_PX refuses it)."""
    from speech2vid.faces import MIN_FACE_PX

    box = detect_faces(sample_rgb)[0]
    scale = 30.0 / box.width
    small = cv2.resize(sample_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = cv2.resize(sample_rgb, (480, 480), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 12)
    canvas[200 : 200 + small.shape[0], 200 : 200 + small.shape[1]] = small
    found = detect_faces(canvas)
    assert found and found[0].width < MIN_FACE_PX, [b.width for b in found]
    path = save(canvas, tmp_path / "tiny_face.png")
    with pytest.raises(FaceError) as excinfo:
        align_photo(path)
    assert_one_line_face_error(excinfo, "too small", path.name, "px wide")


def test_a_face_cut_by_the_edge_is_a_one_line_face_error(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    """The photo cut just under the nose: a face is found, but its mouth and chin are off the picture."""
    box = detect_faces(sample_rgb)[0]
    nose = int(align_photo(sample_face_path()).landmarks[33, 1])  # type: ignore[index]
    cut = np.ascontiguousarray(sample_rgb[: nose + 2])
    assert detect_faces(cut), "the detector no longer finds half a face: this test needs another cut"
    assert box.bottom > cut.shape[0]
    path = save(cut, tmp_path / "cut.png")
    with pytest.raises(FaceError) as excinfo:
        align_photo(path)
    assert_one_line_face_error(excinfo, "cut by the picture's edge", path.name)


def test_bad_files_are_one_line_face_errors(sample_rgb: np.ndarray, tmp_path: Path) -> None:
    corrupt = tmp_path / "random.jpg"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    jpeg = save(sample_rgb, tmp_path / "whole.jpg", quality=90).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg[: len(jpeg) // 2])
    tiny = save(sample_rgb[:30, :30], tmp_path / "tiny.png")
    for path in (corrupt, truncated, tmp_path / "missing.png", tmp_path, tiny):
        with pytest.raises(FaceError) as excinfo:
            align_photo(path)
        assert_one_line_face_error(excinfo, str(path))


# --- already aligned crops ------------------------------------------------------------------------


def test_aligned_crop_is_returned_unchanged(sample_aligned: AlignedFace, tmp_path: Path) -> None:
    path = save(sample_aligned.image, tmp_path / "crop.png")
    face = align_photo(path, aligned=True)
    np.testing.assert_array_equal(face.image, sample_aligned.image)
    assert face.landmarks is None and face.transform is None and face.box is None

    bigger = cv2.resize(sample_aligned.image, (224, 224), interpolation=cv2.INTER_LINEAR)
    resized = align_photo(save(bigger, tmp_path / "crop224.png"), aligned=True)
    assert resized.image.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3)
    assert mean_abs_diff(resized.image, sample_aligned.image) < 3

    with pytest.raises(FaceError) as excinfo:
        align_photo(save(bigger[:, :150], tmp_path / "wide.png"), aligned=True)
    assert_one_line_face_error(excinfo, "square")


# --- similarity fit -------------------------------------------------------------------------------


def similarity_matrix(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_similarity_fit_recovers_a_known_transform() -> None:
    src = np.random.default_rng(2).uniform(0, 200, (21, 2))
    known = similarity_matrix(0.56, -17.0, 12.5, -40.0)
    np.testing.assert_allclose(similarity_fit(src, transform_points(known, src)), known, atol=1e-9)
    np.testing.assert_allclose(transform_points(invert_transform(known), transform_points(known, src)), src, atol=1e-9)


def test_similarity_fit_matches_skimage() -> None:
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(3)
    src = rng.uniform(0, 300, (21, 2))
    dst = transform_points(similarity_matrix(1.7, 33.0, -5.0, 8.0), src) + rng.normal(0, 3, src.shape)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        reference = SimilarityTransform.from_estimate(src, dst)
    else:
        reference = SimilarityTransform()
        assert reference.estimate(src, dst)
    np.testing.assert_allclose(similarity_fit(src, dst), reference.params[:2], atol=1e-6)


def test_similarity_fit_never_reflects() -> None:
    rng = np.random.default_rng(4)
    src = rng.uniform(0, 100, (21, 2))
    mirrored = src * [-1.0, 1.0] + rng.normal(0, 0.5, src.shape)  # best fit would be a reflection
    m = similarity_fit(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    linear = m[:, :2] / np.sqrt(np.linalg.det(m[:, :2]))
    np.testing.assert_allclose(linear.T @ linear, np.eye(2), atol=1e-9)  # a pure rotation


def test_registration_and_warp_of_in_memory_frame(sample_rgb: np.ndarray) -> None:
    face = align_image(sample_rgb)
    assert face.landmarks is not None and face.box is not None
    np.testing.assert_allclose(registration_transform(face.landmarks), face.transform)
    np.testing.assert_array_equal(warp_aligned(sample_rgb, face.transform), face.image)
    # Tracking path: reusing the box skips detection and gives the same result.
    np.testing.assert_array_equal(align_image(sample_rgb, box=face.box).image, face.image)
    with pytest.raises(ValueError):
        align_image(sample_rgb[..., 0])


def test_warp_shrinking_a_lot_is_geometrically_exact_and_antialiased() -> None:
    # A linear ramp (R = x, G = y, scaled to 0..255) is unchanged by area averaging, so after a
    # strong shrink every output pixel must still hold the ramp value at its source position: this
    # checks the pre-shrink's pixel-centre bookkeeping. A 1-px checkerboard must average to grey.
    n = 2000
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    ramp = np.rint(np.dstack([xx, yy, np.zeros_like(xx)]) * 255 / (n - 1)).astype(np.uint8)
    m = similarity_matrix(0.2, 25.0, -150.0, -125.0)  # shrink 5x, source region inside the image
    out = warp_aligned(ramp, m).astype(np.float64)
    vv, uu = np.mgrid[:ALIGNED_SIZE, :ALIGNED_SIZE]
    src = transform_points(invert_transform(m), np.stack([uu.ravel(), vv.ravel()], axis=1))
    assert src.min() > 0 and src.max() < n - 1
    np.testing.assert_allclose(out[..., 0].ravel(), src[:, 0] * 255 / (n - 1), atol=1.5)
    np.testing.assert_allclose(out[..., 1].ravel(), src[:, 1] * 255 / (n - 1), atol=1.5)

    checker = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    grey = warp_aligned(checker, m)
    assert abs(float(grey.mean()) - 127.5) < 2 and float(grey.std()) < 3  # bilinear alone: ~40


def test_missing_landmark_model_is_a_face_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from speech2vid.training.evaluation import dlib_models

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FaceError) as excinfo:
        dlib_models.original_model_path()
    assert_one_line_face_error(excinfo, 'pip install "speech2vid[train]"')
