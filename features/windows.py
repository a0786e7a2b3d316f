"""The one mapping from video frames to 12x35 MFCC windows; every caller (offline, live, training) uses it.

Definition
----------
Video frame ``k`` is shown at time ``k / 25`` s. Its window is the 35 MFCC columns (0.35 s) *centred*
on that time, cepstra 1..12 (C0 dropped): a float32 12x35 map.

To make that integral the 16 kHz signal is conceptually extended with zeros on both sides, and the MFCC
(:func:`speech2vid.features.mfcc.mfcc`) is computed on the signal left-padded with
``LEFT_PAD = 400 // 2 + 17 * 160 = 2920`` zero samples. Column ``i`` of that MFCC covers padded samples
``[160 i, 160 i + 400)``, so its centre is original sample ``160 (i - 17)``, i.e. time ``(i - 17) * 10 ms``.
Frame ``k`` (time ``40 k`` ms) is centred on column ``4 k + 17`` and its window is columns
``4 k .. 4 k + 34``. On the right the signal is zero-padded so that the last frame also gets a full
window; the number of frames is ``round(25 * seconds)`` rounding halves up (:func:`n_frames_for`).

Frame ``k``'s window reads original samples up to ``640 k + 2920`` (exclusive): a streaming consumer
must wait ``LEFT_PAD / 16000 = 0.1825`` s of audio past the frame's time (:attr:`StreamingWindows.lookahead_seconds`).

Look-ahead as a property of the model
-------------------------------------
A model may be trained on windows that end ``R`` columns (``lookahead_columns``, 0..17) after the frame
time instead of 17: the 35 columns are shifted ``17 - R`` columns into the past by padding ``17 - R``
more hops of zeros on the left (:func:`left_pad`). Frame ``k`` then needs audio up to
``(200 + 160 R) / 16000`` s after its time (:func:`lookahead_seconds`): 182.5 ms centred, 62.5 ms
for ``R = 5``. Batch and streaming windows stay identical for every ``R``; training, ``generate``,
``redub`` and ``live`` all take ``R`` from the model config.

Early emission (live use)
-------------------------
``StreamingWindows(E, lookahead_columns=R)`` with ``E < R`` emits frame ``k`` once ``E`` columns past
its time exist and fills the ``R - E`` unheard columns with the MFCC of digital silence: an
approximation the network never saw in training (measured effect in docs/live.md).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speech2vid.features.constants import FRAME_LEN, HOP, MFCC_RATE, N_MFCC, SAMPLE_RATE, exact_div
from speech2vid.features.mfcc import StreamingMFCC, mfcc

FPS = 25
COLS_PER_FRAME = exact_div(MFCC_RATE, FPS)  # 4
SAMPLES_PER_FRAME = exact_div(SAMPLE_RATE, FPS)  # 640
WINDOW_COLS = 35  # 0.35 s
N_CEPS = 12  # cepstra 1..12: C0 (overall level) is dropped
HALF = WINDOW_COLS // 2  # 17 columns either side of the centre column
MAX_LOOKAHEAD_COLUMNS = HALF  # the full right half of the window: the exact batch mapping
# Puts the centre of padded column HALF on original sample 0 (see the module docstring).
LEFT_PAD = FRAME_LEN // 2 + HALF * HOP  # 2920 samples


def check_lookahead(lookahead_columns: int) -> int:
    if not 0 <= lookahead_columns <= MAX_LOOKAHEAD_COLUMNS:
        raise ValueError(f"lookahead_columns must be within 0..{MAX_LOOKAHEAD_COLUMNS}, got {lookahead_columns}")
    return lookahead_columns


def left_pad(lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS) -> int:
    """Zero samples before the signal so that window ``k`` ends ``lookahead_columns`` columns after frame ``k``."""
    return LEFT_PAD + (MAX_LOOKAHEAD_COLUMNS - check_lookahead(lookahead_columns)) * HOP


def lookahead_seconds(lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS) -> float:
    """Audio a window reads past its frame's time: ``(R * HOP + FRAME_LEN / 2) / SR`` (0.1825 s centred)."""
    return (check_lookahead(lookahead_columns) * HOP + FRAME_LEN // 2) / SAMPLE_RATE


def lookahead_columns_for(seconds: float) -> int | None:
    """The look-ahead ``R`` whose :func:`lookahead_seconds` is ``seconds``, or None when none is (within 1 us)."""
    r = round((seconds * SAMPLE_RATE - FRAME_LEN // 2) / HOP)
    if not 0 <= r <= MAX_LOOKAHEAD_COLUMNS or abs(lookahead_seconds(r) - seconds) > 1e-6:
        return None
    return r


def n_frames_for(n_samples_16k: int) -> int:
    """Video frames for a 16 kHz signal: ``round(25 * seconds)`` with halves rounded up, >= 1 if non-empty.

    Integer arithmetic so that every caller rounds identically (no float or banker's rounding).
    """
    if n_samples_16k < 0:
        raise ValueError(f"negative sample count {n_samples_16k}")
    if n_samples_16k == 0:
        return 0
    return max(1, (n_samples_16k + SAMPLES_PER_FRAME // 2) // SAMPLES_PER_FRAME)


def n_columns_for(n_frames: int) -> int:
    """MFCC columns that ``n_frames`` windows span: ``4 (n_frames - 1) + 35`` (0 for no frames)."""
    return 0 if n_frames <= 0 else COLS_PER_FRAME * (n_frames - 1) + WINDOW_COLS


def pad_for_windows(
    signal_16k: np.ndarray, n_frames: int, lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS
) -> np.ndarray:
    """Zero-pad (or trim) a 16 kHz signal so that its MFCC has exactly ``n_columns_for(n_frames)`` columns.

    Args:
        signal_16k: ``(n,)`` float samples at 16 kHz.
        n_frames: number of video frames wanted (>= 1).
        lookahead_columns: the model's right context (see the module doc).

    Returns:
        float64: ``left_pad(lookahead_columns)`` zeros, the signal (cut where no window reads it),
        then zeros up to the length whose MFCC has the exact column count.
    """
    x = np.asarray(signal_16k, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D 16 kHz mono signal, got shape {x.shape}")
    if n_frames < 1:
        raise ValueError(f"need at least one frame, got n_frames={n_frames}")
    pad = left_pad(lookahead_columns)
    total = FRAME_LEN + HOP * (n_columns_for(n_frames) - 1)
    kept = x[: max(total - pad, 0)]
    padded = np.zeros(total, dtype=np.float64)
    padded[pad : pad + kept.size] = kept
    return padded


def frame_windows(columns: np.ndarray, n_frames: int) -> np.ndarray:
    """Cut per-frame windows out of MFCC columns of a LEFT_PAD-padded signal.

    Args:
        columns: ``(13, N)`` MFCC with ``N >= n_columns_for(n_frames)``.
        n_frames: number of windows to cut.

    Returns:
        float32 ``(n_frames, 12, 35)``; window ``k`` is ``columns[1:13, 4k:4k+35]``.
    """
    need = n_columns_for(n_frames)
    if columns.ndim != 2 or columns.shape[0] != N_MFCC or columns.shape[1] < need:
        raise ValueError(f"need MFCC columns of shape (13, >={need}) for {n_frames} frames, got {columns.shape}")
    if n_frames <= 0:
        return np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
    ceps = columns[1 : 1 + N_CEPS, :need]
    views = sliding_window_view(ceps, WINDOW_COLS, axis=1)[:, ::COLS_PER_FRAME]  # (12, n_frames, 35)
    return np.ascontiguousarray(views.transpose(1, 0, 2), dtype=np.float32)


def speech_windows(
    signal_16k: np.ndarray, n_frames: int | None = None, lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS
) -> np.ndarray:
    """All frame windows of a 16 kHz signal: float32 ``(n_frames, 12, 35)``.

    ``n_frames`` defaults to :func:`n_frames_for` of the signal length (0 frames for an empty signal);
    ``lookahead_columns`` is the model's right context (module doc).
    """
    if n_frames is None:
        n_frames = n_frames_for(np.shape(signal_16k)[0])
    if n_frames == 0:
        return np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
    return frame_windows(mfcc(pad_for_windows(signal_16k, n_frames, lookahead_columns)), n_frames)


class StreamingWindows:
    """Incremental :func:`speech_windows`: frame windows as soon as their audio has arrived.

    Frame ``k`` is emitted once MFCC column ``4k + 34`` exists, i.e. once ``lookahead_seconds`` of audio
    past its time has been pushed; the windows are identical to :func:`speech_windows` on the
    concatenated signal. Only the columns still needed (fewer than 35) are kept between pushes.
    """

    def __init__(
        self, emit_after_columns: int | None = None, *, lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS
    ) -> None:
        """``lookahead_columns``: the model's right context; ``emit_after_columns`` (<= it, default it): emit
        early, filling the unheard columns with silence (module doc). Both 0..17."""
        self.lookahead_columns = check_lookahead(lookahead_columns)
        self.emit_after_columns = (
            lookahead_columns if emit_after_columns is None else check_lookahead(emit_after_columns)
        )
        if self.emit_after_columns > self.lookahead_columns:
            raise ValueError(
                f"emit_after_columns ({emit_after_columns}) exceeds the model's look-ahead ({lookahead_columns})"
            )
        self._mfcc = StreamingMFCC()
        self.reset()

    def reset(self) -> None:
        """Start a new signal: frame 0 is at its first sample."""
        self._mfcc.reset()
        # Columns still needed, starting at column 4 * frames_emitted; the left pad alone already
        # completes the first 16 (all silence), which belong to frame 0's window.
        self._columns = self._mfcc.push(np.zeros(left_pad(self.lookahead_columns)))
        # Column 0 covers only left-pad zeros: the MFCC of digital silence, used for unheard columns.
        self._silence_column = self._columns[:, :1].copy()
        self.frames_emitted = 0
        self.samples_pushed = 0
        self._finished = False

    @property
    def held_columns(self) -> int:
        """MFCC columns kept for frames not yet emitted (< 35)."""
        return int(self._columns.shape[1])

    @property
    def lookahead_seconds(self) -> float:
        """Audio needed after frame ``k``'s time before its window is emitted: 0.1825 s centred.

        The window's last column is centred ``R`` hops after the frame time and reaches half a frame
        (12.5 ms) beyond its centre: ``(R * HOP + FRAME_LEN / 2) / SR``, R = ``emit_after_columns``.
        """
        return lookahead_seconds(self.emit_after_columns)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``(m,)`` float samples at 16 kHz; returns float32 ``(k, 12, 35)`` newly complete windows."""
        if self._finished:
            raise ValueError("StreamingWindows.push after flush(): call reset() to start a new signal")
        new = self._mfcc.push(chunk)
        self.samples_pushed += int(np.shape(chunk)[0])
        return self._emit(new)

    def flush(self) -> np.ndarray:
        """End of signal: zero-pad like :func:`speech_windows` and return the remaining windows.

        Afterwards ``frames_emitted == n_frames_for(samples_pushed)``; call :meth:`reset` before reuse.
        """
        self._finished = True
        missing = n_columns_for(n_frames_for(self.samples_pushed)) - self._mfcc.columns_emitted
        if missing <= 0:
            return np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
        # Exactly enough zeros to complete the missing columns, as pad_for_windows' right padding.
        zeros = FRAME_LEN + HOP * (missing - 1) - self._mfcc.pending_samples
        return self._emit(self._mfcc.push(np.zeros(zeros)))

    def _emit(self, new_columns: np.ndarray) -> np.ndarray:
        columns = np.concatenate((self._columns, new_columns), axis=1) if new_columns.size else self._columns
        if self.emit_after_columns < self.lookahead_columns:
            return self._emit_early(columns)
        n_ready = 0 if columns.shape[1] < WINDOW_COLS else 1 + (columns.shape[1] - WINDOW_COLS) // COLS_PER_FRAME
        windows = frame_windows(columns, n_ready)
        self._columns = columns[:, n_ready * COLS_PER_FRAME :].copy()
        self.frames_emitted += n_ready
        return windows

    def _emit_early(self, columns: np.ndarray) -> np.ndarray:
        """Short look-ahead: windows whose column ``centre + R`` exists, unheard columns set to silence.

        After :meth:`flush` no more than ``n_frames_for(samples_pushed)`` frames are emitted in total.
        """
        need = WINDOW_COLS - (
            self.lookahead_columns - self.emit_after_columns
        )  # columns of frame j's window that must exist
        n_ready = 0 if columns.shape[1] < need else 1 + (columns.shape[1] - need) // COLS_PER_FRAME
        if self._finished:
            n_ready = max(0, min(n_ready, n_frames_for(self.samples_pushed) - self.frames_emitted))
        out = np.empty((n_ready, N_CEPS, WINDOW_COLS), dtype=np.float32)
        out[:, :, need:] = self._silence_column[1 : 1 + N_CEPS]  # the unheard right context, even at flush
        for j in range(n_ready):
            out[j, :, :need] = columns[1 : 1 + N_CEPS, COLS_PER_FRAME * j : COLS_PER_FRAME * j + need]
        self._columns = columns[:, n_ready * COLS_PER_FRAME :].copy()
        self.frames_emitted += n_ready
        return out
