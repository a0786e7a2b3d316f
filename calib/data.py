"""Calibration data for INT8 engines: real inputs, as one backend-neutral iterable of ``{input_name: array}``.

Both graphs are calibrated on what they see at run time:

* identity graph: ``faces`` (1, 3K, 112, 112) raw 0-255, from aligned face photos;
* frame graph: ``mfcc`` (1, 1, 12, 35) windows of real speech (``features.windows``, the runtime's own
  mapping) together with the identity tensors that the FP32 identity graph makes from those faces.

Sources (``calib.source`` in the config):

* ``sample``: the bundled sample face and speech (``assets/``). One photo is too few identities for the
  identity graph's activation ranges, so it is augmented deterministically (mirror, brightness and
  contrast, shifts of a few pixels: the variation a face registration leaves), ``calib.seed`` fixed;
* a folder: every speech file (wav, flac, mp3, ogg, m4a) and face photo (png, jpg, jpeg) under it,
  searched recursively; photos are registered with the runtime's face aligner.

The same samples feed ONNX Runtime's static quantiser here and would feed a TensorRT calibrator (the
shape Polygraphy uses too): nothing in this module knows a backend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from speech2vid.config import CalibConfig
from speech2vid.errors import UserError
from speech2vid.model.io_spec import FACES, FRAME_GRAPH, IDENTITY_GRAPH, MFCC

log = logging.getLogger(__name__)

SAMPLE = "sample"
SPEECH_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_SHIFT_PX = 3  # registration jitter of the augmented sample face

Feeds = dict[str, np.ndarray]


class CalibrationError(UserError):
    """The calibration source is missing, empty or unusable."""


@dataclass(frozen=True)
class CalibrationData:
    """Real model inputs, batch 1 each.

    ``faces``: (M, 3K, 112, 112) float32 raw 0-255, one identity per row (K faces stacked on channels);
    ``windows``: (S, 1, 12, 35) float32 MFCC windows. ``source`` says where they came from.
    """

    faces: np.ndarray
    windows: np.ndarray
    source: str

    def describe(self) -> str:
        return f"{len(self.faces)} identities and {len(self.windows)} MFCC windows from {self.source}"


def _augment(face: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` variants of one aligned face (112, 112, 3) uint8: the original first, then jittered copies."""
    out = [face]
    for i in range(1, n):
        img = face[:, ::-1] if i % 2 else face  # mirror every other one
        gain = rng.uniform(0.7, 1.3)
        bias = rng.uniform(-25, 25)
        dy, dx = rng.integers(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1, size=2)
        img = np.roll(img.astype(np.float32) * gain + bias, (int(dy), int(dx)), axis=(0, 1))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _stack(faces: list[np.ndarray], identity_faces: int) -> np.ndarray:
    from speech2vid.engine.talking_face import stack_faces

    stacked: np.ndarray = stack_faces(faces, identity_faces)[0]
    return stacked


def _even_pick(n_total: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(n_total)`` (all of them when there are fewer)."""
    if n_total <= n:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def _windows_of(files: list[Path]) -> np.ndarray:
    from speech2vid.audio.io import load_speech
    from speech2vid.features.windows import n_frames_for, speech_windows

    parts = []
    for f in files:
        _, signal = load_speech(f)
        parts.append(np.asarray(speech_windows(signal, n_frames_for(len(signal))), dtype=np.float32))
    return np.concatenate(parts, axis=0)


def calibration_files(cfg: CalibConfig) -> tuple[list[Path], list[Path], str]:
    """(speech files, face photos, where they came from) of ``cfg.source``; CalibrationError (one line)
    for a folder that is missing or holds no speech or no photo. Reads no file."""
    if cfg.source == SAMPLE:
        from speech2vid.assets import sample_face, sample_speech

        return [sample_speech()], [sample_face()], "the bundled sample face and speech"
    root = Path(cfg.source).expanduser()
    if not root.is_dir():
        raise CalibrationError(f"calibration folder not found: {root} (set calib.source to a folder, or to 'sample')")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    speech = [p for p in files if p.suffix.lower() in SPEECH_SUFFIXES]
    photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
    if not speech or not photos:
        raise CalibrationError(
            f"{root} holds {len(speech)} speech files and {len(photos)} face photos: calibration needs at least"
            f" one of each ({', '.join(SPEECH_SUFFIXES + PHOTO_SUFFIXES)})"
        )
    return speech, photos, str(root)


def load_calibration(cfg: CalibConfig, identity_faces: int) -> CalibrationData:
    """Read ``cfg.source`` into at most ``cfg.size`` identities and ``cfg.size`` windows."""
    from speech2vid.faces import align_photo

    rng = np.random.default_rng(cfg.seed)
    speech, photos, source = calibration_files(cfg)
    windows = _windows_of(speech)
    windows = windows[_even_pick(len(windows), cfg.size)][:, None]
    aligned = [align_photo(p).image for p in photos[: cfg.size]]
    per_photo = max(1, -(-cfg.size // len(aligned)))  # ceil: augment when there are fewer photos than samples
    variants = [v for face in aligned for v in _augment(face, per_photo, rng)][: cfg.size]
    # One identity per row; a row stacks K variants of the same person, as five photos of one speaker would.
    faces = np.stack(
        [_stack(variants[i : i + identity_faces] or variants[i:], identity_faces) for i in range(len(variants))]
    )
    data = CalibrationData(np.ascontiguousarray(faces, np.float32), np.ascontiguousarray(windows, np.float32), source)
    log.info("calibration data: %s (method %s)", data.describe(), cfg.method)
    return data


IdentityFn = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def graph_feeds(data: CalibrationData, graph: str, identity: IdentityFn | None = None) -> list[Feeds]:
    """The calibration samples of ``graph`` as a list of ``{input_name: array}``, batch 1 each.

    For the frame graph, ``identity`` maps ``{faces: ...}`` to the identity tensors (the FP32 reference
    identity graph), every one of which feeds the frame graph (``io_spec.graph_specs`` decides which);
    windows and identities are paired round-robin.
    """
    if graph == IDENTITY_GRAPH:
        return [{FACES: data.faces[i : i + 1]} for i in range(len(data.faces))]
    if graph == FRAME_GRAPH:
        if identity is None:
            raise ValueError("the frame graph's calibration needs the identity graph to encode the faces")
        idents = []
        for i in range(len(data.faces)):
            out = identity({FACES: data.faces[i : i + 1]})
            idents.append({k: np.ascontiguousarray(v, np.float32) for k, v in out.items()})
        return [{MFCC: data.windows[i : i + 1], **idents[i % len(idents)]} for i in range(len(data.windows))]
    raise ValueError(f"unknown graph '{graph}'")
