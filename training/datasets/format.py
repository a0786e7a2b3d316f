"""The on-disk dataset format: tar shards of face tracks (WebDataset layout) plus a JSON index.

A *track* is one face followed through one shot of one video. Every ``sample_stride``-th frame of it
(on the 25 fps grid) is kept: its registered 112x112 face, the 12x35 MFCC window centred on it
(:func:`speech2vid.features.windows.speech_windows`), and the ground-truth mouth parameters when the
video is synthetic. A shard is a plain tar file; each track is two members sharing a key, as in the
WebDataset layout (``<key>.json`` then ``<key>.npz``), so a shard can be read front to back as a
stream, and the files open with ``tar`` and ``numpy`` alone.

``<key>.npz`` (uncompressed ``numpy.savez``; faces compress poorly and decoding must stay cheap):

===============  ==============================  ===================================================
array            dtype, shape                    meaning
===============  ==============================  ===================================================
``faces``        uint8 ``(n, 112, 112, 3)``      registered faces, RGB, HWC
``mfcc``         float32 ``(n, 12, 35)``         the MFCC window centred on each frame
``frames``       int32 ``(n,)``                  frame index on the 25 fps grid (increasing)
``is_target``    bool ``(n,)``                   has identity candidates >= ``identity_min_gap`` away
``mouth_open``   float32 ``(n,)``                ground-truth jaw opening 0..1 (NaN for real video)
``visemes``      float32 ``(n, V)``              ground truth, :data:`VISEME_NAMES` (NaN for real video)
``lip_gap``      float32 ``(n,)``                inner-lip gap of the smoothed landmarks, aligned px
``landmarks``    float32 ``(n, 68, 2)``          optional: the 68 landmarks in aligned px (``synth
                                                 --registered`` writes them: they give the warp head
                                                 its ground-truth motion field)
===============  ==============================  ===================================================
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from speech2vid.features.windows import FPS as FPS  # part of the format's vocabulary (re-exported)
from speech2vid.files import atomic_path
from speech2vid.model.io_spec import CROP_OFFSET, FACE_SIZE, OUTPUT_SIZE

FORMAT_NAME = "speech2vid-dataset"
FORMAT_VERSION = 1
# Named once elsewhere: the video rate (features.windows) and the face sizes (model.io_spec).
ALIGNED_SIZE, TARGET_SIZE, TARGET_OFFSET = FACE_SIZE, OUTPUT_SIZE, CROP_OFFSET  # 112, 109 (central crop), 1
VISEME_NAMES = ("jaw_open", "lip_width", "lip_round", "teeth")
N_VISEMES = len(VISEME_NAMES)
SPLITS = ("train", "val")

_ARRAYS = {  # name -> (dtype, shape after n)
    "faces": (np.uint8, (ALIGNED_SIZE, ALIGNED_SIZE, 3)),
    "mfcc": (np.float32, (12, 35)),
    "frames": (np.int32, ()),
    "is_target": (np.bool_, ()),
    "mouth_open": (np.float32, ()),
    "visemes": (np.float32, (N_VISEMES,)),
    "lip_gap": (np.float32, ()),
}


def target_crop(face: np.ndarray) -> np.ndarray:
    """The 109x109 ground truth of a registered face: rows and columns 1..109 of 112 (HWC or CHW)."""
    if face.shape[-1] == 3 and face.shape[-2] == ALIGNED_SIZE:  # HWC
        return face[..., TARGET_OFFSET : TARGET_OFFSET + TARGET_SIZE, TARGET_OFFSET : TARGET_OFFSET + TARGET_SIZE, :]
    return face[..., TARGET_OFFSET : TARGET_OFFSET + TARGET_SIZE, TARGET_OFFSET : TARGET_OFFSET + TARGET_SIZE]


def identity_candidates(frames: np.ndarray, min_gap: int) -> list[np.ndarray]:
    """For each frame of a track, the indices of its frames at least ``min_gap`` frames away."""
    frames = np.asarray(frames, dtype=np.int64)
    return [np.flatnonzero(np.abs(frames - f) >= min_gap) for f in frames]


@dataclass(eq=False)
class Track:
    """One track's arrays (see the module docstring) and its metadata (``meta``: JSON-friendly)."""

    key: str
    faces: np.ndarray
    mfcc: np.ndarray
    frames: np.ndarray
    is_target: np.ndarray
    mouth_open: np.ndarray
    visemes: np.ndarray
    lip_gap: np.ndarray
    meta: dict[str, Any]
    landmarks: np.ndarray | None = None  # (n, 68, 2) aligned px, when known

    def __post_init__(self) -> None:
        n = len(self.frames)
        for name, (dtype, shape) in _ARRAYS.items():
            value: np.ndarray = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if value.shape != (n, *shape):
                raise ValueError(f"track {self.key}: {name} has shape {value.shape}, expected {(n, *shape)}")
            setattr(self, name, value)
        if self.landmarks is not None:
            self.landmarks = np.ascontiguousarray(self.landmarks, dtype=np.float32)
            if self.landmarks.shape != (n, 68, 2):
                raise ValueError(
                    f"track {self.key}: landmarks have shape {self.landmarks.shape}, expected {(n, 68, 2)}"
                )
        if "/" in self.key or "." in self.key:
            raise ValueError(f"track key {self.key!r} must not contain '/' or '.' (WebDataset keys)")

    @property
    def n_targets(self) -> int:
        return int(self.is_target.sum())

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in _ARRAYS}
        if self.landmarks is not None:
            out["landmarks"] = self.landmarks
        return out


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # reproducible bytes for a seed
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: str | os.PathLike[str], tracks: list[Track]) -> Path:
    """Write ``tracks`` into a tar shard atomically (a hidden temporary file renamed when complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for track in tracks:
            meta = dict(track.meta, key=track.key, n=len(track.frames), targets=track.n_targets)
            _add_member(tar, f"{track.key}.json", json.dumps(meta, sort_keys=True).encode())
            buf = io.BytesIO()
            # numpy's stub types savez's **kwds against its allow_pickle: bool keyword
            np.savez(buf, **track.arrays())  # type: ignore[arg-type]
            _add_member(tar, f"{track.key}.npz", buf.getvalue())
    return path


def read_shard(path: str | os.PathLike[str]) -> Iterator[Track]:
    """Stream the tracks of a shard in order (``tar`` stream mode: no seeking, no index needed)."""
    meta: dict[str, Any] | None = None
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is None:
                continue
            key, _, ext = member.name.partition(".")
            if ext == "json":
                meta = json.loads(f.read())
            elif ext == "npz":
                if meta is None or meta.get("key") != key:
                    raise ValueError(f"{path}: {member.name} is not preceded by {key}.json")
                with np.load(io.BytesIO(f.read()), allow_pickle=False) as z:
                    arrays = {name: z[name] for name in _ARRAYS}
                    landmarks = z["landmarks"] if "landmarks" in z.files else None
                yield Track(key=key, meta=meta, landmarks=landmarks, **arrays)
                meta = None
