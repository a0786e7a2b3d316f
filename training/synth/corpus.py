"""``speech2vid synth``: make a synthetic talking-face corpus offline, then ``prepare`` it.

For each identity (a procedural face from a seed, or a photo from ``--photos``) and a speaking
voice (eSpeak NG language, variant, rate, pitch), videos of several sentences with pauses are made:
speech and its phoneme timeline from eSpeak NG, a viseme track with coarticulation, blinks, head
motion, rendered at 25 fps. Each video is written as H.264 + AAC MP4 with its ground truth beside it
(``<video>.truth.npz``: visemes and landmarks per frame, the phoneme timeline), into
``DATASET/source/<identity>/``; a ``splits.json`` there holds the identities out for validation. The
very same ``prepare`` pipeline as for real videos then makes the dataset. Everything is drawn from
``seed``: the same seed gives the same videos, bit for bit (H.264 encoding is deterministic with
the same library build), and the same dataset.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speech2vid.audio.io import Audio
from speech2vid.config import PrepareConfig, SynthConfig
from speech2vid.errors import UserError
from speech2vid.faces.photo import read_photo
from speech2vid.files import PHOTO_SUFFIXES, files_in, partial_path
from speech2vid.training.datasets.format import FPS
from speech2vid.training.synth.face_render import FaceRenderer, blink_track, random_identity
from speech2vid.training.synth.speech import SpeechRequest, speech_in_fresh_process
from speech2vid.training.synth.tts import VARIANTS, VOICES
from speech2vid.training.synth.visemes import viseme_track

SOURCE_DIR = "source"
PHOTO_EXTENSIONS = PHOTO_SUFFIXES


class SynthError(UserError):
    """The synthetic corpus cannot be made as asked."""


@dataclass(frozen=True)
class Speaker:
    name: str  # the identity group, e.g. id0003 or photo-alice
    seed: int
    voice: str
    rate_wpm: int
    pitch: int
    pitch_range: int
    photo: str | None = None


@dataclass(frozen=True)
class VideoPlan:
    speaker: Speaker
    index: int
    seconds: float
    seed: int

    @property
    def rel(self) -> str:
        return f"{self.speaker.name}/utt{self.index:04d}.mp4"


def random_speaker(name: str, seed: int, photo: str | None = None) -> Speaker:
    rng = np.random.default_rng([seed, 1])
    voice = f"{VOICES[int(rng.integers(len(VOICES)))]}+{VARIANTS[int(rng.integers(len(VARIANTS)))]}"
    return Speaker(
        name, seed, voice, int(rng.integers(130, 200)), int(rng.integers(25, 80)), int(rng.integers(20, 80)), photo
    )


def plan_corpus(identities: int, minutes: float, seed: int, cfg: SynthConfig, photos: list[Path]) -> list[VideoPlan]:
    """The videos to make: ``minutes`` of speech shared evenly by the identities (photos first)."""
    if identities < 1:
        raise SynthError(f"--identities must be at least 1, got {identities}")
    if minutes <= 0:
        raise SynthError(f"--minutes must be positive, got {minutes}")
    speakers = [random_speaker(f"photo-{p.stem}", seed * 100003 + 50000 + k, str(p)) for k, p in enumerate(photos)]
    speakers += [random_speaker(f"id{k:04d}", seed * 100003 + k) for k in range(max(0, identities - len(speakers)))]
    per_identity = minutes * 60.0 / len(speakers)
    lo, hi = cfg.utterance_seconds
    plans = []
    for sp in speakers:
        rng = np.random.default_rng([sp.seed, 2])
        left, k = per_identity, 0
        while left > 0.5:
            secs = min(left, float(rng.uniform(lo, hi)))
            if left - secs < lo / 2:  # no tiny last video: fold the rest in
                secs = left
            plans.append(VideoPlan(sp, k, max(secs, 3.0), int(rng.integers(2**31))))
            left -= secs
            k += 1
    return plans


def make_video(plan: VideoPlan, source: Path, cfg: SynthConfig) -> Path:
    """Render one video and its ground truth (skipped when both already exist: resumable)."""
    from speech2vid.sinks.video_file import VideoFileSink

    path = source / plan.rel
    truth_path = path.with_name(path.name + ".truth.npz")
    if path.is_file() and truth_path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    sp = plan.speaker
    req = SpeechRequest(plan.seed, plan.seconds, sp.voice, sp.rate_wpm, sp.pitch, sp.pitch_range)
    samples, rate, phonemes, texts = speech_in_fresh_process(req)  # clean eSpeak NG state per video
    n_frames = int(round(samples.size / rate * FPS))
    rng = np.random.default_rng([plan.seed, 4])
    if sp.photo is not None:
        from speech2vid.training.synth.photo_anim import PhotoAnimator

        renderer: Any = PhotoAnimator(
            read_photo(sp.photo), cfg.frame_size, np.random.default_rng([sp.seed, 5]), name=sp.photo
        )
        articulation = 1.0
    else:
        identity = random_identity(sp.seed, cfg.frame_size)
        renderer = FaceRenderer(identity)
        articulation = identity.articulation
    visemes = viseme_track(phonemes, n_frames, articulation)
    blinks = blink_track(n_frames, rng)
    landmarks = np.zeros((n_frames, 68, 2), np.float32)
    tmp_truth = partial_path(truth_path, ".npz")
    with VideoFileSink(
        path,
        fps=FPS,
        size=(cfg.frame_size, cfg.frame_size),
        audio=Audio(samples[:, None], rate),
        crf=cfg.crf,
        preset=cfg.preset,
    ) as sink:
        for k in range(n_frames):
            frame, pts = renderer.render(visemes[k], float(blinks[k]), k / FPS)
            landmarks[k] = pts
            sink.write(frame)
        np.savez_compressed(
            tmp_truth,
            visemes=visemes,
            landmarks=landmarks,
            blinks=blinks,
            phonemes=json.dumps(phonemes),
            texts=json.dumps(texts),
            voice=sp.voice,
        )
    os.replace(tmp_truth, truth_path)
    return path


def _make_video_job(args: tuple[VideoPlan, str, dict[str, Any]]) -> str:
    import cv2

    cv2.setNumThreads(1)
    plan, source, cfg = args
    return str(make_video(plan, Path(source), SynthConfig(**cfg)))


def val_identities(names: list[str], fraction: float, seed: int) -> set[str]:
    """The identities held out for validation: ``round(fraction * n)``, at least one when there are two or more."""
    if len(names) < 2 or fraction <= 0:
        return set()
    k = max(1, int(round(fraction * len(names))))
    order = np.random.default_rng([seed, 6]).permutation(len(names))
    return {sorted(names)[i] for i in order[:k]}


def find_photos(folder: str | os.PathLike[str]) -> list[Path]:
    return files_in(folder, PHOTO_EXTENSIONS, "face photos", "--photos")


def run_synth(
    out_dir: str | os.PathLike[str],
    identities: int,
    minutes: float,
    *,
    seed: int = 0,
    photos_dir: str | os.PathLike[str] | None = None,
    cfg: SynthConfig | None = None,
    prepare_cfg: PrepareConfig | None = None,
    progress: bool = True,
) -> tuple[Any, dict[str, float]]:
    """Make the corpus in ``out_dir``; returns (prepare summary, timings in seconds)."""
    from speech2vid.training.prepare.run import run_prepare

    cfg = cfg or SynthConfig()
    prepare_cfg = prepare_cfg or PrepareConfig()
    root = Path(out_dir).expanduser()
    source = root / SOURCE_DIR
    source.mkdir(parents=True, exist_ok=True)
    photos = find_photos(photos_dir) if photos_dir is not None else []
    # Photos that have no detectable face are refused up front, with their name.
    for p in photos:
        from speech2vid.faces import detect_faces

        if not detect_faces(read_photo(p)):
            raise SynthError(f"no face found in {p}: use a frontal, well-lit photo of one face")
    plans = plan_corpus(max(identities, len(photos)), minutes, seed, cfg, photos)
    names = sorted({p.speaker.name for p in plans})
    val = val_identities(names, cfg.val_identity_fraction, seed)
    splits = {n: ("val" if n in val else "train") for n in names}
    (source / "splits.json").write_text(json.dumps(splits, indent=1, sort_keys=True) + "\n")

    t0 = time.perf_counter()
    workers = max(1, min(cfg.workers or os.cpu_count() or 1, len(plans)))
    jobs = [(p, str(source), dataclasses.asdict(cfg)) for p in plans]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="video", desc="render", dynamic_ncols=True)
    if workers == 1:
        for j in jobs:
            _make_video_job(j)
            if bar:
                bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_make_video_job, jobs):
                if bar:
                    bar.update()
    if bar:
        bar.close()
    t1 = time.perf_counter()
    prov = {
        "command": "synth",
        "seed": seed,
        "identities": len(names),
        "minutes": minutes,
        "photos": [str(p) for p in photos],
        "synth": dataclasses.asdict(cfg),
        "speakers": {p.speaker.name: p.speaker.voice for p in plans},
    }
    summary = run_prepare(source, root, prepare_cfg, progress=progress, provenance=prov)
    t2 = time.perf_counter()
    return summary, {"render_s": t1 - t0, "prepare_s": t2 - t1, "speech_s": sum(p.seconds for p in plans)}


def make_corpus(out_dir: str | os.PathLike[str], identities: int = 2, minutes: float = 0.2, seed: int = 0) -> Path:
    """A small synthetic dataset for other tests (a few seconds of work); returns its folder.

    Videos are short (3-5 s), so tracks are short too; the dataset format is the full one.
    """
    cfg = SynthConfig(utterance_seconds=(3.0, 5.0), workers=1)
    prep = PrepareConfig(workers=1, min_track_seconds=1.5, identity_min_gap=15)
    run_synth(out_dir, identities, minutes, seed=seed, cfg=cfg, prepare_cfg=prep, progress=False)
    return Path(out_dir)


__all__ = ["make_corpus", "make_video", "plan_corpus", "run_synth", "val_identities"]
