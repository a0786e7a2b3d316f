"""Prepare one video: shots, faces, tracks, landmarks, speaker, registration, samples -> one shard.

Memory stays bounded by the video's small per-frame data: pass 1 computes colour histograms,
detections and the 68 landmarks of every detected face; then only the sampled frames of the speaking
tracks are warped to the 112x112 template, from frames held since pass 1 when they fit in
``KEEP_BYTES``, else from a second decoding pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.config import PrepareConfig
from speech2vid.errors import UserError
from speech2vid.faces.align import registration_transform, transform_points, warp_aligned
from speech2vid.faces.detect import detect_faces
from speech2vid.faces.landmarks import BoxRelation, face_landmarks
from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS, speech_windows
from speech2vid.frames.yuv import frame_rgb
from speech2vid.sources.video_file import frame_turn, upright
from speech2vid.training.datasets.format import FPS, N_VISEMES, Track, identity_candidates, write_shard
from speech2vid.training.prepare.shots import colour_histogram, shot_boundaries
from speech2vid.training.prepare.speaker import (
    frame_energy,
    mouth_opening,
    select_speakers,
    smooth_landmarks,
    sync_score,
)
from speech2vid.training.prepare.tracks import link_detections

log = logging.getLogger("speech2vid.training.prepare")

KEEP_BYTES = 256 * 2**20  # sampled frames held from pass 1 (else decoded again in pass 2)
TRUTH_SUFFIX = ".truth.npz"  # ground truth beside a synthetic video: visemes (n_frames, 4)
_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))


class SkipVideo(Exception):
    """This video yields nothing; the message is the reason written to the report."""


@dataclass(frozen=True)
class VideoJob:
    path: Path
    rel: str  # path relative to the videos folder, '/' separated
    video_id: str
    group: str
    split: str


def _open(path: Path) -> Any:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise SkipVideo(
            f"cannot open as a video ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not container.streams.video:
        container.close()
        raise SkipVideo("no video track")
    return container


def upright_frames(path: Path) -> Iterator[np.ndarray]:
    """The video's frames as RGB, turned upright (a phone's rotation applied); SkipVideo on corrupt data."""
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        turn: int | None = None
        for frame in container.decode(stream):
            if turn is None:  # the first frame's: a phone's rotation holds for the whole video
                turn = frame_turn(frame, stream)
            yield upright(frame_rgb(frame), turn)
    except av.FFmpegError as exc:
        raise SkipVideo(f"corrupt video data ({type(exc).__name__})") from None
    finally:
        container.close()


def video_rate(path: Path) -> float:
    """The video's frame rate; SkipVideo when it is not a video or states none."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
    finally:
        container.close()
    if not rate or float(rate) <= 0:
        raise SkipVideo("the video states no frame rate")
    return float(rate)


def _maybe_sample(i: int, fps: float, stride: int) -> bool:
    """Whether video frame ``i`` is the nearest frame to a sampled point of the 25 fps grid."""
    g0 = int(np.floor((i - 0.5) * FPS / fps))
    return any(g % stride == 0 and round(g * fps / FPS) == i for g in range(max(g0, 0), g0 + 3))


