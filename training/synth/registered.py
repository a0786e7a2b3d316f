"""Talking photos rendered straight into the registered 112x112 space: a training corpus in minutes.

``speech2vid synth --photos DIR --registered`` skips what photo-mode videos spend their time on (H.264
encoding, then dlib on every frame in ``prepare``): a photo's landmarks are found once, the photo is
registered once (at twice the resolution, for clean resampling), and each frame is its lips and jaw
moved to that frame's visemes (:class:`~speech2vid.training.synth.photo_anim.MouthAnimator`, the same mouth
model as the videos) and shrunk to 112x112. The speech is eSpeak NG's, as in ``synth``, made to sound
like a recording (room echo, band limits, noise at random levels, also in the pauses) so that what
the network learns carries over to microphones.

Each clip is one track of the dataset format (``training/datasets/format.py``); its MFCC windows are cut with
the model's look-ahead (``lookahead_columns``, recorded in index.json and checked by ``train``).
Per clip a photo gets its own look: mirrored or not, colour and light changed, the registration
nudged by a few pixels (as dlib's landmarks would), and JPEG artefacts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import signal as sps

from speech2vid.faces import detect_faces, landmarks_68, read_photo
from speech2vid.faces.align import registration_transform, transform_points
from speech2vid.faces.template import ALIGNED_SIZE
from speech2vid.features.constants import SAMPLE_RATE
from speech2vid.features.windows import n_frames_for, speech_windows
from speech2vid.training.datasets.format import FPS, Track, write_shard
from speech2vid.training.datasets.index import RECORDS_DIR, build_index, write_json_atomic
from speech2vid.training.derive_template import mirror_landmarks
from speech2vid.training.parallel import run_jobs
from speech2vid.training.synth.corpus import SynthError, random_speaker
from speech2vid.training.synth.photo_anim import MouthAnimator
from speech2vid.training.synth.real_motion import lip_tracks, load_lip_track
from speech2vid.training.synth.speech import SpeechRequest, speech_in_fresh_process
from speech2vid.training.synth.visemes import viseme_track

WORK_SCALE = 2  # photos are registered and animated at 224x224, then shrunk: no aliasing at the lips
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


@dataclass(frozen=True)
class ClipPlan:
    photo: str
    group: str
    split: str
    index: int
    seed: int
    seconds: float
    lookahead_columns: int
    stride: int
    motion: str | None = None  # a real clip's lip track (real_motion.py): its lips and audio, not eSpeak's

    @property
    def key(self) -> str:
        return f"{self.group}-{'r' if self.motion else 'c'}{self.index:03d}"


# ----------------------------------------------------------------------------- pure signal helpers


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    x = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def like_a_recording(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16 kHz TTS speech made to sound recorded: room echo, band limits, noise at 5-40 dB SNR, level."""
    x = speech.astype(np.float64)
    if rng.random() < 0.6:  # a room: exponentially decaying noise as the impulse response
        rt60 = rng.uniform(0.15, 0.7)
        t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
        ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
        ir[0] = 1.0 / rng.uniform(0.1, 0.6)  # the direct sound against the reverberant part
        wet = sps.fftconvolve(x, ir)[: x.size]
        x = wet * (np.abs(x).max() / max(np.abs(wet).max(), 1e-12))
    lo, hi = rng.uniform(60, 300), rng.uniform(3400, 7800)
    x = sps.sosfilt(sps.butter(2, [lo, hi], btype="band", fs=SAMPLE_RATE, output="sos"), x)
    rms = float(np.sqrt(np.mean(x[np.abs(x) > 0.05 * np.abs(x).max()] ** 2))) if np.any(x) else 1.0
    if rng.random() < 0.85:
        snr_db = rng.uniform(5, 40)
        noise = coloured_noise(x.size, float(rng.choice([0.0, 1.0, 2.0])), rng)
        x = x + noise * rms / 10 ** (snr_db / 20)
    x *= 10 ** (rng.uniform(-25, -1) / 20) / max(float(np.abs(x).max()), 1e-12)
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- faces


