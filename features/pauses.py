"""Pauses between phrases: frames whose audio is far quieter than the speech around them close the mouth.

Why a second detector beside Silero VAD (features/vad.py): the network cannot tell a pause from a soft
sound by level, because its MFCC drops the energy coefficient (the paper's input), and its window holds
287 ms of the past, so for most of a 300 ms pause it still hears the last word and keeps the mouth
open. Silero, made to cut speech into utterances, holds "speech" through such pauses (measured on LJ
Speech: probability above 0.5 for 3-4 frames into a silence, then the 96 ms hangover and 64 ms
pre-roll), so the gate it drives shows the still face only after long silences.

Here a frame is *quiet* when the RMS level of the 40 ms of audio centred on it is ``below_db`` under the
loudest such frame of the last ``peak_seconds``, and it is a *pause* when it and ``before`` frames before
it and ``after`` frames after it are all quiet: a pause shows the still, closed-mouth face. Stop
closures inside words (up to about 100 ms) are shorter than the run asked for and keep the network's
mouth. ``after`` is one frame: its audio ends 60 ms after the frame's time, within the model's 62.5 ms
look-ahead, so the decision costs the live loop no extra wait.

Streaming and offline give the same decisions: :class:`PauseDetector` takes audio in blocks of any size.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from speech2vid.features.windows import FPS, SAMPLES_PER_FRAME

HALF = SAMPLES_PER_FRAME // 2  # the 40 ms level span: frame time +- 20 ms
FLOOR_DB = -120.0  # the level of digital silence


@dataclass(frozen=True)
class PauseParams:
    below_db: float = 30.0  # quiet: this far under the recent peak (0 turns pause detection off)
    peak_seconds: float = 3.0  # how far back the peak is taken
    before: int = 1  # quiet frames needed before the frame ...
    after: int = 1  # ... and after it (within the look-ahead)

    @classmethod
    def from_db(cls, below_db: float) -> "PauseParams | None":
        """``vad.pause_below_db`` of the config: None (no pause detection) for 0."""
        return cls(below_db=below_db) if below_db > 0 else None

    @property
    def peak_frames(self) -> int:
        return max(1, round(self.peak_seconds * FPS))


def level_db(samples: np.ndarray) -> float:
    """RMS level of float samples in dB re full scale (``FLOOR_DB`` for silence)."""
    ms = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(FLOOR_DB, 10.0 * np.log10(ms)) if ms > 0 else FLOOR_DB


class PauseDetector:
    """Push 16 kHz mono audio; ask :meth:`is_pause` for frames whose audio (``after`` frames on) has come.

    Memory: the audio of about one frame, the levels of the last ``peak_seconds``, and one flag per frame
    not yet :meth:`trim`-med away.
    """

    def __init__(self, params: PauseParams = PauseParams()) -> None:
        self.params = params
        self._audio = np.zeros(HALF, dtype=np.float32)  # frame 0's span starts 20 ms before the audio
        self._audio_start = -HALF  # sample index of _audio[0]
        self._next = 0  # the next frame whose level is to be measured
        self._levels: deque[float] = deque(maxlen=params.peak_frames)
        self._quiet: list[bool] = []
        self._quiet_base = 0  # frame index of _quiet[0]
        self._ended = False

    @property
    def known(self) -> int:
        """Frames ``0 .. known - 1`` have a level."""
        return self._next

    def push(self, samples: np.ndarray) -> None:
        self._audio = np.concatenate((self._audio, np.asarray(samples, dtype=np.float32).reshape(-1)))
        self._measure()

    def finish(self) -> None:
        """The audio has ended: the frames still open are measured over the audio there is (zeros after)."""
        self._ended = True
        self._audio = np.concatenate((self._audio, np.zeros(2 * HALF, dtype=np.float32)))
        self._measure()

    def _measure(self) -> None:
        while True:
            lo = self._next * SAMPLES_PER_FRAME - HALF - self._audio_start
            hi = lo + 2 * HALF
            if hi > len(self._audio):
                break
            level = level_db(self._audio[lo:hi])
            self._levels.append(level)
            self._quiet.append(level < max(self._levels) - self.params.below_db)
            self._next += 1
            keep = self._next * SAMPLES_PER_FRAME - HALF - self._audio_start
            self._audio, self._audio_start = self._audio[keep:], self._audio_start + keep

    def trim(self, before_frame: int) -> None:
        """Forget the flags of frames before ``before_frame`` (:meth:`is_pause` needs ``before`` of them)."""
        drop = min(max(0, before_frame - self.params.before - self._quiet_base), len(self._quiet))
        del self._quiet[:drop]
        self._quiet_base += drop

    def is_pause(self, k: int) -> bool:
        """Whether frame ``k`` is in a pause (False while its decision is not known yet, and when off)."""
        p = self.params
        if p.below_db <= 0 or k - p.before < 0:
            return False
        lo, hi = k - p.before - self._quiet_base, k + p.after + 1 - self._quiet_base
        if lo < 0:
            raise ValueError(f"frame {k} was trimmed away (flags kept from frame {self._quiet_base + p.before})")
        return hi <= len(self._quiet) and all(self._quiet[lo:hi])

    def decided(self, k: int) -> bool:
        """Whether :meth:`is_pause` has its final answer for frame ``k``."""
        return self._ended or k + self.params.after < self._next