class FaceFollower:
    """Every face of consecutive frames with its 68 landmarks, as MediaPipe tracks: each face's mesh is seeded
    from its landmarks in the previous frame; the detector runs every ``detect_every`` frames, and at once when
    the mesh loses a face."""

    def __init__(self, min_face_px: int, detect_every: int):
        self.min_face_px, self.detect_every = min_face_px, detect_every
        self._faces: list[tuple[BoxRelation, np.ndarray]] = []  # (box relation, landmarks) of the last frame
        self._since = 0  # frames since the last detection

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Rows ``(left, top, right, bottom, 68 x (x, y))`` of the faces in ``rgb``."""
        followed: list[tuple[BoxRelation, np.ndarray]] = []
        boxes = []
        if self._faces and self._since < self.detect_every - 1:
            for relation, points in self._faces:
                box = relation.box_for(points)
                found = face_landmarks(rgb, box)
                if not found.is_face:
                    followed = []
                    break
                followed.append((relation, found.points))
                boxes.append(box)
        if followed:
            self._since += 1
        else:
            boxes = [b for b in detect_faces(rgb, thorough=False) if b.width >= self.min_face_px]
            followed = []
            for box in boxes:
                points = face_landmarks(rgb, box).points
                followed.append((BoxRelation.of(box, points), points))
            self._since = 0
        self._faces = followed
        return [
            np.concatenate([[b.left, b.top, b.right, b.bottom], p.ravel().astype(np.float64)])
            for b, (_, p) in zip(boxes, followed)
        ]


def _read_truth(path: Path, n_frames: int) -> np.ndarray | None:
    truth = path.with_name(path.name + TRUTH_SUFFIX) if not path.name.endswith(TRUTH_SUFFIX) else None
    if truth is None or not truth.is_file():
        return None
    with np.load(truth, allow_pickle=False) as z:
        v = np.asarray(z["visemes"], dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != N_VISEMES:
        return None
    out = np.full((n_frames, N_VISEMES), np.nan, np.float32)
    out[: min(n_frames, len(v))] = v[:n_frames]
    return out


def prepare_video(
    job: VideoJob, out_root: Path, cfg: PrepareConfig, lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS
) -> dict[str, Any]:
    """Prepare one video; returns its record (status ``ok`` with a shard, or ``skipped`` with the reason)."""
    record: dict[str, Any] = {
        "video": job.rel,
        "video_id": job.video_id,
        "group": job.group,
        "split": job.split,
        "status": "skipped",
        "reason": "",
        "shard": None,
        "tracks": [],
        "samples": 0,
        "frames": 0,
        "fps": 0.0,
        "seconds": 0.0,
        "track_seconds": 0.0,
        "shots": [],
        "synthetic": False,
    }
    try:
        _prepare(job, out_root, cfg, record, lookahead_columns)
        record["status"] = "ok"
    except SkipVideo as exc:
        record["reason"] = str(exc)
    except UserError as exc:  # audio decoding errors carry their own one-line reason
        record["reason"] = str(exc)
    return record


def _prepare(job: VideoJob, out_root: Path, cfg: PrepareConfig, record: dict[str, Any], lookahead_columns: int) -> None:
    fps = video_rate(job.path)  # first: a file that is no video at all says so
    try:
        audio = read_audio(job.path)
    except UserError as exc:
        msg = str(exc)
        raise SkipVideo("no audio track" if "no audio track" in msg else f"unreadable audio: {msg}") from None
    signal = to_model_rate(audio)
    if float(np.max(np.abs(signal))) < 1e-3:
        raise SkipVideo("the audio is silent (peak below -60 dBFS)")

    # Pass 1: histograms, detections and landmarks of every frame.
    hists: list[np.ndarray] = []
    detections: dict[int, list[np.ndarray]] = {}
    n = 0
    # Frames that may become samples are kept from pass 1 while they fit in KEEP_BYTES (short or small
    # videos, e.g. the synthetic corpus); otherwise pass 2 decodes the video again.
    kept_frames: dict[int, np.ndarray] | None = {}
    kept_bytes = 0
    follow = FaceFollower(cfg.min_face_px, cfg.detect_every)
    for i, rgb in enumerate(upright_frames(job.path)):
        n = i + 1
        if kept_frames is not None and _maybe_sample(i, fps, cfg.sample_stride):
            kept_bytes += rgb.nbytes
            if kept_bytes <= KEEP_BYTES:
                kept_frames[i] = rgb
            else:
                kept_frames = None
        hists.append(colour_histogram(rgb))
        found = follow(rgb)
        if found:
            detections[i] = found
    if n == 0:
        raise SkipVideo("the video decodes to no frames")
    record.update(frames=n, fps=fps, seconds=round(n / fps, 3))
    shots = shot_boundaries(np.stack(hists), cfg.shot_threshold)
    record["shots"] = [list(s) for s in shots]
    min_len = max(2, math.ceil(cfg.min_track_seconds * fps))
    tracks = link_detections(detections, shots, min_iou=cfg.track_min_iou, max_gap=cfg.track_max_gap, min_length=1)
    if not detections:
        raise SkipVideo(f"no face found in any of its {n} frames")

    energy = frame_energy(signal, n, fps)
    n_grid = max(1, round(n * FPS / fps))
    windows = speech_windows(signal, n_grid, lookahead_columns)
    truth = _read_truth(job.path, n_grid)
    record["synthetic"] = truth is not None

    infos: list[dict[str, Any]] = []
    landmarks: list[np.ndarray] = []
    for k, t in enumerate(tracks):
        data = np.stack(t.boxes)
        lm = smooth_landmarks(data[:, 4:].reshape(-1, 68, 2), cfg.landmark_sigma)
        landmarks.append(lm)
        info: dict[str, Any] = {"key": f"{job.video_id}-t{k}", "start": t.start, "end": t.end, "frames": len(t)}
        if len(t) < min_len:
            info.update(kept=False, reason=f"shorter than {cfg.min_track_seconds:g} s")
        else:
            score, offset = sync_score(mouth_opening(lm), energy[t.start : t.end], cfg.max_av_offset, fps)
            info.update(sync_score=round(score, 4), av_offset=offset)
        infos.append(info)
    long_ones = [i for i, info in enumerate(infos) if "sync_score" in info]
    keep = select_speakers(
        [(tracks[i].start, tracks[i].end) for i in long_ones], [infos[i]["sync_score"] for i in long_ones]
    )
    for i, speaker in zip(long_ones, keep):
        info = infos[i]
        info["speaker"] = bool(speaker)
        if not speaker:
            info.update(kept=False, reason="another face on screen agrees better with the audio")
        elif info["sync_score"] < cfg.min_sync_score:
            info.update(kept=False, reason=f"mouth does not follow the audio (sync {info['sync_score']:.2f})")
        else:
            info["kept"] = True
    record["tracks"] = infos
    kept = [i for i, info in enumerate(infos) if info.get("kept")]
    if not kept:
        reasons = sorted({info.get("reason", "") for info in infos})
        raise SkipVideo(f"no usable face track ({len(infos)} track(s): {'; '.join(reasons)})")

    # Sampled frames of each kept track: grid frame g (25 fps) -> video frame round(g * fps / 25).
    wanted: dict[int, list[tuple[int, int, int]]] = {}  # video frame -> (track, grid frame, row)
    plan: dict[int, list[int]] = {}
    for ti in kept:
        t = tracks[ti]
        grid = [g for g in range(0, n_grid, cfg.sample_stride) if t.start <= round(g * fps / FPS) < t.end]
        plan[ti] = grid
        for row, g in enumerate(grid):
            wanted.setdefault(round(g * fps / FPS), []).append((ti, g, row))
    faces = {ti: np.zeros((len(plan[ti]), 112, 112, 3), np.uint8) for ti in kept}
    gaps = {ti: np.zeros(len(plan[ti]), np.float32) for ti in kept}
    frames_again = kept_frames.items() if kept_frames is not None else enumerate(upright_frames(job.path))
    for i, rgb in frames_again:
        for ti, g, row in wanted.get(i, ()):
            lm = landmarks[ti][i - tracks[ti].start]
            m = registration_transform(lm)
            faces[ti][row] = warp_aligned(rgb, m)
            aligned = transform_points(m, lm)
            gaps[ti][row] = np.mean([np.linalg.norm(aligned[a] - aligned[b]) for a, b in _INNER_PAIRS])

    out_tracks = []
    for ti in kept:
        rows = np.array(plan[ti], dtype=np.int32)
        if rows.size == 0:
            continue
        cands = identity_candidates(rows, cfg.identity_min_gap)
        vis = truth[rows] if truth is not None else np.full((rows.size, N_VISEMES), np.nan, np.float32)
        info = infos[ti]
        out_tracks.append(
            Track(
                key=info["key"],
                faces=faces[ti],
                mfcc=windows[rows],
                frames=rows,
                is_target=np.array([c.size > 0 for c in cands]),
                mouth_open=vis[:, 0],
                visemes=vis,
                lip_gap=gaps[ti],
                meta={
                    "video": job.rel,
                    "group": job.group,
                    "split": job.split,
                    "fps": fps,
                    "sync_score": info["sync_score"],
                    "av_offset": info["av_offset"],
                },
            )
        )
        info["samples"] = int(out_tracks[-1].n_targets)
    samples = sum(t.n_targets for t in out_tracks)
    if samples == 0:
        raise SkipVideo(
            f"speaking tracks too short for identity frames {cfg.identity_min_gap} frames from every target"
        )
    shard = f"shards/{job.video_id}.tar"
    write_shard(out_root / shard, out_tracks)
    record.update(
        shard=shard,
        samples=samples,
        track_seconds=round(sum(tracks[ti].end - tracks[ti].start for ti in kept) / fps, 3),
    )