def registered_photo(photo: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo's largest face registered at WORK_SCALE x 112 px, and its 68 landmarks there."""
    boxes = detect_faces(photo)
    if not boxes:
        raise SynthError(f"no face found in {name}: use a frontal, well-lit photo of one face")
    box = max(boxes, key=lambda b: b.width * b.height)
    lm = landmarks_68(photo, box)
    m = registration_transform(lm) * np.array([[WORK_SCALE], [WORK_SCALE]])
    size = ALIGNED_SIZE * WORK_SCALE
    image = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return image, transform_points(m, lm)


def new_look(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One clip's appearance: mirrored or not, registration nudged, colour/light/contrast changed."""
    size = image.shape[1]
    if rng.random() < 0.5:
        image = image[:, ::-1].copy()
        landmarks = mirror_landmarks(landmarks, size)
    angle, scale = rng.uniform(-4, 4), rng.uniform(0.95, 1.05)
    m = np.asarray(
        cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale), dtype=np.float64
    )  # (2, 3) float64 already
    m[:, 2] += rng.uniform(-2.5, 2.5, 2) * WORK_SCALE
    image = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    landmarks = transform_points(m, landmarks)
    x = image.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.75, 1.3)  # exposure
    x = x * rng.uniform(0.85, 1.15, 3)[None, None, :]  # white balance
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.7, 1.25)  # saturation
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.06, 0.06)  # contrast, brightness
    if rng.random() < 0.4:  # light from one side
        ramp = np.linspace(-1, 1, size)[None, :, None] * rng.uniform(-0.15, 0.15)
        x = x * (1 + ramp)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8), landmarks


def shrink(image: np.ndarray, rng: np.random.Generator, jpeg_quality: int | None) -> np.ndarray:
    small = cv2.resize(image, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_AREA)
    if jpeg_quality is None:
        return small
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    return small if decoded is None else decoded


# ----------------------------------------------------------------------------- one clip


