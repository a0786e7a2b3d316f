"""The piecewise-affine mouth warp (frames/mouth_warp.py): what the rest mouth, the synthetic corpus and the
photo's closed lips are drawn with."""

from __future__ import annotations

import cv2
import numpy as np

from speech2vid.frames.mouth_warp import triangulate, warp_triangles


def _grey_box_on_black() -> np.ndarray:
    src = np.zeros((100, 100, 3), np.uint8)
    src[30:70, 30:70] = 128
    return src


def test_the_identity_warp_leaves_the_image_as_it_is() -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    pts = np.array([[0, 0], [79, 0], [79, 59], [0, 59], [40, 30], [20, 45]], np.float64)
    tris = triangulate(pts, (80, 60))
    out = np.zeros_like(src)
    warp_triangles(src, out, pts, pts, tris)
    assert np.abs(out.astype(int) - src.astype(int)).max() <= 1  # bilinear sampling at the pixel centres


def test_a_sliver_triangle_takes_only_its_source_triangles_pixels() -> None:
    """Lips pressed together make destination triangles a fraction of a pixel high. Pixels the raster gives
    such a sliver lie partly outside it, and its affine map, extrapolated, sent them tens of pixels away in
    the source: here into the black around the grey box, as a line of dark dots (seen at the mouth corner of
    a turned face, eval photo 19). Every written pixel must come from inside the source triangle."""
    src = _grey_box_on_black()
    src_pts = np.array([[40, 40], [60, 40], [50, 60]], np.float64)  # well inside the grey box
    dst_pts = np.array([[40, 50], [60, 50.6], [50, 50.5]], np.float64)  # 2 px² spread over 20 px
    out = np.full_like(src, 255)
    warp_triangles(src, out, src_pts, dst_pts, np.array([[0, 1, 2]]))
    written = np.any(out != 255, axis=2)
    assert written.sum() >= 10  # the sliver is drawn
    assert out[written].min() >= 120, out[written].min()  # grey only: nothing from the black outside


def test_points_outside_the_image_are_triangulated() -> None:
    """A turned face's far cheek may lie past a registered crop's edge; OpenCV's Subdiv2D refuses points
    outside its rectangle, so the rectangle must span them."""
    pts = np.array([[-6.5, 50], [20, 10], [40, 60], [110, 70], [60, 105], [50, 50]], np.float64)
    tris = triangulate(pts, (100, 100))
    assert len(tris) >= 4 and set(np.unique(tris)) == set(range(len(pts)))


def test_a_sub_pixel_move_keeps_the_photos_grain() -> None:
    """The warp moves a photo's own skin at the output size: a move of fine grain by fractions of a pixel (here
    from 0 to 2 px across the square, every fraction, as a mouth's warp has) must not blur it. Measured: 0.98
    of the Laplacian variance (the grain's finest detail moves whole pixels, frames/detail.py); Lanczos alone
    kept 0.84 of it at half a pixel, bilinear 0.29."""
    rng = np.random.default_rng(0)
    grain = cv2.GaussianBlur(rng.integers(60, 200, (120, 120, 3)).astype(np.uint8), (0, 0), 0.7)
    src = np.array([[10, 10], [110, 10], [10, 110], [110, 110]], float)
    out = grain.copy()
    moves = np.array([[0.0, 0.0], [2.0, 0.5], [0.7, 1.3], [2.0, 2.0]])
    warp_triangles(grain, out, src, src + moves, np.array([[0, 1, 2], [1, 3, 2]]))

    def detail(a: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(a[20:100, 20:100], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    assert detail(out) >= 0.9 * detail(grain)
    assert np.abs(out[20:100, 20:100].astype(int) - grain[20:100, 20:100]).mean() > 2  # it did move
