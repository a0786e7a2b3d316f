"""Test-only: edited test videos for ``prepare``: a cut between two shots, and two faces in one shot.

Shot 1 shows one rendered face speaking; a hard cut leads to shot 2 with two faces side by side:
the *speaker* moves its mouth with the soundtrack, the *distractor* with a different sentence that
is never heard. ``prepare`` must find the cut, three tracks, and keep the speaker (and shot 1's face).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech2vid.audio.io import Audio
from speech2vid.training.datasets.format import FPS
from speech2vid.training.synth.face_render import FaceRenderer, blink_track, random_identity
from speech2vid.training.synth.tts import Speech, synthesize
from speech2vid.training.synth.visemes import viseme_track

HALF = 256  # px: each face's half of the 512x256 frame


@dataclass(frozen=True)
class SceneTruth:
    path: Path
    frames: int
    cut: int  # first frame of shot 2
    speaker_side: str  # "left" or "right" in shot 2
    visemes: np.ndarray  # (frames, 4) of the speaking face (shot 1's face, then shot 2's speaker)


def speak_fresh(text: str, voice: str, rate_wpm: int) -> Speech:
    """eSpeak NG in a new process: its output depends on what the process spoke before (training/synth/tts.py),
    and the scene must not change with the tests that ran first (it did, and the speaker's offset with it)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        return fresh.submit(synthesize, text, voice, rate_wpm=rate_wpm).result()


HEARD = "Bring me the blue umbrella before lunch, and then we will walk to the old harbour"
UNHEARD = "Seven lazy cats slept under the warm kitchen table all afternoon long"
# Appended when both faces speak throughout (8.7 s and 9.0 s of speech for the 7 s video); without,
# both fall silent at about 4.5 s, and "talking, then not" is shared by speaker and distractor.
HEARD_MORE = " to watch the fishing boats come home with their nets full of silver fish"
UNHEARD_MORE = ", while the rain kept falling on the garden and the little dog dreamed of chasing them"


def write_cut_two_faces(
    path: str | Path,
    seed: int = 0,
    shot1_s: float = 3.0,
    shot2_s: float = 4.0,
    speaker_side: str = "right",
    audio: bool = True,
    speak_throughout: bool = False,
) -> SceneTruth:
    """Write the test video (512x256, 25 fps, H.264 + AAC unless ``audio`` is False)."""
    from speech2vid.sinks.video_file import VideoFileSink

    rng = np.random.default_rng(seed)
    more = speak_throughout
    heard = speak_fresh(HEARD + (HEARD_MORE if more else "") + ".", "en-us+m3", 150)
    unheard = speak_fresh(UNHEARD + (UNHEARD_MORE if more else "") + ".", "en-gb-x-rp+f2", 165)
    n1, n2 = int(round(shot1_s * FPS)), int(round(shot2_s * FPS))
    n = n1 + n2
    samples = np.zeros(int(round(n / FPS * heard.rate)), np.float32)
    k = min(samples.size, heard.samples.size)
    samples[:k] = heard.samples[:k]
    samples *= 0.7 / max(float(np.abs(samples).max()), 1e-6)
    vis_heard = viseme_track(heard.phonemes, n)
    vis_unheard = viseme_track(unheard.phonemes, n)
    solo, speaker, distractor = (FaceRenderer(random_identity(seed * 10 + j, HALF)) for j in (1, 2, 3))
    blinks = [blink_track(n, rng) for _ in range(3)]
    still = np.full((HALF, HALF, 3), 0, np.uint8)
    with VideoFileSink(
        path,
        fps=FPS,
        size=(2 * HALF, HALF),
        audio=Audio(samples[:, None], heard.rate) if audio else None,
        crf=18,
        preset="veryfast",
    ) as sink:
        for f in range(n):
            t = f / FPS
            if f < n1:
                face, _ = solo.render(vis_heard[f], float(blinks[0][f]), t)
                still[:] = solo.id.background[:, ::-1]
                frame = np.concatenate([still, face], axis=1)
            else:
                a, _ = speaker.render(vis_heard[f], float(blinks[1][f]), t)
                b, _ = distractor.render(vis_unheard[f], float(blinks[2][f]), t)
                frame = np.concatenate([b, a] if speaker_side == "right" else [a, b], axis=1)
            sink.write(np.ascontiguousarray(frame))
    return SceneTruth(Path(path), n, n1, speaker_side, vis_heard)
