"""Real speakers' lips driving talking photos: the motion of a person, on many identities.

A talking-photo clip normally moves its lips along a viseme track that eSpeak NG's phonemes and a table
of mouth shapes make (``visemes.py``): the network then learns that table, not a person. Here the track
comes from a real clip instead: its face is followed frame by frame with the runtime's own face stack
(MediaPipe's mesh mapped to the 68 points), registered to the template so that head motion drops out,
and the lips' shape in every frame is fitted with the four parameters of the mouth model
(:func:`fit_visemes`, the inverse of :func:`speech2vid.faces.mouth_model.mouth_shape`). A photo rendered
along that track, with the clip's own audio, is a sample of how this person's mouth moves with this
speech, on a face that is not theirs: the motion is real, the identities stay many, and the motion
field's ground truth stays exact (the frames are still warps of the photo).

The lip tracks are cached beside the corpus (``motion/<clip>.lips.npz``: the visemes at 25 fps and the
16 kHz audio), so a rerun or a second corpus does not follow the faces again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from speech2vid.config import PrepareConfig
from speech2vid.faces.mouth_model import MAX_DROP, NARROW_PER_ROUND, UPPER_LIP_RAISE, WIDEN_PER_WIDTH
from speech2vid.training.datasets.format import FPS, N_VISEMES
from speech2vid.training.datasets.index import write_json_atomic

LIPS_SUFFIX = ".lips.npz"
MOTION_DIR = "motion"
# mouth_shape: the centre of the inner lips opens by the lower lip's drop plus the upper lip's raise, and
# the drop is jaw_open * MAX_DROP mouth widths.
_CENTRE_GAP_PER_OPEN = (1.0 + UPPER_LIP_RAISE) * MAX_DROP
# A narrowing is fitted as rounding with the narrow lip width the table gives rounded vowels
# (lip_width = -0.5 lip_round).
_FITTED_NARROW_PER_ROUND = NARROW_PER_ROUND + 0.5 * WIDEN_PER_WIDTH
CLOSED_PERCENTILE = 5  # the clip's most closed frames: the speaker's closed lips (/p b m/, the pauses)
MAX_MISSING = 0.1  # a clip whose face is lost in more of its frames than this is skipped
SMOOTH_SIGMA = PrepareConfig.landmark_sigma  # frames: the landmarks' Gaussian smoothing over time, as prepare's


@dataclass(frozen=True)
class LipTrack:
    """One real clip's mouth as the mouth model's parameters, and its speech."""

    name: str
    visemes: np.ndarray  # float32 (n, 4), one row per 25 fps frame
    signal: np.ndarray  # float32 16 kHz mono

    @property
    def seconds(self) -> float:
        return len(self.visemes) / FPS


def fit_visemes(aligned: np.ndarray) -> np.ndarray:
    """The mouth model's parameters ``(n, 4)`` that best redraw one speaker's lips ``(n, 68, 2)``.

    Relative to the speaker's own closed mouth, so that lips that never quite touch under the landmark
    model still close: jaw_open from the centre of the inner-lip gap over the mouth width; a mouth wider
    than the speaker's median is ``lip_width`` > 0, a narrower one rounding (with the narrow width of the
    rounded vowels); the teeth show unless the lips are rounded.
    """
    pts = np.asarray(aligned, dtype=np.float64)
    width = np.linalg.norm(pts[:, 54] - pts[:, 48], axis=-1)
    gap = pts[:, 66, 1] - pts[:, 62, 1]
    closed = float(np.percentile(gap, CLOSED_PERCENTILE))
    rest_width = float(np.median(width))
    out = np.zeros((len(pts), N_VISEMES), np.float64)
    out[:, 0] = np.clip((gap - closed) / (_CENTRE_GAP_PER_OPEN * rest_width), 0.0, 1.0)
    ratio = width / max(rest_width, 1e-6)
    out[:, 1] = np.clip((ratio - 1.0) / WIDEN_PER_WIDTH, 0.0, 1.0)
    rnd = np.clip((1.0 - ratio) / _FITTED_NARROW_PER_ROUND, 0.0, 1.0)
    out[:, 2] = rnd
    out[:, 1] -= 0.5 * rnd
    out[:, 3] = 0.6 * (1.0 - rnd)
    return out.astype(np.float32)


def fill_missing(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Frames where no face was found take the landmarks linearly interpolated from their neighbours."""
    pts = np.asarray(points, dtype=np.float64).copy()
    idx = np.flatnonzero(found)
    if idx.size == 0:
        raise ValueError("no frame with a face")
    flat = pts.reshape(len(pts), -1)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(np.arange(len(pts)), idx, flat[idx, j])
    return flat.reshape(pts.shape)


def follow_lips(path: Path) -> LipTrack | None:
    """One clip's lip track, or None when its face is lost too often (or it is not a 25 fps talking face)."""
    from speech2vid.audio.io import read_audio, to_model_rate
    from speech2vid.faces.align import registration_transform, transform_points
    from speech2vid.training.prepare.speaker import smooth_landmarks
    from speech2vid.training.prepare.video import FaceFollower, SkipVideo, upright_frames, video_rate

    try:
        fps = video_rate(path)
        follower = FaceFollower(min_face_px=40, detect_every=25)
        aligned, found = [], []
        for rgb in upright_frames(path):
            faces = follower(rgb)
            if not faces:
                aligned.append(np.zeros((68, 2)))
                found.append(False)
                continue
            row = max(faces, key=lambda r: r[2] - r[0])
            lm = row[4:].reshape(68, 2)
            aligned.append(transform_points(registration_transform(lm), lm))
            found.append(True)
    except SkipVideo:
        return None
    found_arr = np.array(found, bool)
    if found_arr.size < FPS or found_arr.mean() < 1.0 - MAX_MISSING:
        return None
    points = smooth_landmarks(fill_missing(np.array(aligned), found_arr), SMOOTH_SIGMA)
    n_grid = int(np.floor(len(points) * FPS / fps))
    points = points[np.minimum(np.round(np.arange(n_grid) * fps / FPS).astype(int), len(points) - 1)]
    signal = to_model_rate(read_audio(path))
    return LipTrack(path.stem, fit_visemes(points), signal)


def save_lip_track(track: LipTrack, path: Path) -> None:
    from speech2vid.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, visemes=track.visemes, signal=track.signal)


def load_lip_track(path: str | Path) -> LipTrack:
    p = Path(path)
    with np.load(p, allow_pickle=False) as z:
        return LipTrack(p.name[: -len(LIPS_SUFFIX)], z["visemes"].astype(np.float32), z["signal"].astype(np.float32))


def _follow_job(args: tuple[str, str]) -> tuple[str, str | None]:
    video, out = Path(args[0]), Path(args[1])
    if not out.is_file():
        track = follow_lips(video)
        if track is None:
            return args[0], None
        save_lip_track(track, out)
    return args[0], str(out)


def lip_tracks(videos: Iterable[Path], root: Path, workers: int = 1, progress: bool = True) -> list[Path]:
    """The cached lip track of each video (followed now where missing); the videos skipped are left out."""
    from speech2vid.training.parallel import run_jobs

    jobs = [(str(v), str(root / MOTION_DIR / f"{v.stem}{LIPS_SUFFIX}")) for v in sorted(videos)]
    done = dict(run_jobs(_follow_job, jobs, workers, "following real lips", "clip", progress))
    write_json_atomic(root / MOTION_DIR / "skipped.json", sorted(Path(v).name for v, d in done.items() if d is None))
    return sorted(Path(d) for d in done.values() if d is not None)
