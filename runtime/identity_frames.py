"""Pick the identity images of a re-dub from the source video itself.

A first pass decodes the video once and runs the face detector on at most ``n_samples`` frames spread
evenly over it (bounded time, only the small aligned crops are kept). Five of those are chosen spread
both in time and in mouth opening (farthest-point sampling), so the identity encoder sees the face
with its mouth closed and open, under the lighting of the whole clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from speech2vid.errors import FaceError
from speech2vid.faces import align_image, detect_faces, note_face_choice, transform_points
from speech2vid.faces.ibug68 import INNER_LIPS
from speech2vid.frames.yuv import frame_rgb
from speech2vid.sources.video_file import VideoInfo, upright

log = logging.getLogger("speech2vid.runtime.identity_frames")

N_IDENTITY = 5
# Inner-lip points facing each other across the mouth (iBUG 61-67, 62-66, 63-65, 0-based).
_LIP_PAIRS = ((INNER_LIPS[1], INNER_LIPS[7]), (INNER_LIPS[2], INNER_LIPS[6]), (INNER_LIPS[3], INNER_LIPS[5]))


@dataclass(frozen=True, eq=False)
class IdentitySample:
    """One sampled frame's face: index in the video, aligned (112, 112, 3) uint8 crop, mouth opening."""

    frame: int
    image: np.ndarray
    mouth_open: float  # mean inner-lip gap in aligned px (of 112)


def mouth_opening(aligned_landmarks: np.ndarray) -> float:
    """Mean gap between facing inner-lip points of (68, 2) aligned landmarks, in aligned px."""
    return float(np.mean([np.linalg.norm(aligned_landmarks[a] - aligned_landmarks[b]) for a, b in _LIP_PAIRS]))


def spread_picks(times: np.ndarray, openings: np.ndarray, k: int = N_IDENTITY) -> list[int]:
    """Indices of ``k`` samples spread in (time, mouth opening), both scaled to [0, 1].

    Farthest-point sampling from the sample of median opening; deterministic. Returns all indices
    (sorted) when there are ``k`` or fewer.
    """
    n = len(times)
    if n <= k:
        return list(range(n))

    def unit(v: np.ndarray) -> np.ndarray:
        span = float(v.max() - v.min())
        return (v - v.min()) / span if span > 0 else np.zeros_like(v, dtype=np.float64)

    pts = np.stack([unit(np.asarray(times, float)), unit(np.asarray(openings, float))], axis=1)
    picks = [int(np.argsort(openings, kind="stable")[n // 2])]
    dist = np.linalg.norm(pts - pts[picks[0]], axis=1)
    while len(picks) < k:
        nxt = int(np.argmax(dist))
        picks.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[nxt], axis=1))
    return sorted(picks)


def sample_faces(
    info: VideoInfo, n_samples: int, face_index: int | None = None, stop_after: int | None = None
) -> list[IdentitySample]:
    """Faces of up to ``n_samples`` frames spread evenly over the video (one decoding pass).

    Frames without the face (``face_index``, 0 = largest) are skipped; ``stop_after`` ends the pass
    after that many faces (a quick "is there a face at all" check when the identity photos are given).
    Raises FaceError when none of the sampled frames shows it.
    """
    import av

    wanted = set(np.linspace(0, info.frames - 1, min(n_samples, info.frames)).round().astype(int).tolist())
    last_wanted, index = max(wanted), face_index or 0
    out: list[IdentitySample] = []
    most_faces = 0  # the most faces seen in one sampled frame, for the error message
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i not in wanted:
                continue
            rgb = upright(frame_rgb(frame), info.turn)
            boxes = detect_faces(rgb, thorough=False)
            if face_index is None and most_faces < 2 <= len(boxes):  # said once, where several first show
                note_face_choice(boxes, index, f"frame {i} of {info.path}")
            most_faces = max(most_faces, len(boxes))
            if index < len(boxes):
                face = align_image(rgb, box=boxes[index])
                if face.landmarks is not None and face.transform is not None:
                    opening = mouth_opening(transform_points(face.transform, face.landmarks))
                    out.append(IdentitySample(i, face.image, opening))
            if (stop_after is not None and len(out) >= stop_after) or i >= last_wanted:
                break
    if out:
        return out
    where = f"{len(wanted)} frames sampled across {str(info.path)!r}"
    if most_faces == 0:
        raise FaceError(f"no face found in {where}: re-dubbing needs a video of a speaker facing the camera")
    raise FaceError(
        f"--face-index {index} asks for face {index + 1}, but at most {most_faces} face(s) show in "
        f"{where}: use --face-index 0..{most_faces - 1}"
    )


def check_has_face(info: VideoInfo, n_samples: int, face_index: int | None = None) -> None:
    """FaceError unless one of the sampled frames shows the face (stops at the first one found)."""
    sample_faces(info, n_samples, face_index, stop_after=1)


def identity_from_video(info: VideoInfo, n_samples: int, face_index: int | None = None) -> list[IdentitySample]:
    """Five (or fewer, for very short clips) identity faces from the video; FaceError when it has none."""
    samples = sample_faces(info, n_samples, face_index)
    picks = spread_picks(np.array([s.frame for s in samples]), np.array([s.mouth_open for s in samples]))
    chosen = [samples[i] for i in picks]
    log.info(
        "identity from frames %s (mouth opening %s px)",
        [s.frame for s in chosen],
        [round(s.mouth_open, 1) for s in chosen],
    )
    return chosen
