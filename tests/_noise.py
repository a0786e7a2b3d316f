"""Recorded-style noises made by the tests: pink and brown noise, and multi-talker TTS babble."""

from __future__ import annotations

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE

LEVEL_DBFS = -30.0  # the level of the noise tests (issue 14): a quiet room's fan or a cafe far away
BABBLE_VOICES = 24  # 8 voices are still intelligible speech to Silero VAD (measured); 24 are babble


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``dbfs``, float32."""
    x = np.asarray(x, dtype=np.float64)
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def coloured_noise(n: int, exponent: float, seed: int) -> np.ndarray:
    """Noise whose power falls as 1/f^exponent (1: pink, 2: brown), by shaping white noise's spectrum."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec = rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)
    f[0] = f[1]
    return np.fft.irfft(spec * f ** (-exponent / 2), n)


def babble(n: int, voices: int, seed: int) -> np.ndarray:
    """``voices`` eSpeak NG voices, each saying sentences, summed at equal level with random offsets."""
    import soxr

    from speech2vid.training.synth.tts import synthesize

    rng = np.random.default_rng(seed)
    texts = [
        "the quick brown fox jumps over the lazy dog again and again",
        "we will meet at the station tomorrow morning before nine",
        "please remember to bring the documents and the keys with you",
        "this is a long sentence spoken in the background of a busy room",
    ]
    variants = ["", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7"]
    out = np.zeros(n)
    for i in range(voices):
        voice = ("en-us", "en-gb-x-rp", "en-029")[i % 3] + variants[i % len(variants)]
        sp = synthesize(" ".join(texts[(i + j) % 4] for j in range(3)), voice, rate_wpm=130 + 5 * i, pitch=30 + 2 * i)
        y = soxr.resample(sp.samples.astype(np.float64), sp.rate, SAMPLE_RATE)
        y = np.resize(y / np.sqrt(np.mean(y**2)), n)  # repeated to length
        out += np.roll(y, int(rng.integers(0, n)))
    return out
