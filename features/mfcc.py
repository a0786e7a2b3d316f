"""The Speech2Vid MFCC front end (MODEL.md, "Audio front end"), batch and streaming.

16 kHz mono in; frames of 400 samples every 160 (25 ms / 10 ms, 100 columns per second) starting at
sample 0 with no padding (padding is :mod:`speech2vid.features.windows`' job). Per frame: pre-emphasis
0.97 (over the whole signal, ``y[n] = x[n] - 0.97 x[n-1]`` with ``x[-1] = 0``), Hamming window, rfft of
512, magnitude, 40 HTK-mel triangles 300-3700 Hz built like ``python_speech_features.get_filterbanks``,
floor at float64 eps, natural log, orthonormal DCT-II, 13 cepstra, sine lifter 22.

Column ``j`` covers samples ``[160 j, 160 j + 400)`` and, through the pre-emphasis, also reads sample
``160 j - 1``; :class:`StreamingMFCC` therefore reproduces :func:`mfcc` exactly by carrying the last
raw sample and the not-yet-consumed pre-emphasised samples between pushes.

Everything is computed in float64 and returned as float32 of shape ``(13, n_cols)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speech2vid.features.constants import (
    FRAME_LEN,
    HOP,
    LIFTER,
    MEL_FMAX_HZ,
    MEL_FMIN_HZ,
    N_BINS,
    N_FFT,
    N_MELS,
    N_MFCC,
    PREEMPHASIS,
    SAMPLE_RATE,
)

# Bounds the rfft scratch memory of a long batch call (1024 x 257 complex128 = 4 MiB) without
# changing any result: every frame is computed independently.
_BLOCK_FRAMES = 1024
# Exact digital silence would give log(0) = -inf; flooring keeps silence finite (MODEL.md).
_LOG_FLOOR = float(np.finfo(np.float64).eps)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, as in python_speech_features."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    sample_rate: int = SAMPLE_RATE,
    fmin_hz: float = MEL_FMIN_HZ,
    fmax_hz: float = MEL_FMAX_HZ,
) -> np.ndarray:
    """Triangular mel filters, float64 ``(n_mels, n_fft // 2 + 1)``, one filter per row.

    Same construction as ``python_speech_features.get_filterbanks``: edges evenly spaced in HTK mel,
    snapped down to rfft bins with ``floor((n_fft + 1) * hz / sample_rate)``, peaks of height 1.
    """
    if not 0.0 <= fmin_hz < fmax_hz <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2} Hz, got {fmin_hz}, {fmax_hz}")
    mel_edges = np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2)
    edges = np.floor((n_fft + 1) * mel_to_hz(mel_edges) / sample_rate).astype(np.int64)
    bank = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float64)
    for j, (lo, mid, hi) in enumerate(zip(edges[:-2], edges[1:-1], edges[2:])):
        # Empty ranges (coincident edges) are skipped, as in the reference's loops.
        rise = np.arange(lo, mid)
        fall = np.arange(mid, hi)
        if rise.size:
            bank[j, rise] = (rise - lo) / (mid - lo)
        if fall.size:
            bank[j, fall] = (hi - fall) / (hi - mid)
    return bank


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """First ``n_out`` rows of the orthonormal DCT-II of length ``n_in``, float64 ``(n_out, n_in)``.

    ``dct_matrix(n, m) @ v == scipy.fft.dct(v, type=2, norm='ortho')[:n]``.
    """
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return np.asarray(basis, dtype=np.float64)


def sine_lifter(n_ceps: int = N_MFCC, lifter: int = LIFTER) -> np.ndarray:
    """Lifter weights ``1 + (L/2) sin(pi n / L)``, float64 ``(n_ceps,)``."""
    n = np.arange(n_ceps)
    return 1.0 + (lifter / 2.0) * np.sin(np.pi * n / lifter)


# Precomputed once: every call and every stream shares them.
WINDOW: np.ndarray = np.hamming(FRAME_LEN)  # (400,) float64, as winfunc=np.hamming
MEL_BANK_T: np.ndarray = np.ascontiguousarray(mel_filterbank().T)  # (257, 40)
# DCT and lifter folded into one (40, 13) matrix: log-mel energies @ CEPSTRA_T -> liftered cepstra.
CEPSTRA_T: np.ndarray = np.ascontiguousarray((sine_lifter()[:, None] * dct_matrix(N_MFCC, N_MELS)).T)


def n_columns(n_samples: int) -> int:
    """Number of complete frames (MFCC columns) in ``n_samples`` samples: no padding."""
    if n_samples < FRAME_LEN:
        return 0
    return 1 + (n_samples - FRAME_LEN) // HOP


def _as_signal(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D 16 kHz mono signal, got shape {x.shape}")
    return x


def preemphasize(x: np.ndarray, previous: float = 0.0) -> np.ndarray:
    """``y[n] = x[n] - 0.97 x[n-1]`` with ``x[-1] = previous``; float64 ``(n,)``.

    Batch and streaming both call this so their samples are bit-identical.
    """
    y = np.empty_like(x)
    if x.size:
        y[0] = x[0] - PREEMPHASIS * previous
        np.subtract(x[1:], PREEMPHASIS * x[:-1], out=y[1:])
    return y


def frames_to_columns(frames: np.ndarray, power: bool = False) -> np.ndarray:
    """Pre-emphasised frames float64 ``(k, 400)`` -> MFCC columns float32 ``(13, k)``.

    ``power=True`` uses the power spectrum instead of the magnitude; it exists only to compare with
    ``python_speech_features.mfcc``, which uses power. The model uses magnitude.
    """
    out = np.empty((N_MFCC, frames.shape[0]), dtype=np.float32)
    for start in range(0, frames.shape[0], _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES]
        spectrum = np.abs(np.fft.rfft(block * WINDOW, n=N_FFT))
        if power:
            spectrum = spectrum**2 / N_FFT
        energies = np.maximum(spectrum @ MEL_BANK_T, _LOG_FLOOR)
        out[:, start : start + block.shape[0]] = (np.log(energies) @ CEPSTRA_T).T
    return out


def _frame_view(y: np.ndarray, n_cols: int) -> np.ndarray:
    """Read-only ``(n_cols, 400)`` view of the frames of ``y`` (hop 160); no copy."""
    if n_cols == 0:
        return np.empty((0, FRAME_LEN), dtype=np.float64)
    return sliding_window_view(y, FRAME_LEN)[::HOP][:n_cols]


def mfcc(signal_16k: np.ndarray, power: bool = False) -> np.ndarray:
    """MFCC of a whole 16 kHz mono signal.

    Args:
        signal_16k: ``(n,)`` float samples in [-1, 1] at 16 kHz.
        power: compare-only switch, see :func:`frames_to_columns`.

    Returns:
        float32 ``(13, n_columns(n))``; column ``j`` covers samples ``[160 j, 160 j + 400)``.
    """
    y = preemphasize(_as_signal(signal_16k))
    return frames_to_columns(_frame_view(y, n_columns(y.size)), power=power)


class StreamingMFCC:
    """Incremental :func:`mfcc`: the columns of the concatenated pushes, as each one completes.

    Memory is bounded: between pushes only the pre-emphasised samples of the next, still incomplete
    frame (fewer than 400) and the last raw sample are kept, so it can run for hours.
    """

    def __init__(self) -> None:
        self._previous: float  # last raw sample, for the pre-emphasis across pushes
        self._pending: np.ndarray  # pre-emphasised samples not yet consumed by a complete column
        self.columns_emitted: int
        self.reset()

    @property
    def pending_samples(self) -> int:
        """Samples held toward the next column (< 400 after any push)."""
        return int(self._pending.size)

    def reset(self) -> None:
        """Forget everything: the next push starts a new signal at sample 0."""
        self._previous = 0.0
        self._pending = np.empty(0, dtype=np.float64)
        self.columns_emitted = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``(m,)`` float samples at 16 kHz (any ``m >= 0``).

        Returns:
            float32 ``(13, k)``: the columns completed by this chunk, ``k >= 0``.
        """
        x = _as_signal(chunk)
        if x.size == 0:
            return np.empty((N_MFCC, 0), dtype=np.float32)
        y = preemphasize(x, self._previous)
        self._previous = float(x[-1])
        pending = np.concatenate((self._pending, y)) if self._pending.size else y
        n_cols = n_columns(pending.size)
        columns = frames_to_columns(_frame_view(pending, n_cols))
        # Copy so the kept tail does not pin the (possibly large) chunk in memory.
        self._pending = pending[n_cols * HOP :].copy()
        self.columns_emitted += n_cols
        return columns
