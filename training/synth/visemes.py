"""Phoneme timeline -> per-frame mouth parameters (visemes), with coarticulation.

Each phoneme has a target for the four parameters of :data:`speech2vid.training.datasets.VISEME_NAMES`
(jaw opening 0..1, lip width -1..1 (negative = narrow), lip rounding 0..1, teeth showing 0..1) and a
dominance: how strongly it holds the mouth against its neighbours. The track is the
dominance-weighted mean of all targets (Cohen & Massaro, "Modeling coarticulation in synthetic
visual speech", 1993): dominance is flat over a phoneme's own interval and decays exponentially
(time constant ``TAU_S``) outside it, so a bilabial closure (/p b m/, dominance 3) always shuts the
lips while /h k g/ (0.4) take the shape of the vowels around them. Diphthongs move from their first
to their second vowel's target. Frames get the mean of the 100 Hz track over their 40 ms.
"""

from __future__ import annotations

import numpy as np

from speech2vid.faces.mouth_model import REST_VISEMES
from speech2vid.training.datasets.format import FPS, N_VISEMES

TAU_S = 0.045  # decay of a phoneme's dominance outside its own interval
RATE = 100  # Hz, the track before averaging per frame


def _target(v: np.ndarray) -> tuple[float, float, float, float]:
    jaw_open, lip_width, lip_round, teeth = (float(x) for x in v)
    return jaw_open, lip_width, lip_round, teeth


# (jaw_open, lip_width, lip_round, teeth), dominance
REST = (_target(REST_VISEMES), 0.6)
_CONSONANTS: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "p": ((0.0, 0.0, 0.1, 0.0), 3.0),
    "b": ((0.0, 0.0, 0.1, 0.0), 3.0),
    "m": ((0.0, 0.0, 0.1, 0.0), 3.0),
    "f": ((0.06, 0.1, 0.0, 1.0), 2.5),
    "v": ((0.06, 0.1, 0.0, 1.0), 2.5),
    "T": ((0.18, 0.1, 0.0, 0.9), 1.2),
    "D": ((0.18, 0.1, 0.0, 0.9), 1.2),
    "s": ((0.1, 0.35, 0.0, 1.0), 1.2),
    "z": ((0.1, 0.35, 0.0, 1.0), 1.2),
    "t": ((0.16, 0.15, 0.0, 0.7), 0.8),
    "d": ((0.16, 0.15, 0.0, 0.7), 0.8),
    "n": ((0.16, 0.1, 0.0, 0.6), 0.7),
    "l": ((0.22, 0.1, 0.0, 0.6), 0.7),
    "S": ((0.14, -0.3, 0.7, 0.8), 1.5),
    "Z": ((0.14, -0.3, 0.7, 0.8), 1.5),
    "tS": ((0.14, -0.3, 0.7, 0.8), 1.5),
    "dZ": ((0.14, -0.3, 0.7, 0.8), 1.5),
    "r": ((0.2, -0.2, 0.45, 0.3), 1.0),
    "w": ((0.1, -0.5, 1.0, 0.0), 2.0),
    "j": ((0.15, 0.35, 0.0, 0.5), 1.0),
    "k": ((0.28, 0.0, 0.0, 0.3), 0.4),
    "g": ((0.28, 0.0, 0.0, 0.3), 0.4),
    "N": ((0.25, 0.0, 0.0, 0.3), 0.4),
    "h": ((0.35, 0.0, 0.0, 0.2), 0.3),
    "x": ((0.28, 0.0, 0.0, 0.3), 0.4),
    "?": ((0.2, 0.0, 0.0, 0.2), 0.5),
}
_VOWELS: dict[str, tuple[float, float, float, float]] = {
    "a": (0.85, 0.2, 0.0, 0.3),
    "A": (0.95, 0.0, 0.1, 0.2),
    "0": (0.8, -0.1, 0.4, 0.2),
    "V": (0.7, 0.1, 0.0, 0.3),
    "E": (0.6, 0.4, 0.0, 0.5),
    "e": (0.5, 0.45, 0.0, 0.5),
    "I": (0.35, 0.5, 0.0, 0.6),
    "i": (0.28, 0.7, 0.0, 0.7),
    "@": (0.4, 0.1, 0.0, 0.4),
    "3": (0.4, -0.1, 0.3, 0.3),
    "O": (0.65, -0.3, 0.7, 0.2),
    "o": (0.5, -0.4, 0.8, 0.1),
    "U": (0.3, -0.4, 0.8, 0.1),
    "u": (0.22, -0.55, 1.0, 0.0),
    "y": (0.25, -0.4, 0.9, 0.2),
}
VOWEL_DOMINANCE = 1.0


