"""Voice activity (features/vad.py): the vendored Silero ONNX graph on ONNX Runtime against Silero's own
TorchScript model, streaming against offline, the hysteresis gate, the column mapping against the MFCC
windows, and speech against recorded-style noise at the same level.

The noises are made here: pink and brown noise by spectral shaping of seeded white noise, and babble
as 24 eSpeak NG voices (different variants, pitches and rates) speaking at once. Measured with the
vendored model (Silero VAD 6.2.3): pink, brown and 24-voice babble at -30 dBFS give speech
probabilities below 0.15 everywhere; 8-voice babble is still called speech (it is intelligible).
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.assets import sample_speech
from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.features.vad import (
    VAD_CHUNK,
    GateParams,
    SileroVAD,
    SpeechGate,
    column_samples,
    gate_signal_windows,
    gate_windows,
    silence_column,
    speech_mask,
)
from speech2vid.features.windows import speech_windows

REFERENCE_ATOL = 1e-4  # ONNX Runtime vs TorchScript on the same network: 1.6e-5 measured
LEVEL_DBFS = -30.0
BABBLE_VOICES = 24


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

    from speech2vid.synth.tts import synthesize

    rng = np.random.default_rng(seed)
    texts = ["the quick brown fox jumps over the lazy dog again and again",
             "we will meet at the station tomorrow morning before nine",
             "please remember to bring the documents and the keys with you",
             "this is a long sentence spoken in the background of a busy room"]  # fmt: skip
    variants = ["", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7"]
    out = np.zeros(n)
    for i in range(voices):
        voice = ("en-us", "en-gb-x-rp", "en-029")[i % 3] + variants[i % len(variants)]
        sp = synthesize(" ".join(texts[(i + j) % 4] for j in range(3)), voice, rate_wpm=130 + 5 * i, pitch=30 + 2 * i)
        y = soxr.resample(sp.samples.astype(np.float64), sp.rate, SAMPLE_RATE)
        y = np.resize(y / np.sqrt(np.mean(y**2)), n)  # repeated to length
        out += np.roll(y, int(rng.integers(0, n)))
    return out


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return to_model_rate(read_audio(sample_speech())).astype(np.float32)


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def test_probabilities_match_silero_torchscript(speech: np.ndarray, vad: SileroVAD) -> None:
    """The vendored ONNX graph through our wrapper = Silero's own TorchScript model through its own code."""
    torch = pytest.importorskip("torch")
    silero_vad = pytest.importorskip("silero_vad")  # the reference only (it needs PyTorch; the runtime does not)
    noise = 0.01 * np.random.default_rng(1).standard_normal(SAMPLE_RATE).astype(np.float32)
    sig = np.concatenate([speech, noise])
    ours = vad.probabilities(sig)
    ref = silero_vad.load_silero_vad(onnx=False).audio_forward(torch.from_numpy(sig), SAMPLE_RATE).numpy()[0]
    assert ours.shape == (-(-sig.size // VAD_CHUNK),) == ref.shape
    np.testing.assert_allclose(ours, ref, atol=REFERENCE_ATOL)
    assert ours.max() > 0.9 and ours[-20:].max() < 0.2  # speech, then low noise


def test_streaming_equals_offline(speech: np.ndarray) -> None:
    offline = SileroVAD().probabilities(speech)
    v = SileroVAD()
    parts = [v.push(c) for c in np.array_split(speech, 37)] + [v.flush()]
    np.testing.assert_array_equal(np.concatenate(parts), offline)


def test_gate_hysteresis_preroll_and_hangover() -> None:
    p = GateParams(threshold=0.5, hangover=2, preroll=1)
    probs = np.array([0.1, 0.1, 0.2, 0.6, 0.4, 0.3, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1])
    #                  0    1    2    3    4    5    6    7    8    9   10   11   12   13   14   15   16
    # starts at 3 (pre-roll 2); 4 is above 0.35: still speech; 5, 6 below 0.35 for 2 chunks: kept (hangover);
    # 7 is the third: ends. 12 starts again (pre-roll 11), 13-14 hangover, 15 ends.
    expected = np.zeros(probs.size, dtype=bool)
    expected[[2, 3, 4, 5, 6, 11, 12, 13, 14]] = True
    np.testing.assert_array_equal(speech_mask(probs, p), expected)
    # streaming in pieces gives the same, and trimming keeps later answers
    g = SpeechGate(p)
    for piece in np.array_split(probs, 5):
        g.push(piece)
    np.testing.assert_array_equal(g.speech, expected)
    g.trim(10)
    samples = np.arange(probs.size) * VAD_CHUNK + 7
    np.testing.assert_array_equal(g.at_samples(samples), np.where(np.arange(probs.size) >= 10, expected, False))
    assert not g.at_samples(np.array([-5, probs.size * VAD_CHUNK + 1])).any()  # before the start, not yet heard


def test_column_samples_match_the_windows() -> None:
    """A click at sample s changes, in frame k's window, exactly the columns whose 25 ms frame covers s; the
    column :func:`column_samples` centres nearest to s must be among them (independent of vad.py's arithmetic)."""
    n = SAMPLE_RATE
    base = speech_windows(np.zeros(n, dtype=np.float32))
    cols = column_samples(np.arange(base.shape[0]))
    for s in (3000, 6400 + 77, 9999):
        x = np.zeros(n, dtype=np.float32)
        x[s] = 0.5
        changed = np.abs(speech_windows(x) - base).max(axis=1) > 1e-6  # (frames, 35)
        for k in np.flatnonzero(changed.any(axis=1)):
            nearest = int(np.argmin(np.abs(cols[k] - s)))
            assert changed[k, nearest], (s, k, nearest, np.flatnonzero(changed[k]))
            assert np.abs(cols[k][changed[k]] - s).max() <= 200  # a column reads +-200 samples around its centre


def test_gate_windows_silences_non_speech_columns(speech: np.ndarray) -> None:
    w = speech_windows(speech)[:3]
    mask = np.zeros((3, 35), dtype=bool)
    mask[1, 10:] = True
    mask[2] = True
    out = gate_windows(w, mask)
    silent = speech_windows(np.zeros(SAMPLE_RATE, dtype=np.float32))[10]  # a window far from any signal
    np.testing.assert_array_equal(out[0], silent)  # no speech column: the silence window itself
    np.testing.assert_array_equal(out[1, :, 10:], w[1, :, 10:])
    np.testing.assert_array_equal(out[1, :, :10], silent[:, :10])
    np.testing.assert_array_equal(out[2], w[2])
    np.testing.assert_array_equal(silence_column(), silent[:, 0])


@pytest.mark.parametrize("kind", ["pink", "brown", "babble"])
def test_noise_at_speech_level_is_not_speech(kind: str, speech: np.ndarray, vad: SileroVAD) -> None:
    n = 6 * SAMPLE_RATE
    raw = {"pink": lambda: coloured_noise(n, 1.0, 0), "brown": lambda: coloured_noise(n, 2.0, 1),
           "babble": lambda: babble(n, BABBLE_VOICES, 2)}[kind]()  # fmt: skip
    noise = at_level(raw, LEVEL_DBFS)
    probs = vad.probabilities(noise)
    assert not speech_mask(probs).any(), f"{kind} at {LEVEL_DBFS} dBFS: max speech probability {probs.max():.2f}"
    windows = speech_windows(noise)
    gated, speaking = gate_signal_windows(windows, noise, vad=vad)
    assert not speaking.any()
    np.testing.assert_array_equal(gated, np.broadcast_to(gated[0], gated.shape))  # every window the silence window
    # the same level of speech is speech for most of its frames
    loud = at_level(speech, LEVEL_DBFS)
    _, speaking = gate_signal_windows(speech_windows(loud), loud, vad=vad)
    assert speaking.mean() > 0.8
