"""Landmark smoothing, mouth opening, and the audio-visual agreement that picks the speaker.

Landmarks are smoothed over time with a Gaussian (zero phase: offline there is no reason to lag).
The mouth opening of a frame is the mean inner-lip gap (iBUG 61-67, 62-66, 63-65) divided by the
inter-ocular distance, so it does not depend on the face's size in the picture.

Speaker selection (paper section 2 uses SyncNet; this is the simple stand-in the issue asks for,
behind the same function, :func:`sync_score`): the audio energy per video frame (log RMS over the
frame's 40 ms) is cross-correlated with the mouth opening of a track, the video shifted by
-max..+max frames; the best shift is the *AV offset estimate* (positive: the mouth moves after the
sound). The track's *sync score* is the correlation there of the syllable-rate part of both signals
(what changes within a few hundred ms): slower swings say only "talking, then not", which a face
speaking another sentence shares, and loudness follows the jaw poorly over a sentence (closed vowels
are loud too). Among tracks on screen at the same time, the one with the best score is the speaker.
"""

from __future__ import annotations

import numpy as np

from speech2vid.faces.ibug68 import INNER_LIPS, LEFT_EYE, RIGHT_EYE
from speech2vid.features.windows import FPS

_LIP_PAIRS = ((INNER_LIPS[1], INNER_LIPS[7]), (INNER_LIPS[2], INNER_LIPS[6]), (INNER_LIPS[3], INNER_LIPS[5]))
ENERGY_FLOOR = 1e-4  # RMS floor before the log: digital silence is -9.2, not -inf
# Subtracted from the cross-correlation per frame of shift. Speech is rhythmic: the correlation peaks
# again about one syllable (6-9 frames) away, and on a 4 s track that peak can come out a hair higher
# than the true one. Measured on 30 rendered two-face scenes (tests/_scenes.py, seeds 0-15, short and
# long sentences): the speaker's offset came out 3 to 10 frames off in 12 of 15 and 4 of 15 without
# it; with it, in 0 and 1 (a +3). A true 3-frame lag still wins (tests). Real offsets are mostly a few frames.
OFFSET_PENALTY = 0.05
# Below this, swings are slower than syllables: removed before scoring (a Gaussian of this standard
# deviation, about 1.3 Hz). On the same scenes the speaker won 13 of 15 (soundtrack and distractor
# falling silent together) and 15 of 15 (both speaking throughout); scored on the whole signals
# (and without the penalty), 8 and 2.
SYLLABLE_SIGMA_S = 0.12


def _gaussian_along_time(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0, ``sigma`` in samples (edges padded by repetition)."""
    radius = max(1, int(round(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)])
    out = np.zeros_like(x)
    for j, w in enumerate(k):
        out += w * padded[j : j + len(x)]
    return out


def smooth_landmarks(points: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time of ``(n, 68, 2)`` landmarks (edges padded by repetition)."""
    pts = np.asarray(points, dtype=np.float64)
    if sigma <= 0 or len(pts) < 2:
        return pts.copy()
    return _gaussian_along_time(pts, sigma)


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap / inter-ocular distance, ``(n,)`` for ``(n, 68, 2)`` landmarks."""
    pts = np.asarray(points, dtype=np.float64)
    gap = np.mean([np.linalg.norm(pts[:, a] - pts[:, b], axis=-1) for a, b in _LIP_PAIRS], axis=0)
    eyes = np.linalg.norm(pts[:, list(LEFT_EYE)].mean(1) - pts[:, list(RIGHT_EYE)].mean(1), axis=-1)
    opening: np.ndarray = gap / np.maximum(eyes, 1e-6)
    return opening


def frame_energy(signal_16k: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Log RMS of the 16 kHz signal over each video frame's interval (centred on its time), ``(n_frames,)``."""
    x = np.asarray(signal_16k, dtype=np.float64)
    out = np.full(n_frames, np.log(ENERGY_FLOOR))
    half = 16000 / fps / 2
    for k in range(n_frames):
        c = 16000 * k / fps
        seg = x[max(0, int(c - half)) : max(0, int(c + half))]
        if seg.size:
            out[k] = np.log(max(float(np.sqrt(np.mean(seg**2))), ENERGY_FLOOR))
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _zscore(x: np.ndarray) -> np.ndarray:
    z: np.ndarray = (x - x.mean()) / (x.std() + 1e-9)
    return z


def _lagged_products(a: np.ndarray, b: np.ndarray, d: int) -> float:
    """``sum_k a[k + d] b[k]`` over the overlap, divided by the full length (not the overlap)."""
    n = len(a)
    lo, hi = max(0, -d), min(n, n - d)
    return float(np.dot(a[lo + d : hi + d], b[lo:hi]) / n) if hi > lo else 0.0


def sync_score(mouth: np.ndarray, energy: np.ndarray, max_offset: int, fps: float = FPS) -> tuple[float, int]:
    """Agreement of a track's mouth opening with the audio energy (aligned frame by frame), and the offset.

    Both signals are standardised over the whole track; the offset ``d`` (mouth frame ``k + d`` pairs
    with audio frame ``k``) maximises the cross-correlation of the levels plus that of the
    frame-to-frame changes, less :data:`OFFSET_PENALTY` per frame of shift: levels alone give a broad
    peak (both are slow envelopes), changes (openings at onsets) a sharp one. Dividing by the track
    length rather than the overlap keeps large shifts, which compare fewer frames, from winning by
    chance. The score is the Pearson correlation at that offset of both signals less their Gaussian
    smoothing over :data:`SYLLABLE_SIGMA_S`, in [-1, 1].

    Args:
        mouth, energy: per video frame, the same length.
        max_offset: frames searched either way.
        fps: the video's frame rate (the syllable band is set in seconds).

    Returns:
        ``(score, offset)``.
    """
    m, e = np.asarray(mouth, dtype=np.float64), np.asarray(energy, dtype=np.float64)
    if len(m) < 5:
        return 0.0, 0
    zm, ze = _zscore(m), _zscore(e)
    dm, de = _zscore(np.diff(m)), _zscore(np.diff(e))
    best, best_d = -np.inf, 0
    for d in sorted(range(-max_offset, max_offset + 1), key=abs):  # ties go to the smaller shift
        if abs(d) > len(m) // 2:
            continue
        total = _lagged_products(zm, ze, d) + _lagged_products(dm, de, d) - OFFSET_PENALTY * abs(d)
        if total > best:
            best, best_d = total, d
    sigma = SYLLABLE_SIGMA_S * fps
    fm, fe = m - _gaussian_along_time(m, sigma), e - _gaussian_along_time(e, sigma)
    n = len(m)
    lo, hi = max(0, -best_d), min(n, n - best_d)
    return _corr(fm[lo + best_d : hi + best_d], fe[lo:hi]), best_d


def select_speakers(spans: list[tuple[int, int]], scores: list[float], min_overlap: float = 0.3) -> list[bool]:
    """Keep a track unless another track overlapping it in time (by ``min_overlap`` of the shorter) scores higher."""
    keep = []
    for i, (s0, e0) in enumerate(spans):
        beaten = False
        for j, (s1, e1) in enumerate(spans):
            if i == j:
                continue
            overlap = min(e0, e1) - max(s0, s1)
            if overlap > min_overlap * min(e0 - s0, e1 - s1) and (scores[j], -j) > (scores[i], -i):
                beaten = True
                break
        keep.append(not beaten)
    return keep
