"""The canonical face template that registration maps every face onto.

Geometry of the authors' pipeline: the face is warped into a CANVAS_SIZE (240x240) canvas, cropped
CROP_SIZE (197x197) at CROP_ORIGIN (22, 22) and resized to ALIGNED_SIZE (112x112). We compose the
three steps into one similarity straight into 112x112 (one warpAffine, one interpolation).
Coordinates are 0-based pixel centres (OpenCV's convention).
"""

from __future__ import annotations

import numpy as np

CANVAS_SIZE = 240
CROP_ORIGIN = 22  # x and y of the crop's top-left pixel in the canvas
CROP_SIZE = 197
ALIGNED_SIZE = 112  # the networks' face input is ALIGNED_SIZE x ALIGNED_SIZE


def canvas_to_aligned() -> np.ndarray:
    """(2, 3) float64 affine from 240x240 canvas coordinates to 112x112 aligned coordinates.

    Crop then resize, pixel-centre convention of cv2.resize: u = (x - 22 + 0.5) * 112/197 - 0.5.
    """
    s = ALIGNED_SIZE / CROP_SIZE
    offset = (0.5 - CROP_ORIGIN) * s - 0.5
    return np.array([[s, 0.0, offset], [0.0, s, offset]])


# 68 (x, y) points, iBUG order, in 240x240 canvas coordinates. Derived from the bundled sample face
# and its mirror image, made exactly left/right symmetric, eye line at 38% and chin at 87% of the
# aligned crop: see speech2vid.training.derive_template (run it as a module to reproduce these numbers).
TEMPLATE_240 = np.array(
    [
        [60.51, 101.30],
        [61.75, 116.02],
        [64.02, 130.76],
        [66.26, 145.50],
        [71.03, 159.89],
        [80.02, 172.37],
        [92.15, 182.62],
        [104.96, 190.96],
        [120.00, 192.89],
        [135.04, 190.96],
        [147.85, 182.62],
        [159.98, 172.37],
        [168.97, 159.89],
        [173.74, 145.50],
        [175.98, 130.76],
        [178.25, 116.02],
        [179.49, 101.30],
        [69.42, 87.86],
        [76.44, 80.16],
        [86.68, 78.57],
        [96.93, 79.84],
        [107.19, 83.36],
        [132.81, 83.36],
        [143.07, 79.84],
        [153.32, 78.57],
        [163.56, 80.16],
        [170.58, 87.86],
        [120.00, 95.52],
        [120.00, 107.05],
        [120.00, 117.27],
        [120.00, 127.49],
        [106.88, 133.28],
        [113.26, 134.56],
        [120.00, 136.49],
        [126.74, 134.56],
        [133.12, 133.28],
        [81.58, 96.19],
        [87.99, 92.04],
        [96.61, 92.03],
        [104.32, 98.77],
        [95.99, 99.40],
        [87.67, 99.72],
        [135.68, 98.77],
        [143.39, 92.03],
        [152.01, 92.04],
        [158.42, 96.19],
        [152.33, 99.72],
        [144.01, 99.40],
        [91.52, 144.24],
        [102.41, 143.60],
        [112.96, 143.87],
        [120.00, 145.47],
        [127.04, 143.87],
        [137.59, 143.60],
        [148.48, 144.24],
        [138.57, 157.99],
        [128.00, 163.75],
        [120.00, 164.72],
        [112.00, 163.75],
        [101.43, 157.99],
        [94.71, 145.52],
        [112.64, 148.39],
        [120.00, 149.33],
        [127.36, 148.39],
        [145.29, 145.52],
        [127.36, 156.69],
        [120.00, 157.00],
        [112.64, 156.69],
    ],
    dtype=np.float64,
)
TEMPLATE_240.setflags(write=False)

# The same 68 points in 112x112 aligned-crop coordinates: what registration fits onto.
_TO_ALIGNED = canvas_to_aligned()
TEMPLATE_ALIGNED = TEMPLATE_240 @ _TO_ALIGNED[:, :2].T + _TO_ALIGNED[:, 2]
TEMPLATE_ALIGNED.setflags(write=False)
