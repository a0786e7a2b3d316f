"""One video's speech (sentences with pauses) from eSpeak NG, each in a fresh process.

eSpeak NG keeps state from one utterance to the next (a voice variant's settings, the Klatt noise
generator), so the same text sounds slightly different depending on what the process said before;
re-initialising the library in-process hangs, and forking a process that runs other threads can
deadlock. Each video's speech is therefore made by a new interpreter (``python -m
speech2vid.training.synth.speech``, importing only numpy and ctypes: about 0.2 s), which makes every video
reproducible on its own, whatever process or order makes it. Parameters and results travel as pickles
over stdin/stdout.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

from speech2vid.training.synth.sentences import sentence
from speech2vid.training.synth.tts import synthesize

Timeline = list[tuple[str, float, float]]


@dataclass(frozen=True)
class SpeechRequest:
    seed: int
    seconds: float
    voice: str
    rate_wpm: int
    pitch: int
    pitch_range: int


def speech_for(req: SpeechRequest) -> tuple[np.ndarray, int, Timeline, list[str]]:
    """Sentences with pauses until ``req.seconds``: float32 samples, rate, phoneme timeline, texts."""
    rng = np.random.default_rng([req.seed, 3])
    rate = 22050
    lead = rng.uniform(0.2, 0.6)
    pieces: list[np.ndarray] = [np.zeros(int(lead * rate), np.float32)]
    t = lead
    phonemes: Timeline = []
    texts: list[str] = []
    while t < req.seconds - 1.0:
        text = sentence(rng)
        s = synthesize(
            text,
            req.voice,
            rate_wpm=req.rate_wpm + int(rng.integers(-15, 16)),
            pitch=req.pitch,
            pitch_range=req.pitch_range,
        )
        rate = s.rate
        room = req.seconds - 0.3 - t
        n = min(s.samples.size, int(room * rate))
        if n < rate * 0.8:
            break
        pieces.append(s.samples[:n])
        phonemes += [(p, a + t, min(b, n / rate) + t) for p, a, b in s.phonemes if a < n / rate]
        texts.append(text)
        t += n / rate
        pause = rng.uniform(0.25, 0.9)
        pieces.append(np.zeros(int(pause * rate), np.float32))
        t += pause
    total = int(round(req.seconds * rate))
    audio = np.concatenate(pieces)[:total]
    audio = np.pad(audio, (0, total - audio.size))
    peak = float(np.abs(audio).max())
    if peak > 0:
        audio *= 0.7 / peak
    return audio.astype(np.float32), rate, phonemes, texts


def speech_in_fresh_process(req: SpeechRequest) -> tuple[np.ndarray, int, Timeline, list[str]]:
    """:func:`speech_for` run by a new interpreter (clean eSpeak NG state); errors come back as raised."""
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid.training.synth.speech"],
        input=pickle.dumps(req),
        capture_output=True,
        check=False,
    )
    if run.returncode != 0 or not run.stdout:
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the speech synthesis process failed: {tail[0]}")
    ok, value = pickle.loads(run.stdout)
    if not ok:
        raise value
    result: tuple[np.ndarray, int, Timeline, list[str]] = value  # what _main pickled: speech_for's result
    return result


def _main() -> None:
    req = pickle.loads(sys.stdin.buffer.read())
    try:
        result: tuple[bool, object] = (True, speech_for(req))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        result = (False, exc)
    sys.stdout.buffer.write(pickle.dumps(result))


if __name__ == "__main__":
    _main()
