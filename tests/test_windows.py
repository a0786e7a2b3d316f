"""speech2vid.features.windows: frame k's 12x35 window is centred on time k/25, batch == streaming."""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.features.mfcc import mfcc
from speech2vid.features.windows import (
    COLS_PER_FRAME,
    HALF,
    LEFT_PAD,
    WINDOW_COLS,
    StreamingWindows,
    frame_windows,
    n_columns_for,
    n_frames_for,
    pad_for_windows,
    speech_windows,
)

SR = 16000
STREAM_ATOL = 1e-5


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def silence_window() -> np.ndarray:
    return speech_windows(np.zeros(SR // 25, np.float32))[0]


def test_constants() -> None:
    assert (COLS_PER_FRAME, WINDOW_COLS, HALF, LEFT_PAD) == (4, 35, 17, 2920)
    assert StreamingWindows().lookahead_seconds == pytest.approx(0.1825)


@pytest.mark.parametrize("seconds", [0.04, 0.5, 1.0, 1.013, 2.37, 3.0, 5.2039])
def test_frame_count_is_round_25_fps(seconds: float) -> None:
    n = int(round(seconds * SR))
    expected = int(np.floor(25 * seconds + 0.5))  # halves up (0.5 s -> 13), not Python's banker's round
    assert n_frames_for(n) == expected
    assert speech_windows(noise(n)).shape == (expected, 12, 35)


def test_frame_count_edges() -> None:
    assert n_frames_for(0) == 0
    assert n_frames_for(1) == 1  # non-empty audio always gets a frame
    assert n_frames_for(320) == 1 and n_frames_for(960) == 2  # halves round up, everywhere the same
    assert n_frames_for(959) == 1
    assert speech_windows(np.zeros(0, np.float32)).shape == (0, 12, 35)


@pytest.mark.parametrize("n_samples", [1, 639, 640, 12345, 16000])
@pytest.mark.parametrize("n_frames", [1, 3, 25])
def test_padding_gives_exact_column_count(n_samples: int, n_frames: int) -> None:
    padded = pad_for_windows(noise(n_samples), n_frames)
    assert mfcc(padded).shape[1] == n_columns_for(n_frames) == 4 * (n_frames - 1) + 35
    assert not padded[:LEFT_PAD].any()


@pytest.mark.parametrize("k", [0, 7, 24])
def test_window_is_centred_on_the_frame_time(k: int) -> None:
    # A 10 ms 1 kHz burst centred on frame k's time (sample 640 k) in a 1 s silence.
    signal = np.zeros(SR, np.float32)
    centre = 640 * k
    burst = np.arange(max(centre - 80, 0), centre + 80)
    signal[burst] = 0.5 * np.sin(2 * np.pi * 1000 * burst / SR)
    windows = speech_windows(signal)
    assert windows.shape == (25, 12, 35) and windows.dtype == np.float32
    touched = np.flatnonzero(np.abs(windows[k] - silence_window()).max(axis=0) > 1e-3)
    if k == 0:  # half of the burst is cut off at the start: only the centre and later columns
        assert set(touched) <= {16, 17, 18} and HALF in touched
    else:  # frames overlapping the burst are columns 16..18: symmetric around the centre column 17
        np.testing.assert_array_equal(touched, [HALF - 1, HALF, HALF + 1])
    # The previous frame sees the burst one frame (4 columns) later in its window.
    if k > 0:
        earlier = np.flatnonzero(np.abs(windows[k - 1] - silence_window()).max(axis=0) > 1e-3)
        np.testing.assert_array_equal(earlier, touched + COLS_PER_FRAME)
    # And in the full padded MFCC the burst's column is 4 k + 17 (time (i - 17) * 10 ms).
    columns = mfcc(pad_for_windows(signal, 25))
    assert int(np.argmax(columns[0])) == 4 * k + HALF


def test_frame_windows_drops_c0_and_steps_four_columns() -> None:
    columns = np.arange(13 * 43, dtype=np.float32).reshape(13, 43)
    windows = frame_windows(columns, 3)
    assert windows.shape == (3, 12, 35)
    np.testing.assert_array_equal(windows[2], columns[1:13, 8:43])
    with pytest.raises(ValueError):
        frame_windows(columns, 4)


def test_ends_are_padded_to_full_windows() -> None:
    signal = noise(SR + 123)
    windows = speech_windows(signal)
    assert windows.shape == (25, 12, 35) and np.isfinite(windows).all()
    quiet = silence_window()
    # Columns 0..15 of frame 0 lie entirely before the signal: they are the zero padding.
    np.testing.assert_allclose(windows[0][:, :16], quiet[:, :16], atol=1e-5)
    assert np.abs(windows[0][:, 16:] - quiet[:, 16:]).min(axis=0).max() > 1e-3
    # The last frame (t = 0.96 s) reads up to 1.1425 s; the signal ends at 1.0077 s: right padding.
    assert np.allclose(windows[-1][:, -2:], quiet[:, -2:], atol=1e-5)


def _stream(signal: np.ndarray, sizes: list[int], streamer: StreamingWindows) -> list[np.ndarray]:
    outputs, start = [], 0
    for size in sizes:
        out = streamer.push(signal[start : start + size])
        assert out.shape[1:] == (12, 35) and out.dtype == np.float32
        outputs.append(out)
        start += size
        assert streamer.held_columns < WINDOW_COLS  # bounded memory
    return outputs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    signal = noise(int(rng.integers(SR, 3 * SR)), seed)
    batch = speech_windows(signal)
    sizes = list(rng.integers(1, 2000, size=signal.size // 500)) + [signal.size]
    streamer = StreamingWindows()
    live = np.concatenate(_stream(signal, sizes, streamer))
    # Before the end only frames whose audio has fully arrived are out, and they equal the batch ones.
    assert 0 < live.shape[0] < batch.shape[0]
    assert np.abs(live - batch[: live.shape[0]]).max() < STREAM_ATOL
    rest = streamer.flush()
    assert streamer.frames_emitted == batch.shape[0]
    assert np.abs(np.concatenate([live, rest]) - batch).max() < STREAM_ATOL
    with pytest.raises(ValueError):
        streamer.push(signal[:10])
    streamer.reset()
    assert streamer.frames_emitted == 0
    again = np.concatenate(_stream(signal, [160] * (signal.size // 160 + 1), streamer) + [streamer.flush()])
    assert np.abs(again - batch).max() < STREAM_ATOL


def test_lookahead_is_when_a_frame_completes() -> None:
    k = 5
    needed = 640 * k + round(StreamingWindows().lookahead_seconds * SR)  # frame k's last sample + 1
    signal = noise(needed + 10)
    streamer = StreamingWindows()
    streamer.push(signal[: needed - 1])
    assert streamer.frames_emitted == k
    streamer.push(signal[needed - 1 : needed])
    assert streamer.frames_emitted == k + 1


def test_long_stream_stays_bounded() -> None:
    streamer = StreamingWindows()
    chunk = noise(1600)
    for _ in range(200):  # 20 s in 100 ms chunks
        streamer.push(chunk)
    assert streamer.frames_emitted == (200 * 1600 - LEFT_PAD) // 640 + 1
    assert streamer.held_columns < WINDOW_COLS