def make_clip(plan: ClipPlan, out_root: Path) -> dict[str, Any]:
    """Render one clip into ``shards/<key>.tar``; returns its record (``records/<key>.json``)."""
    rng = np.random.default_rng([plan.seed, 7])
    if plan.motion is not None:
        real = load_lip_track(plan.motion)
        voice = f"real:{real.name}"
        audio = like_a_recording(real.signal, rng)
        n_frames = min(n_frames_for(audio.size), len(real.visemes))
        visemes = real.visemes[:n_frames]
    else:
        sp = random_speaker(plan.key, plan.seed)
        voice = sp.voice
        samples, rate, phonemes, _ = speech_in_fresh_process(
            SpeechRequest(plan.seed, plan.seconds, sp.voice, sp.rate_wpm, sp.pitch, sp.pitch_range)
        )
        import soxr

        speech16 = soxr.resample(samples.astype(np.float64), rate, SAMPLE_RATE).astype(np.float32)
        audio = like_a_recording(speech16, rng)
        n_frames = n_frames_for(audio.size)
        visemes = viseme_track(phonemes, n_frames, float(rng.uniform(0.9, 1.25)))
    windows = speech_windows(audio, n_frames, plan.lookahead_columns)
    base, lm = registered_photo(read_photo(plan.photo), plan.photo)
    look, lm = new_look(base, lm, rng)
    animator = MouthAnimator(look, lm)
    quality = int(rng.integers(60, 96)) if rng.random() < 0.5 else None
    rows = np.arange(0, n_frames, plan.stride, dtype=np.int32)
    faces = np.empty((rows.size, ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8)
    gaps = np.empty(rows.size, np.float32)
    marks = np.empty((rows.size, 68, 2), np.float32)
    for j, k in enumerate(rows):
        img, dst = animator.render(visemes[k])
        faces[j] = shrink(img, rng, quality)
        # pixel centres: p_112 = (p_224 + 0.5) / 2 - 0.5
        marks[j] = (dst + 0.5) / WORK_SCALE - 0.5
        gaps[j] = np.mean([np.linalg.norm(dst[a] - dst[b]) for a, b in INNER_LIP_PAIRS]) / WORK_SCALE
    from speech2vid.training.datasets.format import identity_candidates

    min_gap = FPS  # identity faces at least a second from the target, as prepare's default
    cands = identity_candidates(rows, min_gap)
    track = Track(
        key=plan.key,
        faces=faces,
        mfcc=windows[rows],
        frames=rows,
        is_target=np.array([c.size > 0 for c in cands]),
        mouth_open=visemes[rows, 0],
        visemes=visemes[rows],
        lip_gap=gaps,
        landmarks=marks,
        meta={
            "video": plan.key,
            "group": plan.group,
            "split": plan.split,
            "fps": FPS,
            "photo": Path(plan.photo).name,
            "voice": voice,
        },
    )
    shard = f"shards/{plan.key}.tar"
    write_shard(out_root / shard, [track])
    record = {
        "video": plan.key,
        "group": plan.group,
        "split": plan.split,
        "status": "ok",
        "shard": shard,
        "samples": int(track.n_targets),
        "track_seconds": round(n_frames / FPS, 3),
        "tracks": [{"key": plan.key, "kept": True}],
        "photo": plan.photo,
    }
    write_json_atomic(out_root / RECORDS_DIR / f"{plan.key}.json", record)
    return record


def _clip_job(args: tuple[ClipPlan, str]) -> dict[str, Any]:
    return make_clip(args[0], Path(args[1]))


# ----------------------------------------------------------------------------- the corpus


def plan_clips(
    photos: list[Path],
    minutes: float,
    seed: int,
    lookahead_columns: int,
    val_photos: int,
    clip_seconds: tuple[float, float] = (4.0, 9.0),
    stride: int = 2,
    real_lips: list[Path] | None = None,
) -> list[ClipPlan]:
    if not photos:
        raise SynthError("--registered needs --photos DIR with at least one face photo")
    if minutes <= 0:
        raise SynthError(f"--minutes must be positive, got {minutes}")
    order = np.random.default_rng([seed, 11]).permutation(len(photos))
    val = {int(i) for i in order[: min(val_photos, max(len(photos) - 1, 0))]}
    per_photo = minutes * 60.0 / len(photos)
    plans = []
    for k, photo in enumerate(photos):
        rng = np.random.default_rng([seed, 13, k])
        left, i = per_photo, 0
        while left > 1.0:
            secs = float(min(max(left, clip_seconds[0]), rng.uniform(*clip_seconds)))
            plans.append(
                ClipPlan(
                    str(photo),
                    f"photo-{photo.stem}",
                    "val" if k in val else "train",
                    i,
                    int(rng.integers(2**31)),
                    secs,
                    lookahead_columns,
                    stride,
                )
            )
            left -= secs
            i += 1
    # Each real clip's lips move one photo drawn at random: every photo gets a share of the real motion.
    pick = np.random.default_rng([seed, 17])
    taken = [0] * len(photos)
    for track in sorted(real_lips or []):
        k = int(pick.integers(len(photos)))
        photo = photos[k]
        split = "val" if k in val else "train"
        plans.append(
            ClipPlan(
                str(photo),
                f"photo-{photo.stem}",
                split,
                taken[k],
                int(pick.integers(2**31)),
                0.0,
                lookahead_columns,
                stride,
                str(track),
            )
        )
        taken[k] += 1
    return plans


def run_registered(
    out_dir: str | os.PathLike[str],
    photos: list[Path],
    minutes: float,
    seed: int,
    lookahead_columns: int,
    *,
    val_photos: int = 2,
    workers: int = 2,
    progress: bool = True,
    real_videos: list[Path] | None = None,
) -> dict[str, Any]:
    """Make (or finish) the corpus; clips already written are kept. Returns the index.

    ``real_videos``: real talking clips whose lips (followed once, cached under ``motion/``) move photos
    with the clips' own audio, beside the ``minutes`` of eSpeak NG speech (``real_motion.py``).
    """
    root = Path(out_dir)
    real_lips = lip_tracks(real_videos, root, workers, progress) if real_videos else []
    plans = plan_clips(photos, minutes, seed, lookahead_columns, val_photos, real_lips=real_lips)
    done = {p.stem for p in (root / RECORDS_DIR).glob("*.json")} if (root / RECORDS_DIR).is_dir() else set()
    todo = [p for p in plans if p.key not in done]
    run_jobs(
        _clip_job, [(p, str(root)) for p in todo], workers, "talking photos", "clip", progress, len(plans) - len(todo)
    )
    settings = {"sample_stride": plans[0].stride, "identity_min_gap": FPS, "lookahead_columns": lookahead_columns}
    prov = {"command": "synth --registered", "photos": [str(p) for p in photos], "minutes": minutes, "seed": seed}
    if real_videos:
        prov["real_lips"] = [p.name for p in real_lips]
    index = build_index(root, settings, prov)
    (root / "photos.json").write_text(json.dumps(sorted({p.photo for p in plans}), indent=1))
    return index
