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
from _noise import BABBLE_VOICES, LEVEL_DBFS, at_level, babble, coloured_noise

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
    raw = {
        "pink": lambda: coloured_noise(n, 1.0, 0),
        "brown": lambda: coloured_noise(n, 2.0, 1),
        "babble": lambda: babble(n, BABBLE_VOICES, 2),
    }[kind]()
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


def test_streaming_window_gate_equals_the_whole_signal_gate(speech: np.ndarray, vad: SileroVAD) -> None:
    """generate's streaming gate (audio in blocks, windows released once decided) = gating the whole signal."""
    from speech2vid.features.vad import WindowGate, is_silent
    from speech2vid.features.windows import StreamingWindows

    noise = at_level(coloured_noise(SAMPLE_RATE, 1.0, 5), LEVEL_DBFS)
    x = np.concatenate([noise, at_level(speech, LEVEL_DBFS), noise])
    expected, speaking = gate_signal_windows(speech_windows(x), x, vad=vad)
    gate, sw, out = WindowGate(), StreamingWindows(), []
    for block in np.array_split(x, 23):
        gate.push_audio(block)
        out.append(gate.gate(sw.push(block)))
    gate.flush_audio()
    out.append(gate.gate(sw.flush(), final=True))
    got = np.concatenate(out)
    assert got.shape == expected.shape
    # the same windows and the same gate; only float rounding may differ (block sums take other SIMD paths on
    # other CPUs: measured 1e-13 on an AVX2-only machine)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert is_silent(got)[~speaking].all()  # (a speech run's hangover over digital zeros is silent too)
    assert speaking[:20].sum() == 0 and speaking.sum() > 100
