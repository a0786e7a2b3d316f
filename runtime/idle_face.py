"""What a face shows while nobody speaks, set up once per identity: ``generate``, the Python API and ``live``
all start from :func:`idle_face`.

While the speech gate is on, audio that is not speech reaches the engine as the MFCC of digital silence,
and a frame whose window holds no speech at all shows :attr:`IdleFace.still`, the face rendered once from
a window of silence, without running the engine. With ``idle: alive`` an animator adds blinks and a slow
sway to those frames. What decides "speech" differs by pipeline: offline, the gate may wait for the
voice activity after a frame (:func:`speech2vid.runtime.offline.speech_gate`); live, it decides as the
audio arrives (:mod:`speech2vid.runtime.live`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from speech2vid.features.vad import silence_column
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.frames.idle import IdleAnimator


@dataclass
class IdleFace:
    gating: bool  # the speech gate is on: non-speech is silence to the engine, silent frames show ``still``
    silence: np.ndarray  # float32 (12,): the MFCC column of digital silence
    still: np.ndarray  # the face (as ``render`` gives it) of a window of digital silence
    animator: IdleAnimator | None  # blinks and sway while silent (idle: alive)


def silence_window() -> np.ndarray:
    """float32 (12, 35): the window of digital silence (every column the MFCC of zeros)."""
    return np.ascontiguousarray(np.broadcast_to(silence_column()[:, None], (N_CEPS, WINDOW_COLS)), dtype=np.float32)


def idle_face(render: Callable[[np.ndarray], np.ndarray], idle: str, *, gating: bool) -> IdleFace:
    """The idle face of an engine whose identity is set: ``render`` maps (n, 12, 35) windows to faces
    (``engine.render_faces`` for a photo composite, ``engine.render`` for the bare face); ``idle`` is the
    config's ``alive | still | off``; ``gating``: whether the pipeline's speech gate is on."""
    still = render(silence_window()[None])[0]
    return IdleFace(gating, silence_column(), still, IdleAnimator() if gating and idle == "alive" else None)
