"""speech2vid.features.mfcc against independent references, and streaming against batch."""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf
from python_speech_features import sigproc
from scipy.fft import dct

from speech2vid.features.constants import FRAME_LEN, HOP
from speech2vid.features.mfcc import (
    CEPSTRA_T,
    MEL_BANK_T,
    StreamingMFCC,
    dct_matrix,
    mel_filterbank,
    mfcc,
    n_columns,
)

SR = 16000
# Outputs are float32 of magnitude up to ~40: one float32 ulp there is ~4e-6, so a float64 reference
# agrees to a few 1e-6; 1e-4 leaves margin for summation-order differences without hiding real bugs
# (a wrong filter edge, window or lifter changes coefficients by >1e-2).
REF_ATOL = 1e-4
STREAM_ATOL = 1e-5


def speech_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Syllable-rate amplitude-modulated chirp with harmonics plus a little noise, float64 (n,)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2 / 4
    return 0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)


def sample_speech() -> np.ndarray:
    from speech2vid.assets import sample_speech as path
    from speech2vid.audio.io import load_speech

    return load_speech(path())[1].astype(np.float64)


def magnitude_reference(signal: np.ndarray) -> np.ndarray:
    """MODEL.md's front end assembled from python_speech_features' building blocks: (n_frames, 13)."""
    frames = sigproc.framesig(sigproc.preemphasis(signal, 0.97), FRAME_LEN, HOP, winfunc=np.hamming)
    energies = sigproc.magspec(frames, 512) @ psf.get_filterbanks(40, 512, SR, 300, 3700).T
    energies = np.where(energies == 0, np.finfo(float).eps, energies)
    return psf.lifter(dct(np.log(energies), type=2, axis=1, norm="ortho")[:, :13], 22)


@pytest.mark.parametrize("n", [0, 1, 399, 400, 559, 560, 16000])
def test_shape_and_dtype(n: int) -> None:
    expected = 0 if n < 400 else 1 + (n - 400) // 160
    assert n_columns(n) == expected
    out = mfcc(np.zeros(n, np.float32))
    assert out.shape == (13, expected) and out.dtype == np.float32


def test_rejects_non_1d() -> None:
    with pytest.raises(ValueError):
        mfcc(np.zeros((2, 800)))
    with pytest.raises(ValueError):
        StreamingMFCC().push(np.zeros((800, 1)))


def test_filterbank_identical_to_python_speech_features() -> None:
    np.testing.assert_array_equal(mel_filterbank(), psf.get_filterbanks(40, 512, SR, 300, 3700))
    assert MEL_BANK_T.shape == (257, 40)


def test_filterbank_peaks_on_librosa_htk_mel_points() -> None:
    librosa = pytest.importorskip("librosa")
    centres_hz = librosa.mel_frequencies(n_mels=42, fmin=300, fmax=3700, htk=True)[1:-1]
    expected_peak_bins = np.floor(513 * centres_hz / SR).astype(int)
    np.testing.assert_array_equal(np.argmax(mel_filterbank(), axis=1), expected_peak_bins)


def test_dct_matches_scipy() -> None:
    log_mel = np.random.default_rng(1).standard_normal((40, 50))
    ours = dct_matrix(13, 40) @ log_mel
    np.testing.assert_allclose(ours, dct(log_mel, type=2, axis=0, norm="ortho")[:13], atol=1e-12)


@pytest.mark.parametrize("source", ["speech_like", "sample_speech", "noise"])
def test_matches_magnitude_reference(source: str) -> None:
    signal = {
        "speech_like": speech_like,
        "sample_speech": sample_speech,
        "noise": lambda: 0.1 * np.random.default_rng(2).standard_normal(SR * 2),
    }[source]()
    ours = mfcc(signal)
    reference = magnitude_reference(signal)
    # python_speech_features zero-pads a last partial frame; only complete frames are comparable.
    assert reference.shape[0] - ours.shape[1] in (0, 1)
    assert np.abs(ours - reference[: ours.shape[1]].T).max() < REF_ATOL