def _vowel_target(symbol: str) -> tuple[float, float, float, float] | None:
    """The target of a vowel mnemonic's first letter (eSpeak's ``a#``, ``A:``, ``@L``...), or None."""
    for ch in symbol:
        if ch in _VOWELS:
            return _VOWELS[ch]
        if ch not in "'\",%=:;#-":
            return None
    return None


def phoneme_targets(symbol: str) -> list[tuple[tuple[float, float, float, float], float]]:
    """One (target, dominance) for a phoneme, two for a diphthong (first and second half)."""
    s = symbol.strip("'\",%=")
    if not s or s[0] == "_":
        return [REST]
    if s in _CONSONANTS:
        return [_CONSONANTS[s]]
    if s[0] in _CONSONANTS and (len(s) == 1 or s[1] in "#:;"):
        return [_CONSONANTS[s[0]]]
    first = _vowel_target(s)
    if first is None:
        return [REST] if s[0] in "_" else [((0.3, 0.0, 0.0, 0.3), 0.5)]
    # A second vowel letter after the first makes a diphthong (aI, aU, eI, oU, OI, i@, e@, U@).
    tail = s[1:].lstrip(":#")
    second = _vowel_target(tail) if tail else None
    if second is not None:
        return [(first, VOWEL_DOMINANCE), (second, VOWEL_DOMINANCE)]
    return [(first, VOWEL_DOMINANCE)]


def viseme_track(
    phonemes: tuple[tuple[str, float, float], ...] | list[tuple[str, float, float]],
    n_frames: int,
    articulation: float = 1.0,
) -> np.ndarray:
    """Per-frame mouth parameters, float32 ``(n_frames, 4)``, for frames at ``k / 25`` s.

    Args:
        phonemes: ``(symbol, start_s, end_s)`` in order (from :func:`speech2vid.training.synth.tts.synthesize`).
        n_frames: frames wanted; time not covered by a phoneme (before, between, after) is rest (closed mouth).
        articulation: a speaker's scale of the jaw opening (1 = the table's values).
    """
    duration = n_frames / FPS
    rest = np.array(REST[0])
    segments: list[tuple[float, float, np.ndarray, float]] = []
    cursor = -1.0  # time covered so far; gaps between phonemes (pauses between sentences) are rest
    for symbol, start, end in sorted(phonemes, key=lambda p: p[1]):
        if start > cursor + 1e-3:
            segments.append((cursor, start, rest, REST[1]))
        parts = phoneme_targets(symbol)
        step = (end - start) / len(parts)
        for j, (goal, strength) in enumerate(parts):
            segments.append((start + j * step, start + (j + 1) * step, np.array(goal), strength))
        cursor = max(cursor, end)
    segments.append((cursor, max(duration, cursor) + 1.0, rest, REST[1]))
    # Frame k is shown at k / 25 s and stands for the 40 ms centred there.
    t = (np.arange(n_frames * RATE // FPS) + 0.5) / RATE - 0.5 / FPS
    num = np.zeros((t.size, N_VISEMES))
    den = np.zeros(t.size)
    for start, end, target, dominance in segments:
        outside = np.maximum(start - t, 0.0) + np.maximum(t - end, 0.0)
        weight = dominance * np.exp(-outside / TAU_S)
        num += weight[:, None] * target[None, :]
        den += weight
    track = num / np.maximum(den, 1e-12)[:, None]
    frames = track.reshape(n_frames, RATE // FPS, N_VISEMES).mean(axis=1)
    frames[:, 0] = np.clip(frames[:, 0] * articulation, 0.0, 1.0)
    out: np.ndarray = frames.astype(np.float32)
    return out