def test_power_variant_matches_python_speech_features_mfcc() -> None:
    signal = speech_like()
    reference = psf.mfcc(
        signal,
        samplerate=SR,
        winlen=0.025,
        winstep=0.01,
        numcep=13,
        nfilt=40,
        nfft=512,
        lowfreq=300,
        highfreq=3700,
        preemph=0.97,
        ceplifter=22,
        appendEnergy=False,
        winfunc=np.hamming,
    )
    ours = mfcc(signal, power=True)
    assert np.abs(ours - reference[: ours.shape[1]].T).max() < REF_ATOL
    # And the model's magnitude spectrum really differs from it (log |X| = log |X|^2 / 2 + const).
    assert np.abs(mfcc(signal) - ours).max() > 1.0


def test_column_depends_only_on_its_samples() -> None:
    signal = speech_like(1.0)
    base = mfcc(signal)
    j = 20
    lo, hi = HOP * j - 1, HOP * j + FRAME_LEN  # pre-emphasis reads one sample before the frame
    for index, changes in [(lo - 1, False), (lo, True), (hi - 1, True), (hi, False)]:
        poked = signal.copy()
        poked[index] += 0.5
        assert (np.abs(mfcc(poked)[:, j] - base[:, j]).max() > 1e-4) == changes, index


def chunkings(n: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(3)
    random_sizes = list(rng.integers(0, 1500, size=n // 700 + 10))
    return {
        "whole": [n],
        "1 sample": [1] * n,
        "7 samples": [7] * (n // 7 + 1),
        "160 samples": [160] * (n // 160 + 1),
        "random": random_sizes + [n],
        "random small": list(rng.integers(1, 50, size=n // 20 + 10)) + [n],
    }


def stream(signal: np.ndarray, sizes: list[int], streamer: StreamingMFCC) -> np.ndarray:
    outputs, start = [], 0
    for size in sizes:
        out = streamer.push(signal[start : start + size])
        assert out.shape[0] == 13 and out.dtype == np.float32
        outputs.append(out)
        start += size
        assert streamer.pending_samples < FRAME_LEN  # bounded carry-over
    return np.concatenate(outputs, axis=1)


@pytest.mark.parametrize("name", list(chunkings(0)))
def test_streaming_equals_batch(name: str) -> None:
    signal = speech_like(1.5, seed=4).astype(np.float32)
    sizes = chunkings(signal.size)[name]
    streamer = StreamingMFCC()
    streamed = stream(signal, sizes, streamer)
    batch = mfcc(signal)
    assert streamed.shape == batch.shape
    assert np.abs(streamed - batch).max() < STREAM_ATOL
    assert streamer.columns_emitted == batch.shape[1]
    streamer.reset()
    again = stream(signal, [333] * (signal.size // 333 + 1), streamer)
    assert np.abs(again - batch).max() < STREAM_ATOL


@pytest.mark.parametrize("kind", ["silence", "dc", "clipped"])
def test_degenerate_inputs_stay_finite(kind: str) -> None:
    n = SR
    t = np.arange(n) / SR
    signal = {
        "silence": np.zeros(n),
        "dc": np.full(n, 0.5),
        "clipped": np.clip(5.0 * np.sin(2 * np.pi * 300 * t), -1.0, 1.0),
    }[kind]
    batch = mfcc(signal)
    streamed = stream(signal, [123] * (n // 123 + 1), StreamingMFCC())
    assert batch.shape == (13, n_columns(n))
    assert np.isfinite(batch).all() and np.isfinite(streamed).all()
    assert np.abs(streamed - batch).max() < STREAM_ATOL
    if kind == "silence":
        # Floored energies: C0 = sqrt(40) * log(eps) (ortho DCT of a constant), the rest ~0.
        floor = np.log(np.finfo(np.float64).eps)
        np.testing.assert_allclose(batch[0], np.sqrt(40) * floor, rtol=1e-6)
        assert np.abs(batch[1:]).max() < 1e-4
        np.testing.assert_allclose(CEPSTRA_T[:, 0], 1 / np.sqrt(40))
